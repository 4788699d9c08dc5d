// The orders page: every order of the account, newest first, refreshed on each
// order.status push.
import { api } from './api.js';
import { boot } from './shell.js';
import { price, label, occLabel, dateTime } from './format.js';
import { $, h, replace, errorAlert } from './ui.js';

const STATUS_CLASS = {
  FILLED: 'text-bg-success', WORKING: 'text-bg-info', SUBMITTED: 'text-bg-info', PARTIALLY_FILLED: 'text-bg-warning',
  REJECTED: 'text-bg-danger', CANCELLED: 'text-bg-secondary', EXPIRED: 'text-bg-secondary', REPLACED: 'text-bg-secondary',
};

async function load() {
  const host = $('#ordersContainer');
  try {
    const { orders } = await api.orders($('#openOnly').checked);
    if (!orders.length) {
      replace(host, h('div', { class: 'p-3 text-secondary', id: 'noOrders' }, 'No orders yet.'));
      return;
    }
    replace(host, h('div', { class: 'table-responsive' }, h('table', { class: 'table table-sm mb-0 align-middle', id: 'ordersTable' },
      h('thead', {}, h('tr', {}, ['Submitted', 'Underlying', 'Purpose', 'Legs', 'Limit', 'TIF', 'Status', 'Fills', 'Reason'].map((t) => h('th', {}, t)))),
      h('tbody', {}, orders.map((o) => h('tr', { dataset: { orderId: o.order_id, status: o.status } },
        h('td', { class: 'small' }, dateTime(o.submitted_at)),
        h('td', {}, o.underlying),
        h('td', {}, label(o.purpose), o.spread_kind ? h('div', { class: 'small text-secondary' }, label(o.spread_kind)) : null),
        h('td', { class: 'small' }, o.legs.map((l) => h('div', {}, `${label(l.action)} ${l.quantity} × ${occLabel(l.symbol)}`))),
        h('td', { class: 'num' }, price(o.limit_price)),
        h('td', {}, o.time_in_force),
        h('td', {}, h('span', { class: `badge ${STATUS_CLASS[o.status] || 'text-bg-secondary'}` }, o.status)),
        h('td', { class: 'small' }, o.fills.length ? `${o.fills.length} leg fill(s)` : '—'),
        h('td', { class: 'small' }, o.reason || '')))))));
  } catch (err) {
    replace(host, h('div', { class: 'p-2' }, errorAlert(err)));
  }
}

let timer = null;
const soon = () => {
  clearTimeout(timer);
  timer = setTimeout(load, 300);
};

boot({ live: true }).then(({ socket }) => {
  socket.on('order.status', soon);
  socket.on('connected', (m) => m.reconnect && load());
  $('#openOnly').addEventListener('change', load);
  return load();
}).then(() => { document.body.dataset.ready = 'true'; }).catch((err) => {
  if (err && err.status !== 401) $('#banners').append(errorAlert(err));
});
