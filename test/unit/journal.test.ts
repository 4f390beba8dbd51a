import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BanJournal, type BanRecord } from '../../src/adapters/journal.js';

const ban = (target: string, time: number, expires: number | null = null): BanRecord => ({
  op: 'ban', time, target, ttl: expires ? 60 : 0, expires, origin: 'manual', reason: 'r', by: 'root',
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
    assert.equal(snap.chunks[0]!.v4.count, 50);
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
