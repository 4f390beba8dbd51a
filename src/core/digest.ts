/**
 * Notification digests, pure: whatever happens, a notification command or webhook receives at most one
 * message per interval, a digest of new bans, the worst offenders and the counts. Only events matching an
 * urgent rule produce a message at once (and those are rate-limited too, then counted in the next digest).
 *
 * Why: PortSentry + logcheck mailed one message per knock; 74 blocked hosts a day made half-megabyte mails.
 * Here a burst of 500 scanning sources makes one message that names them all.
 *
 * The caller owns the clock and the timer: `add` every event, and when `due(now)` (or at `nextDue()`),
 * `take(now)` and hand the message to a notifier without awaiting it on the hot path.
 */
import { parseCidr, type Cidr } from './addr.js';
import type { Alert, DaemonEvent } from './events.js';
import { scanName } from './scan-kind.js';
import { contains } from './policy.js';
import { formatDuration } from './ttl.js';
import { oneLine as shared } from './text.js';
import { SentryError } from '../errors.js';

export interface DigestEvent {
  /** Milliseconds since the epoch. */
  time: number;
  kind: 'alert' | 'ban' | 'unban' | 'not_blocked';
  source: string;
  /** The address probed. */
  destination?: string;
  proto?: 'tcp' | 'udp' | 'icmp' | 'ip';
  port?: number;
  /** e.g. "TCP SYN/Normal scan" */
  scan?: string;
  /** Ban length; 0 = permanent. */
  ttlSeconds?: number;
  /** Who banned: auto, manual, imported, fleet (or a gateway name). */
  origin?: string;
  reason?: string;
}

/** What the digest keeps of a probe: where it came from and what it was. */
function probeFields(a: Alert): Pick<DigestEvent, 'source' | 'destination' | 'proto' | 'port' | 'scan'> {
  return { source: a.source, destination: a.destination, proto: a.proto, port: a.port, scan: scanName(a.kind, a.tcpFlags, a.proto) };
}

/** The digest's view of a daemon event; undefined for what a digest does not count (info, failed bans, flood summaries). */
export function digestEvent(e: DaemonEvent): DigestEvent | undefined {
  switch (e.type) {
    case 'alert':
      return { time: e.alert.time.getTime(), kind: 'alert', ...probeFields(e.alert) };
    case 'ban':
      return { time: e.alert.time.getTime(), kind: 'ban', ...probeFields(e.alert), ttlSeconds: e.alert.banSeconds, origin: 'auto' };
    case 'fleet_ban':
      return { time: e.time.getTime(), kind: 'ban', source: e.target, origin: 'fleet' };
    case 'not_blocked':
      return { time: e.time.getTime(), kind: 'not_blocked', source: e.source, destination: e.destination, reason: e.reason };
    case 'unban':
      return { time: e.time.getTime(), kind: 'unban', source: e.target, reason: e.why };
    default:
      return undefined;
  }
}

/** An event matching every field given in a rule is urgent; an event matching any rule is urgent. */
interface UrgentRule {
  /** The source lies within this address or network. */
  cidr?: string;
  port?: number;
  proto?: 'tcp' | 'udp';
  kind?: DigestEvent['kind'];
  origin?: string;
}

export interface DigestMessage {
  /** One line: "sentry-xdp on HOST: 500 new bans, 512 alerts in the last 5m". */
  subject: string;
  /** Plain text body. */
  text: string;
  /** The same content as data. */
  json: object;
  urgent: boolean;
}

export interface DigestOptions {
  /** At most one digest per this many milliseconds. */
  intervalMs: number;
  urgent?: UrgentRule[];
  /** Cap on the names listed per section (new bans, not blocked); the rest are counted. Default 1000. */
  maxListed?: number;
  /** Immediate messages per interval; beyond that urgent events wait for the digest. Default 10. */
  maxUrgent?: number;
  /** Names this machine in subjects. Default "localhost". */
  host?: string;
  /** Rows in the offender and port tables. Default 10. */
  top?: number;
}

/** Sources whose alerts are tallied one by one per interval; past this, alerts are only counted. Bounds memory. */
const MAX_TRACKED_SOURCES = 100_000;

interface BanRow {
  time: number;
  source: string;
  ttlSeconds?: number;
  origin?: string;
  reason?: string;
}

interface Offender {
  alerts: number;
  ports: Map<string, number>;
  scans: Map<string, number>;
}

interface CompiledRule {
  net?: Cidr;
  port?: number;
  proto?: 'tcp' | 'udp';
  kind?: DigestEvent['kind'];
  origin?: string;
  text: string;
}

const KINDS: ReadonlySet<string> = new Set(['alert', 'ban', 'unban', 'not_blocked']);

export class DigestBuilder {
  private readonly intervalMs: number;
  private readonly maxListed: number;
  private readonly maxUrgent: number;
  private readonly top: number;
  private readonly host: string;
  private readonly rules: CompiledRule[];

  /** When the previous digest was taken; the next one is never due sooner than intervalMs after it. */
  private lastTaken: number | undefined;
  private w = emptyWindow();

  constructor(opts: DigestOptions) {
    if (!Number.isFinite(opts.intervalMs) || opts.intervalMs <= 0) {
      throw new SentryError('CONFIG', `notification interval ${String(opts.intervalMs)} ms is not a positive duration`, 'use e.g. 5m');
    }
    this.intervalMs = opts.intervalMs;
    this.maxListed = wholeOr(opts.maxListed, 1000);
    this.maxUrgent = wholeOr(opts.maxUrgent, 10);
    this.top = wholeOr(opts.top, 10) || 10;
    this.host = oneLine(opts.host ?? 'localhost') || 'localhost';
    this.rules = (opts.urgent ?? []).map(compileRule);
  }

  /**
   * Records an event. Returns an immediate message when it matches an urgent rule, unless maxUrgent
   * immediate messages already went out this interval. Either way it is counted in the next digest.
   */
  add(e: DigestEvent, now: number): { urgent?: DigestMessage } {
    const w = this.w;
    if (w.events === 0) w.first = now;
    w.events++;
    w.last = now;
    const source = oneLine(String(e.source));

    switch (e.kind) {
      case 'alert': {
        w.alerts++;
        const portKey = e.port !== undefined ? `${e.proto ?? 'tcp'}/${e.port}` : undefined;
        const scan = e.scan !== undefined ? oneLine(e.scan) : undefined;
        if (portKey) bump(w.ports, portKey);
        if (scan) bump(w.scans, scan);
        if (e.destination !== undefined && (w.destinations.size < MAX_TRACKED_SOURCES || w.destinations.has(e.destination)))
          bump(w.destinations, oneLine(e.destination));
        let o = w.offenders.get(source);
        if (!o && w.offenders.size < MAX_TRACKED_SOURCES) {
          o = { alerts: 0, ports: new Map(), scans: new Map() };
          w.offenders.set(source, o);
        }
        if (o) {
          o.alerts++;
          if (portKey) bump(o.ports, portKey);
          if (scan) bump(o.scans, scan);
        } else w.untrackedAlerts++;
        break;
      }
      case 'ban':
        w.bans++;
        this.list(w.newBans, e, source, () => w.bansUnlisted++);
        break;
      case 'not_blocked':
        w.notBlocked++;
        this.list(w.failed, e, source, () => w.failedUnlisted++);
        break;
      case 'unban':
        w.unbans++;
        break;
    }

    const rule = this.urgentRule(e, source);
    if (!rule) return {};
    w.urgent++;
    if (w.urgentSent >= this.maxUrgent) {
      w.urgentHeld++;
      return {};
    }
    w.urgentSent++;
    return { urgent: this.urgentMessage(e, source, rule) };
  }

  /** True when something happened and a digest may go out now. */
  due(now: number): boolean {
    const at = this.nextDue();
    return at !== undefined && now >= at;
  }

  /** When the pending digest becomes due (ms), or undefined when nothing is pending. */
  nextDue(): number | undefined {
    if (this.w.events === 0) return undefined;
    const afterFirst = this.w.first + this.intervalMs;
    return this.lastTaken === undefined ? afterFirst : Math.max(afterFirst, this.lastTaken + this.intervalMs);
  }

  /**
   * The digest of everything since the previous one, and starts a new interval. Undefined when nothing
   * happened, or when it is not due yet (so a caller can never send two within one interval). `force`
   * (for shutdown) takes it early.
   */
  take(now: number, options: { force?: boolean } = {}): DigestMessage | undefined {
    if (this.w.events === 0) return undefined;
    if (!options.force && !this.due(now)) return undefined;
    const w = this.w;
    this.w = emptyWindow();
    this.lastTaken = now;
    return this.render(w, now);
  }

  private list(rows: Map<string, BanRow>, e: DigestEvent, source: string, unlisted: () => void): void {
    const row: BanRow = { time: e.time, source };
    if (e.ttlSeconds !== undefined) row.ttlSeconds = e.ttlSeconds;
    if (e.origin !== undefined) row.origin = oneLine(e.origin);
    if (e.reason !== undefined) row.reason = oneLine(e.reason);
    if (rows.has(source) || rows.size < this.maxListed) rows.set(source, row);
    else unlisted();
  }

  private urgentRule(e: DigestEvent, source: string): CompiledRule | undefined {
    if (this.rules.length === 0) return undefined;
    let addr: Cidr | null | undefined;
    for (const r of this.rules) {
      if (r.kind !== undefined && r.kind !== e.kind) continue;
      if (r.port !== undefined && r.port !== e.port) continue;
      if (r.proto !== undefined && r.proto !== e.proto) continue;
      if (r.origin !== undefined && r.origin !== e.origin) continue;
      if (r.net) {
        if (addr === undefined) addr = parseOrNull(source);
        if (!addr || !contains(r.net, addr)) continue;
      }
      return r;
    }
    return undefined;
  }

  private urgentMessage(e: DigestEvent, source: string, rule: CompiledRule): DigestMessage {
    const what = describeEvent(e, source);
    const data = {
      host: this.host,
      urgent: true,
      rule: rule.text,
      event: eventJson(e, source),
    };
    const text = [`Urgent event on ${this.host} (rule: ${rule.text})`, '', `${iso(e.time)}  ${what}`, '', 'It is also counted in the next digest.', ''].join(
      '\n',
    );
    return { subject: `sentry-xdp on ${this.host}: URGENT ${what}`, text, json: data, urgent: true };
  }

  private render(w: Window, now: number): DigestMessage {
    const periodMs = Math.max(0, now - w.first);
    const period = formatDuration(Math.max(1, Math.round(periodMs / 1000)));

    const offenders = [...w.offenders.entries()]
      .sort((a, b) => b[1].alerts - a[1].alerts || cmp(a[0], b[0]))
      .slice(0, this.top)
      .map(([source, o]) => ({
        source,
        alerts: o.alerts,
        ports: ranked(o.ports).map(([p]) => p),
        scans: ranked(o.scans).map(([s]) => s),
      }));
    const ports = ranked(w.ports)
      .slice(0, this.top)
      .map(([p, n]) => {
        const [proto, port] = p.split('/');
        return { proto: proto as 'tcp' | 'udp', port: Number(port), alerts: n };
      });
    const scans = ranked(w.scans).map(([scan, n]) => ({ scan, alerts: n }));
    const destinations = ranked(w.destinations)
      .slice(0, this.top)
      .map(([destination, n]) => ({ destination, alerts: n }));
    const banRows = [...w.newBans.values()];
    const failedRows = [...w.failed.values()];

    const data = {
      host: this.host,
      urgent: false,
      from: iso(w.first),
      to: iso(now),
      period_ms: periodMs,
      counts: {
        alerts: w.alerts,
        alert_sources: w.offenders.size,
        new_bans: w.bans,
        unbans: w.unbans,
        not_blocked: w.notBlocked,
        urgent: w.urgent,
        urgent_not_sent_at_once: w.urgentHeld,
      },
      new_bans: banRows.map(rowJson),
      new_bans_not_listed: w.bansUnlisted,
      not_blocked: failedRows.map(rowJson),
      not_blocked_not_listed: w.failedUnlisted,
      top_offenders: offenders,
      alerts_from_untracked_sources: w.untrackedAlerts,
      top_ports: ports,
      top_destinations: destinations,
      scans,
    };

    const headline: string[] = [];
    if (w.bans > 0) headline.push(plural(w.bans, 'new ban'));
    if (w.notBlocked > 0) headline.push(`${plural(w.notBlocked, 'source')} not blocked`);
    if (w.alerts > 0 || headline.length === 0) headline.push(plural(w.alerts, 'alert'));
    if (w.unbans > 0) headline.push(plural(w.unbans, 'unban'));
    const subject = `sentry-xdp on ${this.host}: ${headline.join(', ')} in the last ${period}`;

    const out: string[] = [];
    out.push(`sentry-xdp on ${this.host}, ${iso(w.first)} to ${iso(now)}`);
    out.push('');
    out.push(
      `${plural(w.alerts, 'alert')} from ${plural(w.offenders.size, 'source')}${w.untrackedAlerts ? ` (+${w.untrackedAlerts} alerts from sources not tallied)` : ''}, ` +
        `${plural(w.bans, 'new ban')}, ${plural(w.unbans, 'unban')}, ${w.notBlocked} not blocked`,
    );
    if (w.urgent > 0) {
      out.push(
        `${plural(w.urgent, 'urgent event')}, ${w.urgent - w.urgentHeld} sent at once` +
          (w.urgentHeld ? `, ${w.urgentHeld} held for this digest (more than ${this.maxUrgent} per interval)` : ''),
      );
    }
    if (failedRows.length > 0 || w.failedUnlisted > 0) {
      out.push('');
      out.push(`Could not be blocked (${w.notBlocked}):`);
      for (const r of failedRows) out.push(`  ${rowLine(r)}`);
      if (w.failedUnlisted) out.push(`  and ${w.failedUnlisted} more`);
    }
    if (banRows.length > 0 || w.bansUnlisted > 0) {
      out.push('');
      out.push(`New bans (${w.bans}):`);
      for (const r of banRows) out.push(`  ${rowLine(r)}`);
      if (w.bansUnlisted) out.push(`  and ${w.bansUnlisted} more`);
    }
    if (offenders.length > 0) {
      out.push('');
      out.push(`Top ${offenders.length} offenders by alerts:`);
      const width = Math.max(...offenders.map((o) => o.source.length));
      for (const o of offenders) {
        const ports = o.ports.length > 8 ? `${o.ports.slice(0, 8).join(',')},+${o.ports.length - 8}` : o.ports.join(',');
        out.push(`  ${o.source.padEnd(width)}  ${String(o.alerts).padStart(6)}  ${ports}${o.scans.length ? `  ${o.scans.join('; ')}` : ''}`);
      }
    }
    if (ports.length > 0) {
      out.push('');
      out.push('Top ports:');
      for (const p of ports) out.push(`  ${`${p.proto}/${p.port}`.padEnd(10)}  ${String(p.alerts).padStart(6)}`);
    }
    if (destinations.length > 0) {
      out.push('');
      out.push('Top destinations probed:');
      for (const d of destinations) out.push(`  ${d.destination.padEnd(15)}  ${String(d.alerts).padStart(6)}`);
    }
    if (scans.length > 0) {
      out.push('');
      out.push('Scan kinds:');
      for (const s of scans) out.push(`  ${String(s.alerts).padStart(6)}  ${s.scan}`);
    }
    out.push('');
    return { subject, text: out.join('\n'), json: data, urgent: false };
  }
}

interface Window {
  events: number;
  first: number;
  last: number;
  alerts: number;
  bans: number;
  unbans: number;
  notBlocked: number;
  urgent: number;
  urgentSent: number;
  urgentHeld: number;
  newBans: Map<string, BanRow>;
  bansUnlisted: number;
  failed: Map<string, BanRow>;
  failedUnlisted: number;
  offenders: Map<string, Offender>;
  untrackedAlerts: number;
  ports: Map<string, number>;
  scans: Map<string, number>;
  destinations: Map<string, number>;
}

function emptyWindow(): Window {
  return {
    events: 0,
    first: 0,
    last: 0,
    alerts: 0,
    bans: 0,
    unbans: 0,
    notBlocked: 0,
    urgent: 0,
    urgentSent: 0,
    urgentHeld: 0,
    newBans: new Map(),
    bansUnlisted: 0,
    failed: new Map(),
    failedUnlisted: 0,
    offenders: new Map(),
    untrackedAlerts: 0,
    ports: new Map(),
    scans: new Map(),
    destinations: new Map(),
  };
}

function compileRule(r: UrgentRule, i: number): CompiledRule {
  const where = `notify.urgent[${i}]`;
  const out: CompiledRule = { text: '' };
  const parts: string[] = [];
  if (r.kind !== undefined) {
    if (!KINDS.has(r.kind)) throw new SentryError('CONFIG', `${where}: unknown event kind "${String(r.kind)}"`, 'use alert, ban, unban or not_blocked');
    out.kind = r.kind;
    parts.push(`kind ${r.kind}`);
  }
  if (r.cidr !== undefined) {
    try {
      out.net = parseCidr(r.cidr);
    } catch (e) {
      throw new SentryError('CONFIG', `${where}: ${e instanceof Error ? e.message : String(e)}`, 'write an address or a CIDR like 203.0.113.0/24');
    }
    parts.push(`source in ${out.net.text}`);
  }
  if (r.proto !== undefined) {
    if (r.proto !== 'tcp' && r.proto !== 'udp') throw new SentryError('CONFIG', `${where}: proto must be tcp or udp`);
    out.proto = r.proto;
    parts.push(r.proto);
  }
  if (r.port !== undefined) {
    if (!Number.isInteger(r.port) || r.port < 0 || r.port > 65535) {
      throw new SentryError('CONFIG', `${where}: port ${String(r.port)} is not 0-65535`);
    }
    out.port = r.port;
    parts.push(`port ${r.port}`);
  }
  if (r.origin !== undefined) {
    out.origin = r.origin;
    parts.push(`origin ${oneLine(r.origin)}`);
  }
  if (parts.length === 0) {
    throw new SentryError('CONFIG', `${where}: an urgent rule with no condition would make every event urgent`, 'give cidr, port, proto, kind or origin');
  }
  out.text = parts.join(', ');
  return out;
}

function describeEvent(e: DigestEvent, source: string): string {
  const port = e.port !== undefined ? ` ${(e.proto ?? 'tcp').toUpperCase()} port ${e.port}` : '';
  switch (e.kind) {
    case 'alert':
      return `${e.scan ? oneLine(e.scan) : 'probe'} from ${source}${port || e.destination ? ` to${e.destination ? ` ${oneLine(e.destination)}` : ''}${port}` : ''}`;
    case 'ban':
      return `${source} banned${e.ttlSeconds !== undefined ? ` for ${formatDuration(e.ttlSeconds)}` : ''}${e.reason ? ` (${oneLine(e.reason)})` : port ? ` (${port.trim()})` : ''}`;
    case 'unban':
      return `${source} unbanned${e.reason ? ` (${oneLine(e.reason)})` : ''}`;
    case 'not_blocked':
      return `${source} could not be blocked${e.reason ? ` (${oneLine(e.reason)})` : ''}`;
  }
}

function eventJson(e: DigestEvent, source: string): object {
  return {
    time: iso(e.time),
    kind: e.kind,
    source,
    destination: e.destination !== undefined ? oneLine(e.destination) : undefined,
    proto: e.proto,
    port: e.port,
    scan: e.scan !== undefined ? oneLine(e.scan) : undefined,
    ttl_seconds: e.ttlSeconds,
    origin: e.origin !== undefined ? oneLine(e.origin) : undefined,
    reason: e.reason !== undefined ? oneLine(e.reason) : undefined,
  };
}

function rowJson(r: BanRow): object {
  return { time: iso(r.time), source: r.source, ttl_seconds: r.ttlSeconds, origin: r.origin, reason: r.reason };
}

function rowLine(r: BanRow): string {
  const bits: string[] = [];
  if (r.ttlSeconds !== undefined) bits.push(r.ttlSeconds > 0 ? `ban ${formatDuration(r.ttlSeconds)}` : 'permanent');
  if (r.origin) bits.push(r.origin);
  const head = `${r.source.padEnd(15)}  ${iso(r.time).slice(11, 19)}`;
  const tail = [bits.join(', '), r.reason].filter(Boolean).join(': ');
  return tail ? `${head}  ${tail}` : head;
}

function parseOrNull(source: string): Cidr | null {
  try {
    return parseCidr(source);
  } catch {
    return null;
  }
}

function bump(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

function ranked(m: Map<string, number>): [string, number][] {
  return [...m.entries()].sort((a, b) => b[1] - a[1] || cmp(a[0], b[0]));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

/** Text that came from elsewhere (a fleet peer, a config file) never breaks a subject line or a mail header. */
const oneLine = (s: string): string => shared(s, 200);

function wholeOr(v: number | undefined, dflt: number): number {
  return v !== undefined && Number.isInteger(v) && v >= 0 ? v : dflt;
}
