/**
 * End to end: one ban lifecycle. However an automatic ban ends (manual unban,
 * `unban --all`, eviction; the fleet unban is in history.test.ts), its
 * hosts.deny line comes out and UNBAN_CMD runs once. A probe while the daemon
 * restores its bans at start gives a ban that `list` shows and `unban` lifts,
 * and the restored count is what the store held. nft drift inside our table is
 * repaired within seconds.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { hookedConfig, until } from '../helpers/hooks.js';
import { ATK4, createLab, describeRun, GW4, requireTools, sleep } from '../helpers/lab.js';

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test(
  'with kill_hosts_deny and unban_cmd set, a manual unban, `unban --all` and an eviction each take the hosts.deny line out and run unban_cmd once',
  { timeout: 90_000 },
  async (t) => {
    requireTools('hping3');
    const lab = createLab(t);
    const { cfg, deny, unbans } = hookedConfig(lab, 'max_bans: 2\n');
    const line = `ALL: ${ATK4}`;
    const denied = () => readFileSync(deny, 'utf8').split('\n').includes(line);
    const d = await lab.startDaemon({ config: cfg });
    const autoBan = async () => {
      const mark = d.lines.length;
      await lab.probe(ATK4);
      await d.waitForLine(new RegExp(`^attackalert: Host ${esc(ATK4)} has been blocked`), 5000, mark);
    };
    const lifted = async (how: string, n: number) => {
      await until(`${how}: the hosts.deny line out and unban_cmd run ${n} time(s)`, () => !denied() && unbans().length === n);
      assert.ok(readFileSync(deny, 'utf8').includes('sshd: 192.0.2.1\n'), `${how}: the admin's line stays`);
    };

    await autoBan();
    await until('the hosts.deny line in', denied);
    const u = await lab.cli(['unban', ATK4, '--config', cfg]);
    assert.equal(u.code, 0, describeRun(u));
    await lifted('manual unban', 1);

    await autoBan();
    await until('the hosts.deny line in again', denied);
    const all = await lab.cli(['unban', '--all', '--config', cfg]);
    assert.equal(all.code, 0, describeRun(all));
    await lifted('unban --all', 2);

    // two manual bans fill max_bans: the next automatic one is evicted (manual ones never are)
    const m = await lab.cli(['ban', '203.0.113.1', '203.0.113.2', '--config', cfg]);
    assert.equal(m.code, 0, describeRun(m));
    await autoBan();
    await d.waitForLine(new RegExp(`^attackalert: Host ${esc(ATK4)} has been unblocked \\(evicted: the ban table is over its cap of 2\\)`), 5000);
    await lifted('eviction', 3);
    await sleep(1000);
    assert.deepEqual(unbans(), [ATK4, ATK4, ATK4], 'once per end, never twice');
  },
);

test(
  'a probe during the start-up restore gives a ban that list shows and unban lifts; the restored count is what the store held',
  { timeout: 120_000 },
  async (t) => {
    requireTools('hping3', 'nft');
    const lab = createLab(t);
    const cfg = lab.writeConfig('sentry.yaml', 'tcp_ports: "1,11,15,79,111"\nban_ttl: 1h\n');
    // the store: 100 000 bans in force, and a ban of the scanner that was lifted since (a later unban record)
    const file = `${lab.confDir}/many.txt`;
    const many: string[] = [];
    for (let i = 0; i < 100_000; i++) many.push(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    writeFileSync(file, many.join('\n'));
    for (const args of [
      ['ban', '--file', file, '--ttl', '1h'],
      ['ban', ATK4],
      ['unban', ATK4],
    ]) {
      const r = await lab.cli([...args, '--config', cfg], { timeoutMs: 120_000 });
      assert.equal(r.code, 0, describeRun(r));
    }
    await lab.reboot();
    // probes every 2 ms from before the daemon starts until after it is up: some land while it restores
    const probes = lab.atk(['hping3', '-q', '-c', '4000', '-i', 'u2000', '-S', '-p', '1', GW4], { timeoutMs: 60_000 });
    const d = await lab.startDaemon({ config: cfg });
    await probes;
    assert.equal(d.matching(/^sentry-xdp: restored 100000 ban\(s\) in force from the journal/).length, 1, `exactly what the store held\n${d.output()}`);
    await d.waitForLine(new RegExp(`^attackalert: Host ${esc(ATK4)} has been blocked via XDP drop`), 5000);
    const l = await lab.cli(['list', '--json', '--config', cfg], { timeoutMs: 60_000 });
    assert.equal(l.code, 0, describeRun(l));
    const listed = (JSON.parse(l.stdout) as { bans: Array<{ target: string; origin: string }> }).bans.filter((e) => e.target === ATK4);
    assert.deepEqual(
      listed.map((e) => e.origin),
      ['auto'],
      'list shows the ban the kernel made during the restore',
    );
    const inNft = await lab.gw(['nft', 'get', 'element', 'inet', 'sentry_xdp', 'bans_v4', `{ ${ATK4} }`]);
    assert.equal(inNft.code, 0, `and nft holds it\n${describeRun(inNft)}`);
    const u = await lab.cli(['unban', ATK4, '--config', cfg]);
    assert.equal(u.code, 0, describeRun(u));
    assert.ok((await lab.pingGetsThrough(false)).ok, 'unban lifted it: no ghost left in nftables');
  },
);

test('nft drift inside our table (a flushed set, a deleted chain) is repaired within seconds, and said', { timeout: 60_000 }, async (t) => {
  requireTools('nft');
  const lab = createLab(t);
  const cfg = lab.writeConfig('sentry.yaml', 'tcp_ports: "1,11,15,79,111"\nban_ttl: 1h\n');
  const d = await lab.startDaemon({ config: cfg });
  const b = await lab.cli(['ban', '203.0.113.7', '203.0.113.8', '2001:db8:9::/48', '--ttl', '1h', '--config', cfg]);
  assert.equal(b.code, 0, describeRun(b));
  await sleep(6000); // bans younger than 5 s may still be on their way into nft; these are settled
  const elements = async () => {
    const r = await lab.gw(['nft', 'list', 'table', 'inet', 'sentry_xdp']);
    return ['203.0.113.7', '203.0.113.8', '2001:db8:9::/48'].filter((e) => r.stdout.includes(e)).length;
  };
  assert.equal(await elements(), 3);

  let mark = d.lines.length;
  const flush = await lab.gw(['nft', 'flush', 'set', 'inet', 'sentry_xdp', 'bans_v4']);
  assert.equal(flush.code, 0, describeRun(flush));
  const t0 = Date.now();
  await d.waitForLine(
    /^sentry-xdp: nft table inet sentry_xdp had drifted from the kernel's bans \(2 missing, 0 not banned\); re-created it with 3 ban\(s\)/,
    4000,
    mark,
  );
  assert.ok(Date.now() - t0 <= 3000, `repaired after ${Date.now() - t0} ms`);
  assert.equal(await elements(), 3, 'the set holds its bans again');

  mark = d.lines.length;
  const del = await lab.gw(['nft', 'delete', 'chain', 'inet', 'sentry_xdp', 'prerouting']);
  assert.equal(del.code, 0, describeRun(del));
  await d.waitForLine(/^sentry-xdp: nft table inet sentry_xdp was damaged .*; re-created it with 3 ban\(s\)/, 4000, mark);
  const chain = await lab.gw(['nft', 'list', 'chain', 'inet', 'sentry_xdp', 'prerouting']);
  assert.equal(chain.code, 0, describeRun(chain));
  assert.match(chain.stdout, /ip saddr @bans_v4 drop/);
  const s = await lab.status();
  assert.equal(s.daemon?.nftHealthy, true, JSON.stringify(s.daemon));
});
