import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Outbox } from '../../src/adapters/outbox.js';
import { Rejects, type BanRecord } from '../../src/core/records.js';

const ban = (target: string, time: number): BanRecord => ({ op: 'ban', time, target, ttl: 0, expires: null, origin: 'manual', reason: 'r', by: 'root' });

test('the outbox keeps records in order; what Redis took is taken out, what came after stays', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sx-outbox-'));
  try {
    const ob = new Outbox(join(dir, 'state'));
    assert.equal(ob.size(), 0);
    ob.append([ban('192.0.2.1', 1), { op: 'unban', time: 2, target: '192.0.2.1', why: 'x' }]);
    appendFileSync(ob.file, '{"op":"ban","port":99999999999}\n');
    const rejects = new Rejects();
    const first = ob.peek(1 << 20, rejects);
    assert.deepEqual(
      first.events.map((e) => e.op),
      ['ban', 'unban'],
    );
    assert.equal(rejects.count, 1);
    assert.match(rejects.drain('x')[0]!, new RegExp(`^${ob.file}:3: .*; skipped$`), 'a bad line is skipped with its number');
    ob.append([ban('192.0.2.2', 3)]); // while the first part is on its way
    ob.drop(first.bytes);
    assert.deepEqual(
      ob.peek(1 << 20, new Rejects()).events.map((e) => e.op === 'ban' && e.target),
      ['192.0.2.2'],
    );
    ob.drop(ob.peek(1 << 20, new Rejects()).bytes);
    assert.equal(existsSync(ob.file), false, 'empty: gone');
    assert.throws(() => ob.append([{ ...ban('192.0.2.3', 4), port: 70000 }]), /impossible record/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('one sender at a time; a lock whose holder died is taken over', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sx-outbox-'));
  try {
    const ob = new Outbox(dir);
    let inner: boolean | undefined;
    assert.equal(await ob.sending(async () => void (inner = await new Outbox(dir).sending(async () => {}))), true);
    assert.equal(inner, true, 'the same process may send again (a lock of our own pid is ours)');
    symlinkSync('1', `${ob.file}.send`); // pid 1 lives: another sender
    assert.equal(await ob.sending(async () => assert.fail('must not run')), false);
    rmSync(`${ob.file}.send`);
    symlinkSync('999999999', `${ob.file}.lock`); // a writer that died holding the short lock
    ob.append([ban('192.0.2.1', 1)]);
    assert.equal(ob.peek(1 << 20, new Rejects()).events.length, 1);
  } finally {
    rmSync(dir, { recursive: true });
  }
});
