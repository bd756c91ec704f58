// Runtimes: the model instances the agent supervises, their state as it changes (the `runtime`
// event), create / start / stop / restart / delete, their last output lines and state changes,
// and a chat playground that streams a ready instance's answer through the agent.
import { get, post, del, enc, postStream } from '../api.js';
import { t } from '../i18n.js';
import {
  h, renderList, emptyState, label, field, formErrorSlot, showFormError, busy,
  confirmDialog, toast, toastError, definitionList, meter, errorBox,
} from '../ui.js';
import * as fmt from '../format.js';
import { pageFrame, section } from './frame.js';

const STATUS = {
  ready: 'ok', starting: 'info', loading: 'info', stopping: 'info', stopped: 'unknown',
  unhealthy: 'warning', backoff: 'warning', crash_loop: 'critical', failed: 'critical',
};
const expanded = new Set();

// The model a "run this model" link asked for: #/runtimes?model=NAME:TAG.
function requestedModel() {
  const q = location.hash.indexOf('?');
  return q < 0 ? '' : new URLSearchParams(location.hash.slice(q + 1)).get('model') || '';
}

// A suggested instance name from a model reference: "deepseek-r1:q4" -> "deepseek-r1-q4".
function instanceName(model) {
  return model.replace(/:latest$/, '').replace(/[^a-z0-9._-]+/g, '-').slice(0, 64);
}

function statePill(r) {
  return h('span', { class: ['pill', `st-${STATUS[r.state] || 'unknown'}`], 'data-status': r.state },
    h('span', { class: 'dot', 'aria-hidden': 'true' }), label('runtimeState', r.state));
}

function stateNote(r) {
  if (r.state === 'loading' && r.progress !== undefined) {
    return h('span', { class: 'state-progress', title: fmt.percent(r.progress * 100, 0) }, meter(r.progress));
  }
  if (r.state === 'backoff' && r.next_try_at) return h('div', { class: 'small muted' }, t('runtimes.nextTry', { time: fmt.relative(r.next_try_at) }));
  if (r.state === 'ready' && r.ready_since) return h('div', { class: 'small muted', title: fmt.timeTitle(r.ready_since) }, t('runtimes.readySince', { time: fmt.relative(r.ready_since) }));
  return null;
}

function placementText(r) {
  const p = r.placement;
  if (!p) return fmt.dash();
  const where = p.gpus.length ? t('runtimes.onGpus', { gpus: p.gpus.map((g) => g.slice(0, 12)).join(', ') })
    : t('runtimes.onCores', { n: p.cpus.length });
  return `:${p.port} · ${where}`;
}

// The settings form fields, named as the API names them so a refusal marks the right one.
function settingsFields(s = {}) {
  const num = (name, value, attrs = {}) => h('input', { name: `settings.${name}`, type: 'number', min: 1, value: value ?? '', ...attrs });
  return {
    threads: num('threads', s.threads),
    context: num('context', s.context),
    parallel: num('parallel', s.parallel),
    gpu_count: num('gpu_count', s.gpu_count, { min: 0 }),
    memory_limit_mib: num('memory_limit_mib', s.memory_limit_mib),
  };
}

function settingsFrom(fields) {
  const out = {};
  for (const [k, input] of Object.entries(fields)) {
    if (input.value !== '') out[k] = Number(input.value);
  }
  return out;
}

// One server-sent events stream (the engine's chat answer) read as it comes.
async function* sseEvents(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    let end;
    while ((end = text.indexOf('\n\n')) >= 0) {
      const block = text.slice(0, end);
      text = text.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length) yield { name, data: data.join('\n') };
    }
  }
}

function playground(ctx) {
  const messages = [];
  let abort = null;
  const pick = h('select', { name: 'instance', 'data-role': 'chat-instance' });
  const log = h('div', { class: 'chat-log', 'data-role': 'chat-log', 'aria-live': 'polite' });
  const input = h('textarea', { name: 'prompt', rows: 3, class: 'input-wide', placeholder: t('chat.placeholder') });
  const maxTokens = h('input', { name: 'max_tokens', type: 'number', min: 1, max: 32768, value: 256 });
  const send = h('button', { type: 'submit', class: 'btn btn-primary', 'data-action': 'chat-send' }, t('chat.send'));
  const stop = h('button', { type: 'button', class: 'btn', 'data-action': 'chat-stop', hidden: true }, t('chat.stop'));
  const clear = h('button', { type: 'button', class: 'btn btn-ghost', 'data-action': 'chat-clear' }, t('chat.clear'));
  const form = h('form', { class: 'chat-form', 'data-role': 'chat' },
    h('div', { class: 'form-inline' }, field(t('chat.instance'), pick), field(t('chat.maxTokens'), maxTokens)),
    log, field(t('chat.prompt'), input), formErrorSlot(),
    h('div', { class: 'form-actions' }, send, stop, clear));

  function bubble(role, text) {
    const el = h('div', { class: ['chat-msg', `chat-${role}`], 'data-role': `chat-${role}` },
      h('div', { class: 'chat-who' }, t(`chat.${role}`)), h('div', { class: 'chat-text' }, text));
    log.append(el);
    log.scrollTop = log.scrollHeight;
    return el;
  }

  async function ask() {
    const prompt = input.value.trim();
    if (!prompt || !pick.value) return;
    showFormError(form, null);
    messages.push({ role: 'user', content: prompt });
    bubble('user', prompt);
    input.value = '';
    const reasoningText = h('pre', { class: 'chat-reasoning-text' });
    const reasoning = h('details', { class: 'chat-reasoning', 'data-role': 'chat-reasoning', hidden: true },
      h('summary', null, t('chat.reasoning')), reasoningText);
    const answer = bubble('assistant', '');
    const content = answer.querySelector('.chat-text');
    answer.insertBefore(reasoning, content);
    const stats = h('div', { class: 'small muted', 'data-role': 'chat-stats' });
    answer.append(stats);
    abort = new AbortController();
    send.disabled = true;
    stop.hidden = false;
    const started = performance.now();
    let first = null;
    let usage = null;
    try {
      const res = await postStream(`/api/v1/runtimes/${enc(pick.value)}/chat`, {
        messages, stream: true, max_tokens: Number(maxTokens.value) || 256, stream_options: { include_usage: true },
      }, { signal: AbortSignal.any([abort.signal, ctx.signal]) });
      for await (const ev of sseEvents(res)) {
        if (ev.data === '[DONE]') break;
        let data;
        try {
          data = JSON.parse(ev.data);
        } catch {
          continue;
        }
        if (ev.name === 'error' || data.error) throw Object.assign(new Error(data.error.message), { code: data.error.code || 'instance_broke_off' });
        if (data.usage) usage = data.usage;
        const delta = data.choices && data.choices[0] && data.choices[0].delta;
        if (!delta) continue;
        if (first === null && (delta.content || delta.reasoning_content)) first = performance.now();
        if (delta.reasoning_content) {
          reasoning.hidden = false;
          reasoningText.textContent += delta.reasoning_content;
        }
        if (delta.content) content.textContent += delta.content;
        log.scrollTop = log.scrollHeight;
      }
      messages.push({ role: 'assistant', content: content.textContent });
      const seconds = (performance.now() - started) / 1000;
      stats.textContent = [
        first === null ? null : t('chat.firstToken', { ms: fmt.number(first - started) }),
        usage ? t('chat.tokens', { n: fmt.count(usage.completion_tokens) }) : null,
        usage && seconds > 0 ? t('chat.rate', { rate: fmt.fixed(usage.completion_tokens / seconds, 1) }) : null,
      ].filter(Boolean).join(' · ');
    } catch (error) {
      messages.pop();
      if (error.name === 'AbortError') {
        stats.textContent = t('chat.stopped');
      } else {
        answer.append(errorBox(error));
      }
    } finally {
      abort = null;
      send.disabled = false;
      stop.hidden = true;
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    ask();
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  stop.addEventListener('click', () => abort && abort.abort());
  clear.addEventListener('click', () => {
    if (abort) abort.abort();
    messages.length = 0;
    log.replaceChildren();
  });

  return {
    form,
    // The ready instances to pick from; the current pick stays while it is ready.
    update(runtimes) {
      const ready = runtimes.filter((r) => r.state === 'ready');
      const keep = pick.value;
      pick.replaceChildren(...(ready.length ? ready.map((r) => h('option', { value: r.name, selected: r.name === keep }, `${r.name} (${r.model})`))
        : [h('option', { value: '' }, t('chat.noneReady'))]));
      send.disabled = Boolean(abort) || !ready.length;
    },
    choose(name) {
      pick.value = name;
      input.focus();
    },
  };
}

export default {
  name: 'runtimes',
  title: 'nav.runtimes',
  allowed: (can) => can('runtime:read'),
  mount(main, ctx) {
    const canControl = ctx.can('runtime:control');
    const frame = pageFrame(main, ctx, { title: t('nav.runtimes'), intro: t('runtimes.intro') });
    let runtimes = [];
    let engines = [];
    let models = [];
    const extra = new Map(); // id -> {logs, events} for the opened rows

    // --- create form
    const nameInput = h('input', { name: 'name', required: true, spellcheck: 'false', autocomplete: 'off', pattern: '[a-z0-9][a-z0-9._\\-]{0,63}' });
    const modelSelect = h('select', { name: 'model', required: true });
    const engineSelect = h('select', { name: 'engine' });
    const startBox = h('input', { type: 'checkbox', name: 'start', checked: true });
    const fields = settingsFields();
    const createBtn = h('button', { type: 'submit', class: 'btn btn-primary', 'data-action': 'runtime-create' }, t('runtimes.create'));
    const createForm = h('form', { id: 'runtime-create', class: 'form-grid' },
      field(t('runtimes.model'), modelSelect), field(t('runtimes.name'), nameInput, t('runtimes.nameHint')),
      field(t('runtimes.engine'), engineSelect),
      field(t('runtimes.threads'), fields.threads, t('runtimes.threadsHint')),
      field(t('runtimes.context'), fields.context, t('runtimes.contextHint')),
      field(t('runtimes.parallel'), fields.parallel),
      field(t('runtimes.gpuCount'), fields.gpu_count, t('runtimes.gpuCountHint')),
      field(t('runtimes.memoryLimit'), fields.memory_limit_mib),
      h('label', { class: 'check span-all' }, startBox, t('runtimes.startNow')),
      h('div', { class: 'span-all' }, formErrorSlot()),
      h('div', { class: 'form-actions span-all' }, createBtn));
    let wanted = requestedModel();
    modelSelect.addEventListener('change', () => {
      if (!nameInput.dataset.touched) nameInput.value = instanceName(modelSelect.value);
    });
    nameInput.addEventListener('input', () => { nameInput.dataset.touched = '1'; });
    createForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      showFormError(createForm, null);
      const body = {
        name: nameInput.value.trim(), model: modelSelect.value, engine: engineSelect.value,
        start: startBox.checked, settings: settingsFrom(fields),
      };
      await busy(createBtn, async () => {
        try {
          const r = await post('/api/v1/runtimes', body);
          toast(t('runtimes.created', { name: r.name }));
          createForm.reset();
          delete nameInput.dataset.touched;
          ctx.refreshNow();
        } catch (error) {
          showFormError(createForm, error);
        }
      });
    });

    const thead = h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, t('runtimes.name')), h('th', { scope: 'col' }, t('runtimes.state')),
      h('th', { scope: 'col' }, t('runtimes.model')), h('th', { scope: 'col' }, t('runtimes.placement')),
      h('th', { scope: 'col', class: 'num' }, t('runtimes.restarts')),
      h('th', { scope: 'col', class: 'actions-col' }, h('span', { class: 'sr-only' }, t('common.actions')))));
    const table = h('table', { class: 'table runtimes-table' }, thead);
    const empty = h('div');
    const chat = playground(ctx);
    frame.content.append(
      section(t('runtimes.title'), {}, h('div', { class: 'table-wrap' }, table), empty),
      h('div', { class: 'grid grid-2' },
        canControl ? section(t('chat.title'), { class: 'card card-chat' }, chat.form) : null,
        canControl ? section(t('runtimes.createTitle'), {}, createForm) : null));

    function action(r, name, text, run, attrs = {}) {
      const btn = h('button', { type: 'button', class: 'btn btn-small', 'data-action': `runtime-${name}`, ...attrs }, text);
      btn.addEventListener('click', () => busy(btn, async () => {
        try {
          await run();
          ctx.refreshNow();
        } catch (error) {
          toastError(error);
        }
      }));
      return btn;
    }

    function rows(r) {
      const open = expanded.has(r.id);
      const toggle = h('button', { type: 'button', class: 'disclose', 'aria-expanded': String(open), title: t(open ? 'runtimes.hideDetails' : 'runtimes.details') },
        h('span', { class: 'sr-only' }, t(open ? 'runtimes.hideDetails' : 'runtimes.details')));
      toggle.addEventListener('click', () => {
        if (expanded.has(r.id)) expanded.delete(r.id);
        else {
          expanded.add(r.id);
          loadExtra(r.id);
        }
        render();
      });
      const path = `/api/v1/runtimes/${enc(r.id)}`;
      const actions = [];
      if (canControl) {
        const down = ['stopped', 'failed', 'crash_loop'].includes(r.state);
        if (r.state === 'ready') {
          const talk = h('button', { type: 'button', class: 'btn btn-small', 'data-action': 'runtime-chat' }, t('runtimes.chat'));
          talk.addEventListener('click', () => chat.choose(r.name));
          actions.push(talk);
        }
        if (down) actions.push(action(r, 'start', t('runtimes.start'), () => post(`${path}/start`)));
        else actions.push(action(r, 'stop', t('runtimes.stop'), () => post(`${path}/stop`), { disabled: r.state === 'stopping' }));
        if (!down) actions.push(action(r, 'restart', t('runtimes.restart'), () => post(`${path}/restart`)));
        const remove = h('button', { type: 'button', class: 'btn btn-small btn-danger-ghost', 'data-action': 'runtime-delete', disabled: !down, title: down ? null : t('runtimes.stopFirst') }, t('common.delete'));
        remove.addEventListener('click', async () => {
          const ok = await confirmDialog({ title: t('runtimes.deleteTitle', { name: r.name }), message: t('runtimes.deleteMessage'), confirmText: t('common.delete') });
          if (!ok) return;
          await busy(remove, async () => {
            try {
              await del(path);
              toast(t('runtimes.deleted', { name: r.name }));
              ctx.refreshNow();
            } catch (error) {
              toastError(error);
            }
          });
        });
        actions.push(remove);
      }
      const row = h('tr', { 'data-runtime': r.name, 'data-runtime-id': r.id, 'data-state': r.state },
        h('td', { 'data-field': 'name' }, h('div', { class: 'model-name' }, toggle, h('strong', null, r.name)),
          r.reason && r.state !== 'ready' ? h('div', { class: ['small', STATUS[r.state] === 'critical' ? 'st-text-critical' : 'muted'], 'data-role': 'runtime-reason' }, r.reason) : null),
        h('td', { 'data-field': 'state' }, statePill(r), stateNote(r)),
        h('td', { 'data-field': 'model' }, r.model, h('div', { class: 'small muted' }, r.engine)),
        h('td', { 'data-field': 'placement', class: 'mono small' }, placementText(r)),
        h('td', { class: 'num', 'data-field': 'restarts' }, fmt.count(r.restarts)),
        h('td', { class: 'actions' }, h('div', { class: 'row-actions' }, actions)));
      const group = h('tbody', { class: open ? 'open' : null }, row);
      if (open) group.append(h('tr', { class: 'details-row' }, h('td', { colspan: 6 }, details(r))));
      return group;
    }

    function details(r) {
      const more = extra.get(r.id) || {};
      const s = r.settings || {};
      return h('div', { class: 'details' },
        definitionList([
          [t('runtimes.id'), h('span', { class: 'mono' }, r.id)],
          [t('runtimes.desired'), t(r.desired === 'running' ? 'runtimes.desiredRunning' : 'runtimes.desiredStopped')],
          [t('runtimes.servedName'), h('span', { class: 'mono' }, r.served_name)],
          [t('runtimes.pid'), r.pid ? String(r.pid) : fmt.dash()],
          r.cgroup ? [t('runtimes.cgroup'), h('span', { class: 'mono small' }, r.cgroup)] : null,
          r.placement && r.placement.memory_estimate_bytes ? [t('runtimes.memoryEstimate'), fmt.bytes(r.placement.memory_estimate_bytes)] : null,
          [t('runtimes.settings'), h('span', { class: 'mono small' }, Object.keys(s).length ? JSON.stringify(s) : t('runtimes.defaults'))],
          [t('runtimes.createdAt'), fmt.dateTime(r.created_at)],
        ]),
        h('h3', { class: 'sub-title' }, t('runtimes.events')),
        more.events ? (more.events.length ? h('ul', { class: 'event-list', 'data-role': 'runtime-events' }, more.events.slice(0, 20).map((e) => h('li', { 'data-state': e.state },
          h('span', { class: 'muted small', title: fmt.timeTitle(e.time) }, fmt.dateTime(e.time)), ' ', label('runtimeState', e.state), ': ', e.message)))
          : emptyState(t('runtimes.noEvents'))) : null,
        h('h3', { class: 'sub-title' }, t('runtimes.logs')),
        more.logs ? h('pre', { class: 'log-lines', 'data-role': 'runtime-logs' }, more.logs.length ? more.logs.join('\n') : t('runtimes.noLogs')) : null);
    }

    async function loadExtra(id) {
      try {
        const [logs, events] = await Promise.all([
          get(`/api/v1/runtimes/${enc(id)}/logs?lines=100`, { signal: ctx.signal }),
          get(`/api/v1/runtimes/${enc(id)}/events`, { signal: ctx.signal }),
        ]);
        extra.set(id, { logs: logs.lines, events: events.events });
        render();
      } catch (error) {
        // The row shows what it had; the next refresh tries again.
      }
    }

    function render() {
      renderList(table, runtimes.map((r) => ({ ...r, open: expanded.has(r.id), extra: extra.get(r.id) || null })), (r) => r.id, rows);
      table.prepend(thead);
      empty.replaceChildren(runtimes.length ? '' : emptyState(canControl ? t('runtimes.emptyControl') : t('runtimes.empty')));
      chat.update(runtimes);
    }

    function fillForm() {
      const keep = modelSelect.value || wanted;
      const ready = models.filter((m) => m.state === 'ready');
      modelSelect.replaceChildren(...ready.map((m) => {
        const ref = `${m.name}:${m.tag}`;
        return h('option', { value: ref, selected: ref === keep || m.name === keep }, `${ref} · ${fmt.bytes(m.memory?.total_bytes)}`);
      }));
      const engine = engineSelect.value || 'builtin';
      engineSelect.replaceChildren(...engines.map((e) => h('option', { value: e.name, selected: e.name === engine, disabled: !e.installed },
        e.installed ? e.name : t('runtimes.notInstalled', { name: e.name }))));
      if (wanted && ready.length) {
        if (!nameInput.dataset.touched) nameInput.value = instanceName(modelSelect.value);
        wanted = '';
        nameInput.focus();
      }
    }

    async function refresh() {
      const [list, engineList, modelList] = await Promise.all([
        get('/api/v1/runtimes', { signal: ctx.signal }),
        engines.length ? { engines } : get('/api/v1/engines', { signal: ctx.signal }),
        canControl ? get('/api/v1/models', { signal: ctx.signal }) : { models: [] },
      ]);
      runtimes = list.runtimes;
      engines = engineList.engines;
      models = modelList.models;
      for (const id of expanded) if (runtimes.some((r) => r.id === id)) loadExtra(id);
      render();
      if (canControl) fillForm();
    }

    frame.run(refresh);
    return {
      refresh: () => frame.run(refresh),
      // A state change carries the instance as the API shows it: update its row at once.
      onEvent(name, data) {
        if (name !== 'runtime' || !data.runtime) return false;
        const i = runtimes.findIndex((r) => r.id === data.runtime.id);
        if (data.state === 'deleted') runtimes = runtimes.filter((r) => r.id !== data.runtime.id);
        else if (i >= 0) runtimes[i] = data.runtime;
        else runtimes.push(data.runtime);
        if (expanded.has(data.runtime.id)) loadExtra(data.runtime.id);
        render();
        return true;
      },
      events: ['runtime', 'model'],
      interval: 5000,
      pushInterval: 30000,
    };
  },
};
