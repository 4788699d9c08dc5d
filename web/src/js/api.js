// The REST client: JSON in and out, the CSRF header on state-changing requests, and
// one error type carrying the gateway's error shape {"error": {kind, message, field, details}}.

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `request failed (${status})`);
    this.status = status;
    this.kind = e.kind || (status === 0 ? 'SERVICE_UNAVAILABLE' : 'INTERNAL_ERROR');
    this.field = e.field || null;
    this.details = e.details || {};
  }
}

let csrfToken = null;
let account = null;
let onUnauthenticated = () => {
  window.location.assign(`/login/?next=${encodeURIComponent(location.pathname)}`);
};

export function setCsrfToken(token) {
  csrfToken = token;
}

/** The account every account-scoped request names (null: the user's only account). */
export function setAccount(accountNumber) {
  account = accountNumber;
}

export function getAccount() {
  return account;
}

export function setUnauthenticatedHandler(fn) {
  onUnauthenticated = fn;
}

function withAccount(path, scoped) {
  if (!scoped || !account) return path;
  return `${path}${path.includes('?') ? '&' : '?'}account=${encodeURIComponent(account)}`;
}

/**
 * @param {string} method
 * @param {string} path  absolute path on this origin
 * @param {object} [body]
 * @param {{scoped?: boolean, redirectOn401?: boolean}} [opts]
 */
export async function request(method, path, body, opts = {}) {
  const { scoped = true, redirectOn401 = true } = opts;
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (!SAFE.has(method) && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let response;
  try {
    response = await fetch(withAccount(path, scoped), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, {
      error: { kind: 'SERVICE_UNAVAILABLE', message: 'The server cannot be reached.' },
    });
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && redirectOn401) onUnauthenticated();
    throw error;
  }
  return data;
}

export const get = (path, opts) => request('GET', path, undefined, opts);
export const post = (path, body, opts) => request('POST', path, body ?? {}, opts);
export const put = (path, body, opts) => request('PUT', path, body, opts);

// --- the endpoints the pages use ---------------------------------------------------

const T = '/trading/api';

export const api = {
  login: (username, password) =>
    request('POST', '/api/auth/login', { username, password }, { scoped: false, redirectOn401: false }),
  logout: () => post('/api/auth/logout', {}, { scoped: false }),
  me: (opts = {}) => get('/api/me', { scoped: false, ...opts }),

  generate: (symbol) => post(`${T}/senex_trident/generate/`, { symbol }),
  execute: (id, body) => post(`${T}/senex_trident/suggestions/${id}/execute/`, body),
  reject: (id, reason) => post(`${T}/senex_trident/suggestions/${id}/reject/`, { reason }),
  suggestion: (id) => get(`${T}/suggestions/${id}/`),
  suggestions: () => get(`${T}/suggestions/`),
  validateTradeRisk: (body) => post(`${T}/validate-trade-risk/`, body),
  riskBudget: () => get(`${T}/risk-budget/`),
  pendingOrders: () => get(`${T}/pending-orders/`),
  orders: (openOnly = false) => get(`${T}/orders/?open_only=${openOnly}`),
  orderStatus: (id) => get(`${T}/order-status/${id}/`),
  positions: (includeClosed = false) => get(`${T}/positions/?include_closed=${includeClosed}`),
  syncPositions: () => post(`${T}/sync-positions/`, {}),
  market: (symbol) => get(`${T}/market/${encodeURIComponent(symbol)}/`, { scoped: false }),
  settings: () => get(`${T}/settings/`),
  putSettings: (settings) => put(`${T}/settings/`, settings),
  brokerLink: () => get(`${T}/broker-link/`, { scoped: false }),
  putBrokerLink: (body) => put(`${T}/broker-link/`, body, { scoped: false }),
  auditEvents: (query) => get(`${T}/audit/events${query ? `?${query}` : ''}`),
  auditChain: (id) => get(`${T}/audit/chain/${id}`),
  auditVerify: () => get(`${T}/audit/verify`, { scoped: false }),
};
