'use strict';
// The console's Operators page (admins): who may use the console and the API, with one role each.
// Lists them (GET /api/operators), adds one (POST /api/operators), changes a role and disables or
// enables one (PUT /api/operators/NAME). The API refuses anyone but an admin (403 HF_ERR_ROLE): the
// link is shown to admins only, and a refusal is shown on the page with its code. Uses what
// console.js gives in `window.holdfastConsole`.
(() => {
  const hc = window.holdfastConsole;
  const ROLES = ['viewer', 'operator', 'admin'];
  const $ = (id) => document.getElementById(id);
  const el = hc.el;

  function isAdmin() {
    const me = hc.me();
    return me !== null && me.role === 'admin';
  }

  /** Shows an action's refusal on the page: its code and message (an ApiError, or anything with them). */
  function showProblem(e) {
    $('operators-error-code').textContent = e.code || 'ERROR';
    $('operators-error-message').textContent = e.message || String(e);
    $('operators-error').hidden = false;
    $('operators-status').hidden = true;
  }

  function showDone(text) {
    $('operators-error').hidden = true;
    const p = $('operators-status');
    p.textContent = text;
    p.hidden = false;
  }

  function clearNotes() {
    $('operators-error').hidden = true;
    $('operators-status').hidden = true;
  }

  /** Runs one API request for an action: resolves with its answer, or undefined after showing why not. */
  async function act(fn) {
    try {
      return await fn();
    } catch (e) {
      showProblem(e);
      return undefined;
    }
  }

  /** Add and change controls are for admins only; others see them disabled, with the reason. */
  function renderForm() {
    const me = hc.me();
    const why = isAdmin() || me === null ? '' : `${me.name} is a ${me.role}: managing operators needs the role admin.`;
    for (const c of $('operator-add').elements) {
      c.disabled = why !== '';
      c.title = why;
    }
  }

  async function load() {
    renderForm();
    let out;
    try {
      out = await hc.api('GET', '/api/operators');
    } catch (e) {
      showProblem(e);
      $('operator-rows').replaceChildren(el('tr', {}, el('td', { colspan: 5, class: 'problem', 'data-testid': 'operators-refused', text: `The API refused to list the operators (${e.code}).` })));
      return;
    }
    $('operators-error').hidden = true;
    const rows = out.operators.map(operatorRow);
    if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 5, class: 'muted', text: 'No operators.' })));
    $('operator-rows').replaceChildren(...rows);
  }

  function operatorRow(op) {
    const me = hc.me();
    const self = me !== null && op.name === me.name;
    const disabled = op.disabledAt !== null && op.disabledAt !== undefined;
    const selfWhy = self ? 'you cannot change your own role or disable yourself here (use holdfast operator)' : '';
    const role = el('select', { 'data-testid': 'operator-role-select', 'aria-label': `new role for ${op.name}`, disabled: self });
    for (const r of ROLES) role.append(el('option', { value: r, text: r, selected: r === op.role }));
    const apply = el('button', {
      type: 'button',
      'data-testid': 'operator-role-apply',
      disabled: self,
      title: selfWhy,
      text: 'Change role',
      onclick: () => change(op.name, { role: role.value }, `${op.name} is now a ${role.value}.`),
    });
    const toggle = el('button', {
      type: 'button',
      'data-testid': 'operator-toggle',
      disabled: self,
      title: selfWhy || (disabled ? 'let them log in again' : 'end their sessions, revoke their API tokens and stop them logging in'),
      text: disabled ? 'Enable' : 'Disable',
      onclick: () => change(op.name, { disabled: !disabled }, disabled ? `${op.name} is enabled: they may log in again.` : `${op.name} is disabled: their sessions and API tokens no longer work.`),
    });
    return el(
      'tr',
      { 'data-testid': 'operator-row', 'data-name': op.name, 'data-role': op.role, 'data-disabled': String(disabled), class: disabled ? 'disabled' : null },
      el('td', { class: 'id', 'data-testid': 'operator-name' }, op.name, self ? el('span', { class: 'muted', text: ' (you)' }) : null),
      el('td', {}, el('span', { 'data-testid': 'operator-role', text: op.role })),
      el(
        'td',
        { 'data-testid': 'operator-state', title: disabled ? new Date(op.disabledAt).toISOString() : '' },
        el('span', { class: `dot ${disabled ? 'dot-off' : 'dot-on'}` }),
        disabled ? ` disabled ${hc.ago(op.disabledAt)}` : ' enabled',
      ),
      el('td', { class: 'when', title: new Date(op.createdAt).toISOString() }, hc.ago(op.createdAt)),
      el('td', {}, el('div', { class: 'actions' }, role, apply, toggle)),
    );
  }

  async function change(name, body, done) {
    clearNotes();
    const out = await act(() => hc.api('PUT', `/api/operators/${encodeURIComponent(name)}`, body));
    if (!out) return;
    await load();
    showDone(done);
  }

  async function add(ev) {
    ev.preventDefault();
    clearNotes();
    const name = $('operator-name').value.trim();
    const role = $('operator-role').value;
    const b = $('operator-add-submit');
    b.disabled = true;
    try {
      const out = await act(() => hc.api('POST', '/api/operators', { name, role, password: $('operator-password').value }));
      if (!out) return;
      $('operator-add').reset();
      await load();
      showDone(`Added ${out.operator.name} as a ${out.operator.role}.`);
    } finally {
      renderForm();
    }
  }

  $('operator-add').addEventListener('submit', add);
  $('operators-refresh').addEventListener('click', () => {
    clearNotes();
    void load();
  });
  hc.page('operators', () => {
    clearNotes();
    void load();
  });
})();
