/** targets/host/device/proxy: which forward proxy a gateway URL goes through (flag, http_proxy, no_proxy). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { noProxyMatches, proxyFor } from '../targets/host/device/proxy';
import { failure as error } from './support/errors';

type Env = Record<string, string | undefined>;

/** [what, target, options, expected proxy URL (href) or null] */
const cases: [string, string, { proxy?: string; env?: Env }, string | null][] = [
  ['nothing set: direct', 'http://gw.example.com/', { env: {} }, null],
  ['http_proxy', 'http://gw.example.com/', { env: { http_proxy: 'http://p.corp:3128' } }, 'http://p.corp:3128/'],
  ['HTTP_PROXY', 'http://gw.example.com/', { env: { HTTP_PROXY: 'http://P.corp:3128' } }, 'http://p.corp:3128/'],
  ['lowercase first', 'http://gw.example.com/', { env: { http_proxy: 'http://low:1', HTTP_PROXY: 'http://up:2' } }, 'http://low:1/'],
  ['empty lowercase counts as unset', 'http://gw.example.com/', { env: { http_proxy: '', HTTP_PROXY: 'http://up:2' } }, 'http://up:2/'],
  ['https_proxy is not for http targets', 'http://gw.example.com/', { env: { https_proxy: 'http://s:1' } }, null],
  ['the flag wins over the environment', 'http://gw.example.com/', { proxy: 'http://flag:8', env: { http_proxy: 'http://env:9' } }, 'http://flag:8/'],
  ['the flag wins over no_proxy', 'http://127.0.0.1:8080/', { proxy: 'http://127.0.0.1:3128', env: { no_proxy: '127.0.0.1' } }, 'http://127.0.0.1:3128/'],
  ["--proxy '' turns the environment's proxy off", 'http://gw.example.com/', { proxy: '', env: { http_proxy: 'http://env:9' } }, null],
  ['no scheme gets http://', 'http://gw.example.com/', { env: { http_proxy: 'p.corp:3128' } }, 'http://p.corp:3128/'],
  ['no scheme, IPv6', 'http://gw.example.com/', { env: { http_proxy: '[::1]:3128' } }, 'http://[::1]:3128/'],
  ['no port: 80', 'http://gw.example.com/', { env: { http_proxy: 'http://p.corp' } }, 'http://p.corp/'],
  ['trailing slash is fine', 'http://gw.example.com/', { env: { http_proxy: 'http://p.corp:3128/' } }, 'http://p.corp:3128/'],
  ['user:password kept', 'http://gw.example.com/', { env: { http_proxy: 'http://bob:s%40cret@p.corp:3128' } }, 'http://bob:s%40cret@p.corp:3128/'],
  ['user:password without scheme', 'http://gw.example.com/', { env: { http_proxy: 'bob:pw@p.corp:3128' } }, 'http://bob:pw@p.corp:3128/'],
  // no_proxy
  ['no_proxy exact host', 'http://gw.example.com/', { env: { http_proxy: 'p:1', no_proxy: 'gw.example.com' } }, null],
  ['NO_PROXY', 'http://gw.example.com/', { env: { http_proxy: 'p:1', NO_PROXY: 'gw.example.com' } }, null],
  ['no_proxy before NO_PROXY', 'http://gw.example.com/', { env: { http_proxy: 'p:1', no_proxy: 'other', NO_PROXY: 'gw.example.com' } }, 'http://p:1/'],
  ['no_proxy domain suffix', 'http://gw.example.com/', { env: { http_proxy: 'p:1', no_proxy: 'example.com' } }, null],
  ['no_proxy suffix with a leading dot', 'http://gw.example.com/', { env: { http_proxy: 'p:1', no_proxy: '.example.com' } }, null],
  ['leading dot also matches the domain itself', 'http://example.com/', { env: { http_proxy: 'p:1', no_proxy: '.example.com' } }, null],
  ['*.domain works as a suffix', 'http://gw.example.com/', { env: { http_proxy: 'p:1', no_proxy: '*.example.com' } }, null],
  ['suffix only at a label boundary', 'http://gw.notexample.com/', { env: { http_proxy: 'p:1', no_proxy: 'example.com' } }, 'http://p:1/'],
  ['a subdomain entry does not match the parent', 'http://example.com/', { env: { http_proxy: 'p:1', no_proxy: 'gw.example.com' } }, 'http://p:1/'],
  ['case-insensitive', 'http://GW.Example.COM/', { env: { http_proxy: 'p:1', no_proxy: 'EXAMPLE.com' } }, null],
  ['trailing dot on the target', 'http://gw.example.com./', { env: { http_proxy: 'p:1', no_proxy: 'example.com' } }, null],
  ['comma and space separated', 'http://c.test/', { env: { http_proxy: 'p:1', no_proxy: 'a.test, b.test  c.test' } }, null],
  ['* means no proxy for anything', 'http://gw.example.com/', { env: { http_proxy: 'p:1', no_proxy: '*' } }, null],
  ['* inside a list', 'http://gw.example.com/', { env: { http_proxy: 'p:1', no_proxy: 'a.test,*' } }, null],
  ['blank no_proxy', 'http://gw.example.com/', { env: { http_proxy: 'p:1', no_proxy: ' ' } }, 'http://p:1/'],
  ['entry with the right port', 'http://gw.example.com:8080/', { env: { http_proxy: 'p:1', no_proxy: 'gw.example.com:8080' } }, null],
  ['entry with another port', 'http://gw.example.com:8081/', { env: { http_proxy: 'p:1', no_proxy: 'gw.example.com:8080' } }, 'http://p:1/'],
  ['entry :80 matches the default port', 'http://gw.example.com/', { env: { http_proxy: 'p:1', no_proxy: 'gw.example.com:80' } }, null],
  ['suffix with a port', 'http://gw.example.com:8080/', { env: { http_proxy: 'p:1', no_proxy: 'example.com:8080' } }, null],
  ['IPv4 literal', 'http://10.1.2.3:8080/', { env: { http_proxy: 'p:1', no_proxy: '10.1.2.3' } }, null],
  ['IPv4 literals are not suffixes', 'http://10.0.0.1/', { env: { http_proxy: 'p:1', no_proxy: '0.0.1' } }, 'http://p:1/'],
  ['IPv4 with a port', 'http://127.0.0.1:8080/', { env: { http_proxy: 'p:1', no_proxy: '127.0.0.1:9090' } }, 'http://p:1/'],
  ['IPv6 in brackets', 'http://[::1]:8080/', { env: { http_proxy: 'p:1', no_proxy: '[::1]' } }, null],
  ['IPv6 bare', 'http://[::1]:8080/', { env: { http_proxy: 'p:1', no_proxy: '::1' } }, null],
  ['IPv6 written longhand', 'http://[::1]/', { env: { http_proxy: 'p:1', no_proxy: '[0:0:0:0:0:0:0:1]' } }, null],
  ['IPv6 in brackets with a port', 'http://[fd00::5]:8080/', { env: { http_proxy: 'p:1', no_proxy: '[fd00::5]:8080' } }, null],
  ['IPv6 with another port', 'http://[fd00::5]:8081/', { env: { http_proxy: 'p:1', no_proxy: '[fd00::5]:8080' } }, 'http://p:1/'],
  ['CIDR /8', 'http://10.200.3.4/', { env: { http_proxy: 'p:1', no_proxy: '10.0.0.0/8' } }, null],
  ['CIDR outside', 'http://11.0.0.1/', { env: { http_proxy: 'p:1', no_proxy: '10.0.0.0/8' } }, 'http://p:1/'],
  ['CIDR /32', 'http://192.168.7.9/', { env: { http_proxy: 'p:1', no_proxy: '192.168.7.9/32' } }, null],
  ['CIDR /0', 'http://203.0.113.9/', { env: { http_proxy: 'p:1', no_proxy: '0.0.0.0/0' } }, null],
  ['CIDR /24 with a host part', 'http://172.16.5.77/', { env: { http_proxy: 'p:1', no_proxy: '172.16.5.1/24' } }, null],
  ['CIDR does not apply to names', 'http://gw.example.com/', { env: { http_proxy: 'p:1', no_proxy: '10.0.0.0/8' } }, 'http://p:1/'],
  ['a bad CIDR is skipped', 'http://10.0.0.1/', { env: { http_proxy: 'p:1', no_proxy: '10.0.0.0/40,10.0.0.0/x' } }, 'http://p:1/'],
  ['no name resolution: localhost is not 127.0.0.1', 'http://127.0.0.1/', { env: { http_proxy: 'p:1', no_proxy: 'localhost' } }, 'http://p:1/'],
  ['no_proxy without any proxy', 'http://gw.example.com/', { env: { no_proxy: 'other' } }, null],
];

for (const [what, target, opts, want] of cases) {
  test(`proxyFor: ${what}`, () => {
    const got = proxyFor(new URL(target), opts);
    assert.is(got === null ? null : got.href, want);
  });
}

test('the returned URL carries the credentials for Proxy-Authorization', () => {
  const u = proxyFor(new URL('http://gw/'), { env: { http_proxy: 'http://bob:s%40cret@p.corp:3128' } })!;
  assert.is(decodeURIComponent(u.username), 'bob');
  assert.is(decodeURIComponent(u.password), 's@cret');
  assert.is(u.hostname, 'p.corp');
  assert.is(u.port, '3128');
});

const invalid: [string, { proxy?: string; env?: Env }, string][] = [
  ['https proxy', { env: { http_proxy: 'https://p.corp:3128' } }, 'https://p.corp:3128'],
  ['socks proxy', { env: { HTTP_PROXY: 'socks5://p.corp:1080' } }, 'socks5://p.corp:1080'],
  ['port out of range', { proxy: 'http://p.corp:99999' }, 'http://p.corp:99999'],
  ['no host', { proxy: 'http://:3128' }, 'http://:3128'],
  ['a path', { proxy: 'http://p.corp:3128/path' }, 'http://p.corp:3128/path'],
  ['spaces in the host', { env: { http_proxy: 'p corp:3128' } }, 'p corp:3128'],
];

for (const [what, opts, value] of invalid) {
  test(`invalid proxy URL throws HF_ERR_OPTION naming it: ${what}`, () => {
    const e = error(() => proxyFor(new URL('http://gw.example.com/'), opts));
    assert.is(e.code, 'HF_ERR_OPTION');
    assert.ok(e.message.includes(value), e.message);
  });
}

test('the error names where the value came from, and hides a password', () => {
  const e = error(() => proxyFor(new URL('http://gw/'), { env: { HTTP_PROXY: 'https://bob:hunter2@p.corp:3128' } }));
  assert.is(e.code, 'HF_ERR_OPTION');
  assert.ok(e.message.includes('HTTP_PROXY'), e.message);
  assert.ok(e.message.includes('https://bob:***@p.corp:3128'), e.message);
  assert.not.ok(e.message.includes('hunter2'), e.message);
  const f = error(() => proxyFor(new URL('http://gw/'), { proxy: 'socks://u:p@ss@h' }));
  assert.ok(f.message.includes('--proxy') && !f.message.includes('p@ss'), f.message);
});

test('a no_proxy-matched target skips even an invalid proxy URL; an unmatched one throws', () => {
  assert.is(proxyFor(new URL('http://gw/'), { env: { http_proxy: 'https://bad', no_proxy: 'gw' } }), null);
  assert.is(error(() => proxyFor(new URL('http://gw/'), { env: { http_proxy: 'https://bad', no_proxy: 'x' } })).code, 'HF_ERR_OPTION');
});

test('http: and https: targets: https: reads https_proxy / HTTPS_PROXY (as curl), its no_proxy port is 443', () => {
  assert.is(error(() => proxyFor(new URL('ftp://gw/'), { env: {} })).code, 'HF_ERR_OPTION');
  assert.is(proxyFor(new URL('https://gw/'), { env: { http_proxy: 'http://p:3128' } }), null);
  assert.is(proxyFor(new URL('https://gw/'), { env: { https_proxy: 'http://p:3128' } })?.host, 'p:3128');
  assert.is(proxyFor(new URL('https://gw/'), { env: { HTTPS_PROXY: 'http://q:3128' } })?.host, 'q:3128');
  assert.is(proxyFor(new URL('https://gw/'), { env: { https_proxy: 'http://p:3128', no_proxy: 'gw:443' } }), null);
  assert.is(proxyFor(new URL('https://gw/'), { env: { https_proxy: 'http://p:3128', no_proxy: 'gw:80' } })?.host, 'p:3128');
});

test('process.env is the default environment', () => {
  const saved = { http_proxy: process.env.http_proxy, HTTP_PROXY: process.env.HTTP_PROXY, no_proxy: process.env.no_proxy, NO_PROXY: process.env.NO_PROXY };
  try {
    delete process.env.HTTP_PROXY;
    delete process.env.no_proxy;
    delete process.env.NO_PROXY;
    process.env.http_proxy = 'http://from-env:3128';
    assert.is(proxyFor(new URL('http://gw/'))?.href, 'http://from-env:3128/');
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test('noProxyMatches on its own', () => {
  assert.ok(noProxyMatches('a,b.example', new URL('http://x.b.example:1/')));
  assert.not.ok(noProxyMatches('', new URL('http://x/')));
  assert.not.ok(noProxyMatches(',,, ', new URL('http://x/')));
});

test.run();
