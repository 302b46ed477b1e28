/**
 * holdfast's public surface: everything a user imports from 'holdfast' (package.json `exports`),
 * and nothing else. What is not named here is internal and may change without notice.
 *
 *   import { Gateway, connect, channelStream } from 'holdfast';
 *
 * Built by tools/build-package.js into dist/pkg (one CommonJS bundle, an ESM wrapper over it, and
 * type declarations); test/package.scenario.test.ts packs it, installs it in a fresh project and
 * runs README's "API in ten lines" against it. Exports are by name, so adding one is a decision.
 */

// The gateway: sessions for many devices over HTTP and direct TCP.
export { Gateway, GatewayChannel, GATEWAY_LINK_DEFAULTS, TCP_LIMIT_DEFAULTS } from './targets/host/gateway/gateway';
export type { GatewayOptions, GatewayEvents, GatewayTlsOptions, DeviceKeys, HttpListener, TcpListener, TcpLimits, MetricsListener } from './targets/host/gateway/gateway';

// The device: one session to a gateway, TCP first, HTTP when TCP is blocked.
export { connect, DeviceChannel } from './targets/host/device/device';
export type { DeviceOptions, DeviceChannelEvents, DeviceTlsOptions, DeviceStats } from './targets/host/device/device';

// What runs on a session: the message channel, a Duplex over it, the mux, port forwarding.
export type { Channel, ChannelEvents } from './targets/host/app/channel';
export { channelStream } from './targets/host/app/stream';
export type { ChannelStreamOptions } from './targets/host/app/stream';
export { Mux } from './targets/host/app/mux';
export type { MuxOptions } from './targets/host/app/mux';
export { MuxStream } from './targets/host/app/mux-stream';
export { forwardPorts, serveForwards } from './targets/host/app/forward';
export type { ForwardSpec, ForwardOptions, ServeOptions, PortForwarder, ForwardServer } from './targets/host/app/forward';
// A device and a gateway channel joined in one process (no sockets): for testing what sits on a channel.
export { loopbackPair } from './targets/host/app/loopback';
export type { LoopbackPair } from './targets/host/app/loopback';

// Errors: one class, a stable code per failure.
export { HfError, ErrorCode, isHfError } from './firmware/errors';
export type { ErrorCodeValue } from './firmware/errors';

// Options and their defaults.
export { LINK_DEFAULTS } from './firmware/options';
export type { AckAfter, LinkOptions } from './firmware/options';
export type { LadderOptions } from './firmware/ladder';

// Logging: the interface every part logs through, and the process logger.
export type { Log } from './hal/log';
export { createLog, silentLog } from './targets/node/log';
export type { LogOptions, LogLevel, LogFormat } from './targets/node/log';
