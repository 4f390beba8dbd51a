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
  decodeBan,
  decodeEvent,
  encodeBan,
  EV_F_BAN_FAILED,
  EV_F_BANNED,
  EV_F_CAPPED,
  EV_F_LIVE_PEER,
  EV_F_NEVER_BAN,
  Layout,
  Origin,
  type AlertEvent,
} from '../core/abi.js';
import { parseCidr } from '../core/addr.js';
import type { Config } from '../core/config.js';
import { alertJson, alertLine, banJson, banLine, banReason, protoName, spoofedLine, unbanLine, type Alert } from '../core/log-format.js';
import { escalate, OffenceTracker, ttlFor, type TtlRule } from '../core/policy.js';
import { kindKey, tcpFlagNames } from '../core/scan-kind.js';
import { formatDuration } from '../core/ttl.js';
import { ifIndexToName, kernelClockNs, RingBuffer } from '../adapters/kernel.js';
import type { HistoryStore } from '../adapters/history.js';
import type { BanEntry } from './ban-table.js';
import { BanTable, banKey } from './ban-table.js';
import type { Gateway } from './gateway.js';
import type { HostsDeny } from './hosts-deny.js';
import type { NftSync } from './nft-sync.js';

export interface Reporter {
  alert(a: Alert): void;
  unban(target: string, why: string): void;
  info(text: string): void;
  /** An `attackalert:` line for something that is not an alert or a ban (not blocked, ...). */
  notice(text: string, json: object): void;
}

/** Lines for people (PortSentry's wording) or JSON lines for machines. */
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
        write(JSON.stringify({ time: now().toISOString(), ...obj }));
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
  evicted: number;
  possiblySpoofed: number;
  alertsByDestination: Record<string, number>;
}

/** What the daemon needs to run hooks (src/adapters/hooks.ts HookRunner). */
export interface Hooks {
  run(name: string, template: string, tokens: { target: string; port: number; mode: string }): Promise<unknown>;
}

export interface DaemonOptions {
  reporter: Reporter;
  signal: AbortSignal;
  config: Config;
  history: HistoryStore;
  gateway: string;
  nft?: NftSync | undefined;
  hooks?: Hooks | undefined;
  hostsDeny?: HostsDeny | undefined;
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
  const bans = new BanTable(gw.obj);
  // cfg may be replaced in place by a reload (SIGHUP): read the rules from it each time
  const rules = (): TtlRule[] => cfg.ttl_rules.map((r) => ({ net: parseCidr(r.cidr), ttl: r.ttl }));
  const offences = new OffenceTracker(cfg.escalation.lookback * 1000);
  try {
    const past = await opts.history.query({ since: Date.now() - cfg.escalation.lookback * 1000 });
    for (const e of past) if (e.op === 'ban' && e.origin === 'auto' && e.gateway === opts.gateway) offences.seed(e.target, e.time);
  } catch (e) {
    reporter.info(`history: cannot read past offences (${(e as Error).message.split(';')[0]}); escalation starts from scratch`);
  }

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

  const runHooks = (stage: 'ban' | 'cmd-only', a: Alert) => {
    const h = cfg.hooks;
    const tokens = { target: a.source, port: a.port, mode: a.proto };
    const cmd = () => h.kill_run_cmd && void opts.hooks?.run('KILL_RUN_CMD', h.kill_run_cmd, tokens);
    if (stage === 'cmd-only') return cmd();
    if (h.kill_run_cmd_first) cmd();
    if (h.kill_route) void opts.hooks?.run('KILL_ROUTE', h.kill_route, tokens);
    if (h.kill_hosts_deny) opts.hostsDeny?.add(h.kill_hosts_deny, tokens);
    if (!h.kill_run_cmd_first) cmd();
  };

  /** Policy on a ban the kernel just made: TTL escalation, then journal, nft, hooks. */
  const onBanned = (a: Alert, ev: AlertEvent, nftAdds: Array<{ target: string; timeoutSeconds: number }>) => {
    const target = parseCidr(a.source);
    const base = ttlFor(target, rules(), cfg.ban_ttl);
    const n = offences.record(a.source, a.time.getTime());
    const ttl = escalate(base, n, cfg.escalation);
    if (ttl !== a.banSeconds) {
      const { map, key } = banKey(target);
      const m = gw.obj.map(map);
      const cur = m.lookup(key);
      if (cur) {
        const v = decodeBan(cur);
        v.expiresNs = ttl ? BigInt(Math.round(ev.tsNs)) + BigInt(ttl) * 1_000_000_000n : 0n;
        m.update(key, encodeBan(v));
        a.banSeconds = ttl;
        a.expires = ttl ? new Date(a.time.getTime() + ttl * 1000) : undefined;
      }
    }
    reporter.alert(a);
    if (n > 1 && cfg.escalation.enabled) {
      reporter.info(`${a.source}: offence ${n} within ${formatDuration(cfg.escalation.lookback)}; ban escalated to ${formatDuration(ttl)}`);
    }
    opts.history.record([
      {
        op: 'ban',
        time: a.time.getTime(),
        target: a.source,
        ttl,
        expires: ttl ? a.time.getTime() + ttl * 1000 : null,
        origin: 'auto',
        reason: banReason(a),
        by: 'sentry-xdp',
        port: a.port,
        proto: a.proto,
        kind: kindKey(a.kind),
        gateway: opts.gateway,
      },
    ]);
    nftAdds.push({ target: a.source, timeoutSeconds: ttl });
    runHooks('ban', a);
  };

  const handle = (ev: AlertEvent, clockNow: number, wallNow: number, nftAdds: Array<{ target: string; timeoutSeconds: number }>) => {
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
    if (a.banned) return onBanned(a, ev, nftAdds);
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
      runHooks('cmd-only', a); // BLOCK_*=2: the external command only
    }
  };

  const onExpired = (e: BanEntry) => {
    reporter.unban(e.target, 'ban expired');
    opts.history.record([{ op: 'unban', time: Date.now(), target: e.target, why: 'expired', gateway: opts.gateway }]);
    if (e.value.origin === Origin.AUTO) {
      const tokens = { target: e.target, port: e.value.port, mode: e.value.proto === 17 ? 'udp' : 'tcp' };
      if (cfg.hooks.kill_hosts_deny) opts.hostsDeny?.remove(cfg.hooks.kill_hosts_deny, tokens);
      if (cfg.hooks.unban_cmd) void opts.hooks?.run('UNBAN_CMD', cfg.hooks.unban_cmd, tokens);
    }
  };

  const totals: DaemonTotals = { bansExpired: 0, evicted: 0, possiblySpoofed: 0, alertsByDestination: {} as Record<string, number> };
  const capCheck = () => {
    if (bans.size() <= cfg.max_bans) return;
    const out = bans.evictAuto(cfg.max_bans);
    totals.evicted += out.length;
    for (const e of out) reporter.unban(e.target, `evicted: the ban table is over its cap of ${cfg.max_bans}`);
    if (out.length) {
      opts.history.record(out.map((e) => ({ op: 'unban' as const, time: Date.now(), target: e.target, why: 'evicted (max_bans)', gateway: opts.gateway })));
      void opts.nft?.remove(out.map((e) => e.target));
    } else {
      reporter.info(`the ban table is over its cap of ${cfg.max_bans} with no automatic ban left to evict; manual bans are never evicted`);
    }
  };

  const sweepMs = opts.sweepMs ?? 1000;
  let nextSweep = 0;
  let nextNftCheck = Date.now() + 2000;
  let nextRefresh = Date.now() + 30_000;
  capCheck();
  try {
    while (!opts.signal.aborted) {
      const { buf, count } = await rb.drain(200);
      if (count) {
        const clockNow = Number(kernelClockNs());
        const wallNow = Date.now();
        const dv = dataView(buf);
        const nftAdds: Array<{ target: string; timeoutSeconds: number }> = [];
        for (let i = 0; i < count; i++) handle(decodeEvent(dv, i * Layout.sx_event.size), clockNow, wallNow, nftAdds);
        if (nftAdds.length) await opts.nft?.add(nftAdds);
      }
      const now = Date.now();
      if (now >= nextSweep) {
        // `detach --all` unpinned everything: our fds point at maps nobody uses
        if (!existsSync(join(gw.pinRoot, 'prog'))) return 'removed';
        const expired = bans.sweepExpired(kernelClockNs());
        totals.bansExpired += expired.length;
        for (const e of expired) onExpired(e);
        if (expired.length) await opts.nft?.remove(expired.map((e) => e.target));
        // a big table is swept less often: at most ~5% of one core
        nextSweep = Date.now() + Math.max(sweepMs, (Date.now() - now) * 20);
      }
      if (now >= nextNftCheck) {
        await opts.nft?.reconcileIfMissing(bans);
        nextNftCheck = Date.now() + 2000;
      }
      if (now >= nextRefresh) {
        opts.refreshLists?.();
        capCheck();
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
