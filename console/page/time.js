// Dates between <input type="datetime-local"> (the browser's zone) and the
// plugin's RFC 3339 UTC.

function pad(n, width) {
  return String(n).padStart(width || 2, '0');
}

// The value format of <input type="datetime-local">, in local time.
export function localInputValue(d) {
  return pad(d.getFullYear(), 4) + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) +
    'T' + pad(d.getHours()) + ':' + pad(d.getMinutes());
}

// Parsed by hand: Date.parse of a string without offset has differed
// between engines.
export function parseLocal(value) {
  const m = /^(\d{4,6})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/.exec(value);
  if (!m) return null;
  const d = new Date(2000, 0, 1, 0, 0, 0, 0);
  d.setFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  d.setHours(Number(m[4]), Number(m[5]), Number(m[6] || 0), 0);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function utcSeconds(d) {
  return d.toISOString().slice(0, 19) + 'Z';
}

// '' when the input holds a usable future time; else what to fix. With
// required false an empty input is fine (and gives when null).
export function futureProblem(input, required) {
  const when = parseLocal(input.value);
  if (!when) {
    if (input.validity.badInput) return { problem: 'Enter a complete date and time.', when: null };
    return { problem: required ? 'Choose a date and time.' : '', when: null };
  }
  if (when.getTime() <= Date.now()) return { problem: 'Must be in the future.', when };
  if (when.getUTCFullYear() > 9999) return { problem: 'Choose a date before the year 10000.', when };
  return { problem: '', when };
}
