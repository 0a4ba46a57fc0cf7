// The view in the URL's fragment, so that it can be bookmarked, reloaded and
// walked with back and forward:
//
//   #/tokens?status=valid&role=sensors&q=dev&page=3&size=50
//   #/roles
//
// Defaults are left out of the fragment; anything unreadable falls back to
// its default.

export const PAGE_SIZES = [25, 50, 100, 500];
const DEFAULT_SIZE = 50;
const STATUSES = ['all', 'valid', 'invalid'];

export function defaultTokensView() {
  return { view: 'tokens', status: 'all', role: '', q: '', page: 1, size: DEFAULT_SIZE };
}

export function parseFragment(hash) {
  const [path, query] = hash.replace(/^#\/?/, '').split('?', 2);
  if (path === 'roles') return { view: 'roles' };
  const params = new URLSearchParams(query || '');
  const state = defaultTokensView();
  if (STATUSES.includes(params.get('status'))) state.status = params.get('status');
  state.role = params.get('role') || '';
  state.q = params.get('q') || '';
  const page = Number(params.get('page'));
  if (Number.isSafeInteger(page) && page >= 1) state.page = page;
  const size = Number(params.get('size'));
  if (PAGE_SIZES.includes(size)) state.size = size;
  return state;
}

export function fragmentOf(state) {
  if (state.view === 'roles') return '#/roles';
  const params = new URLSearchParams();
  if (state.status !== 'all') params.set('status', state.status);
  if (state.role) params.set('role', state.role);
  if (state.q) params.set('q', state.q);
  if (state.page > 1) params.set('page', String(state.page));
  if (state.size !== DEFAULT_SIZE) params.set('size', String(state.size));
  const query = params.toString();
  return '#/tokens' + (query ? '?' + query : '');
}

// A new history entry, unless the view is the one shown (the hashchange
// event then renders it).
export function navigate(state) {
  const fragment = fragmentOf(state);
  if (location.hash !== fragment) location.hash = fragment;
}

// The same view, corrected in place (a page past the end, say): no entry.
export function correct(state) {
  history.replaceState(null, '', fragmentOf(state));
}
