// The audit page: the account's recorded events (filters by type and time, paged),
// each event's causal chain (every event sharing its correlation id), and the hash
// chain's verify result.
import { api } from './api.js';
import { boot } from './shell.js';
import { dateTime } from './format.js';
import { $, h, replace, errorAlert } from './ui.js';

let nextAfter = null;

function query(after) {
  const params = new URLSearchParams();
  const types = $('#typeFilter').value.split(',').map((t) => t.trim()).filter(Boolean);
  types.forEach((t) => params.append('type', t));
  for (const [id, name] of [['#sinceFilter', 'since'], ['#untilFilter', 'until']]) {
    const value = $(id).value;
    // datetime-local is local time without a zone; the API wants one.
    if (value) params.set(name, new Date(value).toISOString());
  }
  if (after !== null) params.set('after_position', String(after));
  params.set('limit', '100');
  return params.toString();
}

function correlationOf(event) {
  return event.data && typeof event.data.correlation_id === 'string' ? event.data.correlation_id : null;
}

function eventRow(event) {
  const correlation = correlationOf(event);
  const details = h('details', {}, h('summary', { class: 'small' }, 'data'),
    h('pre', { class: 'event-data' }, JSON.stringify(event.data ?? event.raw, null, 2)));
  return h('tr', { dataset: { position: String(event.position), type: event.type || '' } },
    h('td', { class: 'num' }, String(event.position)),
    h('td', { class: 'small' }, dateTime(event.occurred_at)),
    h('td', {}, event.type || h('em', {}, 'unreadable')),
    h('td', {}, event.valid ? h('span', { class: 'profit' }, 'valid') : h('span', { class: 'loss' }, 'invalid')),
    h('td', {}, correlation
      ? h('button', { type: 'button', class: 'btn btn-sm btn-outline-secondary chain-btn', onclick: () => showChain(correlation) }, 'Causal chain')
      : null),
    h('td', {}, details));
}

function table(events, id) {
  return h('div', { class: 'table-responsive' }, h('table', { class: 'table table-sm mb-0 align-middle', id },
    h('thead', {}, h('tr', {}, ['#', 'Occurred', 'Type', 'Record', '', ''].map((t) => h('th', {}, t)))),
    h('tbody', {}, events.map(eventRow))));
}

async function load(append = false) {
  replace($('#auditError'));
  try {
    const page = await api.auditEvents(query(append ? nextAfter : null));
    nextAfter = page.next_after_position;
    const host = $('#eventsContainer');
    if (append && $('#eventsTable')) {
      $('#eventsTable tbody').append(...page.events.map(eventRow));
    } else if (page.events.length) {
      replace(host, table(page.events, 'eventsTable'));
    } else {
      replace(host, h('div', { class: 'p-3 text-secondary', id: 'noEvents' }, 'No events match.'));
    }
    $('#moreBtn').classList.toggle('d-none', nextAfter === null || nextAfter === undefined);
  } catch (err) {
    replace($('#auditError'), errorAlert(err));
  }
}

async function showChain(correlationId) {
  const card = $('#chainCard');
  card.classList.remove('d-none');
  $('#chainId').textContent = correlationId;
  try {
    const page = await api.auditChain(correlationId);
    replace($('#chainContainer'), table(page.events, 'chainTable'));
  } catch (err) {
    replace($('#chainContainer'), h('div', { class: 'p-2' }, errorAlert(err)));
  }
  card.scrollIntoView({ behavior: 'smooth' });
}

async function verify() {
  const out = $('#verifyResult');
  out.textContent = 'verifying…';
  try {
    const r = await api.auditVerify();
    out.dataset.ok = String(r.ok);
    replace(out, h('span', { class: r.ok ? 'profit' : 'loss' },
      r.ok ? `Hash chain intact (${r.checked} events checked)` : `Tampering found at event ${r.first_bad_position}: ${r.message}`));
  } catch (err) {
    replace(out, errorAlert(err));
  }
}

boot({ live: false }).then(async () => {
  $('#auditFilters').addEventListener('submit', (e) => {
    e.preventDefault();
    load(false);
  });
  $('#moreBtn').addEventListener('click', () => load(true));
  $('#verifyBtn').addEventListener('click', verify);
  $('#closeChain').addEventListener('click', () => $('#chainCard').classList.add('d-none'));
  await load(false);
  document.body.dataset.ready = 'true';
}).catch((err) => {
  if (err && err.status !== 401) $('#banners').append(errorAlert(err));
});
