// Hardware: sources, every sensor (filtered, coloured by status), a sensor's history chart,
// GPU and power detail, and the hardware events.
import { get, query, enc } from '../api.js';
import { t } from '../i18n.js';
import { h, renderList, statusPill, emptyState, label, simulatedBadge, select, definitionList, errorBox } from '../ui.js';
import * as fmt from '../format.js';
import { lineChart } from '../chart.js';
import { upsCard, eventRow, eventsTable, healthSummary } from '../widgets.js';
import { pageFrame, section } from './frame.js';

const STATUSES = ['ok', 'warning', 'critical', 'unavailable', 'non_functional'];
const RANGES = {
  '1h': { seconds: 3600, step: null, every: 5000 },
  '24h': { seconds: 86400, step: 120, every: 60000 },
  '30d': { seconds: 30 * 86400, step: 3600, every: 600000 },
};
const EVENTS_PAGE = 25;

// Kept across visits to the page.
const view = { kind: '', status: '', search: '', sensor: null, range: '1h', severity: '' };

// "warning above 90 °C · critical above 100 °C", "warning below 200 V or above 250 V".
function thresholdsText(s) {
  const th = s.thresholds || {};
  const side = (level, low, high) => {
    const hasLow = Number.isFinite(low);
    const hasHigh = Number.isFinite(high);
    if (hasLow && hasHigh) return t(`hw.${level}Outside`, { low: fmt.reading(low, s.unit), high: fmt.reading(high, s.unit) });
    if (hasHigh) return t(`hw.${level}Above`, { value: fmt.reading(high, s.unit) });
    if (hasLow) return t(`hw.${level}Below`, { value: fmt.reading(low, s.unit) });
    return null;
  };
  const parts = [side('warn', th.warning_low, th.warning_high), side('crit', th.critical_low, th.critical_high)].filter(Boolean);
  return parts.length ? parts.join(' · ') : t('hw.noThresholds');
}

function gpuRow(g) {
  return h('tr', { 'data-gpu': g.index, 'data-status': g.status },
    h('td', { class: 'num' }, g.index),
    h('td', { class: 'nowrap', title: [g.uuid, g.serial].filter(Boolean).join(' · ') }, g.name, h('div', { class: 'muted small mono' }, g.pci_bus_id)),
    h('td', { class: 'num', title: t('gpu.limits', { slowdown: fmt.reading(g.slowdown_temperature_celsius, 'celsius'), shutdown: fmt.reading(g.shutdown_temperature_celsius, 'celsius') }) },
      fmt.reading(g.temperature_celsius, 'celsius'),
      h('div', { class: 'muted small' }, t('gpu.slowdownAt', { value: fmt.reading(g.slowdown_temperature_celsius, 'celsius') }))),
    h('td', { class: 'num' }, fmt.reading(g.power_watts, 'watts'), h('div', { class: 'muted small' }, t('gpu.limit', { value: fmt.reading(g.power_limit_watts, 'watts') }))),
    h('td', { class: 'num' }, fmt.percent(g.utilization_percent), h('div', { class: 'muted small' }, t('gpu.memUtil', { value: fmt.percent(g.memory_utilization_percent) }))),
    h('td', { class: 'num' }, fmt.bytes(g.memory_used_bytes), h('div', { class: 'muted small' }, t('gpu.ofBytes', { value: fmt.bytes(g.memory_total_bytes) }))),
    h('td', { class: 'num' }, fmt.reading(g.sm_clock_mhz, 'megahertz'), h('div', { class: 'muted small' }, t('gpu.memClock', { value: fmt.reading(g.memory_clock_mhz, 'megahertz') }))),
    h('td', { class: 'num' }, g.fan_percent === null || g.fan_percent === undefined ? fmt.dash() : fmt.percent(g.fan_percent)),
    h('td', { class: ['num', g.ecc_uncorrected > 0 ? 'st-text-critical' : null] }, `${fmt.count(g.ecc_corrected)} / ${fmt.count(g.ecc_uncorrected)}`,
      g.last_xid !== null && g.last_xid !== undefined ? h('div', { class: 'small st-text-warning' }, t('gpu.lastXid', { xid: g.last_xid })) : null),
    h('td', null, statusPill(g.present ? g.status : 'critical'),
      g.present ? null : h('div', { class: 'small st-text-critical' }, t('gpu.notPresent')),
      g.throttle_reasons && g.throttle_reasons.length ? h('div', { class: 'small muted' }, g.throttle_reasons.join(', ')) : null,
      g.problem ? h('div', { class: 'small st-text-warning' }, g.problem) : null));
}

function psuRow(p) {
  return h('tr', { 'data-psu': p.chip, 'data-status': p.status },
    h('td', { class: 'mono nowrap' }, p.chip),
    h('td', null, statusPill(p.status)),
    h('td', null, h('ul', { class: 'inline-list' }, p.readings.map((r) =>
      h('li', { class: `st-text-${r.status === 'ok' ? 'plain' : r.status}` }, h('span', { class: 'muted' }, `${r.label}: `), fmt.reading(r.value, r.unit))))));
}

export default {
  name: 'hardware',
  title: 'nav.hardware',
  allowed: (can) => can('hardware:read'),
  mount(main, ctx) {
    const frame = pageFrame(main, ctx, { title: t('nav.hardware'), intro: t('hw.intro') });
    let sensors = [];
    let chartLoadedAt = 0;
    let chartKey = '';
    let drawn = null;

    // --- summary and sources
    const summaryBody = h('div');
    const sourcesBody = h('tbody');

    // --- sensors
    const kindSelect = select({ name: 'kind', 'aria-label': t('hw.filterKind') }, [['', t('hw.allKinds')]], view.kind);
    const statusSelect = select({ name: 'status', 'aria-label': t('hw.filterStatus') },
      [['', t('hw.allStatuses')], ...STATUSES.map((s) => [s, label('status', s)])], view.status);
    const search = h('input', { type: 'search', name: 'search', placeholder: t('hw.search'), 'aria-label': t('hw.search'), value: view.search });
    const sensorBody = h('tbody');
    const sensorEmpty = h('div');
    const shownCount = h('span', { class: 'muted small' });
    kindSelect.addEventListener('change', () => { view.kind = kindSelect.value; renderSensors(); });
    statusSelect.addEventListener('change', () => { view.status = statusSelect.value; renderSensors(); });
    search.addEventListener('input', () => { view.search = search.value; renderSensors(); });

    // --- chart
    const chartTitle = h('div', { class: 'chart-title' });
    const chartBox = h('div', { class: 'chart-box' });
    const chartFacts = h('div');
    const rangeButtons = Object.keys(RANGES).map((r) => {
      const b = h('button', { type: 'button', class: 'seg-btn', 'data-range': r, 'aria-pressed': String(r === view.range) }, t(`hw.range.${r}`));
      b.addEventListener('click', () => {
        view.range = r;
        for (const other of rangeButtons) other.setAttribute('aria-pressed', String(other === b));
        loadChart(true);
      });
      return b;
    });

    // --- gpus, power, events
    const gpuBody = h('tbody');
    const gpuNote = h('div');
    const upsGrid = h('div', { class: 'card-grid ups-grid' });
    const upsEmpty = h('div');
    const psuBody = h('tbody');
    const events = eventsTable();
    const eventsEmpty = h('div');
    const severitySelect = select({ name: 'severity', 'aria-label': t('events.filterSeverity') },
      [['', t('events.allSeverities')], ['warning', t('events.warningUp')], ['critical', t('events.criticalOnly')]], view.severity);
    const olderBtn = h('button', { type: 'button', class: 'btn', hidden: true }, t('events.older'));
    let eventPages = 1;
    severitySelect.addEventListener('change', () => { view.severity = severitySelect.value; eventPages = 1; loadEvents().catch(() => {}); });
    olderBtn.addEventListener('click', () => { eventPages += 1; loadEvents().catch(() => {}); });

    frame.content.append(
      section(t('hw.summary'), {}, summaryBody,
        h('div', { class: 'table-wrap' }, h('table', { class: 'table table-compact' },
          h('caption', { class: 'sr-only' }, t('hw.sources')),
          h('thead', null, h('tr', null,
            h('th', { scope: 'col' }, t('hw.source')), h('th', { scope: 'col', class: 'num' }, t('hw.readings')),
            h('th', { scope: 'col' }, t('hw.polledAt')), h('th', { scope: 'col' }, t('hw.problem')))),
          sourcesBody))),
      h('div', { class: 'grid grid-sensors' },
        section(t('hw.sensors'), { class: 'card card-sensors', tools: shownCount },
          h('div', { class: 'filters' }, kindSelect, statusSelect, search),
          h('div', { class: 'table-wrap table-scroll' }, h('table', { class: 'table table-compact table-select' },
            h('thead', null, h('tr', null,
              h('th', { scope: 'col' }, t('hw.sensor')), h('th', { scope: 'col' }, t('hw.kind')),
              h('th', { scope: 'col', class: 'num' }, t('hw.value')), h('th', { scope: 'col' }, t('hw.status')))),
            sensorBody)), sensorEmpty),
        section(t('hw.history'), { class: 'card card-chart', tools: h('div', { class: 'seg', role: 'group', 'aria-label': t('hw.range.label') }, rangeButtons) },
          chartTitle, chartBox, chartFacts)),
      section(t('hw.gpus'), {}, gpuNote, h('div', { class: 'table-wrap' }, h('table', { class: 'table table-compact' },
        h('thead', null, h('tr', null,
          h('th', { scope: 'col', class: 'num' }, '#'), h('th', { scope: 'col' }, t('gpu.model')),
          h('th', { scope: 'col', class: 'num' }, t('gpu.temperature')), h('th', { scope: 'col', class: 'num' }, t('gpu.power')),
          h('th', { scope: 'col', class: 'num' }, t('gpu.utilization')), h('th', { scope: 'col', class: 'num' }, t('gpu.memory')),
          h('th', { scope: 'col', class: 'num' }, t('gpu.clocks')), h('th', { scope: 'col', class: 'num' }, t('gpu.fan')),
          h('th', { scope: 'col', class: 'num', title: t('gpu.eccHint') }, t('gpu.errors')), h('th', { scope: 'col' }, t('hw.status')))),
        gpuBody))),
      section(t('hw.power'), {}, upsGrid, upsEmpty,
        h('h3', { class: 'sub-title' }, t('hw.psus')),
        h('div', { class: 'table-wrap' }, h('table', { class: 'table table-compact' },
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, t('hw.chip')), h('th', { scope: 'col' }, t('hw.status')), h('th', { scope: 'col' }, t('hw.readings')))),
          psuBody))),
      section(t('hw.events'), { tools: severitySelect },
        h('div', { class: 'table-wrap' }, events.table), eventsEmpty, h('div', { class: 'table-foot' }, olderBtn)));

    function sensorRow(s) {
      const pick = h('button', { type: 'button', class: 'link-btn' }, s.label || s.sensor);
      const row = h('tr', { 'data-sensor': s.id, 'data-status': s.status, 'aria-selected': String(s.id === view.sensor), class: s.id === view.sensor ? 'selected' : null },
        h('td', null, pick, s.simulated ? h('span', { class: 'badge badge-simulated', title: t('hw.simulatedHint') }, t('hw.simulated')) : null,
          h('div', { class: 'muted small mono' }, s.id)),
        h('td', null, label('kind', s.kind)),
        h('td', { class: ['num', `st-text-${s.status === 'ok' ? 'plain' : s.status}`] }, fmt.reading(s.value, s.unit)),
        h('td', null, statusPill(s.status)));
      row.addEventListener('click', () => selectSensor(s.id));
      return row;
    }

    function selectSensor(id) {
      view.sensor = id;
      for (const tr of sensorBody.querySelectorAll('tr[data-sensor]')) {
        const on = tr.dataset.sensor === id;
        tr.classList.toggle('selected', on);
        tr.setAttribute('aria-selected', String(on));
      }
      loadChart(true);
    }

    function renderSensors() {
      const needle = view.search.trim().toLowerCase();
      const shown = sensors.filter((s) => (!view.kind || s.kind === view.kind)
        && (!view.status || s.status === view.status)
        && (!needle || `${s.id} ${s.label}`.toLowerCase().includes(needle)));
      // The selection is part of each row's look, so it is part of the row's key data.
      renderList(sensorBody, shown.map((s) => ({ ...s, selected: s.id === view.sensor })), (s) => s.id, sensorRow);
      sensorEmpty.replaceChildren(shown.length ? '' : emptyState(sensors.length ? t('hw.noMatch') : t('hw.noSensors')));
      shownCount.textContent = t('hw.shown', { shown: fmt.count(shown.length), total: fmt.count(sensors.length) });
    }

    function updateKinds() {
      const kinds = [...new Set(sensors.map((s) => s.kind))].sort();
      const have = [...kindSelect.options].map((o) => o.value).slice(1);
      if (have.join() === kinds.join()) return;
      kindSelect.replaceChildren(h('option', { value: '' }, t('hw.allKinds')),
        ...kinds.map((k) => h('option', { value: k, selected: k === view.kind }, label('kind', k))));
    }

    async function loadChart(force) {
      const s = sensors.find((x) => x.id === view.sensor);
      if (!s) {
        chartTitle.replaceChildren();
        chartBox.replaceChildren(emptyState(t('hw.pickSensor')));
        chartFacts.replaceChildren();
        return;
      }
      const range = RANGES[view.range];
      const key = `${s.id}|${view.range}`;
      if (!force && key === chartKey && Date.now() - chartLoadedAt < range.every) {
        chartFacts.replaceChildren(sensorFacts(s));
        return;
      }
      const to = new Date();
      const from = new Date(to.getTime() - range.seconds * 1000);
      const [chip, name] = [s.chip, s.sensor];
      chartTitle.replaceChildren(h('strong', null, s.label || s.sensor), ' ', h('span', { class: 'muted mono small' }, s.id));
      if (force) chartBox.classList.add('chart-loading');
      try {
        const history = await get(`/api/v1/hardware/sensors/${enc(chip)}/${enc(name)}/history${query({
          from: Math.floor(from.getTime() / 1000), to: Math.floor(to.getTime() / 1000), step: range.step,
        })}`, { signal: ctx.signal });
        if (view.sensor !== s.id || `${s.id}|${view.range}` !== key) return;
        chartKey = key;
        chartLoadedAt = Date.now();
        drawn = { s, history, from, to, range: view.range };
        drawChart();
      } catch (error) {
        if (error.name === 'AbortError' || ctx.signal.aborted) return;
        chartBox.replaceChildren(errorBox(error));
      } finally {
        chartBox.classList.remove('chart-loading');
      }
      chartFacts.replaceChildren(sensorFacts(s));
    }

    function drawChart() {
      if (!drawn) return;
      const { s, history, from, to, range } = drawn;
      const chart = lineChart({
        id: s.id, points: history.points, from, to, stepSeconds: history.step_seconds,
        format: (v) => fmt.reading(v, s.unit), thresholds: s.thresholds, width: chartBox.clientWidth,
        label: t('hw.chartLabel', { sensor: s.label || s.id, range: t(`hw.range.${range}`) }),
        emptyText: t('hw.noHistory'),
      });
      chartBox.replaceChildren(chart, h('p', { class: 'muted small chart-note' },
        t(`hw.tier.${history.tier}`, { step: fmt.duration(history.step_seconds) }), ' · ',
        t('hw.points', { n: fmt.count(history.points.length) })));
    }

    // Redraw at the new width when the layout changes, so labels keep their size.
    let drawnWidth = 0;
    const resize = new ResizeObserver(() => {
      const w = chartBox.clientWidth;
      if (Math.abs(w - drawnWidth) > 8) {
        drawnWidth = w;
        drawChart();
      }
    });
    resize.observe(chartBox);

    function sensorFacts(s) {
      return definitionList([
        [t('hw.value'), fmt.reading(s.value, s.unit)],
        [t('hw.status'), statusPill(s.status)],
        [t('hw.thresholds'), thresholdsText(s)],
        [t('hw.source'), [s.source, s.simulated ? [' ', simulatedBadge()] : null]],
      ]);
    }

    async function loadEvents() {
      const data = await get(`/api/v1/hardware/events${query({ limit: EVENTS_PAGE * eventPages, severity: view.severity })}`, { signal: ctx.signal });
      renderList(events.body, data.events, (e) => e.id, eventRow);
      eventsEmpty.replaceChildren(data.events.length ? '' : emptyState(t('events.none')));
      olderBtn.hidden = data.next_before === null;
    }

    async function refresh() {
      const opts = { signal: ctx.signal };
      const [hw, list, gpus, power] = await Promise.all([
        get('/api/v1/hardware', opts),
        get('/api/v1/hardware/sensors', opts),
        get('/api/v1/hardware/gpus', opts),
        get('/api/v1/hardware/power', opts),
        loadEvents(),
      ]);
      summaryBody.replaceChildren(healthSummary(hw));
      ctx.markHealth(hw.health);
      renderList(sourcesBody, hw.sources, (s) => s.name, (s) => h('tr', { 'data-source': s.name },
        h('td', null, s.name, s.simulated ? [' ', simulatedBadge()] : null),
        h('td', { class: 'num' }, fmt.count(s.readings)),
        h('td', { title: fmt.timeTitle(s.polled_at) }, fmt.dateTime(s.polled_at)),
        h('td', { class: s.problem ? 'st-text-warning' : 'muted' }, s.problem || t('hw.noProblem'))));

      sensors = list.sensors;
      if (!view.sensor || !sensors.some((s) => s.id === view.sensor)) {
        const first = sensors.find((s) => s.kind === 'temperature') || sensors[0];
        view.sensor = first ? first.id : null;
      }
      updateKinds();
      renderSensors();

      renderList(gpuBody, gpus.gpus, (g) => g.index, gpuRow);
      gpuNote.replaceChildren(gpus.problem ? h('p', { class: 'alert alert-warning' }, gpus.problem)
        : gpus.gpus.length ? '' : emptyState(t('dash.noGpus')));
      renderList(upsGrid, power.upses, (u) => u.name, upsCard);
      upsEmpty.replaceChildren(power.upses.length ? '' : emptyState(t('dash.noUps')));
      renderList(psuBody, power.psus, (p) => p.chip, psuRow);
      if (!power.psus.length) psuBody.replaceChildren(h('tr', null, h('td', { colspan: 3 }, emptyState(t('hw.noPsus')))));
      await loadChart(false);
    }

    frame.run(refresh);
    return { refresh: () => frame.run(refresh), unmount: () => resize.disconnect(), events: ['hardware', 'hardware_event'] };
  },
};
