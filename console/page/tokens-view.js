// The Tokens Overview: one page of the list as the server pages it
// (listTokens' count and offset), with the name prefix search, the status
// and role filters and the page size of the view in the URL's fragment
// (route.js). Each row revokes and rotates its token.

import { api, ApiError } from './api.js';
import { cell, dateCell, iconButton, option, text, ROTATE_ICON, TRASH_ICON } from './dom.js';
import { clearError, handleFailure } from './messages.js';
import { correct, navigate, PAGE_SIZES } from './route.js';
import { openRotate } from './token-dialog.js';

// The plugin's default plugin_opt_expiry_warning_days: the page cannot read
// the broker's option, and this is the window its tokenExpiring event uses
// unless an operator changed it.
const EXPIRY_WARNING_MS = 7 * 86400 * 1000;
// Long enough to wait for a pause in typing, short enough to feel instant.
const SEARCH_DELAY_MS = 100;
const COLUMNS = 10;

const $ = (id) => document.getElementById(id);
const els = {
  count: $('token-count'),
  body: $('tokens-body'),
  table: $('tokens-table'),
  search: $('token-search'),
  status: $('status-filter'),
  role: $('role-filter'),
  size: $('page-size'),
  range: $('page-range'),
  prev: $('prev-page'),
  next: $('next-page'),
};

let shown = null;        // the view (route.js state) on screen
let totalCount = 0;
let loadSeq = 0;         // only the answer to the latest request is shown
let searchTimer = 0;
let searchPending = false;  // typed, not searched yet

// ---- rows -------------------------------------------------------------------

function expiresSoon(t, now) {
  const until = Date.parse(text(t.validUntil));
  return t.status === 'valid' && !Number.isNaN(until) && until - now <= EXPIRY_WARNING_MS;
}

function validUntilCell(t, now) {
  const td = dateCell('valid-until', t.validUntil);
  if (expiresSoon(t, now)) {
    const badge = document.createElement('span');
    badge.className = 'badge expiring';
    badge.textContent = 'expires soon';
    badge.title = 'Expires within 7 days';
    td.append(badge);
    td.classList.add('expiring');
  }
  return td;
}

function statusCell(t) {
  const label = t.status === 'valid' ? 'Valid' : t.status === 'invalid' ? 'Invalid' : text(t.status);
  const td = cell('status', label);
  if (t.status === 'valid' || t.status === 'invalid') td.classList.add('status-' + t.status);
  return td;
}

// Present only for a token bound to one client id; any other logs in.
function clientIdCell(t) {
  const bound = typeof t.clientId === 'string';
  const td = cell('client-id', bound ? t.clientId : 'Any');
  if (!bound) td.classList.add('any');
  return td;
}

function actionsCell(name, hash, tr) {
  const td = cell('actions', '');
  td.append(
    iconButton('rotate', 'Rotate ' + name, ROTATE_ICON, () => openRotate(name, hash)),
    iconButton('revoke', 'Revoke ' + name, TRASH_ICON, (ev) => revoke(name, hash, tr, ev.currentTarget)));
  return td;
}

function tokenRow(t, now) {
  const name = text(t.name);
  const hash = text(t.hash);
  const tr = document.createElement('tr');
  tr.dataset.hash = hash;
  const hashTd = cell('hash', hash.slice(0, 12));
  hashTd.title = hash;
  tr.append(
    cell('name', name),
    cell('role', text(t.role)),
    cell('requested-by', text(t.requestedBy)),
    dateCell('issued-at', t.issuedAt),
    validUntilCell(t, now),
    t.lastUsed === null || t.lastUsed === undefined ? cell('last-used', 'Never') : dateCell('last-used', t.lastUsed),
    hashTd,
    statusCell(t),
    clientIdCell(t),
    actionsCell(name, hash, tr));
  return tr;
}

// ---- the page -----------------------------------------------------------------

function renderRows(tokens) {
  const now = Date.now();
  const frag = document.createDocumentFragment();
  for (const t of tokens) {
    if (t && typeof t === 'object') frag.append(tokenRow(t, now));
  }
  if (!frag.firstChild) {
    const tr = document.createElement('tr');
    tr.className = 'empty';
    const td = cell('empty', shown.q || shown.status !== 'all' || shown.role ? 'No token matches' : 'No tokens');
    td.colSpan = COLUMNS;
    tr.append(td);
    frag.append(tr);
  }
  els.body.replaceChildren(frag);
}

function renderPager(shownRows) {
  const first = (shown.page - 1) * shown.size;
  els.count.textContent = totalCount === 1 ? '1 token' : totalCount.toLocaleString() + ' tokens';
  els.range.textContent = shownRows === 0
    ? '0 of ' + totalCount.toLocaleString()
    : (first + 1).toLocaleString() + '–' + (first + shownRows).toLocaleString() + ' of ' +
      totalCount.toLocaleString();
  els.prev.disabled = shown.page <= 1;
  els.next.disabled = first + shownRows >= totalCount;
}

function query(view) {
  const params = new URLSearchParams({ count: String(view.size), offset: String((view.page - 1) * view.size) });
  if (view.status !== 'all') params.set('status', view.status);
  if (view.role) params.set('role', view.role);
  if (view.q) params.set('namePrefix', view.q);
  return 'api/tokens?' + params.toString();
}

async function loadPage() {
  const view = shown;
  const seq = ++loadSeq;
  els.table.setAttribute('aria-busy', 'true');
  try {
    const { data } = await api('GET', query(view));
    if (seq !== loadSeq) return;
    if (!data || !Array.isArray(data.tokens) || typeof data.totalCount !== 'number') {
      throw new ApiError('The console sent an answer this page does not understand.', 200, 'internal');
    }
    totalCount = data.totalCount;
    const lastPage = Math.max(1, Math.ceil(totalCount / view.size));
    // A bookmark (or a revoke) can point past the end: show the last page.
    if (data.tokens.length === 0 && view.page > lastPage) {
      showTokens({ ...view, page: lastPage });
      correct(shown);
      return;
    }
    renderRows(data.tokens);
    renderPager(data.tokens.length);
    clearError();
  } catch (err) {
    if (seq === loadSeq) handleFailure(err);
  } finally {
    if (seq === loadSeq) els.table.removeAttribute('aria-busy');
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
  await loadPage();
}

// ---- filters ------------------------------------------------------------------

// The role filter offers the broker's roles, and keeps a bookmarked one that
// is gone (its page is then empty, which says so).
export async function loadRoleFilter() {
  try {
    const { data } = await api('GET', 'api/roles');
    const names = (data && Array.isArray(data.roles) ? data.roles : [])
      .map((r) => (r && typeof r.rolename === 'string' ? r.rolename : null))
      .filter((r) => r !== null);
    fillRoleFilter(names);
  } catch (err) {
    handleFailure(err);
  }
}

function fillRoleFilter(names) {
  const wanted = shown ? shown.role : els.role.value;
  if (wanted && !names.includes(wanted)) names.push(wanted);
  const frag = document.createDocumentFragment();
  frag.append(option('', 'All roles'));
  for (const name of names) frag.append(option(name, name));
  els.role.replaceChildren(frag);
  els.role.value = wanted;
}

function syncControls(view) {
  // What is being typed is not overwritten by the view it replaces.
  if (!searchPending) els.search.value = view.q;
  els.status.value = view.status;
  if (![...els.role.options].some((o) => o.value === view.role)) {
    fillRoleFilter([...els.role.options].map((o) => o.value).filter((v) => v));
  }
  els.role.value = view.role;
  els.size.value = String(view.size);
}

// Shows the view (route.js state) and loads its page.
export function showTokens(view) {
  shown = view;
  syncControls(view);
  return loadPage();
}

export function reloadTokens() {
  return shown ? loadPage() : Promise.resolve();
}

export function clearTokens() {
  loadSeq += 1;
  clearTimeout(searchTimer);
  searchPending = false;
  shown = null;
  els.body.replaceChildren();
  els.count.textContent = '';
  els.range.textContent = '';
}

// A search replaces the fragment rather than adding to the history: one
// entry per pause in typing would make Back useless.
function searchNow() {
  clearTimeout(searchTimer);
  searchPending = false;
  if (!shown || els.search.value === shown.q) return;
  showTokens({ ...shown, q: els.search.value, page: 1 });
  correct(shown);
}

export function wireTokensView() {
  for (const size of PAGE_SIZES) els.size.append(option(String(size), String(size)));
  els.search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchPending = true;
    searchTimer = setTimeout(searchNow, SEARCH_DELAY_MS);
  });
  $('token-filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    searchNow();
  });
  els.status.addEventListener('change', () => navigate({ ...shown, status: els.status.value, page: 1 }));
  els.role.addEventListener('change', () => navigate({ ...shown, role: els.role.value, page: 1 }));
  els.size.addEventListener('change', () => {
    // The first row shown stays on the new page.
    const first = (shown.page - 1) * shown.size;
    const size = Number(els.size.value);
    navigate({ ...shown, size, page: Math.floor(first / size) + 1 });
  });
  els.prev.addEventListener('click', () => navigate({ ...shown, page: Math.max(1, shown.page - 1) }));
  els.next.addEventListener('click', () => navigate({ ...shown, page: shown.page + 1 }));
}
