/**
 * End to end: storage under hostile conditions. An impossible record in the
 * journal or in Redis, a bans.snap with flipped bytes, Redis gone while bans
 * are made and while the daemon stops, a state directory on a full disk. In
 * each case a restore after a reboot gives exactly the bans that were made.
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createLab, describeRun, requireTools, runSync, sleep, type Daemon, type Lab } from '../helpers/lab.js';
import { RedisServer } from '../helpers/redis.js';

const N = 10_020;
/** N addresses from 100.64.0.0/10 (nothing of the lab's), as a ban file. */
function banFile(lab: Lab, n = N): { file: string; targets: string[] } {
  const targets = Array.from({ length: n }, (_, i) => `100.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`);
  const file = join(lab.confDir, 'bans.txt');
  writeFileSync(file, targets.join('\n') + '\n');
  return { file, targets };
}

function config(lab: Lab, redis?: RedisServer, extra = ''): string {
  return lab.writeConfig('sentry.yaml', `tcp_ports: "1,11"\nudp_ports: ""\nban_ttl: 1h\n${redis ? `redis: { url: "${redis.url}" }\n` : ''}${extra}`);
}

async function ok(lab: Lab, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const r = await lab.cli(args, { timeoutMs: 120_000 });
  assert.equal(r.code, 0, describeRun(r));
  return r;
}

async function listed(lab: Lab, cfg: string): Promise<Array<{ target: string; remainingSeconds: number | null }>> {
  return (JSON.parse((await ok(lab, ['list', '--json', '--config', cfg])).stdout) as { bans: Array<{ target: string; remainingSeconds: number | null }> }).bans;
}

const IMPOSSIBLE = {
  op: 'ban',
  time: Date.now(),
  target: '203.0.113.99',
  ttl: 3600,
  expires: Date.now() + 3_600_000,
  origin: 'manual',
  reason: 'x',
  by: 'root',
  port: 99_999_999_999,
};

/** The daemon's "restored N ban(s)" count. */
async function restored(d: Daemon): Promise<number> {
  const line = await d.waitForLine(/^sentry-xdp: restored \d+ ban\(s\)/, 20_000);
  return Number(/restored (\d+)/.exec(line)![1]);
}

describe('storage under hostile conditions', () => {
  before(() => requireTools('hping3', 'ping', 'redis-server', 'mount', 'umount'));

  test(
    'one impossible record in bans.jsonl: a restore after a reboot gives every other ban and names the record by file:line',
    { timeout: 120_000 },
    async (t) => {
      const lab = createLab(t);
      const cfg = config(lab);
      const { file } = banFile(lab);
      await ok(lab, ['ban', '--file', file, '--ttl', '1h', '--config', cfg]);
      const journal = join(lab.stateDir, 'bans.jsonl');
      appendFileSync(journal, JSON.stringify(IMPOSSIBLE) + '\n');
      const badLine = readFileSync(journal, 'utf8').trimEnd().split('\n').length;
      await lab.reboot();
      const d = await lab.startDaemon({ config: cfg });
      assert.equal(await restored(d), N, d.output());
      assert.equal(d.matching(new RegExp(`journal: ${journal.replace(/[.]/g, '\\.')}:${badLine}: port: .*; skipped`)).length, 1, d.output());
      assert.equal((await lab.status()).bansInForce, N);
    },
  );

  test(
    'one impossible record in the redis hash and in the fleet stream: the restore gives every other ban, the fleet goes on',
    { timeout: 150_000 },
    async (t) => {
      const redis = new RedisServer();
      t.after(() => redis.destroy());
      await redis.start();
      const lab = createLab(t);
      const cfg = config(lab, redis, 'fleet: { name: gw-a }\n');
      const { file } = banFile(lab);
      await ok(lab, ['ban', '--file', file, '--ttl', '1h', '--config', cfg]);
      const r = new Redis({ path: redis.socket });
      r.on('error', () => {}); // redis goes before this client at the end
      t.after(() => r.disconnect());
      await r.hset('sentry-xdp:bans', IMPOSSIBLE.target, JSON.stringify(IMPOSSIBLE));
      await lab.reboot();
      let d = await lab.startDaemon({ config: cfg });
      assert.equal(await restored(d), N, d.output());
      await d.waitForLine(/redis: sentry-xdp:bans field 203\.0\.113\.99: port: .*; skipped/, 5000);
      // the fleet: an impossible message is reported and passed over, the next one applied
      await d.waitForLine(/^sentry-xdp: fleet: gateway "gw-a"/, 5000);
      await r.xadd('sentry-xdp:fleet', '*', 'e', JSON.stringify({ ...IMPOSSIBLE, gateway: 'gw-b' }));
      await r.xadd('sentry-xdp:fleet', '*', 'e', JSON.stringify({ ...IMPOSSIBLE, target: '203.0.113.98', port: 22, gateway: 'gw-b' }));
      await d.waitForLine(/fleet: sentry-xdp:fleet entry \S+: port: .*; skipped/, 5000);
      await d.waitForLine(/Host 203\.0\.113\.98 has been blocked via fleet ban from gateway gw-b/, 5000);
      // a snapshot is due (over 10 000 bans): written without the bad entry, and used by the next restore
      await d.waitForLine(/redis: snapshot of \d+ ban\(s\) in force written/, 20_000);
      await d.stop();
      await lab.reboot();
      d = await lab.startDaemon({ config: cfg });
      // (the fleet's ban is in the hash only when the gateway that made it writes it there; this test sent the message alone)
      assert.equal(await restored(d), N, d.output());
      assert.equal(d.matching(/snapshot .* unusable/).length, 0, d.output());
      // a snapshot chunk with flipped bytes: one line, and the hash is read instead
      await d.stop();
      const gen = await r.hget('sentry-xdp:snap', 'gen');
      await r.setrange(`sentry-xdp:snap:${gen}:0`, 1000, 'garbage!');
      await lab.reboot();
      d = await lab.startDaemon({ config: cfg });
      assert.equal(await restored(d), N, d.output());
      assert.equal(d.matching(/redis: snapshot \d+ unusable \(a packed ban chunk fails its checksum\); reading sentry-xdp:bans whole/).length, 1, d.output());
    },
  );

  test('a bans.snap with 50 flipped bytes: the restore gives exactly the bans that were made, with their time', { timeout: 150_000 }, async (t) => {
    const lab = createLab(t);
    const cfg = config(lab, undefined, 'history: { max_bytes: 1048576 }\n');
    const { file, targets } = banFile(lab);
    await ok(lab, ['ban', '--file', file, '--ttl', '1h', '--config', cfg]);
    let d = await lab.startDaemon({ config: cfg });
    await d.waitForLine(/journal: compacted to the bans in force/, 20_000);
    await d.stop();
    const snap = join(lab.stateDir, 'bans.snap');
    assert.ok(existsSync(snap), 'compaction wrote bans.snap');
    // changes after the snapshot: in the lines after what it covers
    await ok(lab, ['unban', targets[0]!, targets[5000]!, '--config', cfg]);
    await ok(lab, ['ban', '198.51.100.1', '--ttl', '2h', '--config', cfg]);
    const buf = readFileSync(snap);
    const size = statSync(snap).size;
    for (let i = 0; i < 50; i++) {
      const at = Math.floor(size * 0.2 + ((size * 0.8 - 1) * i) / 50);
      buf[at]! ^= 0xa5;
    }
    writeFileSync(snap, buf);
    await lab.reboot();
    d = await lab.startDaemon({ config: cfg });
    const want = [...targets.filter((x) => x !== targets[0] && x !== targets[5000]), '198.51.100.1'].sort();
    assert.equal(await restored(d), want.length, d.output());
    assert.equal(d.matching(/bans\.snap: chunk 1 not used \(a packed ban chunk fails its checksum\)/).length, 1, d.output());
    const l = await listed(lab, cfg);
    assert.deepEqual(l.map((e) => e.target).sort(), want);
    assert.ok(
      l.every((e) => e.remainingSeconds !== null && e.remainingSeconds > 0 && e.remainingSeconds <= (e.target === '198.51.100.1' ? 7200 : 3600)),
      'no ban stretched',
    );
  });

  test(
    'redis stopped: ban and unban wait in the outbox and reach redis when it is back; SIGTERM ends the daemon within 5 s',
    { timeout: 150_000 },
    async (t) => {
      const redis = new RedisServer();
      t.after(() => redis.destroy());
      await redis.start();
      const lab = createLab(t);
      const cfg = config(lab, redis);
      const [A, B, C] = ['203.0.113.10', '203.0.113.11', '203.0.113.12'];
      await ok(lab, ['ban', A!, B!, '--ttl', '1h', '--config', cfg]);
      let d = await lab.startDaemon({ config: cfg });
      await redis.stop();
      await d.waitForLine(/redis: .*detection and blocking go on/, 10_000);
      const banned = await lab.cli(['ban', C!, '--ttl', '1h', '--config', cfg]);
      assert.equal(banned.code, 0, describeRun(banned));
      assert.match(banned.stderr, /wait in the outbox/, describeRun(banned));
      const lifted = await lab.cli(['unban', A!, '--config', cfg]);
      assert.equal(lifted.code, 0, describeRun(lifted));
      assert.match(lifted.stderr, /wait in the outbox/, describeRun(lifted));
      const t0 = Date.now();
      d.child.kill('SIGTERM');
      await Promise.race([d.done, sleep(8000)]);
      const ms = Date.now() - t0;
      assert.ok(d.exited && ms < 5000, `the daemon stopped after ${ms} ms (exited: ${d.exited})\n${d.output()}`);
      // back, and a reboot: the restore has what was made during the outage
      await redis.start();
      await lab.reboot();
      d = await lab.startDaemon({ config: cfg });
      await d.waitForLine(/record\(s\) from the outbox written/, 10_000);
      const l = await listed(lab, cfg);
      assert.deepEqual(l.map((e) => e.target).sort(), [B, C], JSON.stringify(l));
      assert.ok(!existsSync(join(lab.stateDir, 'redis-outbox.jsonl')), 'the outbox is empty');
      const r = new Redis({ path: redis.socket });
      r.on('error', () => {});
      t.after(() => r.disconnect());
      assert.deepEqual((await r.hkeys('sentry-xdp:bans')).sort(), [B, C]);
    },
  );

  test('a state directory on a full disk: ban --file exits 1 and says what was stored; the journal stays parseable', { timeout: 120_000 }, async (t) => {
    const lab = createLab(t);
    const dir = mkdtempSync('/tmp/sentry-xdp-test-tmpfs-');
    const state = join(dir, 'state');
    mkdirSync(state);
    const unmount = () => {
      runSync(['umount', '-l', state]);
      rmSync(dir, { recursive: true, force: true });
    };
    process.once('exit', unmount);
    t.after(() => {
      process.off('exit', unmount);
      unmount();
    });
    const m = runSync(['mount', '-t', 'tmpfs', '-o', 'size=256k,mode=0750', 'tmpfs', state]);
    assert.equal(m.code, 0, describeRun(m));
    const cfg = config(lab);
    const { file } = banFile(lab, 10_000);
    const env = { SENTRY_XDP_STATE_DIR: state };
    const r = await lab.cli(['ban', '--file', file, '--ttl', '1h', '--config', cfg], { env, timeoutMs: 120_000 });
    assert.equal(r.code, 1, describeRun(r));
    const said = /stored (\d+) of 10000 bans in \S+bans\.jsonl; the disk is full/.exec(r.stderr);
    assert.ok(said, describeRun(r));
    assert.doesNotMatch(r.stdout, /banned/, describeRun(r));
    const lines = readFileSync(join(state, 'bans.jsonl'), 'utf8').split('\n');
    assert.equal(lines.pop(), '', 'ends with a whole line');
    assert.equal(lines.length, Number(said[1]), 'as many records as it says');
    for (const l of lines) JSON.parse(l);
  });
});
