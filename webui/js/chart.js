// A small SVG line chart: the average as a line, the min-max spread as a band (minute and hour
// tiers), threshold lines, time and value axes, and a hover read-out. No library.
import { svg } from './ui.js';
import { shortTime, dateTime } from './format.js';

const DEFAULT_W = 640;
const H = 240;
const M = { left: 62, right: 14, top: 12, bottom: 26 };

function niceStep(span, target) {
  const raw = span / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const nice = norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10;
  return nice * mag;
}

function ticks(lo, hi, target) {
  const step = niceStep(hi - lo || 1, target);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

// Splits the points where the series has a gap (the agent was down), so no line bridges it.
function segments(points, step) {
  const out = [];
  let current = [];
  let last = null;
  for (const p of points) {
    if (last !== null && p.t - last > step * 3) {
      out.push(current);
      current = [];
    }
    current.push(p);
    last = p.t;
  }
  if (current.length) out.push(current);
  return out;
}

/**
 * lineChart({id, points: [{time, min, avg, max}], from, to, stepSeconds, format, thresholds,
 *            label, emptyText, width}); width is the drawing's width in CSS pixels, so text keeps
 * its size whatever the container.
 */
export function lineChart({ id, points, from, to, stepSeconds, format, thresholds = {}, label, emptyText, width }) {
  const W = Math.max(280, Math.round(width || DEFAULT_W));
  const data = points
    .map((p) => ({ t: new Date(p.time).getTime(), min: p.min, avg: p.avg, max: p.max }))
    .filter((p) => Number.isFinite(p.t) && Number.isFinite(p.avg));
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', 'data-chart': id, role: 'img', 'aria-label': label, 'data-points': data.length });
  const x0 = from.getTime();
  const x1 = to.getTime();
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const sx = (t) => M.left + ((t - x0) / (x1 - x0)) * plotW;

  let lo = Math.min(...data.map((p) => (Number.isFinite(p.min) ? p.min : p.avg)));
  let hi = Math.max(...data.map((p) => (Number.isFinite(p.max) ? p.max : p.avg)));
  if (!data.length) {
    lo = 0;
    hi = 1;
  }
  if (hi - lo < 1e-9) {
    const pad = Math.abs(hi) * 0.05 || 1;
    lo -= pad;
    hi += pad;
  }
  const pad = (hi - lo) * 0.1;
  lo -= pad;
  hi += pad;
  const yTicks = ticks(lo, hi, 4);
  lo = Math.min(lo, yTicks[0]);
  hi = Math.max(hi, yTicks[yTicks.length - 1]);
  const sy = (v) => M.top + (1 - (v - lo) / (hi - lo)) * plotH;

  const grid = svg('g', { class: 'chart-grid' });
  for (const v of yTicks) {
    const y = sy(v).toFixed(1);
    grid.append(
      svg('line', { x1: M.left, x2: W - M.right, y1: y, y2: y }),
      svg('text', { x: M.left - 6, y, class: 'chart-label chart-label-y', 'dominant-baseline': 'middle', 'text-anchor': 'end' }, format(v)));
  }
  const longRange = x1 - x0 > 86400000 * 1.5;
  for (const t of timeTicks(x0, x1, W)) {
    const x = sx(t).toFixed(1);
    grid.append(
      svg('line', { x1: x, x2: x, y1: M.top, y2: H - M.bottom, class: 'chart-vgrid' }),
      svg('text', { x, y: H - 8, class: 'chart-label', 'text-anchor': 'middle' }, shortTime(new Date(t), longRange)));
  }
  root.append(grid);

  for (const [name, value] of Object.entries(thresholds)) {
    if (name === 'hysteresis' || !Number.isFinite(value) || value < lo || value > hi) continue;
    const y = sy(value).toFixed(1);
    root.append(svg('line', { x1: M.left, x2: W - M.right, y1: y, y2: y, class: `chart-threshold ${name.startsWith('critical') ? 'st-critical' : 'st-warning'}` }));
  }

  if (!data.length) {
    root.append(svg('text', { x: M.left + plotW / 2, y: M.top + plotH / 2, class: 'chart-empty', 'text-anchor': 'middle' }, emptyText));
    root.append(svg('polyline', { class: 'chart-line', points: '' }));
    return root;
  }

  const step = (stepSeconds || 1) * 1000;
  for (const seg of segments(data, step)) {
    const spread = seg.some((p) => Number.isFinite(p.min) && Number.isFinite(p.max) && p.max - p.min > 1e-9);
    if (spread) {
      const top = seg.map((p) => `${sx(p.t).toFixed(1)},${sy(p.max).toFixed(1)}`);
      const bottom = seg.slice().reverse().map((p) => `${sx(p.t).toFixed(1)},${sy(p.min).toFixed(1)}`);
      root.append(svg('polygon', { class: 'chart-band', points: top.concat(bottom).join(' ') }));
    }
    root.append(svg('polyline', {
      class: 'chart-line',
      points: seg.map((p) => `${sx(p.t).toFixed(1)},${sy(p.avg).toFixed(1)}`).join(' '),
    }));
    if (seg.length === 1) root.append(svg('circle', { class: 'chart-dot', r: 3, cx: sx(seg[0].t).toFixed(1), cy: sy(seg[0].avg).toFixed(1) }));
  }

  addHover(root, data, sx, sy, format, W);
  return root;
}

function timeTicks(x0, x1, W) {
  const span = x1 - x0;
  const candidates = [60e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 10800e3, 21600e3, 43200e3, 86400e3, 172800e3, 432000e3, 604800e3];
  const most = Math.max(2, Math.floor((W - M.left - M.right) / 90));
  const step = candidates.find((c) => span / c <= most) || candidates[candidates.length - 1];
  const offset = new Date(x0).getTimezoneOffset() * 60e3;
  const out = [];
  for (let t = Math.ceil((x0 - offset) / step) * step + offset; t <= x1; t += step) out.push(t);
  return out;
}

function addHover(root, data, sx, sy, format, W) {
  const cursor = svg('g', { class: 'chart-cursor', visibility: 'hidden' });
  const line = svg('line', { y1: M.top, y2: H - M.bottom });
  const dot = svg('circle', { r: 3.5 });
  const box = svg('rect', { rx: 3, height: 34 });
  const text1 = svg('text', { class: 'chart-tip' });
  const text2 = svg('text', { class: 'chart-tip chart-tip-time' });
  cursor.append(line, dot, box, text1, text2);
  const overlay = svg('rect', { x: M.left, y: M.top, width: W - M.left - M.right, height: H - M.top - M.bottom, class: 'chart-overlay' });
  root.append(cursor, overlay);

  overlay.addEventListener('pointermove', (event) => {
    const ctm = root.getScreenCTM();
    if (!ctm) return;
    const x = (event.clientX - ctm.e) / ctm.a;
    let best = data[0];
    for (const p of data) if (Math.abs(sx(p.t) - x) < Math.abs(sx(best.t) - x)) best = p;
    const px = sx(best.t);
    const py = sy(best.avg);
    line.setAttribute('x1', px);
    line.setAttribute('x2', px);
    dot.setAttribute('cx', px);
    dot.setAttribute('cy', py);
    const range = Number.isFinite(best.min) && best.max - best.min > 1e-9 ? ` (${format(best.min)} – ${format(best.max)})` : '';
    text1.textContent = format(best.avg) + range;
    text2.textContent = dateTime(new Date(best.t));
    const width = Math.max(text1.getComputedTextLength(), text2.getComputedTextLength()) + 14;
    const left = px + width + 10 > W - M.right ? px - width - 8 : px + 8;
    box.setAttribute('x', left);
    box.setAttribute('y', M.top + 2);
    box.setAttribute('width', width);
    text1.setAttribute('x', left + 7);
    text1.setAttribute('y', M.top + 16);
    text2.setAttribute('x', left + 7);
    text2.setAttribute('y', M.top + 30);
    cursor.setAttribute('visibility', 'visible');
  });
  overlay.addEventListener('pointerleave', () => cursor.setAttribute('visibility', 'hidden'));
}
