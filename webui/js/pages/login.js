// Login, lock-out and the forced password change of a first (or reset) login.
import { api, post } from '../api.js';
import { t } from '../i18n.js';
import { h, field, formErrorSlot, showFormError, busy } from '../ui.js';

// The password just typed, so the forced change need not ask for it again. Memory only.
let typedPassword = null;

function brand() {
  return h('div', { class: 'login-brand' },
    h('span', { class: 'brand-mark brand-mark-lg', 'aria-hidden': 'true' }, 'ai'),
    h('div', null, h('h1', null, t('shell.product')), h('p', { class: 'muted' }, t('login.subtitle'))));
}

function lockoutCountdown(form, error) {
  const slot = form.querySelector('[data-role=error]');
  const submit = form.querySelector('button[type=submit]');
  let left = Math.max(1, Math.round(error.retryAfter || 60));
  const tick = () => {
    if (!form.isConnected) return;
    showFormError(form, { ...error, retryAfter: left, message: '' });
    slot.dataset.retryAfter = String(left);
    if (left <= 0) {
      submit.disabled = false;
      showFormError(form, null);
      return;
    }
    submit.disabled = true;
    left -= 1;
    setTimeout(tick, 1000);
  };
  tick();
}

function loginForm(ctx) {
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, t('login.submit'));
  const form = h('form', { id: 'login', class: 'stack', novalidate: false },
    field(t('login.username'), username),
    field(t('login.password'), password),
    formErrorSlot(),
    submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showFormError(form, null);
    const notice = form.parentElement && form.parentElement.querySelector('[data-role=notice]');
    if (notice) notice.remove();
    let locked = null;
    await busy(submit, async () => {
      submit.textContent = t('login.signingIn');
      try {
        const data = await api('POST', '/api/v1/auth/login',
          { username: username.value.trim(), password: password.value }, { auth: true });
        typedPassword = password.value;
        ctx.app.loggedIn(data);
      } catch (error) {
        submit.textContent = t('login.submit');
        if (error.code === 'locked_out') {
          locked = error;
          return;
        }
        showFormError(form, error);
        password.select();
      }
    });
    if (!form.isConnected) return;
    submit.textContent = t('login.submit');
    if (locked) lockoutCountdown(form, locked);
  });
  queueMicrotask(() => username.focus());
  return form;
}

function passwordChangeForm(ctx) {
  const known = typedPassword;
  const old = h('input', { name: 'old_password', type: 'password', autocomplete: 'current-password', required: true, value: known || '' });
  const fresh = h('input', { name: 'new_password', type: 'password', autocomplete: 'new-password', required: true, minlength: 12 });
  const confirm = h('input', { name: 'confirm', type: 'password', autocomplete: 'new-password', required: true });
  const oldField = field(t('login.oldPassword'), old);
  if (known) oldField.hidden = true;
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, t('login.changeSubmit'));
  const signOut = h('button', { type: 'button', class: 'btn btn-link' }, t('login.signOutInstead'));
  signOut.addEventListener('click', () => ctx.app.logout());
  const form = h('form', { id: 'password-change', class: 'stack' },
    h('h2', null, t('login.changeTitle')),
    h('p', { class: 'muted' }, t('login.changeIntro', { user: ctx.session.user })),
    oldField,
    field(t('login.newPassword'), fresh, t('login.policy')),
    field(t('login.confirmPassword'), confirm),
    formErrorSlot(),
    submit,
    signOut);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showFormError(form, null);
    if (fresh.value !== confirm.value) {
      showFormError(form, { code: 'mismatch', message: t('login.mismatch') });
      confirm.focus();
      return;
    }
    await busy(submit, async () => {
      try {
        await post('/api/v1/auth/password', { old_password: old.value, new_password: fresh.value });
        typedPassword = null;
        ctx.app.passwordChanged();
      } catch (error) {
        if (error.field === 'old_password') oldField.hidden = false;
        showFormError(form, error);
      }
    });
  });
  queueMicrotask(() => (known ? fresh : old).focus());
  return form;
}

export default {
  name: 'login',
  title: 'login.title',
  allowed: () => true,
  mount(main, ctx) {
    const changing = ctx.session && ctx.session.mustChange;
    const notice = !changing && ctx.app.notice
      ? h('p', { class: 'alert alert-info', 'data-role': 'notice' }, ctx.app.notice) : null;
    const body = changing ? passwordChangeForm(ctx) : loginForm(ctx);
    const help = changing ? null : h('details', { class: 'login-help' },
      h('summary', null, t('login.helpTitle')),
      h('p', null, t('login.helpFirst')),
      h('p', null, h('code', null, 'aiboxctl users bootstrap-info')));
    main.append(h('div', { class: 'login-card' }, brand(), notice, body, help));
    ctx.ready();
    return { refresh: null };
  },
};
