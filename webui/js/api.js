// The one way to the agent's REST API: same-origin, session cookie, X-CSRF-Token on every
// mutating request, errors as ApiError with the API's stable code, 401 -> back to the login.
import { t } from './i18n.js';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const TIMEOUT_MS = 30000;

let csrfToken = null;
let handlers = { unauthorized() {}, passwordChangeRequired() {}, forbidden() {} };

export class ApiError extends Error {
  constructor(status, code, message, extra = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = extra.field || null;
    this.retryAfter = extra.retryAfter ?? null;
  }
}

export function setCsrfToken(token) {
  csrfToken = token || null;
}

export function onApiEvents(next) {
  handlers = { ...handlers, ...next };
}

export function isAbort(error) {
  return error && error.name === 'AbortError';
}

async function send(method, path, body, options) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  // A file sent as it is (a license file: the agent keeps its bytes).
  const payload = body === undefined ? undefined : options.raw ? body : JSON.stringify(body);
  if (MUTATING.has(method) && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), TIMEOUT_MS);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout.signal]) : timeout.signal;
  try {
    return await fetch(path, {
      method,
      headers,
      body: payload,
      credentials: 'same-origin',
      cache: 'no-store',
      signal,
    });
  } catch (error) {
    if (options.signal && options.signal.aborted) throw error;
    if (timeout.signal.aborted) throw new ApiError(0, 'timeout', t('errors.timeout'));
    throw new ApiError(0, 'network', t('errors.network'));
  } finally {
    clearTimeout(timer);
  }
}

async function errorFrom(res) {
  let code = `http_${res.status}`;
  let message = t('errors.http', { status: res.status });
  let field = null;
  try {
    const data = await res.json();
    if (data && data.error) {
      code = data.error.code || code;
      message = data.error.message || message;
      field = data.error.field || null;
    }
  } catch {
    // Not JSON (a proxy's page): keep the generic message.
  }
  const retry = Number(res.headers.get('Retry-After'));
  return new ApiError(res.status, code, message, { field, retryAfter: Number.isFinite(retry) ? retry : null });
}

// api('GET', '/api/v1/models'); api('POST', '/api/v1/users', {...}).
// options.auth: the call itself authenticates (login), so a 401 is the caller's to show.
export async function api(method, path, body, options = {}) {
  let res = await send(method, path, body, options);
  if (res.status === 403 && MUTATING.has(method) && !options.retried) {
    const error = await errorFrom(res.clone());
    if (error.code === 'csrf_failed' && (await refreshCsrf())) {
      return api(method, path, body, { ...options, retried: true });
    }
  }
  if (!res.ok) throw await failure(res, options);
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  return type.includes('json') ? res.json() : res.text();
}

async function failure(res, options) {
  const error = await errorFrom(res);
  if (res.status === 401 && !options.auth) handlers.unauthorized(error);
  if (error.code === 'password_change_required') handlers.passwordChangeRequired(error);
  if (error.code === 'forbidden') handlers.forbidden(error);
  return error;
}

// A POST whose answer is read as it comes (the chat playground's event stream): the Response
// once its status is known, its body still arriving. The time limit covers only the wait for
// the status.
export async function postStream(path, body, options = {}) {
  const res = await send('POST', path, body, options);
  if (!res.ok) throw await failure(res, options);
  return res;
}

async function refreshCsrf() {
  try {
    const res = await send('GET', '/api/v1/auth/session', undefined, {});
    if (!res.ok) return false;
    const session = await res.json();
    setCsrfToken(session.csrf_token);
    return Boolean(session.csrf_token);
  } catch {
    return false;
  }
}

export const get = (path, options) => api('GET', path, undefined, options);
export const post = (path, body, options) => api('POST', path, body ?? {}, options);
export const patch = (path, body, options) => api('PATCH', path, body, options);
export const del = (path, options) => api('DELETE', path, undefined, options);
export const putText = (path, text, options) => api('PUT', path, text, { ...options, raw: true });

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export function enc(segment) {
  return encodeURIComponent(segment);
}
