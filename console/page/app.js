// Application Tokens page of mosquitto_tokens_console: logging in and out,
// and which view the URL's fragment shows (route.js). The views are their
// own modules: tokens-view.js, roles-view.js, token-dialog.js.
//
// Everything shown comes from the API and is user data: the DOM is built
// with createElement/textContent only, never innerHTML. The page runs under
// a strict CSP, so every listener is attached in these modules.

import { forgetToken, getToken, setToken } from './api.js';
import { clearError, setFieldError, showError, whenTokenRefused } from './messages.js';
import { parseFragment } from './route.js';
import { clearRoles, loadRoles, wireRolesView } from './roles-view.js';
import { closeTokenDialog, openCreate, wireTokenDialog } from './token-dialog.js';
import { clearTokens, loadRoleFilter, reloadTokens, showTokens, wireTokensView } from './tokens-view.js';

// Section 1 of the spec: the daemon refuses anything else with 401 anyway,
// but a typo is better reported before a round trip.
const TOKEN_SHAPE = /^mqtk_[A-Za-z0-9_-]{43}[0-9a-f]{8}$/;

const $ = (id) => document.getElementById(id);
const els = {
  logout: $('logout'),
  nav: $('views-nav'),
  navTokens: $('nav-tokens'),
  navRoles: $('nav-roles'),
  loginView: $('login-view'),
  loginForm: $('login-form'),
  loginToken: $('login-token'),
  consoleView: $('console-view'),
  tokensView: $('tokens-view'),
  rolesView: $('roles-view'),
  newToken: $('new-token'),
  refresh: $('refresh'),
};

function showView() {
  const view = parseFragment(location.hash);
  const roles = view.view === 'roles';
  els.tokensView.hidden = roles;
  els.rolesView.hidden = !roles;
  for (const [link, current] of [[els.navTokens, !roles], [els.navRoles, roles]]) {
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (roles) return loadRoles();
  return showTokens(view);
}

function showLogin() {
  els.consoleView.hidden = true;
  els.logout.hidden = true;
  els.nav.hidden = true;
  els.loginView.hidden = false;
}

function showConsole() {
  els.loginView.hidden = true;
  els.consoleView.hidden = false;
  els.logout.hidden = false;
  els.nav.hidden = false;
  loadRoleFilter();
  showView();
}

function logout() {
  forgetToken();
  closeTokenDialog();
  clearTokens();
  clearRoles();
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
  if (!setToken(token)) {
    showError('This browser does not allow session storage, which the console needs to keep your token.');
    return;
  }
  els.loginToken.value = '';
  clearError();
  showConsole();
  if (!els.tokensView.hidden) els.newToken.focus();
}

whenTokenRefused(() => {
  logout();
  els.loginToken.focus();
});
wireTokenDialog(() => {
  if (getToken()) reloadTokens();
});
wireTokensView();
wireRolesView();

els.loginForm.addEventListener('submit', login);
els.loginToken.addEventListener('input', () => setFieldError(els.loginToken, ''));
els.logout.addEventListener('click', () => {
  logout();
  els.loginToken.focus();
});
els.refresh.addEventListener('click', reloadTokens);
els.newToken.addEventListener('click', openCreate);
window.addEventListener('hashchange', () => {
  if (getToken()) showView();
});

if (getToken()) {
  showConsole();
} else {
  showLogin();
}
