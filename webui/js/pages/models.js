// Models: the model store with state, size and memory estimate; import with progress, verify,
// export a bundle, delete.
import { get, post, del, enc } from '../api.js';
import { t } from '../i18n.js';
import {
  h, renderList, statusPill, emptyState, label, field, formErrorSlot, showFormError, busy,
  confirmDialog, toast, toastError, definitionList, meter,
} from '../ui.js';
import * as fmt from '../format.js';
import { pageFrame, section } from './frame.js';

const ACTIVE = new Set(['queued', 'running']);
const FINISHED_SHOWN = 5;
const expanded = new Set();

// A model name from a source path or URL: "/media/usb/DeepSeek-R1-Q4_K_M.gguf" -> "deepseek-r1-q4_k_m".
export function suggestName(source) {
  let base = source.trim().replace(/[?#].*$/, '').replace(/\/+$/, '').split('/').pop() || '';
  base = base.replace(/(\.aibox)?\.tar$/i, '').replace(/\.(gguf|safetensors)$/i, '');
  return base.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 64).replace(/[-._]+$/, '');
}

// The cell's text is the raw state (and, when it differs, the translated label): a running
// job's progress is a bar without text, its percentage in the title.
function stateCell(state, job) {
  const text = label('modelState', state);
  const fraction = job && job.bytes_total > 0 ? job.bytes_done / job.bytes_total : null;
  return h('td', { 'data-field': 'state' },
    h('span', { class: ['pill', `st-${state === 'ready' ? 'ok' : state === 'corrupt' ? 'critical' : state === 'deleting' ? 'unknown' : 'info'}`] },
      h('span', { class: 'dot', 'aria-hidden': 'true' }), h('span', { class: 'state-raw' }, state)),
    text.toLowerCase() !== state ? h('span', { class: 'state-label' }, text) : null,
    fraction === null ? null : h('span', { class: 'state-progress', title: fmt.percent(fraction * 100, 1) }, meter(fraction)));
}

function jobProgress(job) {
  const total = job.bytes_total || 0;
  const fraction = total > 0 ? job.bytes_done / total : null;
  const bar = h('progress', { 'data-job': job.id, max: total > 0 ? total : null, value: total > 0 ? job.bytes_done : null, 'aria-label': t('jobs.progress') });
  const parts = [
    fraction === null ? t('jobs.bytesDone', { done: fmt.bytes(job.bytes_done) }) : fmt.percent(fraction * 100, 1),
    t('jobs.rate', { rate: fmt.rate(job.bytes_per_second) }),
    t('jobs.eta', { eta: job.eta_seconds === null || job.eta_seconds === undefined ? t('jobs.etaUnknown') : fmt.duration(job.eta_seconds) }),
    total > 0 ? t('common.ofTotal', { used: fmt.bytes(job.bytes_done), total: fmt.bytes(total) }) : null,
  ].filter(Boolean);
  return [bar, h('div', { class: 'job-stats', 'data-role': 'job-stats' }, parts.join(' · '))];
}

export default {
  name: 'models',
  title: 'nav.models',
  allowed: (can) => can('model:read'),
  mount(main, ctx) {
    const canWrite = ctx.can('model:write');
    const frame = pageFrame(main, ctx, { title: t('nav.models'), intro: t('models.intro') });
    let models = [];
    let jobs = [];

    // --- import form
    const source = h('input', { name: 'source', required: true, class: 'input-wide', placeholder: t('models.sourcePlaceholder'), spellcheck: 'false', autocomplete: 'off' });
    const name = h('input', { name: 'name', spellcheck: 'false', autocomplete: 'off', pattern: '[a-z0-9][a-z0-9._\\-]{0,63}' });
    const tag = h('input', { name: 'tag', placeholder: 'latest', spellcheck: 'false', autocomplete: 'off', pattern: '[a-z0-9][a-z0-9._\\-]{0,63}' });
    const sha = h('input', { name: 'sha256', spellcheck: 'false', autocomplete: 'off', class: 'mono', pattern: '[0-9a-f]{64}' });
    const importBtn = h('button', { type: 'submit', class: 'btn btn-primary', 'data-action': 'model-import' }, t('models.import'));
    const importForm = h('form', { id: 'model-import', class: 'form-grid' },
      h('div', { class: 'span-all' }, field(t('models.source'), source, t('models.sourceHint'))),
      field(t('models.name'), name, t('models.nameHint')),
      field(t('models.tag'), tag),
      h('div', { class: 'span-all' }, field(t('models.sha256'), sha, t('models.sha256Hint'))),
      h('div', { class: 'span-all' }, formErrorSlot()),
      h('div', { class: 'form-actions span-all' }, importBtn));
    source.addEventListener('input', () => { name.placeholder = suggestName(source.value); });
    importForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      showFormError(importForm, null);
      const body = { source: source.value.trim(), name: name.value.trim() || suggestName(source.value) };
      if (!body.name) {
        showFormError(importForm, { code: 'name', field: 'name', message: t('models.needName') });
        return;
      }
      if (tag.value.trim()) body.tag = tag.value.trim();
      if (sha.value.trim()) body.sha256 = sha.value.trim().toLowerCase();
      await busy(importBtn, async () => {
        try {
          await post('/api/v1/models', body);
          importForm.reset();
          name.placeholder = '';
          toast(t('models.importStarted', { name: body.name }));
          ctx.refreshNow();
        } catch (error) {
          showFormError(importForm, error);
        }
      });
    });

    // --- jobs and table
    const jobsBox = h('div', { class: 'jobs' });
    const jobsEmpty = h('div');
    const thead = h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, t('models.name')), h('th', { scope: 'col' }, t('models.state')),
      h('th', { scope: 'col' }, t('models.model')),
      h('th', { scope: 'col', class: 'num' }, t('models.size')), h('th', { scope: 'col', class: 'num' }, t('models.memory')),
      h('th', { scope: 'col', class: 'actions-col' }, h('span', { class: 'sr-only' }, t('common.actions')))));
    const table = h('table', { class: 'table models-table' }, thead);
    const modelsEmpty = h('div');

    frame.content.append(
      section(t('models.title'), {}, h('div', { class: 'table-wrap' }, table), modelsEmpty),
      h('div', { class: ['grid', canWrite ? 'grid-import' : null] },
        canWrite ? section(t('models.importTitle'), { class: 'card card-import' }, importForm) : null,
        section(t('jobs.title'), { class: 'card card-jobs' }, jobsBox, jobsEmpty)));

    function modelName(id) {
      const m = models.find((x) => x.id === id);
      return m ? `${m.name}:${m.tag}` : null;
    }

    function jobCard(job) {
      const active = ACTIVE.has(job.state);
      let cancel = null;
      if (active && canWrite) {
        cancel = h('button', { type: 'button', class: 'btn btn-small', 'data-action': 'job-cancel', 'data-job-id': job.id }, t('jobs.cancel'));
        cancel.addEventListener('click', async () => {
          const ok = await confirmDialog({
            title: t('jobs.cancelTitle'), message: t(job.kind === 'verify' ? 'jobs.cancelVerify' : 'jobs.cancelImport'),
            confirmText: t('jobs.cancel'), cancelText: t('jobs.keepRunning'),
          });
          if (!ok) return;
          await busy(cancel, async () => {
            try {
              await del(`/api/v1/jobs/${enc(job.id)}`);
              toast(t('jobs.cancelled'));
              ctx.refreshNow();
            } catch (error) {
              toastError(error);
            }
          });
        });
      }
      const what = modelName(job.model_id) || job.source;
      return h('div', { class: ['job', `job-${job.state}`], 'data-job-id': job.id, 'data-state': job.state },
        h('div', { class: 'job-head' },
          h('span', { class: 'job-kind' }, label('jobKind', job.kind)),
          h('strong', { class: 'job-what' }, what),
          statusPill(job.state, 'jobState'),
          h('span', { class: 'muted small', title: fmt.timeTitle(job.created_at) }, fmt.relative(job.created_at)),
          h('span', { class: 'spacer' }), cancel),
        job.source && job.source !== what ? h('div', { class: 'muted small mono job-source' }, job.source) : null,
        active ? jobProgress(job) : null,
        // A finished job keeps a full bar, so its end is seen even when the last progress
        // event came before 100 %.
        job.state === 'succeeded' ? h('progress', { 'data-job': job.id, max: 1, value: 1, 'aria-label': t('jobs.progress') }) : null,
        job.state === 'succeeded' ? h('div', { class: 'muted small' }, t('jobs.finished', { size: fmt.bytes(job.bytes_total), time: fmt.dateTime(job.finished_at) })) : null,
        job.error && job.state !== 'cancelled' ? h('p', { class: 'alert alert-critical', 'data-role': 'job-error' }, job.error) : null);
    }

    function modelRows(m) {
      const key = `${m.name}:${m.tag}`;
      const open = expanded.has(m.id);
      const toggle = h('button', { type: 'button', class: 'disclose', 'aria-expanded': String(open), title: t(open ? 'models.hideDetails' : 'models.details') },
        h('span', { class: 'sr-only' }, t(open ? 'models.hideDetails' : 'models.details')));
      toggle.addEventListener('click', () => {
        if (expanded.has(m.id)) expanded.delete(m.id);
        else expanded.add(m.id);
        renderModels();
      });
      const actions = [];
      if (m.state === 'ready') {
        actions.push(h('a', { class: 'btn btn-small', href: `/api/v1/models/${enc(m.id)}/bundle`, download: `${m.name}-${m.tag}.aibox.tar`, 'data-role': 'model-export', title: t('models.exportHint') }, t('models.export')));
      }
      if (m.state === 'ready' && ctx.can('runtime:control')) {
        actions.push(h('a', { class: 'btn btn-small', href: `#/runtimes?model=${enc(key)}`, 'data-action': 'model-run', title: t('models.runHint') }, t('models.run')));
      }
      if (canWrite) {
        const busyState = m.state === 'importing' || m.state === 'verifying' || m.state === 'deleting';
        const verify = h('button', { type: 'button', class: 'btn btn-small', 'data-action': 'model-verify', disabled: busyState || m.state === 'deleting', title: t('models.verifyHint') }, t('models.verify'));
        verify.addEventListener('click', () => busy(verify, async () => {
          try {
            await post(`/api/v1/models/${enc(m.id)}/verify`);
            toast(t('models.verifyStarted', { name: key }));
            ctx.refreshNow();
          } catch (error) {
            toastError(error);
          }
        }));
        const remove = h('button', {
          type: 'button', class: 'btn btn-small btn-danger-ghost', 'data-action': 'model-delete',
          disabled: busyState || m.in_use > 0, title: m.in_use > 0 ? t('models.inUse', { n: m.in_use }) : null,
        }, t('common.delete'));
        remove.addEventListener('click', async () => {
          const ok = await confirmDialog({
            title: t('models.deleteTitle', { name: key }), message: t('models.deleteMessage', { size: fmt.bytes(m.size_bytes) }),
            confirmText: t('common.delete'),
          });
          if (!ok) return;
          await busy(remove, async () => {
            try {
              await del(`/api/v1/models/${enc(m.id)}`);
              toast(t('models.deleted', { name: key }));
              ctx.refreshNow();
            } catch (error) {
              toastError(error);
            }
          });
        });
        actions.push(verify, remove);
      }
      const labels = Object.entries(m.labels || {});
      const row = h('tr', { 'data-model': m.name, 'data-tag': m.tag, 'data-model-id': m.id, 'data-state': m.state },
        h('td', { 'data-field': 'name' },
          h('div', { class: 'model-name' }, toggle, h('strong', null, m.name), h('span', { class: 'tag' }, m.tag)),
          labels.length ? h('div', { class: 'labels' }, labels.map(([k, v]) => h('span', { class: 'label-chip' }, `${k}=${v}`))) : null,
          m.error ? h('div', { class: 'small st-text-critical', 'data-role': 'model-error' }, m.error) : null),
        stateCell(m.state, m.job),
        h('td', null,
          h('div', { class: 'model-facts' },
            h('span', { 'data-field': 'architecture', title: t('models.architecture') }, m.architecture || fmt.dash()),
            h('span', { 'data-field': 'parameters', title: t('models.parameters') }, t('models.paramsValue', { n: fmt.params(m.parameters) })),
            h('span', { 'data-field': 'quantization', title: t('models.quantization') }, m.quantization || fmt.dash())),
          h('div', { class: 'muted small' }, m.format, ' · ',
            h('span', { 'data-field': 'context' }, t('models.contextValue', { n: m.context_length ? fmt.count(m.context_length) : fmt.dash() })))),
        h('td', { class: 'num', 'data-field': 'size' }, fmt.bytes(m.size_bytes)),
        h('td', { class: 'num', 'data-field': 'memory', title: t('models.memoryHint', { weights: fmt.bytes(m.memory?.weights_bytes), kv: fmt.bytes(m.memory?.kv_cache_bytes) }) },
          fmt.bytes(m.memory?.total_bytes)),
        h('td', { class: 'actions' }, h('div', { class: 'row-actions' }, actions)));
      const group = h('tbody', { class: open ? 'open' : null }, row);
      if (open) group.append(h('tr', { class: 'details-row' }, h('td', { colspan: 6 }, modelDetails(m))));
      return group;
    }

    function modelDetails(m) {
      const files = h('table', { class: 'table table-compact' },
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, t('models.file')), h('th', { scope: 'col', class: 'num' }, t('models.size')), h('th', { scope: 'col' }, 'SHA-256'))),
        h('tbody', null, (m.files || []).map((f) => h('tr', null, h('td', { class: 'mono' }, f.path), h('td', { class: 'num' }, fmt.bytes(f.size_bytes)), h('td', { class: 'mono small digest' }, f.sha256)))));
      const details = Object.entries(m.details || {});
      return h('div', { class: 'details' },
        definitionList([
          [t('models.id'), h('span', { class: 'mono' }, m.id)],
          [t('models.source'), h('span', { class: 'mono' }, m.source || fmt.dash())],
          [t('models.format'), m.format || fmt.dash()],
          [t('models.memoryWeights'), fmt.bytes(m.memory?.weights_bytes)],
          [t('models.memoryKv'), fmt.bytes(m.memory?.kv_cache_bytes)],
          [t('models.inUseLabel'), fmt.count(m.in_use)],
          [t('models.created'), fmt.dateTime(m.created_at)],
          [t('models.verified'), m.verified_at ? fmt.dateTime(m.verified_at) : t('models.neverVerified')],
          ...details.filter(([, v]) => v !== null && v !== '').slice(0, 14)
            .map(([k, v]) => [k, h('span', { class: 'mono' }, typeof v === 'object' ? JSON.stringify(v) : String(v))]),
        ]),
        h('div', { class: 'table-wrap' }, files));
    }

    function renderModels() {
      const activeJob = (id) => jobs.find((j) => j.model_id === id && ACTIVE.has(j.state));
      renderList(table, models.map((m) => ({ ...m, open: expanded.has(m.id), job: activeJob(m.id) || null })), (m) => m.id, modelRows);
      table.prepend(thead);
      modelsEmpty.replaceChildren(models.length ? '' : emptyState(canWrite ? t('models.emptyWrite') : t('models.empty')));
    }

    function renderJobs() {
      const active = jobs.filter((x) => ACTIVE.has(x.state));
      const finished = jobs.filter((x) => !ACTIVE.has(x.state))
        .sort((a, b) => String(b.finished_at || b.created_at).localeCompare(String(a.finished_at || a.created_at)))
        .slice(0, FINISHED_SHOWN);
      renderList(jobsBox, [...active, ...finished], (x) => x.id, jobCard);
      jobsEmpty.replaceChildren(jobs.length ? '' : emptyState(t('jobs.none')));
      // Progress comes pushed once a second with the event stream; without it, poll faster.
      ctx.setInterval(active.length && !ctx.pushed() ? 1000 : null);
    }

    async function refresh() {
      const opts = { signal: ctx.signal };
      const [m, j] = await Promise.all([get('/api/v1/models', opts), get('/api/v1/jobs', opts)]);
      models = m.models;
      jobs = j.jobs;
      renderModels();
      renderJobs();
    }

    // A pushed job: progress is drawn at once; a job that starts or ends changes models too.
    function onEvent(name, data) {
      if (name !== 'job') return false;
      const known = jobs.find((x) => x.id === data.id);
      if (!known || known.state !== data.state) return false;
      jobs = jobs.map((x) => (x.id === data.id ? data : x));
      renderJobs();
      renderModels();
      return true;
    }

    frame.run(refresh);
    return { refresh: () => frame.run(refresh), onEvent, events: ['job', 'model'], pushInterval: 30000 };
  },
};
