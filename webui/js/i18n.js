// Strings and locale. Every user-visible string comes from i18n/<lang>.json through t().
export const LANGUAGES = ['en', 'zh-CN'];
const STORAGE_KEY = 'aibox.lang';

let lang = 'en';
let strings = {};

export function currentLang() {
  return lang;
}

function preferred() {
  const stored = localStorage.getItem(STORAGE_KEY);
  if (LANGUAGES.includes(stored)) return stored;
  for (const l of navigator.languages || [navigator.language || 'en']) {
    if (/^zh\b/i.test(l)) return 'zh-CN';
    if (/^en\b/i.test(l)) return 'en';
  }
  return 'en';
}

async function load(next) {
  const res = await fetch(new URL(`../i18n/${next}.json`, import.meta.url), { credentials: 'same-origin' });
  if (!res.ok) throw new Error(`cannot load strings for ${next}: HTTP ${res.status}`);
  strings = await res.json();
  lang = next;
  document.documentElement.lang = next;
}

export async function initI18n() {
  await load(preferred());
}

export async function setLang(next) {
  if (!LANGUAGES.includes(next)) return;
  localStorage.setItem(STORAGE_KEY, next);
  await load(next);
}

export function has(key) {
  return Object.prototype.hasOwnProperty.call(strings, key);
}

// t('models.deleted', {name: 'r1'}): "{name}" placeholders are replaced by params.
export function t(key, params) {
  if (!has(key)) {
    console.error('missing string: ' + key);
    return `⟦${key}⟧`;
  }
  let text = strings[key];
  if (params) {
    text = text.replace(/\{(\w+)\}/g, (all, name) => (name in params ? String(params[name]) : all));
  }
  return text;
}
