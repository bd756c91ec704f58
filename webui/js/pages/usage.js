// Usage: what applications used through the gateway, per key and model, over a chosen range:
// requests and tokens per hour as charts, the sums per key and model, and the rows as CSV.
import { get, query } from '../api.js';
import { t } from '../i18n.js';
import { h, renderList, emptyState, field, select } from '../ui.js';
import * as fmt from '../format.js';
import { lineChart } from '../chart.js';
import { pageFrame, section } from './frame.js';

const RANGES = { '24h': 86400, '7d': 7 * 86400, '30d': 30 * 86400 };
const HOUR = 3600;

// Kept across visits to the page.
const chosen = { range: '7d', key: '', model: '' };

// The rows summed per hour, as the chart takes them: every hour of the range, 0 without use.
function perHour(rows, value, from, to) {
  const sums = new Map();
  for (const r of rows) {
    const at = new Date(r.hour).getTime();
    sums.set(at, (sums.get(at) || 0) + value(r));
  }
  const points = [];
  for (let at = from.getTime(); at < to.getTime(); at += HOUR * 1000) {
    points.push({ time: new Date(at).toISOString(), avg: sums.get(at) || 0 });
  }
  return points;
}

function perKeyAndModel(rows) {
  const sums = new Map();
  for (const r of rows) {
    const id = `${r.key}\u0000${r.model}`;
    const s = sums.get(id) || { id, key: r.key, keyName: r.key_name, model: r.model, requests: 0, prompt: 0, completion: 0, errors: 0, latency: 0 };
    s.requests += r.requests;
    s.prompt += r.prompt_tokens;
    s.completion += r.completion_tokens;
    s.errors += r.errors;
    s.latency += r.latency_ms;
    sums.set(id, s);
  }
  return [...sums.values()].sort((a, b) => b.requests - a.requests);
}

function sumRow(s) {
  return h('tr', { 'data-usage': s.id },
    h('td', null, s.keyName ? h('strong', null, s.keyName) : h('span', { class: 'muted' }, t('usage.deletedKey')), h('div', { class: 'muted small mono' }, s.key)),
    h('td', { class: 'mono' }, s.model),
    h('td', { class: 'num', 'data-field': 'requests' }, fmt.count(s.requests)),
    h('td', { class: 'num', 'data-field': 'prompt' }, fmt.count(s.prompt)),
    h('td', { class: 'num', 'data-field': 'completion' }, fmt.count(s.completion)),
    h('td', { class: 'num', 'data-field': 'errors' }, fmt.count(s.errors)),
    h('td', { class: 'num' }, s.requests ? t('usage.ms', { n: fmt.count(Math.round(s.latency / s.requests)) }) : fmt.dash()));
}

export default {
  name: 'usage',
  title: 'nav.usage',
  allowed: (can) => can('usage:read'),
  mount(main, ctx) {
    const frame = pageFrame(main, ctx, { title: t('nav.usage'), intro: t('usage.intro') });
    const range = select({ name: 'range' }, Object.keys(RANGES).map((r) => [r, t(`usage.range.${r}`)]), chosen.range);
    const keySelect = select({ name: 'key' }, [['', t('usage.allKeys')]], chosen.key);
    const modelSelect = select({ name: 'model' }, [['', t('usage.allModels')]], chosen.model);
    const exportLink = h('a', { class: 'btn', 'data-role': 'usage-export', download: 'aibox-usage.csv' }, t('usage.export'));
    for (const [control, name] of [[range, 'range'], [keySelect, 'key'], [modelSelect, 'model']]) {
      control.addEventListener('change', () => {
        chosen[name] = control.value;
        ctx.refreshNow();
      });
    }
    const filters = h('div', { class: 'form-inline' },
      field(t('usage.rangeLabel'), range), field(t('usage.key'), keySelect), field(t('usage.model'), modelSelect));
    const totals = h('div', { class: 'stat-row', 'data-role': 'usage-totals' });
    const requestsChart = h('div', { class: 'chart-box' });
    const tokensChart = h('div', { class: 'chart-box' });
    const body = h('tbody');
    const empty = h('div');
    frame.content.append(
      section(t('usage.over'), { tools: exportLink }, filters, totals, requestsChart, tokensChart),
      section(t('usage.byKeyModel'), {},
        h('div', { class: 'table-wrap' }, h('table', { class: 'table table-compact', id: 'usage-table' },
          h('thead', null, h('tr', null,
            h('th', { scope: 'col' }, t('usage.key')), h('th', { scope: 'col' }, t('usage.model')),
            h('th', { scope: 'col', class: 'num' }, t('usage.requests')), h('th', { scope: 'col', class: 'num' }, t('usage.prompt')),
            h('th', { scope: 'col', class: 'num' }, t('usage.completion')), h('th', { scope: 'col', class: 'num' }, t('usage.errors')),
            h('th', { scope: 'col', class: 'num' }, t('usage.latency')))),
          body)),
        empty));

    // The keys and models seen in the range, for the filters (kept when one is chosen).
    function fillChoices(control, values, allText, current) {
      const options = [['', allText], ...[...values.entries()].sort((a, b) => a[1].localeCompare(b[1]))];
      if (current && !values.has(current)) options.push([current, current]);
      control.replaceChildren(...options.map(([value, text]) => h('option', { value, selected: value === current }, text)));
    }

    async function refresh() {
      const to = new Date(Math.ceil(Date.now() / (HOUR * 1000)) * HOUR * 1000);
      const from = new Date(to.getTime() - RANGES[chosen.range] * 1000);
      // Unix seconds: the agent takes them as well as ISO 8601 without fractions.
      const filter = { since: from.getTime() / 1000, until: to.getTime() / 1000, key: chosen.key || undefined, model: chosen.model || undefined };
      const [data, all] = await Promise.all([
        get(`/api/v1/usage${query(filter)}`, { signal: ctx.signal }),
        get(`/api/v1/usage${query({ since: filter.since, until: filter.until })}`, { signal: ctx.signal }),
      ]);
      exportLink.href = `/api/v1/usage${query({ ...filter, format: 'csv' })}`;
      fillChoices(keySelect, new Map(all.usage.map((r) => [r.key, r.key_name || r.key])), t('usage.allKeys'), chosen.key);
      fillChoices(modelSelect, new Map(all.usage.map((r) => [r.model, r.model])), t('usage.allModels'), chosen.model);
      const tt = data.totals;
      totals.replaceChildren(...[
        ['requests', tt.requests], ['prompt', tt.prompt_tokens], ['completion', tt.completion_tokens], ['errors', tt.errors],
      ].map(([name, v]) => h('div', { class: 'stat', 'data-total': name }, h('div', { class: 'stat-value' }, fmt.count(v)), h('div', { class: 'stat-label muted small' }, t(`usage.${name}`)))));
      const width = requestsChart.clientWidth || undefined;
      requestsChart.replaceChildren(lineChart({
        id: 'usage-requests', points: perHour(data.usage, (r) => r.requests, from, to), from, to, stepSeconds: HOUR,
        format: (v) => fmt.count(v), label: t('usage.requestsPerHour'), emptyText: t('usage.none'), width,
      }), h('p', { class: 'muted small chart-note' }, t('usage.requestsPerHour')));
      tokensChart.replaceChildren(lineChart({
        id: 'usage-tokens', points: perHour(data.usage, (r) => r.prompt_tokens + r.completion_tokens, from, to), from, to, stepSeconds: HOUR,
        format: (v) => fmt.count(v), label: t('usage.tokensPerHour'), emptyText: t('usage.none'), width,
      }), h('p', { class: 'muted small chart-note' }, t('usage.tokensPerHour')));
      const sums = perKeyAndModel(data.usage);
      renderList(body, sums, (s) => s.id, sumRow);
      empty.replaceChildren(sums.length ? '' : emptyState(t('usage.none')));
    }

    frame.run(refresh);
    return { refresh: () => frame.run(refresh) };
  },
};
