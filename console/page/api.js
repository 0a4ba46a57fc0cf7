// The caller's token and the console's REST API.
//
// The token lives in sessionStorage only (this browser tab), and goes out in
// the Authorization header only, never in a URL.

const STORAGE_KEY = 'mqttTokensConsoleToken';
// The daemon answers 504 itself after a few seconds; this only catches a
// connection that hangs without any answer.
const REQUEST_TIMEOUT_MS = 20000;

// Bumped at every log in and log out, so that an answer to a request made
// with a previous token is dropped instead of being shown.
let sessionEpoch = 0;

export function getToken() {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch (e) {
    return null;
  }
}

export function setToken(token) {
  sessionEpoch += 1;
  try {
    sessionStorage.setItem(STORAGE_KEY, token);
    return true;
  } catch (e) {
    return false;
  }
}

export function forgetToken() {
  sessionEpoch += 1;
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch (e) {
    // Nothing was stored then.
  }
}

export class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// The plugin's own sentence is the message: the page has no rule set of its
// own to explain a refusal with.
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

async function send(path, init) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  try {
    const res = await fetch(path, { ...init, signal: controller.signal });
    const body = await res.text();
    let data = null;
    try {
      data = body ? JSON.parse(body) : null;
    } catch (e) {
      data = null;
    }
    return { res, data };
  } catch (e) {
    throw new ApiError(e && e.name === 'AbortError'
      ? 'The console server did not answer in time.'
      : 'Network error: the console server cannot be reached.', 0, 'network');
  } finally {
    clearTimeout(timer);
  }
}

// Resolves to {status, data}; rejects with an ApiError (code 'stale' when the
// session changed meanwhile: callers show nothing then).
export async function api(method, path, body) {
  const token = getToken();
  if (!token) throw new ApiError('', 401, 'unauthorized');
  const epoch = sessionEpoch;
  const headers = { Authorization: 'Bearer ' + token, Accept: 'application/json' };
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let answer;
  try {
    answer = await send(path, init);
  } catch (err) {
    throw epoch === sessionEpoch ? err : new ApiError('', 0, 'stale');
  }
  if (epoch !== sessionEpoch) throw new ApiError('', 0, 'stale');
  const { res, data } = answer;
  if (res.ok) return { status: res.status, data };
  const code = data && typeof data.code === 'string' ? data.code : '';
  throw new ApiError(messageFor(res.status, data), res.status, code);
}
