// The settings page: the account's settings (risk template, auto-execute, underlyings,
// e-mail preferences; PUT replaces the whole snapshot) and the broker link (status,
// paper/live; secrets are write-only: sent once, never shown back).
import { api } from './api.js';
import { boot } from './shell.js';
import { label, dateTime } from './format.js';
import { $, h, replace, errorAlert, toast } from './ui.js';

const UNDERLYINGS = ['QQQ', 'SPY'];
const TOPICS = [
  'ORDER_FILLED', 'PARTIAL_FILL', 'PROFIT_TARGET', 'STOP_LOSS', 'TIME_EXIT', 'ORDER_FAILED',
  'POSITION_CLOSED_EXTERNALLY', 'NEEDS_ATTENTION', 'API_ERROR', 'TRADING_SUSPENDED',
];
const EMAIL_RE = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
let mode = 'PAPER';

function checkbox(name, value, checked, text) {
  const id = `${name}-${value}`;
  return h('div', { class: 'form-check' },
    h('input', { class: 'form-check-input', type: 'checkbox', id, name, value, checked }),
    h('label', { class: 'form-check-label', for: id }, text));
}

function fill(settings) {
  const form = $('#settingsForm');
  form.risk_template.value = settings.risk_template;
  form.automation_enabled.checked = settings.automation_enabled;
  form.automation_offset_cents.value = settings.automation_offset_cents;
  form.email.value = settings.email || '';
  replace($('#underlyings'), UNDERLYINGS.map((u) => checkbox('underlying', u, settings.underlyings.includes(u), u)));
  replace($('#emailTopics'), TOPICS.map((t) => h('div', { class: 'col' }, checkbox('topic', t, settings.email_topics.includes(t), label(t)))));
}

/** The form as an AccountSettings snapshot, or null with the fields marked. */
function read() {
  const form = $('#settingsForm');
  let ok = true;
  const offsetText = form.automation_offset_cents.value.trim();
  const offsetOk = /^\d{1,4}$/.test(offsetText) && Number(offsetText) <= 1000;
  form.automation_offset_cents.classList.toggle('is-invalid', !offsetOk);
  $('#offsetError').textContent = offsetOk ? '' : 'A whole number of cents from 0 to 1000.';
  ok &&= offsetOk;
  const email = form.email.value.trim();
  const emailOk = email === '' || (EMAIL_RE.test(email) && email.length <= 254);
  form.email.classList.toggle('is-invalid', !emailOk);
  $('#emailError').textContent = emailOk ? '' : 'Enter an address like name@example.com, or leave it empty.';
  ok &&= emailOk;
  const underlyings = [...form.querySelectorAll('input[name=underlying]:checked')].map((i) => i.value);
  if (!ok) return null;
  return {
    risk_template: form.risk_template.value,
    automation_enabled: form.automation_enabled.checked,
    automation_offset_cents: Number(offsetText),
    underlyings,
    email_topics: [...form.querySelectorAll('input[name=topic]:checked')].map((i) => i.value),
    email: email || null,
  };
}

async function save(event) {
  event.preventDefault();
  const message = $('#settingsMessage');
  replace(message);
  const settings = read();
  if (!settings) return;
  try {
    const reply = await api.putSettings(settings);
    fill(reply.settings);
    replace(message, h('div', { class: 'alert alert-success py-2', id: 'settingsSaved' }, 'Settings saved.'));
  } catch (err) {
    replace(message, errorAlert(err));
  }
}

function drawLink(status) {
  const host = $('#brokerLink');
  mode = status.mode;
  const accounts = status.accounts.length
    ? h('ul', { class: 'list-unstyled mb-3', id: 'linkedAccounts' }, status.accounts.map((a) => h('li', {},
      h('span', { class: `badge me-2 ${a.mode === 'LIVE' ? 'text-bg-danger' : 'text-bg-secondary'}` }, a.mode),
      h('span', { class: 'font-monospace' }, a.account_number), a.nickname ? ` (${a.nickname})` : '',
      h('div', { class: 'small text-secondary' }, `linked ${dateTime(a.linked_at)}`))))
    : h('p', { class: 'text-warning' }, 'No broker account linked.');
  const secret = h('input', { class: 'form-control mb-2', type: 'password', id: 'clientSecret', autocomplete: 'off', placeholder: 'OAuth client secret' });
  const refresh = h('input', { class: 'form-control mb-2', type: 'password', id: 'refreshToken', autocomplete: 'off', placeholder: 'Refresh token' });
  const nickname = h('input', { class: 'form-control mb-2', id: 'nickname', maxlength: 100, placeholder: 'Nickname (optional)' });
  const result = h('div', { class: 'mt-2' });
  const link = async (withCredentials) => {
    replace(result);
    const body = { mode, nickname: nickname.value.trim() || null };
    if (withCredentials) {
      if (!secret.value || !refresh.value) {
        replace(result, h('div', { class: 'alert alert-danger py-2' }, 'Give both the client secret and the refresh token.'));
        return;
      }
      body.client_secret = secret.value;
      body.refresh_token = refresh.value;
    }
    try {
      const reply = await api.putBrokerLink(body);
      // The secrets leave the page: they are never shown or kept.
      secret.value = '';
      refresh.value = '';
      toast('success', 'Broker account linked');
      drawLink(reply);
    } catch (err) {
      replace(result, errorAlert(err));
    }
  };
  replace(host,
    h('p', {}, 'This system trades ', h('strong', { id: 'tradingMode' }, status.mode === 'LIVE' ? 'LIVE (real money)' : 'PAPER (simulator)'), '.'),
    accounts,
    h('div', { class: 'small text-secondary mb-2' }, 'Credentials are checked with the broker, stored encrypted and never shown again.'),
    secret, refresh, nickname,
    h('div', { class: 'd-flex flex-wrap gap-2' },
      h('button', { type: 'button', class: 'btn btn-outline-light', id: 'linkWithCredentials', onclick: () => link(true) }, 'Link with credentials'),
      status.mode === 'PAPER'
        ? h('button', { type: 'button', class: 'btn btn-outline-secondary', id: 'linkPaper', onclick: () => link(false) }, 'New paper account') : null),
    result);
}

boot({ live: true }).then(async () => {
  $('#settingsForm').addEventListener('submit', save);
  const [settings, link] = await Promise.allSettled([api.settings(), api.brokerLink()]);
  if (settings.status === 'fulfilled') {
    $('#settingsAccount').textContent = `· ${settings.value.account_number}`;
    fill(settings.value.settings);
  } else {
    replace($('#settingsMessage'), errorAlert(settings.reason));
  }
  if (link.status === 'fulfilled') drawLink(link.value);
  else replace($('#brokerLink'), errorAlert(link.reason));
  document.body.dataset.ready = 'true';
}).catch((err) => {
  if (err && err.status !== 401) $('#banners').append(errorAlert(err));
});
