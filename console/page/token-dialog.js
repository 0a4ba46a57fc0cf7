// The token dialog: the "New Token" form, the rotate form, and the view
// that shows a new secret once (both forms end there, alike).
//
// The secret is kept in the dialog only, and cleared when it closes.

import { api, ApiError } from './api.js';
import { text, option, placeholder } from './dom.js';
import { clearError, handleFailure, setFieldError } from './messages.js';
import { localInputValue, futureProblem, utcSeconds } from './time.js';

const NAME_MAX = 30;
const $ = (id) => document.getElementById(id);
const els = {
  dialog: $('token-dialog'),
  title: $('dialog-title'),
  error: $('dialog-error'),
  form: $('token-form'),
  name: $('token-name'),
  role: $('token-role'),
  validUntil: $('token-valid-until'),
  clientId: $('token-client-id'),
  create: $('create-token'),
  cancel: $('cancel-dialog'),
  rotateForm: $('rotate-form'),
  rotateName: $('rotate-name'),
  grace: $('rotate-grace'),
  rotateValidUntil: $('rotate-valid-until'),
  rotate: $('rotate-token'),
  cancelRotate: $('cancel-rotate'),
  result: $('token-result'),
  createdName: $('created-name'),
  createdVerb: $('created-verb'),
  createdToken: $('created-token'),
  copy: $('copy-token'),
  copyStatus: $('copy-status'),
  close: $('close-dialog'),
  timeZone: $('time-zone'),
};

let busy = false;            // a request runs: the dialog stays open
let rotating = null;         // {name, hash} of the token being rotated
let onClosed = () => {};

// ---- roles of the New Token form ------------------------------------------

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

// ---- New Token ------------------------------------------------------------

// Only what the form itself can tell; the rest of the name rule (no
// invisible or look-alike characters, NFC: docs/protocol.md) is the
// plugin's alone, and its answer is shown at the field, so that the page
// and the broker can never disagree.
function nameProblem(name) {
  const length = Array.from(name).length; // code points, as the plugin counts
  if (length === 0) return 'Enter a name.';
  if (length > NAME_MAX) return 'At most ' + NAME_MAX + ' characters (this one has ' + length + ').';
  return '';
}

// Returns the request body, or null after showing what is wrong.
function createBody() {
  const name = els.name.value;
  const nameError = nameProblem(name);
  setFieldError(els.name, nameError);
  const role = els.role.value;
  const roleError = role ? '' : 'Choose a role.';
  setFieldError(els.role, roleError);
  const { problem: validUntilError, when } = futureProblem(els.validUntil, true);
  setFieldError(els.validUntil, validUntilError);

  const firstBad = [[nameError, els.name], [roleError, els.role], [validUntilError, els.validUntil]]
    .find(([message]) => message);
  if (firstBad) {
    firstBad[1].focus();
    return null;
  }
  const body = { name, role, validUntil: utcSeconds(when) };
  // Optional, and taken as typed: a client id is matched byte for byte, and
  // what it may hold is the plugin's to say (its answer is shown at the
  // field).
  setFieldError(els.clientId, '');
  if (els.clientId.value !== '') body.clientId = els.clientId.value;
  return body;
}

function showCreateRefusal(err) {
  if (!(err instanceof ApiError)) return;
  if (err.code === 'exists') {
    setFieldError(els.name, 'A token with this name already exists.');
  } else if (err.code === 'invalid' && /'name'/.test(err.message)) {
    setFieldError(els.name, err.message);
  } else if (err.code === 'invalid' && /'clientId'/.test(err.message)) {
    setFieldError(els.clientId, err.message);
    els.clientId.focus();
  }
}

async function submitCreate(ev) {
  ev.preventDefault();
  if (busy) return;
  const body = createBody();
  if (!body) return;
  await whileBusy([els.create, els.cancel], async () => {
    try {
      const { data } = await api('POST', 'api/tokens', body);
      showSecret(data, 'created');
    } catch (err) {
      showCreateRefusal(err);
      handleFailure(err);
    }
  });
}

// ---- rotate ---------------------------------------------------------------

async function submitRotate(ev) {
  ev.preventDefault();
  if (busy || !rotating) return;
  const { problem, when } = futureProblem(els.rotateValidUntil, false);
  setFieldError(els.rotateValidUntil, problem);
  if (problem) {
    els.rotateValidUntil.focus();
    return;
  }
  const body = { graceSeconds: Number(els.grace.value) };
  if (when) body.validUntil = utcSeconds(when);
  await whileBusy([els.rotate, els.cancelRotate], async () => {
    try {
      const { data } = await api('POST', 'api/tokens/' + encodeURIComponent(rotating.hash) + '/rotate', body);
      showSecret(data, 'rotated');
    } catch (err) {
      if (err instanceof ApiError && err.code === 'invalid' && /'validUntil'/.test(err.message)) {
        setFieldError(els.rotateValidUntil, err.message);
      }
      handleFailure(err);
    }
  });
}

async function whileBusy(buttons, fn) {
  busy = true;
  for (const b of buttons) b.disabled = true;
  try {
    await fn();
  } finally {
    busy = false;
    for (const b of buttons) b.disabled = false;
  }
}

// ---- the secret, shown once -------------------------------------------------

function showSecret(data, verb) {
  if (!data || typeof data.token !== 'string') {
    handleFailure(new ApiError('The token was ' + verb + ' but its secret did not arrive: ' +
      'rotate it again or revoke it.', 201, 'internal'));
    return;
  }
  clearError();
  // Escape may close the dialog while the request runs (browsers let a
  // page refuse that only once); the secret must still be shown.
  if (!els.dialog.open) els.dialog.showModal();
  els.form.hidden = true;
  els.rotateForm.hidden = true;
  els.result.hidden = false;
  els.title.textContent = verb === 'rotated' ? 'Token rotated' : 'Token created';
  els.createdName.textContent = text(data.name);
  els.createdVerb.textContent = verb;
  els.createdToken.value = data.token;
  els.createdToken.textContent = data.token;
  els.copyStatus.textContent = '';
  els.copy.focus();
}

// The secret must not outlive the dialog.
function forgetSecret() {
  els.createdToken.value = '';
  els.createdToken.textContent = '';
  els.createdName.textContent = '';
  els.copyStatus.textContent = '';
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

async function copySecret() {
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

// ---- opening and closing ----------------------------------------------------

function reset() {
  forgetSecret();
  els.form.reset();
  els.rotateForm.reset();
  for (const input of [els.name, els.role, els.validUntil, els.clientId, els.rotateValidUntil]) {
    setFieldError(input, '');
  }
  els.error.textContent = '';
  els.error.hidden = true;
  els.result.hidden = true;
  rotating = null;
}

export function openCreate() {
  reset();
  els.title.textContent = 'New Token';
  els.form.hidden = false;
  els.rotateForm.hidden = true;
  els.validUntil.min = localInputValue(new Date(Date.now() + 60000));
  els.dialog.showModal();
  els.name.focus();
  loadRoles();
}

export function openRotate(name, hash) {
  reset();
  rotating = { name, hash };
  els.title.textContent = 'Rotate Token';
  els.rotateName.textContent = name;
  els.form.hidden = true;
  els.rotateForm.hidden = false;
  els.rotateValidUntil.min = localInputValue(new Date(Date.now() + 60000));
  els.dialog.showModal();
  els.grace.focus();
}

// The dialog's 'close' event comes a task later than its hiding: the secret
// goes now, with the dialog, not after it.
export function closeTokenDialog() {
  forgetSecret();
  if (els.dialog.open) els.dialog.close();
}

function isOutsideDialog(ev) {
  if (ev.target !== els.dialog) return false;
  const r = els.dialog.getBoundingClientRect();
  return ev.clientX < r.left || ev.clientX > r.right || ev.clientY < r.top || ev.clientY > r.bottom;
}

// fn runs after every close (the list then shows the change).
export function wireTokenDialog(whenClosed) {
  onClosed = whenClosed;
  els.form.addEventListener('submit', submitCreate);
  els.rotateForm.addEventListener('submit', submitRotate);
  els.name.addEventListener('input', () => setFieldError(els.name, ''));
  els.role.addEventListener('change', () => setFieldError(els.role, ''));
  els.validUntil.addEventListener('input', () => setFieldError(els.validUntil, ''));
  els.clientId.addEventListener('input', () => setFieldError(els.clientId, ''));
  els.rotateValidUntil.addEventListener('input', () => setFieldError(els.rotateValidUntil, ''));
  els.cancel.addEventListener('click', closeTokenDialog);
  els.cancelRotate.addEventListener('click', closeTokenDialog);
  els.copy.addEventListener('click', copySecret);
  els.close.addEventListener('click', closeTokenDialog);
  els.dialog.addEventListener('cancel', (ev) => {
    if (busy) ev.preventDefault();
  });
  els.dialog.addEventListener('close', () => {
    reset();
    onClosed();
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
    if (!busy && !startedInside && isOutsideDialog(ev)) closeTokenDialog();
  });
  try {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone) els.timeZone.textContent = ' (' + zone + ')';
  } catch (e) {
    // The hint reads fine without the zone's name.
  }
}
