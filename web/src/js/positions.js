// The positions page: per spread its entry credit, mark (closing cost at mid), P&L and
// live exit order; per position DTE, status and the attention flag. Refreshed on
// position_update pushes (the monitor values positions every 10 s).
import { api } from './api.js';
import { boot } from './shell.js';
import { Dec } from './decimal.js';
import { money, signedMoney, price, label, occLabel, dateTime } from './format.js';
import { $, h, replace, errorAlert, toast, errorToast } from './ui.js';

function pnlClass(value) {
  const d = Dec.maybe(value);
  if (d === null || d.isZero()) return '';
  return d.isNegative() ? 'loss' : 'profit';
}

function spreadRow(sv) {
  const sp = sv.spread;
  const exit = sv.exit_order_id
    ? h('span', { class: 'badge text-bg-info', dataset: { exit: sv.exit_purpose || 'EXIT' } }, `${label(sv.exit_purpose)} working`)
    : sv.open ? h('span', { class: 'text-warning small' }, 'no exit order') : h('span', { class: 'small text-secondary' }, label(sv.close_reason));
  const pnl = sv.open ? sv.unrealized_pnl : sv.realized_pnl;
  return h('tr', { dataset: { spread: sp.kind, open: String(sv.open) } },
    h('td', {}, label(sp.kind)),
    h('td', { class: 'small' }, `${occLabel(sp.short_symbol)} / ${occLabel(sp.long_symbol)}`),
    h('td', { class: 'num' }, price(sp.entry_credit)),
    h('td', { class: 'num' }, price(sv.closing_cost_mid)),
    h('td', { class: `num ${pnlClass(pnl)}` }, signedMoney(pnl)),
    h('td', { class: 'num' }, `${Dec.of(sp.profit_target).mul(100).toString()} %`),
    h('td', { dataset: { field: 'exit' } }, exit));
}

function positionCard(p) {
  const flag = p.needs_attention
    ? h('span', { class: 'badge text-bg-danger', dataset: { attention: 'true' } }, `Needs attention: ${label(p.attention_reason)}`) : null;
  return h('div', { class: `border-bottom p-3 ${p.needs_attention ? 'attention-row' : ''}`, dataset: { positionId: p.position_id, status: p.status } },
    h('div', { class: 'd-flex flex-wrap justify-content-between gap-2 mb-2' },
      h('div', {},
        h('strong', {}, `${p.underlying} ${p.expiration || ''}`),
        h('span', { class: 'ms-2 small text-secondary' }, p.dte === null || p.dte === undefined ? '' : `${p.dte} DTE`),
        h('span', { class: `ms-2 badge ${p.status === 'OPEN' ? 'text-bg-success' : 'text-bg-secondary'}` }, p.status),
        p.app_managed ? null : h('span', { class: 'ms-2 badge text-bg-warning' }, 'not app managed'),
        p.active ? null : h('span', { class: 'ms-2 badge text-bg-secondary' }, 'inactive')),
      flag),
    h('div', { class: 'd-flex flex-wrap gap-3 small mb-2' },
      h('span', {}, 'Max risk ', money(p.max_risk)),
      h('span', {}, 'Unrealized ', h('span', { class: pnlClass(p.unrealized_pnl), dataset: { field: 'unrealized' } }, signedMoney(p.unrealized_pnl))),
      h('span', {}, 'Realized ', h('span', { class: pnlClass(p.realized_pnl) }, signedMoney(p.realized_pnl))),
      h('span', { class: 'text-secondary' }, `opened ${dateTime(p.opened_at)}`)),
    p.spreads.length ? h('div', { class: 'table-responsive' }, h('table', { class: 'table table-sm mb-0 spreads' },
      h('thead', {}, h('tr', {}, ['Spread', 'Strikes', 'Entry', 'Mark', 'P&L', 'Target', 'Exit'].map((t) => h('th', { class: ['Entry', 'Mark', 'P&L', 'Target'].includes(t) ? 'num' : '' }, t)))),
      h('tbody', {}, p.spreads.map(spreadRow)))) : null,
    p.held_legs.length ? h('div', { class: 'small text-warning' }, 'Held at the broker: ',
      p.held_legs.map((l) => `${l.quantity} × ${occLabel(l.symbol)}`).join(', ')) : null);
}

async function load() {
  const host = $('#positionsContainer');
  try {
    const { positions } = await api.positions($('#includeClosed').checked);
    if (!positions.length) {
      replace(host, h('div', { class: 'p-3 text-secondary', id: 'noPositions' }, 'No positions.'));
      return;
    }
    replace(host, h('div', { id: 'positionsList' }, positions.map(positionCard)));
  } catch (err) {
    replace(host, h('div', { class: 'p-2' }, errorAlert(err)));
  }
}

let timer = null;
const soon = () => {
  clearTimeout(timer);
  timer = setTimeout(load, 300);
};

async function sync() {
  const button = $('#syncBtn');
  button.disabled = true;
  try {
    await api.syncPositions();
    toast('success', 'Positions synchronised with the broker');
    await load();
  } catch (err) {
    errorToast(err, 'Sync');
  } finally {
    button.disabled = false;
  }
}

boot({ live: true }).then(({ socket }) => {
  socket.on('position_update', soon);
  socket.on('order.status', soon);
  socket.on('connected', (m) => m.reconnect && load());
  $('#includeClosed').addEventListener('change', load);
  $('#syncBtn').addEventListener('click', sync);
  return load();
}).then(() => { document.body.dataset.ready = 'true'; }).catch((err) => {
  if (err && err.status !== 401) $('#banners').append(errorAlert(err));
});
