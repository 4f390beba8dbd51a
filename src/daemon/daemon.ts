/**
 * The foreground daemon: drains alerts from the ring buffer (in batches, on a
 * worker thread), applies the ban policy to the kernel's automatic bans,
 * keeps nftables and the journal in step, runs the admin's hooks, and sweeps
 * expired bans out of the kernel table.
 *
 * Stages, each its own piece so the pipeline runs on fakes in tests:
 *   kernelSide (ring buffer → Probe, clock, pins, flood counters)
 *   → EventPipeline (policy: history, escalation, ban lifecycle, typed events out)
 *   → Reporter (log line or JSON line; outputs.ts adds syslog and the digest)
 *   runLoop drives them: drain, sweep, nft check, list refresh, tick.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { dataView, decodeEvent, DEST_HOST, Layout, Origin, ORIGIN_NAME, type BanValue } from '../core/abi.js';
import { parseCidr, type Cidr } from '../core/addr.js';
import type { Config } from '../core/config.js';
import { alertEvents, alertRecord, probeFromWire, type Alert, type DaemonEvent, type FloodSummary, type Probe } from '../core/events.js';
import { eventLine, banReason } from '../core/log-format.js';
import { eventJson } from '../core/json-format.js';
import { OffenceTracker, ttlFor, type TtlRule } from '../core/policy.js';
import { kindKey } from '../core/scan-kind.js';
import { formatDuration } from '../core/ttl.js';
import { ifIndexToName, kernelClockNs, RingBuffer } from '../adapters/kernel.js';
import type { HistoryStore } from '../adapters/history.js';
import type { BanEffects, EndedBan, Ending } from './ban-effects.js';
import type { BanRequest, BanService } from './bans.js';
import type { BanEntry } from './ban-table.js';
import type { Gateway } from './gateway.js';
import type { NftSync } from './nft-sync.js';
import { Offenders } from './offenders.js';
import { FloodWatch, type FloodSource } from './flood.js';

/**
 * Where the daemon's events go. `emit` is the one typed entry; the other
 * methods make the common events for callers (the CLI, the attach command).
 */
export interface Reporter {
  emit(e: DaemonEvent): void;
  /** An alert, and its ban (or failed ban) when it has one. */
  alert(a: Alert): void;
  unban(target: string, why: string): void;
  info(text: string): void;
}

/** A Reporter over one typed sink: the convenience methods only build events. */
export function reporterOf(emit: (e: DaemonEvent) => void, now: () => Date = () => new Date()): Reporter {
  return {
    emit,
    alert: (a) => alertEvents(a).forEach(emit),
    unban: (target, why) => emit({ type: 'unban', time: now(), target, why }),
    info: (text) => emit({ type: 'info', time: now(), text }),
  };
}

/** Lines for people (PortSentry's wording) or JSON lines (NDJSON, camelCase keys, ISO times) for machines. */
export function makeReporter(json: boolean, write: (line: string) => void, now: () => Date = () => new Date()): Reporter {
  const render = json
    ? (e: DaemonEvent) => {
        const o = eventJson(e);
        return o && JSON.stringify(o);
      }
    : eventLine;
  return reporterOf((e) => {
    const line = render(e);
    if (line) write(line);
  }, now);
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

/** A probe's destination as a metrics label: bounded (this host's address, or a protected network). */
export type DestinationLabel = (d: { dscope: number; destination: string }) => string;

/** The daemon's totals, counted from the events it emits and the bans its sweep ends. */
export class DaemonTally {
  readonly totals: DaemonTotals = { bansExpired: 0, expiredByOrigin: {}, evicted: 0, possiblySpoofed: 0, alertsByDestination: {} };

  constructor(private readonly label: DestinationLabel = (d) => d.destination) {}

  count(e: DaemonEvent): void {
    const t = this.totals;
    if (e.type === 'alert') {
      const dest = this.label({ dscope: e.alert.dscope ?? DEST_HOST, destination: e.alert.destination });
      t.alertsByDestination[dest] = (t.alertsByDestination[dest] ?? 0) + 1;
    } else if (e.type === 'not_blocked' && e.reason === 'live-connection') t.possiblySpoofed++;
  }

  expired(gone: readonly EndedBan[]): void {
    this.totals.bansExpired += gone.length;
    for (const e of gone) {
      const o = ORIGIN_NAME[e.value.origin] ?? 'manual';
      this.totals.expiredByOrigin[o] = (this.totals.expiredByOrigin[o] ?? 0) + 1;
    }
  }

  evicted(n: number): void {
    this.totals.evicted += n;
  }
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
  destinationLabel?: DestinationLabel;
  sweepMs?: number;
}

/** What the pipeline needs of the kernel ban table (BanTable; a fake in tests). */
export interface BanTableView {
  get(c: Cidr): BanValue | undefined;
  add(c: Cidr, v: BanValue): void;
  size(): number;
  evictAuto(max: number): BanEntry[];
  sweepExpired(nowNs: bigint): BanEntry[];
}

/** Where bans begin and end everywhere but the kernel table (BanService). */
interface BanLifecycle {
  began(reqs: readonly BanRequest[]): Promise<void>;
  ended(gone: readonly EndedBan[], how: Ending): Promise<void>;
}

/** Repeat offenders: the kernel's escalation entries (Offenders). */
export interface OffenderLog {
  /** An automatic ban of `source` at `when` (wall ms): its number within the look-back (1 = first). */
  record(source: string, when: number): number;
  tick(): void;
  rewriteAll(): void;
}

/** The pipeline's side effects, passed in (the daemon's real ones, or fakes). */
export interface PipelineDeps {
  reporter: Reporter;
  /** May be replaced in place by a reload (SIGHUP): read from it each time. */
  config: Config;
  history: Pick<HistoryStore, 'record'>;
  gateway: string;
  bans: BanLifecycle;
  table: BanTableView;
  /** For BLOCK_*=2 (the external command only, no ban). */
  effects?: Pick<BanEffects, 'began'> | undefined;
  offenders: OffenderLog;
  restoredAtNs?: bigint | undefined;
  destinationLabel?: DestinationLabel | undefined;
  /** Wall clock, ms. */
  now?: () => number;
}

const policyOf = (cfg: Config) => JSON.stringify([cfg.ttl_rules, cfg.ban_ttl, cfg.escalation]);
const ttlRulesOf = (cfg: Config): TtlRule[] => cfg.ttl_rules.map((r) => ({ net: parseCidr(r.cidr), ttl: r.ttl }));

/** The ban request of a ban the kernel made: what history, nft and the hooks get. */
function autoBanRequest(a: Alert): BanRequest {
  return {
    target: parseCidr(a.source),
    ttl: a.banSeconds,
    time: a.time.getTime(),
    origin: 'auto',
    reason: banReason(a),
    by: 'sentry-xdp',
    port: a.port,
    proto: a.proto,
    kind: kindKey(a.kind),
  };
}

/**
 * Policy: one probe in, typed events and ban-lifecycle calls out. Owns no
 * timer and no kernel handle; runLoop calls its stages.
 */
export class EventPipeline {
  readonly tally: DaemonTally;
  private policy: string;
  private nextCapCheck = 0;
  private readonly now: () => number;

  constructor(private readonly d: PipelineDeps) {
    this.tally = new DaemonTally(d.destinationLabel);
    this.policy = policyOf(d.config);
    this.now = d.now ?? Date.now;
  }

  get totals(): DaemonTotals {
    return this.tally.totals;
  }

  /** Every event goes to the outputs and is counted, in one place. */
  private emit(e: DaemonEvent): void {
    this.d.reporter.emit(e);
    this.tally.count(e);
  }

  private info(text: string): void {
    this.emit({ type: 'info', time: new Date(this.now()), text });
  }

  /** One drained batch: each probe through the policy, then the batch's bans begun together. */
  async batch(probes: readonly Probe[]): Promise<void> {
    const began: BanRequest[] = [];
    for (const p of probes) this.probe(p, began);
    await this.d.bans.began(began);
    if (began.length && this.now() >= this.nextCapCheck) {
      this.nextCapCheck = this.now() + 1000; // the table grew: keep it under max_bans without walking it on every batch
      await this.capCheck();
    }
  }

  /** One probe: its history record, then its events; a ban joins `began`. */
  probe(p: Probe, began: BanRequest[]): void {
    const a = p.alert;
    this.d.history.record([alertRecord(a, this.d.gateway)]);
    if (a.banned) return this.banned(p, began);
    alertEvents(a).forEach((e) => this.emit(e));
    const cfg = this.d.config;
    if (p.held) {
      const cap = p.held === 'cap' ? { cap: cfg.max_auto_bans_per_minute } : {};
      this.emit({ type: 'not_blocked', time: new Date(this.now()), source: a.source, destination: a.destination, reason: p.held, ...cap });
    } else if ((a.proto === 'tcp' ? cfg.block_tcp : cfg.block_udp) === 2) {
      this.d.effects?.began({ target: a.source, origin: 'auto', port: a.port, proto: a.proto }, true); // BLOCK_*=2: the external command only
    }
  }

  /** A ban the kernel just made, with the length it decided: count the offence, log it, and begin it everywhere else. */
  private banned(p: Probe, began: BanRequest[]): void {
    const a = p.alert;
    const cfg = this.d.config;
    if (this.d.restoredAtNs !== undefined && BigInt(Math.round(p.tsNs)) <= this.d.restoredAtNs && !this.reinstate(p)) {
      alertEvents({ ...a, banned: false }).forEach((e) => this.emit(e));
      this.info(`${a.source}: a ban restored from history, lasting longer, replaced the one the kernel made during the restore`);
      return;
    }
    const n = this.d.offenders.record(a.source, a.time.getTime());
    alertEvents(a).forEach((e) => this.emit(e));
    const base = ttlFor(parseCidr(a.source), ttlRulesOf(cfg), cfg.ban_ttl);
    if (n > 1 && cfg.escalation.enabled && a.banSeconds !== base) {
      this.info(`${a.source}: offence ${n} within ${formatDuration(cfg.escalation.lookback)}; ban escalated to ${formatDuration(a.banSeconds)}`);
    }
    began.push(autoBanRequest(a));
  }

  /**
   * A ban the kernel made while the start-up restore ran: the restore may have
   * removed or overwritten it. Put back, unless the restored ban outlasts it.
   * Returns false when the restored one stands (the event's ban is not recorded).
   */
  private reinstate(p: Probe): boolean {
    const target = parseCidr(p.alert.source);
    const cur = this.d.table.get(target);
    const created = BigInt(Math.round(p.tsNs));
    if (cur && cur.createdNs >= created - 1000n && cur.createdNs <= created + 1000n) return true; // untouched
    const expires = p.expiresNs ? BigInt(Math.round(p.expiresNs)) : 0n;
    if (cur && (cur.expiresNs === 0n || (expires !== 0n && cur.expiresNs >= expires))) return false;
    const v = { expiresNs: expires, createdNs: created, drops: cur?.drops ?? 1n, port: p.alert.port, proto: p.protoNum, kind: p.kindNum, origin: Origin.AUTO };
    this.d.table.add(target, v);
    return true;
  }

  /** The kernel's flood counters, summarised once a second when there was a flood. */
  flood(summary: FloodSummary | undefined): void {
    if (summary) this.emit({ type: 'flood_summary', time: new Date(this.now()), summary });
  }

  /** Expired bans out of the kernel table and ended everywhere; escalation entries follow the policy in force. */
  async sweep(nowNs: bigint): Promise<void> {
    const expired = this.d.table.sweepExpired(nowNs);
    this.tally.expired(expired);
    await this.d.bans.ended(expired, { cause: 'expired', why: 'expired', line: 'ban expired' });
    const p = policyOf(this.d.config);
    if (p !== this.policy) {
      this.policy = p; // a reload changed what bans last
      this.d.offenders.rewriteAll();
    } else this.d.offenders.tick();
  }

  /** Keeps the table under max_bans by evicting automatic bans, soonest to expire first. */
  async capCheck(): Promise<void> {
    const max = this.d.config.max_bans;
    if (this.d.table.size() <= max) return;
    const out = this.d.table.evictAuto(max);
    this.tally.evicted(out.length);
    if (out.length) {
      await this.d.bans.ended(out, { cause: 'evicted', why: 'evicted (max_bans)', line: `evicted: the ban table is over its cap of ${max}` });
    } else {
      this.info(`the ban table is over its cap of ${max} with no automatic ban left to evict; manual bans are never evicted`);
    }
  }
}

/** What the loop needs of the kernel (the pinned object; a fake in tests). */
export interface KernelSide {
  /** Waits up to timeoutMs for ring-buffer records, each decoded once into a Probe. */
  drain(timeoutMs: number): Promise<Probe[]>;
  /** The kernel clock (CLOCK_MONOTONIC ns), the one ban expiries are in. */
  clockNs(): bigint;
  /** False once `detach --all` unpinned everything: our fds point at maps nobody uses. */
  pinned(): boolean;
  floods: FloodSource;
  close(): void;
}

/** An interface name by index, looked up once and kept. */
function cachedIfname(): (i: number) => string {
  const names = new Map<number, string>();
  return (i) => {
    let n = names.get(i);
    if (!n) names.set(i, (n = ifIndexToName(i) ?? `if${i}`));
    return n;
  };
}

/** The real kernel side: the pinned ring buffer, the kernel clock, the prog pin and the flood counters. */
function kernelSide(gw: Gateway, ifname: (i: number) => string): KernelSide {
  const size = Layout.sx_event.size;
  const rb = new RingBuffer(gw.obj.mapFd('sentry_events'), size, 4096);
  return {
    async drain(ms) {
      const { buf, count } = await rb.drain(ms);
      if (!count) return [];
      const clock = { clockNowNs: Number(kernelClockNs()), wallNowMs: Date.now() };
      const dv = dataView(buf);
      const out: Probe[] = new Array(count);
      for (let i = 0; i < count; i++) out[i] = probeFromWire(decodeEvent(dv, i * size), clock, ifname);
      return out;
    },
    clockNs: kernelClockNs,
    pinned: () => existsSync(join(gw.pinRoot, 'prog')),
    floods: new FloodWatch(gw),
    close: () => rb.close(),
  };
}

/** Escalation from the offences history remembers (a restart does not forgive a repeat offender). */
async function startOffenders(gw: Gateway, opts: DaemonOptions): Promise<Offenders> {
  const cfg = opts.config;
  const tracker = new OffenceTracker(cfg.escalation.lookback * 1000);
  try {
    const past = await opts.history.query({ since: Date.now() - cfg.escalation.lookback * 1000 });
    for (const e of past) if (e.op === 'ban' && e.origin === 'auto' && e.gateway === opts.gateway) tracker.seed(e.target, e.time);
  } catch (e) {
    opts.reporter.info(`history: cannot read past offences (${(e as Error).message.split(';')[0]}); escalation starts from scratch`);
  }
  // the kernel decides each automatic ban's length; this tells it a repeat offender's
  const offenders = new Offenders(gw.obj.map('sentry_offenders'), tracker, () => ({ rules: ttlRulesOf(cfg), base: cfg.ban_ttl, escalation: cfg.escalation }));
  offenders.rewriteAll();
  return offenders;
}

/** What runLoop does besides the pipeline's stages. */
export interface LoopOptions {
  signal: AbortSignal;
  sweepMs?: number | undefined;
  /** Checks nft against the table; resolves with the ms until the next check. */
  nftCheck?: (() => Promise<number>) | undefined;
  refreshLists?: (() => void) | undefined;
  /** Every turn, after the stages. */
  tick?: (() => void) | undefined;
  onLoop?: (() => Promise<void> | void) | undefined;
}

/** Drives the stages until the signal fires ('signal') or the pins are removed under it ('removed'). */
export async function runLoop(pipeline: EventPipeline, kernel: KernelSide, o: LoopOptions): Promise<'signal' | 'removed'> {
  const sweepMs = o.sweepMs ?? 1000;
  let nextSweep = 0;
  let nextNftCheck = Date.now() + 2000;
  let nextRefresh = Date.now() + 30_000;
  await pipeline.capCheck();
  while (!o.signal.aborted) {
    const probes = await kernel.drain(200);
    if (probes.length) await pipeline.batch(probes);
    const now = Date.now();
    if (now >= nextSweep) {
      if (!kernel.pinned()) return 'removed';
      pipeline.flood(kernel.floods.take());
      await pipeline.sweep(kernel.clockNs());
      // a big table is swept less often: at most ~5% of one core
      nextSweep = Date.now() + Math.max(sweepMs, (Date.now() - now) * 20);
    }
    if (now >= nextNftCheck && o.nftCheck) {
      const wait = await o.nftCheck();
      nextNftCheck = Date.now() + wait;
    }
    if (now >= nextRefresh) {
      o.refreshLists?.();
      await pipeline.capCheck();
      nextRefresh = Date.now() + 30_000;
    }
    o.tick?.();
    await o.onLoop?.();
  }
  return 'signal';
}

/** Runs until the signal fires ('signal') or the pins are removed under it ('removed'). */
export async function runDaemon(gw: Gateway, opts: DaemonOptions): Promise<'signal' | 'removed'> {
  const offenders = await startOffenders(gw, opts);
  const pipeline = new EventPipeline({
    reporter: opts.reporter,
    config: opts.config,
    history: opts.history,
    gateway: opts.gateway,
    bans: opts.bans,
    table: opts.bans.table,
    effects: opts.effects,
    offenders,
    restoredAtNs: opts.restoredAtNs,
    destinationLabel: opts.destinationLabel,
  });
  const kernel = kernelSide(gw, opts.ifname ?? cachedIfname());
  const nft = opts.nft;
  try {
    return await runLoop(pipeline, kernel, {
      signal: opts.signal,
      sweepMs: opts.sweepMs,
      nftCheck: nft
        ? async () => {
            await nft.check(opts.bans.table);
            return nft.nextCheckMs;
          }
        : undefined,
      refreshLists: opts.refreshLists,
      tick: () => opts.onTick?.({ ...pipeline.totals, nftHealthy: nft?.healthy ?? null, history: opts.history.health() }),
      onLoop: opts.onLoop,
    });
  } finally {
    kernel.close();
  }
}
