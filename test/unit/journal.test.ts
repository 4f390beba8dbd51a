import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BanJournal, PartialWrite, type BanRecord } from '../../src/adapters/journal.js';
import { JournalStore } from '../../src/adapters/history.js';
import type { JournalRecord } from '../../src/core/records.js';

const ban = (target: string, time: number, expires: number | null = null): BanRecord => ({
  op: 'ban',
  time,
  target,
  ttl: expires ? 60 : 0,
  expires,
  origin: 'manual',
  reason: 'r',
  by: 'root',
});

test('replay keeps the latest ban per target and forgets unbanned ones', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sx-journal-'));
  try {
    const j = new BanJournal(dir);
    j.append([ban('1.2.3.4', 1), ban('5.6.7.8', 2), { op: 'unban', time: 3, target: '1.2.3.4', why: 'x' }, ban('5.6.7.8', 4)]);
    const r = j.replay();
    assert.deepEqual([...r.bans.keys()], ['5.6.7.8']);
    assert.equal(r.bans.get('5.6.7.8')!.time, 4);
    assert.deepEqual(r.errors, []);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('a corrupt or truncated line is reported with its position and skipped; the rest loads', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sx-journal-'));
  try {
    const j = new BanJournal(dir);
    j.append([ban('1.2.3.4', 1)]);
    appendFileSync(j.file, '{"op":"ban","target":"9.9.9\n');
    j.append([ban('5.6.7.8', 2)]);
    const r = j.replay();
    assert.deepEqual([...r.bans.keys()].sort(), ['1.2.3.4', '5.6.7.8']);
    assert.deepEqual(r.errors, [{ line: 2, message: 'not valid JSON (truncated or corrupt)' }]);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('compaction keeps only live bans', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sx-journal-'));
  try {
    const j = new BanJournal(dir);
    j.append(Array.from({ length: 200 }, (_, i) => ban(`10.0.0.${i}`, i, 1000)));
    j.append([ban('1.1.1.1', 5, null)]);
    assert.ok(j.compactIfLarger(100, 2000));
    assert.deepEqual([...j.replay().bans.keys()], ['1.1.1.1']);
    assert.ok(statSync(j.file).size < 200);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('compaction writes bans.snap; it stands for the journal until the journal is rewritten, and a table large by itself is not rewritten at every start', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sx-journal-'));
  try {
    const j = new BanJournal(dir);
    assert.equal(j.readSnapshot(), undefined, 'none before a compaction');
    j.append(Array.from({ length: 50 }, (_, i) => ban(`10.0.0.${i}`, i, null)));
    j.append(Array.from({ length: 50 }, (_, i) => ban(`10.0.0.${i}`, 100 + i, null))); // renewals: half the lines are dead
    assert.ok(j.compactIfLarger(100, 2000));
    const snap = j.readSnapshot()!;
    assert.equal(snap.covered, statSync(j.file).size);
    assert.equal(snap.lines, 50);
    const first = snap.chunks[0]!;
    assert.ok('ok' in first, JSON.stringify(first));
    assert.equal(first.ok.v4.count, 50);
    j.append([ban('10.0.1.1', 500, null)]);
    assert.equal(j.readSnapshot()!.covered, snap.covered, 'appending keeps it valid');
    assert.equal(j.compactIfLarger(100, 2000), false, 'not yet twice what the last compaction left');
    const text = readFileSync(j.file, 'utf8');
    writeFileSync(`${j.file}.new`, text);
    renameSync(`${j.file}.new`, j.file); // replaced, as an editor does
    assert.throws(() => j.readSnapshot(), /bans.jsonl was replaced or rewritten since/);
    writeFileSync(j.snapFile, 'garbage');
    assert.throws(() => j.readSnapshot(), /header is unreadable/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('one impossible record (valid JSON) is skipped with its line; every other ban loads', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sx-journal-'));
  try {
    const j = new BanJournal(dir);
    j.append([ban('1.2.3.4', 1)]);
    appendFileSync(j.file, JSON.stringify({ ...ban('6.6.6.6', 2), port: 99999999999 }) + '\n');
    j.append([ban('5.6.7.8', 3)]);
    const r = j.replay();
    assert.deepEqual([...r.bans.keys()].sort(), ['1.2.3.4', '5.6.7.8']);
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0]!.line, 2);
    assert.match(r.errors[0]!.message, /^port: /);
    assert.throws(() => j.append([{ ...ban('7.7.7.7', 4), port: 99999999999 }]), /impossible record/, 'nor is one written');
  } finally {
    rmSync(dir, { recursive: true });
  }
});

async function streamed(store: JournalStore): Promise<string[]> {
  const { packedRecords, isPacked } = await import('../../src/core/ban-pack.js');
  const live = new Map<string, boolean>();
  for await (const chunk of store.streamBans()) {
    if (isPacked(chunk)) for (const b of packedRecords(chunk)) live.set(b.target, true);
    else for (const r of chunk as JournalRecord[]) live.set(r.target, r.op === 'ban');
  }
  return [...live]
    .filter(([, on]) => on)
    .map(([t]) => t)
    .sort();
}

test('a bans.snap chunk that fails its checksum is replaced by the lines it stood for; a bad header by the whole journal', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sx-journal-'));
  try {
    const j = new BanJournal(dir);
    const made = Array.from({ length: 300 }, (_, i) => ban(`10.0.${i >> 8}.${i & 255}`, i, null));
    j.append(made);
    j.append(made.slice(0, 100).map((b) => ({ ...b, time: b.time + 1000 })));
    assert.ok(j.compactIfLarger(100, 2000));
    j.append([{ op: 'unban', time: 5000, target: '10.0.0.3', why: 'x' }, ban('192.0.2.1', 5001)]);
    const want = [...made.map((b) => b.target).filter((t) => t !== '10.0.0.3'), '192.0.2.1'].sort();
    const store = new JournalStore(dir);
    assert.deepEqual(await streamed(store), want);
    assert.deepEqual(store.problems, []);
    const snap = readFileSync(j.snapFile);
    const flipped = Buffer.from(snap);
    for (let i = 0; i < 50; i++) flipped[snap.length - 1 - i * 7]! ^= 0x5a; // in the chunk
    writeFileSync(j.snapFile, flipped);
    const s2 = new JournalStore(dir);
    assert.deepEqual(await streamed(s2), want, 'exactly the bans that were made');
    assert.match(s2.problems.join('\n'), /chunk 1 not used \(a packed ban chunk fails its checksum\); reading lines 1-/);
    const head = Buffer.from(snap);
    head[12]! ^= 0x01; // in the header
    writeFileSync(j.snapFile, head);
    const s3 = new JournalStore(dir);
    assert.deepEqual(await streamed(s3), want);
    assert.match(s3.problems.join('\n'), /bans.snap: not used, its header (fails its checksum|is unreadable); reading .* whole/);
    const old = Buffer.from(snap);
    old.write('SXJ1', 0, 'latin1');
    writeFileSync(j.snapFile, old);
    const s4 = new JournalStore(dir);
    assert.deepEqual(await streamed(s4), want);
    assert.match(s4.problems.join('\n'), /not used, an older format \(SXJ1\)/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('PartialWrite says what was stored; the journal store reports it once at close as the CLI line', async () => {
  const e = new PartialWrite('/x/bans.jsonl', 3, 10000, 'ENOSPC');
  assert.equal(e.message, '/x/bans.jsonl: stored 3 of 10000 record(s); the disk is full');
  const dir = mkdtempSync(join(tmpdir(), 'sx-journal-'));
  try {
    const store = new JournalStore(dir);
    store.record([ban('1.2.3.4', 1)]);
    await store.close();
    writeFileSync(join(dir, 'blocker'), '');
    const blocked = new JournalStore(join(dir, 'blocker')); // its directory is a file: nothing can be stored
    blocked.record([ban('1.2.3.4', 1), ban('1.2.3.5', 1)]);
    await assert.rejects(blocked.close(), /stored 0 of 2 bans in .*bans.jsonl/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});
