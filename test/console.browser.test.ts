/**
 * The web console in a real browser: Debian's chromium (/usr/bin/chromium, headless) driven by
 * playwright-core against a management listener of the test's own, with 5 devices on loopback
 * sessions, each answering on its management channel through a real Executor over the sim board.
 *
 * - An operator logs in, sees the 5 devices live, filters by `class=pi4`, selects the 3, runs `info`
 *   and sees 3 results arrive; the 2 others have no target for that job (the API says so, and their
 *   boards never ran it). Bad arguments are refused with their code on the page; the job history and
 *   the audit view show the job, the chain verifies, and a device that drops turns offline live.
 * - A viewer sees Run disabled with the reason; the same request sent straight to the API with the
 *   viewer's cookie and CSRF token is refused (403 HF_ERR_ROLE) and nothing is made.
 * - An operator runs `exec /bin/sleep` (the test boards' slow program) on 2 devices and cancels it
 *   from the page while it runs: the page shows both targets cancelled, and so does the API.
 * - An admin adds a viewer on the Operators page (a duplicate is refused with its code on the page);
 *   the viewer, in a browser context of their own, has no Operators link, cannot run a job, and sees
 *   the API's refusal when opening /#operators anyway; the admin disables them and the viewer's next
 *   action is refused (back at the login, which refuses them too); enabled again, they log in.
 *
 * Screenshots of each step go to $HOLDFAST_SCREENSHOTS, or a fresh directory under the system's
 * temporary one; their paths are printed. Without chromium the tests are skipped with a notice,
 * except when CI or HOLDFAST_REQUIRE_CHROMIUM is set: then they fail.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Management, startManagement } from '../targets/host/gateway/manage/start';
import { silentLog } from '../targets/node/log';
import { Cleanup, tmpDir } from './support/host';
import { connectBoard, type TestBoard, testBoard } from './support/manage-device';
import { sleep, within } from './support/within';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const LABELS: Record<string, Record<string, string>> = {
  'pi-1': { class: 'pi4', site: 'berlin' },
  'pi-2': { class: 'pi4', site: 'berlin' },
  'pi-3': { class: 'pi4', site: 'paris' },
  'nuc-1': { class: 'x86', site: 'berlin' },
  'nuc-2': { class: 'x86', site: 'paris' },
};
const PI4 = ['pi-1', 'pi-2', 'pi-3'];
const X86 = ['nuc-1', 'nuc-2'];
const PASSWORD = 'correct horse battery';
/** Refusals a test asks for, which the browser logs as errors: 401 before a login, 400 for bad input. */
const EXPECTED = /status of 40[01]\b/;

/** True when chromium is there; false (skipped, with a notice) outside CI; throws in CI. */
function chromiumAvailable(label: string): boolean {
  if (fs.existsSync(CHROMIUM)) return true;
  const what = `${CHROMIUM} is not installed (apt-get install chromium)`;
  if (process.env.CI || process.env.HOLDFAST_REQUIRE_CHROMIUM) throw new Error(`${label}: ${what}; CI and HOLDFAST_REQUIRE_CHROMIUM need it`);
  console.log(`  SKIPPED ${label}: ${what}`);
  return false;
}

let shotDir: string | null = null;

/** Saves a screenshot of the page as NAME.png and prints where. */
async function shot(page: Page, name: string): Promise<void> {
  if (shotDir === null) {
    const want = process.env.HOLDFAST_SCREENSHOTS;
    if (want) fs.mkdirSync(want, { recursive: true });
    shotDir = want || fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-console-shots-'));
  }
  const file = path.join(shotDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`  screenshot ${file}`);
}

interface World {
  m: Management;
  url: string;
  boards: Map<string, TestBoard>;
  /** Ends a device's session (as a lost connection would). */
  drop(id: string): void;
  browser: Browser;
}

/** Management with an admin, an operator, a viewer and 5 online devices, and a browser; all closed by `c`. */
async function world(c: Cleanup): Promise<World> {
  const dataDir = tmpDir(c, 'holdfast-console-');
  const m = await startManagement({
    dataDir,
    listen: '127.0.0.1:0',
    log: silentLog,
    deviceIds: Object.keys(LABELS),
    labels: LABELS,
    store: { operators: { password: { cost: 1024 } } },
  });
  c.add(() => m.close());
  for (const [name, role] of [
    ['ada', 'admin'],
    ['olga', 'operator'],
    ['vic', 'viewer'],
  ] as const)
    await m.store.operators.add(name, role, PASSWORD, (op) => m.store.audit.append({ actor: 'cli:test', action: 'operator.add', target: op.name, detail: { role: op.role } }));
  const boards = new Map<string, TestBoard>();
  const drops = new Map<string, () => void>();
  for (const id of Object.keys(LABELS)) {
    const board = testBoard();
    boards.set(id, board);
    const b = await connectBoard(m, id, board, { transport: 'loopback' });
    const drop = (): void => b.close();
    drops.set(id, drop);
    c.add(drop);
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  c.add(() => browser.close());
  return { m, url: m.url as string, boards, browser, drop: (id) => drops.get(id)?.() };
}

/** A page of its own (cookies too), failing the test on any script error or CSP violation; `expected`: the refusals it asks for. */
async function openConsole(w: World, c: Cleanup, expected: RegExp = EXPECTED, at = ''): Promise<{ page: Page; problems: string[] }> {
  const context = await w.browser.newContext({ viewport: { width: 1280, height: 900 } });
  c.add(() => context.close());
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (msg) => {
    // Refusals the test asks for (401 before the login, 400 for bad arguments) are logged by the browser; anything else is a problem.
    if (msg.type() === 'error' && !expected.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  await page.goto(w.url + at);
  return { page, problems };
}

async function logIn(page: Page, name: string, password = PASSWORD): Promise<void> {
  await page.locator('#login-name').waitFor();
  await page.fill('#login-name', name);
  await page.fill('#login-password', password);
  await page.click('#login-submit');
  await page.locator('#me-role').waitFor();
}

/** The element's text ('' when there is none). */
async function text(page: Page, selector: string): Promise<string> {
  return (await page.textContent(selector)) ?? '';
}

/** Polls `check` until it holds (the page's CSP allows no string evaluation, so no waitForFunction with text). */
async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not so within ${ms} ms`);
    await sleep(25);
  }
}

/** Waits until the device table shows `n` rows, `online` of them online. */
async function rowsShown(page: Page, n: number, online: number): Promise<void> {
  await until(
    `${n} devices shown, ${online} online`,
    async () => (await page.locator('[data-testid="device-row"]').count()) === n && (await page.locator('[data-testid="device-row"][data-online="true"]').count()) === online,
  );
}

async function shownIds(page: Page): Promise<string[]> {
  return page.$$eval('[data-testid="device-row"]', (rows) => rows.map((r) => r.getAttribute('data-device-id') ?? ''));
}

test('an operator filters by label, selects 3 devices, runs info and sees 3 results; the other 2 get nothing', async () => {
  if (!chromiumAvailable('console in a browser')) return;
  const c = new Cleanup();
  try {
    await within(90_000, 'operator run', async () => {
      const w = await world(c);
      const { page, problems } = await openConsole(w, c);
      await page.locator('[data-testid="login-form"]').waitFor();
      await shot(page, '1-login');
      await logIn(page, 'olga');
      assert.is(await text(page, '#me-role'), 'operator');
      await rowsShown(page, 5, 5);
      // The info each device reported when it came online: its temperature is in the list.
      await until('every temperature shown', async () => (await page.$$eval('[data-testid="device-temperature"]', (tds) => tds.map((td) => td.textContent ?? ''))).every((t) => t.endsWith('°C')));
      await page.locator('#live[data-state="on"]').waitFor();
      await shot(page, '2-devices');

      await page.fill('#selector', 'class=pi4');
      await page.click('#filter-apply');
      await rowsShown(page, 3, 3);
      assert.equal((await shownIds(page)).sort(), [...PI4].sort());
      for (const id of PI4) await page.check(`[data-testid="select-${id}"]`);
      assert.match(await text(page, '#device-count'), '3 selected');
      await page.selectOption('#op', 'info');
      await page.fill('#args', '{}');
      assert.is(await page.isDisabled('#run'), false, 'Run is enabled for an operator with devices selected');
      await shot(page, '3-selected');
      await page.click('#run');

      await until('3 succeeded', async () => (await page.locator('[data-testid="target-row"][data-state="succeeded"]').count()) === 3);
      const jobId = await text(page, '#job-id');
      assert.match(jobId, /^j-/);
      const rows = await page.$$eval('[data-testid="target-row"]', (rs) =>
        rs.map((r) => ({ id: r.getAttribute('data-device-id'), state: r.getAttribute('data-state'), summary: r.querySelector('[data-testid="target-summary"]')?.textContent ?? '' })),
      );
      assert.equal(rows.map((r) => r.id).sort(), [...PI4].sort(), 'one row per selected device, no other');
      for (const r of rows) {
        assert.is(r.state, 'succeeded');
        assert.match(r.summary, 'holdfast sim board', `${r.id}'s info result is shown`);
        assert.match(r.summary, '°C');
      }
      assert.is(await page.isVisible('[data-testid="error"]'), false, 'no error shown');
      await shot(page, '4-results');

      // The API agrees: 3 targets, all succeeded, none for the x86 devices.
      const { job, targets } = w.m.service.job(jobId);
      assert.is(job.selector, `id=${[...PI4].sort().join('|')}`);
      assert.equal(
        targets.map((t) => [t.deviceId, t.state]),
        [...PI4].sort().map((id) => [id, 'succeeded']),
      );
      for (const id of X86) assert.is(w.m.store.jobs.target(jobId, id), null, `${id} has no target of the job`);
      // ... and so do the boards: the 3 ran the command once each, the 2 never saw it.
      for (const id of PI4)
        assert.equal(
          w.boards.get(id)?.started.filter((s) => s === jobId),
          [jobId],
          `${id} ran it once`,
        );
      for (const id of X86) assert.not.ok(w.boards.get(id)?.started.includes(jobId), `${id} never received it`);

      // A refusal is shown with its code, and makes nothing.
      await page.fill('#args', '{"disk": 7}');
      await page.click('#run');
      await page.locator('[data-testid="error"]').waitFor();
      assert.is(await text(page, '#error-code'), 'HF_ERR_BAD_ARGS');
      assert.match(await text(page, '#error-message'), 'disk');
      assert.is(w.m.store.jobs.jobs().length, 1, 'the refused job was not made');
      await shot(page, '5-refused');
      await page.click('#error-close');

      // Job history and the audit log, in the page.
      await page.click('.tab[data-tab="jobs"]');
      await page.locator(`[data-testid="job-row"][data-job-id="${jobId}"]`).waitFor();
      assert.match(await text(page, `[data-testid="job-row"][data-job-id="${jobId}"] [data-testid="job-states"]`), '3 succeeded');
      await shot(page, '6-jobs');
      await page.click('.tab[data-tab="audit"]');
      await page.locator('[data-testid="audit-row"][data-action="job.create"]').waitFor();
      await page.click('#audit-verify');
      await page.locator('#audit-verdict[data-ok="true"]').waitFor();
      assert.match(await text(page, '#audit-verdict'), 'The chain holds');
      await shot(page, '7-audit');

      // Live: a device whose session ends turns offline in the list without a reload.
      await page.click('.tab[data-tab="devices"]');
      await page.click('#filter-clear');
      await rowsShown(page, 5, 5);
      w.drop('nuc-2');
      await rowsShown(page, 5, 4);
      assert.is(await page.getAttribute('[data-testid="device-row"][data-device-id="nuc-2"]', 'data-online'), 'false');
      await shot(page, '8-offline');
      assert.equal(problems, [], 'no script error or CSP violation in the page');
    });
  } finally {
    await c.run();
  }
});

test('a viewer sees Run disabled with the reason, and the API refuses the same job with 403 HF_ERR_ROLE', async () => {
  if (!chromiumAvailable('console in a browser (viewer)')) return;
  const c = new Cleanup();
  try {
    await within(90_000, 'viewer refused', async () => {
      const w = await world(c);
      const { page, problems } = await openConsole(w, c);
      await logIn(page, 'vic');
      assert.is(await text(page, '#me-role'), 'viewer');
      await rowsShown(page, 5, 5);
      await page.fill('#selector', 'class=pi4');
      await page.click('#filter-apply');
      await rowsShown(page, 3, 3);
      for (const id of PI4) await page.check(`[data-testid="select-${id}"]`);
      assert.is(await page.isDisabled('#run'), true, 'Run is disabled for a viewer');
      assert.is(await page.isVisible('#run-reason'), true);
      assert.match(await text(page, '#run-reason'), 'vic is a viewer: running a job needs the role operator');
      await shot(page, '9-viewer');

      // The API, asked directly with the viewer's own cookie and CSRF token.
      const session = (await page.context().cookies()).find((k) => k.name === 'hf_session');
      assert.ok(session, 'the login set the session cookie');
      assert.is(session.httpOnly, true);
      assert.is(session.sameSite, 'Strict');
      const me = (await page.evaluate(() => fetch('/api/me').then((r) => r.json()))) as { role: string; csrf: string };
      assert.is(me.role, 'viewer');
      const res = await fetch(new URL('/api/jobs', w.url), {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: `hf_session=${session.value}`, 'x-csrf-token': me.csrf },
        body: JSON.stringify({ op: 'info', args: {}, selector: `id=${PI4.join('|')}` }),
      });
      assert.is(res.status, 403);
      assert.is(res.headers.get('x-holdfast-error'), 'HF_ERR_ROLE');
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.is(body.error.code, 'HF_ERR_ROLE');
      assert.match(body.error.message, 'needs the role operator');
      assert.equal(w.m.store.jobs.jobs(), [], 'no job was made');
      const refused = w.m.store.audit.latest(50).filter((e) => e.action === 'request.refused');
      assert.is(refused.length, 1, 'the attempt is audited');
      assert.is(refused[0].actor, 'vic');
      assert.is(refused[0].detail.code, 'HF_ERR_ROLE');
      for (const [id, b] of w.boards)
        assert.ok(
          b.started.every((s) => s.startsWith('hf-info-')),
          `${id} ran nothing but the gateway's own info`,
        );
      assert.equal(problems, [], 'no script error or CSP violation in the page');
    });
  } finally {
    await c.run();
  }
});

test('an operator cancels a slow job from the page: both targets cancelled, and the API agrees', async () => {
  if (!chromiumAvailable('console in a browser (cancel)')) return;
  const c = new Cleanup();
  try {
    await within(90_000, 'cancel', async () => {
      const w = await world(c);
      const { page, problems } = await openConsole(w, c);
      await logIn(page, 'olga');
      await rowsShown(page, 5, 5);
      const slow = ['pi-1', 'pi-2'];
      for (const id of slow) await page.check(`[data-testid="select-${id}"]`);
      await page.selectOption('#op', 'exec');
      // /bin/sleep on the test boards takes its argument in ms, for real: long enough to cancel it first.
      await page.fill('#args', '{"argv": ["/bin/sleep", "10000"], "timeoutMs": 10000}');
      await page.click('#run');
      await until('both running', async () => (await page.locator('[data-testid="target-row"][data-state="running"]').count()) === 2);
      const jobId = await text(page, '#job-id');
      assert.is(await page.isVisible('#job-cancel'), true, 'Cancel is offered while targets are pending');
      assert.is(await page.isDisabled('#job-cancel'), false);
      await shot(page, '10-cancel-running');

      await page.click('#job-cancel');
      await until('both cancelled', async () => (await page.locator('[data-testid="target-row"][data-state="cancelled"]').count()) === 2);
      const errors = await page.$$eval('[data-testid="target-error"]', (cs) => cs.map((x) => x.textContent ?? ''));
      assert.equal(errors, ['HF_ERR_CANCELLED', 'HF_ERR_CANCELLED'], 'each target shows why it ended');
      assert.match(await text(page, '#job-summary'), 'cancelled');
      await until('Cancel no longer offered', async () => !(await page.isVisible('#job-cancel')));
      assert.is(await page.isVisible('[data-testid="error"]'), false, 'no error shown');
      await shot(page, '11-cancelled');

      // The API agrees: the job is cancelled, both targets are, by olga; the page's Jobs view says so too.
      const { job, targets } = w.m.service.job(jobId);
      assert.type(job.cancelledAt, 'number');
      assert.equal(
        targets.map((t) => [t.deviceId, t.state, t.errorCode]),
        slow.map((id) => [id, 'cancelled', 'HF_ERR_CANCELLED']),
      );
      assert.ok(
        w.m.store.audit.latest(20).some((e) => e.action === 'job.cancel' && e.actor === 'olga' && e.target === jobId),
        'the cancel is audited',
      );
      await page.click('.tab[data-tab="jobs"]');
      await page.locator(`[data-testid="job-row"][data-job-id="${jobId}"]`).waitFor();
      assert.match(await text(page, `[data-testid="job-row"][data-job-id="${jobId}"] [data-testid="job-states"]`), '2 cancelled');
      assert.equal(problems, [], 'no script error or CSP violation in the page');
    });
  } finally {
    await c.run();
  }
});

test('an admin adds a viewer on the Operators page; the viewer has no link and no Run; disabled, their next action is refused', async () => {
  if (!chromiumAvailable('console in a browser (operators)')) return;
  const c = new Cleanup();
  try {
    await within(90_000, 'operators page', async () => {
      const w = await world(c);
      const admin = await openConsole(w, c);
      const a = admin.page;
      await logIn(a, 'ada');
      assert.is(await text(a, '#me-role'), 'admin');
      await a.click('#nav-operators');
      await a.locator('[data-testid="operator-row"][data-name="vic"]').waitFor();
      assert.equal(await a.$$eval('[data-testid="operator-row"]', (rs) => rs.map((r) => r.getAttribute('data-name'))), ['ada', 'olga', 'vic']);
      assert.is(await a.isDisabled('[data-testid="operator-row"][data-name="ada"] [data-testid="operator-toggle"]'), true, 'an admin cannot disable themselves');
      await shot(a, '12-operators');

      await a.fill('#operator-name', 'val');
      await a.selectOption('#operator-role', 'viewer');
      await a.fill('#operator-password', PASSWORD);
      await a.click('#operator-add-submit');
      const val = '[data-testid="operator-row"][data-name="val"]';
      await a.locator(val).waitFor();
      assert.is(await a.getAttribute(val, 'data-role'), 'viewer');
      assert.is(await a.getAttribute(val, 'data-disabled'), 'false');
      assert.match(await text(a, '#operators-status'), 'Added val as a viewer');
      assert.is(await a.inputValue('#operator-password'), '', 'the form is cleared');
      assert.is(w.m.store.operators.get('val')?.role, 'viewer');
      await shot(a, '13-operator-added');

      // The same name again: refused, with the API's code on the page.
      await a.fill('#operator-name', 'val');
      await a.fill('#operator-password', PASSWORD);
      await a.click('#operator-add-submit');
      await a.locator('#operators-error').waitFor();
      assert.is(await text(a, '#operators-error-code'), 'HF_ERR_OPTION');
      assert.match(await text(a, '#operators-error-message'), 'operator val exists');
      await shot(a, '14-operator-refused');

      // The viewer, in a browser context of their own.
      const viewer = await openConsole(w, c, /status of 40[013]\b/);
      const v = viewer.page;
      await logIn(v, 'val');
      assert.is(await text(v, '#me-role'), 'viewer');
      assert.is(await v.isVisible('#nav-operators'), false, 'no Operators link for a viewer');
      await rowsShown(v, 5, 5);
      for (const id of PI4) await v.check(`[data-testid="select-${id}"]`);
      assert.is(await v.isDisabled('#run'), true, 'Run is disabled for a viewer');
      assert.match(await text(v, '#run-reason'), 'val is a viewer: running a job needs the role operator');
      await shot(v, '15-new-viewer');

      // Reached anyway (by its address): the API's refusal, with its code, and the form disabled.
      await v.goto(`${w.url}#operators`);
      await v.locator('#operators-error').waitFor();
      assert.is(await text(v, '#operators-error-code'), 'HF_ERR_ROLE');
      assert.match(await text(v, '#operators-error-message'), 'needs the role admin');
      assert.match(await text(v, '[data-testid="operators-refused"]'), 'The API refused to list the operators (HF_ERR_ROLE)');
      assert.is(await v.isDisabled('#operator-add-submit'), true);
      assert.is(await v.isVisible('#nav-operators'), false);
      const refused = w.m.store.audit.latest(20).filter((e) => e.action === 'request.refused' && e.actor === 'val');
      assert.equal(refused, [], 'looking is not audited as an attempt to act');
      await shot(v, '16-viewer-operators-refused');

      // The admin disables the viewer: the row says so, and the viewer's next action is refused.
      await a.click(`${val} [data-testid="operator-toggle"]`);
      await a.locator(`${val}[data-disabled="true"]`).waitFor();
      assert.match(await text(a, `${val} [data-testid="operator-state"]`), 'disabled');
      assert.match(await text(a, '#operators-status'), 'val is disabled');
      assert.type(w.m.store.operators.get('val')?.disabledAt, 'number');
      await shot(a, '17-operator-disabled');

      const status = await v.evaluate(() => fetch('/api/me').then((r) => r.status));
      assert.is(status, 401, "the viewer's session no longer works");
      // The page's next action (its stream may have noticed first): back at the login, saying why.
      await v.click('.tab[data-tab="devices"]', { timeout: 2000 }).catch(() => {});
      await v.locator('#login').waitFor();
      assert.match(await text(v, '#login-error'), 'session ended');
      await shot(v, '18-viewer-disabled');
      await v.fill('#login-name', 'val');
      await v.fill('#login-password', PASSWORD);
      await v.click('#login-submit');
      await until('login refused', async () => (await text(v, '#login-error')).startsWith('HF_ERR_LOGIN'));
      await shot(v, '19-viewer-login-refused');

      // Enabled again, the viewer may log in (with a new session).
      await a.click(`${val} [data-testid="operator-toggle"]`);
      await a.locator(`${val}[data-disabled="false"]`).waitFor();
      await logIn(v, 'val');
      assert.is(await text(v, '#me-role'), 'viewer');
      const changes = w.m.store.audit
        .latest(50)
        .filter((e) => e.target === 'val' && e.actor === 'ada')
        .map((e) => `${e.action}${(e.detail as { disabled?: boolean }).disabled === undefined ? '' : `:${(e.detail as { disabled: boolean }).disabled}`}`);
      assert.equal(changes, ['operator.change:false', 'operator.change:true', 'operator.add'], 'every change is audited');
      assert.equal(admin.problems, [], 'no script error or CSP violation in the admin page');
      assert.equal(viewer.problems, [], 'no script error or CSP violation in the viewer page');
    });
  } finally {
    await c.run();
  }
});

test.run();
