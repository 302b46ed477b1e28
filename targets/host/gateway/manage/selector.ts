/**
 * Device selectors: which devices a job is for, or the console's filter. A selector is terms joined by
 * `,`, all of which must hold (AND); within a term, `|` separates values any of which may match (OR):
 *
 *   *                       every device
 *   site=berlin             label `site` is `berlin`
 *   site=berlin|paris       ... is one of them
 *   class!=pi3              label `class` is absent or not `pi3` (`!=a|b`: none of them)
 *   gpio                    label `gpio` is present (any value);  !gpio  absent
 *   id=pi-1|pi-7            the device ids (`id` is not a label: it is the device's id)
 *   online / offline        has a session now / has none
 *
 * e.g. `site=berlin,class=pi4,online`. White space around terms and values is ignored. Keys are label
 * keys (devices-store.ts LABEL_KEY) or `id`; values are any characters but `,` and `|` (at most 256).
 * A selector of more than 4096 characters or 64 terms, an empty term, a bad key: HF_ERR_SELECTOR.
 */
import { ErrorCode, hfError } from '../../../../firmware/errors';
import { LABEL_KEY } from './devices-store';

export const SELECTOR_LIMITS = { maxChars: 4096, maxTerms: 64, maxValueChars: 256 } as const;

/** What a selector looks at of a device. */
export interface Selectable {
  id: string;
  labels: Record<string, string>;
  online: boolean;
}

type Term = { kind: 'all' } | { kind: 'online'; want: boolean } | { kind: 'has'; key: string; want: boolean } | { kind: 'eq'; key: string; values: string[]; want: boolean };

export interface Selector {
  /** The selector as written (trimmed). */
  readonly text: string;
  matches(d: Selectable): boolean;
  /** The only ids it can match (from its first `id=a|b` term), or null when it may match any: lets a caller read those rows alone. */
  readonly ids: readonly string[] | null;
}

/** Parses `text` (see the file comment); HF_ERR_SELECTOR names what is wrong. */
export function parseSelector(text: unknown): Selector {
  if (typeof text !== 'string') throw bad(`a selector must be text, got ${typeof text}`);
  const t = text.trim();
  if (t === '') throw bad('an empty selector matches nothing: give `*` for every device');
  if (t.length > SELECTOR_LIMITS.maxChars) throw bad(`a selector of ${t.length} characters: at most ${SELECTOR_LIMITS.maxChars}`);
  const parts = t.split(',');
  if (parts.length > SELECTOR_LIMITS.maxTerms) throw bad(`a selector of ${parts.length} terms: at most ${SELECTOR_LIMITS.maxTerms}`);
  const terms = parts.map((p, i) => parseTerm(p.trim(), i + 1));
  const byId = terms.find((x): x is Extract<Term, { kind: 'eq' }> => x.kind === 'eq' && x.key === 'id' && x.want);
  return { text: t, matches: (d) => terms.every((term) => holds(term, d)), ids: byId === undefined ? null : [...new Set(byId.values)] };
}

function parseTerm(p: string, n: number): Term {
  if (p === '') throw bad(`term ${n} is empty (two commas, or a comma at an end)`);
  if (p === '*') return { kind: 'all' };
  if (p === 'online' || p === 'offline') return { kind: 'online', want: p === 'online' };
  const ne = p.indexOf('!=');
  const eq = p.indexOf('=');
  if (eq < 0) {
    const want = !p.startsWith('!');
    const key = checkKey(want ? p : p.slice(1).trim(), n);
    if (key === 'id') throw bad(`term ${n}: \`id\` needs values (id=a|b)`);
    return { kind: 'has', key, want };
  }
  const negated = ne >= 0 && ne + 1 === eq;
  const key = checkKey(p.slice(0, negated ? ne : eq).trim(), n);
  const values = p
    .slice(eq + 1)
    .split('|')
    .map((v) => v.trim());
  for (const v of values) {
    if (v === '') throw bad(`term ${n} (${JSON.stringify(p.slice(0, 80))}): an empty value`);
    if (v.length > SELECTOR_LIMITS.maxValueChars) throw bad(`term ${n}: a value of ${v.length} characters, at most ${SELECTOR_LIMITS.maxValueChars}`);
    if (v.includes('=')) throw bad(`term ${n} (${JSON.stringify(p.slice(0, 80))}): a value may not contain =`);
  }
  return { kind: 'eq', key, values, want: !negated };
}

function checkKey(k: string, n: number): string {
  if (k === 'id' || LABEL_KEY.test(k)) return k;
  throw bad(`term ${n}: ${JSON.stringify(k.slice(0, 80))} is not a label key (a letter or digit, then letters, digits, . _ - /) nor id, online, offline or *`);
}

function holds(t: Term, d: Selectable): boolean {
  switch (t.kind) {
    case 'all':
      return true;
    case 'online':
      return d.online === t.want;
    case 'has':
      return Object.hasOwn(d.labels, t.key) === t.want;
    case 'eq': {
      const v = t.key === 'id' ? d.id : Object.hasOwn(d.labels, t.key) ? d.labels[t.key] : undefined;
      return (v !== undefined && t.values.includes(v)) === t.want;
    }
  }
}

function bad(message: string): Error {
  return hfError(ErrorCode.SELECTOR, message);
}
