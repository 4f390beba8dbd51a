/** Pure summaries of history: one line per event, and the worst offenders, ports and scan kinds. */
import type { HistoryEvent } from './records.js';
import { formatDuration } from './ttl.js';

const KIND_NAMES: Record<string, string> = {
  syn: 'TCP SYN/Normal',
  fin: 'TCP FIN',
  null: 'TCP NULL',
  xmas: 'TCP XMAS',
  unknown: 'TCP Unknown Type',
  udp: 'UDP',
  frag: 'fragment evasion',
  ack: 'TCP ACK',
  maimon: 'TCP Maimon',
  sweep: 'sweep',
  v6chain: 'IPv6 extension-header evasion',
};

export function eventLine(e: HistoryEvent): string {
  const t = new Date(e.time).toISOString();
  switch (e.op) {
    case 'alert':
      return `${t}  alert  ${e.source}  ${KIND_NAMES[e.kind] ?? e.kind} scan to ${e.destination ? `${e.destination} ` : ''}${e.proto.toUpperCase()} port ${e.port}${e.flags ? ` (flags ${e.flags})` : ''} on ${e.iface}@${e.gateway}`;
    case 'ban':
      return `${t}  ban    ${e.target}  ${e.origin}, ${formatDuration(e.ttl)}${e.reason ? `: ${e.reason}` : ''} (by ${e.by}${e.gateway ? `@${e.gateway}` : ''})`;
    case 'unban':
      return `${t}  unban  ${e.target}  ${e.why}${e.by ? ` (by ${e.by})` : ''}`;
  }
}

export interface TopReport {
  since: number;
  alerts: number;
  bans: number;
  sources: number;
  offenders: Array<{ source: string; alerts: number; bans: number; ports: number }>;
  ports: Array<{ proto: string; port: number; alerts: number }>;
  destinations: Array<{ destination: string; alerts: number }>;
  kinds: Array<{ kind: string; alerts: number }>;
}

export function topReport(events: readonly HistoryEvent[], since: number, n = 10): TopReport {
  const off = new Map<string, { alerts: number; bans: number; ports: Set<string> }>();
  const ports = new Map<string, number>();
  const kinds = new Map<string, number>();
  const dests = new Map<string, number>();
  let alerts = 0;
  let bans = 0;
  const of = (s: string) => {
    let o = off.get(s);
    if (!o) off.set(s, (o = { alerts: 0, bans: 0, ports: new Set() }));
    return o;
  };
  for (const e of events) {
    if (e.time < since) continue;
    if (e.op === 'alert') {
      alerts++;
      const o = of(e.source);
      o.alerts++;
      o.ports.add(`${e.proto}/${e.port}`);
      ports.set(`${e.proto}/${e.port}`, (ports.get(`${e.proto}/${e.port}`) ?? 0) + 1);
      kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1);
      if (e.destination) dests.set(e.destination, (dests.get(e.destination) ?? 0) + 1);
    } else if (e.op === 'ban') {
      bans++;
      of(e.target).bans++;
    }
  }
  const byCount = <T extends { alerts: number }>(a: T, b: T) => b.alerts - a.alerts;
  return {
    since,
    alerts,
    bans,
    sources: off.size,
    offenders: [...off]
      .map(([source, o]) => ({ source, alerts: o.alerts, bans: o.bans, ports: o.ports.size }))
      .sort((a, b) => b.alerts - a.alerts || b.bans - a.bans || a.source.localeCompare(b.source))
      .slice(0, n),
    ports: [...ports]
      .map(([k, alerts]) => ({ proto: k.split('/')[0]!, port: Number(k.split('/')[1]), alerts }))
      .sort(byCount)
      .slice(0, n),
    destinations: [...dests]
      .map(([destination, a]) => ({ destination, alerts: a }))
      .sort(byCount)
      .slice(0, n),
    kinds: [...kinds].map(([kind, a]) => ({ kind: KIND_NAMES[kind] ?? kind, alerts: a })).sort(byCount),
  };
}

export function topText(r: TopReport, now: number): string[] {
  const lines = [
    `since ${new Date(r.since).toISOString()} (${formatDuration(Math.round((now - r.since) / 1000))}): ${r.alerts} alert(s), ${r.bans} ban(s), ${r.sources} source(s)`,
    '',
    'worst offenders          alerts   bans  ports',
  ];
  for (const o of r.offenders)
    lines.push(`  ${o.source.padEnd(22)} ${String(o.alerts).padStart(6)} ${String(o.bans).padStart(6)} ${String(o.ports).padStart(6)}`);
  if (!r.offenders.length) lines.push('  (none)');
  lines.push('', 'ports                    alerts');
  for (const p of r.ports) lines.push(`  ${`${p.proto.toUpperCase()} ${p.port}`.padEnd(22)} ${String(p.alerts).padStart(6)}`);
  if (!r.ports.length) lines.push('  (none)');
  lines.push('', 'destinations probed      alerts');
  for (const d of r.destinations) lines.push(`  ${d.destination.padEnd(22)} ${String(d.alerts).padStart(6)}`);
  if (!r.destinations.length) lines.push('  (none)');
  lines.push('', 'scan kinds               alerts');
  for (const k of r.kinds) lines.push(`  ${k.kind.padEnd(22)} ${String(k.alerts).padStart(6)}`);
  if (!r.kinds.length) lines.push('  (none)');
  return lines;
}
