// The login page: POST /api/auth/login sets the session cookie; the CSRF token it
// returns is fetched again by each page from /api/me, so nothing is kept here.
import { api } from './api.js';
import { errorAlert, h, replace } from './ui.js';

/** Only same-site paths: a crafted ?next=https://elsewhere must not send users away. */
function nextPath() {
  const next = new URLSearchParams(location.search).get('next') || '';
  return next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/trading/';
}

const form = document.getElementById('loginForm');
const error = document.getElementById('loginError');

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  replace(error);
  const button = document.getElementById('loginBtn');
  button.disabled = true;
  try {
    await api.login(form.username.value.trim(), form.password.value);
    window.location.assign(nextPath());
  } catch (err) {
    if (err.status === 401) {
      replace(error, h('div', { class: 'alert alert-danger' }, 'Wrong username or password.'));
    } else if (err.kind === 'RATE_LIMITED') {
      const wait = err.details.retry_after_s;
      replace(error, h('div', { class: 'alert alert-warning' }, `Too many login attempts: try again${wait ? ` in ${wait} s` : ' later'}.`));
    } else {
      replace(error, errorAlert(err));
    }
    form.password.select();
  } finally {
    button.disabled = false;
  }
});
