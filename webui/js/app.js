// The console's entry point: session, hash router, page shell, live refresh and idle sign-out.
import { api, get, post, setCsrfToken, onApiEvents, isAbort } from './api.js';
import { initI18n, setLang, currentLang, LANGUAGES, t } from './i18n.js';
import { roleAllows } from './roles.js';
import { h, svg, label, simulatedBadge, toast } from './ui.js';
import { Live, EventStream } from './live.js';
import loginPage from './pages/login.js';
import dashboardPage from './pages/dashboard.js';
import hardwarePage from './pages/hardware.js';
import modelsPage from './pages/models.js';
import runtimesPage from './pages/runtimes.js';
import accessPage from './pages/access.js';
import auditPage from './pages/audit.js';
import systemPage from './pages/system.js';
import licensePage from './pages/license.js';
import usagePage from './pages/usage.js';

const PAGES = [dashboardPage, hardwarePage, modelsPage, runtimesPage, usagePage, accessPage, auditPage, licensePage, systemPage];
const SESSION_HINT = 'aibox.session'; // set while this browser is believed to be logged in
const IDLE_KEY = 'aibox.idleTimeout';
const DEFAULT_IDLE_S = 900;

const state = {
  session: null, // {user, name, role, kind, mustChange, csrf, sessionId, expiresAt}
  loginNotice: null, // a message for the login page (session ended, signed out)
  returnTo: null,
  page: null, // {name, controller, abort}
  shell: null,
  box: null, // {hostname, simulated}
  lastActivity: Date.now(),
  idleWarned: false,
};

const live = new Live(() => state.page && state.page.controller);

// Pushed status changes: the visible page takes the event itself (onEvent returns true) or is
// refreshed when it listens to that kind of event; warning and critical hardware events are
// announced on the pages that do not list them.
let pushTimer = null;
const stream = new EventStream({
  onEvent(name, data) {
    const controller = state.page && state.page.controller;
    if (name === 'hardware' && state.shell) markHealth(data.health);
    if (name === 'license' && state.shell) loadLicense();
    if (name === 'hardware_event' && data.severity !== 'ok' && state.page && !['dashboard', 'hardware'].includes(state.page.name)) {
      toast(t('shell.hardwareEvent', { severity: label('status', data.severity), message: data.message }), data.severity === 'critical' ? 'critical' : 'warning');
    }
    if (!controller) return;
    if (controller.onEvent && controller.onEvent(name, data)) return;
    if (name === 'resync' || (controller.events && controller.events.includes(name))) {
      clearTimeout(pushTimer);
      pushTimer = setTimeout(() => live.now(), 300);
    }
  },
  onState(connected) {
    live.setPushed(connected);
    // Events are not replayed: after a (re)connect, fetch what the page shows.
    if (connected) live.now();
    if (state.shell) state.shell.root.classList.toggle('pushed', connected);
  },
  onEnded() {
    // The agent ended the stream for this session: find out why (a 401 leads to the login).
    recheckSession().then(() => {
      if (state.session && state.shell) setTimeout(() => stream.start(), 5000);
    });
  },
});

function can(permission) {
  return Boolean(state.session) && roleAllows(state.session.role, permission);
}

function routeName() {
  const m = /^#\/([a-z-]+)/.exec(location.hash);
  return m ? m[1] : '';
}

function navigate(name, { replace = false } = {}) {
  const hash = `#/${name}`;
  if (location.hash === hash) {
    render();
  } else if (replace) {
    history.replaceState(null, '', hash);
    render();
  } else {
    location.hash = hash;
  }
}

function setSession(data) {
  state.session = {
    user: data.user || data.name,
    name: data.name || `user:${data.user}`,
    role: data.role,
    kind: data.kind || 'session',
    mustChange: Boolean(data.must_change_password),
    csrf: data.csrf_token || null,
    sessionId: data.session_id || null,
    expiresAt: data.expires_at || null,
  };
  setCsrfToken(state.session.csrf);
  localStorage.setItem(SESSION_HINT, '1');
  if (data.idle_timeout_seconds) localStorage.setItem(IDLE_KEY, String(data.idle_timeout_seconds));
}

function dropSession(notice) {
  stream.stop();
  state.session = null;
  state.box = null;
  setCsrfToken(null);
  localStorage.removeItem(SESSION_HINT);
  state.loginNotice = notice || null;
}

// Called by the login page.
function loggedIn(data) {
  setSession(data);
  state.loginNotice = null;
  state.lastActivity = Date.now();
  const target = state.returnTo && state.returnTo !== 'login' ? state.returnTo : 'dashboard';
  state.returnTo = null;
  if (state.session.mustChange) render();
  else navigate(target, { replace: true });
}

function passwordChanged() {
  state.session.mustChange = false;
  navigate('dashboard', { replace: true });
}

async function logout(noticeKey = 'login.signedOut') {
  try {
    await post('/api/v1/auth/logout');
  } catch (error) {
    // Already gone on the agent's side: the result is the same.
  }
  dropSession(t(noticeKey));
  state.shell = null;
  navigate('login', { replace: true });
}

onApiEvents({
  unauthorized() {
    if (!state.session && routeName() === 'login') return;
    const current = routeName();
    dropSession(t('login.sessionEnded'));
    state.shell = null;
    if (current && current !== 'login') state.returnTo = current;
    navigate('login', { replace: true });
  },
  passwordChangeRequired() {
    if (state.session && !state.session.mustChange) {
      state.session.mustChange = true;
      render();
    }
  },
  forbidden() {
    recheckSession();
  },
});

// The role may have changed since the console loaded (an admin changed it): ask again, and
// redraw the console for the new role so it offers only what that role allows.
async function recheckSession() {
  if (!state.session || state.checkingRole) return;
  state.checkingRole = true;
  try {
    const fresh = await get('/api/v1/auth/session');
    if (state.session && (fresh.role !== state.session.role || Boolean(fresh.must_change_password) !== state.session.mustChange)) {
      setSession(fresh);
      state.shell = null;
      render();
    }
  } catch (error) {
    // A 401 is handled on its own; anything else leaves the console as it is.
  } finally {
    state.checkingRole = false;
  }
}

// ---- shell ---------------------------------------------------------------------------------

function langSelect() {
  const select = h('select', { id: 'lang', class: 'lang-select', 'aria-label': t('shell.language') },
    LANGUAGES.map((l) => h('option', { value: l, selected: l === currentLang() }, t(`lang.${l}`))));
  select.addEventListener('change', async () => {
    await setLang(select.value);
    state.shell = null;
    render();
  });
  return select;
}

// Outline icons, 24x24 paths.
const ICONS = {
  dashboard: 'M4 4h7v7H4zM13 4h7v4h-7zM13 10h7v10h-7zM4 13h7v7H4z',
  hardware: 'M7 7h10v10H7zM10 10h4v4h-4zM9 3v4M15 3v4M9 17v4M15 17v4M3 9h4M3 15h4M17 9h4M17 15h4',
  models: 'M12 3l8 4.5v9L12 21l-8-4.5v-9zM4 7.5l8 4.5 8-4.5M12 12v9',
  runtimes: 'M5 4l14 8-14 8zM5 12h6',
  access: 'M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM2 21c0-3.9 3.1-7 7-7s7 3.1 7 7M17 11l2 2 4-4',
  audit: 'M6 3h9l4 4v14H6zM14 3v5h5M9 12h7M9 16h7',
  system: 'M12 8v5M12 16h.01M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18z',
  license: 'M7 3h10v18l-5-3-5 3zM10 8h4M10 12h4',
  usage: 'M4 20V10M10 20V4M16 20v-7M22 20H2',
};

function navLink(page) {
  return h('a', { href: `#/${page.name}`, 'data-nav': page.name, class: 'nav-link' },
    h('span', { class: 'nav-icon', 'aria-hidden': 'true' }, svg('svg', { viewBox: '0 0 24 24' }, svg('path', { d: ICONS[page.name] }))),
    t(page.title));
}

function buildShell(root) {
  const s = state.session;
  const nav = h('nav', { class: 'sidebar', 'aria-label': t('shell.navigation') },
    h('ul', null, PAGES.filter((p) => p.allowed(can)).map((p) => h('li', null, navLink(p)))));
  const logoutBtn = h('button', { type: 'button', id: 'logout', class: 'btn btn-ghost' }, t('shell.logout'));
  logoutBtn.addEventListener('click', () => logout());
  const hostEl = h('span', { class: 'topbar-host' });
  const simEl = h('span', { class: 'topbar-sim' });
  const header = h('header', { class: 'topbar' },
    h('a', { class: 'brand', href: '#/dashboard' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, 'ai'), t('shell.product')),
    hostEl, simEl,
    h('span', { class: 'topbar-spacer' }),
    langSelect(),
    h('span', { class: 'topbar-user', title: s.name },
      h('span', { class: 'user-name' }, s.user), h('span', { class: `role-badge role-${s.role}` }, label('role', s.role))),
    logoutBtn);
  const idleBanner = h('div', { class: 'idle-banner', role: 'alert', hidden: true });
  const licenseBanner = h('div', { class: 'license-banner', 'data-role': 'license-banner', role: 'alert', hidden: true });
  const mainSlot = h('main', { 'data-page': '' });
  root.replaceChildren(header, idleBanner, licenseBanner, h('div', { class: 'layout' }, nav, mainSlot));
  state.shell = { root, nav, hostEl, simEl, idleBanner, licenseBanner };
  loadBoxInfo();
  loadLicense();
  if (can('system:read')) stream.start();
}

async function loadBoxInfo() {
  if (!state.box) {
    state.box = {};
    try {
      if (can('system:read')) state.box.hostname = (await get('/api/v1/system')).hostname;
      if (can('hardware:read')) {
        const hw = await get('/api/v1/hardware');
        state.box.simulated = hw.simulated;
        state.box.health = hw.health;
      }
    } catch (error) {
      if (!isAbort(error)) state.box = null;
    }
  }
  if (!state.shell || !state.box) return;
  state.shell.hostEl.textContent = state.box.hostname || '';
  state.shell.simEl.replaceChildren(state.box.simulated ? simulatedBadge() : '');
  if (state.box.health) markHealth(state.box.health);
}

// A banner on every page while the license is not valid (grace, expired, invalid, none): it
// says why, and what to do, with a link to the License page.
async function loadLicense(answer) {
  if (!can('license:read') || !state.shell) return;
  let l = answer;
  if (!l) {
    try {
      l = await get('/api/v1/license');
    } catch (error) {
      return;
    }
  }
  const banner = state.shell && state.shell.licenseBanner;
  if (!banner) return;
  banner.hidden = l.state === 'valid';
  banner.dataset.state = l.state;
  banner.className = `license-banner license-${l.state === 'grace' || l.state === 'none' ? 'warning' : 'critical'}`;
  banner.replaceChildren(h('strong', null, t(`license.banner.${l.state}`)), ' ', l.message, ' ',
    h('a', { href: '#/license' }, t('license.bannerLink')));
}

// The overall hardware health as a dot on the Hardware link, kept current on every page.
function markHealth(health) {
  if (state.box) state.box.health = health;
  const link = state.shell && state.shell.nav.querySelector('a[data-nav=hardware]');
  if (!link) return;
  let dot = link.querySelector('.nav-health');
  if (!dot) {
    dot = h('span', { class: 'nav-health' });
    link.append(dot);
  }
  dot.className = `nav-health st-dot-${health}`;
  dot.title = label('health', health);
}

function markNav(name) {
  for (const a of state.shell.nav.querySelectorAll('a[data-nav]')) {
    if (a.dataset.nav === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// ---- pages -----------------------------------------------------------------------------------

function unmountPage() {
  if (!state.page) return;
  state.page.abort.abort();
  if (state.page.controller && state.page.controller.unmount) state.page.controller.unmount();
  state.page = null;
}

function mountPage(page, slot) {
  const navigated = Boolean(state.page);
  unmountPage();
  const main = h('main', { 'data-page': page.name, id: 'main', tabindex: '-1' });
  slot.replaceWith(main);
  const abort = new AbortController();
  const ctx = {
    can,
    session: state.session,
    signal: abort.signal,
    ready() {
      if (!abort.signal.aborted) main.dataset.ready = 'true';
    },
    setInterval(ms) {
      live.setInterval(ms);
    },
    navigate,
    refreshNow() {
      live.now();
    },
    markHealth,
    onLicense: (l) => loadLicense(l),
    pushed: () => stream.connected,
    app: { loggedIn, passwordChanged, logout, notice: state.loginNotice },
  };
  state.page = { name: page.name, abort, controller: null };
  document.title = `${t(page.title)} · ${t('shell.product')}`;
  const controller = page.mount(main, ctx);
  state.page.controller = controller;
  // Moving between pages puts keyboard and screen-reader focus at the new page's start.
  if (navigated && page.name !== 'login' && !main.contains(document.activeElement)) main.focus({ preventScroll: true });
  live.reset(controller && controller.interval, controller && controller.pushInterval);
  return main;
}

async function render() {
  const root = document.getElementById('app');
  root.classList.remove('app-booting');
  root.removeAttribute('aria-busy');
  const name = routeName();

  if (!state.session || state.session.mustChange) {
    if (!state.session && name && name !== 'login') state.returnTo = name;
    if (name !== 'login') {
      history.replaceState(null, '', '#/login');
    }
    state.shell = null;
    live.stop();
    unmountPage();
    const slot = h('main', { 'data-page': 'login' });
    root.replaceChildren(h('div', { class: 'login-wrap' },
      h('div', { class: 'login-top' }, langSelect()), slot));
    const main = mountPage(loginPage, slot);
    main.classList.add('login-main');
    return;
  }

  const page = PAGES.find((p) => p.name === name);
  if (!page || !page.allowed(can)) {
    const fallback = PAGES.find((p) => p.allowed(can));
    navigate(fallback ? fallback.name : 'system', { replace: true });
    return;
  }
  if (!state.shell) buildShell(root);
  markNav(page.name);
  const slot = root.querySelector('main');
  mountPage(page, slot);
}

// ---- idle sign-out ---------------------------------------------------------------------------

function idleLimitMs() {
  const s = Number(localStorage.getItem(IDLE_KEY));
  return (Number.isFinite(s) && s > 0 ? s : DEFAULT_IDLE_S) * 1000;
}

function watchIdle() {
  const active = () => {
    state.lastActivity = Date.now();
    if (state.idleWarned && state.shell) {
      state.shell.idleBanner.hidden = true;
      state.idleWarned = false;
    }
  };
  for (const type of ['pointerdown', 'keydown', 'wheel', 'touchstart']) {
    window.addEventListener(type, active, { passive: true, capture: true });
  }
  setInterval(() => {
    if (!state.session || state.session.mustChange || !state.shell) return;
    const left = idleLimitMs() - (Date.now() - state.lastActivity);
    if (left <= 0) {
      logout('login.idleSignedOut');
    } else if (left <= 60000) {
      state.idleWarned = true;
      state.shell.idleBanner.hidden = false;
      state.shell.idleBanner.textContent = t('shell.idleWarning', { seconds: Math.ceil(left / 1000) });
    }
  }, 1000);
}

// ---- start -----------------------------------------------------------------------------------

async function start() {
  try {
    await initI18n();
  } catch (error) {
    document.getElementById('app').textContent = String(error.message);
    return;
  }
  // Only ask the agent who we are when this browser logged in before; a first visit goes
  // straight to the login form without a request that would only answer 401.
  if (localStorage.getItem(SESSION_HINT)) {
    try {
      setSession(await api('GET', '/api/v1/auth/session', undefined, { auth: true }));
    } catch (error) {
      dropSession(error.status === 401 ? t('login.sessionEnded') : null);
      if (error.status !== 401) toast(t('errors.network'), 'critical', error.message);
    }
  }
  window.addEventListener('hashchange', () => render());
  document.addEventListener('visibilitychange', () => live.visibility());
  watchIdle();
  render();
}

start();
