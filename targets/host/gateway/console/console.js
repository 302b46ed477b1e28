'use strict';
// The holdfast web console: plain JavaScript the browser runs as it is (no build step, no library),
// served by the gateway's management listener under a CSP that allows only its own files. It talks
// to the management API (targets/host/gateway/manage/api.ts) on the same origin: the session cookie
// goes by itself, the CSRF token (from the login answer or GET /api/me) goes as x-csrf-token on
// every request that changes something, and GET /api/events keeps devices and job outcomes live.
// Pages kept in files of their own (operators.js) use what `window.holdfastConsole` gives them.
(() => {
  /** Operations (firmware/manage/ops.ts OPS), each with example arguments and a line of help. */
  const OPS = {
    info: { args: {}, help: 'model, temperature, memory, load, uptime, disk, interfaces; {"disk": "/data"} for another filesystem' },
    exec: { args: { argv: ['/bin/true'] }, help: "a program from the device's allow-list: {argv: [program, ...args], timeoutMs?}" },
    'config.get': { args: {}, help: "the device's config" },
    'config.set': { args: { config: {} }, help: 'replaces the whole config: {config: {...}}' },
    'gpio.read': { args: { chip: 'gpiochip0', line: 0 }, help: 'a GPIO line by chip label and offset: {chip, line}' },
    'gpio.write': { args: { chip: 'gpiochip0', line: 0, value: 1 }, help: 'sets a GPIO line: {chip, line, value: 0|1}' },
    'file.get': { args: { path: '/srv/file' }, help: 'a file under an allowed directory: {path}' },
    'file.put': { args: { path: '/srv/file', data: '' }, help: 'writes a file under an allowed directory: {path, data: base64, mode?}' },
    restart: { args: {}, help: 'answers, then restarts the device' },
    update: { args: { bundle: '', sha256: '' }, help: 'a new device bundle: {bundle: base64, sha256: hex}' },
  };
  const FINAL = ['succeeded', 'failed', 'timed-out', 'cancelled', 'expired'];
  const RANK = { queued: 0, sent: 1, running: 2 };
  const RUN_ROLES = ['operator', 'admin'];

  const state = {
    me: null,
    csrf: null,
    selector: '',
    /** Devices shown, by id (what GET /api/devices?selector= gave, kept live by events). */
    devices: new Map(),
    selected: new Set(),
    /** The job shown under "Run", and its targets by device id. */
    job: null,
    targets: new Map(),
    tab: 'devices',
    events: null,
    timers: new Map(),
  };

  const $ = (id) => document.getElementById(id);

  /** An element with attributes and children (text or elements); never parses HTML. */
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid instanceof Node ? kid : String(kid));
    return e;
  }

  /** Runs `fn` once, `ms` after the last of calls made under `key`. */
  function later(key, ms, fn) {
    clearTimeout(state.timers.get(key));
    state.timers.set(
      key,
      setTimeout(() => {
        state.timers.delete(key);
        fn();
      }, ms),
    );
  }

  // --- the API --------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /** One API request; resolves with its JSON, or rejects with an ApiError carrying the API's code. */
  async function api(method, path, body) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && state.csrf) headers['x-csrf-token'] = state.csrf;
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, 'NETWORK', `the gateway did not answer (${e.message})`);
    }
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    if (!res.ok) {
      const err = data?.error ? data.error : { code: res.headers.get('x-holdfast-error') || `HTTP_${res.status}`, message: res.statusText };
      const e = new ApiError(res.status, err.code, err.message);
      if (res.status === 401 && path !== '/api/login' && state.me !== null) loggedOut('Your session ended: log in again.');
      throw e;
    }
    return data;
  }

  function showError(e) {
    $('error-code').textContent = e.code || 'ERROR';
    $('error-message').textContent = e.message || String(e);
    $('error').hidden = false;
  }

  function clearError() {
    $('error').hidden = true;
  }

  /** Runs an API call for a button or form: errors are shown, never thrown. */
  async function attempt(fn) {
    try {
      return await fn();
    } catch (e) {
      showError(e);
      return undefined;
    }
  }

  // --- login ----------------------------------------------------------------------------------

  async function start() {
    fillOps();
    wire();
    try {
      const me = await api('GET', '/api/me');
      loggedIn(me);
    } catch (e) {
      if (e.status !== 401) showError(e);
      loggedOut(null);
    }
  }

  function loggedIn(me) {
    state.me = { name: me.name, role: me.role };
    state.csrf = me.csrf;
    $('login').hidden = true;
    $('nav').hidden = false;
    $('me').hidden = false;
    $('logout').hidden = false;
    $('me').replaceChildren(el('strong', { text: me.name }), ' ', el('span', { class: `role role-${me.role}`, id: 'me-role', 'data-testid': 'me-role', text: me.role }));
    document.body.dataset.role = me.role;
    $('nav-operators').hidden = me.role !== 'admin';
    clearError();
    showTab(tabFromHash() || 'devices');
    renderRun();
    listen();
    void loadDevices();
  }

  function loggedOut(message) {
    state.me = null;
    state.csrf = null;
    if (state.events !== null) state.events.close();
    state.events = null;
    setLive('off');
    state.devices.clear();
    state.selected.clear();
    state.job = null;
    state.targets.clear();
    $('job').hidden = true;
    for (const id of ['nav', 'me', 'logout']) $(id).hidden = true;
    for (const p of document.querySelectorAll('.tab-panel')) p.hidden = true;
    delete document.body.dataset.role;
    $('login').hidden = false;
    $('login-password').value = '';
    const p = $('login-error');
    p.hidden = message === null;
    p.textContent = message || '';
    $('login-name').focus();
  }

  async function login(ev) {
    ev.preventDefault();
    const p = $('login-error');
    p.hidden = true;
    $('login-submit').disabled = true;
    try {
      const me = await api('POST', '/api/login', { name: $('login-name').value, password: $('login-password').value });
      $('login-password').value = '';
      loggedIn(me);
    } catch (e) {
      p.textContent = `${e.code}: ${e.message}`;
      p.hidden = false;
    } finally {
      $('login-submit').disabled = false;
    }
  }

  async function logout() {
    await attempt(() => api('POST', '/api/logout', {}));
    loggedOut('Logged out.');
  }

  // --- the event stream -----------------------------------------------------------------------

  function setLive(s) {
    const l = $('live');
    l.dataset.state = s;
    l.textContent = { on: 'live', connecting: 'reconnecting', off: 'offline' }[s];
  }

  function listen() {
    if (state.events !== null) state.events.close();
    const es = new EventSource('/api/events');
    state.events = es;
    setLive('connecting');
    es.addEventListener('hello', () => {
      setLive('on');
      // Whatever changed while the stream was down: read it again.
      void loadDevices();
      if (state.job !== null) void loadJob(state.job.id);
    });
    es.addEventListener('device', (m) => onDevice(JSON.parse(m.data)));
    es.addEventListener('targets', (m) => onTargets(JSON.parse(m.data)));
    es.addEventListener('job', (m) => onJob(JSON.parse(m.data)));
    es.addEventListener('error', () => {
      if (state.events !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        // Refused (a session that ended, too many streams): ask who we are, then try again.
        setLive('off');
        later('relisten', 3000, () => {
          if (state.me === null) return;
          api('GET', '/api/me').then(
            () => listen(),
            () => {},
          );
        });
      } else setLive('connecting');
    });
  }

  function onDevice(d) {
    if (state.devices.has(d.id) || state.selector === '') {
      state.devices.set(d.id, d);
      renderDevice(d);
      renderCounts();
    }
    // Whether it matches the filter now (online, offline, labels) is the API's to say.
    if (state.selector !== '') later('devices', 300, loadDevices);
  }

  /** A batch of one job's target changes ({job, targets}): merged in one pass, then one render. */
  function onTargets(b) {
    if (state.job !== null && b.job === state.job.id) {
      let omitted = false;
      for (const t of b.targets) {
        mergeTarget({ ...t, jobId: b.job }, true);
        if (t.resultOmitted && FINAL.includes(t.state)) omitted = true;
      }
      renderTargets();
      renderJobHead();
      if (omitted) later('job', 200, () => loadJob(b.job));
    }
    if (state.tab === 'jobs') later('jobs', 500, loadJobs);
  }

  function onJob(j) {
    if (state.job !== null && j.id === state.job.id) {
      state.job = j;
      renderJobHead();
    }
    if (state.tab === 'jobs') later('jobs', 200, loadJobs);
  }

  // --- devices --------------------------------------------------------------------------------

  async function loadDevices() {
    if (state.me === null) return;
    const sel = state.selector;
    try {
      const out = await api('GET', sel === '' ? '/api/devices' : `/api/devices?selector=${encodeURIComponent(sel)}`);
      if (sel !== state.selector) return; // a newer filter is loading
      state.devices = new Map(out.devices.map((d) => [d.id, d]));
      for (const id of [...state.selected]) if (!state.devices.has(id)) state.selected.delete(id);
      renderDevices();
    } catch (e) {
      showError(e);
    }
  }

  function temperature(d) {
    const t = d.info ? d.info.cpu_temperature_c : undefined;
    if (typeof t === 'number') return `${t.toFixed(1)} °C`;
    if (t && typeof t === 'object' && t.error) return '—';
    return '';
  }

  function ago(ms) {
    if (ms === null || ms === undefined) return 'never';
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 5) return 'just now';
    if (s < 120) return `${s} s ago`;
    if (s < 7200) return `${Math.round(s / 60)} min ago`;
    if (s < 172800) return `${Math.round(s / 3600)} h ago`;
    return new Date(ms).toLocaleDateString();
  }

  function deviceRow(d) {
    const box = el('input', { type: 'checkbox', class: 'device-select', 'data-testid': `select-${d.id}`, 'aria-label': `select ${d.id}`, checked: state.selected.has(d.id) });
    box.addEventListener('change', () => {
      if (box.checked) state.selected.add(d.id);
      else state.selected.delete(d.id);
      renderCounts();
    });
    const labels = el('td', { class: 'labels' });
    for (const [k, v] of Object.entries(d.labels || {}).sort()) {
      const term = `${k}=${v}`;
      labels.append(el('button', { type: 'button', class: 'label', title: `filter by ${term}`, text: term, onclick: () => addTerm(term) }), ' ');
    }
    const online = d.online ? (d.managed === false ? 'online, unmanaged' : 'online') : 'offline';
    return el(
      'tr',
      { 'data-testid': 'device-row', 'data-device-id': d.id, 'data-online': String(d.online), class: d.online ? 'on' : 'off' },
      el('td', { class: 'narrow' }, box),
      el('td', { class: 'id', 'data-testid': 'device-id' }, d.id),
      labels,
      el('td', { 'data-testid': 'device-state' }, el('span', { class: `dot ${d.online ? 'dot-on' : 'dot-off'}` }), ` ${online}`),
      el('td', { 'data-testid': 'device-transport' }, d.transport || ''),
      el('td', { 'data-testid': 'device-seen', 'data-at': d.lastSeen, title: d.lastSeen ? new Date(d.lastSeen).toISOString() : '' }, d.online ? 'now' : ago(d.lastSeen)),
      el('td', { class: 'num', 'data-testid': 'device-temperature' }, temperature(d)),
    );
  }

  function renderDevices() {
    const rows = [...state.devices.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(deviceRow);
    if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 7, class: 'muted', text: state.selector === '' ? 'No devices are known yet.' : `No device matches ${state.selector}.` })));
    $('device-rows').replaceChildren(...rows);
    renderCounts();
  }

  function renderDevice(d) {
    const old = [...$('device-rows').children].find((r) => r.dataset.deviceId === d.id);
    if (old) old.replaceWith(deviceRow(d));
    else renderDevices();
  }

  function renderCounts() {
    const n = state.devices.size;
    const on = [...state.devices.values()].filter((d) => d.online).length;
    const sel = state.selected.size;
    $('device-count').textContent = `${n} device${n === 1 ? '' : 's'}${state.selector ? ` matching ${state.selector}` : ''}, ${on} online, ${sel} selected`;
    const all = $('select-all');
    all.checked = n > 0 && sel === n;
    all.indeterminate = sel > 0 && sel < n;
    renderRun();
  }

  function addTerm(term) {
    const terms = state.selector === '' ? [] : state.selector.split(',').map((t) => t.trim());
    if (!terms.includes(term)) terms.push(term);
    $('selector').value = terms.join(',');
    applyFilter();
  }

  function applyFilter(ev) {
    if (ev) ev.preventDefault();
    state.selector = $('selector').value.trim();
    state.selected.clear();
    clearError();
    void loadDevices();
  }

  // --- running a job --------------------------------------------------------------------------

  function fillOps() {
    const s = $('op');
    for (const name of Object.keys(OPS)) s.append(el('option', { value: name, text: name }));
    s.value = 'info';
    showOpHelp(false);
  }

  function showOpHelp(fill) {
    const o = OPS[$('op').value];
    $('op-help').textContent = o ? o.help : '';
    if (fill && o) $('args').value = JSON.stringify(o.args, null, 1).replace(/\n\s*/g, ' ');
  }

  /** The job's selector: the devices ticked, or else the filter; null when neither. */
  function runSelector() {
    if (state.selected.size > 0) return `id=${[...state.selected].sort().join('|')}`;
    if (state.selector !== '') return state.selector;
    return null;
  }

  function renderRun() {
    const b = $('run');
    const why = $('run-reason');
    const sel = runSelector();
    let reason = '';
    if (state.me !== null && !RUN_ROLES.includes(state.me.role)) reason = `${state.me.name} is a ${state.me.role}: running a job needs the role operator or admin.`;
    else if (sel === null) reason = 'Select devices (or filter them) to run an operation on.';
    b.disabled = reason !== '';
    b.title = reason;
    why.textContent = reason;
    why.hidden = reason === '';
    $('run-target').textContent =
      sel === null ? '' : state.selected.size > 0 ? `on the ${state.selected.size} selected device${state.selected.size === 1 ? '' : 's'}` : `on every device matching ${sel} when the job is made`;
    $('job-cancel').disabled = state.me === null || !RUN_ROLES.includes(state.me.role);
  }

  async function run(ev) {
    ev.preventDefault();
    clearError();
    const sel = runSelector();
    if (sel === null) return;
    let args;
    try {
      args = JSON.parse($('args').value.trim() || '{}');
    } catch (e) {
      showError({ code: 'ARGS_JSON', message: `the arguments are not JSON: ${e.message}` });
      return;
    }
    const b = $('run');
    b.disabled = true;
    try {
      const out = await attempt(() => api('POST', '/api/jobs', { op: $('op').value, args, selector: sel }));
      if (out) showJob(out.job, []);
    } finally {
      renderRun();
    }
  }

  function showJob(job, targets) {
    state.job = job;
    state.targets = new Map();
    for (const t of targets) state.targets.set(t.deviceId, t);
    $('job').hidden = false;
    renderJobHead();
    renderTargets();
    void loadJob(job.id);
  }

  async function loadJob(id) {
    try {
      const out = await api('GET', `/api/jobs/${encodeURIComponent(id)}`);
      if (state.job === null || state.job.id !== id) return;
      state.job = out.job;
      for (const t of out.targets) mergeTarget(t, true);
      renderJobHead();
      renderTargets();
    } catch (e) {
      showError(e);
    }
  }

  function rank(s) {
    return s in RANK ? RANK[s] : 3;
  }

  /** Keeps the latest state of a target: events and the job's record may arrive in either order. */
  function mergeTarget(t, quiet) {
    const old = state.targets.get(t.deviceId);
    if (old !== undefined && rank(old.state) > rank(t.state)) return;
    if (old !== undefined && rank(old.state) === 3 && old.result !== undefined && t.result === undefined) return;
    state.targets.set(t.deviceId, { ...old, ...t });
    if (!quiet) {
      renderTargets();
      renderJobHead();
    }
  }

  function renderJobHead() {
    const j = state.job;
    $('job-id').textContent = j.id;
    const counts = {};
    for (const t of state.targets.values()) counts[t.state] = (counts[t.state] || 0) + 1;
    const parts = Object.entries(counts).map(([s, n]) => `${n} ${s}`);
    $('job-summary').textContent =
      `${j.op} on ${j.selector}, by ${j.createdBy} at ${new Date(j.createdAt).toLocaleTimeString()}${j.cancelledAt ? ', cancelled' : ''} — ${parts.join(', ') || 'no targets'}`;
    const pending = [...state.targets.values()].some((t) => !FINAL.includes(t.state));
    $('job-cancel').hidden = !pending;
  }

  function decode64(s) {
    try {
      return new TextDecoder().decode(Uint8Array.from(atob(s), (c) => c.charCodeAt(0)));
    } catch {
      return s;
    }
  }

  /** A line saying what the result is, for the operations whose results have a shape. */
  function summary(op, r) {
    if (r === null || typeof r !== 'object') return r === undefined ? '' : JSON.stringify(r);
    if (op === 'info') {
      const bits = [];
      if (typeof r.model === 'string') bits.push(r.model);
      if (typeof r.cpu_temperature_c === 'number') bits.push(`${r.cpu_temperature_c.toFixed(1)} °C`);
      if (typeof r.uptime_s === 'number') bits.push(`up ${Math.round(r.uptime_s / 60)} min`);
      if (Array.isArray(r.load)) bits.push(`load ${r.load.map((x) => x.toFixed(2)).join(' ')}`);
      return bits.join(', ');
    }
    if (op === 'exec') {
      const out = typeof r.stdout === 'string' ? decode64(r.stdout).trim() : '';
      return `exit ${r.exitCode === null ? r.signal : r.exitCode}${out ? `: ${out.slice(0, 200)}` : ''}${r.truncated ? ' (truncated)' : ''}`;
    }
    if (op === 'gpio.read') return `value ${r.value}`;
    if (op === 'file.put') return `${r.bytes} bytes written`;
    if (op === 'file.get' && typeof r.data === 'string') return `${Math.floor((r.data.length * 3) / 4)} bytes`;
    if (op === 'restart') return `restarting in ${r.delayMs} ms`;
    return '';
  }

  function outcomeCell(t) {
    const td = el('td', { class: 'outcome', 'data-testid': 'target-outcome' });
    if (t.errorCode) {
      td.append(el('code', { class: 'problem', 'data-testid': 'target-error', text: t.errorCode }), ' ', t.errorMessage || '');
      return td;
    }
    if (t.resultOmitted && t.result === undefined) {
      td.append(el('span', { class: 'muted', text: 'a large result: loading…' }));
      return td;
    }
    if (t.result === undefined || t.result === null) return td;
    td.append(el('span', { 'data-testid': 'target-summary', text: summary(state.job.op, t.result) }));
    td.append(el('details', {}, el('summary', { text: 'result' }), el('pre', { 'data-testid': 'target-result', text: JSON.stringify(t.result, null, 2) })));
    return td;
  }

  function renderTargets() {
    const rows = [...state.targets.values()]
      .sort((a, b) => (a.deviceId < b.deviceId ? -1 : 1))
      .map((t) =>
        el(
          'tr',
          { 'data-testid': 'target-row', 'data-device-id': t.deviceId, 'data-state': t.state },
          el('td', { class: 'id' }, t.deviceId),
          el('td', {}, el('span', { class: `state state-${t.state}`, 'data-testid': 'target-state', text: t.state })),
          el('td', { class: 'num' }, String(t.sends || 0)),
          outcomeCell(t),
        ),
      );
    $('job-targets').replaceChildren(...rows);
  }

  async function cancelJob() {
    if (state.job === null) return;
    clearError();
    const out = await attempt(() => api('POST', `/api/jobs/${encodeURIComponent(state.job.id)}/cancel`, {}));
    if (out) void loadJob(out.job.id);
  }

  // --- job history and audit ------------------------------------------------------------------

  async function loadJobs() {
    const out = await attempt(() => api('GET', '/api/jobs?limit=100'));
    if (!out) return;
    const rows = out.jobs.map((j) =>
      el(
        'tr',
        { 'data-testid': 'job-row', 'data-job-id': j.id, class: 'clickable', title: 'show this job', onclick: () => openJob(j) },
        el('td', { class: 'when', title: new Date(j.createdAt).toISOString() }, new Date(j.createdAt).toLocaleString()),
        el('td', {}, el('code', { text: j.id })),
        el('td', { text: j.op }),
        el('td', {}, el('code', { text: j.selector })),
        el('td', { text: j.createdBy }),
        el(
          'td',
          { 'data-testid': 'job-states' },
          ...Object.entries(j.states || {}).map(([s, n]) => el('span', { class: `state state-${s}`, text: `${n} ${s}` })),
          j.cancelledAt ? el('span', { class: 'muted', text: ' (cancelled)' }) : null,
        ),
      ),
    );
    if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 6, class: 'muted', text: 'No jobs yet.' })));
    $('job-rows').replaceChildren(...rows);
  }

  function openJob(j) {
    showTab('devices');
    showJob(j, []);
    $('job').scrollIntoView({ block: 'start' });
  }

  async function loadAudit() {
    const out = await attempt(() => api('GET', '/api/audit?limit=200'));
    if (!out) return;
    const rows = out.entries.map((e) =>
      el(
        'tr',
        { 'data-testid': 'audit-row', 'data-seq': e.seq, 'data-action': e.action },
        el('td', { class: 'num', text: String(e.seq) }),
        el('td', { class: 'when', text: e.at }),
        el('td', { text: e.actor }),
        el('td', {}, el('code', { text: e.action })),
        el('td', {}, el('code', { text: e.target })),
        el('td', { class: 'detail' }, Object.keys(e.detail || {}).length ? JSON.stringify(e.detail) : ''),
      ),
    );
    if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 6, class: 'muted', text: 'The audit log is empty.' })));
    $('audit-rows').replaceChildren(...rows);
  }

  async function verifyAudit() {
    const p = $('audit-verdict');
    const v = await attempt(() => api('GET', '/api/audit/verify'));
    if (!v) return;
    p.hidden = false;
    p.dataset.ok = String(v.ok);
    p.className = v.ok ? 'good' : 'problem';
    p.textContent = v.ok
      ? `The chain holds: ${v.count} entries, head #${v.head.seq} ${v.head.hash.slice(0, 16)}…`
      : `The chain is broken at entry #${v.seq} (${v.problem}): ${v.message}. Head #${v.head.seq} ${v.head.hash.slice(0, 16)}…`;
  }

  // --- wiring ---------------------------------------------------------------------------------

  /** Pages in files of their own, by tab name: what to run when the tab is shown. */
  const pages = new Map();

  /** The tab named by the address's #fragment (e.g. /#operators), or null. */
  function tabFromHash() {
    const name = location.hash.slice(1);
    return name !== '' && $(`tab-${name}`) !== null ? name : null;
  }

  function showTab(name) {
    state.tab = name;
    for (const b of document.querySelectorAll('.tab')) {
      if (b.dataset.tab === name) b.setAttribute('aria-current', 'page');
      else b.removeAttribute('aria-current');
    }
    for (const p of document.querySelectorAll('.tab-panel')) p.hidden = p.id !== `tab-${name}`;
    if (name === 'jobs') void loadJobs();
    if (name === 'audit') void loadAudit();
    if (pages.has(name)) pages.get(name)();
  }

  function wire() {
    $('login-form').addEventListener('submit', login);
    $('logout').addEventListener('click', logout);
    $('error-close').addEventListener('click', clearError);
    $('filter-form').addEventListener('submit', applyFilter);
    $('filter-clear').addEventListener('click', () => {
      $('selector').value = '';
      applyFilter();
    });
    $('select-all').addEventListener('change', (ev) => {
      if (ev.target.checked) for (const id of state.devices.keys()) state.selected.add(id);
      else state.selected.clear();
      renderDevices();
    });
    $('op').addEventListener('change', () => showOpHelp(true));
    $('run-form').addEventListener('submit', run);
    $('job-cancel').addEventListener('click', cancelJob);
    $('jobs-refresh').addEventListener('click', loadJobs);
    $('audit-refresh').addEventListener('click', loadAudit);
    $('audit-verify').addEventListener('click', verifyAudit);
    for (const b of document.querySelectorAll('.tab')) b.addEventListener('click', () => showTab(b.dataset.tab));
    window.addEventListener('hashchange', () => {
      const name = tabFromHash();
      if (state.me !== null && name !== null) showTab(name);
    });
    // "3 s ago" stays true.
    setInterval(() => {
      for (const td of document.querySelectorAll('[data-testid="device-seen"]')) {
        const row = td.closest('tr');
        if (row && row.dataset.online !== 'true' && td.dataset.at) td.textContent = ago(Number(td.dataset.at));
      }
    }, 5000);
  }

  /** What operators.js (and any other page's file) may use; `page(name, show)` runs `show` whenever tab `name` is shown. */
  window.holdfastConsole = Object.freeze({
    api,
    el,
    ago,
    me: () => state.me,
    page: (name, show) => {
      pages.set(name, show);
      if (state.me !== null && state.tab === name) show();
    },
  });

  start();
})();
