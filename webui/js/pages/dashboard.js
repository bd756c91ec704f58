// Dashboard: the box at a glance — health, GPUs, UPSes, fans, models and the latest events.
import { get } from '../api.js';
import { t } from '../i18n.js';
import { h, renderList, statusPill, emptyState } from '../ui.js';
import * as fmt from '../format.js';
import { gpuCard, upsCard, eventRow, eventsTable, healthSummary } from '../widgets.js';
import { pageFrame, section } from './frame.js';

const EVENTS_SHOWN = 8;

function modelSummary(models) {
  const by = {};
  for (const m of models) by[m.state] = (by[m.state] || 0) + 1;
  const total = models.length;
  const memory = models.filter((m) => m.state === 'ready').reduce((sum, m) => sum + (m.size_bytes || 0), 0);
  return h('div', { class: 'model-summary' },
    h('div', { class: 'big-number', 'data-field': 'models-count' }, fmt.count(total)),
    h('div', { class: 'muted' }, t('dash.modelsStored', { size: fmt.bytes(memory) })),
    total ? h('ul', { class: 'state-list' }, Object.entries(by).map(([state, n]) =>
      h('li', null, statusPill(state, 'modelState'), h('span', { class: 'state-n' }, fmt.count(n))))) : null,
    h('a', { href: '#/models', class: 'link' }, t('dash.manageModels')));
}

function fanRow(s) {
  return h('tr', { 'data-sensor': s.id, 'data-status': s.status },
    h('td', null, s.label || s.sensor, h('div', { class: 'muted small mono' }, s.chip)),
    h('td', { class: 'num' }, fmt.reading(s.value, s.unit)),
    h('td', null, statusPill(s.status)));
}

export default {
  name: 'dashboard',
  title: 'nav.dashboard',
  allowed: (can) => can('hardware:read'),
  mount(main, ctx) {
    const frame = pageFrame(main, ctx, { title: t('nav.dashboard'), intro: t('dash.intro') });
    const withModels = ctx.can('model:read');

    const healthBody = h('div');
    const modelsBody = h('div');
    const gpuGrid = h('div', { class: 'card-grid gpu-grid' });
    const gpuNote = h('div');
    const upsGrid = h('div', { class: 'card-grid ups-grid' });
    const psuBody = h('div', { class: 'psu-list' });
    const fanBody = h('tbody');
    const events = eventsTable();
    const eventsEmpty = h('div');

    frame.content.append(
      h('div', { class: 'grid grid-top' },
        section(t('dash.health'), { class: 'card card-health', tools: h('a', { href: '#/hardware', class: 'link' }, t('dash.hardwareDetails')) }, healthBody),
        withModels ? section(t('nav.models'), { class: 'card card-models' }, modelsBody) : null),
      section(t('dash.gpus'), { tools: h('a', { href: '#/hardware', class: 'link' }, t('dash.gpuDetails')) }, gpuNote, gpuGrid),
      h('div', { class: 'grid grid-2' },
        section(t('dash.power'), {}, upsGrid, psuBody),
        section(t('dash.fans'), {}, h('div', { class: 'table-wrap' }, h('table', { class: 'table table-compact' },
          h('thead', null, h('tr', null,
            h('th', { scope: 'col' }, t('hw.sensor')), h('th', { scope: 'col', class: 'num' }, t('hw.value')), h('th', { scope: 'col' }, t('hw.status')))),
          fanBody)))),
      section(t('dash.events'), { tools: h('a', { href: '#/hardware', class: 'link' }, t('dash.allEvents')) },
        h('div', { class: 'table-wrap' }, events.table), eventsEmpty));

    async function refresh() {
      const opts = { signal: ctx.signal };
      const [hw, gpus, power, fans, events_, models] = await Promise.all([
        get('/api/v1/hardware', opts),
        get('/api/v1/hardware/gpus', opts),
        get('/api/v1/hardware/power', opts),
        get('/api/v1/hardware/sensors?kind=fan', opts),
        get(`/api/v1/hardware/events?limit=${EVENTS_SHOWN}`, opts),
        withModels ? get('/api/v1/models', opts) : Promise.resolve(null),
      ]);
      healthBody.replaceChildren(healthSummary(hw));
      ctx.markHealth(hw.health);
      if (models) modelsBody.replaceChildren(modelSummary(models.models));

      renderList(gpuGrid, gpus.gpus, (g) => g.index, gpuCard);
      gpuNote.replaceChildren(gpus.problem ? h('p', { class: 'alert alert-warning' }, gpus.problem)
        : gpus.gpus.length ? '' : emptyState(t('dash.noGpus')));

      renderList(upsGrid, power.upses, (u) => u.name, upsCard);
      psuBody.replaceChildren(
        power.upses.length ? '' : emptyState(t('dash.noUps')),
        power.psus.length ? h('div', { class: 'psu-row' }, h('span', { class: 'muted' }, t('dash.psus')),
          power.psus.map((p) => h('span', { class: 'psu', 'data-psu': p.chip }, statusPill(p.status), h('span', { class: 'mono small' }, p.chip)))) : '');

      renderList(fanBody, fans.sensors, (s) => s.id, fanRow);
      if (!fans.sensors.length) fanBody.replaceChildren(h('tr', null, h('td', { colspan: 3 }, emptyState(t('dash.noFans')))));

      renderList(events.body, events_.events, (e) => e.id, eventRow);
      eventsEmpty.replaceChildren(events_.events.length ? '' : emptyState(t('events.none')));
    }

    frame.run(refresh);
    return { refresh: () => frame.run(refresh), events: ['hardware', 'hardware_event', 'model', 'job'] };
  },
};
