/** What a call throws, for assertions on stable error codes. */
import { isHfError } from '../../firmware/errors';

/** The HfError code `fn` throws; 'no error' if it returns; 'not an HfError: ...' for anything else. */
export function code(fn: () => unknown): string {
  return failure(fn).code;
}

/** The message of what `fn` throws, or 'no error'. */
export function message(fn: () => unknown): string {
  const f = failure(fn);
  return f.code === 'no error' ? 'no error' : f.message;
}

/** Code and message of what `fn` throws. */
export function failure(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    return { code: isHfError(e) ? e.code : `not an HfError: ${String(e)}`, message: (e as Error).message };
  }
  return { code: 'no error', message: '' };
}

/** The HfError code a promise rejects with; 'no error' if it resolves; the thing itself as text otherwise. */
export async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'no error';
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}
