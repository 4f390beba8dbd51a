/**
 * The daemon's pipeline on fake adapters (no root, no kernel): a ring-buffer
 * record in, the right calls out. The BanService and BanEffects are the real
 * ones; beneath them history, nft, the hooks' runner and the kernel ban table
 * are fakes that record what they are asked to do.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEST_HOST, DEST_NET, EV_F_BANNED, EV_F_LIVE_PEER, Origin, type AlertEvent, type BanValue } from '../../src/core/abi.js';
import type { Cidr } from '../../src/core/addr.js';
import { defaultConfig, type Config } from '../../src/core/config.js';
import { probeFromWire, type Probe } from '../../src/core/events.js';
import type { HistoryEvent } from '../../src/core/records.js';
import { Kind } from '../../src/core/scan-kind.js';
import type { HistoryStore } from '../../src/adapters/history.js';
import { BanEffects, type Hooks } from '../../src/daemon/ban-effects.js';
import type { BanEntry } from '../../src/daemon/ban-table.js';
import { BanService, type NftBans } from '../../src/daemon/bans.js';
import { EventPipeline, makeReporter, runLoop, type BanTableView, type KernelSide, type OffenderLog, type PipelineDeps } from '../../src/daemon/daemon.js';
import type { Gateway } from '../../src/daemon/gateway.js';

const WALL = Date.parse('2026-11-22T02:34:22.000Z');
const CLOCK = 5_000_000_000_000; // the kernel clock at WALL (ns)
const S = 1e9;

/** One struct sx_event as decodeEvent returns it: a SYN to TCP 23, `flags` as the kernel set them. */
function wire(flags: number, over: Partial<AlertEvent> = {}): AlertEvent {
  return {
    tsNs: CLOCK - 0.5 * S,
    expiresNs: flags & EV_F_BANNED ? CLOCK - 0.5 * S + 600 * S : 0,
    source: '198.18.0.2',
    destination: '198.18.0.1',
    dscope: DEST_HOST,
    ifindex: 7,
    probes: 1,
    port: 23,
    family: 2,
    type: 0,
    proto: 6,
    kind: Kind.SYN,
    tcpFlags: 0x02,
    flags,
    ...over,
  };
}

const probe = (flags: number, over: Partial<AlertEvent> = {}): Probe =>
  probeFromWire(wire(flags, over), { clockNowNs: CLOCK, wallNowMs: WALL }, (i) => `veth${i}`);

/** The kernel ban table, in memory. */
class FakeTable implements BanTableView {
  readonly bans = new Map<string, BanValue>();
  get(c: Cidr) {
    return this.bans.get(c.text);
  }
  add(c: Cidr, v: BanValue) {
    this.bans.set(c.text, v);
  }
  size() {
    return this.bans.size;
  }
  evictAuto(): BanEntry[] {
    return [];
  }
  sweepExpired(nowNs: bigint): BanEntry[] {
    const out: BanEntry[] = [];
    for (const [target, value] of this.bans) {
      if (value.expiresNs === 0n || value.expiresNs > nowNs) continue;
      this.bans.delete(target);
      out.push({ target, family: 4, map: 'sentry_bans_v4', key: Buffer.alloc(4), value });
    }
    return out;
  }
}

interface World {
  pipeline: EventPipeline;
  lines: string[];
  history: HistoryEvent[];
  nft: string[];
  hooks: string[];
  offences: string[];
  table: FakeTable;
}

function world(over: Partial<Config> = {}, json = false, more: Partial<PipelineDeps> = {}): World {
  const config: Config = { ...defaultConfig(), ...over };
  config.hooks = { ...config.hooks, kill_run_cmd: 'block $TARGET$ $PORT$ $MODE$', unban_cmd: 'unblock $TARGET$' };
  const lines: string[] = [];
  const history: HistoryEvent[] = [];
  const nft: string[] = [];
  const hooks: string[] = [];
  const offences: string[] = [];
  const reporter = makeReporter(
    json,
    (l) => lines.push(l),
    () => new Date(WALL),
  );
  const store = { record: (evs: readonly HistoryEvent[]) => void history.push(...evs) } as unknown as HistoryStore;
  const nftBans: NftBans = {
    add: async (bans) => void nft.push(...bans.map((b) => `add ${b.target} ${b.timeoutSeconds}s`)),
    remove: async (targets) => (nft.push(...targets.map((t) => `remove ${t}`)), targets.length),
    flush: async () => void nft.push('flush'),
  };
  const runner: Hooks = { run: async (name, _tpl, t) => void hooks.push(`${name} ${t.target} ${t.port} ${t.mode}`) };
  const effects = new BanEffects({ hooks: () => config.hooks, runner, log: (target, line) => reporter.unban(target, line) });
  // the service's own kernel table is not used by began/ended: a gateway whose maps are never touched
  const gw = { obj: { map: () => ({}) } } as unknown as Gateway;
  const bans = new BanService(gw, store, nftBans, 'gw-test', effects);
  const table = new FakeTable();
  const offenders: OffenderLog = { record: (s) => offences.push(s), tick: () => {}, rewriteAll: () => {} };
  const pipeline = new EventPipeline({
    reporter,
    config,
    history: store,
    gateway: 'gw-test',
    bans,
    table,
    effects,
    offenders,
    now: () => WALL,
    ...more,
  });
  return { pipeline, lines, history, nft, hooks, offences, table };
}

test('a ban the kernel made: alert and ban records, nft add, PortSentry lines, KILL_RUN_CMD, counted', async () => {
  const w = world();
  await w.pipeline.batch([probe(EV_F_BANNED)]);
  assert.deepEqual(w.lines, [
    'attackalert: TCP SYN/Normal scan from host: 198.18.0.2/198.18.0.2 to TCP port: 23',
    'attackalert: Host 198.18.0.2 has been blocked via XDP drop (ban 10m, until 2026-11-22T02:44:21.500Z)',
  ]);
  assert.deepEqual(
    w.history.map((e) => e.op),
    ['alert', 'ban'],
  );
  assert.deepEqual(w.history[0], {
    op: 'alert',
    time: WALL - 500,
    source: '198.18.0.2',
    destination: '198.18.0.1',
    proto: 'tcp',
    port: 23,
    kind: 'syn',
    flags: 'SYN',
    iface: 'veth7',
    gateway: 'gw-test',
  });
  const ban = w.history[1]!;
  assert.ok(ban.op === 'ban');
  assert.equal(ban.target, '198.18.0.2');
  assert.equal(ban.ttl, 600);
  assert.equal(ban.origin, 'auto');
  assert.equal(ban.reason, 'TCP SYN/Normal scan to 198.18.0.1 TCP port 23');
  assert.equal(ban.gateway, 'gw-test');
  assert.deepEqual(w.nft, ['add 198.18.0.2 600s']);
  assert.deepEqual(w.hooks, ['KILL_RUN_CMD 198.18.0.2 23 tcp']);
  assert.deepEqual(w.offences, ['198.18.0.2'], 'the offence is counted for escalation');
  assert.deepEqual(w.pipeline.totals.alertsByDestination, { '198.18.0.1': 1 });
});

test('the same ban as JSON lines: alert then ban, with the kernel-decided length', async () => {
  const w = world({}, true);
  await w.pipeline.batch([probe(EV_F_BANNED)]);
  const evs = w.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    evs.map((e) => e.event),
    ['alert', 'ban'],
  );
  assert.equal(evs[0]!.iface, 'veth7');
  assert.equal(evs[0]!.banned, true);
  assert.deepEqual(evs[1], {
    time: '2026-11-22T02:34:21.500Z',
    event: 'ban',
    source: '198.18.0.2',
    origin: 'auto',
    ttlSeconds: 600,
    expires: '2026-11-22T02:44:21.500Z',
    reason: 'TCP SYN/Normal scan to 198.18.0.1 TCP port 23',
  });
});

test('an alert under the trigger: its line and history record, no ban anywhere', async () => {
  const w = world();
  await w.pipeline.batch([probe(0)]);
  assert.deepEqual(w.lines, ['attackalert: TCP SYN/Normal scan from host: 198.18.0.2/198.18.0.2 to TCP port: 23']);
  assert.deepEqual(
    w.history.map((e) => e.op),
    ['alert'],
  );
  assert.deepEqual(w.nft, []);
  assert.deepEqual(w.hooks, []);
  assert.deepEqual(w.offences, []);
  assert.deepEqual(w.pipeline.totals.alertsByDestination, { '198.18.0.1': 1 });
});

test('block_tcp: 2 runs KILL_RUN_CMD alone for an alert, and bans nothing', async () => {
  const w = world({ block_tcp: 2 });
  await w.pipeline.batch([probe(0)]);
  assert.deepEqual(w.hooks, ['KILL_RUN_CMD 198.18.0.2 23 tcp']);
  assert.deepEqual(w.nft, []);
  assert.deepEqual(
    w.history.map((e) => e.op),
    ['alert'],
  );
});

test('a source with a live connection: not blocked, possibly spoofed, counted; the destination label is bounded', async () => {
  const w = world({}, true, { destinationLabel: (d) => (d.dscope === DEST_NET ? '198.18.8.0/24' : d.destination) });
  await w.pipeline.batch([probe(EV_F_LIVE_PEER, { dscope: DEST_NET, destination: '198.18.8.9' })]);
  const evs = w.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    evs.map((e) => e.event),
    ['alert', 'not_blocked'],
  );
  assert.deepEqual(evs[1], {
    time: '2026-11-22T02:34:22.000Z',
    event: 'not_blocked',
    source: '198.18.0.2',
    destination: '198.18.8.9',
    reason: 'live-connection',
    possiblySpoofed: true,
  });
  assert.equal(w.pipeline.totals.possiblySpoofed, 1);
  assert.deepEqual(w.pipeline.totals.alertsByDestination, { '198.18.8.0/24': 1 });
  assert.deepEqual(w.nft, []);
  assert.deepEqual(w.hooks, []);
});

test('a flood summary: one attackalert line', () => {
  const w = world();
  w.pipeline.flood(undefined);
  assert.deepEqual(w.lines, [], 'no flood, no line');
  w.pipeline.flood({ seconds: 1, deferred: 40, summarised: 0, probes: 41, ports: 1 });
  assert.deepEqual(w.lines, [
    'attackalert: flood: in the last 1s 40 source(s) probed one port during a flood of single probes and were not banned (a second port bans them); 41 probe(s) to 1 port(s); details in metrics',
  ]);
});

test('a flood summary as a JSON line', () => {
  const w = world({}, true);
  w.pipeline.flood({ seconds: 2, deferred: 0, summarised: 9, probes: 12, ports: 3 });
  assert.deepEqual(JSON.parse(w.lines[0]!), {
    time: '2026-11-22T02:34:22.000Z',
    event: 'flood_summary',
    seconds: 2,
    deferred: 0,
    summarised: 9,
    probes: 12,
    ports: 3,
  });
});

test('an expired ban ends once: unban record, nft remove, log line, UNBAN_CMD, counted by origin', async () => {
  const w = world();
  const ban = (expiresNs: bigint, origin: number): BanValue => ({ expiresNs, createdNs: 1n, drops: 0n, port: 23, proto: 6, kind: Kind.SYN, origin });
  w.table.bans.set('198.18.0.2', ban(100n, Origin.AUTO));
  w.table.bans.set('198.18.0.3', ban(100n, Origin.MANUAL));
  w.table.bans.set('198.18.0.4', ban(10_000n, Origin.AUTO));
  await w.pipeline.sweep(200n);
  await w.pipeline.sweep(300n); // nothing more has expired: nothing ends twice
  assert.deepEqual(w.lines, ['attackalert: Host 198.18.0.2 has been unblocked (ban expired)', 'attackalert: Host 198.18.0.3 has been unblocked (ban expired)']);
  assert.deepEqual(
    w.history.map((e) => (e.op === 'unban' ? `${e.op} ${e.target} ${e.why}` : e.op)),
    ['unban 198.18.0.2 expired', 'unban 198.18.0.3 expired'],
  );
  assert.deepEqual(w.nft, ['remove 198.18.0.2', 'remove 198.18.0.3']);
  assert.deepEqual(w.hooks, ['UNBAN_CMD 198.18.0.2 23 tcp'], 'only the automatic ban had hooks');
  assert.equal(w.pipeline.totals.bansExpired, 2);
  assert.deepEqual(w.pipeline.totals.expiredByOrigin, { auto: 1, manual: 1 });
  assert.deepEqual([...w.table.bans.keys()], ['198.18.0.4']);
});

test('a kernel ban that a longer restored ban replaced: the alert says not banned, nothing begins', async () => {
  const w = world({}, false, { restoredAtNs: BigInt(CLOCK) });
  w.table.bans.set('198.18.0.2', { expiresNs: 0n, createdNs: 1n, drops: 0n, port: 0, proto: 0, kind: 0, origin: Origin.MANUAL });
  await w.pipeline.batch([probe(EV_F_BANNED)]);
  assert.deepEqual(w.lines, [
    'attackalert: TCP SYN/Normal scan from host: 198.18.0.2/198.18.0.2 to TCP port: 23',
    'sentry-xdp: 198.18.0.2: a ban restored from history, lasting longer, replaced the one the kernel made during the restore',
  ]);
  assert.deepEqual(w.nft, []);
  assert.deepEqual(w.hooks, []);
  assert.deepEqual(w.offences, []);
  assert.equal(w.table.bans.get('198.18.0.2')?.origin, Origin.MANUAL, 'the restored ban stands');
});

test('a kernel ban made during the restore that the restore removed is put back, and begins', async () => {
  const w = world({}, false, { restoredAtNs: BigInt(CLOCK) });
  await w.pipeline.batch([probe(EV_F_BANNED)]);
  const back = w.table.bans.get('198.18.0.2');
  assert.equal(back?.origin, Origin.AUTO);
  assert.equal(back?.expiresNs, BigInt(CLOCK - 0.5 * S + 600 * S));
  assert.deepEqual(w.nft, ['add 198.18.0.2 600s']);
});

/** A kernel side that hands out the given batches, then aborts the loop. */
function fakeKernel(batches: Probe[][], stop: AbortController, pinned = true): KernelSide & { drains: number } {
  const k = {
    drains: 0,
    async drain() {
      k.drains++;
      const b = batches.shift();
      if (!batches.length) stop.abort();
      return b ?? [];
    },
    clockNs: () => 1n,
    pinned: () => pinned,
    floods: { take: () => undefined },
    close() {},
  };
  return k;
}

test('the loop drains, runs the stages and stops on the signal', async () => {
  const w = world();
  const stop = new AbortController();
  const k = fakeKernel([[probe(EV_F_BANNED)], [probe(0, { source: '198.18.0.5' })]], stop);
  let ticks = 0;
  const why = await runLoop(w.pipeline, k, { signal: stop.signal, tick: () => ticks++ });
  assert.equal(why, 'signal');
  assert.equal(k.drains, 2);
  assert.equal(ticks, 2);
  assert.equal(w.lines.length, 3, w.lines.join('\n'));
  assert.deepEqual(w.nft, ['add 198.18.0.2 600s']);
});

test('the loop stops when the pins are removed under it (detach --all)', async () => {
  const w = world();
  const stop = new AbortController();
  const why = await runLoop(w.pipeline, fakeKernel([[], []], stop, false), { signal: stop.signal });
  assert.equal(why, 'removed');
});
