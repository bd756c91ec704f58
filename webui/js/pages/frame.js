// The frame every page shares: a heading, a loading state until the first data arrives, an
// error with a retry when it cannot load, and a quiet "could not refresh" note afterwards.
import { isAbort } from '../api.js';
import { t } from '../i18n.js';
import { h, loading, errorBox, errorParts } from '../ui.js';
import { shortTime } from '../format.js';

export function pageFrame(main, ctx, { title, intro, actions }) {
  const updated = h('span', { class: 'updated', 'aria-live': 'off' });
  const status = h('div', { class: 'page-status' }, loading());
  const content = h('div', { class: 'page-content', hidden: true });
  main.append(
    h('div', { class: 'page-head' },
      h('div', null, h('h1', null, title), intro ? h('p', { class: 'muted page-intro' }, intro) : null),
      h('div', { class: 'page-actions' }, updated, actions || null)),
    status, content);
  let loaded = false;

  async function run(load) {
    try {
      await load();
      if (ctx.signal.aborted) return;
      loaded = true;
      content.hidden = false;
      status.replaceChildren();
      updated.textContent = t('common.updatedAt', { time: shortTime(new Date(), false) });
      updated.classList.remove('stale');
      ctx.ready();
    } catch (error) {
      if (isAbort(error) || ctx.signal.aborted || error.status === 401) return;
      if (!loaded) {
        const retry = h('button', { type: 'button', class: 'btn' }, t('common.retry'));
        retry.addEventListener('click', () => {
          status.replaceChildren(loading());
          run(load);
        });
        status.replaceChildren(errorBox(error), retry);
      } else {
        const { summary } = errorParts(error);
        updated.textContent = t('common.refreshFailed', { error: summary });
        updated.classList.add('stale');
      }
    }
  }

  return { content, run };
}

// A card with a heading, optional tools at the right of the heading, and its content.
export function section(title, { tools, ...attrs } = {}, ...children) {
  return h('section', { class: 'card', ...attrs },
    h('div', { class: 'card-head' }, h('h2', { class: 'card-title' }, title), tools || null),
    ...children);
}
