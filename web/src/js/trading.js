// The trading screen: live quotes, balance and risk budget; generate a Senex Trident,
// review it (legs, credits, P&L at the chosen limit credit, payoff, bands), approve or
// reject it, and follow the order to its fill and the position's exits.
import { api } from './api.js';
import { boot } from './shell.js';
import { Dec } from './decimal.js';
import { checkCredit, figures, naturalWidth } from './credit.js';
import { money, price, pct, pct100, num, label, occLabel, timeOfDay } from './format.js';
import { $, h, replace, setText, toast, errorToast, errorAlert, confirmDialog } from './ui.js';
import { describe } from './errors.js';
import { PayoffChart, PriceChart } from './charts.js';

const UNDERLYINGS = ['QQQ', 'SPY'];
const TERMINAL = new Set(['FILLED', 'CANCELLED', 'REJECTED', 'EXPIRED']);
const POLL_MS = 2000;
const POLL_FOR_MS = 180000;
const STEPS = [
  ['APPROVED', 'Approved'],
  ['SUBMITTED', 'Submitted'],
  ['WORKING', 'Working at the broker'],
  ['FILLED', 'Filled'],
  ['POSITION', 'Position opened'],
  ['EXITS', 'Exit orders placed'],
];

const state = {
  socket: null,
  budget: null,
  view: null, // the SuggestionView on screen
  trails: new Map(), // suggestion id -> reason trail (from suggestion_update)
  // suggestion id -> the risk check's push; it may arrive before the REST reply that
  // brings the suggestion itself.
  riskChecks: new Map(),
  legSymbols: [],
  payoff: null,
  priceChart: null,
  execution: null, // {suggestionId, orderId, status, exits, expectedExits, positionId, done}
  generating: false,
  executing: false,
};

// --- start -------------------------------------------------------------------------

async function main() {
  const { socket } = await boot({ live: true });
  state.socket = socket;
  socket.subscribe(UNDERLYINGS);
  socket.onState(onSocketState);
  socket.on('connected', (m) => {
    // Events sent while the connection was down are lost: re-read the state.
    if (m.reconnect) refreshAfterReconnect();
  });
  socket.on('quote_update', (q) => onQuote(q));
  socket.on('balance_update', onBalance);
  socket.on('suggestion_update', onSuggestionUpdate);
  socket.on('order.status', onOrderStatus);
  socket.on('position_update', onPositionUpdate);

  $('#generateForm').addEventListener('submit', (e) => {
    e.preventDefault();
    generate();
  });
  $('#symbolSelect').addEventListener('change', () => loadMarket($('#symbolSelect').value));
  $('#refreshPending').addEventListener('click', loadPendingOrders);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && state.view) {
      e.preventDefault();
      approve();
    }
  });

  await Promise.allSettled([loadRiskBudget(), loadPendingOrders(), loadMarket('QQQ'), seedQuote('SPY'), restoreSuggestion()]);
  document.body.dataset.ready = 'true';
}

function onSocketState(snap) {
  const button = $('#generateBtn');
  const status = $('#generateStatus');
  // Generating needs live prices behind it; the button waits for the stream.
  button.disabled = snap.state !== 'open' || state.generating;
  if (snap.state === 'open') {
    if (status.dataset.kind !== 'error') setText(status, 'Live data ready.');
  } else if (snap.state === 'reconnecting' || snap.state === 'connecting') {
    setText(status, 'Live data interrupted: reconnecting…');
    status.dataset.kind = '';
  }
}

async function refreshAfterReconnect() {
  toast('info', 'Reconnected', 'Live updates resumed.');
  await Promise.allSettled([loadRiskBudget(), loadPendingOrders(), refreshSuggestion(), pollExecution(),
    ...UNDERLYINGS.map(seedQuote)]);
}

// --- quotes and account ------------------------------------------------------------

/** The last quote market data holds, until the stream sends a newer one (a quiet
 * symbol may not tick for a while, and the socket sends no snapshot). */
async function seedQuote(symbol) {
  try {
    showMarketQuote(await api.market(symbol));
  } catch {
    // Stays "waiting for quotes" until the stream delivers one.
  }
}

function showMarketQuote(market) {
  const card = document.getElementById(`quote-${market.underlying}`);
  if (!card || card.dataset.source === 'live') return;
  const q = market.quote;
  onQuote({ symbol: q.symbol, bid: q.bid, ask: q.ask, mid: Dec.of(q.bid).add(q.ask).mul('0.5').toString(), quoted_at: q.quoted_at }, 'rest');
}

function onQuote(q, source = 'live') {
  const card = document.getElementById(`quote-${q.symbol}`);
  if (card) {
    card.dataset.source = source;
    setText($('[data-field=mid]', card), price(q.mid));
    setText($('[data-field=bid]', card), price(q.bid));
    setText($('[data-field=ask]', card), price(q.ask));
    setText($('[data-field=time]', card), `updated ${timeOfDay(q.quoted_at)}`);
    card.dataset.mid = q.mid;
    card.dataset.ticks = String(Number(card.dataset.ticks || 0) + 1);
    card.classList.remove('quote-tick');
    void card.offsetWidth; // restart the flash animation
    card.classList.add('quote-tick');
    return;
  }
  // A leg of the suggestion on screen: its live mid beside the priced one.
  document.querySelectorAll(`tr[data-occ="${CSS.escape(q.symbol)}"] [data-field=live]`).forEach((cell) => {
    cell.textContent = price(q.mid);
  });
}

function onBalance(b) {
  setText('#balance', money(b.balance));
  setText('#buyingPower', money(b.buying_power));
  setText('#cashBalance', money(b.cash_balance));
  setText('#balanceTime', `broker balance at ${timeOfDay(b.broker_updated_at)}`);
}

async function loadRiskBudget() {
  try {
    const { budget } = await api.riskBudget();
    state.budget = budget;
    renderBudget(budget);
  } catch (err) {
    replace($('#riskWarning'), errorAlert(err));
  }
}

function renderBudget(b) {
  // Buying power comes with the budget; the broker's balance push refines it later.
  if ($('#buyingPower').textContent === '—') setText('#buyingPower', money(b.buying_power));
  setText('#riskTemplate', `(${label(b.template)}, ${pct(b.base_tolerance, 0)})`);
  setText('#riskUsed', money(b.used_risk));
  setText('#riskRemaining', money(b.remaining_risk));
  setText('#riskAvailable', money(b.available_risk));
  const util = Dec.maybe(b.utilisation);
  const percent = util === null ? 0 : Math.min(100, util.mul(100).toNumber());
  const bar = $('#riskBar');
  bar.style.width = `${percent}%`;
  bar.className = `progress-bar ${b.warning_level === 'CRITICAL' ? 'bg-danger' : b.warning_level === 'WARNING' ? 'bg-warning' : 'bg-success'}`;
  $('#riskBarWrap').setAttribute('aria-valuenow', String(Math.round(percent)));
  setText('#riskUtilisation', util === null ? 'no budget available' : `${pct(util)} used`);
  const warn = $('#riskWarning');
  warn.dataset.level = b.warning_level;
  const stressed = b.stressed_underlyings.length ? ` Stressed market: ${b.stressed_underlyings.join(', ')} (raised tolerance).` : '';
  if (b.warning_level === 'CRITICAL') replace(warn, h('span', { class: 'text-danger' }, `Critical: utilisation is above your second warning level.${stressed}`));
  else if (b.warning_level === 'WARNING') replace(warn, h('span', { class: 'text-warning' }, `Warning: utilisation is above your first warning level.${stressed}`));
  else replace(warn, h('span', { class: 'text-secondary' }, `${b.open_positions} open position(s).${stressed}`));
}

async function loadMarket(symbol) {
  try {
    const market = await api.market(symbol);
    showMarketQuote(market);
    setText('#priceChartSymbol', `· ${market.underlying}`);
    setText('#marketInfo', `IV rank ${pct100(market.iv_rank)} · ${label(market.band_position)}${market.stressed ? ' · stressed' : ''}`);
    if (!state.priceChart) state.priceChart = new PriceChart($('#priceChart'));
    state.priceChart.draw(market);
  } catch (err) {
    replace($('#priceChart'), errorAlert(err));
    state.priceChart = null;
  }
}

// --- pending orders ----------------------------------------------------------------

let pendingTimer = null;
function loadPendingOrdersSoon() {
  clearTimeout(pendingTimer);
  pendingTimer = setTimeout(loadPendingOrders, 300);
}

async function loadPendingOrders() {
  const host = $('#pendingOrdersContainer');
  try {
    const { orders } = await api.pendingOrders();
    if (!orders.length) {
      replace(host, h('div', { class: 'p-3 small text-secondary', id: 'noPendingOrders' }, 'No working orders.'));
      return;
    }
    replace(host, h('div', { class: 'table-responsive' }, h('table', { class: 'table table-sm mb-0', id: 'pendingOrdersTable' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Order'), h('th', {}, 'Status'), h('th', { class: 'num' }, 'Limit'), h('th', {}, 'Submitted'))),
      h('tbody', {}, orders.map((o) => h('tr', { dataset: { orderId: o.order_id } },
        h('td', {}, `${o.underlying} ${label(o.purpose)}${o.spread_kind ? ` · ${label(o.spread_kind)}` : ''}`),
        h('td', {}, h('span', { class: 'badge text-bg-secondary' }, o.status)),
        h('td', { class: 'num' }, price(o.limit_price)),
        h('td', { class: 'small' }, timeOfDay(o.submitted_at))))))));
  } catch (err) {
    replace(host, h('div', { class: 'p-2' }, errorAlert(err)));
  }
}

// --- generate ----------------------------------------------------------------------

async function generate() {
  if (state.generating) return;
  const symbol = $('#symbolSelect').value;
  const button = $('#generateBtn');
  const status = $('#generateStatus');
  state.generating = true;
  button.disabled = true;
  status.dataset.kind = '';
  setText(status, `Generating a ${symbol} suggestion from live prices…`);
  try {
    const reply = await api.generate(symbol);
    showSuggestion(reply.suggestion);
    setText(status, `Suggestion ready (${timeOfDay(reply.suggestion.suggestion.created_at)}).`);
    if (symbol !== ($('#priceChartSymbol').textContent || '').replace('· ', '')) loadMarket(symbol);
  } catch (err) {
    status.dataset.kind = 'error';
    replace(status, errorAlert(err));
    if (err.kind === 'STRIKE_NOT_FOUND') status.append(h('div', { class: 'small' }, 'Press Generate again for a fresh suggestion.'));
  } finally {
    state.generating = false;
    button.disabled = state.socket.state !== 'open';
  }
}

async function restoreSuggestion() {
  // After a reload the latest pending suggestion is still the one to review.
  try {
    const { suggestions } = await api.suggestions();
    if (suggestions.length && !state.view) showSuggestion(suggestions[0]);
  } catch {
    // Nothing to restore: the empty card stays.
  }
}

async function refreshSuggestion() {
  if (!state.view) return;
  try {
    const reply = await api.suggestion(state.view.suggestion.suggestion_id);
    mergeView(reply.suggestion);
  } catch {
    // Kept as shown; the next event or action will tell.
  }
}

// --- the suggestion card -----------------------------------------------------------

function withRiskCheck(view) {
  const m = state.riskChecks.get(view.suggestion.suggestion_id);
  if (!m || (view.risk_check_passed !== null && view.risk_check_passed !== undefined)) return view;
  return { ...view, risk_check_passed: m.risk_check_passed, risk_check_message: m.message || null, assessment: m.assessment || view.assessment };
}

function showSuggestion(view) {
  const previous = state.view;
  state.view = withRiskCheck(view);
  state.execution = null;
  const s = view.suggestion;
  // Live leg quotes: follow this suggestion's legs, drop the previous one's.
  const legs = s.spreads.flatMap((sp) => [sp.short_leg.symbol, sp.long_leg.symbol]);
  if (previous) state.socket.unsubscribe(state.legSymbols.filter((x) => !legs.includes(x)));
  state.legSymbols = [...new Set(legs)];
  state.socket.subscribe(state.legSymbols);
  if (state.payoff) state.payoff.destroy();
  state.payoff = null;
  renderSuggestion();
  if (state.view.risk_check_passed === null || state.view.risk_check_passed === undefined) awaitRiskCheck(s.suggestion_id);
  $('#emptySuggestion').classList.add('d-none');
  $('#progressContainer').classList.add('d-none');
  replace($('#progressContainer'));
}

/** Read the suggestion back until its risk check is known (when the push is missed). */
async function awaitRiskCheck(id) {
  for (let i = 0; i < 20; i += 1) {
    await new Promise((r) => setTimeout(r, 1000));
    const v = state.view;
    if (!v || v.suggestion.suggestion_id !== id) return;
    if (v.risk_check_passed !== null && v.risk_check_passed !== undefined) return;
    try {
      mergeView((await api.suggestion(id)).suggestion);
    } catch {
      // Try again next round.
    }
  }
}

function mergeView(view) {
  if (!state.view || state.view.suggestion.suggestion_id !== view.suggestion.suggestion_id) return;
  state.view = view;
  renderStatus();
  renderRisk();
}

function renderSuggestion() {
  const view = state.view;
  const s = view.suggestion;
  const host = $('#suggestionContainer');
  host.classList.remove('d-none');
  host.dataset.suggestionId = s.suggestion_id;
  const includesCall = !s.near_bollinger_band;

  const legRow = (spread, leg, action) => h('tr', { dataset: { occ: leg.symbol, spread: spread.kind, action } },
    h('td', {}, action === 'SELL' ? 'Sell' : 'Buy'),
    h('td', { class: 'font-monospace small' }, leg.symbol),
    h('td', {}, occLabel(leg.symbol)),
    h('td', { class: 'num', dataset: { field: 'bid' } }, price(leg.bid)),
    h('td', { class: 'num', dataset: { field: 'mid' } }, price(leg.mid)),
    h('td', { class: 'num', dataset: { field: 'ask' } }, price(leg.ask)),
    h('td', { class: 'num text-secondary', dataset: { field: 'live' } }, '—'));
  const spreadRows = s.spreads.flatMap((sp) => [
    h('tr', { class: 'table-group-divider' }, h('th', { colspan: 7, class: 'pt-2' },
      `${label(sp.kind)} · ${occLabel(sp.short_leg.symbol)} / ${occLabel(sp.long_leg.symbol)}`,
      h('span', { class: 'float-end small', dataset: { spreadCredit: sp.kind } },
        'natural ', h('span', { dataset: { field: 'natural' } }, price(sp.natural_credit)),
        ' · mid ', h('span', { dataset: { field: 'midCredit' } }, price(sp.mid_credit))))),
    legRow(sp, sp.short_leg, 'SELL'),
    legRow(sp, sp.long_leg, 'BUY'),
  ]);

  const input = h('input', {
    id: 'creditInput', class: 'form-control', type: 'text', inputmode: 'decimal', autocomplete: 'off',
    value: s.total_mid_credit, 'aria-describedby': 'creditError creditHelp',
  });
  input.addEventListener('input', onCreditInput);

  replace(host, h('div', { class: 'card mb-3', id: 'suggestionCard' },
    h('div', { class: 'card-header d-flex flex-wrap justify-content-between gap-2' },
      h('span', {}, `${s.underlying} · expires ${s.expiration} (${s.dte} DTE) · price `, h('span', { id: 'underlyingPrice' }, price(s.underlying_price))),
      h('span', { id: 'suggestionStatus', class: 'badge' })),
    h('div', { class: 'card-body' },
      s.near_bollinger_band
        ? h('div', { class: 'alert alert-warning py-2', id: 'bandNotice' }, `Call spread left out: ${s.band_reason}`) : null,
      s.stressed ? h('div', { class: 'alert alert-warning py-2' }, 'Stressed market: the price is at or below the lower band.') : null,
      h('div', { class: 'small text-secondary mb-2' },
        `Short strike ${price(s.short_strike)} (base ${price(s.base_strike)}), width ${price(s.width)}, `,
        `${includesCall ? '2 put spreads + 1 call spread (2:2:1:1)' : '2 put spreads (2:2)'}; tradeable capital ${money(s.tradeable_capital)}.`),
      h('div', { class: 'table-responsive' }, h('table', { class: 'table table-sm align-middle', id: 'legsTable' },
        h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, 'Option'), h('th', {}, 'Strike'),
          h('th', { class: 'num' }, 'Bid'), h('th', { class: 'num' }, 'Mid'), h('th', { class: 'num' }, 'Ask'), h('th', { class: 'num' }, 'Live mid'))),
        h('tbody', {}, spreadRows),
        h('tfoot', {}, h('tr', {}, h('th', { colspan: 7 },
          'Total credit: natural ', h('span', { id: 'totalNatural' }, price(s.total_natural_credit)),
          ' · mid ', h('span', { id: 'totalMid' }, price(s.total_mid_credit))))))),

      h('div', { class: 'row g-3' },
        h('div', { class: 'col-12 col-md-6' },
          h('label', { for: 'creditInput', class: 'form-label' }, 'Limit credit (total, per share)'),
          h('div', { class: 'input-group has-validation' },
            h('span', { class: 'input-group-text' }, '$'),
            input,
            h('button', { class: 'btn btn-outline-secondary', type: 'button', id: 'useMid', onclick: () => setCredit(s.total_mid_credit) }, 'Mid'),
            h('button', { class: 'btn btn-outline-secondary', type: 'button', id: 'useNatural', onclick: () => setCredit(floorCents(s.total_natural_credit)) }, 'Natural'),
            h('div', { class: 'invalid-feedback', id: 'creditError', role: 'alert' })),
          h('div', { class: 'form-text text-secondary', id: 'creditHelp' },
            `Between 0.01 and ${naturalWidth(s.width).toFixed(2)} (2 × width). Mid is the default.`),
          h('div', { class: 'mt-3', id: 'pnl' },
            metric('Credit received', 'credit'),
            metric('Max profit', 'maxProfit'),
            metric('Max risk', 'maxRisk'),
            metric('Required capital', 'requiredCapital'))),
        h('div', { class: 'col-12 col-md-6' },
          h('div', { id: 'riskInfo' }),
          metric('IV rank', 'ivRank', pct100(s.iv_rank)),
          greeks(s.position_greeks))),

      h('div', { class: 'mt-3' },
        h('div', { class: 'small text-secondary mb-1' }, 'Payoff at expiration'),
        h('div', { id: 'payoffChart', class: 'chart' })),

      h('details', { class: 'mt-2', id: 'reasonTrail', open: true },
        h('summary', { class: 'small' }, 'Why this trade (reason trail)'),
        h('ol', { class: 'reason-trail mt-1' })),

      h('div', { class: 'd-flex flex-wrap gap-2 mt-3 action-row' },
        h('button', { type: 'button', class: 'btn btn-accent', id: 'approveBtn', onclick: approve },
          'Approve & Execute ', h('kbd', { class: 'small ms-1' }, 'Ctrl+Enter')),
        h('button', { type: 'button', class: 'btn btn-outline-danger', id: 'rejectBtn', onclick: reject }, 'Reject')),
      h('div', { id: 'actionMessage', class: 'mt-2' }))));

  renderStatus();
  renderRisk();
  renderTrail();
  recompute();
}

function metric(name, field, value = '—') {
  return h('div', { class: 'metric' }, h('span', {}, name), h('span', { dataset: { field } }, value));
}

function greeks(g) {
  if (!g) return metric('Greeks', 'greeks', 'not available (no implied volatility)');
  return h('div', { id: 'greeks' },
    metric('Delta', 'delta', num(g.delta, 2)),
    metric('Gamma', 'gamma', num(g.gamma, 4)),
    metric('Theta', 'theta', num(g.theta, 2)),
    metric('Vega', 'vega', num(g.vega, 2)));
}

function floorCents(value) {
  const d = Dec.of(value);
  const r = d.round(2);
  // Down to the cent (a credit rounds down to stay marketable, DOMAIN.md 5).
  return (r.cmp(d) > 0 ? r.sub('0.01') : r).toFixed(2);
}

function setCredit(text) {
  const input = $('#creditInput');
  input.value = text;
  input.dispatchEvent(new Event('input'));
}

function renderStatus() {
  const badge = $('#suggestionStatus');
  if (!badge) return;
  const status = state.view.status;
  badge.textContent = status;
  badge.dataset.status = status;
  badge.className = `badge ${status === 'PENDING' ? 'text-bg-info' : status === 'APPROVED' ? 'text-bg-success' : 'text-bg-secondary'}`;
  const pending = status === 'PENDING';
  $('#approveBtn').disabled = !pending;
  $('#rejectBtn').disabled = !pending;
}

function renderRisk() {
  const host = $('#riskInfo');
  if (!host) return;
  const v = state.view;
  const a = v.assessment;
  const verdict = v.risk_check_passed === null || v.risk_check_passed === undefined
    ? h('span', { class: 'text-secondary' }, 'pending…')
    : v.risk_check_passed ? h('span', { class: 'profit' }, 'passed') : h('span', { class: 'loss' }, `failed: ${v.risk_check_message || ''}`);
  replace(host,
    h('div', { class: 'metric' }, h('span', {}, 'Risk check'), h('span', { id: 'riskCheck', dataset: { passed: String(v.risk_check_passed) } }, verdict)),
    a ? metric('Utilisation after trade', 'utilAfter', a.utilisation === null ? '—' : pct(a.utilisation)) : null,
    a ? metric('Warning level', 'warningLevel', a.warning_level) : null,
    a && a.warning_level !== 'NONE'
      ? h('div', { class: `small ${a.warning_level === 'CRITICAL' ? 'text-danger' : 'text-warning'}`, id: 'riskWarningNote' },
        'Above your warning level: approving asks for a second confirmation.') : null);
}

function renderTrail() {
  const list = $('#reasonTrail ol');
  if (!list || !state.view) return;
  const trail = state.trails.get(state.view.suggestion.suggestion_id) || [];
  replace(list, trail.length ? trail.map((step) => h('li', {}, step)) : h('li', { class: 'list-unstyled' }, 'arriving with the live update…'));
}

function onCreditInput() {
  recompute();
}

/** Recompute the P&L and payoff at the credit typed (at once, on every keystroke). */
function recompute() {
  const s = state.view.suggestion;
  const input = $('#creditInput');
  const error = $('#creditError');
  const checked = checkCredit(input.value, s.width, s.total_mid_credit);
  const pnl = $('#pnl');
  if (!checked.ok) {
    input.classList.add('is-invalid');
    input.setAttribute('aria-invalid', 'true');
    error.textContent = checked.message;
    for (const field of ['credit', 'maxProfit', 'maxRisk']) setText($(`[data-field=${field}]`, pnl), '—');
    pnl.dataset.valid = 'false';
    return null;
  }
  input.classList.remove('is-invalid');
  input.removeAttribute('aria-invalid');
  error.textContent = '';
  const f = figures(checked.value, s.width);
  setText($('[data-field=credit]', pnl), money(checked.value.mul(100)));
  setText($('[data-field=maxProfit]', pnl), money(f.maxProfit));
  setText($('[data-field=maxRisk]', pnl), money(f.maxRisk));
  setText($('[data-field=requiredCapital]', pnl), money(f.requiredCapital));
  pnl.dataset.valid = 'true';
  pnl.dataset.credit = checked.value.toString();
  if (!state.payoff) state.payoff = new PayoffChart($('#payoffChart'));
  state.payoff.draw({
    shortStrike: s.short_strike, width: s.width, credit: checked.value.toString(),
    includesCall: !s.near_bollinger_band, price: s.underlying_price,
  });
  return checked;
}

// --- approve and reject ------------------------------------------------------------

async function approve() {
  const view = state.view;
  if (!view || state.executing || view.status !== 'PENDING') return;
  const s = view.suggestion;
  const message = $('#actionMessage');
  replace(message);
  const checked = recompute();
  if (!checked) {
    // Refused here: nothing is sent for a credit the rules would refuse anyway.
    replace(message, h('div', { class: 'alert alert-danger py-2', id: 'creditRefused' }, $('#creditError').textContent));
    $('#creditInput').focus();
    return;
  }
  const credit = checked.custom ? checked.value.toString() : null;
  state.executing = true;
  $('#approveBtn').disabled = true;
  try {
    let check;
    try {
      check = await api.validateTradeRisk({ suggestion_id: s.suggestion_id, custom_credit: credit });
    } catch (err) {
      replace(message, errorAlert(err));
      return;
    }
    if (!check.valid) {
      replace(message, h('div', { class: 'alert alert-danger py-2', id: 'riskRefused' }, h('strong', {}, 'Risk check: '), check.message));
      return;
    }
    const f = figures(checked.value, s.width);
    const summary = h('div', {},
      h('p', {}, `Sell the ${s.underlying} Senex Trident expiring ${s.expiration} with a limit credit of `, h('strong', {}, price(checked.value)),
        credit ? ' (your limit).' : ' (the mid).'),
      h('div', { class: 'metric' }, h('span', {}, 'Max profit'), h('span', {}, money(f.maxProfit))),
      h('div', { class: 'metric' }, h('span', {}, 'Max risk'), h('span', {}, money(f.maxRisk))),
      h('div', { class: 'metric' }, h('span', {}, 'Utilisation after'), h('span', {}, check.utilisation_after === null ? '—' : pct(check.utilisation_after))));
    if (!(await confirmDialog({ title: 'Approve and execute?', body: summary, confirmText: 'Approve & Execute', level: 'success', id: 'confirmDialog' }))) {
      return;
    }
    if (check.requires_confirmation) {
      const ok = await confirmDialog({
        title: `Risk warning (${check.warning_level})`,
        body: h('p', { class: 'text-warning' }, check.warning || 'This trade is above your utilisation warning level.'),
        confirmText: 'I understand, execute', level: 'warning', id: 'warningDialog',
      });
      if (!ok) return;
    }
    const body = { confirm_warning: Boolean(check.requires_confirmation) };
    if (credit) body.custom_credit = credit;
    // The positions open before this order: the one it opens is the one not among them
    // (a PositionView does not name its suggestion; the push does, when it arrives).
    const before = await api.positions(false).then((r) => new Set(r.positions.map((p) => p.position_id)), () => null);
    const reply = await api.execute(s.suggestion_id, body);
    state.view = { ...state.view, status: 'APPROVED' };
    renderStatus();
    startExecution(s, reply, before);
  } catch (err) {
    replace(message, errorAlert(err));
    errorToast(err, 'Execution');
    if (err.kind === 'STRIKE_NOT_FOUND') message.append(h('div', { class: 'small' }, 'Generate a new suggestion.'));
  } finally {
    state.executing = false;
    if (state.view && state.view.status === 'PENDING') $('#approveBtn').disabled = false;
  }
}

async function reject() {
  const view = state.view;
  if (!view || view.status !== 'PENDING') return;
  if (!(await confirmDialog({ title: 'Reject this suggestion?', body: 'It will not be traded.', confirmText: 'Reject', level: 'danger', id: 'rejectDialog' }))) return;
  try {
    const reply = await api.reject(view.suggestion.suggestion_id, 'rejected on the trading screen');
    mergeView(reply.suggestion);
    toast('info', 'Suggestion rejected');
  } catch (err) {
    replace($('#actionMessage'), errorAlert(err));
  }
}

// --- execution progress ------------------------------------------------------------

function startExecution(s, reply, before) {
  state.execution = {
    suggestionId: s.suggestion_id,
    orderId: null,
    status: 'APPROVED',
    exits: new Set(),
    expectedExits: s.spreads.length,
    positionId: null,
    before,
    started: Date.now(),
    done: false,
  };
  const host = $('#progressContainer');
  host.classList.remove('d-none');
  replace(host, h('div', { class: 'card mb-3', id: 'executionCard' },
    h('div', { class: 'card-header' }, 'Execution'),
    h('div', { class: 'card-body' },
      h('div', { class: 'mb-2' }, `Approved at a limit credit of ${price(reply.limit_credit)}. Order status: `,
        h('strong', { id: 'orderStatus', dataset: { status: 'APPROVED' } }, 'APPROVED')),
      h('ol', { class: 'progress-steps', id: 'progressSteps' }, STEPS.map(([key, text]) => h('li', { dataset: { step: key } }, text))),
      h('div', { id: 'executionDetail', class: 'small text-secondary mt-2' }))));
  toast('success', 'Approved', `Limit credit ${price(reply.limit_credit)}: the order follows.`);
  renderProgress();
  pollExecution();
}

function setOrderStatus(status, detail) {
  const ex = state.execution;
  if (!ex || ex.done) return;
  ex.status = status;
  renderProgress(detail);
  loadPendingOrdersSoon();
  if (status === 'FILLED') {
    toast('success', 'Order filled', 'The position is open; its exits are being placed.');
    loadRiskBudget();
  } else if (status === 'REJECTED' || status === 'CANCELLED' || status === 'EXPIRED') {
    ex.done = true;
    toast('danger', `Order ${status.toLowerCase()}`, detail || '');
    loadRiskBudget();
  }
}

function renderProgress(detail) {
  const ex = state.execution;
  if (!ex) return;
  const order = ['APPROVED', 'SUBMITTED', 'WORKING', 'PARTIALLY_FILLED', 'FILLED'];
  const reached = order.indexOf(ex.status);
  const failed = ['REJECTED', 'CANCELLED', 'EXPIRED'].includes(ex.status);
  const el = $('#orderStatus');
  el.textContent = ex.status;
  el.dataset.status = ex.status;
  document.querySelectorAll('#progressSteps li').forEach((li) => {
    const step = li.dataset.step;
    let done = false;
    if (step === 'POSITION') done = ex.positionId !== null;
    else if (step === 'EXITS') {
      done = ex.exits.size >= ex.expectedExits;
      li.textContent = `Exit orders placed (${ex.exits.size}/${ex.expectedExits})`;
    } else done = reached >= order.indexOf(step) && reached >= 0;
    li.classList.toggle('done', done);
  });
  if (failed) {
    const next = document.querySelector('#progressSteps li:not(.done)');
    if (next) next.classList.add('failed');
  }
  if (detail) setText('#executionDetail', detail);
  if (ex.positionId && ex.exits.size >= ex.expectedExits) {
    ex.done = true;
    replace($('#executionDetail'), 'Position open with its profit-target exits: see ',
      h('a', { href: '/trading/positions/', id: 'positionsLink' }, 'Positions'), '.');
  }
}

function onOrderStatus(m) {
  const ex = state.execution;
  loadPendingOrdersSoon();
  if (!ex) return;
  if (m.suggestion_id && m.suggestion_id === ex.suggestionId && m.purpose === 'OPEN') ex.orderId = m.order_id;
  if (!ex.orderId || m.order_id !== ex.orderId) return;
  const detail = m.status === 'REJECTED' ? describe({ kind: m.kind, message: m.reason }).title + (m.reason ? ` ${m.reason}` : '') : '';
  setOrderStatus(m.status, detail);
}

function onPositionUpdate(m) {
  const ex = state.execution;
  if (!ex) return;
  if (m.event === 'PositionOpened' && m.suggestion_id === ex.suggestionId) {
    ex.positionId = m.position_id;
    if (ex.status !== 'FILLED') ex.status = 'FILLED';
    renderProgress();
  } else if (m.event === 'ExitOrderPlaced' && ex.positionId && m.position_id === ex.positionId) {
    ex.exits.add(m.spread_kind);
    renderProgress();
  }
}

function onSuggestionUpdate(m) {
  const id = m.suggestion_id;
  if (m.event === 'SuggestionGenerated' && m.reason_trail) state.trails.set(id, m.reason_trail);
  if (m.event === 'RiskCheckPassed' || m.event === 'RiskCheckFailed') state.riskChecks.set(id, m);
  if (!state.view || state.view.suggestion.suggestion_id !== id) {
    if (m.event === 'SuggestionGenerated' && m.automatic && !state.view) refreshSuggestion();
    return;
  }
  if (m.event === 'SuggestionGenerated') renderTrail();
  if (m.event === 'RiskCheckPassed' || m.event === 'RiskCheckFailed') {
    state.view = { ...state.view, risk_check_passed: m.risk_check_passed, risk_check_message: m.message || null, assessment: m.assessment || state.view.assessment };
    renderRisk();
  } else if (m.status && m.status !== state.view.status && m.event !== 'SuggestionGenerated') {
    state.view = { ...state.view, status: m.status };
    renderStatus();
  }
}

let polling = false;
/**
 * The order's state read back over REST, every 2 s until it is final and the exits are
 * placed: the socket's pushes are the fast path, this makes the outcome certain even
 * when a push was missed (a reconnect, a restarted gateway).
 */
async function pollExecution() {
  if (polling) return;
  polling = true;
  try {
    while (state.execution && !state.execution.done && Date.now() - state.execution.started < POLL_FOR_MS) {
      const ex = state.execution;
      try {
        if (!ex.orderId) {
          const { orders } = await api.orders(false);
          const mine = orders.find((o) => o.suggestion_id === ex.suggestionId && o.purpose === 'OPEN');
          if (mine) ex.orderId = mine.order_id;
        }
        if (ex.orderId && !TERMINAL.has(ex.status)) {
          const { order } = await api.orderStatus(ex.orderId);
          if (order.status !== ex.status) setOrderStatus(order.status, order.reason || '');
        }
        if (ex.status === 'FILLED') {
          const { positions } = await api.positions(false);
          const pos = ex.positionId
            ? positions.find((p) => p.position_id === ex.positionId)
            : positions.find((p) => ex.before && !ex.before.has(p.position_id));
          if (pos) {
            ex.positionId = pos.position_id;
            pos.spreads.filter((sp) => sp.exit_order_id).forEach((sp) => ex.exits.add(sp.spread.kind));
            renderProgress();
          }
        }
      } catch (err) {
        if (err.kind !== 'SERVICE_UNAVAILABLE') setText('#executionDetail', describe(err).title);
      }
      if (state.execution && (state.execution.done || TERMINAL.has(state.execution.status) && state.execution.status !== 'FILLED')) break;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    polling = false;
  }
}

main().catch((err) => {
  if (err && err.status === 401) return; // redirected to the login page
  console.error(err);
  const host = $('#banners');
  if (host) host.append(errorAlert(err));
});

