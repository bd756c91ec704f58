// Small DOM helpers. Text always goes in through text nodes (never innerHTML), so a sensor label
// or a user name from the API can never become markup.
import { t, has } from './i18n.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(parent, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(parent, c);
  } else if (child instanceof Node) {
    parent.appendChild(child);
  } else {
    parent.appendChild(document.createTextNode(String(child)));
  }
}

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'on') {
      for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    } else if (key === 'class') {
      el.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    } else if (key === 'text') {
      el.textContent = value;
    } else if (key === 'value' && 'value' in el && !(el instanceof SVGElement)) {
      el.value = value;
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

// h('button', {class: 'btn', 'data-action': 'x', on: {click}}, 'text', child, [more])
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

// Keyed list rendering: a row is rebuilt only when its data changed, so polling does not
// steal focus from a control, reset a select the admin is using, or flicker.
export function renderList(container, items, keyOf, render) {
  const old = new Map();
  for (const child of container.children) {
    if (child.dataset.key !== undefined) old.set(child.dataset.key, child);
  }
  const next = [];
  for (const item of items) {
    const key = String(keyOf(item));
    const sig = JSON.stringify(item);
    let el = old.get(key);
    if (!el || el.__sig !== sig) {
      el = render(item);
      el.dataset.key = key;
      el.__sig = sig;
    }
    next.push(el);
  }
  container.replaceChildren(...next);
}

// Status classes shared by every page: ok, warning, critical, unknown.
export function statusClass(status) {
  switch (status) {
    case 'ok':
    case 'ready':
    case 'succeeded':
    case 'enabled':
      return 'ok';
    case 'warning':
      return 'warning';
    case 'critical':
    case 'corrupt':
    case 'failed':
      return 'critical';
    case 'importing':
    case 'verifying':
    case 'running':
    case 'queued':
      return 'info';
    default:
      return 'unknown';
  }
}

// A translated label for an API value, or the value itself when this version has no string.
export function label(group, value) {
  const key = `${group}.${value}`;
  return has(key) ? t(key) : String(value);
}

export function statusPill(status, group = 'status') {
  return h('span', { class: ['pill', `st-${statusClass(status)}`], 'data-status': status },
    h('span', { class: 'dot', 'aria-hidden': 'true' }), label(group, status));
}

export function simulatedBadge() {
  return h('span', { class: 'badge badge-simulated', title: t('hw.simulatedHint') }, t('hw.simulated'));
}

export function emptyState(text) {
  return h('p', { class: 'empty' }, text);
}

export function loading() {
  return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), t('common.loading'));
}

// A form field: label, control and an optional hint, tied together for screen readers.
let fieldSeq = 0;
export function field(labelText, control, hint) {
  const id = control.id || `f${++fieldSeq}`;
  control.id = id;
  const hintEl = hint ? h('small', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, labelText), control, hintEl);
}

export function select(attrs, options, selected) {
  return h('select', attrs, options.map(([value, text]) =>
    h('option', { value, selected: String(value) === String(selected) }, text)));
}

// Runs an async action with the button disabled and marked busy meanwhile.
export async function busy(btn, work) {
  if (btn) {
    btn.disabled = true;
    btn.setAttribute('aria-busy', 'true');
  }
  try {
    return await work();
  } finally {
    if (btn) {
      btn.disabled = false;
      btn.removeAttribute('aria-busy');
    }
  }
}

export function definitionList(rows) {
  return h('dl', { class: 'facts' }, rows.filter(Boolean).map(([term, value]) =>
    h('div', { class: 'fact' }, h('dt', null, term), h('dd', null, value))));
}

export function meter(fraction, status) {
  const el = h('span', { class: ['bar', status ? `st-${statusClass(status)}` : null], 'aria-hidden': 'true' },
    h('span', { class: 'bar-fill' }));
  const pct = Number.isFinite(fraction) ? Math.max(0, Math.min(1, fraction)) * 100 : 0;
  el.firstChild.style.width = `${pct}%`;
  return el;
}

// An API error as a headline in the current language plus the agent's own message, which
// says what to do (in English).
export function errorParts(error) {
  if (!error) return { summary: '', detail: '' };
  const key = `errors.${error.code}`;
  const summary = error.code && has(key) ? t(key, { seconds: error.retryAfter ?? '?' }) : (error.message || t('errors.unknown'));
  const plain = (text) => String(text).toLowerCase().replace(/[^\p{L}\p{N}]+/gu, '');
  const detail = error.message && error.status && plain(error.message) !== plain(summary) ? error.message : '';
  return { summary, detail };
}

export function errorBox(error, attrs = {}) {
  const { summary, detail } = errorParts(error);
  return h('div', { class: 'alert alert-critical', role: 'alert', 'data-role': 'error', 'data-code': error?.code, ...attrs },
    h('strong', null, summary), detail ? h('span', { class: 'alert-detail' }, detail) : null);
}

// Fills (or empties) a form's [data-role=error] element.
export function showFormError(form, error) {
  const slot = form.querySelector('[data-role=error]');
  if (!slot) return;
  slot.replaceChildren();
  slot.hidden = !error;
  if (!error) return;
  const { summary, detail } = errorParts(error);
  slot.dataset.code = error.code || '';
  slot.append(h('strong', null, summary), detail ? h('span', { class: 'alert-detail' }, detail) : '');
  if (error.field) {
    const input = form.querySelector(`[name="${CSS.escape(error.field)}"]`);
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    }
  }
}

export function formErrorSlot() {
  return h('div', { class: 'alert alert-critical', role: 'alert', 'data-role': 'error', hidden: true });
}

export function toast(text, kind = 'ok', detail = '') {
  const box = document.getElementById('toasts');
  const close = h('button', { type: 'button', class: 'toast-close', 'aria-label': t('common.close') }, '×');
  const el = h('div', { class: ['toast', `toast-${kind}`], 'data-role': kind === 'critical' ? 'error' : 'notice' },
    h('div', { class: 'toast-body' }, h('strong', null, text), detail ? h('span', null, detail) : null), close);
  const remove = () => el.remove();
  close.addEventListener('click', remove);
  box.append(el);
  while (box.children.length > 3) box.firstElementChild.remove();
  setTimeout(remove, kind === 'critical' ? 15000 : 5000);
}

export function toastError(error) {
  const { summary, detail } = errorParts(error);
  toast(summary, 'critical', detail);
}

function openDialog(content, { onClose, labelledBy } = {}) {
  const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': labelledBy }, content);
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (onClose) onClose(dialog.returnValue);
  });
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

let dialogSeq = 0;

// An in-page confirmation; resolves true when the admin confirms.
export function confirmDialog({ title, message, confirmText, cancelText, danger = true, details }) {
  return new Promise((resolve) => {
    const id = `dlg${++dialogSeq}`;
    const form = h('form', { method: 'dialog', class: 'dialog-body' },
      h('h2', { id, class: 'dialog-title' }, title),
      message ? h('p', null, message) : null,
      details || null,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'submit', value: 'cancel', class: 'btn', 'data-role': 'cancel', autofocus: true }, cancelText || t('common.cancel')),
        h('button', { type: 'submit', value: 'confirm', class: ['btn', danger ? 'btn-danger' : 'btn-primary'], 'data-role': 'confirm' },
          confirmText || t('common.confirm'))));
    openDialog(form, { labelledBy: id, onClose: (value) => resolve(value === 'confirm') });
  });
}

async function copyText(text, el) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const range = document.createRange();
    range.selectNodeContents(el);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    return document.execCommand('copy');
  }
}

// A secret the agent shows once (token, API key, one-time password), with a copy button.
export function secretDialog({ title, intro, secret, note }) {
  return new Promise((resolve) => {
    const id = `dlg${++dialogSeq}`;
    const value = h('code', { class: 'secret-value', 'data-role': 'secret', tabindex: '0' }, secret);
    const status = h('span', { class: 'copy-status', role: 'status' });
    const copy = h('button', { type: 'button', class: 'btn', 'data-role': 'copy' }, t('common.copy'));
    copy.addEventListener('click', async () => {
      const ok = await copyText(secret, value);
      status.textContent = ok ? t('common.copied') : t('common.copyFailed');
    });
    const form = h('form', { method: 'dialog', class: 'dialog-body' },
      h('h2', { id, class: 'dialog-title' }, title),
      intro ? h('p', null, intro) : null,
      h('div', { class: 'secret' }, value, copy),
      status,
      h('p', { class: 'alert alert-warning' }, note || t('common.secretOnce')),
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'submit', value: 'done', class: 'btn btn-primary', 'data-role': 'done' }, t('common.secretDone'))));
    openDialog(form, { labelledBy: id, onClose: () => resolve() });
  });
}
