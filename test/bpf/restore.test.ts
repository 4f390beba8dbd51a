/**
 * Restoring bans from the history into the kernel table: the streaming path
 * (a fresh boot) must end exactly where a replay of the journal ends.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { JournalStore } from '../../src/adapters/history.js';
import type { BanRecord, JournalRecord } from '../../src/adapters/journal.js';
import { BanService, type ListEntry } from '../../src/daemon/bans.js';
import type { Gateway } from '../../src/daemon/gateway.js';
import { RedisStore } from '../../src/adapters/redis.js';
import { parseCidr } from '../../src/core/addr.js';
import { KernelFixture } from '../helpers/kernel-fixture.js';
import { RedisServer } from '../helpers/redis.js';

let k: KernelFixture;
let dir: string;
before(() => {
  k = new KernelFixture();
  dir = mkdtempSync(join(tmpdir(), 'sx-restore-'));
});
after(() => {
  k?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Every exact IPv4 ban gone, however many (the fixture's reset() takes out the first 4096 of each map). */
function emptyBans(): void {
  const m = k.obj.map('sentry_bans_v4');
  for (let left = m.dump(4096); left.count; left = m.dump(4096)) {
    for (let i = 0; i < left.count; i++) m.delete(left.keys.subarray(i * m.keySize, (i + 1) * m.keySize));
  }
}

const ban = (target: string, expires: number | null, gateway = 'here'): BanRecord => ({
  op: 'ban',
  time: Date.now(),
  target,
  ttl: 60,
  expires,
  origin: 'manual',
  reason: 'r',
  by: 'root',
  gateway,
});

test('a streamed restore into an empty table ends where a replay ends: later records win, unbanned and lapsed ones stay out', async () => {
  k.reset();
  const now = Date.now();
  const records: JournalRecord[] = [
    ban('198.51.100.1', now + 600_000),
    ban('198.51.100.2', now + 600_000),
    { op: 'unban', time: now, target: '198.51.100.1', why: 'by hand' },
    ban('198.51.100.3', now - 1000), // lapsed
    ban('198.51.100.2', now + 3_600_000), // renewed
    ban('2001:db8:7::/48', null, 'gw-b'), // permanent, from another gateway
    ban('203.0.113.0/24', now + 600_000),
  ];
  const store = new JournalStore(dir);
  store.bans.append(records);
  const service = new BanService({ obj: k.obj } as unknown as Gateway, store, undefined, 'here');
  const n = await service.restoreStream(store.streamBans());
  assert.equal(n, 3);
  const listed = await service.list();
  assert.deepEqual(listed.map((e) => e.target).sort(), ['198.51.100.2', '2001:db8:7::/48', '203.0.113.0/24']);
  const renewed = listed.find((e) => e.target === '198.51.100.2')!;
  assert.ok(renewed.remainingSeconds! > 3500, `the later record wins: ${JSON.stringify(renewed)}`);
  assert.equal(listed.find((e) => e.target === '2001:db8:7::/48')!.origin, 'fleet');
  assert.equal(listed.find((e) => e.target === '2001:db8:7::/48')!.remainingSeconds, null);
  assert.deepEqual((await store.liveBans(Date.now())).map((b) => b.target).sort(), listed.map((e) => e.target).sort(), 'the same set as the replay');
});

test(
  'from redis: the snapshot plus the changes since it restore exactly what the hash holds; a broken snapshot falls back to the hash',
  { timeout: 60_000 },
  async () => {
    const redis = new RedisServer();
    await redis.start();
    const said: string[] = [];
    const store = new RedisStore({ url: redis.url, prefix: 'sxt', maxlen: 10_000, buffer: 100_000 }, (l) => said.push(l));
    try {
      assert.ok(await store.ready(5000), 'redis answers');
      const drain = async () => {
        while (store.health().buffered > 0) await new Promise((r) => setTimeout(r, 10));
      };
      const now = Date.now();
      const before: BanRecord[] = [];
      for (let i = 0; i < 3000; i++) before.push(ban(`10.1.${i >> 8}.${i & 255}`, now + 600_000, i % 3 ? 'here' : 'gw-b'));
      store.record([...before, ban('2001:db8:9::/48', null), ban('192.0.2.0/24', now + 600_000)]);
      await drain();
      assert.equal(await store.snapshot(), undefined, 'not due for a small banlog');
      const snap = await store.snapshot(true);
      assert.equal(snap?.bans, 3002);
      const meta1 = await store.client.hgetall('sxt:snap');
      // after the snapshot: new bans, renewals, unbans of snapshot targets, one that lapses
      store.record([
        ban('10.2.0.1', now + 600_000),
        ban('10.1.0.5', now + 3_600_000), // renewed
        { op: 'unban', time: now, target: '10.1.0.6', why: 'by hand' },
        { op: 'unban', time: now, target: '2001:db8:9::/48', why: 'by hand' },
        ban('10.1.0.7', now + 1500), // lapses before the restore
      ]);
      await drain();
      await new Promise((r) => setTimeout(r, 1600));
      const truth = (await store.liveBans(Date.now())).map((b) => b.target).sort();
      assert.equal(truth.length, 3000);

      const restored = async () => {
        k.reset();
        const service = new BanService({ obj: k.obj } as unknown as Gateway, store, undefined, 'here');
        const n = await service.restoreStream(store.streamBans());
        const listed = await service.list();
        assert.equal(n, listed.length);
        return listed.sort((a, b) => a.target.localeCompare(b.target));
      };
      const fromSnap = await restored();
      assert.deepEqual(said, [], 'the snapshot was used');
      assert.deepEqual(fromSnap.map((e) => e.target).sort(), truth);
      assert.ok(fromSnap.find((e) => e.target === '10.1.0.5')!.remainingSeconds! > 3500, 'the renewal after the snapshot wins');
      assert.equal(fromSnap.find((e) => e.target === '10.1.0.0')!.origin, 'fleet', "another gateway's ban comes back as a fleet ban");
      assert.equal(fromSnap.find((e) => e.target === '10.1.0.1')!.origin, 'manual');

      await store.client.del('sxt:snap:1:0'); // a chunk gone: the hash is read whole instead
      const fromHash = await restored();
      assert.match(said.join('\n'), /snapshot 1 unusable \(a snapshot chunk is missing\); reading sxt:bans whole/);
      assert.deepEqual(fromHash.map((e) => e.target).sort(), truth);

      // two newer snapshots trim the banlog past what snapshot 1 needs: a reader still holding it must notice
      for (const net of [5, 6]) {
        store.record(Array.from({ length: 300 }, (_, i) => ban(`10.${net}.${i >> 8}.${i & 255}`, now + 600_000)));
        await drain();
        assert.ok(await store.snapshot(true));
      }
      await store.client.hset('sxt:snap', meta1);
      const truth2 = (await store.liveBans(Date.now())).map((b) => b.target).sort();
      said.length = 0;
      assert.deepEqual((await restored()).map((e) => e.target).sort(), truth2);
      assert.match(said.join('\n'), /snapshot 1 unusable \(sxt:banlog was trimmed past it\); reading sxt:bans whole/);
    } finally {
      await store.close();
      await redis.destroy();
    }
  },
);

test(
  'from redis without a snapshot: the hash read whole restores what the snapshot restores; bad entries are named and skipped',
  { timeout: 60_000 },
  async () => {
    const redis = new RedisServer();
    await redis.start();
    const said: string[] = [];
    const store = new RedisStore({ url: redis.url, prefix: 'sxh', maxlen: 10_000, buffer: 100_000 }, (l) => said.push(l));
    try {
      assert.ok(await store.ready(5000), 'redis answers');
      const now = Date.now();
      const recs: BanRecord[] = [];
      for (let i = 0; i < 70_000; i++)
        recs.push(ban(`10.${(i >> 16) + 7}.${(i >> 8) & 255}.${i & 255}`, i % 5 ? now + 600_000 + i : null, i % 3 ? 'here' : 'gw-b'));
      recs.push({ ...ban('192.0.2.9', now + 600_000), origin: 'auto', port: 23, proto: 'tcp', kind: 'syn' });
      recs.push(ban('198.51.100.1', now - 1000), ban('2001:db8:9::/48', null, 'gw-b'), ban('2001:db8::7', now + 600_000), ban('203.0.113.0/24', now + 600_000));
      store.record(recs);
      while (store.health().buffered > 0) await new Promise((r) => setTimeout(r, 10));
      await store.client.hset(
        'sxh:bans',
        '10.99.0.1',
        '{"op":"ban","targ',
        '10.99.0.2',
        JSON.stringify({ ...ban('10.99.0.2', now + 600_000), port: 70000 }),
        '10.99.0.3',
        JSON.stringify(ban('10.99.0.4', null)),
      );
      const restored = async (opts: { foreign?: boolean } = {}) => {
        emptyBans(); // more than the fixture's reset() empties
        k.reset();
        const service = new BanService({ obj: k.obj } as unknown as Gateway, store, undefined, 'here');
        const n = await service.restoreStream(store.streamBans(), opts);
        const listed = await service.list();
        assert.equal(n, listed.length);
        return listed.sort((a, b) => a.target.localeCompare(b.target));
      };
      const fromHash = await restored();
      assert.equal(fromHash.length, 70_000 + 4, 'the lapsed ban and the three bad entries left out');
      assert.deepEqual([...new Set(said)].sort(), [
        // (list() reads the hash too)
        'redis: sxh:bans field 10.99.0.1: not valid JSON (truncated or corrupt); skipped',
        'redis: sxh:bans field 10.99.0.2: port: Too big: expected number to be <=65535; skipped',
        'redis: sxh:bans field 10.99.0.3: its target is 10.99.0.4; skipped',
      ]);
      assert.match(fromHash.find((e) => e.target === '192.0.2.9')!.probe ?? '', /to TCP port 23$/, 'port and protocol come back');
      assert.equal(fromHash.find((e) => e.target === '10.7.0.0')!.origin, 'fleet');
      assert.equal((await restored({ foreign: false })).length, recs.filter((r) => r.gateway === 'here' && r.expires !== now - 1000).length);
      await store.client.hdel('sxh:bans', '10.99.0.1', '10.99.0.2', '10.99.0.3');
      assert.ok(await store.snapshot(true));
      said.length = 0;
      const fromSnap = await restored();
      // the same bans, origins and times (the seconds left read a little later) as from the snapshot
      const timeless = (l: ListEntry[]) => l.map((e) => ({ ...e, expires: null, remainingSeconds: e.remainingSeconds === null }));
      assert.deepEqual(timeless(fromSnap), timeless(fromHash));
      fromSnap.forEach((e, i) => assert.ok(Math.abs((e.remainingSeconds ?? 0) - (fromHash[i]!.remainingSeconds ?? 0)) <= 30, e.target));
      assert.deepEqual(said, [], 'the snapshot was used');
    } finally {
      emptyBans();
      await store.close();
      await redis.destroy();
    }
  },
);

test('from the journal: bans.snap plus the lines after it restore what a replay gives; a corrupt line after it is reported by its number', async () => {
  k.reset();
  const jdir = mkdtempSync(join(tmpdir(), 'sx-restore-snap-'));
  try {
    const now = Date.now();
    const store = new JournalStore(jdir);
    store.bans.append(Array.from({ length: 300 }, (_, i) => ban(`10.3.${i >> 8}.${i & 255}`, now + 600_000, i % 2 ? 'here' : 'gw-b')));
    store.bans.append([ban('2001:db8:3::/48', null), ban('10.3.0.1', now + 3_600_000)]);
    assert.ok(store.bans.compactIfLarger(1000, now));
    store.bans.append([ban('10.4.0.1', now + 600_000), { op: 'unban', time: now, target: '10.3.0.2', why: 'by hand' }]);
    appendFileSync(store.bans.file, '{"op":"ban","targ\n');
    store.bans.append([{ op: 'unban', time: now, target: '2001:db8:3::/48', why: 'by hand' }]);
    const service = new BanService({ obj: k.obj } as unknown as Gateway, store, undefined, 'here');
    const n = await service.restoreStream(store.streamBans());
    assert.deepEqual(store.problems, [`${store.bans.file}:304: not valid JSON (truncated or corrupt); skipped`], 'bans.snap used, the line counted');
    const listed = await service.list();
    assert.equal(n, 300);
    assert.deepEqual(listed.map((e) => e.target).sort(), (await store.liveBans(Date.now())).map((b) => b.target).sort());
    assert.ok(listed.find((e) => e.target === '10.3.0.1')!.remainingSeconds! > 3500);
    assert.equal(listed.find((e) => e.target === '10.3.0.0')!.origin, 'fleet');
    k.reset(); // a gateway that does not follow the fleet takes back only its own
    assert.equal(await service.restoreStream(store.streamBans(), { foreign: false }), 151);
    assert.ok((await service.list()).every((e) => e.origin !== 'fleet'));
    k.reset(); // the allow and never-ban lists as they are now win over what was stored
    const refused: string[] = [];
    const protect = [
      { net: parseCidr('10.3.0.0/30'), why: 'on the allow list' },
      { net: parseCidr('10.4.0.1'), why: "this host's address" },
    ];
    assert.equal(await service.restoreStream(store.streamBans(), { protect, refused: (t, why) => refused.push(`${t}: ${why}`) }), 296);
    assert.deepEqual(refused.sort(), [
      '10.3.0.0: it is on the allow list',
      '10.3.0.1: it is on the allow list',
      '10.3.0.2: it is on the allow list', // in bans.snap; unbanned after it, but met first
      '10.3.0.3: it is on the allow list',
      "10.4.0.1: it is this host's address",
    ]);
    assert.deepEqual([...new Set(store.problems)], [`${store.bans.file}:304: not valid JSON (truncated or corrupt); skipped`]);
  } finally {
    rmSync(jdir, { recursive: true, force: true });
  }
});
