/**
 * Selectors (targets/host/gateway/manage/selector.ts): what each term matches, AND by commas, the
 * ids a selector is limited to (so a job for named devices reads only their rows), and bad input as
 * HF_ERR_SELECTOR naming the term.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isHfError } from '../firmware/errors';
import { parseSelector, type Selectable, SELECTOR_LIMITS } from '../targets/host/gateway/manage/selector';

const fleet: Selectable[] = [
  { id: 'pi-1', labels: { site: 'berlin', class: 'pi4', gpio: 'yes' }, online: true },
  { id: 'pi-2', labels: { site: 'berlin', class: 'pi4' }, online: false },
  { id: 'x-1', labels: { site: 'oslo', class: 'x86' }, online: true },
];
const pick = (s: string): string[] => fleet.filter((d) => parseSelector(s).matches(d)).map((d) => d.id);

test('terms and their conjunction', () => {
  assert.equal(pick('*'), ['pi-1', 'pi-2', 'x-1']);
  assert.equal(pick('site=berlin'), ['pi-1', 'pi-2']);
  assert.equal(pick('site=berlin|oslo,class=x86'), ['x-1']);
  assert.equal(pick('class!=pi4'), ['x-1']);
  assert.equal(pick('gpio'), ['pi-1']);
  assert.equal(pick('!gpio'), ['pi-2', 'x-1']);
  assert.equal(pick('online'), ['pi-1', 'x-1']);
  assert.equal(pick('offline , site = berlin'), ['pi-2']);
  assert.equal(pick('id=pi-2|x-1'), ['pi-2', 'x-1']);
  assert.equal(pick('id!=pi-1'), ['pi-2', 'x-1']);
  assert.equal(pick('site=paris'), []);
});

test('the ids a selector is limited to', () => {
  assert.equal(parseSelector('id=pi-2|x-1|pi-2,online').ids, ['pi-2', 'x-1']);
  assert.is(parseSelector('site=berlin').ids, null);
  assert.is(parseSelector('id!=pi-1').ids, null, 'a negated id term limits nothing');
  assert.is(parseSelector('*').ids, null);
});

test('bad selectors: HF_ERR_SELECTOR naming what is wrong', () => {
  const cases: [unknown, RegExp][] = [
    [42, /must be text/],
    ['', /empty selector/],
    ['site=berlin,', /term 2 is empty/],
    ['site==x', /may not contain =/],
    ['site=', /empty value/],
    ['id', /`id` needs values/],
    ['-bad=1', /not a label key/],
    ['x'.repeat(SELECTOR_LIMITS.maxChars + 1), /at most 4096/],
    [
      Array(SELECTOR_LIMITS.maxTerms + 1)
        .fill('a')
        .join(','),
      /at most 64/,
    ],
    [`k=${'v'.repeat(SELECTOR_LIMITS.maxValueChars + 1)}`, /at most 256/],
  ];
  for (const [input, re] of cases) {
    try {
      parseSelector(input);
      assert.unreachable(`${String(input).slice(0, 40)} was taken`);
    } catch (e) {
      assert.ok(isHfError(e) && e.code === 'HF_ERR_SELECTOR', String(e));
      assert.match((e as Error).message, re);
    }
  }
});

test.run();
