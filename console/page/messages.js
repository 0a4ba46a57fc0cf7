// The page's error banner and the errors shown at a form field.

import { ApiError } from './api.js';

const $ = (id) => document.getElementById(id);
let onRefusedToken = () => {};

// What to do when the broker refuses the caller's token (the log in form).
export function whenTokenRefused(fn) {
  onRefusedToken = fn;
}

// Outside a modal dialog the page is inert, so an open dialog repeats the
// message in its own error line.
function openDialogError() {
  const dialog = document.querySelector('dialog[open]');
  return dialog ? dialog.querySelector('.dialog-error') : null;
}

export function showError(message) {
  const banner = $('error');
  banner.textContent = message;
  banner.hidden = false;
  const inDialog = openDialogError();
  if (inDialog) {
    inDialog.textContent = message;
    inDialog.hidden = false;
  }
}

export function clearError() {
  const banner = $('error');
  banner.textContent = '';
  banner.hidden = true;
  for (const p of document.querySelectorAll('.dialog-error')) {
    p.textContent = '';
    p.hidden = true;
  }
}

// The message goes into the <p id="<input id>-error"> below the field.
export function setFieldError(input, message) {
  const p = $(input.id + '-error');
  p.textContent = message;
  p.hidden = !message;
  if (message) {
    input.setAttribute('aria-invalid', 'true');
  } else {
    input.removeAttribute('aria-invalid');
  }
}

export function handleFailure(err) {
  if (err instanceof ApiError && err.code === 'stale') return;
  if (err instanceof ApiError && err.status === 401) {
    onRefusedToken();
    showError('This token was refused: it is unknown, expired, revoked or not an ' +
      'application token. Log in with a valid application token.');
    return;
  }
  showError(err && err.message ? err.message : String(err));
}
