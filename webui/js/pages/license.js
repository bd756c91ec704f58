// License: the state, what the license allows and how much of it is used, its dates, the box's
// fingerprint, recent license events, and installing a license file (drop it or pick it).
import { get, putText } from '../api.js';
import { t } from '../i18n.js';
import { h, definitionList, formErrorSlot, showFormError, busy, toast, meter, emptyState, statusPill } from '../ui.js';
import * as fmt from '../format.js';
import { pageFrame, section } from './frame.js';

// The states as the status pills colour them.
export const LICENSE_STATUS = { valid: 'ok', grace: 'warning', expired: 'critical', invalid: 'critical', none: 'warning' };

function usageRow(name, used, max) {
  const limited = max !== null && max !== undefined;
  const fraction = limited && max > 0 ? used / max : limited ? 1 : 0;
  const status = !limited ? null : used >= max ? 'critical' : fraction >= 0.8 ? 'warning' : 'ok';
  return h('div', { class: 'usage-row', 'data-limit': name },
    h('span', { class: 'usage-name' }, t(`license.limit.${name}`)),
    limited ? meter(fraction, status) : h('span', { class: 'usage-free muted' }, t('license.noLimit')),
    h('span', { class: 'usage-count', 'data-field': 'usage' },
      limited ? t('license.usedOf', { used: fmt.count(used), max: fmt.count(max) }) : fmt.count(used)));
}

function installForm(onInstalled) {
  const input = h('input', { type: 'file', name: 'file', 'data-action': 'license-install', accept: '.lic,.json,application/json' });
  const zone = h('label', { class: 'drop-zone', 'data-role': 'drop-zone' },
    h('span', null, t('license.drop')), input);
  const form = h('form', { id: 'license-install' }, zone, formErrorSlot());
  async function install(file) {
    showFormError(form, null);
    await busy(zone, async () => {
      try {
        const text = await file.text();
        const answer = await putText('/api/v1/license', text);
        toast(t('license.installed', { id: answer.license.id }));
        form.reset();
        onInstalled(answer);
      } catch (error) {
        showFormError(form, error);
      }
    });
  }
  input.addEventListener('change', () => { if (input.files[0]) install(input.files[0]); });
  zone.addEventListener('dragover', (event) => { event.preventDefault(); zone.classList.add('dragging'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    const file = event.dataTransfer.files[0];
    if (file) install(file);
  });
  return form;
}

export default {
  name: 'license',
  title: 'nav.license',
  allowed: (can) => can('license:read'),
  mount(main, ctx) {
    const frame = pageFrame(main, ctx, { title: t('nav.license'), intro: t('license.intro') });
    const stateBody = h('div');
    const limitsBody = h('div');
    const fingerprintBody = h('div');
    const eventsBody = h('div');
    frame.content.append(
      h('div', { class: 'grid grid-2' },
        section(t('license.state'), {}, stateBody,
          ctx.can('license:write') ? [h('h3', { class: 'sub-title' }, t('license.install')), installForm((l) => { render(l); ctx.onLicense(l); })] : null),
        section(t('license.entitlements'), {}, limitsBody)),
      h('div', { class: 'grid grid-2' },
        section(t('license.fingerprint'), {}, fingerprintBody),
        section(t('license.events'), {}, eventsBody)));

    function render(l) {
      const d = l.license;
      stateBody.replaceChildren(...[
        h('p', { class: 'license-state', 'data-field': 'state', 'data-state': l.state },
          statusPill(LICENSE_STATUS[l.state], 'status'), ' ', h('strong', null, t(`license.states.${l.state}`))),
        h('p', { 'data-field': 'message' }, l.message),
        d ? definitionList([
          [t('license.id'), h('span', { class: 'mono', 'data-field': 'id' }, d.id)],
          [t('license.customer'), d.customer],
          [t('license.validFrom'), fmt.dateTime(d.not_before)],
          [t('license.validUntil'), h('span', { 'data-field': 'not-after' }, fmt.dateTime(d.not_after))],
          [t('license.graceEnds'), fmt.dateTime(d.grace_ends_at)],
          l.entitlements.trial ? [t('license.trial'), t('common.yes')] : null,
          [t('license.key'), h('span', { class: 'mono' }, d.key_id)],
        ]) : null,
        l.test_key_trusted ? h('p', { class: 'muted small' }, t('license.testKey')) : null,
      ].filter(Boolean));
      const e = l.entitlements;
      limitsBody.replaceChildren(e
        ? h('div', { class: 'usage' },
          usageRow('models', l.usage.models, e.max_models),
          usageRow('instances', l.usage.instances, e.max_instances),
          usageRow('gpus', l.usage.gpus, e.max_gpus),
          h('div', { class: 'usage-row', 'data-limit': 'concurrency' },
            h('span', { class: 'usage-name' }, t('license.limit.concurrency')),
            h('span', { class: 'usage-count' }, e.max_concurrency === null ? t('license.noLimit') : fmt.count(e.max_concurrency))),
          h('p', { 'data-field': 'modules' }, t('license.modules'), ': ', e.modules.length ? e.modules.join(', ') : fmt.dash()))
        : emptyState(t('license.noLicense')));
      const fp = l.fingerprint;
      fingerprintBody.replaceChildren(...[
        fp.matched !== undefined ? h('p', { 'data-field': 'matched' }, t('license.matched', { matched: fp.matched, licensed: fp.licensed, needed: fp.needed })) : null,
        h('table', { class: 'table' },
          h('thead', null, h('tr', null, h('th', null, t('license.part')), h('th', null, t('license.what')), h('th', null, t('license.hash')))),
          h('tbody', null, fp.parts.map((p) => h('tr', { 'data-part': p.kind },
            h('td', null, p.kind), h('td', null, p.label), h('td', { class: 'mono small digest' }, p.hash.slice(0, 16)))))),
        ...fp.missing.map((m) => h('p', { class: 'muted small', 'data-role': 'missing-part' }, m)),
        h('p', { class: 'muted small' }, t('license.sendFingerprint')),
      ].filter(Boolean));
      eventsBody.replaceChildren(l.events.length
        ? h('ul', { class: 'event-list' }, l.events.map((ev) => h('li', { 'data-type': ev.type },
          h('span', { class: 'muted small' }, fmt.dateTime(ev.time)), ' ', ev.message)))
        : emptyState(t('license.noEvents')));
    }

    async function refresh() {
      render(await get('/api/v1/license', { signal: ctx.signal }));
    }
    frame.run(refresh);
    return { refresh: () => frame.run(refresh), events: ['license'], interval: 60000, pushInterval: 60000 };
  },
};
