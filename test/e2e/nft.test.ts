/**
 * End to end: the nft adapter against the real nft 1.0.6 and kernel, as root,
 * inside network namespaces this test creates (nftables rulesets are per
 * namespace, so the host's ruleset is never touched). Every nft call goes
 * through `ip netns exec NS nft`. The packet check sends pings only between two
 * namespaces joined by a veth pair (198.18.0.0/15, no default route), never from
 * the root namespace. All namespaces are deleted in `after`, also on failure.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { after, before, test } from 'node:test';
import { commandRunner, Nft, type NftEntry, type NftRun } from '../../src/adapters/nft.js';
import { SentryError } from '../../src/errors.js';

const PID = process.pid;
const NS = `sxnft-${PID}`; // where the adapter's table lives
const RX = `sxnft-${PID}-rx`; // packet check: the namespace that bans
const TX = `sxnft-${PID}-tx`; // packet check: the namespace that pings
const RX_IF = `sxn${PID}r`.slice(0, 15);
const TX_IF = `sxn${PID}t`.slice(0, 15);
const RX4 = '198.18.0.1';
const TX4 = '198.18.0.2';
const PATHS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin', '/usr/local/bin'];
const created: string[] = [];

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function sh(argv: string[], input = ''): Ran {
  const r = spawnSync(argv[0]!, argv.slice(1), { input, encoding: 'utf8', timeout: 60_000, maxBuffer: 1 << 30 });
  if (r.error) throw new Error(`${argv.join(' ')}: ${r.error.message}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function must(argv: string[], input = ''): string {
  const r = sh(argv, input);
  assert.equal(r.code, 0, `${argv.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

const inNs = (ns: string, ...argv: string[]) => ['ip', 'netns', 'exec', ns, ...argv];
const nftIn = (ns: string, ...args: string[]) => must(inNs(ns, 'nft', ...args));

function findTool(name: string): string | undefined {
  for (const dir of PATHS) {
    try {
      accessSync(`${dir}/${name}`, constants.X_OK);
      return `${dir}/${name}`;
    } catch {
      /* next */
    }
  }
  return undefined;
}

function addNamespace(name: string): void {
  must(['ip', 'netns', 'add', name]);
  created.push(name);
}

function cleanup(): void {
  for (const ns of created.splice(0)) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}
process.on('exit', cleanup);

/** A fixed ruleset of somebody else's, which nothing here may change. */
const OTHER = `table inet other {
  set keep { type ipv4_addr; elements = { 192.0.2.55 } }
  chain input { type filter hook input priority 0; policy accept; ip saddr 192.0.2.66 counter drop; }
}
`;
const otherSnapshot = () => nftIn(NS, '-j', 'list', 'table', 'inet', 'other');
let otherBefore = '';

/** Counts the nft calls of each kind that go through it. */
function counted(run: NftRun) {
  const counts = { batches: 0, other: 0 };
  const wrapped: NftRun = (args, input) => {
    if (args.join(' ') === '-j -f -') counts.batches++;
    else counts.other++;
    return run(args, input);
  };
  return { counts, run: wrapped };
}

const runner = counted(commandRunner(['ip', 'netns', 'exec', NS, 'nft']));
const nft = new Nft({ run: runner.run });

const byTarget = (entries: NftEntry[]) => new Map(entries.map((e) => [e.target, e.expiresSeconds]));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function assertExpires(entries: NftEntry[], target: string, lo: number, hi: number): void {
  const m = byTarget(entries);
  assert.ok(m.has(target), `${target} should be listed; list() gave ${JSON.stringify(entries)}`);
  const left = m.get(target);
  assert.ok(typeof left === 'number' && left >= lo && left <= hi, `${target} should have ${lo}..${hi} s left, has ${String(left)}`);
}

before(() => {
  if (process.getuid?.() !== 0) {
    throw new Error('the nft end-to-end tests need root (they create network namespaces and nftables tables): run them as root');
  }
  const missing = ['ip', 'nft', 'ping'].filter((t) => !findTool(t));
  if (missing.length) {
    throw new Error(`the nft end-to-end tests need ${missing.join(', ')}: install them (e.g. \`apt-get install nftables iproute2 iputils-ping\`)`);
  }
  addNamespace(NS);
  must(inNs(NS, 'nft', '-f', '-'), OTHER);
  otherBefore = otherSnapshot();
});

after(cleanup);

test('ensure() creates the table once; a second ensure() has nothing to do', async () => {
  assert.equal(await nft.available(), true, 'nft should be usable in the namespace');
  assert.equal(await nft.exists(), false);
  const batchesBefore = runner.counts.batches;
  assert.equal(await nft.ensure(), true);
  assert.equal(runner.counts.batches - batchesBefore, 1, 'one atomic batch');
  assert.equal(await nft.exists(), true);
  assert.equal(await nft.ensure(), false);
  const text = nftIn(NS, 'list', 'table', 'inet', 'sentry_xdp');
  for (const line of [
    /set bans_v4 \{\s+type ipv4_addr\s+flags timeout\s+\}/,
    /set nets_v4 \{\s+type ipv4_addr\s+flags interval,timeout\s+\}/,
    /set bans_v6 \{\s+type ipv6_addr\s+flags timeout\s+\}/,
    /set nets_v6 \{\s+type ipv6_addr\s+flags interval,timeout\s+\}/,
    /type filter hook prerouting priority raw; policy accept;/,
    /ip saddr @bans_v4 drop\s+ip saddr @nets_v4 drop\s+ip6 saddr @bans_v6 drop\s+ip6 saddr @nets_v6 drop/,
  ]) {
    assert.match(text, line, `nft list table inet sentry_xdp:\n${text}`);
  }
  assert.equal(otherSnapshot(), otherBefore, 'table inet other must be untouched');
});

test('add() puts v4, v6 and networks in with their timeouts; list() shows what is left', async () => {
  await nft.add([
    { target: '198.18.5.1', timeoutSeconds: 600 },
    { target: '2001:db8::5', timeoutSeconds: 600 },
    { target: '198.18.64.0/18', timeoutSeconds: 300 },
    { target: '2001:db8:5::/48', timeoutSeconds: 300 },
    { target: '198.18.5.2', timeoutSeconds: 0 },
  ]);
  const l = await nft.list();
  assert.equal(l.length, 5, JSON.stringify(l));
  assertExpires(l, '198.18.5.1', 590, 600);
  assertExpires(l, '2001:db8::5', 590, 600);
  assertExpires(l, '198.18.64.0/18', 290, 300);
  assertExpires(l, '2001:db8:5::/48', 290, 300);
  assert.equal(byTarget(l).get('198.18.5.2'), null, 'a permanent ban has no expiry');
  const text = nftIn(NS, 'list', 'set', 'inet', 'sentry_xdp', 'nets_v6');
  assert.match(text, /2001:db8:5::\/48 timeout 5m/, text);
});

test('adding an existing element again replaces its timeout', async () => {
  await nft.add([
    { target: '198.18.5.1', timeoutSeconds: 60 }, // shorter
    { target: '198.18.5.2', timeoutSeconds: 900 }, // permanent -> timed
    { target: '2001:db8::5', timeoutSeconds: 0 }, // timed -> permanent
    { target: '198.18.64.0/18', timeoutSeconds: 1200 }, // longer
    { target: '2001:db8:5::/48', timeoutSeconds: 30 },
  ]);
  const l = await nft.list();
  assert.equal(l.length, 5, JSON.stringify(l));
  assertExpires(l, '198.18.5.1', 50, 60);
  assertExpires(l, '198.18.5.2', 890, 900);
  assert.equal(byTarget(l).get('2001:db8::5'), null);
  assertExpires(l, '198.18.64.0/18', 1190, 1200);
  assertExpires(l, '2001:db8:5::/48', 20, 30);
});

test('remove() of present and absent targets removes the present ones and counts them', async () => {
  const n = await nft.remove(['198.18.5.1', '2001:db8:5::/48', '198.18.99.99', '2001:db8::dead', '198.19.0.0/16']);
  assert.equal(n, 2);
  const l = byTarget(await nft.list());
  assert.deepEqual([...l.keys()].sort(), ['198.18.5.2', '198.18.64.0/18', '2001:db8::5']);
  assert.equal(await nft.remove(['198.18.5.2', '198.18.64.0/18', '2001:db8::5']), 3, 'all present: one fast call');
  assert.equal(await nft.remove(['198.18.5.2']), 0, 'nothing left to remove');
  assert.deepEqual(await nft.list(), []);
});

test('an overlapping network is refused by name and the rest still goes in', async () => {
  await nft.add([{ target: '198.18.128.0/17', timeoutSeconds: 120 }]);
  await assert.rejects(
    nft.add([
      { target: '198.18.200.0/24', timeoutSeconds: 60 },
      { target: '198.19.1.0/24', timeoutSeconds: 60 },
      { target: '198.18.7.7', timeoutSeconds: 60 },
    ]),
    (e: unknown) => {
      assert.ok(e instanceof SentryError, String(e));
      assert.equal(e.code, 'KERNEL');
      assert.match(e.message, /198\.18\.200\.0\/24 \(overlaps 198\.18\.128\.0\/17 already in nets_v4\)/);
      return true;
    },
  );
  assert.deepEqual([...byTarget(await nft.list()).keys()].sort(), ['198.18.128.0/17', '198.18.7.7', '198.19.1.0/24']);
  // nft itself refuses it too: the adapter's check matches the kernel
  const r = sh(inNs(NS, 'nft', 'add', 'element', 'inet', 'sentry_xdp', 'nets_v4', '{ 198.18.200.0/24 }'));
  assert.notEqual(r.code, 0, 'the kernel refuses overlapping intervals');
  await nft.flush();
  assert.deepEqual(await nft.list(), []);
});

test('an element with a 2 s timeout is expired by nft itself', async () => {
  await nft.add([
    { target: '198.18.9.9', timeoutSeconds: 2 },
    { target: '198.18.32.0/20', timeoutSeconds: 2 },
  ]);
  assert.equal((await nft.list()).length, 2);
  await sleep(3000);
  assert.deepEqual(await nft.list(), [], 'gone after ~3 s');
});

test('a damaged table is repaired by ensure(), keeping its elements', async () => {
  await nft.add([{ target: '198.18.10.10', timeoutSeconds: 0 }]);
  nftIn(NS, 'flush', 'chain', 'inet', 'sentry_xdp', 'prerouting');
  assert.equal(await nft.ensure(), true);
  assert.match(nftIn(NS, 'list', 'chain', 'inet', 'sentry_xdp', 'prerouting'), /ip saddr @bans_v4 drop[\s\S]*ip6 saddr @nets_v6 drop/);
  assert.deepEqual(await nft.list(), [{ target: '198.18.10.10', expiresSeconds: null }]);
  assert.equal(await nft.ensure(), false);

  // a set of the wrong type and a chain at the wrong priority are replaced; the other sets keep their elements
  nftIn(NS, 'flush', 'chain', 'inet', 'sentry_xdp', 'prerouting');
  nftIn(NS, 'delete', 'chain', 'inet', 'sentry_xdp', 'prerouting');
  nftIn(NS, 'add', 'chain', 'inet', 'sentry_xdp', 'prerouting', '{ type filter hook prerouting priority 0; policy accept; }');
  nftIn(NS, 'delete', 'set', 'inet', 'sentry_xdp', 'bans_v6');
  nftIn(NS, 'add', 'set', 'inet', 'sentry_xdp', 'bans_v6', '{ type ipv4_addr; }');
  assert.equal(await nft.ensure(), true);
  const text = nftIn(NS, 'list', 'table', 'inet', 'sentry_xdp');
  assert.match(text, /set bans_v6 \{\s+type ipv6_addr\s+flags timeout/, text);
  assert.match(text, /type filter hook prerouting priority raw; policy accept;\s+ip saddr @bans_v4 drop/, text);
  assert.deepEqual(await nft.list(), [{ target: '198.18.10.10', expiresSeconds: null }]);
  assert.equal(await nft.ensure(), false);
  await nft.flush();
  assert.equal(otherSnapshot(), otherBefore, 'table inet other must be untouched by everything above');
});

test('after `nft flush ruleset` exists() is false and ensure() brings the table back', async () => {
  nftIn(NS, 'flush', 'ruleset');
  assert.equal(await nft.exists(), false);
  await assert.rejects(
    nft.add([{ target: '198.18.1.1', timeoutSeconds: 5 }]),
    (e: SentryError) => e.code === 'KERNEL' && /^nft: /.test(e.message) && !e.message.includes('\n'),
  );
  assert.equal(await nft.remove(['198.18.1.1']), 0, 'removing from a missing table removes nothing and is no error');
  assert.equal(await nft.ensure(), true);
  assert.equal(await nft.exists(), true);
  assert.deepEqual(await nft.list(), []);
  must(inNs(NS, 'nft', '-f', '-'), OTHER);
  otherBefore = otherSnapshot();
});

test('100 000 IPv4 bans go in with a handful of nft calls', async () => {
  const addrs = new Set<string>();
  while (addrs.size < 100_000) {
    const n = Math.floor(Math.random() * 0xffffffff);
    addrs.add(`${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`);
  }
  const bans = [...addrs].map((target, i) => ({ target, timeoutSeconds: i % 10 === 0 ? 0 : 3600 }));
  const before = runner.counts.batches;
  const progress: number[] = [];
  const t0 = performance.now();
  await nft.add(bans, (done) => progress.push(done));
  const secs = (performance.now() - t0) / 1000;
  const calls = runner.counts.batches - before;
  const rate = Math.round(bans.length / secs);
  console.log(`# nft add: ${bans.length} IPv4 bans in ${secs.toFixed(2)} s with ${calls} nft calls = ${rate} bans/s`);
  assert.equal(calls, 5, 'batches of 20 000 elements');
  assert.deepEqual(progress, [20_000, 40_000, 60_000, 80_000, 100_000]);
  // the aim is 20 000/s (50-65 000/s measured on an idle machine); the hard floor leaves room for a loaded one
  if (rate < 20_000) console.log(`# nft add: ${rate}/s is below the 20 000/s aim (machine busy?)`);
  assert.ok(rate >= 10_000, `add rate ${rate}/s is far below the 20 000/s aim`);

  const t1 = performance.now();
  const l = await nft.list();
  console.log(`# nft list: ${l.length} elements in ${((performance.now() - t1) / 1000).toFixed(2)} s`);
  assert.equal(l.length, 100_000);
  const m = byTarget(l);
  assert.ok(
    bans.every((b) => m.has(b.target)),
    'every address is listed',
  );
  assert.equal([...m.values()].filter((v) => v === null).length, 10_000, 'the permanent ones have no expiry');

  const t2 = performance.now();
  const gone = await nft.remove([...bans.slice(0, 30_000).map((b) => b.target), '198.18.77.77']);
  console.log(`# nft remove: 30 000 present + 1 absent in ${((performance.now() - t2) / 1000).toFixed(2)} s`);
  assert.equal(gone, 30_000);
  await nft.flush();
  assert.deepEqual(await nft.list(), []);
  assert.equal(otherSnapshot(), otherBefore, 'table inet other must be untouched');
});

test('drop() deletes only our table', async () => {
  await nft.drop();
  assert.equal(await nft.exists(), false);
  await nft.drop(); // nothing to drop is no error
  assert.equal(otherSnapshot(), otherBefore, 'table inet other must be untouched');
  const tables = JSON.parse(nftIn(NS, '-j', 'list', 'tables')).nftables.filter((o: { table?: unknown }) => o.table);
  assert.deepEqual(
    tables.map((o: { table: { name: string } }) => o.table.name),
    ['other'],
  );
});

test('a banned peer cannot ping until its 3 s ban expires', async () => {
  addNamespace(RX);
  addNamespace(TX);
  must(['ip', 'link', 'add', RX_IF, 'netns', RX, 'type', 'veth', 'peer', 'name', TX_IF, 'netns', TX]);
  must(inNs(RX, 'ip', 'addr', 'add', `${RX4}/24`, 'dev', RX_IF));
  must(inNs(TX, 'ip', 'addr', 'add', `${TX4}/24`, 'dev', TX_IF));
  must(inNs(RX, 'ip', 'link', 'set', RX_IF, 'up'));
  must(inNs(TX, 'ip', 'link', 'set', TX_IF, 'up'));
  const ping = () => sh(inNs(TX, 'ping', '-n', '-c', '1', '-W', '1', RX4));

  let up = ping();
  for (let i = 0; i < 5 && up.code !== 0; i++) up = ping(); // the link may need a moment (DAD, carrier)
  assert.equal(up.code, 0, `the peers should reach each other before any ban:\n${up.stdout}${up.stderr}`);

  const rx = new Nft({ table: 'sentry_pkt', run: commandRunner(['ip', 'netns', 'exec', RX, 'nft']) });
  assert.equal(await rx.ensure(), true);
  const banned = performance.now();
  await rx.add([{ target: TX4, timeoutSeconds: 3 }]);
  const blocked = ping();
  assert.notEqual(blocked.code, 0, `ping should fail while ${TX4} is banned:\n${blocked.stdout}`);
  const counters = nftIn(RX, 'list', 'set', 'inet', 'sentry_pkt', 'bans_v4');
  assert.match(counters, new RegExp(`${TX4.replace(/\./g, '\\.')} timeout 3s`), counters);

  const wait = 4000 - (performance.now() - banned);
  if (wait > 0) await sleep(wait);
  const back = ping();
  assert.equal(back.code, 0, `ping should work again once the ban expired:\n${back.stdout}${back.stderr}`);
  assert.deepEqual(await rx.list(), []);
  await rx.drop();
});
