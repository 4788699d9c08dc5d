// Small DOM helpers shared by the pages: element building (text is always set as text,
// never parsed as HTML), toasts, attention banners and confirm dialogs.
import { describe } from './errors.js';

/** h('div', {class: 'x', dataset: {k: 'v'}, onclick: fn}, child, 'text', ...) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function setText(selector, text, root = document) {
  const el = typeof selector === 'string' ? $(selector, root) : selector;
  if (el) el.textContent = text;
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// --- toasts ------------------------------------------------------------------------

const TOAST_MS = 6000;

/** A short, self-dismissing message: level one of success, info, warning, danger. */
export function toast(level, title, body = '') {
  let stack = $('#toastStack');
  if (!stack) {
    stack = h('div', { id: 'toastStack', class: 'toast-stack', 'aria-live': 'polite' });
    document.body.append(stack);
  }
  const el = h(
    'div',
    { class: `senex-toast border-${level}`, role: level === 'danger' ? 'alert' : 'status', dataset: { level } },
    h('div', { class: 'd-flex justify-content-between gap-2' },
      h('strong', {}, title),
      h('button', { type: 'button', class: 'btn-close btn-close-white', 'aria-label': 'Close', onclick: () => el.remove() })),
    body ? h('div', { class: 'small mt-1' }, body) : null,
  );
  stack.append(el);
  setTimeout(() => el.remove(), level === 'danger' ? TOAST_MS * 2 : TOAST_MS);
  return el;
}

/** A toast for an API or ws error, with the message for its kind. */
export function errorToast(error, context = '') {
  const d = describe(error);
  return toast('danger', context ? `${context}: ${d.title}` : d.title, [d.detail, d.hint].filter(Boolean).join(' '));
}

/** An alert box for an error, to place in a card. */
export function errorAlert(error) {
  const d = describe(error);
  return h('div', { class: 'alert alert-danger mb-2', role: 'alert', dataset: { kind: d.kind } },
    h('strong', {}, d.title), ' ',
    d.detail ? h('span', { class: 'error-detail' }, d.detail) : null,
    d.hint ? h('div', { class: 'small mt-1' }, d.hint) : null);
}

// --- attention banners -------------------------------------------------------------

/** A banner that stays until dismissed (attention: partial fills, positions gone...). */
export function banner(level, title, body, key) {
  const host = $('#banners');
  if (!host) return null;
  if (key && host.querySelector(`[data-key="${CSS.escape(key)}"]`)) return null;
  const el = h('div', { class: `alert alert-${level} d-flex justify-content-between align-items-start mb-2`, role: 'alert', dataset: { key: key || '' } },
    h('div', {}, h('strong', {}, title), body ? h('div', { class: 'small' }, body) : null),
    h('button', { type: 'button', class: 'btn-close', 'aria-label': 'Dismiss', onclick: () => el.remove() }));
  host.append(el);
  return el;
}

// --- dialogs -----------------------------------------------------------------------

/**
 * A modal confirm (native <dialog>): resolves true on confirm, false on cancel/Escape.
 * ``body`` is a node or text.
 */
export function confirmDialog({ title, body, confirmText = 'Confirm', level = 'primary', id }) {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'senex-dialog', id: id || null, 'aria-labelledby': 'dlgTitle' },
      h('h5', { id: 'dlgTitle', class: 'mb-3' }, title),
      h('div', { class: 'mb-3 dialog-body' }, body),
      h('div', { class: 'd-flex justify-content-end gap-2' },
        h('button', { type: 'button', class: 'btn btn-outline-secondary', dataset: { action: 'cancel' } }, 'Cancel'),
        h('button', { type: 'button', class: `btn btn-${level}`, dataset: { action: 'confirm' } }, confirmText)));
    const done = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    dialog.addEventListener('cancel', (e) => {
      e.preventDefault();
      done(false);
    });
    dialog.querySelector('[data-action=cancel]').addEventListener('click', () => done(false));
    dialog.querySelector('[data-action=confirm]').addEventListener('click', () => done(true));
    document.body.append(dialog);
    dialog.showModal();
    dialog.querySelector('[data-action=confirm]').focus();
  });
}
