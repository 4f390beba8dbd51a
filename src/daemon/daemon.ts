/**
 * The foreground daemon: drains alerts from the ring buffer (in batches, on a
 * worker thread), applies the ban policy to the kernel's automatic bans,
 * keeps nftables and the journal in step, runs the admin's hooks, and sweeps
 * expired bans out of the kernel table.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  dataView,
  decodeEvent,
  EV_F_BAN_FAILED,
  EV_F_BANNED,
  EV_F_CAPPED,
  EV_F_LIVE_PEER,
  EV_F_NEVER_BAN,
  Layout,
  Origin,
  ORIGIN_NAME,
  type AlertEvent,
} from '../core/abi.js';
import { parseCidr } from '../core/addr.js';
import type { Config } from '../core/config.js';
import { alertJson, alertLine, banJson, banLine, banReason, protoName, spoofedLine, unbanLine, type Alert } from '../core/log-format.js';
import { camelKeys } from '../core/json-format.js';
import { OffenceTracker, ttlFor, type TtlRule } from '../core/policy.js';
import { kindKey, tcpFlagNames } from '../core/scan-kind.js';
import { formatDuration } from '../core/ttl.js';
import { ifIndexToName, kernelClockNs, RingBuffer } from '../adapters/kernel.js';
import type { HistoryStore } from '../adapters/history.js';
import type { BanEffects } from './ban-effects.js';
import type { BanRequest, BanService } from './bans.js';
import type { Gateway } from './gateway.js';
import type { NftSync } from './nft-sync.js';
import { Offenders } from './offenders.js';
import { FloodWatch, floodLine } from './flood.js';

export interface Reporter {
  alert(a: Alert): void;
  unban(target: string, why: string): void;
  info(text: string): void;
  /** An `attackalert:` line for something that is not an alert or a ban (not blocked, ...). */
  notice(text: string, json: object): void;
}

/** Lines for people (PortSentry's wording) or JSON lines (NDJSON, camelCase keys, ISO times) for machines. */
export function makeReporter(json: boolean, write: (line: string) => void, now: () => Date = () => new Date()): Reporter {
  if (json) {
    return {
      alert(a) {
        write(JSON.stringify(alertJson(a)));
        const b = banJson(a);
        if (b) write(JSON.stringify(b));
      },
      unban(target, why) {
        write(JSON.stringify({ time: now().toISOString(), event: 'unban', source: target, reason: why }));
      },
      info(text) {
        write(JSON.stringify({ time: now().toISOString(), event: 'info', message: text }));
      },
      notice(_text, obj) {
        // the loop's objects may still say possibly_spoofed: every line goes out camelCase (README "JSON output")
        write(JSON.stringify({ time: now().toISOString(), ...camelKeys(obj) }));
      },
    };
  }
  return {
    alert(a) {
      write(alertLine(a));
      const b = banLine(a);
      if (b) write(b);
    },
    unban(target, why) {
      write(unbanLine(target, why));
    },
    info(text) {
      write(`sentry-xdp: ${text}`);
    },
    notice(text) {
      write(`attackalert: ${text}`);
    },
  };
}

/** Kernel event → Alert, converting kernel clock stamps to wall-clock time. */
export function toAlert(ev: AlertEvent, clockNowNs: number, wallNowMs: number, ifname: (i: number) => string): Alert {
  const wall = (ns: number) => new Date(wallNowMs - (clockNowNs - ns) / 1e6);
  const banned = (ev.flags & EV_F_BANNED) !== 0;
  return {
    time: wall(ev.tsNs),
    source: ev.source,
    destination: ev.destination,
    proto: protoName(ev.proto),
    port: ev.port,
    kind: ev.kind,
    tcpFlags: ev.tcpFlags,
    iface: ifname(ev.ifindex),
    probes: ev.probes,
    banned,
    banFailed: (ev.flags & EV_F_BAN_FAILED) !== 0,
    possiblySpoofed: (ev.flags & EV_F_LIVE_PEER) !== 0,
    banSeconds: banned && ev.expiresNs ? Math.round((ev.expiresNs - ev.tsNs) / 1e9) : 0,
    ...(banned && ev.expiresNs ? { expires: wall(ev.expiresNs) } : {}),
  };
}

/** What the daemon counts itself (status and metrics read them from the run dir). */
export interface DaemonTotals {
  bansExpired: number;
  /** bansExpired by origin (auto, manual, imported, fleet): metrics count the CLI's bans from the table's growth plus these. */
  expiredByOrigin: Record<string, number>;
  evicted: number;
  possiblySpoofed: number;
  alertsByDestination: Record<string, number>;
}

export interface DaemonOptions {
  reporter: Reporter;
  signal: AbortSignal;
  config: Config;
  history: HistoryStore;
  gateway: string;
  /** Where every ban begins and ends (journal or Redis, nft, hooks, log line). */
  bans: BanService;
  effects?: BanEffects | undefined;
  /** For nft reconcile (the service writes bans through the same one). */
  nft?: NftSync | undefined;
  /**
   * The kernel clock when the start-up restore finished: a ban the kernel made
   * before that may have been overwritten or removed by the restore, and is put
   * back from its event (unless the restored ban outlasts it).
   */
  restoredAtNs?: bigint | undefined;
  /** Re-reads this host's addresses, gateways and resolvers into the never-ban list. */
  refreshLists?: () => void;
  /** Called on every loop turn (at least every 200 ms): reloads, the watched-port refresh. */
  onLoop?: () => Promise<void> | void;
  /** Called on every loop turn with the daemon's totals. */
  onTick?: (t: DaemonTotals & { nftHealthy: boolean | null; history: object }) => void;
  /** An interface's name by index, as it is now (the supervisor follows renames); default: cached forever. */
  ifname?: (ifindex: number) => string;
  /** The metrics label of an alert's destination (bounded: this host's address or a protected network). */
  destinationLabel?: (ev: AlertEvent) => string;
  sweepMs?: number;
}

/** Runs until the signal fires ('signal') or the pins are removed under it ('removed'). */
export async function runDaemon(gw: Gateway, opts: DaemonOptions): Promise<'signal' | 'removed'> {
  const { config: cfg, reporter } = opts;
  const rb = new RingBuffer(gw.obj.mapFd('sentry_events'), Layout.sx_event.size, 4096);
  const bans = opts.bans.table;
  // cfg may be replaced in place by a reload (SIGHUP): read the rules from it each time
  const rules = (): TtlRule[] => cfg.ttl_rules.map((r) => ({ net: parseCidr(r.cidr), ttl: r.ttl }));
  const tracker = new OffenceTracker(cfg.escalation.lookback * 1000);
  try {
    const past = await opts.history.query({ since: Date.now() - cfg.escalation.lookback * 1000 });
    for (const e of past) if (e.op === 'ban' && e.origin === 'auto' && e.gateway === opts.gateway) tracker.seed(e.target, e.time);
  } catch (e) {
    reporter.info(`history: cannot read past offences (${(e as Error).message.split(';')[0]}); escalation starts from scratch`);
  }
  // the kernel decides each automatic ban's length; this tells it a repeat offender's
  const offenders = new Offenders(gw.obj.map('sentry_offenders'), tracker, () => ({ rules: rules(), base: cfg.ban_ttl, escalation: cfg.escalation }));
  offenders.rewriteAll();
  let policy = JSON.stringify([cfg.ttl_rules, cfg.ban_ttl, cfg.escalation]);

  const names = new Map<number, string>();
  const ifname =
    opts.ifname ??
    ((i: number) => {
      let n = names.get(i);
      if (!n) {
        n = ifIndexToName(i) ?? `if${i}`;
        names.set(i, n);
      }
      return n;
    });

  /**
   * A ban the kernel made while the start-up restore ran: the restore may have
   * removed or overwritten it. Put back, unless the restored ban outlasts it.
   * Returns false when the restored one stands (the event's ban is not recorded).
   */
  const reinstate = (ev: AlertEvent): boolean => {
    const target = parseCidr(ev.source);
    const cur = bans.get(target);
    const created = BigInt(Math.round(ev.tsNs));
    if (cur && cur.createdNs >= created - 1000n && cur.createdNs <= created + 1000n) return true; // untouched
    const expires = ev.expiresNs ? BigInt(Math.round(ev.expiresNs)) : 0n;
    if (cur && (cur.expiresNs === 0n || (expires !== 0n && cur.expiresNs >= expires))) return false;
    bans.add(target, { expiresNs: expires, createdNs: created, drops: cur?.drops ?? 1n, port: ev.port, proto: ev.proto, kind: ev.kind, origin: Origin.AUTO });
    return true;
  };

  /** A ban the kernel just made, with the length it decided: count the offence, log it, and begin it everywhere else. */
  const onBanned = (a: Alert, ev: AlertEvent, began: BanRequest[]) => {
    if (opts.restoredAtNs !== undefined && BigInt(Math.round(ev.tsNs)) <= opts.restoredAtNs && !reinstate(ev)) {
      reporter.alert({ ...a, banned: false });
      reporter.info(`${a.source}: a ban restored from history, lasting longer, replaced the one the kernel made during the restore`);
      return;
    }
    const n = offenders.record(a.source, a.time.getTime());
    reporter.alert(a);
    const base = ttlFor(parseCidr(a.source), rules(), cfg.ban_ttl);
    if (n > 1 && cfg.escalation.enabled && a.banSeconds !== base) {
      reporter.info(`${a.source}: offence ${n} within ${formatDuration(cfg.escalation.lookback)}; ban escalated to ${formatDuration(a.banSeconds)}`);
    }
    began.push({
      target: parseCidr(a.source),
      ttl: a.banSeconds,
      time: a.time.getTime(),
      origin: 'auto',
      reason: banReason(a),
      by: 'sentry-xdp',
      port: a.port,
      proto: a.proto,
      kind: kindKey(a.kind),
    });
  };

  const handle = (ev: AlertEvent, clockNow: number, wallNow: number, began: BanRequest[]) => {
    const a = toAlert(ev, clockNow, wallNow, ifname);
    opts.history.record([
      {
        op: 'alert',
        time: a.time.getTime(),
        source: a.source,
        destination: a.destination,
        proto: a.proto,
        port: a.port,
        kind: kindKey(a.kind),
        ...(a.proto === 'tcp' ? { flags: tcpFlagNames(a.tcpFlags) } : {}),
        iface: a.iface,
        gateway: opts.gateway,
      },
    ]);
    const dest = opts.destinationLabel?.(ev) ?? a.destination;
    totals.alertsByDestination[dest] = (totals.alertsByDestination[dest] ?? 0) + 1;
    if (a.banned) return onBanned(a, ev, began);
    reporter.alert(a);
    const base = { event: 'not_blocked', source: a.source, destination: a.destination };
    if (ev.flags & EV_F_LIVE_PEER) {
      totals.possiblySpoofed++;
      reporter.notice(spoofedLine(a), { ...base, reason: 'live-connection', possibly_spoofed: true });
    } else if (ev.flags & EV_F_NEVER_BAN) {
      reporter.notice(`Host ${a.source} is on the never-ban list; not blocked (spoofed, or our own)`, { ...base, reason: 'never-ban' });
    } else if (ev.flags & EV_F_CAPPED) {
      reporter.notice(
        `Host ${a.source} not blocked: the cap of ${cfg.max_auto_bans_per_minute} automatic bans per minute is reached`,
        { ...base, reason: 'cap' },
      );
    } else if ((a.proto === 'tcp' ? cfg.block_tcp : cfg.block_udp) === 2) {
      opts.effects?.began({ target: a.source, origin: 'auto', port: a.port, proto: a.proto }, true); // BLOCK_*=2: the external command only
    }
  };

  const totals: DaemonTotals = { bansExpired: 0, expiredByOrigin: {}, evicted: 0, possiblySpoofed: 0, alertsByDestination: {} as Record<string, number> };
  const capCheck = async () => {
    if (bans.size() <= cfg.max_bans) return;
    const out = bans.evictAuto(cfg.max_bans);
    totals.evicted += out.length;
    if (out.length) {
      await opts.bans.ended(out, { cause: 'evicted', why: 'evicted (max_bans)', line: `evicted: the ban table is over its cap of ${cfg.max_bans}` });
    } else {
      reporter.info(`the ban table is over its cap of ${cfg.max_bans} with no automatic ban left to evict; manual bans are never evicted`);
    }
  };

  const sweepMs = opts.sweepMs ?? 1000;
  let nextSweep = 0;
  let nextNftCheck = Date.now() + 2000;
  let nextCapCheck = 0;
  const floods = new FloodWatch(gw);
  let nextRefresh = Date.now() + 30_000;
  await capCheck();
  try {
    while (!opts.signal.aborted) {
      const { buf, count } = await rb.drain(200);
      if (count) {
        const clockNow = Number(kernelClockNs());
        const wallNow = Date.now();
        const dv = dataView(buf);
        const began: BanRequest[] = [];
        for (let i = 0; i < count; i++) handle(decodeEvent(dv, i * Layout.sx_event.size), clockNow, wallNow, began);
        await opts.bans.began(began);
        if (began.length && Date.now() >= nextCapCheck) {
          nextCapCheck = Date.now() + 1000; // the table grew: keep it under max_bans without walking it on every batch
          await capCheck();
        }
      }
      const now = Date.now();
      if (now >= nextSweep) {
        // `detach --all` unpinned everything: our fds point at maps nobody uses
        if (!existsSync(join(gw.pinRoot, 'prog'))) return 'removed';
        const flood = floods.take();
        if (flood) reporter.notice(floodLine(flood), { event: 'flood_summary', ...flood });
        const expired = bans.sweepExpired(kernelClockNs());
        totals.bansExpired += expired.length;
        for (const e of expired) {
          const o = ORIGIN_NAME[e.value.origin] ?? 'manual';
          totals.expiredByOrigin[o] = (totals.expiredByOrigin[o] ?? 0) + 1;
        }
        await opts.bans.ended(expired, { cause: 'expired', why: 'expired', line: 'ban expired' });
        const p = JSON.stringify([cfg.ttl_rules, cfg.ban_ttl, cfg.escalation]);
        if (p !== policy) {
          policy = p; // a reload changed what bans last
          offenders.rewriteAll();
        } else offenders.tick();
        // a big table is swept less often: at most ~5% of one core
        nextSweep = Date.now() + Math.max(sweepMs, (Date.now() - now) * 20);
      }
      if (now >= nextNftCheck) {
        await opts.nft?.check(bans);
        nextNftCheck = Date.now() + (opts.nft?.nextCheckMs ?? 2000);
      }
      if (now >= nextRefresh) {
        opts.refreshLists?.();
        await capCheck();
        nextRefresh = Date.now() + 30_000;
      }
      opts.onTick?.({ ...totals, nftHealthy: opts.nft?.healthy ?? null, history: opts.history.health() });
      await opts.onLoop?.();
    }
    return 'signal';
  } finally {
    rb.close();
  }
}
