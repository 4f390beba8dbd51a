/**
 * A Prometheus endpoint: GET /metrics on 127.0.0.1:9641 unless told otherwise.
 *
 * The daemon owns the numbers (kernel counters it reads from sentry_stats, its own ban and hook
 * totals) and hands them over as a snapshot through `update()`. Counters stay counters: each
 * family is a prom-client Counter whose series are replaced with the snapshot's absolute totals
 * (reset, then inc by the total, synchronously, so no scrape sees the gap). A Gauge named
 * `_total` would lie about the TYPE (promtool and Grafana treat it as a level, not a rate
 * source); a kernel counter that starts again from zero after `detach --all` is an ordinary
 * counter reset, which rate() and increase() already handle.
 *
 * Bound to loopback by default: the numbers tell a scanner what the gateway watches.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { SentryError } from '../errors.js';

const METRICS_DEFAULT_HOST = '127.0.0.1';
const METRICS_DEFAULT_PORT = 9641;
const PREFIX = 'sentry_xdp_';

type Count = bigint | number;
type BanOrigin = 'auto' | 'manual' | 'imported' | 'fleet';

export interface MetricsSnapshot {
  /** The kernel's counters by name (`passed`, `probe_syn`, ...; any case), as read from sentry_stats. */
  kernel: Record<string, Count>;
  /**
   * Probes per watched port, when the daemon keeps them: at most PROBES_BY_PORT_MAX numbered ports
   * (the daemon picks which), the rest summed under port 'other'. More numbered ports than that are
   * summed under 'other' here too, so a scrape never carries more than PROBES_BY_PORT_MAX + 2 series.
   */
  probesByPort?: Array<{ proto: 'tcp' | 'udp' | string; port: number | 'other'; count: Count }>;
  /** Alerts since the daemon started, by destination: this host's address, or the protected network. */
  alertsByDestination?: Record<string, Count>;
  /** Bans in the kernel table now, by who made them. */
  bansInForce: Partial<Record<BanOrigin | string, number>>;
  /** Bans added, by origin (see the HELP of bans_added_total for how each is counted). */
  bansAdded: Partial<Record<BanOrigin | string, Count>>;
  /** Bans that lapsed and were collected since the daemon started. */
  bansExpired: Count;
  /** Fill of each BPF map: entries now and max_entries. */
  mapFill: Record<string, { entries: number; max: number }>;
  historyStore: { kind: string; healthy: boolean; buffered: number; lost: Count };
  hooks?: { started: Count; ok: Count; failed: Count; timedOut: Count; dropped: Count };
  /** The nftables table and whether its sets are kept in step; absent when nft is off. */
  nft?: { table: string; healthy: boolean };
  /** What runs: package version, ABI, and which BPF object is loaded ('sentry' or 'sentry_noct', '+frags' when multi-buffer). */
  build?: { version: string; abi: number; program: string };
}

/** Numbered series of probes_by_port_total; probes of every other port are summed under port="other". */
export const PROBES_BY_PORT_MAX = 256;

export interface MetricsOptions {
  /** Address to bind; default 127.0.0.1. */
  host?: string;
  /** TCP port; default 9641; 0 picks a free one (tests). */
  port?: number;
  /** Registry to fill; default a fresh one (never prom-client's global). */
  registry?: Registry;
  /**
   * Also export Node's standard process_* and nodejs_* metrics (memory, CPU, event loop), under
   * their usual unprefixed names so stock dashboards work; default true.
   */
  processMetrics?: boolean;
  /**
   * Called on every scrape before the values are served, so they are never older than the
   * scrape (no timer needed). If it throws, the scrape gets a 500 and Prometheus marks the
   * target down. Without it, the values are those of the last `update()`.
   */
  source?: () => MetricsSnapshot;
}

/**
 * Kernel counters (Stat in src/core/abi.ts): snapshot name → metric family and labels. Each counter
 * is in exactly one series (test/unit/metrics.test.ts checks it against Stat); a counter missing here
 * shows up as kernel_counter_total{counter} rather than not at all.
 */
const KERNEL_COUNTERS: Record<string, { family: KernelFamily; labels?: Record<string, string> }> = {
  passed: { family: 'packets', labels: { verdict: 'pass' } },
  dropped: { family: 'packets', labels: { verdict: 'drop' } },
  probe_syn: { family: 'probes', labels: { kind: 'syn' } },
  probe_fin: { family: 'probes', labels: { kind: 'fin' } },
  probe_null: { family: 'probes', labels: { kind: 'null' } },
  probe_xmas: { family: 'probes', labels: { kind: 'xmas' } },
  probe_unknown: { family: 'probes', labels: { kind: 'unknown' } },
  probe_udp: { family: 'probes', labels: { kind: 'udp' } },
  probe_frag: { family: 'probes', labels: { kind: 'frag' } },
  probe_ack: { family: 'probes', labels: { kind: 'ack' } },
  probe_maimon: { family: 'probes', labels: { kind: 'maimon' } },
  probe_sweep: { family: 'probes', labels: { kind: 'sweep' } },
  probe_v6chain: { family: 'probes', labels: { kind: 'v6chain' } },
  // why a packet was passed before it could be a probe (each one a `return XDP_PASS` in the XDP program)
  allowed: { family: 'passed', labels: { reason: 'allowed' } },
  unparsed: { family: 'passed', labels: { reason: 'unparsed' } },
  non_ip: { family: 'passed', labels: { reason: 'non_ip' } },
  fragments: { family: 'passed', labels: { reason: 'fragment' } },
  not_protected: { family: 'passed', labels: { reason: 'not_protected' } },
  service: { family: 'passed', labels: { reason: 'service' } },
  local_socket: { family: 'passed', labels: { reason: 'local_socket' } },
  conntrack: { family: 'passed', labels: { reason: 'conntrack' } },
  evasion_dropped: { family: 'evasionDropped' },
  v6_chain_long: { family: 'v6ChainLong' },
  bans_deferred: { family: 'bansDeferred' },
  alerts_summarised: { family: 'alertsSummarised' },
  alerts: { family: 'alerts' },
  bans_added: { family: 'kernelBans' },
  ban_table_full: { family: 'banTableFull' },
  ban_capped: { family: 'banCapped' },
  never_ban: { family: 'neverBan' },
  rb_lost: { family: 'rbLost' },
  live_peer: { family: 'possiblySpoofed' },
  expired_hits: { family: 'expiredHits' },
};

type KernelFamily =
  | 'packets'
  | 'passed'
  | 'probes'
  | 'alerts'
  | 'kernelBans'
  | 'banTableFull'
  | 'banCapped'
  | 'neverBan'
  | 'rbLost'
  | 'possiblySpoofed'
  | 'evasionDropped'
  | 'v6ChainLong'
  | 'bansDeferred'
  | 'alertsSummarised'
  | 'expiredHits'
  | 'other';

/** A finite, non-negative number, or undefined (a counter never goes below zero). */
function total(v: Count | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === 'bigint' ? Number(v) : v;
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

function level(v: number | undefined): number | undefined {
  return v !== undefined && Number.isFinite(v) ? v : undefined;
}

export class Metrics {
  readonly registry: Registry;
  readonly host: string;
  readonly port: number;
  private server: Server | undefined;
  private readonly source: (() => MetricsSnapshot) | undefined;
  private readonly kernel: Record<KernelFamily, Counter<string>>;
  private readonly probesByPort: Counter<string>;
  private readonly alertsByDestination: Counter<string>;
  private readonly bansInForce: Gauge<string>;
  private readonly bansAdded: Counter<string>;
  private readonly bansExpired: Counter<string>;
  private readonly mapEntries: Gauge<string>;
  private readonly mapMax: Gauge<string>;
  private readonly historyHealthy: Gauge<string>;
  private readonly historyBuffered: Gauge<string>;
  private readonly historyLost: Counter<string>;
  private readonly hooksStarted: Counter<string>;
  private readonly hookResults: Counter<string>;
  private readonly hooksDropped: Counter<string>;
  private readonly nftHealthy: Gauge<string>;
  private readonly buildInfo: Gauge<string>;
  private readonly lastUpdate: Gauge<string>;

  constructor(opts: MetricsOptions = {}) {
    this.host = opts.host ?? METRICS_DEFAULT_HOST;
    this.port = opts.port ?? METRICS_DEFAULT_PORT;
    if (!Number.isInteger(this.port) || this.port < 0 || this.port > 65535) {
      throw new SentryError('CONFIG', `metrics port ${this.port} is not a TCP port`, 'use a port from 1 to 65535');
    }
    this.source = opts.source;
    const registry = opts.registry ?? new Registry();
    this.registry = registry;
    const registers = [registry];
    const counter = (name: string, help: string, labelNames: string[] = []) => new Counter({ name: PREFIX + name, help, labelNames, registers });
    const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name: PREFIX + name, help, labelNames, registers });

    this.kernel = {
      packets: counter('packets_total', 'Packets the XDP program gave a verdict, by verdict (pass, drop).', ['verdict']),
      passed: counter(
        'packets_passed_total',
        'Packets passed before they could count as a probe, by reason: allowed (the allow list), unparsed (truncated or malformed header: fail open), ' +
          'non_ip (neither IPv4 nor IPv6), fragment (a later IP fragment, no L4 header), not_protected (to a destination not protected), ' +
          'service (to a listed service), local_socket (a local socket owns it), conntrack (a connection the kernel knows). ' +
          'Ordinary traffic and probes under the trigger are passed without a reason: this is a part of packets_total{verdict="pass"}, not a breakdown of it.',
        ['reason'],
      ),
      probes: counter(
        'probes_total',
        'Probes recognised by the XDP program, by kind (syn, fin, null, xmas, unknown, udp, frag, ack, maimon, sweep: packets that reached one more protected host, v6chain).',
        ['kind'],
      ),
      alerts: counter('alerts_total', 'Scan alerts raised by the XDP program (one per source per scan).'),
      kernelBans: counter(
        'kernel_bans_added_total',
        'Bans the XDP program inserted itself on a scan. Deprecated: the same count as bans_added_total{origin="auto"}.',
      ),
      banTableFull: counter('ban_table_full_total', 'Bans the XDP program could not insert because the ban table was full.'),
      banCapped: counter('bans_capped_total', 'Automatic bans refused by the per-minute ban cap.'),
      neverBan: counter('never_ban_alerts_total', 'Alerts whose source is on the never-ban list (alerted, not banned).'),
      rbLost: counter('ringbuf_lost_events_total', 'Events dropped because the ring buffer to the daemon was full.'),
      evasionDropped: counter(
        'evasion_fragments_dropped_total',
        'Fragments no stack sends (a first fragment too short for its L4 header, or one overlapping it), dropped wherever they were going.',
      ),
      v6ChainLong: counter(
        'ipv6_long_chains_total',
        'IPv6 packets with more extension headers than the parser follows (bans still apply; probes when to a protected destination).',
      ),
      bansDeferred: counter(
        'flood_bans_deferred_total',
        'Trigger crossings not banned during a flood of single probes (one port, no sweep): their next probe to another port bans them.',
      ),
      alertsSummarised: counter(
        'alerts_summarised_total',
        'Alerts without a ban over the per-second limit: counted in the one-a-second summary line, not logged one by one.',
      ),
      possiblySpoofed: counter(
        'possibly_spoofed_alerts_total',
        'Alerts not banned because the source has a live connection to or through this host (the probe may be forged).',
      ),
      expiredHits: counter('expired_ban_hits_total', 'Packets from a source whose ban had lapsed (judged afresh).'),
      other: counter('kernel_counter_total', 'Kernel counters this version has no dedicated metric for, by counter name.', ['counter']),
    };
    this.probesByPort = counter(
      'probes_by_port_total',
      `Probes per watched port, by protocol and port, as the kernel counts them. Bounded: the first ${PROBES_BY_PORT_MAX} ports probed (the most probed first) ` +
        'keep a series of their own while the daemon runs; probes of every other port are summed under port="other" (one per protocol).',
      ['proto', 'port'],
    );
    this.alertsByDestination = counter(
      'alerts_by_destination_total',
      "Alerts since the daemon started, by destination probed: this host's address, or the protected network it lies in.",
      ['destination'],
    );
    this.bansInForce = gauge('bans_in_force', 'Bans in the kernel table now, by origin (auto, manual, imported, fleet); refreshed every 10 s.', ['origin']);
    this.bansAdded = counter(
      'bans_added_total',
      'Bans added, by origin. auto: bans the XDP program made (its own counter, since the program was loaded). ' +
        'fleet: bans of other gateways this daemon applied since it started. manual, imported: bans the CLI put in the kernel table, ' +
        'counted by the daemon every 10 s as the growth of bans in force of that origin plus those it expired meanwhile ' +
        '(a ban that replaces one of the same origin, or one made and lifted within 10 s, is not counted).',
      ['origin'],
    );
    this.bansExpired = counter('bans_expired_total', 'Bans that lapsed and were collected by the daemon since it started.');
    this.mapEntries = gauge('map_entries', 'Entries in each BPF map now.', ['map']);
    this.mapMax = gauge('map_max_entries', 'Capacity (max_entries) of each BPF map.', ['map']);
    this.historyHealthy = gauge('history_store_healthy', '1 when the history store (redis or journal) accepts writes, else 0.', ['kind']);
    this.historyBuffered = gauge('history_store_buffered_events', 'History events waiting in memory for the store.', ['kind']);
    this.historyLost = counter('history_store_lost_events_total', 'History events dropped because the store was unavailable and the buffer full.', ['kind']);
    this.hooksStarted = counter('hooks_started_total', 'Hook commands (KILL_ROUTE, KILL_RUN_CMD, ...) started.');
    this.hookResults = counter('hook_results_total', 'Hook commands finished, by result (ok, failed, timed_out).', ['result']);
    this.hooksDropped = counter('hooks_dropped_total', 'Hook commands not started because too many were queued.');
    this.nftHealthy = gauge(
      'nft_healthy',
      '1 while the sets of nftables table inet <table> are kept in step with the kernel ban table, 0 since an nft command failed (XDP blocking goes on); absent when nft is off.',
      ['table'],
    );
    this.buildInfo = gauge(
      'build_info',
      'Always 1: the sentry-xdp version, the kernel/user ABI version, and the BPF program loaded (sentry: with conntrack lookups, sentry_noct: without; "+frags": multi-buffer XDP).',
      ['version', 'abi', 'program'],
    );
    this.lastUpdate = gauge('last_update_timestamp_seconds', 'When the daemon last refreshed these metrics (Unix time); stale means a stuck daemon.');

    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  }

  /** Replaces every sentry_xdp_ value with the snapshot's. Never throws on odd values: it skips them. */
  update(s: MetricsSnapshot): void {
    for (const c of Object.values(this.kernel)) c.reset();
    for (const [rawName, v] of Object.entries(s.kernel)) {
      const n = total(v);
      if (n === undefined) continue;
      const name = rawName.toLowerCase();
      const known = KERNEL_COUNTERS[name];
      if (!known) this.kernel.other.inc({ counter: name }, n);
      else if (known.labels) this.kernel[known.family].inc(known.labels, n);
      else this.kernel[known.family].inc(n);
    }

    this.probesByPort.reset();
    const numbered = new Set<string>();
    for (const p of s.probesByPort ?? []) {
      const n = total(p.count);
      if (n === undefined) continue;
      const proto = String(p.proto).toLowerCase();
      let port = String(p.port);
      if (port !== 'other' && !numbered.has(`${proto}/${port}`)) {
        if (numbered.size < PROBES_BY_PORT_MAX) numbered.add(`${proto}/${port}`);
        else port = 'other'; // a guard: the daemon already bounds them
      }
      this.probesByPort.inc({ proto, port }, n);
    }

    this.alertsByDestination.reset();
    for (const [destination, v] of Object.entries(s.alertsByDestination ?? {})) {
      const n = total(v);
      if (n !== undefined) this.alertsByDestination.inc({ destination }, n);
    }

    this.bansInForce.reset();
    for (const [origin, v] of Object.entries(s.bansInForce)) {
      const n = level(v);
      if (n !== undefined) this.bansInForce.set({ origin }, n);
    }
    this.bansAdded.reset();
    for (const [origin, v] of Object.entries(s.bansAdded)) {
      const n = total(v);
      if (n !== undefined) this.bansAdded.inc({ origin }, n);
    }
    this.bansExpired.reset();
    this.bansExpired.inc(total(s.bansExpired) ?? 0);

    this.mapEntries.reset();
    this.mapMax.reset();
    for (const [map, f] of Object.entries(s.mapFill)) {
      const entries = level(f.entries);
      const max = level(f.max);
      if (entries !== undefined) this.mapEntries.set({ map }, entries);
      if (max !== undefined) this.mapMax.set({ map }, max);
    }

    const h = s.historyStore;
    this.historyHealthy.reset();
    this.historyBuffered.reset();
    this.historyLost.reset();
    this.historyHealthy.set({ kind: h.kind }, h.healthy ? 1 : 0);
    this.historyBuffered.set({ kind: h.kind }, level(h.buffered) ?? 0);
    this.historyLost.inc({ kind: h.kind }, total(h.lost) ?? 0);

    this.hooksStarted.reset();
    this.hookResults.reset();
    this.hooksDropped.reset();
    if (s.hooks) {
      this.hooksStarted.inc(total(s.hooks.started) ?? 0);
      this.hookResults.inc({ result: 'ok' }, total(s.hooks.ok) ?? 0);
      this.hookResults.inc({ result: 'failed' }, total(s.hooks.failed) ?? 0);
      this.hookResults.inc({ result: 'timed_out' }, total(s.hooks.timedOut) ?? 0);
      this.hooksDropped.inc(total(s.hooks.dropped) ?? 0);
    }

    this.nftHealthy.reset();
    if (s.nft) this.nftHealthy.set({ table: s.nft.table }, s.nft.healthy ? 1 : 0);
    this.buildInfo.reset();
    if (s.build) this.buildInfo.set({ version: s.build.version, abi: String(s.build.abi), program: s.build.program }, 1);

    this.lastUpdate.set(Date.now() / 1000);
  }

  /** Listens; resolves with the scrape URL once bound. */
  async start(): Promise<{ url: string }> {
    if (this.server) throw new Error('metrics endpoint already started');
    const server = createServer((req, res) => void this.handle(req, res));
    // A scraper that holds a connection open must not keep a stopping daemon alive.
    server.keepAliveTimeout = 5000;
    this.server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: this.host, port: this.port, exclusive: true }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      this.server = undefined;
      const err = e as NodeJS.ErrnoException;
      throw new SentryError(
        'IO',
        `metrics: cannot listen on ${this.hostPort(this.port)}: ${err.code ?? err.message}`,
        err.code === 'EADDRINUSE'
          ? 'another program uses that port: pick another metrics port, or stop it'
          : 'check the metrics host: it must be an address of this machine',
      );
    }
    const addr = server.address() as AddressInfo;
    return { url: `http://${this.hostPort(addr.port)}/metrics` };
  }

  /** Stops listening and closes open connections; resolves when the socket is closed. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private hostPort(port: number): string {
    return `${this.host.includes(':') ? `[${this.host}]` : this.host}:${port}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found; metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('use GET\n');
      return;
    }
    try {
      if (this.source) this.update(this.source());
      const body = await this.registry.metrics();
      res.writeHead(200, { 'Content-Type': this.registry.contentType });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (e) {
      res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`metrics: ${(e as Error).message}\n`);
    }
  }
}
