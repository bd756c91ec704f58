// System: what this box is (version, build, uptime, serial), its TLS certificate, how the
// factory provisioned it (the last report and the device certificate), the factory reset for
// admins, and the signed-in user's own account.
import { get, post } from '../api.js';
import { t } from '../i18n.js';
import { h, label, definitionList, field, formErrorSlot, showFormError, busy, toast, emptyState } from '../ui.js';
import * as fmt from '../format.js';
import { pageFrame, section } from './frame.js';

const CERT_WARN_DAYS = 30;

function certificateFacts(tls) {
  const notAfter = fmt.parseTime(tls.not_after);
  const daysLeft = notAfter ? (notAfter.getTime() - Date.now()) / 86400000 : NaN;
  const expiry = !notAfter ? fmt.dash() : h('span', { class: daysLeft < 0 ? 'st-text-critical' : daysLeft < CERT_WARN_DAYS ? 'st-text-warning' : null },
    fmt.dateTime(notAfter), ' (', daysLeft < 0 ? t('system.certExpired') : t('system.certDaysLeft', { n: fmt.count(Math.floor(daysLeft)) }), ')');
  const names = tls.names || [];
  return definitionList([
    [t('system.certSubject'), h('span', { class: 'mono' }, tls.subject || fmt.dash())],
    [t('system.certIssuer'), h('span', { class: 'mono' }, tls.issuer || fmt.dash())],
    tls.self_signed !== undefined ? [t('system.certSelfSigned'), tls.self_signed ? t('common.yes') : t('common.no')] : null,
    [t('system.certValidFrom'), fmt.dateTime(tls.not_before)],
    [t('system.certValidUntil'), expiry],
    names.length ? [t('system.certNames'), h('span', { class: 'mono' }, names.join(', '))] : null,
    tls.key_type ? [t('system.certKey'), tls.key_type] : null,
    tls.serial ? [t('system.certSerial'), h('span', { class: 'mono' }, tls.serial)] : null,
    tls.sha256_fingerprint ? [t('system.certFingerprint'), h('span', { class: 'mono small digest' }, tls.sha256_fingerprint)] : null,
  ]);
}

// The step outcomes of aibox-provision (PASSED, FAILED, SKIPPED, WAIVED) as status pills.
const STEP_STATUS = { PASSED: 'ok', WAIVED: 'warning', FAILED: 'critical', SKIPPED: 'unknown' };

function stepPill(status) {
  return h('span', { class: ['pill', `st-${STEP_STATUS[status] || 'unknown'}`], 'data-status': status },
    h('span', { class: 'dot', 'aria-hidden': 'true' }), label('provisioning', status));
}

function provisioningFacts(p) {
  const r = p.report;
  if (!r) return emptyState(t(p.state === 'unreadable' ? 'provisioning.unreadable' : 'provisioning.none'));
  const steps = h('table', { class: 'table', 'data-role': 'provisioning-steps' },
    h('thead', null, h('tr', null, h('th', null, t('provisioning.step')), h('th', null, t('provisioning.status')),
      h('th', null, t('provisioning.seconds')), h('th', null, t('provisioning.message')))),
    h('tbody', null, (r.steps || []).map((step) => h('tr', { 'data-step': step.step },
      h('td', null, label('provisioning', step.step)), h('td', null, stepPill(step.status)),
      h('td', { class: 'num' }, step.seconds === undefined ? fmt.dash() : fmt.number(step.seconds, 2)),
      h('td', null, step.message || fmt.dash())))));
  return [
    definitionList([
      [t('provisioning.state'), h('span', { 'data-field': 'provisioning-state' }, stepPill(r.status))],
      [t('provisioning.sku'), r.sku || fmt.dash()],
      [t('provisioning.station'), r.station || fmt.dash()],
      [t('provisioning.finishedAt'), fmt.dateTime(r.finished_at)],
      [t('provisioning.signed'), r.signed ? t('common.yes') : t('common.no')],
      [t('provisioning.file'), h('span', { class: 'mono small' }, r.file)],
    ]),
    steps,
  ];
}

// The factory reset: the admin types the box's serial (or "factory-reset" on a box without
// one) and the agent resets itself and restarts.
function resetForm(info) {
  const expected = info.serial || 'factory-reset';
  const confirm = h('input', { name: 'confirm', autocomplete: 'off', required: true, spellcheck: 'false' });
  const submit = h('button', { type: 'submit', class: 'btn btn-danger', 'data-action': 'factory-reset' }, t('provisioning.reset'));
  const form = h('form', { id: 'factory-reset', class: 'form-inline' },
    h('p', null, t('provisioning.resetIntro')),
    field(t('provisioning.resetConfirm', { text: expected }), confirm),
    h('div', { class: 'form-actions' }, submit),
    formErrorSlot());
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showFormError(form, null);
    await busy(submit, async () => {
      try {
        await post('/api/v1/system/factory-reset', { confirm: confirm.value });
        form.replaceChildren(h('p', { 'data-role': 'reset-done' }, t('provisioning.resetDone')));
      } catch (error) {
        showFormError(form, error);
      }
    });
  });
  return form;
}

function passwordForm() {
  const old = h('input', { name: 'old_password', type: 'password', autocomplete: 'current-password', required: true });
  const fresh = h('input', { name: 'new_password', type: 'password', autocomplete: 'new-password', required: true });
  const confirm = h('input', { name: 'confirm', type: 'password', autocomplete: 'new-password', required: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, t('system.changeSubmit'));
  const form = h('form', { id: 'own-password', class: 'form-inline' },
    field(t('login.oldPassword'), old),
    field(t('login.newPassword'), fresh, t('login.policy')),
    field(t('login.confirmPassword'), confirm),
    h('div', { class: 'form-actions' }, submit),
    formErrorSlot());
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showFormError(form, null);
    if (fresh.value !== confirm.value) {
      showFormError(form, { code: 'mismatch', field: 'confirm', message: t('login.mismatch') });
      return;
    }
    await busy(submit, async () => {
      try {
        await post('/api/v1/auth/password', { old_password: old.value, new_password: fresh.value });
        form.reset();
        toast(t('system.passwordChanged'));
      } catch (error) {
        showFormError(form, error);
      }
    });
  });
  return form;
}

export default {
  name: 'system',
  title: 'nav.system',
  allowed: (can) => can('system:read'),
  mount(main, ctx) {
    const frame = pageFrame(main, ctx, { title: t('nav.system'), intro: t('system.intro') });
    const boxBody = h('div');
    const tlsBody = h('div');
    const provisioningBody = h('div', { 'data-role': 'provisioning' });
    const deviceBody = h('div');
    const resetBody = h('div');
    let info = null;
    let fetchedAt = 0;
    const uptime = h('span', { 'data-field': 'uptime' });

    const s = ctx.session;
    const account = definitionList([
      [t('system.user'), s.user],
      [t('system.role'), label('role', s.role)],
      [t('system.roleMeans'), label('roleInfo', s.role)],
      s.expiresAt ? [t('system.sessionEnds'), h('span', { title: fmt.dateTime(s.expiresAt) }, fmt.dateTime(s.expiresAt))] : null,
    ]);

    frame.content.append(
      h('div', { class: 'grid grid-2' },
        section(t('system.box'), {}, boxBody),
        section(t('system.tls'), {}, tlsBody)),
      h('div', { class: 'grid grid-2' },
        section(t('provisioning.title'), {}, provisioningBody),
        section(t('provisioning.device'), {}, deviceBody)),
      ctx.can('system:admin') ? section(t('provisioning.resetTitle'), {}, resetBody) : null,
      section(t('system.account'), {}, account,
        s.kind === 'session' ? [h('h3', { class: 'sub-title' }, t('system.changePassword')), passwordForm()] : null));

    const tick = setInterval(() => {
      if (info) uptime.textContent = fmt.duration(info.uptime_seconds + (Date.now() - fetchedAt) / 1000);
    }, 1000);

    async function refresh() {
      info = await get('/api/v1/system', { signal: ctx.signal });
      fetchedAt = Date.now();
      uptime.textContent = fmt.duration(info.uptime_seconds);
      boxBody.replaceChildren(definitionList([
        [t('system.hostname'), h('span', { 'data-field': 'hostname' }, info.hostname)],
        [t('system.serial'), h('span', { 'data-field': 'serial', class: info.serial ? 'mono' : 'muted' }, info.serial || t('system.notProvisioned'))],
        [t('system.version'), h('span', { 'data-field': 'version' }, info.version)],
        [t('system.build'), h('span', { 'data-field': 'build', class: 'mono' }, info.build_id)],
        [t('system.startedAt'), fmt.dateTime(info.started_at)],
        [t('system.uptime'), uptime],
        [t('system.starts'), fmt.count(info.starts)],
        [t('system.schema'), fmt.count(info.schema_version)],
        info.root && info.root !== '/' ? [t('system.root'), h('span', { class: 'mono' }, info.root)] : null,
      ]));
      const tls = info.tls;
      tlsBody.replaceChildren(tls ? certificateFacts(tls) : emptyState(t('system.tlsUnknown')));
      const p = info.provisioning || { state: 'not_provisioned' };
      provisioningBody.replaceChildren(...[provisioningFacts(p)].flat());
      const device = info.device_certificate;
      deviceBody.replaceChildren(device && !device.error ? certificateFacts(device) : emptyState(device ? device.error : t('provisioning.noDevice')));
      if (!resetBody.firstChild) resetBody.append(resetForm(info));
    }

    frame.run(refresh);
    return {
      refresh: () => frame.run(refresh),
      interval: 30000,
      pushInterval: 30000,
      unmount: () => clearInterval(tick),
    };
  },
};
