/**
 * One convention for every `--json` (README "JSON output"): camelCase keys,
 * numbers as numbers, times as ISO-8601 text (UTC), `version` on documents
 * (status, list, allow list, top), one object per line for streams (history,
 * the daemon's `attach --json`).
 */
import type { DaemonEvent } from './events.js';
import { alertJson, banJson } from './log-format.js';
import type { HistoryEvent } from './records.js';
import type { TopReport } from './history-report.js';

/**
 * The format of the JSON documents. Raised when a field is renamed, removed or
 * changes meaning; a new field does not raise it.
 */
export const JSON_FORMAT_VERSION = 1;

/** "possibly_spoofed" → "possiblySpoofed", "BANS_ADDED" → "bansAdded", "SERVICE" → "service"; a camelCase key stays as it is. */
export function camelKey(k: string): string {
  const lower = /^[A-Z0-9_]+$/.test(k) ? k.toLowerCase() : k; // the kernel's counter names are upper case
  return lower.replace(/_+([a-zA-Z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** The object's own keys in camelCase (one level: values that are maps keyed by addresses or names keep their keys). */
export function camelKeys<T extends object>(o: T): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [camelKey(k), v]));
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * A history event as one NDJSON line: `event` (alert, ban, unban) first, the
 * stored wall-clock milliseconds as ISO times, the ban length as ttlSeconds.
 */
export function historyJson(e: HistoryEvent): Record<string, unknown> {
  const { op, time, ...rest } = e;
  const out: Record<string, unknown> = { time: iso(time), event: op };
  for (const [k, v] of Object.entries(rest)) {
    if (e.op === 'ban' && k === 'ttl') out.ttlSeconds = v;
    else if (e.op === 'ban' && k === 'expires') out.expires = v === null ? null : iso(v as number);
    else out[k] = v;
  }
  return out;
}

/** `top --json`: the report, with its start as an ISO time. */
export function topJson(r: TopReport): Record<string, unknown> {
  return { version: JSON_FORMAT_VERSION, ...r, since: iso(r.since) };
}

/** An event of the daemon as one `attach --json` line (README "JSON output"). */
export function eventJson(e: DaemonEvent): object | undefined {
  switch (e.type) {
    case 'alert':
      return alertJson(e.alert);
    case 'ban':
    case 'ban_failed':
      return banJson(e.alert);
    case 'not_blocked': {
      const { time, source, destination, reason } = e;
      return {
        time: time.toISOString(),
        event: 'not_blocked',
        source,
        destination,
        reason,
        ...(reason === 'live-connection' ? { possiblySpoofed: true } : {}),
      };
    }
    case 'fleet_ban':
      return {
        time: e.time.toISOString(),
        event: 'ban',
        source: e.target,
        origin: 'fleet',
        gateway: e.gateway,
        expires: e.expires === null ? null : e.expires.toISOString(),
      };
    case 'unban':
      return { time: e.time.toISOString(), event: 'unban', source: e.target, reason: e.why };
    case 'flood_summary':
      return { time: e.time.toISOString(), event: 'flood_summary', ...e.summary };
    case 'info':
      return { time: e.time.toISOString(), event: 'info', message: e.text };
  }
}
