// What every page shares: the session check, the navigation bar (pages, connection
// state, paper/live, account, logout), the live socket, and notifications shown as
// toasts and attention banners.
import { api, setAccount, setCsrfToken } from './api.js';
import { LiveSocket } from './ws.js';
import { banner, errorToast, h, replace, toast } from './ui.js';

const PAGES = [
  ['/trading/', 'Trade'],
  ['/trading/positions/', 'Positions'],
  ['/trading/orders/', 'Orders'],
  ['/trading/settings/', 'Settings'],
  ['/trading/audit/', 'Audit'],
];
const SEVERITY_LEVEL = { INFO: 'info', WARNING: 'warning', ERROR: 'danger' };
const accountKey = (userId) => `senex.account.${userId}`;

/**
 * Check the session (redirects to the login page when there is none), draw the
 * navigation bar and, with ``live``, start the socket.
 * @returns {Promise<{me: object, socket: LiveSocket | null}>}
 */
export async function boot({ live = true } = {}) {
  const me = await api.me();
  setCsrfToken(me.csrf_token);
  const accounts = me.accounts.map((a) => a.account_number);
  const stored = localStorage.getItem(accountKey(me.user.user_id));
  const account = accounts.includes(stored) ? stored : accounts[0] || null;
  // Only a user with several accounts must name one; with one, the gateway picks it.
  setAccount(accounts.length > 1 ? account : null);
  drawNav(me, account);
  document.body.dataset.user = me.user.user_id;

  let socket = null;
  if (live) {
    socket = new LiveSocket();
    socket.onState(showSocketState);
    socket.on('notification', onNotification);
    socket.on('position_update', (m) => {
      if (m.event === 'PositionNeedsAttention') {
        banner('warning', `Position needs attention: ${m.underlying}`, m.message, `attention-${m.position_id}`);
      }
    });
    socket.on('error', (m) => {
      // Errors tied to a request are shown by whoever sent it.
      if (!m.request_id) errorToast(m, 'Live connection');
    });
    socket.on('session_ended', () => {
      window.location.assign(`/login/?next=${encodeURIComponent(location.pathname)}`);
    });
    socket.start();
    window.senexSocket = socket; // for the browser tests and debugging
  }
  return { me, socket };
}

function drawNav(me, account) {
  const nav = document.getElementById('nav');
  if (!nav) return;
  const here = location.pathname;
  const links = PAGES.map(([href, text]) =>
    h('a', { class: `nav-link${here === href ? ' active' : ''}`, href, 'aria-current': here === href ? 'page' : null }, text));
  const accounts = me.accounts.map((a) => a.account_number);
  const accountView = accounts.length > 1
    ? h('select', { id: 'accountSelect', class: 'form-select form-select-sm w-auto', 'aria-label': 'Account', onchange: (e) => {
      localStorage.setItem(accountKey(me.user.user_id), e.target.value);
      location.reload();
    } }, accounts.map((n) => h('option', { value: n, selected: n === account }, n)))
    : h('span', { class: 'small text-secondary', id: 'accountNumber' }, account || 'no account linked');
  replace(nav,
    h('nav', { class: 'navbar navbar-expand senex-nav px-3 py-2 flex-wrap gap-2' },
      h('a', { class: 'navbar-brand fw-bold text-accent me-2', href: '/trading/' }, 'Senex'),
      h('div', { class: 'navbar-nav flex-wrap me-auto' }, links),
      h('div', { class: 'd-flex align-items-center gap-2 flex-wrap' },
        h('span', { id: 'modeBadge', class: `badge ${me.mode === 'LIVE' ? 'text-bg-danger' : 'text-bg-secondary'}`, title: 'Trading mode' }, me.mode),
        h('span', { id: 'wsState', class: 'badge ws-state', dataset: { state: 'idle' }, role: 'status' }, 'Offline'),
        accountView,
        h('span', { class: 'small', id: 'userName' }, me.user.user_id),
        h('button', { type: 'button', class: 'btn btn-sm btn-outline-secondary', id: 'logoutBtn', onclick: logout }, 'Log out'))));
}

async function logout() {
  try {
    await api.logout();
  } catch {
    // The session may already be gone: the login page is the right place either way.
  }
  window.location.assign('/login/');
}

let countdown = null;

function showSocketState(snap) {
  const el = document.getElementById('wsState');
  if (!el) return;
  el.dataset.state = snap.state;
  clearInterval(countdown);
  const text = {
    idle: 'Offline',
    connecting: 'Connecting…',
    open: 'Live',
    closed: 'Disconnected',
  };
  if (snap.state === 'reconnecting') {
    const tick = () => {
      const s = Math.max(0, Math.ceil((snap.retryAt - Date.now()) / 1000));
      el.textContent = `Reconnecting in ${s} s`;
    };
    tick();
    countdown = setInterval(tick, 500);
  } else {
    el.textContent = text[snap.state] || snap.state;
  }
  document.body.dataset.ws = snap.state;
}

function onNotification(m) {
  if (m.event === 'TradingSuspended') {
    banner('danger', 'Trading suspended', m.message, 'trading-suspended');
    return;
  }
  if (m.event === 'TradingResumed') {
    document.querySelector('[data-key="trading-suspended"]')?.remove();
    toast('success', 'Trading resumed', m.message || '');
    return;
  }
  const level = SEVERITY_LEVEL[m.severity] || 'info';
  if ((m.channels || []).includes('BANNER') && level !== 'info') {
    banner(level, m.title, m.message, `n-${m.notification_id}`);
  } else {
    toast(level === 'info' ? 'success' : level, m.title, m.message);
  }
}
