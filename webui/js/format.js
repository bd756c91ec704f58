// Numbers, sizes, durations and times in the current language; times in the browser's zone.
import { currentLang, t } from './i18n.js';

const cache = new Map();
function nf(options) {
  const key = currentLang() + JSON.stringify(options);
  if (!cache.has(key)) cache.set(key, new Intl.NumberFormat(currentLang(), options));
  return cache.get(key);
}

export function dash() {
  return t('common.none');
}

export function number(value, digits = 0) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return dash();
  return nf({ maximumFractionDigits: digits, minimumFractionDigits: 0 }).format(value);
}

// A number with exactly `digits` decimals, so columns of readings line up.
export function fixed(value, digits) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return dash();
  return nf({ maximumFractionDigits: digits, minimumFractionDigits: digits }).format(value);
}

export function percent(value, digits = 0) {
  if (value === null || value === undefined || !Number.isFinite(value)) return dash();
  return nf({ style: 'percent', maximumFractionDigits: digits }).format(value / 100);
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
export function bytes(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return dash();
  let v = Math.abs(value);
  let i = 0;
  while (v >= 1024 && i < BYTE_UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  const digits = i === 0 ? 0 : v < 10 ? 2 : v < 100 ? 1 : 0;
  return `${nf({ maximumFractionDigits: digits }).format(Math.sign(value) * v)} ${BYTE_UNITS[i]}`;
}

export function rate(bytesPerSecond) {
  if (!Number.isFinite(bytesPerSecond)) return dash();
  return t('format.perSecond', { value: bytes(bytesPerSecond) });
}

// "1 h 5 min", "3 d 4 h", "42 s": the two largest units.
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return dash();
  let s = Math.max(0, Math.round(seconds));
  const parts = [];
  for (const [unit, size] of [['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]]) {
    if (s >= size || (unit === 'second' && parts.length === 0)) {
      const n = Math.floor(s / size);
      s -= n * size;
      parts.push(nf({ style: 'unit', unit, unitDisplay: 'short' }).format(n));
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

export function parseTime(iso) {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function dateTime(iso) {
  const d = iso instanceof Date ? iso : parseTime(iso);
  if (!d) return dash();
  return new Intl.DateTimeFormat(currentLang(), { dateStyle: 'medium', timeStyle: 'medium' }).format(d);
}

export function shortTime(d, withDate) {
  const options = withDate ? { month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit' }
    : { hour: '2-digit', minute: '2-digit' };
  return new Intl.DateTimeFormat(currentLang(), options).format(d);
}

// "3 minutes ago" / "in 2 days".
export function relative(iso) {
  const d = iso instanceof Date ? iso : parseTime(iso);
  if (!d) return dash();
  const diff = (d.getTime() - Date.now()) / 1000;
  const rtf = new Intl.RelativeTimeFormat(currentLang(), { numeric: 'auto' });
  const abs = Math.abs(diff);
  if (abs < 45) return rtf.format(Math.round(diff), 'second');
  if (abs < 2700) return rtf.format(Math.round(diff / 60), 'minute');
  if (abs < 64800) return rtf.format(Math.round(diff / 3600), 'hour');
  if (abs < 86400 * 45) return rtf.format(Math.round(diff / 86400), 'day');
  return rtf.format(Math.round(diff / (86400 * 30)), 'month');
}

// A time element with the local time as text and the exact time in the title.
export function timeTitle(iso) {
  const d = parseTime(iso);
  return d ? d.toISOString() : '';
}

export function count(value) {
  return number(value, 0);
}

// A sensor value with its unit, e.g. "63.6 °C", "8,442 RPM", "96.0 GiB".
export function reading(value, unit) {
  if (value === null || value === undefined || !Number.isFinite(value)) return t('hw.noValue');
  switch (unit) {
    case 'celsius': return t('unit.celsius', { value: fixed(value, 1) });
    case 'rpm': return t('unit.rpm', { value: fixed(value, 0) });
    case 'volts': return t('unit.volts', { value: fixed(value, value < 20 ? 2 : 1) });
    case 'amperes': return t('unit.amperes', { value: fixed(value, 1) });
    case 'watts': return t('unit.watts', { value: fixed(value, value < 100 ? 1 : 0) });
    case 'joules': return t('unit.joules', { value: fixed(value, 0) });
    case 'percent': return nf({ style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(value / 100);
    case 'bytes': return bytes(value);
    case 'megahertz': return t('unit.megahertz', { value: fixed(value, 0) });
    case 'seconds': return duration(value);
    case 'count': return fixed(value, 0);
    default: return `${number(value, 2)} ${unit || ''}`.trim();
  }
}

// Parameter counts: "7.6 B", "494 M" (in Chinese "76亿" via compact notation).
export function params(n) {
  if (!Number.isFinite(n) || n <= 0) return dash();
  return nf({ notation: 'compact', maximumFractionDigits: 1 }).format(n);
}
