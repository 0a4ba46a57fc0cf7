// Application Tokens page of mosquitto_tokens_console.
//
// Everything shown comes from the API and is user data: the DOM is built with
// createElement/textContent only, never innerHTML. The page runs under a strict
// CSP, so every listener is attached here.
'use strict';

(function () {
  const STORAGE_KEY = 'mqttTokensConsoleToken';
  // The daemon answers 504 itself after a few seconds; this only catches a
  // connection that hangs without any answer.
  const REQUEST_TIMEOUT_MS = 20000;
  // Section 1 of the spec: the daemon refuses anything else with 401 anyway,
  // but a typo is better reported before a round trip.
  const TOKEN_SHAPE = /^mqtk_[A-Za-z0-9_-]{43}[0-9a-f]{8}$/;
  const NAME_MAX = 30;
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);
  const els = {
    error: $('error'),
    logout: $('logout'),
    loginView: $('login-view'),
    loginForm: $('login-form'),
    loginToken: $('login-token'),
    consoleView: $('console-view'),
    newToken: $('new-token'),
    refresh: $('refresh'),
    count: $('token-count'),
    body: $('tokens-body'),
    dialog: $('token-dialog'),
    dialogTitle: $('dialog-title'),
    dialogError: $('dialog-error'),
    form: $('token-form'),
    name: $('token-name'),
    role: $('token-role'),
    validUntil: $('token-valid-until'),
    clientId: $('token-client-id'),
    timeZone: $('time-zone'),
    create: $('create-token'),
    cancel: $('cancel-dialog'),
    result: $('token-result'),
    createdName: $('created-name'),
    createdToken: $('created-token'),
    copy: $('copy-token'),
    copyStatus: $('copy-status'),
    close: $('close-dialog'),
  };

  // Bumped at every log in and log out, so that an answer to a request made
  // with a previous token is dropped instead of being shown.
  let sessionEpoch = 0;
  let creating = false;

  // ---- session -----------------------------------------------------------

  function getToken() {
    try {
      return sessionStorage.getItem(STORAGE_KEY);
    } catch (e) {
      return null;
    }
  }

  function setToken(token) {
    try {
      sessionStorage.setItem(STORAGE_KEY, token);
      return true;
    } catch (e) {
      return false;
    }
  }

  function forgetToken() {
    try {
      sessionStorage.removeItem(STORAGE_KEY);
    } catch (e) {
      // Nothing was stored then.
    }
  }

  // ---- messages ----------------------------------------------------------

  function showError(message) {
    els.error.textContent = message;
    els.error.hidden = false;
    // Outside a modal dialog the page is inert, so the dialog repeats it.
    if (els.dialog.open) {
      els.dialogError.textContent = message;
      els.dialogError.hidden = false;
    }
  }

  function clearError() {
    els.error.textContent = '';
    els.error.hidden = true;
    els.dialogError.textContent = '';
    els.dialogError.hidden = true;
  }

  function setFieldError(input, message) {
    const p = $(input.id + '-error');
    p.textContent = message;
    p.hidden = !message;
    if (message) {
      input.setAttribute('aria-invalid', 'true');
    } else {
      input.removeAttribute('aria-invalid');
    }
  }

  // ---- API ---------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, status, code) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function messageFor(status, data) {
    if (status === 403) return 'This token may not manage tokens (403)';
    if (status === 502) return 'The console cannot reach the broker (502)';
    if (status === 504) return 'The broker did not answer in time (504)';
    if (data && typeof data.error === 'string' && data.error) {
      return typeof data.code === 'string' && data.code
        ? data.error + ' (' + data.code + ')'
        : data.error;
    }
    return 'The request failed (HTTP ' + status + ')';
  }

  async function api(method, path, body) {
    const token = getToken();
    if (!token) throw new ApiError('', 401, 'unauthorized');
    const epoch = sessionEpoch;
    const headers = { Authorization: 'Bearer ' + token, Accept: 'application/json' };
    const init = { method, headers, cache: 'no-store', credentials: 'omit' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    init.signal = controller.signal;

    let res;
    let data = null;
    try {
      res = await fetch(path, init);
      const text = await res.text();
      if (text) {
        try {
          data = JSON.parse(text);
        } catch (e) {
          data = null;
        }
      }
    } catch (e) {
      if (epoch !== sessionEpoch) throw new ApiError('', 0, 'stale');
      throw new ApiError(e && e.name === 'AbortError'
        ? 'The console server did not answer in time.'
        : 'Network error: the console server cannot be reached.', 0, 'network');
    } finally {
      clearTimeout(timer);
    }
    if (epoch !== sessionEpoch) throw new ApiError('', 0, 'stale');
    if (res.ok) return { status: res.status, data };
    const code = data && typeof data.code === 'string' ? data.code : '';
    throw new ApiError(messageFor(res.status, data), res.status, code);
  }

  function handleFailure(err) {
    if (err instanceof ApiError && err.code === 'stale') return;
    if (err instanceof ApiError && err.status === 401) {
      logout();
      showError('This token was refused: it is unknown, expired, revoked or not an ' +
        'application token. Log in with a valid application token.');
      els.loginToken.focus();
      return;
    }
    showError(err && err.message ? err.message : String(err));
  }

  // ---- overview ----------------------------------------------------------

  function text(value) {
    return value === null || value === undefined ? '' : String(value);
  }

  function cell(cls, content) {
    const td = document.createElement('td');
    td.className = cls;
    td.textContent = content;
    return td;
  }

  function dateCell(cls, iso) {
    const td = cell(cls, '');
    const d = new Date(text(iso));
    if (iso === null || iso === undefined || Number.isNaN(d.getTime())) {
      td.textContent = text(iso);
      return td;
    }
    const time = document.createElement('time');
    time.dateTime = String(iso);
    time.title = String(iso);
    time.textContent = d.toLocaleString();
    td.append(time);
    return td;
  }

  function trashIcon() {
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('width', '18');
    svg.setAttribute('height', '18');
    svg.setAttribute('fill', 'none');
    svg.setAttribute('stroke', 'currentColor');
    svg.setAttribute('stroke-width', '2');
    svg.setAttribute('stroke-linecap', 'round');
    svg.setAttribute('stroke-linejoin', 'round');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    const path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', 'M3 6h18M8 6V4h8v2M6 6l1 14h10l1-14M10 11v6M14 11v6');
    svg.append(path);
    return svg;
  }

  function tokenRow(t) {
    const name = text(t.name);
    const hash = text(t.hash);
    const tr = document.createElement('tr');
    tr.dataset.hash = hash;

    const hashTd = cell('hash', hash.slice(0, 12));
    hashTd.title = hash;

    const status = t.status === 'valid' ? 'Valid' : t.status === 'invalid' ? 'Invalid' : text(t.status);
    const statusTd = cell('status', status);
    if (t.status === 'valid' || t.status === 'invalid') statusTd.classList.add('status-' + t.status);

    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'revoke';
    button.setAttribute('aria-label', 'Revoke ' + name);
    button.title = 'Revoke ' + name;
    button.append(trashIcon());
    button.addEventListener('click', () => revoke(name, hash, tr, button));
    const actionTd = cell('actions', '');
    actionTd.append(button);

    // Present only for a token bound to one client id; any other logs in.
    const bound = typeof t.clientId === 'string';
    const clientIdTd = cell('client-id', bound ? t.clientId : 'Any');
    if (!bound) clientIdTd.classList.add('any');

    tr.append(
      cell('name', name),
      cell('role', text(t.role)),
      cell('requested-by', text(t.requestedBy)),
      dateCell('issued-at', t.issuedAt),
      dateCell('valid-until', t.validUntil),
      t.lastUsed === null || t.lastUsed === undefined ? cell('last-used', 'Never') : dateCell('last-used', t.lastUsed),
      hashTd,
      statusTd,
      clientIdTd,
      actionTd);
    return tr;
  }

  function renderTokens(data) {
    const frag = document.createDocumentFragment();
    for (const t of data.tokens) {
      if (t && typeof t === 'object') frag.append(tokenRow(t));
    }
    if (!frag.firstChild) {
      const tr = document.createElement('tr');
      tr.className = 'empty';
      const td = cell('empty', 'No tokens');
      td.colSpan = 10;
      tr.append(td);
      frag.append(tr);
    }
    els.body.replaceChildren(frag);
    const total = typeof data.totalCount === 'number' ? data.totalCount : data.tokens.length;
    els.count.textContent = total === 1 ? '1 token' : total + ' tokens';
  }

  async function loadTokens() {
    try {
      const { data } = await api('GET', 'api/tokens');
      if (!data || !Array.isArray(data.tokens)) {
        throw new ApiError('The console sent an answer this page does not understand.', 200, 'internal');
      }
      renderTokens(data);
      clearError();
    } catch (err) {
      handleFailure(err);
    }
  }

  async function revoke(name, hash, row, button) {
    if (!window.confirm('Revoke token ' + name + '? Clients using it are disconnected at once.')) return;
    button.disabled = true;
    try {
      await api('DELETE', 'api/tokens/' + encodeURIComponent(hash));
    } catch (err) {
      button.disabled = false;
      handleFailure(err);
      return;
    }
    clearError();
    row.remove();
    // Revoking the token this page logged in with ends in a 401 here, which
    // takes the user back to the login form with the reason.
    await loadTokens();
  }

  // ---- new token dialog --------------------------------------------------

  function option(value, label) {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = label;
    return o;
  }

  // No role is preselected: picking one (admin, say) must be deliberate. The
  // placeholder is the default, so that a form reset comes back to it.
  function placeholder(label) {
    const o = option('', label);
    o.disabled = true;
    o.defaultSelected = true;
    return o;
  }

  async function loadRoles() {
    els.role.disabled = true;
    els.role.replaceChildren(placeholder('Loading roles…'));
    els.role.value = '';
    try {
      const { data } = await api('GET', 'api/roles');
      const roles = (data && Array.isArray(data.roles) ? data.roles : [])
        .map((r) => (r && typeof r.rolename === 'string' ? r.rolename : null))
        .filter((r) => r !== null);
      const frag = document.createDocumentFragment();
      frag.append(placeholder(roles.length ? 'Choose a role…' : 'No roles'));
      for (const r of roles) frag.append(option(r, r));
      els.role.replaceChildren(frag);
      els.role.value = '';
      setFieldError(els.role, roles.length ? '' : 'No roles exist yet: create one first.');
      clearError();
    } catch (err) {
      els.role.replaceChildren(placeholder('Roles could not be loaded'));
      els.role.value = '';
      handleFailure(err);
    } finally {
      els.role.disabled = false;
    }
  }

  function pad(n, width) {
    return String(n).padStart(width || 2, '0');
  }

  // The value format of <input type="datetime-local">, in local time.
  function localInputValue(d) {
    return pad(d.getFullYear(), 4) + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) +
      'T' + pad(d.getHours()) + ':' + pad(d.getMinutes());
  }

  // Parsed by hand: Date.parse of a string without offset has differed
  // between engines.
  function parseLocal(value) {
    const m = /^(\d{4,6})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/.exec(value);
    if (!m) return null;
    const d = new Date(2000, 0, 1, 0, 0, 0, 0);
    d.setFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
    d.setHours(Number(m[4]), Number(m[5]), Number(m[6] || 0), 0);
    return Number.isNaN(d.getTime()) ? null : d;
  }

  function utcSeconds(d) {
    return d.toISOString().slice(0, 19) + 'Z';
  }

  // Only what the form itself can tell; the rest of the name rule (no
  // invisible or look-alike characters, NFC: docs/protocol.md) is the
  // plugin's alone, and its answer is shown at the field, so that the
  // page and the broker can never disagree.
  function nameProblem(name) {
    const length = Array.from(name).length; // code points, as the plugin counts
    if (length === 0) return 'Enter a name.';
    if (length > NAME_MAX) return 'At most ' + NAME_MAX + ' characters (this one has ' + length + ').';
    return '';
  }

  // Returns the request body, or null after showing what is wrong.
  function validateForm() {
    const name = els.name.value;
    const nameError = nameProblem(name);
    setFieldError(els.name, nameError);

    const role = els.role.value;
    const roleError = role ? '' : 'Choose a role.';
    setFieldError(els.role, roleError);

    let validUntilError = '';
    const when = parseLocal(els.validUntil.value);
    if (!when) {
      validUntilError = els.validUntil.validity.badInput
        ? 'Enter a complete date and time.'
        : 'Choose a date and time.';
    } else if (when.getTime() <= Date.now()) {
      validUntilError = 'Must be in the future.';
    } else if (when.getUTCFullYear() > 9999) {
      validUntilError = 'Choose a date before the year 10000.';
    }
    setFieldError(els.validUntil, validUntilError);

    const firstBad = [[nameError, els.name], [roleError, els.role], [validUntilError, els.validUntil]]
      .find(([message]) => message);
    if (firstBad) {
      firstBad[1].focus();
      return null;
    }
    const body = { name, role, validUntil: utcSeconds(when) };
    // Optional, and taken as typed: a client id is matched byte for byte,
    // and what it may hold is the plugin's to say (its answer is shown at
    // the field).
    setFieldError(els.clientId, '');
    if (els.clientId.value !== '') body.clientId = els.clientId.value;
    return body;
  }

  function resetDialog() {
    forgetCreated();
    els.form.reset();
    for (const input of [els.name, els.role, els.validUntil, els.clientId]) setFieldError(input, '');
    els.dialogError.textContent = '';
    els.dialogError.hidden = true;
    els.dialogTitle.textContent = 'New Token';
    els.form.hidden = false;
    els.result.hidden = true;
  }

  // The secret must not outlive the dialog.
  function forgetCreated() {
    els.createdToken.value = '';
    els.createdToken.textContent = '';
    els.createdName.textContent = '';
    els.copyStatus.textContent = '';
  }

  function openDialog() {
    resetDialog();
    els.validUntil.min = localInputValue(new Date(Date.now() + 60000));
    els.dialog.showModal();
    els.name.focus();
    loadRoles();
  }

  function showCreated(data) {
    // Escape may close the dialog while the request runs (browsers let a
    // page refuse that only once); the secret must still be shown.
    if (!els.dialog.open) els.dialog.showModal();
    els.form.hidden = true;
    els.result.hidden = false;
    els.dialogTitle.textContent = 'Token created';
    els.createdName.textContent = text(data.name);
    els.createdToken.value = data.token;
    els.createdToken.textContent = data.token;
    els.copyStatus.textContent = '';
    els.copy.focus();
  }

  async function submitToken(ev) {
    ev.preventDefault();
    if (creating) return;
    const body = validateForm();
    if (!body) return;
    creating = true;
    els.create.disabled = true;
    els.cancel.disabled = true;
    try {
      const { data } = await api('POST', 'api/tokens', body);
      if (!data || typeof data.token !== 'string') {
        throw new ApiError('The token was created but its secret did not arrive: revoke it and create another.',
          201, 'internal');
      }
      clearError();
      showCreated(data);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'exists') {
        setFieldError(els.name, 'A token with this name already exists.');
      } else if (err instanceof ApiError && err.code === 'invalid' && /'name'/.test(err.message)) {
        setFieldError(els.name, err.message);
      } else if (err instanceof ApiError && err.code === 'invalid' && /'clientId'/.test(err.message)) {
        setFieldError(els.clientId, err.message);
        els.clientId.focus();
      }
      handleFailure(err);
    } finally {
      creating = false;
      els.create.disabled = false;
      els.cancel.disabled = false;
    }
  }

  function legacyCopy() {
    const area = els.createdToken;
    area.focus();
    area.select();
    area.setSelectionRange(0, area.value.length);
    try {
      return document.execCommand('copy');
    } catch (e) {
      return false;
    }
  }

  async function copyToken() {
    const secret = els.createdToken.value;
    if (!secret) return;
    let copied = false;
    // navigator.clipboard exists only in secure contexts (HTTPS, localhost).
    if (navigator.clipboard && typeof navigator.clipboard.writeText === 'function') {
      try {
        await navigator.clipboard.writeText(secret);
        copied = true;
      } catch (e) {
        copied = false;
      }
    }
    if (!copied) copied = legacyCopy();
    els.copyStatus.classList.toggle('failed', !copied);
    els.copyStatus.textContent = copied
      ? 'Copied'
      : 'Copying failed: select the token and copy it by hand.';
  }

  function isOutsideDialog(ev) {
    if (ev.target !== els.dialog) return false;
    const r = els.dialog.getBoundingClientRect();
    return ev.clientX < r.left || ev.clientX > r.right || ev.clientY < r.top || ev.clientY > r.bottom;
  }

  // ---- views -------------------------------------------------------------

  function showLogin() {
    els.consoleView.hidden = true;
    els.logout.hidden = true;
    els.loginView.hidden = false;
  }

  function showConsole() {
    els.loginView.hidden = true;
    els.consoleView.hidden = false;
    els.logout.hidden = false;
  }

  function logout() {
    sessionEpoch += 1;
    forgetToken();
    if (els.dialog.open) els.dialog.close();
    forgetCreated();
    els.body.replaceChildren();
    els.count.textContent = '';
    clearError();
    showLogin();
  }

  function login(ev) {
    ev.preventDefault();
    const token = els.loginToken.value.trim();
    if (!token) {
      setFieldError(els.loginToken, 'Enter your application token.');
      return;
    }
    if (!TOKEN_SHAPE.test(token)) {
      setFieldError(els.loginToken,
        'This is not an application token: those start with mqtk_ and are 56 characters long.');
      return;
    }
    setFieldError(els.loginToken, '');
    sessionEpoch += 1;
    if (!setToken(token)) {
      showError('This browser does not allow session storage, which the console needs to keep your token.');
      return;
    }
    els.loginToken.value = '';
    clearError();
    showConsole();
    els.newToken.focus();
    loadTokens();
  }

  // ---- wiring ------------------------------------------------------------

  els.loginForm.addEventListener('submit', login);
  els.loginToken.addEventListener('input', () => setFieldError(els.loginToken, ''));
  els.logout.addEventListener('click', () => {
    logout();
    els.loginToken.focus();
  });
  els.refresh.addEventListener('click', loadTokens);
  els.newToken.addEventListener('click', openDialog);

  els.form.addEventListener('submit', submitToken);
  els.name.addEventListener('input', () => setFieldError(els.name, ''));
  els.role.addEventListener('change', () => setFieldError(els.role, ''));
  els.validUntil.addEventListener('input', () => setFieldError(els.validUntil, ''));
  els.clientId.addEventListener('input', () => setFieldError(els.clientId, ''));
  // The dialog's 'close' event comes a task later than its hiding: the
  // secret goes now, with the dialog, not after it.
  function closeDialog() {
    forgetCreated();
    els.dialog.close();
  }

  els.cancel.addEventListener('click', closeDialog);
  els.copy.addEventListener('click', copyToken);
  els.close.addEventListener('click', closeDialog);

  els.dialog.addEventListener('cancel', (ev) => {
    if (creating) ev.preventDefault();
  });
  els.dialog.addEventListener('close', () => {
    resetDialog();
    if (getToken()) loadTokens();
  });

  // A click outside the dialog lands on the dialog element itself (its
  // ::backdrop). A drag that starts inside (selecting the token) and ends
  // outside also does, and must not close it.
  let pressedInside = false;
  els.dialog.addEventListener('pointerdown', (ev) => {
    pressedInside = !isOutsideDialog(ev);
  });
  els.dialog.addEventListener('click', (ev) => {
    const startedInside = pressedInside;
    pressedInside = false;
    if (!creating && !startedInside && isOutsideDialog(ev)) closeDialog();
  });

  try {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone) els.timeZone.textContent = ' (' + zone + ')';
  } catch (e) {
    // The hint reads fine without the zone's name.
  }

  if (getToken()) {
    showConsole();
    loadTokens();
  } else {
    showLogin();
  }
}());
