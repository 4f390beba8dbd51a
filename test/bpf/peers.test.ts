/**
 * The live-peer tracker against the real conntrack table of a lab gateway. In
 * sentry_peers (the map the XDP program reads before a ban) a live entry makes
 * its answering side a responder and, for TCP only, its opening side an
 * originator: a ping or a UDP exchange gives the sender nothing (nmap's host
 * discovery must not buy a scan immunity), a completed handshake makes the
 * client an originator stamped with the time it became one. Unanswered and
 * spoofed traffic counts for nobody, and `conntrack -D` takes back exactly
 * what an entry added, each within two seconds.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Layout } from '../../src/core/abi.js';
import { BpfMap, kernelClockNs } from '../../src/adapters/kernel.js';
import { PeerTracker, peerEntry, peerKey, type PeerEntry } from '../../src/adapters/peers.js';
import { KernelFixture } from '../helpers/kernel-fixture.js';
import { ATK4, ATK6, createLab, describeRun, GW4, GW6, requireTools, type Lab, type RunResult } from '../helpers/lab.js';

const ATK4B = '198.18.0.3'; // a second attacker address, for real TCP connections
const SPOOF_UDP = '198.18.0.77';
const SPOOF_TCP = '198.18.0.78';
const NONE: PeerEntry = { responder: 0, originator: 0, originatorSinceNs: 0n };

type T = { after(fn: () => unknown): void };

async function must(lab: Lab, where: 'gw' | 'atk', argv: string[]): Promise<string> {
  const r = await lab[where](argv, { timeoutMs: 15_000 });
  assert.equal(r.code, 0, describeRun(r));
  return r.stdout;
}

/** A gateway namespace whose conntrack tracks every packet, as on a real gateway with stateful rules. */
async function conntrackLab(t: T, events: 1 | 2): Promise<Lab> {
  requireTools('nft', 'conntrack', 'hping3', 'python3');
  const lab = createLab(t);
  await must(lab, 'gw', ['nft', 'add table inet sxct']);
  await must(lab, 'gw', ['nft', 'add chain inet sxct pre { type filter hook prerouting priority 0; }']);
  await must(lab, 'gw', ['nft', 'add rule inet sxct pre ct state new counter']);
  // 2 is the kernel's default: entries created while no one listens to ctnetlink get no
  // event cache, so they end without a DESTROY event. 1 gives every entry one.
  await must(lab, 'gw', ['sh', '-c', `echo ${events} > /proc/sys/net/netfilter/nf_conntrack_events`]);
  assert.equal((await must(lab, 'gw', ['cat', '/proc/sys/net/netfilter/nf_conntrack_events'])).trim(), String(events));
  return lab;
}

/** The tracker and a loaded (unpinned) sentry object, both closed after the test. */
function startTracker(t: T, lab: Lab, k: KernelFixture): PeerTracker {
  const tracker = PeerTracker.start(k.obj.mapFd('sentry_peers'), `/run/netns/${lab.gwNs}`);
  t.after(() => tracker.stop());
  return tracker;
}

/** A raw sentry_peers value, for planting what a stale or tampered map holds. */
function rawPeer(p: { responder?: number; originator?: number; sinceNs?: bigint }): Buffer {
  const { size, fields: f } = Layout.sx_peer;
  const v = Buffer.alloc(size);
  v.writeUInt32LE(p.responder ?? 0, f.responder[0]);
  v.writeUInt32LE(p.originator ?? 0, f.originator[0]);
  v.writeBigUInt64LE(p.sinceNs ?? 0n, f.originator_since_ns[0]);
  return v;
}

const show = (e: PeerEntry) => `{ responder: ${e.responder}, originator: ${e.originator}, since: ${e.originatorSinceNs} }`;

async function waitEntry(fd: number, address: string, ok: (e: PeerEntry) => boolean, what: string, ms = 2000): Promise<PeerEntry> {
  const end = Date.now() + ms;
  for (;;) {
    const e = peerEntry(fd, address);
    if (ok(e)) return e;
    if (Date.now() > end) assert.fail(`${address}: ${what} within ${ms} ms (sentry_peers holds ${show(e)})`);
    await sleep(50);
  }
}

/** Exactly these counts (and, with no originator, nothing else to look at). */
const counts = (responder: number, originator: number) => (e: PeerEntry) => e.responder === responder && e.originator === originator;

function assertCounts(fd: number, address: string, responder: number, originator: number, what: string): PeerEntry {
  const e = peerEntry(fd, address);
  assert.ok(counts(responder, originator)(e), `${address}: ${what} (sentry_peers holds ${show(e)}, expected responder ${responder}, originator ${originator})`);
  return e;
}

/** The originator stamp is CLOCK_MONOTONIC of about now (the kernel's clock, not the wall clock). */
function assertFreshSince(e: PeerEntry, address: string): void {
  const now = kernelClockNs();
  assert.ok(
    e.originatorSinceNs > 0n && e.originatorSinceNs <= now && now - e.originatorSinceNs < 1_000_000_000n,
    `${address}: originator_since_ns ${e.originatorSinceNs} within a second before CLOCK_MONOTONIC ${now}`,
  );
}

async function ping(lab: Lab, v6 = false): Promise<void> {
  const p = await lab.ping(v6);
  assert.ok(p.ok, `the gateway answers a ping: ${describeRun(p.run)}`);
}

/** One UDP datagram from the attacker to a gateway socket that answers it. */
async function udpExchange(lab: Lab, port: number): Promise<void> {
  const server = lab.gw(
    [
      'python3',
      '-c',
      `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('${GW4}', ${port})); s.settimeout(10)
d, a = s.recvfrom(64); s.sendto(d, a)
`,
    ],
    { timeoutMs: 15_000 },
  );
  // one socket, so retries while the server starts stay one conntrack entry (the
  // port-unreachable before that is RELATED, not a reply)
  const client = await must(lab, 'atk', [
    'python3',
    '-c',
    `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('${ATK4}', 0)); s.settimeout(0.1)
for _ in range(100):
    s.sendto(b'hi', ('${GW4}', ${port}))
    try:
        s.recvfrom(64); print('answered'); break
    except (socket.timeout, ConnectionRefusedError):
        pass
`,
  ]);
  assert.match(client, /answered/);
  const r = await server;
  assert.equal(r.code, 0, describeRun(r));
}

let held = 0;

/**
 * TCP connections from `source` to a gateway listener on `port`, opened `gapMs`
 * apart from the fixed source ports 40001, 40002, ... and held open (the
 * listener keeps listening too) until `release`.
 */
function holdTcp(t: T, lab: Lab, source: string, port: number, n: number, gapMs = 0): { release(): Promise<void> } {
  const stop = join(tmpdir(), `sentry-xdp-peers-${process.pid}-${++held}.stop`);
  rmSync(stop, { force: true });
  t.after(async () => {
    writeFileSync(stop, ''); // a failed test lets them go too
    await sleep(200);
    rmSync(stop, { force: true });
  });
  const listener = lab.gw(
    [
      'python3',
      '-c',
      `
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('${GW4}', ${port})); s.listen(8); s.settimeout(20)
conns = []
for _ in range(${n}):
    c, _ = s.accept(); c.settimeout(20); c.recv(16); conns.append(c)
for c in conns:  # until the client closes them
    while c.recv(16):
        pass
    c.close()
`,
    ],
    { timeoutMs: 25_000 },
  );
  const client = lab.atk(
    [
      'python3',
      '-c',
      `
import os, socket, time
cs = []
for i in range(${n}):
    if i:
        time.sleep(${gapMs / 1000})
    for _ in range(100):
        try:
            c = socket.create_connection(('${GW4}', ${port}), timeout=2, source_address=('${source}', 40001 + i)); break
        except ConnectionRefusedError:
            time.sleep(0.05)
    c.sendall(b'hello'); cs.append(c)
end = time.time() + 20
while not os.path.exists('${stop}') and time.time() < end:
    time.sleep(0.05)
for c in cs:
    c.close()
print('held')
`,
    ],
    { timeoutMs: 25_000 },
  );
  return {
    async release() {
      const check = (r: RunResult) => assert.equal(r.code, 0, describeRun(r));
      writeFileSync(stop, '');
      const c = await client;
      check(c);
      assert.match(c.stdout, /held/);
      check(await listener);
    },
  };
}

test(
  'only what someone here answered, or a settled TCP connection it opened, makes a live peer; conntrack -D takes back what an entry added',
  { timeout: 60_000 },
  async (t) => {
    const lab = await conntrackLab(t, 1);
    await must(lab, 'atk', ['ip', 'addr', 'add', `${ATK4B}/24`, 'dev', lab.atkIf]);
    // before the tracker runs: only the initial dump can see these
    await ping(lab);
    await ping(lab, true);

    const k = new KernelFixture();
    t.after(() => k.close());
    const fd = k.obj.mapFd('sentry_peers');
    // what an earlier daemon left in a pinned map is rewritten by the initial dump
    const peers = new BpfMap('sentry_peers', fd, 16, Layout.sx_peer.size);
    peers.update(peerKey('203.0.113.9'), rawPeer({ responder: 7 }));
    peers.update(peerKey(ATK4), rawPeer({ responder: 99, originator: 3, sinceNs: 1n }));
    peers.update(peerKey(GW4), rawPeer({ responder: 50 }));

    const tracker = startTracker(t, lab, k);
    // start returns once the map holds the dump: no waiting here
    assertCounts(fd, GW4, 1, 0, 'the gateway answered the ping before start (initial dump; the planted 50 corrected)');
    assertCounts(fd, GW6, 1, 0, 'the gateway answered the IPv6 ping before start');
    assert.deepEqual(peerEntry(fd, ATK4), NONE, 'a pinger is no peer at all (the planted entry deleted)');
    assert.deepEqual(peerEntry(fd, ATK6), NONE, 'nor is an IPv6 pinger');
    assert.deepEqual(peerEntry(fd, '203.0.113.9'), NONE, 'a key no conntrack entry backs is deleted');
    assert.throws(() => PeerTracker.start(fd), /conntrack: EBUSY/, 'one tracker per process');

    // events: a new answered ping is a second entry the gateway answered, and still nothing for the pinger
    await ping(lab);
    await waitEntry(fd, GW4, counts(2, 0), 'responder to a second ping');
    assert.deepEqual(peerEntry(fd, ATK4), NONE, 'the pinger is still no peer');

    // an answered UDP datagram: the same
    await udpExchange(lab, 5300);
    await waitEntry(fd, GW4, counts(3, 0), 'responder to a UDP exchange');
    assert.deepEqual(peerEntry(fd, ATK4), NONE, 'a UDP sender that got its answer is no peer');

    // completed TCP handshakes (assured), held open: the client is an originator,
    // stamped when its count rose from 0, and the stamp stays while it stays above 0
    const tcp = holdTcp(t, lab, ATK4B, 8081, 2, 600);
    const first = await waitEntry(fd, ATK4B, counts(0, 1), 'an originator after a TCP handshake');
    assertFreshSince(first, ATK4B);
    const second = await waitEntry(fd, ATK4B, counts(0, 2), 'two live TCP connections');
    assert.equal(second.originatorSinceNs, first.originatorSinceNs, "a second connection keeps the first one's stamp");
    assertCounts(fd, GW4, 5, 0, 'the server answered both connections (and opened none)');

    // spoofed sources: conntrack tracks them, but they are live for nobody
    await lab.atk(['hping3', '-2', '-c', '1', '-p', '9', '-a', SPOOF_UDP, GW4], { timeoutMs: 10_000 });
    await lab.atk(['hping3', '-S', '-c', '1', '-p', '8081', '-a', SPOOF_TCP, GW4], { timeoutMs: 10_000 });
    const udp = await must(lab, 'gw', ['conntrack', '-L', '-s', SPOOF_UDP]);
    assert.match(udp, /^udp .*UNREPLIED/m, 'the spoofed datagram is tracked, unanswered (a port-unreachable would be RELATED, not a reply)');
    const syn = await must(lab, 'gw', ['conntrack', '-L', '-s', SPOOF_TCP]);
    assert.match(syn, /^tcp .*SYN_RECV/m, 'the spoofed SYN to a listener is tracked and answered by a SYN-ACK');
    assert.doesNotMatch(syn, /UNREPLIED|ASSURED/, 'answered (seen reply), but without the handshake never assured');
    await sleep(500);
    assert.deepEqual(peerEntry(fd, SPOOF_UDP), NONE, 'an unanswered UDP source is no peer');
    assert.deepEqual(peerEntry(fd, SPOOF_TCP), NONE, 'a TCP source that only got a SYN-ACK is no peer');
    assertCounts(fd, GW4, 5, 0, 'entries that are not live count for their destination neither');

    // the end of entries, by hand: each takes back exactly what it added
    await must(lab, 'gw', ['conntrack', '-D', '-s', ATK4]); // two pings and the UDP exchange
    await waitEntry(fd, GW4, counts(2, 0), 'back to its two TCP connections after conntrack -D');
    await must(lab, 'gw', ['conntrack', '-D', '-s', ATK6]);
    await waitEntry(fd, GW6, counts(0, 0), 'gone after conntrack -D');
    await must(lab, 'gw', ['conntrack', '-D', '-p', 'tcp', '-s', ATK4B, '--sport', '40001']);
    const left = await waitEntry(fd, ATK4B, counts(0, 1), 'one connection left after conntrack -D of the other');
    assert.equal(left.originatorSinceNs, first.originatorSinceNs, 'still an originator: the stamp stays');
    assertCounts(fd, GW4, 1, 0, 'the server of the connection left');

    const stats = tracker.stats();
    assert.ok(stats.events > 0, `events handled: ${JSON.stringify(stats)}`);
    assert.equal(stats.errors, 0, `no errors: ${JSON.stringify(stats)}`);
    assert.equal(stats.peers, 2, `${ATK4B} and ${GW4} (the end of the IPv6 ping took ${GW6} out): ${JSON.stringify(stats)}`);

    const t0 = performance.now();
    tracker.stop();
    const took = performance.now() - t0;
    assert.ok(took < 1000, `stop returns within a second (took ${took.toFixed(0)} ms)`);
    // stopped means stopped: the map is left as it was
    await ping(lab);
    await sleep(300);
    assertCounts(fd, GW4, 1, 0, 'no tracker, no updates');
    assertCounts(fd, ATK4B, 0, 1, 'the map keeps what it held');
    await tcp.release();
  },
);

test("the periodic resync puts right what changed behind the tracker's back, and keeps an originator's stamp", { timeout: 60_000 }, async (t) => {
  // Behind its back: with the kernel's default nf_conntrack_events=2, an entry created
  // while nothing listened to ctnetlink ends without a DESTROY event. Whether that
  // happens depends on the history of the namespace, so this test changes the map
  // itself, which the resync must undo in the same way.
  const lab = await conntrackLab(t, 1);
  const k = new KernelFixture();
  t.after(() => k.close());
  const fd = k.obj.mapFd('sentry_peers');
  const peers = new BpfMap('sentry_peers', fd, 16, Layout.sx_peer.size);
  process.env.SENTRY_XDP_PEERS_RESYNC_MS = '1500'; // instead of 5 minutes
  let tracker: PeerTracker;
  try {
    tracker = startTracker(t, lab, k);
  } finally {
    delete process.env.SENTRY_XDP_PEERS_RESYNC_MS;
  }
  await ping(lab);
  await waitEntry(fd, GW4, counts(1, 0), 'responder to a ping');
  const tcp = holdTcp(t, lab, ATK4, 8082, 1);
  const before = await waitEntry(fd, ATK4, counts(0, 1), 'an originator after a TCP handshake');
  assertFreshSince(before, ATK4);
  assert.equal(tracker.stats().resyncs, 0);

  peers.update(peerKey('203.0.113.10'), rawPeer({ responder: 5 })); // an entry that ended silently
  peers.update(peerKey(ATK4), rawPeer({ originator: 1, sinceNs: 1n })); // as if settled long ago
  peers.delete(peerKey(GW4));
  await waitEntry(fd, '203.0.113.10', counts(0, 0), 'deleted by the resync', 4000);
  const after = await waitEntry(fd, ATK4, (e) => counts(0, 1)(e) && e.originatorSinceNs !== 1n, 'its stamp rewritten by the resync');
  assert.equal(after.originatorSinceNs, before.originatorSinceNs, 'an originator before the resync keeps its stamp through it');
  await waitEntry(fd, GW4, counts(2, 0), 'written again by the resync');
  const stats = tracker.stats();
  assert.ok(stats.resyncs >= 1, JSON.stringify(stats));
  assert.equal(stats.errors, 0, JSON.stringify(stats));
  await tcp.release();
});

test('start fails at once, with the errno, when the namespace cannot be joined', () => {
  const k = new KernelFixture();
  try {
    assert.throws(
      () => PeerTracker.start(k.obj.mapFd('sentry_peers'), '/run/netns/sentry-xdp-no-such-namespace'),
      (e: Error & { code?: string }) => e.code === 'KERNEL' && /^conntrack: ENOENT /.test(e.message),
    );
  } finally {
    k.close();
  }
});
