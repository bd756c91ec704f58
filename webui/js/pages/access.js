// Users & access: accounts, admin API tokens, inference API keys and login sessions.
import { get, post, patch, del, enc } from '../api.js';
import { t } from '../i18n.js';
import {
  h, renderList, emptyState, label, field, formErrorSlot, showFormError, busy, select,
  confirmDialog, secretDialog, toast, toastError, statusPill,
} from '../ui.js';
import * as fmt from '../format.js';
import { ROLES } from '../roles.js';
import { pageFrame, section } from './frame.js';

function roleOptions() {
  return ROLES.map((r) => [r, label('role', r)]);
}

function when(iso, never) {
  return iso ? h('span', { class: 'nowrap', title: fmt.dateTime(iso) }, fmt.relative(iso)) : h('span', { class: 'muted nowrap' }, never || t('common.never'));
}

function th(text, cls) {
  return h('th', { scope: 'col', class: cls }, text);
}

function tableOf(headers, body) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'table table-compact' },
    h('thead', null, h('tr', null, headers)), body));
}

function optionalInt(input) {
  const v = input.value.trim();
  return v === '' ? undefined : Number(v);
}

export default {
  name: 'access',
  title: 'nav.access',
  allowed: (can) => can('user:admin') || can('key:read'),
  mount(main, ctx) {
    const me = ctx.session.user;
    const canUsers = ctx.can('user:admin');
    const canKeysRead = ctx.can('key:read');
    const canKeysWrite = ctx.can('key:admin');
    const frame = pageFrame(main, ctx, { title: t('nav.access'), intro: t('access.intro') });

    // Runs a row action: busy button, toast on success, error toast, refresh.
    async function act(btn, work, done) {
      await busy(btn, async () => {
        try {
          const result = await work();
          if (done) await done(result);
          ctx.refreshNow();
        } catch (error) {
          toastError(error);
        }
      });
    }

    // ---------------------------------------------------------------- users
    const userBody = h('tbody');
    let userForm = null;
    if (canUsers) {
      const name = h('input', { name: 'name', required: true, autocomplete: 'off', spellcheck: 'false', maxlength: 32 });
      const role = select({ name: 'role' }, roleOptions(), 'viewer');
      const password = h('input', { name: 'password', type: 'password', autocomplete: 'new-password' });
      const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-action': 'user-add' }, t('access.addUser'));
      userForm = h('form', { id: 'user-add', class: 'form-inline' },
        field(t('access.userName'), name, t('access.userNameHint')),
        field(t('access.role'), role),
        field(t('access.initialPassword'), password, t('access.initialPasswordHint')),
        h('div', { class: 'form-actions' }, submit),
        formErrorSlot());
      userForm.addEventListener('submit', async (event) => {
        event.preventDefault();
        showFormError(userForm, null);
        const body = { name: name.value.trim().toLowerCase(), role: role.value };
        if (password.value) body.password = password.value;
        await busy(submit, async () => {
          try {
            const user = await post('/api/v1/users', body);
            userForm.reset();
            role.value = 'viewer';
            if (user.password) {
              await secretDialog({ title: t('access.oneTimeTitle', { name: user.name }), intro: t('access.oneTimeIntro'), secret: user.password, note: t('access.oneTimeNote') });
            } else {
              toast(t('access.userAdded', { name: user.name }));
            }
            ctx.refreshNow();
          } catch (error) {
            showFormError(userForm, error);
          }
        });
      });
    }

    function userRow(u) {
      const self = u.name === me;
      const cells = [];
      let roleCell = label('role', u.role);
      if (!self) {
        const roleSel = select({ 'data-action': 'user-role', 'aria-label': t('access.roleOf', { name: u.name }) }, roleOptions(), u.role);
        roleSel.addEventListener('change', () => busy(roleSel, async () => {
          try {
            await patch(`/api/v1/users/${enc(u.name)}`, { role: roleSel.value });
            toast(t('access.roleChanged', { name: u.name, role: label('role', roleSel.value) }));
            ctx.refreshNow();
          } catch (error) {
            roleSel.value = u.role;
            toastError(error);
          }
        }));
        roleCell = roleSel;
        const reset = h('button', { type: 'button', class: 'btn btn-small', 'data-action': 'user-reset-password' }, t('access.resetPassword'));
        reset.addEventListener('click', async () => {
          if (!(await confirmDialog({ title: t('access.resetTitle', { name: u.name }), message: t('access.resetMessage'), confirmText: t('access.resetPassword') }))) return;
          // The agent makes the one-time password and returns it this once.
          await act(reset, () => patch(`/api/v1/users/${enc(u.name)}`, { reset_password: true }),
            (updated) => secretDialog({ title: t('access.oneTimeTitle', { name: u.name }), intro: t('access.oneTimeIntro'), secret: updated.password, note: t('access.oneTimeNote') }));
        });
        let toggle;
        if (u.disabled) {
          toggle = h('button', { type: 'button', class: 'btn btn-small', 'data-action': 'user-enable' }, t('access.enable'));
          toggle.addEventListener('click', () => act(toggle, () => patch(`/api/v1/users/${enc(u.name)}`, { disabled: false }),
            () => toast(t('access.enabled', { name: u.name }))));
        } else {
          toggle = h('button', { type: 'button', class: 'btn btn-small', 'data-action': 'user-disable' }, t('access.disable'));
          toggle.addEventListener('click', async () => {
            if (!(await confirmDialog({ title: t('access.disableTitle', { name: u.name }), message: t('access.disableMessage'), confirmText: t('access.disable') }))) return;
            await act(toggle, () => patch(`/api/v1/users/${enc(u.name)}`, { disabled: true }), () => toast(t('access.disabled', { name: u.name })));
          });
        }
        const remove = h('button', { type: 'button', class: 'btn btn-small btn-danger-ghost', 'data-action': 'user-delete' }, t('common.delete'));
        remove.addEventListener('click', async () => {
          if (!(await confirmDialog({ title: t('access.deleteTitle', { name: u.name }), message: t('access.deleteMessage'), confirmText: t('common.delete') }))) return;
          await act(remove, () => del(`/api/v1/users/${enc(u.name)}`), () => toast(t('access.deleted', { name: u.name })));
        });
        cells.push(reset, toggle, remove);
      }
      return h('tr', { 'data-user': u.name, 'data-role-name': u.role, 'data-disabled': String(u.disabled) },
        h('td', { class: 'nowrap' }, h('strong', null, u.name), self ? h('span', { class: 'badge' }, t('access.you')) : null),
        h('td', null, roleCell),
        h('td', null, u.disabled ? statusPill('disabled', 'userState') : statusPill('enabled', 'userState'),
          u.must_change_password ? h('div', { class: 'small muted' }, t('access.mustChange')) : null),
        h('td', null, when(u.created_at)),
        h('td', null, when(u.last_login_at)),
        h('td', { class: 'actions' }, h('div', { class: 'row-actions' }, cells)));
    }

    // ---------------------------------------------------------------- tokens
    const tokenBody = h('tbody');
    const tokenEmpty = h('div');
    let tokenForm = null;
    if (canUsers) {
      const name = h('input', { name: 'name', required: true, maxlength: 64, autocomplete: 'off' });
      const role = select({ name: 'role' }, roleOptions(), 'viewer');
      const days = h('input', { name: 'expires_in_days', type: 'number', min: 1, max: 3650, placeholder: t('access.noExpiry') });
      const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-action': 'token-create' }, t('access.createToken'));
      tokenForm = h('form', { id: 'token-create', class: 'form-inline' },
        field(t('access.tokenName'), name),
        field(t('access.role'), role),
        field(t('access.expiresDays'), days),
        h('div', { class: 'form-actions' }, submit),
        formErrorSlot());
      tokenForm.addEventListener('submit', async (event) => {
        event.preventDefault();
        showFormError(tokenForm, null);
        const body = { name: name.value.trim(), role: role.value, expires_in_days: optionalInt(days) };
        await busy(submit, async () => {
          try {
            const token = await post('/api/v1/tokens', body);
            tokenForm.reset();
            role.value = 'viewer';
            await secretDialog({ title: t('access.tokenCreated', { name: token.name }), intro: t('access.tokenIntro'), secret: token.token });
            ctx.refreshNow();
          } catch (error) {
            showFormError(tokenForm, error);
          }
        });
      });
    }

    function tokenRow(tk) {
      const revoke = h('button', { type: 'button', class: 'btn btn-small btn-danger-ghost', 'data-action': 'token-revoke' }, t('access.revoke'));
      revoke.addEventListener('click', async () => {
        if (!(await confirmDialog({ title: t('access.revokeTokenTitle', { name: tk.name }), message: t('access.revokeTokenMessage'), confirmText: t('access.revoke') }))) return;
        await act(revoke, () => del(`/api/v1/tokens/${enc(tk.id)}`), () => toast(t('access.revoked', { name: tk.name })));
      });
      return h('tr', { 'data-token': tk.id },
        h('td', null, h('strong', null, tk.name), h('div', { class: 'muted small mono' }, tk.id)),
        h('td', null, label('role', tk.role)),
        h('td', null, tk.created_by),
        h('td', null, when(tk.created_at)),
        h('td', null, when(tk.expires_at, t('access.noExpiry'))),
        h('td', null, when(tk.last_used_at)),
        h('td', { class: 'actions' }, revoke));
    }

    // ---------------------------------------------------------------- keys
    const keyBody = h('tbody');
    const keyEmpty = h('div');
    const modelChoices = h('div', { class: 'checks', role: 'group', 'aria-label': t('access.keyModels') });
    let keyForm = null;
    if (canKeysWrite) {
      const name = h('input', { name: 'name', required: true, maxlength: 64, autocomplete: 'off' });
      const owner = h('input', { name: 'owner', placeholder: ctx.session.name, autocomplete: 'off' });
      const rpm = h('input', { name: 'requests_per_minute', type: 'number', min: 1, placeholder: t('access.unlimited') });
      const tpm = h('input', { name: 'tokens_per_minute', type: 'number', min: 1, placeholder: t('access.unlimited') });
      const concurrent = h('input', { name: 'max_concurrent', type: 'number', min: 1, placeholder: t('access.unlimited') });
      const days = h('input', { name: 'expires_in_days', type: 'number', min: 1, max: 3650, placeholder: t('access.noExpiry') });
      const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-action': 'key-create' }, t('access.createKey'));
      keyForm = h('form', { id: 'key-create', class: 'form-inline' },
        field(t('access.keyName'), name),
        field(t('access.owner'), owner),
        field(t('access.rpm'), rpm),
        field(t('access.tpm'), tpm),
        field(t('access.concurrent'), concurrent),
        field(t('access.expiresDays'), days),
        h('fieldset', { class: 'span-all fieldset' }, h('legend', null, t('access.keyModels')), modelChoices,
          h('small', { class: 'hint' }, t('access.keyModelsHint'))),
        h('div', { class: 'form-actions' }, submit),
        formErrorSlot());
      keyForm.addEventListener('submit', async (event) => {
        event.preventDefault();
        showFormError(keyForm, null);
        const models = [...modelChoices.querySelectorAll('input:checked')].map((c) => c.value);
        const body = {
          name: name.value.trim(),
          owner: owner.value.trim() || undefined,
          models: models.length ? models : undefined,
          requests_per_minute: optionalInt(rpm),
          tokens_per_minute: optionalInt(tpm),
          max_concurrent: optionalInt(concurrent),
          expires_in_days: optionalInt(days),
        };
        await busy(submit, async () => {
          try {
            const key = await post('/api/v1/keys', body);
            keyForm.reset();
            await secretDialog({ title: t('access.keyCreated', { name: key.name }), intro: t('access.keyIntro'), secret: key.key });
            ctx.refreshNow();
          } catch (error) {
            showFormError(keyForm, error);
          }
        });
      });
    }

    function keyRow(k) {
      let revoke = null;
      if (canKeysWrite) {
        revoke = h('button', { type: 'button', class: 'btn btn-small btn-danger-ghost', 'data-action': 'key-revoke' }, t('access.revoke'));
        revoke.addEventListener('click', async () => {
          if (!(await confirmDialog({ title: t('access.revokeKeyTitle', { name: k.name }), message: t('access.revokeKeyMessage'), confirmText: t('access.revoke') }))) return;
          await act(revoke, () => del(`/api/v1/keys/${enc(k.id)}`), () => toast(t('access.revoked', { name: k.name })));
        });
      }
      const limits = [
        k.requests_per_minute ? t('access.rpmValue', { n: fmt.count(k.requests_per_minute) }) : null,
        k.tokens_per_minute ? t('access.tpmValue', { n: fmt.count(k.tokens_per_minute) }) : null,
        k.max_concurrent ? t('access.concurrentValue', { n: fmt.count(k.max_concurrent) }) : null,
      ].filter(Boolean);
      return h('tr', { 'data-key-id': k.id },
        h('td', null, h('strong', null, k.name), h('div', { class: 'muted small mono' }, k.id)),
        h('td', null, k.owner),
        h('td', null, k.models.length ? h('div', { class: 'labels' }, k.models.map((m) => h('span', { class: 'label-chip' }, m))) : h('span', { class: 'muted' }, t('access.allModels'))),
        h('td', null, limits.length ? limits.join(' · ') : h('span', { class: 'muted' }, t('access.unlimited'))),
        h('td', null, when(k.created_at)),
        h('td', null, when(k.expires_at, t('access.noExpiry'))),
        h('td', null, when(k.last_used_at)),
        canKeysWrite ? h('td', { class: 'actions' }, revoke) : null);
    }

    // ---------------------------------------------------------------- sessions
    const sessionBody = h('tbody');

    function sessionRow(s) {
      const revoke = h('button', { type: 'button', class: 'btn btn-small btn-danger-ghost', 'data-action': 'session-revoke' }, t('access.revoke'));
      revoke.addEventListener('click', async () => {
        const message = s.current ? t('access.revokeOwnSession') : t('access.revokeSessionMessage', { user: s.user });
        if (!(await confirmDialog({ title: t('access.revokeSessionTitle'), message, confirmText: t('access.revoke') }))) return;
        await act(revoke, () => del(`/api/v1/sessions/${enc(s.id)}`), () => {
          if (s.current) return ctx.app.logout();
          toast(t('access.sessionRevoked', { user: s.user }));
          return null;
        });
      });
      return h('tr', { 'data-session': s.id },
        h('td', null, h('strong', null, s.user), s.current ? h('span', { class: 'badge' }, t('access.thisSession')) : null,
          h('div', { class: 'muted small mono' }, `${s.id.slice(0, 12)}…`)),
        h('td', null, label('role', s.role)),
        h('td', { class: 'mono' }, s.source),
        h('td', null, when(s.created_at)),
        h('td', null, when(s.last_seen_at)),
        h('td', { title: fmt.dateTime(s.expires_at) }, fmt.relative(s.expires_at)),
        h('td', { class: 'actions' }, revoke));
    }

    // ---------------------------------------------------------------- layout
    const userEmpty = h('div');
    const sessionEmpty = h('div');
    frame.content.append(
      canUsers ? section(t('access.users'), { id: 'users' },
        userForm,
        tableOf([th(t('access.userName')), th(t('access.role')), th(t('access.state')), th(t('access.created')), th(t('access.lastLogin')), th(h('span', { class: 'sr-only' }, t('common.actions')), 'actions-col')], userBody),
        userEmpty) : null,
      canUsers ? section(t('access.tokens'), { id: 'tokens' },
        h('p', { class: 'muted' }, t('access.tokensIntro')),
        tokenForm,
        tableOf([th(t('access.tokenName')), th(t('access.role')), th(t('access.createdBy')), th(t('access.created')), th(t('access.expires')), th(t('access.lastUsed')), th(h('span', { class: 'sr-only' }, t('common.actions')), 'actions-col')], tokenBody),
        tokenEmpty) : null,
      canKeysRead ? section(t('access.keys'), { id: 'keys' },
        h('p', { class: 'muted' }, t('access.keysIntro')),
        keyForm,
        tableOf([th(t('access.keyName')), th(t('access.owner')), th(t('access.keyModels')), th(t('access.limits')), th(t('access.created')), th(t('access.expires')), th(t('access.lastUsed')), canKeysWrite ? th(h('span', { class: 'sr-only' }, t('common.actions')), 'actions-col') : null], keyBody),
        keyEmpty) : null,
      canUsers ? section(t('access.sessions'), { id: 'sessions' },
        h('p', { class: 'muted' }, t('access.sessionsIntro')),
        tableOf([th(t('access.user')), th(t('access.role')), th(t('access.source')), th(t('access.signedIn')), th(t('access.lastSeen')), th(t('access.expires')), th(h('span', { class: 'sr-only' }, t('common.actions')), 'actions-col')], sessionBody),
        sessionEmpty) : null);

    function renderModelChoices(models) {
      const names = [...new Set(models.map((m) => m.name))].sort();
      const have = [...modelChoices.querySelectorAll('input')].map((i) => i.value);
      if (have.join() === names.join()) return;
      const checked = new Set([...modelChoices.querySelectorAll('input:checked')].map((i) => i.value));
      modelChoices.replaceChildren(...(names.length ? names.map((n) => h('label', { class: 'check' },
        h('input', { type: 'checkbox', name: 'models', value: n, checked: checked.has(n) }), n)) : [h('span', { class: 'muted small' }, t('access.noModelsYet'))]));
    }

    async function refresh() {
      const opts = { signal: ctx.signal };
      const none = Promise.resolve(null);
      const [users, tokens, keys, sessions, models] = await Promise.all([
        canUsers ? get('/api/v1/users', opts) : none,
        canUsers ? get('/api/v1/tokens', opts) : none,
        canKeysRead ? get('/api/v1/keys', opts) : none,
        canUsers ? get('/api/v1/sessions', opts) : none,
        canKeysWrite && ctx.can('model:read') ? get('/api/v1/models', opts) : none,
      ]);
      if (users) {
        renderList(userBody, users.users, (u) => u.name, userRow);
        userEmpty.replaceChildren(users.users.length ? '' : emptyState(t('access.noUsers')));
      }
      if (tokens) {
        renderList(tokenBody, tokens.tokens, (x) => x.id, tokenRow);
        tokenEmpty.replaceChildren(tokens.tokens.length ? '' : emptyState(t('access.noTokens')));
      }
      if (keys) {
        renderList(keyBody, keys.keys, (x) => x.id, keyRow);
        keyEmpty.replaceChildren(keys.keys.length ? '' : emptyState(t('access.noKeys')));
      }
      if (sessions) {
        const list = sessions.sessions.slice().sort((a, b) => String(b.last_seen_at).localeCompare(String(a.last_seen_at)));
        renderList(sessionBody, list, (x) => x.id, sessionRow);
        sessionEmpty.replaceChildren(list.length ? '' : emptyState(t('access.noSessions')));
      }
      if (models) renderModelChoices(models.models);
    }

    frame.run(refresh);
    return { refresh: () => frame.run(refresh) };
  },
};
