/**
 * Restoring bans from the history into the kernel table: the streaming path
 * (a fresh boot) must end exactly where a replay of the journal ends.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { JournalStore } from '../../src/adapters/history.js';
import type { BanRecord, JournalRecord } from '../../src/adapters/journal.js';
import { BanService } from '../../src/daemon/bans.js';
import type { Gateway } from '../../src/daemon/gateway.js';
import { KernelFixture } from '../helpers/kernel-fixture.js';

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

const ban = (target: string, expires: number | null, gateway = 'here'): BanRecord => ({
  op: 'ban', time: Date.now(), target, ttl: 60, expires, origin: 'manual', reason: 'r', by: 'root', gateway,
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
  assert.deepEqual(
    (await store.liveBans(Date.now())).map((b) => b.target).sort(),
    listed.map((e) => e.target).sort(),
    'the same set as the replay',
  );
});
