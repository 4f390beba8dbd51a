/**
 * What each verb does, with its side effects passed in. The CLI only parses
 * argv and prints what these return or report.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { importPortsentry, parseModes, type ImportResult } from '../core/portsentry-import.js';
import { configWarnings, parseConfig } from '../core/config.js';
import { readEphemeralRange, readHostAddresses } from '../adapters/host-facts.js';
import { DEST_NET, FEAT_CONNTRACK, FEAT_FRAGS } from '../core/abi.js';
import { networkOf } from '../core/destinations.js';
import { camelKey } from '../core/json-format.js';
import { Destinations } from './destinations.js';
import { InterfaceSupervisor, type IfaceState } from './supervisor.js';
import { PeerTracker } from '../adapters/peers.js';
import { claimInstance } from '../adapters/instance-lock.js';
import type { Config } from '../core/config.js';
import { formatPortList } from '../core/ports.js';
import { formatDuration } from '../core/ttl.js';
import { computeWatchSet, type Listeners, type WatchSet } from '../core/watch.js';
import { SentryError } from '../errors.js';
import { BUILT_IN, configFile, loadConfig } from '../adapters/config-file.js';
import { ifIndexToName, ifNameToIndex, kernelClockNs, type AttachModeName } from '../adapters/kernel.js';
import { readListeners } from '../adapters/listeners.js';
import type { Paths } from '../adapters/paths.js';
import { requirePrivileges } from '../adapters/privileges.js';
import { RunDir } from '../adapters/run-dir.js';
import { JournalStore, type HistoryStore } from '../adapters/history.js';
import { RedisStore } from '../adapters/redis.js';
import type { BanRecord } from '../adapters/journal.js';
import { parseCidr } from '../core/addr.js';
import { fleetBanEvent } from '../core/events.js';
import { BanService, whyProtected, type Protected } from './bans.js';
import { FleetReader, fleetMark, type FleetHandlers } from './fleet.js';
import { Nft } from '../adapters/nft.js';
import { runDaemon, type DaemonOptions, type Reporter } from './daemon.js';
import { checkPinRoot, detachIface, Gateway, listInterfaces, removeAll, type AttachedIface } from './gateway.js';
import { configuredEffects } from './ban-effects.js';
import { NftSync } from './nft-sync.js';
import { makeOutputs } from './outputs.js';
import { Metrics } from '../adapters/metrics.js';
import { metricsSnapshot } from './metrics-snapshot.js';
import { BanTable } from './ban-table.js';
import { currentProtected, gatewayName, loadCheckedConfig, openHistory, syncLists, ttlRules } from './context.js';

export interface AttachOptions {
  ifaces: string[];
  config?: string | undefined;
  mode: AttachModeName;
  daemon: boolean;
  detachOnExit: boolean;
  paths: Paths;
  reporter: Reporter;
  signal: AbortSignal;
}

/** Lines for ports that became or stopped being tripwires since the last look, and why. */
function watchChanges(before: WatchSet, after: WatchSet, was: Listeners, now: Listeners): string[] {
  const out: string[] = [];
  for (const proto of ['tcp', 'udp'] as const) {
    const b = new Set(before[proto]);
    const a = new Set(after[proto]);
    const P = proto.toUpperCase();
    for (const p of before[proto]) {
      if (a.has(p)) continue;
      out.push(now[proto].has(p) ? `${P} ${p}: a local service listens there now; no longer watched` : `${P} ${p}: no longer watched (config)`);
    }
    for (const p of after[proto]) {
      if (b.has(p)) continue;
      out.push(was[proto].has(p) && !now[proto].has(p) ? `${P} ${p}: nothing listens there any more; watched again` : `${P} ${p}: now watched (config)`);
    }
  }
  return out;
}

function summarizeWatch(w: WatchSet): string[] {
  const lines = [
    `watching ${w.tcp.length} TCP port(s): ${formatPortList(w.tcp) || '(none)'}`,
    `watching ${w.udp.length} UDP port(s): ${formatPortList(w.udp) || '(none)'}`,
  ];
  for (const s of w.skipped) lines.push(`not watching ${s.proto.toUpperCase()} ${s.port}: ${s.reason}`);
  return lines;
}

/**
 * Starts following conntrack into the kernel's live-peer list (a source with a
 * live connection is never banned on a probe); says so, or why it cannot.
 */
function followPeers(gw: Gateway, rep: Reporter): PeerTracker | undefined {
  try {
    const peers = PeerTracker.start(gw.obj.mapFd('sentry_peers'));
    rep.info(
      `live peers: following conntrack (${peers.stats().peers} address(es) with live connections now): the servers this host and its networks talk to, and clients of TCP connections older than a minute, are never banned on a probe`,
    );
    return peers;
  } catch (e) {
    const err = e as SentryError;
    rep.info(`live peers: cannot follow conntrack (${err.message}); a forged probe bearing a live peer's address can get it banned`);
    return undefined;
  }
}

/** What a probe may be addressed to, and how connections are recognised. */
function describeScope(c: Config, features: number): string[] {
  const nets = c.protect.networks;
  const services = c.protect.services.length;
  const lines = [
    nets.length
      ? `protecting this host's addresses and ${nets.join(', ')}${services ? ` (${services} service(s) there are never tripwires)` : ''}`
      : "protecting this host's addresses; traffic forwarded through it is never a probe (protect.networks is empty)",
  ];
  if (features & FEAT_CONNTRACK) {
    lines.push('connection awareness: local sockets and conntrack lookups (XDP kfuncs): replies and forwarded flows are never probes');
    if (!c.nft.enabled && nets.length) {
      lines.push(
        'warning: nft.enabled is off: unless another stateful rule keeps conntrack on here, replies to the protected networks are judged by destination alone',
      );
    }
  } else {
    lines.push(
      'connection awareness: local sockets only; conntrack lookups are not available on this kernel (no bpf_xdp_ct_lookup): forwarded traffic is judged by its destination alone',
    );
  }
  lines.push(
    features & FEAT_FRAGS
      ? 'program: multi-buffer XDP (xdp.frags): jumbo MTUs attach natively and the MTU may change while attached'
      : 'program: single-buffer XDP (this kernel has no xdp.frags): a link with a jumbo MTU attaches in generic mode only',
  );
  return lines;
}

function describeConfig(c: Config, source: string): string {
  const block = (m: number) => ['log only', 'block', 'external command only'][m] ?? `mode ${m}`;
  return (
    `config: ${source}; scan trigger ${c.scan_trigger} in ${formatDuration(c.scan_window)}; ` +
    `TCP ${block(c.block_tcp)}, UDP ${block(c.block_udp)}; bans last ${formatDuration(c.ban_ttl)}`
  );
}

type Cleanup = () => Promise<void>;

/**
 * The interfaces that exist now. The daemon waits for a missing one (a PPP or VPN link at boot);
 * with --no-daemon there is no one to wait, so a missing interface is refused.
 */
function presentInterfaces(o: AttachOptions): string[] {
  const present = o.ifaces.filter((iface) => ifNameToIndex(iface));
  const missing = o.ifaces.filter((iface) => !present.includes(iface));
  if (missing.length && !o.daemon) {
    throw new SentryError(
      'NO_INTERFACE',
      `no such interface: ${missing.join(', ')}`,
      'list interfaces with `ip link`; the daemon (without --no-daemon) waits for missing ones',
    );
  }
  return present;
}

/**
 * An interface sentry-xdp is already attached to is refused while a daemon serves it or with
 * --no-daemon; otherwise a new daemon adopts it (restart).
 */
function refuseServed(o: AttachOptions, running: number | undefined): void {
  const existing = existsSync(`${o.paths.pinRoot}/prog`) ? Gateway.open(o.paths.pinRoot) : undefined;
  try {
    for (const iface of o.ifaces) {
      const ours = existing?.attachedTo(iface);
      if (ours && (running || !o.daemon)) {
        throw new SentryError(
          'ALREADY_ATTACHED',
          `${iface} already has sentry-xdp attached (program id ${ours.progId})${running ? ` and a daemon serves it (pid ${running})` : ''}`,
          running ? 'see `sentry-xdp status`' : `run \`sentry-xdp attach ${iface}\` without --no-daemon to adopt it, or detach it first`,
        );
      }
    }
  } finally {
    existing?.close();
  }
}

/**
 * The daemon's claims: one daemon per nft table per network namespace (a second one would rewrite
 * the first one's table), and the run dir's pid file and config. Returns the clean-ups to run at exit.
 */
async function claimDaemon(o: AttachOptions, config: Config, source: string, run: RunDir): Promise<Cleanup[]> {
  const claim = o.daemon && config.nft.enabled ? await claimInstance(config.nft.table, { pid: process.pid, pinRoot: o.paths.pinRoot }) : undefined;
  try {
    if (o.daemon) {
      run.claimDaemon();
      run.writeDaemonConfig(source === BUILT_IN ? null : resolve(source)); // the CLI follows it
    }
  } catch (e) {
    await claim?.release();
    throw e;
  }
  return claim ? [() => claim.release()] : [];
}

/** The config, the watched ports, the TTL rules and the lists, into the kernel (and the port report into the run dir). */
function writeKernelConfig(gw: Gateway, dests: Destinations, config: Config, watch: WatchSet, paths: Paths, run: RunDir): void {
  dests.sync(readHostAddresses(), config);
  gw.writeConfig(config);
  gw.writePorts(watch);
  gw.writeTtlRules(ttlRules(config));
  syncLists(gw, config, paths);
  run.writeWatch(watch);
}

/** Attaches to (or adopts) each interface present; all or nothing. Returns the interfaces now served. */
function attachInterfaces(gw: Gateway, present: string[], o: AttachOptions): string[] {
  const attached: AttachedIface[] = [];
  const served: string[] = [];
  try {
    for (const iface of present) {
      const ours = gw.attachedTo(iface);
      if (ours) {
        served.push(iface);
        o.reporter.info(`${iface}: already attached in ${ours.mode} mode (program id ${ours.progId}); adopting it`);
        continue;
      }
      const a = gw.attach(iface, o.mode);
      attached.push(a);
      served.push(iface);
      if (o.mode === 'auto' && a.mode === 'generic') {
        o.reporter.info(`${iface}: the driver has no native XDP; attached in generic (skb) mode`);
      }
      o.reporter.info(`attached to ${iface} in ${a.mode} mode (program id ${a.progId})`);
    }
  } catch (e) {
    for (const a of attached) detachIface(o.paths.pinRoot, a.name); // all or nothing
    throw e;
  }
  return served;
}

/** What the kernel now does: the config, the watched ports, the scope, and what to look at twice. */
function describeStart(gw: Gateway, config: Config, source: string, watch: WatchSet, rep: Reporter): void {
  rep.info(describeConfig(config, source));
  for (const line of summarizeWatch(watch)) rep.info(line);
  for (const line of describeScope(config, gw.features())) rep.info(line);
  for (const w of configWarnings(config, readEphemeralRange(), readHostAddresses())) rep.info(`warning: ${w}`);
}

export async function attach(o: AttachOptions): Promise<void> {
  requirePrivileges('attach');
  const { config, source } = loadCheckedConfig(o.config);
  checkPinRoot(o.paths.pinRoot); // refused before anything is claimed, written or mounted
  const present = presentInterfaces(o);
  const run = new RunDir(o.paths.runDir);
  const running = run.daemonPid();
  refuseServed(o, running);
  const cleanup = await claimDaemon(o, config, source, run);
  let gw: Gateway | undefined;
  try {
    gw = Gateway.open(o.paths.pinRoot); // loads and pins the program, or reuses the pinned one
    const dests = new Destinations(gw.obj);
    const watch = computeWatchSet(config, readListeners());
    // one authority: while a daemon runs, only its config goes into the kernel (an
    // `attach IFACE --no-daemon` without -c must not write the defaults under it)
    const daemonRuns = !o.daemon && running;
    if (!daemonRuns) writeKernelConfig(gw, dests, config, watch, o.paths, run);
    const served = attachInterfaces(gw, present, o);
    if (daemonRuns) {
      o.reporter.info(`a daemon runs (pid ${running}): the kernel keeps its config, and it supervises ${served.join(', ')} from now on`);
      return;
    }
    describeStart(gw, config, source, watch, o.reporter);
    if (!o.daemon) return;
    await serve({ o, config, gw, dests, run, watch, served, cleanup });
  } finally {
    for (const c of cleanup.reverse()) await c().catch(() => {});
    gw?.close();
    if (o.daemon) run.releaseDaemon();
  }
}

/** What `attach` hands the daemon. */
interface Start {
  o: AttachOptions;
  /** Changed in place by a reload: everything wired below reads it. */
  config: Config;
  gw: Gateway;
  dests: Destinations;
  run: RunDir;
  watch: WatchSet;
  served: string[];
  /** Run in reverse at exit, whatever happens. */
  cleanup: Cleanup[];
}

type Effects = ReturnType<typeof configuredEffects>;

/** The daemon's parts, wired once at start. */
interface Wired extends Start {
  rep: Reporter;
  history: HistoryStore;
  nft: NftSync | undefined;
  gateway: string;
  effects: Effects['effects'];
  hooks: Effects['runner'];
  service: BanService;
}

/** The outputs, the history store, nftables, the hooks and the one ban lifecycle over them. */
function wire(s: Start): Wired {
  const { config, cleanup } = s;
  const outputs = makeOutputs(config, s.o.reporter, (l) => s.o.reporter.info(l));
  cleanup.push(() => outputs.close());
  const rep = outputs.reporter;
  const history = openHistory(config, s.o.paths, (l) => rep.info(l));
  cleanup.push(() => history.close());
  const nft = config.nft.enabled ? new NftSync(new Nft({ table: config.nft.table }), (l) => rep.info(l), config.nft.table) : undefined;
  const gateway = gatewayName(config);
  const { effects, runner: hooks } = configuredEffects(
    config,
    (l) => rep.info(l),
    (target, line) => rep.unban(target, line),
  );
  cleanup.push(() => hooks.idle());
  const service = new BanService(s.gw, history, nft, gateway, effects);
  return { ...s, rep, history, nft, gateway, effects, hooks, service };
}

/** Runs the daemon until a signal or `detach --all`, then says what stays. */
async function serve(s: Start): Promise<void> {
  const d = wire(s);
  const fleetFrom = await restoreBans(d);
  const restoredAtNs = kernelClockNs();
  tidyJournal(d);
  startHousekeeping(d);
  const n = await d.nft?.reconcile(new BanTable(d.gw.obj));
  if (n !== undefined) d.rep.info(`nftables: table inet ${d.config.nft.table} holds the ${n} ban(s) in force`);
  const fleetAdded = startFleet(d, fleetFrom);
  const peers = followPeers(d.gw, d.rep);
  if (peers) d.cleanup.push(async () => peers.stop());
  const supervisor = new InterfaceSupervisor(d.gw, d.o.mode, [...d.o.ifaces], (l) => d.rep.info(l));
  for (const a of d.served) supervisor.attached(a, d.gw.attachedTo(a)?.mode ?? 'unknown');
  const names = interfaceNames();
  d.rep.info(`PortSentry-compatible alerts follow; pins in ${d.o.paths.pinRoot}; Ctrl-C stops the daemon, bans stay enforced`);
  const live = new LiveFollower(d, supervisor, names.clear);
  process.on('SIGHUP', live.onHup);
  d.cleanup.push(async () => void process.off('SIGHUP', live.onHup));
  live.metrics = await startMetrics(d);
  const why = await runDaemon(d.gw, {
    reporter: d.rep,
    onLoop: () => live.tick(fleetAdded()),
    signal: d.o.signal,
    config: d.config,
    history: d.history,
    gateway: d.gateway,
    bans: d.service,
    effects: d.effects,
    nft: d.nft,
    restoredAtNs,
    refreshLists: () => syncLists(d.gw, d.config, d.o.paths),
    ifname: names.ifname,
    // bounded: this host's address, or the protected network (never one series per LAN host)
    destinationLabel: (ev) => (ev.dscope === DEST_NET ? (networkOf(ev.destination, d.config.protect.networks) ?? 'protected network') : ev.destination),
    onTick: daemonStatsWriter(d, live, peers, supervisor),
  });
  await d.hooks.idle();
  reportStop(why, d.o, supervisor);
}

/** Writes the daemon's totals into the run dir for `status`, at most once a second; keeps the expiry counts for the metrics. */
function daemonStatsWriter(
  d: Wired,
  live: LiveFollower,
  peers: PeerTracker | undefined,
  supervisor: InterfaceSupervisor,
): NonNullable<DaemonOptions['onTick']> {
  let lastStats = 0;
  return (t) => {
    live.expiredByOrigin = t.expiredByOrigin;
    if (Date.now() - lastStats < 1000) return;
    lastStats = Date.now();
    d.run.writeDaemonStats({ ...t, hooks: d.hooks.stats(), livePeers: peers ? peers.stats().peers : null, interfaces: supervisor.states() });
  };
}

function reportStop(why: 'signal' | 'removed', o: AttachOptions, supervisor: InterfaceSupervisor): void {
  if (why === 'removed') {
    o.reporter.info(`the pinned program was removed from ${o.paths.pinRoot} (detach --all); the daemon stops`);
  } else if (o.detachOnExit) {
    for (const iface of supervisor.wanted) detachIface(o.paths.pinRoot, iface);
    o.reporter.info(`detached from ${supervisor.wanted.join(', ')} (--detach-on-exit)`);
  } else {
    o.reporter.info('daemon stopped; the program stays attached and bans stay enforced');
  }
}

/** Interface names by index, cached until the supervisor sees the links change. */
function interfaceNames(): { ifname: (i: number) => string; clear: () => void } {
  const names = new Map<number, string>();
  return {
    ifname: (i) => {
      let n = names.get(i);
      if (!n) names.set(i, (n = ifIndexToName(i) ?? `if${i}`));
      return n;
    },
    clear: () => names.clear(),
  };
}

/**
 * Bans in force in the store that the kernel lacks (a reboot wiped bpffs, or kill -9 and a wipe).
 * Returns where the fleet reader takes over (the restore covers every fleet ban made before), or
 * undefined when the reader is to catch up by itself.
 */
async function restoreBans(d: Wired): Promise<string | undefined> {
  try {
    let fleetFrom: string | undefined;
    if (d.history instanceof RedisStore) {
      if (!(await d.history.ready(3000))) throw new Error('redis: not reachable');
      if (d.config.redis && d.config.fleet.receive) fleetFrom = await fleetMark(d.history.client, d.config.redis);
    }
    await restoreFromStore(d);
    return fleetFrom;
  } catch (e) {
    d.rep.info(`history: cannot restore bans (${(e as Error).message.split(';')[0]}); the kernel table is used as it is`);
    return undefined;
  }
}

async function restoreFromStore({ config, gw, history, service, gateway, rep, o }: Wired): Promise<void> {
  const t0 = Date.now();
  const table = new BanTable(gw.obj);
  // a gateway that does not follow the fleet takes back only its own bans; the allow and never-ban lists win
  const foreign = !config.redis || config.fleet.receive;
  const protect = currentProtected(config, o.paths);
  let refused = 0;
  const onRefused = (target: string, why: string) => {
    if (++refused <= 10) rep.info(`not restoring the ban of ${target}: ${why}`);
  };
  const keep = (b: BanRecord) => {
    if (!foreign && b.gateway && b.gateway !== gateway) return false;
    const why = refusal(b.target, protect);
    if (why) onRefused(b.target, why);
    return !why;
  };
  const madeBefore = gw.stats().BANS_ADDED ?? 0n;
  // into an empty table (a fresh boot) the fast path; the bans the XDP program made meanwhile are not from the store
  let restored: number;
  if (table.size() === 0) {
    restored = Math.max(
      0,
      (await service.restoreStream(history.streamBans(), { foreign, protect, refused: onRefused })) - Number((gw.stats().BANS_ADDED ?? 0n) - madeBefore),
    );
  } else {
    // a restart with the pins kept: put back what the kernel lacks, and end the fleet bans lifted meanwhile
    const live = await history.liveBans(Date.now());
    restored = await service.restore(live.filter(keep), { nft: false });
    if (history instanceof RedisStore && config.fleet.receive) {
      const lifted = await service.liftStaleFleet(new Set(live.map((b) => b.target)));
      if (lifted.length) rep.info(`fleet: ${lifted.length} fleet ban(s) were lifted on other gateways while this one was away; lifted here too`);
    }
  }
  if (refused > 10) rep.info(`... and ${refused - 10} more ban(s) not restored for the same reasons`);
  if (restored) rep.info(`restored ${restored} ban(s) in force from the ${history.kind} in ${Date.now() - t0} ms`);
}

/** The journal's problems said, and the journal compacted when over its size (after the restore, so that the bans are back first). */
function tidyJournal({ history, config, rep }: Wired): void {
  if (!(history instanceof JournalStore)) return;
  for (const p of history.problems.splice(0)) rep.info(`journal: ${p}`);
  const t0 = Date.now();
  try {
    if (history.bans.compactIfLarger(config.history.max_bytes, Date.now())) rep.info(`journal: compacted to the bans in force in ${Date.now() - t0} ms`);
  } catch (e) {
    rep.info(`journal: cannot compact (${(e as Error).message.split('\n')[0]}); it goes on growing until this is fixed`);
  }
}

/** The store's housekeeping (Redis: a fresh snapshot for the next restore, when due), now and every minute. */
function startHousekeeping({ history, rep, cleanup }: Wired): void {
  const store: HistoryStore = history;
  if (!store.maintain) return;
  const maintain = store.maintain.bind(store);
  const housekeeping = () =>
    void maintain().then(
      (l) => l && rep.info(l),
      (e: Error) => rep.info(`history: housekeeping failed (${e.message.split('\n')[0]})`),
    );
  housekeeping();
  const timer = setInterval(housekeeping, 60_000);
  timer.unref();
  cleanup.push(async () => clearInterval(timer));
}

/** Follows the other gateways' bans when the config says so. Returns the count of fleet bans applied since start (metrics). */
function startFleet(d: Wired, fleetFrom: string | undefined): () => number {
  let fleetAdded = 0;
  const { config, gateway, rep } = d;
  if (config.redis && config.fleet.receive) {
    const fleet = new FleetReader(
      { ...config.redis },
      gateway,
      fleetHandlers(d.service, config, d.o.paths, rep, (n) => (fleetAdded += n)),
    );
    fleet.start(fleetFrom);
    d.cleanup.push(() => fleet.stop());
    rep.info(`fleet: gateway "${gateway}" ${config.fleet.send ? 'shares its bans and ' : ''}follows the others' on redis`);
  }
  return () => fleetAdded;
}

/** The Prometheus endpoint when enabled; a port that cannot be had is said, and the daemon goes on without. */
async function startMetrics({ config, rep, cleanup }: Wired): Promise<Metrics | undefined> {
  if (!config.metrics.enabled) return undefined;
  const metrics = new Metrics({ host: config.metrics.host, port: config.metrics.port });
  try {
    const { url } = await metrics.start();
    rep.info(`metrics: ${url}`);
    cleanup.push(() => metrics.stop());
  } catch (e) {
    rep.info(`metrics: cannot listen on ${config.metrics.host}:${config.metrics.port} (${(e as Error).message.split('\n')[0]}); going on without`);
  }
  return metrics;
}

/**
 * What the daemon follows while it runs, on every loop turn: SIGHUP reloads the config, the watched
 * ports follow the host's listening sockets, the protected addresses follow the host's, the metrics.
 */
class LiveFollower {
  private reloadWanted = false;
  private nextWatch = 0;
  private nextMetrics = 0;
  private current: WatchSet;
  private lastHeard: Listeners = readListeners();
  private readonly nftTable: string;
  metrics: Metrics | undefined;
  /** From onTick, in the same loop turn as the metrics read. */
  expiredByOrigin: Readonly<Record<string, number>> | undefined;

  constructor(
    private readonly d: Wired,
    private readonly supervisor: InterfaceSupervisor,
    private readonly linksChanged: () => void,
  ) {
    this.current = d.watch;
    this.nftTable = d.config.nft.table; // the one NftSync keeps (a reload does not move it)
  }

  readonly onHup = (): void => {
    this.reloadWanted = true;
  };

  tick(fleetAdded: number): void {
    const now = Date.now();
    if (this.reloadWanted) {
      this.reloadWanted = false;
      this.reload();
    }
    if (now >= this.nextWatch) {
      this.nextWatch = now + 1000;
      this.followHost();
    }
    if (this.metrics && now >= this.nextMetrics) {
      this.nextMetrics = now + 1000;
      const { gw, run, history, nft } = this.d;
      this.metrics.update(
        metricsSnapshot(gw, run, history, {
          expiredByOrigin: this.expiredByOrigin,
          fleetAdded,
          nft: nft ? { table: this.nftTable, healthy: nft.healthy } : undefined,
        }),
      );
    }
  }

  /**
   * Everything is validated (schema, ranges, map capacities) before the kernel is touched; the switch
   * of trigger and blocking (sentry_config) comes last. A config that fails leaves the running one.
   */
  private reload(): void {
    const { o, gw, dests, config, rep } = this.d;
    try {
      const next = loadCheckedConfig(o.config);
      const rules = ttlRules(next.config);
      dests.sync(readHostAddresses(), next.config);
      gw.writeTtlRules(rules);
      syncLists(gw, next.config, o.paths);
      gw.writeConfig(next.config);
      Object.assign(config, next.config);
      this.nextWatch = 0;
      rep.info(`reloaded ${next.source}: ${describeConfig(config, next.source).replace(/^config: [^;]*; /, '')}`);
    } catch (e) {
      const err = e as SentryError;
      rep.info(`reload refused, the running config stays: ${err.message}${err.hint ? `; ${err.hint}` : ''}`);
    }
  }

  /** The links, this host's addresses and its listening sockets, as they are now. */
  private followHost(): void {
    const { o, gw, run, dests, config, rep } = this.d;
    if (this.supervisor.tick()) this.linksChanged();
    const moved = dests.follow(readHostAddresses(), config);
    if (moved) syncLists(gw, config, o.paths); // the never-ban list follows them too (and remembers the ones that went)
    if (moved)
      rep.info(
        `this host's addresses changed (${[...moved.added.map((a) => `+${a}`), ...moved.removed.map((a) => `-${a}`)].join(' ')}); protecting what it holds now`,
      );
    const heard = readListeners();
    const w = computeWatchSet(config, heard);
    for (const line of watchChanges(this.current, w, this.lastHeard, heard)) rep.info(line);
    this.lastHeard = heard;
    if (JSON.stringify(w) !== JSON.stringify(this.current)) {
      gw.writePorts(w);
      run.writeWatch(w);
      this.current = w;
    }
  }
}

/** Why a stored or shared ban must not be applied here (protected, or not an address at all); undefined if it may. */
function refusal(target: string, protect: readonly Protected[]): string | undefined {
  try {
    return whyProtected(parseCidr(target), protect);
  } catch (e) {
    return (e as Error).message.split(';')[0];
  }
}

/** What a gateway does with the others' bans. Local allow and never-ban lists win. */
function fleetHandlers(service: BanService, config: Config, paths: Paths, reporter: Reporter, applied: (n: number) => void = () => {}): FleetHandlers {
  const allowed = (target: string): boolean => {
    const why = refusal(target, currentProtected(config, paths));
    if (why) reporter.info(`fleet: not applying the ban of ${target}: ${why}`);
    return !why;
  };
  return {
    ban: async (b) => {
      if (!allowed(b.target)) return;
      service.table.remove(parseCidr(b.target)); // a newer ban of the same target replaces ours
      applied(await service.restore([b], { origin: 'fleet' }));
      reporter.emit(fleetBanEvent(b, new Date()));
    },
    unban: async (u) => {
      const on = u.gateway ?? '?';
      await service.unban([parseCidr(u.target)], `fleet:${on}`, { cause: 'fleet', why: `lifted on gateway ${on} (fleet)`, line: `lifted on gateway ${on}` });
    },
    catchUp: async (bans) => {
      const n = await service.restore(
        bans.filter((b) => allowed(b.target)),
        { origin: 'fleet' },
      );
      applied(n);
      if (n) reporter.info(`fleet: caught up with ${n} ban(s) made while this gateway was away`);
      const lifted = await service.liftStaleFleet(new Set(bans.map((b) => b.target)));
      if (lifted.length) reporter.info(`fleet: ${lifted.length} fleet ban(s) were lifted on other gateways while this one was away; lifted here too`);
    },
    report: (l) => reporter.info(l),
  };
}

export async function detach(ifaces: string[], all: boolean, paths: Paths, configPath?: string): Promise<string[]> {
  requirePrivileges('detach');
  if (all) {
    let config: Config | undefined;
    try {
      config = loadConfig(configPath).config;
    } catch {
      /* a broken config must not stop a clean-up */
    }
    // every ban goes with the maps: say so in history, or a restart would restore them
    let gw: Gateway | undefined;
    try {
      gw = config && existsSync(`${paths.pinRoot}/prog`) ? Gateway.open(paths.pinRoot) : undefined;
    } catch {
      /* maps of another version: removed below without reading them (their bans stay in history and come back) */
    }
    if (config && gw) {
      // the one ban lifecycle: history, the hosts.deny lines and UNBAN_CMD (the nft table goes below)
      const history = openHistory(config, paths, () => {});
      const { effects, idle } = configuredEffects(config, () => {});
      try {
        await new BanService(gw, history, undefined, gatewayName(config), effects).unbanAll('detach', {
          cause: 'detach',
          why: 'detach --all',
          line: 'detach --all',
        });
        await idle();
      } finally {
        gw.close();
        await history.close();
      }
    }
    const gone = removeAll(paths.pinRoot);
    new RunDir(paths.runDir).clear();
    const table = config?.nft.table ?? 'sentry_xdp';
    try {
      const nft = new Nft({ table });
      if (await nft.exists()) await nft.drop();
    } catch {
      /* no nft: nothing of ours there */
    }
    return gone;
  }
  if (!ifaces.length) throw new SentryError('USAGE', 'detach: name an interface, or use --all', 'e.g. `sentry-xdp detach eth0`');
  const linksDir = `${paths.pinRoot}/links`;
  const known = new Set(listInterfaces(linksDir).map((i) => i.name));
  for (const iface of ifaces) {
    if (!known.has(iface)) {
      throw new SentryError('NOT_ATTACHED', `sentry-xdp is not attached to ${iface}`, 'see `sentry-xdp status`');
    }
  }
  for (const iface of ifaces) detachIface(paths.pinRoot, iface);
  return ifaces;
}

export interface Status {
  pinRoot: string;
  /** The config file the CLI and the daemon use (or "built-in defaults"). */
  config: string;
  loaded: boolean;
  daemonPid: number | null;
  daemon: Record<string, unknown> | null;
  interfaces: StatusIface[];
  /** The kernel's counters, camelCase (probeSyn, rbLost), as numbers (exact below 2^53). */
  counters: Record<string, number>;
  bansInForce: number;
  watch: WatchSet | null;
  /** What a probe may be addressed to, as the kernel holds it. */
  scope?: { hostAddresses: string[]; networks: string[]; servicePorts: number };
  /** How connections are recognised: local sockets always; conntrack lookups where the kernel has them; live peers while a daemon follows conntrack. */
  awareness?: { sockets: true; conntrack: boolean; livePeers: number | null };
  /** Loaded as multi-buffer XDP (xdp.frags). */
  multiBuffer?: boolean;
  /**
   * ok: a daemon runs and everything asked for is protected; degraded: something is not (`problems`
   * says what); down: nothing is loaded, or no daemon runs (the kernel still enforces the bans it holds).
   */
  health: Health;
  problems: string[];
}

export type Health = 'ok' | 'degraded' | 'down';

/** `status`'s exit code, as LSB init scripts and systemctl say it: 0 running and fine, 1 degraded, 3 not running. */
export const STATUS_EXIT: Readonly<Record<Health, number>> = { ok: 0, degraded: 1, down: 3 };

/**
 * The verdict of `status` on what is loaded: down without a daemon; degraded when an interface asked
 * for is not attached, or the daemon's totals in the run dir say nftables or the history store fail.
 */
export function healthOf(daemonPid: number | null, interfaces: StatusIface[], daemon: Record<string, unknown> | null): { health: Health; problems: string[] } {
  if (!daemonPid) return { health: 'down', problems: ['no daemon is running (the kernel still enforces the bans it holds)'] };
  const out = interfaces.filter((i) => i.state !== 'attached').map((i) => `${i.name}: ${i.state}${i.reason ? ` (${i.reason})` : ''}`);
  const d = daemon as { nftHealthy?: boolean | null; history?: { kind?: string; healthy?: boolean; error?: string } } | null;
  if (d?.nftHealthy === false) out.push('nftables: out of step with the kernel (see the daemon log)');
  if (d?.history && d.history.healthy === false)
    out.push(`history: the ${d.history.kind ?? 'history'} store is down${d.history.error ? ` (${d.history.error})` : ''}`);
  return { health: out.length ? 'degraded' : 'ok', problems: out };
}

export type StatusIface = AttachedIface & { state: 'attached' | 'waiting' | 'failed' | 'stale'; reason?: string };

/** The pinned links, as the daemon's supervisor sees them, and the interfaces it still waits for. */
function interfaceStates(pinned: AttachedIface[], daemon: Record<string, IfaceState> | undefined): StatusIface[] {
  const out: StatusIface[] = pinned.map((i) => {
    const d = daemon?.[i.name];
    return i.stale ? { ...i, state: d && d.state !== 'attached' ? d.state : 'stale', ...(d?.reason ? { reason: d.reason } : {}) } : { ...i, state: 'attached' };
  });
  for (const [name, d] of Object.entries(daemon ?? {})) {
    if (out.some((i) => i.name === name) || d.state === 'attached') continue;
    out.push({ name, ifindex: 0, progId: 0, mode: '-', stale: false, state: d.state, ...(d.reason ? { reason: d.reason } : {}) });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

export function status(paths: Paths): Status {
  requirePrivileges('status');
  const run = new RunDir(paths.runDir);
  const daemonConfig = run.daemonConfig();
  const base = {
    pinRoot: paths.pinRoot,
    // what the CLI uses here: the running daemon's config, else the default
    config: daemonConfig ? (daemonConfig.path ?? BUILT_IN) : (configFile() ?? BUILT_IN),
    daemonPid: run.daemonPid() ?? null,
    daemon: run.daemonPid() ? (run.readDaemonStats() ?? null) : null,
    watch: run.readWatch() ?? null,
  };
  if (!existsSync(`${paths.pinRoot}/prog`)) {
    return { ...base, loaded: false, interfaces: [], counters: {}, bansInForce: 0, health: 'down', problems: [`nothing is loaded in ${paths.pinRoot}`] };
  }
  const gw = Gateway.open(paths.pinRoot);
  try {
    const counters = Object.fromEntries(Object.entries(gw.stats()).map(([k, v]) => [camelKey(k), Number(v)]));
    const b = gw.bansInForce();
    const d = base.daemon as { livePeers?: number | null; interfaces?: Record<string, IfaceState> } | null;
    const peers = d?.livePeers;
    const interfaces = interfaceStates(gw.interfaces(), d?.interfaces);
    return {
      ...base,
      loaded: true,
      interfaces,
      ...healthOf(base.daemonPid, interfaces, base.daemon),
      counters,
      bansInForce: b.v4 + b.v6 + b.cidr4 + b.cidr6,
      scope: new Destinations(gw.obj).read(),
      awareness: { sockets: true, conntrack: (gw.features() & FEAT_CONNTRACK) !== 0, livePeers: peers ?? null },
      multiBuffer: (gw.features() & FEAT_FRAGS) !== 0,
    };
  } finally {
    gw.close();
  }
}

/** `reload`: SIGHUP to the running daemon. */
export function reload(paths: Paths): number {
  const run = new RunDir(paths.runDir);
  const pid = run.daemonPid(); // checked by identity: a stale pid file never gets an unrelated process signalled
  if (!pid) {
    const stale = run.stalePidNote();
    throw new SentryError('NOT_ATTACHED', `no sentry-xdp daemon is running${stale ? ` (${stale})` : ''}`, 'start it with `sentry-xdp attach IFACE`');
  }
  process.kill(pid, 'SIGHUP');
  return pid;
}

/** `config check`: the same validation the daemon does, and the same warnings. */
export function configCheck(file?: string): { source: string; warnings: string[] } {
  const { config, source } = loadCheckedConfig(file); // what attach takes, nothing less
  return { source, warnings: configWarnings(config, readEphemeralRange(), readHostAddresses()) };
}

/** `config import-portsentry`. */
export function importPortsentryFile(file: string, ignore?: string, modes?: string, output?: string): ImportResult {
  const read = (f: string, what: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch (e) {
      throw new SentryError('USAGE', `${f}: cannot read the ${what} (${(e as NodeJS.ErrnoException).code})`, 'check the path');
    }
  };
  const r = importPortsentry({
    conf: read(file, 'portsentry.conf'),
    confName: file,
    ...(ignore ? { ignore: read(ignore, 'ignore file'), ignoreName: ignore } : {}),
    ...(modes ? { modes: parseModes(modes) } : {}),
  });
  parseConfig(r.yaml, output ?? 'imported.yaml'); // never write what the daemon would refuse
  if (output) {
    if (existsSync(output)) throw new SentryError('USAGE', `${output} exists; not overwriting it`, 'choose another --output or remove it first');
    writeFileSync(output, r.yaml);
  }
  return r;
}
