import { SentryError } from '../errors.js';

const UNIT_S: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/**
 * Parses a duration such as `90s`, `10m`, `1h30m`, `7d` into seconds; `permanent`
 * (or `0`) is 0, meaning no expiry when `allowPermanent`. `what` names the
 * setting in the error message.
 */
export function parseDuration(text: string, what: string, allowPermanent = true): number {
  const t = String(text).trim().toLowerCase();
  if (allowPermanent && (t === 'permanent' || t === 'forever' || t === '0')) return 0;
  if (!/^(\d+[smhdw])+$/.test(t)) {
    throw new SentryError(
      'USAGE',
      `${what}: "${text}" is not a duration`,
      `use a number with a unit, e.g. 90s, 10m, 1h30m, 7d${allowPermanent ? ', or permanent' : ''}`,
    );
  }
  let total = 0;
  for (const m of t.matchAll(/(\d+)([smhdw])/g)) total += Number(m[1]) * (UNIT_S[m[2]!] ?? 0);
  if (total <= 0 || !Number.isSafeInteger(total)) {
    throw new SentryError('USAGE', `${what}: "${text}" must be longer than 0s`, 'use e.g. 10m, or permanent');
  }
  return total;
}

/** 3600 → "1h", 5400 → "1h30m", 0 → "permanent". */
export function formatDuration(seconds: number): string {
  if (seconds <= 0) return 'permanent';
  let rest = Math.round(seconds);
  let out = '';
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out || '0s';
}
