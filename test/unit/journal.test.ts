import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
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
