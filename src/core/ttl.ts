import { SentryError } from '../errors.js';

const UNIT_S: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/**
 * The longest duration accepted anywhere: 3650d (10 years). The kernel keeps
 * expiry as now + ttl in u64 nanoseconds (584 years in all) and the daemon
 * computes it with JS numbers; a bound far below both keeps every sum safe.
 */
export const MAX_DURATION_S = 3650 * 86400;

/** The range one setting accepts, in seconds; permanent (0) is allowed or not on top of it. */
export interface DurationRange {
  min?: number;
  max?: number;
  /** A plain 0 means permanent (when allowed); "0s" does not. */
  zeroIsPermanent?: boolean;
}

/**
 * Parses a duration such as `90s`, `10m`, `1h30m`, `7d` into seconds; `permanent`
 * (or `0`) is 0, meaning no expiry when `allowPermanent`. `what` names the
 * setting in the error message.
 */
export function parseDuration(text: string, what: string, allowPermanent = true, range: DurationRange = {}): number {
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
  // a 30-digit count is still a finite double, so the sum is compared, never wrapped
  for (const m of t.matchAll(/(\d+)([smhdw])/g)) total += Number(m[1]) * (UNIT_S[m[2]!] ?? 0);
  // "0s" is no way to write permanent: only the words (or a bare 0) are
  return checkDuration(total, what, allowPermanent, { ...range, zeroIsPermanent: false }, text);
}

/**
 * Checks seconds against a setting's range (config files may give a plain
 * number of seconds): whole, at least `min` (1s by default), at most `max`
 * (MAX_DURATION_S by default); 0 only when `allowPermanent`.
 */
export function checkDuration(seconds: number, what: string, allowPermanent = true, range: DurationRange = {}, text: string = `${seconds}`): number {
  const min = Math.max(1, range.min ?? 1);
  const max = Math.min(MAX_DURATION_S, range.max ?? MAX_DURATION_S);
  const perm = allowPermanent ? ', or permanent' : '';
  if (seconds === 0 && allowPermanent && range.zeroIsPermanent !== false) return 0;
  if (seconds > max) {
    throw new SentryError('USAGE', `${what}: "${text}" is longer than ${formatDuration(max)}, the most it can be`, `use at most ${formatDuration(max)}${perm}`);
  }
  if (!Number.isInteger(seconds) || seconds < min) {
    throw new SentryError(
      'USAGE',
      `${what}: "${text}" must be at least ${formatDuration(min)}`,
      `use e.g. ${formatDuration(Math.min(max, Math.max(min, 600)))}${perm}`,
    );
  }
  return seconds;
}

/** 3600 → "1h", 5400 → "1h30m", 0 → "permanent". */
export function formatDuration(seconds: number): string {
  if (seconds <= 0) return 'permanent';
  let rest = Math.round(seconds);
  let out = '';
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out || '0s';
}
