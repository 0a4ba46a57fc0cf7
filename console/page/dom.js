// Small DOM builders. Everything shown is user data, so text goes in with
// textContent only, never innerHTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

export function text(value) {
  return value === null || value === undefined ? '' : String(value);
}

export function cell(cls, content) {
  const td = document.createElement('td');
  td.className = cls;
  td.textContent = content;
  return td;
}

// A <time> in the browser's locale and zone, the RFC 3339 value as its title.
export function dateCell(cls, iso) {
  const td = cell(cls, '');
  const d = new Date(text(iso));
  if (iso === null || iso === undefined || Number.isNaN(d.getTime())) {
    td.textContent = text(iso);
    return td;
  }
  const time = document.createElement('time');
  time.dateTime = String(iso);
  time.title = String(iso);
  // To the minute, so that the whole row fits; the title has the second.
  time.textContent = d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' });
  td.append(time);
  return td;
}

export function option(value, label) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = label;
  return o;
}

// No choice is preselected: the placeholder is the default, so that a form
// reset comes back to it.
export function placeholder(label) {
  const o = option('', label);
  o.disabled = true;
  o.defaultSelected = true;
  return o;
}

export function iconButton(cls, label, pathData, onClick) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'icon ' + cls;
  button.setAttribute('aria-label', label);
  button.title = label;
  button.append(icon(pathData));
  button.addEventListener('click', onClick);
  return button;
}

function icon(pathData) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  for (const [k, v] of Object.entries({
    viewBox: '0 0 24 24', width: '18', height: '18', fill: 'none', stroke: 'currentColor',
    'stroke-width': '2', 'stroke-linecap': 'round', 'stroke-linejoin': 'round',
    'aria-hidden': 'true', focusable: 'false',
  })) svg.setAttribute(k, v);
  const path = document.createElementNS(SVG_NS, 'path');
  path.setAttribute('d', pathData);
  svg.append(path);
  return svg;
}

export const TRASH_ICON = 'M3 6h18M8 6V4h8v2M6 6l1 14h10l1-14M10 11v6M14 11v6';
export const ROTATE_ICON = 'M21 12a9 9 0 1 1-3-6.7M21 3v6h-6';
