// Pieces shown on more than one page: GPU and UPS cards, hardware event rows, health summary.
import { t } from './i18n.js';
import { h, label, statusPill, meter, simulatedBadge } from './ui.js';
import * as fmt from './format.js';

function metric(name, value, bar) {
  return h('div', { class: 'metric' },
    h('div', { class: 'metric-head' }, h('span', { class: 'metric-name' }, name), h('span', { class: 'metric-value' }, value)),
    bar || null);
}

function ratio(a, b) {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : NaN;
}

// Status of a bar from a fraction: warning from 85 %, critical from 95 % (display only).
function loadStatus(fraction) {
  if (!Number.isFinite(fraction)) return 'unknown';
  return fraction >= 0.95 ? 'critical' : fraction >= 0.85 ? 'warning' : 'ok';
}

export function gpuCard(gpu) {
  const power = ratio(gpu.power_watts, gpu.power_limit_watts);
  const util = Number.isFinite(gpu.utilization_percent) ? gpu.utilization_percent / 100 : NaN;
  const mem = ratio(gpu.memory_used_bytes, gpu.memory_total_bytes);
  return h('article', { class: ['gpu-card', `st-border-${gpu.present ? gpu.status : 'critical'}`], 'data-gpu': gpu.index, 'data-status': gpu.status },
    h('header', { class: 'gpu-head' },
      h('div', { class: 'gpu-index' }, t('gpu.index', { index: gpu.index })),
      statusPill(gpu.present ? gpu.status : 'critical')),
    h('div', { class: 'gpu-name', title: gpu.uuid }, gpu.name || gpu.chip),
    gpu.present ? null : h('p', { class: 'alert alert-critical' }, t('gpu.notPresent')),
    gpu.problem ? h('p', { class: 'alert alert-warning' }, gpu.problem) : null,
    h('div', { class: 'gpu-temp' },
      h('span', { class: 'big-number' }, fmt.reading(gpu.temperature_celsius, 'celsius')),
      h('span', { class: 'muted' }, t('gpu.slowdownAt', { value: fmt.reading(gpu.slowdown_temperature_celsius, 'celsius') }))),
    metric(t('gpu.utilization'), fmt.percent(gpu.utilization_percent), meter(util)),
    metric(t('gpu.memory'), t('common.ofTotal', { used: fmt.bytes(gpu.memory_used_bytes), total: fmt.bytes(gpu.memory_total_bytes) }), meter(mem)),
    metric(t('gpu.power'), t('common.ofTotal', { used: fmt.reading(gpu.power_watts, 'watts'), total: fmt.reading(gpu.power_limit_watts, 'watts') }), meter(power, loadStatus(power))),
    gpu.throttle_reasons && gpu.throttle_reasons.length
      ? h('p', { class: 'gpu-throttle' }, t('gpu.throttled', { reasons: gpu.throttle_reasons.join(', ') })) : null,
    gpu.last_xid !== null && gpu.last_xid !== undefined
      ? h('p', { class: 'alert alert-warning' }, t('gpu.lastXid', { xid: gpu.last_xid })) : null);
}

function upsFlags(flags) {
  return h('span', { class: 'flags' }, (flags || []).map((f) =>
    h('span', { class: ['flag', `flag-${f}`], title: f }, label('upsFlag', f))));
}

export function upsCard(ups) {
  const charge = Number.isFinite(ups.battery_charge_percent) ? ups.battery_charge_percent / 100 : NaN;
  const load = Number.isFinite(ups.load_percent) ? ups.load_percent / 100 : NaN;
  const chargeStatus = !Number.isFinite(charge) ? 'unknown' : charge <= 0.2 ? 'critical' : charge <= 0.5 ? 'warning' : 'ok';
  return h('article', { class: ['ups-card', `st-border-${ups.status}`], 'data-ups': ups.name, 'data-status': ups.status },
    h('header', { class: 'gpu-head' },
      h('div', { class: 'gpu-index' }, t('ups.title', { name: ups.name })),
      statusPill(ups.status)),
    h('div', { class: 'gpu-name' }, [ups.manufacturer, ups.model].filter(Boolean).join(' ') || ups.chip),
    ups.communicating === false ? h('p', { class: 'alert alert-critical' }, t('ups.lost')) : null,
    ups.problem ? h('p', { class: 'alert alert-warning' }, ups.problem) : null,
    h('div', { class: 'ups-flags' }, upsFlags(ups.flags)),
    metric(t('ups.battery'), fmt.percent(ups.battery_charge_percent), meter(charge, chargeStatus)),
    metric(t('ups.runtime'), fmt.duration(ups.battery_runtime_seconds)),
    metric(t('ups.load'), fmt.percent(ups.load_percent), meter(load, loadStatus(load))),
    metric(t('ups.input'), fmt.reading(ups.input_voltage_volts, 'volts')),
    metric(t('ups.realpower'), fmt.reading(ups.realpower_watts, 'watts')));
}

export function eventRow(e) {
  return h('tr', { 'data-event': e.id, 'data-severity': e.severity },
    h('td', { class: 'nowrap', title: fmt.timeTitle(e.time) }, fmt.dateTime(e.time)),
    h('td', null, statusPill(e.severity)),
    h('td', { class: 'mono small nowrap' }, e.subject),
    h('td', null, label('eventType', e.type)),
    h('td', null, e.message));
}

export function eventsTable() {
  const body = h('tbody');
  const table = h('table', { class: 'table' },
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, t('events.time')),
      h('th', { scope: 'col' }, t('events.severity')),
      h('th', { scope: 'col' }, t('events.subject')),
      h('th', { scope: 'col' }, t('events.type')),
      h('th', { scope: 'col' }, t('events.message')))),
    body);
  return { table, body };
}

const COUNT_ORDER = ['critical', 'non_functional', 'warning', 'unavailable', 'ok'];

export function healthSummary(hw) {
  const counts = hw.counts || {};
  const problems = (hw.sources || []).filter((s) => s.problem);
  return h('div', { class: 'health' },
    h('div', { class: ['health-banner', `st-bg-${hw.health}`], 'data-health': hw.health },
      h('span', { class: 'health-dot', 'aria-hidden': 'true' }),
      h('div', null,
        h('div', { class: 'health-title' }, label('health', hw.health)),
        h('div', { class: 'health-sub' }, t('health.sensorCount', { sensors: fmt.count(hw.sensors), gpus: fmt.count(hw.gpus), upses: fmt.count(hw.upses) }))),
      hw.simulated ? simulatedBadge() : null),
    h('ul', { class: 'counts' }, COUNT_ORDER.map((s) =>
      h('li', { class: ['count', `st-${s === 'non_functional' || s === 'unavailable' ? 'unknown' : s}`, counts[s] ? 'count-some' : 'count-none'] },
        h('span', { class: 'count-n' }, fmt.count(counts[s] || 0)), h('span', { class: 'count-label' }, label('status', s))))),
    problems.map((s) => h('p', { class: 'alert alert-warning', 'data-source': s.name }, t('health.sourceProblem', { source: s.name, problem: s.problem }))));
}
