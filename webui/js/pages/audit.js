// Audit: the tamper-evident log of every change, filtered and paged, and its chain check.
import { get, query } from '../api.js';
import { t } from '../i18n.js';
import { h, renderList, emptyState, field, busy, errorBox, definitionList } from '../ui.js';
import * as fmt from '../format.js';
import { pageFrame, section } from './frame.js';

const PAGE = 50;

function resultClass(code) {
  if (code < 300) return 'ok';
  if (code < 500) return code === 401 || code === 403 || code === 429 ? 'critical' : 'warning';
  return 'critical';
}

function detailChips(details) {
  if (details === null || details === undefined) return null;
  if (typeof details !== 'object') return String(details);
  return Object.entries(details).map(([k, v]) => {
    const text = `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`;
    return h('span', { class: 'detail-chip', title: text }, text);
  });
}

// datetime-local value (browser's zone) -> ISO 8601 UTC, as the audit log stores times.
function toIso(local) {
  if (!local) return '';
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

function entryRow(e) {
  return h('tr', { 'data-audit': e.id, 'data-result': e.result },
    h('td', { class: 'num mono small', title: `sha256 ${e.hash}` }, e.id),
    h('td', { class: 'nowrap', title: e.time }, fmt.dateTime(e.time)),
    h('td', { class: 'mono' }, e.actor),
    h('td', { class: 'mono small' }, e.source),
    h('td', null, h('span', { class: 'mono' }, e.action), e.target && !e.action.endsWith(e.target) ? h('div', { class: 'muted small mono' }, e.target) : null),
    h('td', null, h('span', { class: ['pill', `st-${resultClass(e.result)}`] }, h('span', { class: 'dot', 'aria-hidden': 'true' }), String(e.result))),
    h('td', { class: 'details-cell' }, detailChips(e.details)));
}

export default {
  name: 'audit',
  title: 'nav.audit',
  allowed: (can) => can('audit:read'),
  mount(main, ctx) {
    const frame = pageFrame(main, ctx, { title: t('nav.audit'), intro: t('audit.intro') });
    let filter = {};
    let cursors = [null];

    const actor = h('input', { name: 'actor', placeholder: 'user:admin', autocomplete: 'off', spellcheck: 'false' });
    const action = h('input', { name: 'action', placeholder: 'DELETE /api/v1/models', autocomplete: 'off', spellcheck: 'false' });
    const since = h('input', { name: 'since', type: 'datetime-local', step: 1 });
    const until = h('input', { name: 'until', type: 'datetime-local', step: 1 });
    const apply = h('button', { type: 'submit', class: 'btn btn-primary' }, t('audit.apply'));
    const clearBtn = h('button', { type: 'reset', class: 'btn' }, t('audit.clear'));
    const exportLink = h('a', { class: 'btn', href: '/api/v1/audit/export', download: 'aibox-audit.jsonl' }, t('audit.export'));
    const form = h('form', { id: 'audit-filter', class: 'form-inline' },
      field(t('audit.actor'), actor, t('audit.actorHint')),
      field(t('audit.action'), action, t('audit.actionHint')),
      field(t('audit.since'), since),
      field(t('audit.until'), until),
      h('div', { class: 'form-actions' }, apply, clearBtn));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      filter = { actor: actor.value.trim(), action: action.value.trim(), since: toIso(since.value), until: toIso(until.value) };
      cursors = [null];
      exportLink.href = `/api/v1/audit/export${query(filter)}`;
      ctx.refreshNow();
    });
    form.addEventListener('reset', () => {
      filter = {};
      cursors = [null];
      exportLink.href = '/api/v1/audit/export';
      queueMicrotask(() => ctx.refreshNow());
    });

    const body = h('tbody');
    const empty = h('div');
    const pageInfo = h('span', { class: 'muted small' });
    const newer = h('button', { type: 'button', class: 'btn', disabled: true }, t('audit.newer'));
    const older = h('button', { type: 'button', class: 'btn', disabled: true }, t('audit.older'));
    let nextBefore = null;
    newer.addEventListener('click', () => { if (cursors.length > 1) { cursors.pop(); ctx.refreshNow(); } });
    older.addEventListener('click', () => { if (nextBefore) { cursors.push(nextBefore); ctx.refreshNow(); } });

    const verifyBtn = h('button', { type: 'button', class: 'btn', id: 'audit-verify' }, t('audit.verify'));
    const verifyResult = h('div', { class: 'verify-result', 'aria-live': 'polite' });
    verifyBtn.addEventListener('click', () => busy(verifyBtn, async () => {
      verifyResult.replaceChildren(h('p', { class: 'muted' }, t('audit.verifying')));
      try {
        const v = await get('/api/v1/audit/verify', { signal: ctx.signal });
        const facts = definitionList([
          [t('audit.rowsChecked'), fmt.count(v.rows_checked)],
          [t('audit.archivesChecked'), fmt.count(v.archives_checked)],
          [t('audit.checkedAt'), fmt.dateTime(new Date())],
        ]);
        verifyResult.replaceChildren(h('div', { class: ['verify', v.ok ? 'verify-ok' : 'verify-bad'], 'data-role': 'chain-result', 'data-ok': String(v.ok) },
          h('p', { class: ['alert', v.ok ? 'alert-ok' : 'alert-critical'] }, h('strong', null, v.ok ? t('audit.chainOk') : t('audit.chainBroken', { n: fmt.count(v.problems.length) }))),
          facts,
          v.problems.length ? h('ul', { class: 'problems' }, v.problems.map((p) => h('li', null, h('strong', { class: 'mono' }, p.where), ': ', p.problem))) : null));
      } catch (error) {
        if (!ctx.signal.aborted) verifyResult.replaceChildren(errorBox(error));
      }
    }));

    frame.content.append(
      section(t('audit.chain'), { tools: verifyBtn }, h('p', { class: 'muted' }, t('audit.chainIntro')), verifyResult),
      section(t('audit.log'), { tools: exportLink },
        form,
        h('div', { class: 'table-wrap' }, h('table', { class: 'table table-compact audit-table' },
          h('thead', null, h('tr', null,
            h('th', { scope: 'col', class: 'num' }, '#'), h('th', { scope: 'col' }, t('audit.time')), h('th', { scope: 'col' }, t('audit.actor')),
            h('th', { scope: 'col' }, t('audit.source')), h('th', { scope: 'col' }, t('audit.action')), h('th', { scope: 'col' }, t('audit.result')),
            h('th', { scope: 'col' }, t('audit.details')))),
          body)),
        empty,
        h('div', { class: 'table-foot' }, pageInfo, h('span', { class: 'spacer' }), newer, older)));

    async function refresh() {
      const before = cursors[cursors.length - 1];
      const data = await get(`/api/v1/audit${query({ ...filter, limit: PAGE, before })}`, { signal: ctx.signal });
      renderList(body, data.entries, (e) => e.id, entryRow);
      empty.replaceChildren(data.entries.length ? '' : emptyState(Object.values(filter).some(Boolean) ? t('audit.noMatch') : t('audit.none')));
      nextBefore = data.next_before;
      older.disabled = !nextBefore;
      newer.disabled = cursors.length <= 1;
      pageInfo.textContent = data.entries.length ? t('audit.pageInfo', { page: fmt.count(cursors.length), n: fmt.count(data.entries.length) }) : '';
    }

    frame.run(refresh);
    return { refresh: () => frame.run(refresh) };
  },
};
