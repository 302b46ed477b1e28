/**
 * Gpio on a workstation: none. A PC has no general-purpose I/O pins of its own, so every call is
 * HF_ERR_UNSUPPORTED. (A USB GPIO adapter shows up as a /dev/gpiochip*; the pi target's GpiodGpio
 * drives it, and a build that needs one can take its GPIO from there.)
 */
import { ErrorCode, hfError } from '../../firmware/errors';
import type { Gpio } from '../../hal/gpio';

const none = (): never => {
  throw hfError(ErrorCode.UNSUPPORTED, 'no GPIO on the host target (a workstation has none; the pi target drives /dev/gpiochip*)');
};

export const hostGpio: Gpio = { chips: none, read: none, write: none };
