/**
 * End to end: history (a real redis-server started here, or the local
 * journal), restart after kill -9 and after a wiped bpffs, a fleet of two
 * gateways on one Redis, and Redis going away in the middle of a scan.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { hookedConfig, until } from '../helpers/hooks.js';
import { ATK4, createLab, describeRun, requireTools, sleep, type Daemon, type Lab } from '../helpers/lab.js';
import { RedisServer } from '../helpers/redis.js';

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function config(lab: Lab, redis: RedisServer | undefined, extra = ''): string {
  return lab.writeConfig(
    'sentry.yaml',
    `tcp_ports: "1,11,15,79,111"\nudp_ports: "161"\nban_ttl: 10m\n${redis ? `redis: { url: "${redis.url}" }\n` : ''}${extra}`,
  );
}

async function listJson(lab: Lab, cfg: string): Promise<Array<{ target: string; origin: string; remainingSeconds: number | null; gateway: string | null }>> {
  const r = await lab.cli(['list', '--json', '--config', cfg]);
  assert.equal(r.code, 0, describeRun(r));
  const j = JSON.parse(r.stdout) as {
    version: number;
    bans: Array<{ target: string; origin: string; remainingSeconds: number | null; gateway: string | null }>;
  };
  assert.equal(j.version, 1, 'list --json names its format version');
  return j.bans;
}

async function historyJson(lab: Lab, cfg: string, args: string[] = []): Promise<Array<Record<string, unknown>>> {
  const r = await lab.cli(['history', '--json', '--config', cfg, ...args]);
  assert.equal(r.code, 0, describeRun(r));
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const e = JSON.parse(l) as Record<string, unknown>;
      // one object a line, times as ISO-8601 (README "JSON output")
      assert.match(String(e.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, l);
      if (e.event === 'ban') assert.ok(e.expires === null || /Z$/.test(String(e.expires)), l);
      return e;
    });
}

async function banned(lab: Lab): Promise<boolean> {
  const p = await lab.ping(false);
  return !p.ok;
}

for (const store of ['redis', 'journal'] as const) {
  describe(`history and restart on ${store === 'redis' ? 'a real redis-server' : 'the local journal'}`, () => {
    let redis: RedisServer | undefined;
    before(async () => {
      requireTools('hping3', 'ping');
      if (store === 'redis') {
        redis = new RedisServer();
        await redis.start();
      }
    });
    after(async () => redis?.destroy());

    test(
      'alerts and bans appear in history; after kill -9 and a restart every ban is still enforced with its remaining time; after a wiped bpffs they come back from the store',
      { timeout: 90_000 },
      async (t) => {
        const lab = createLab(t);
        const cfg = config(lab, redis);
        let d: Daemon = await lab.startDaemon({ config: cfg });
        await lab.probe(ATK4, 11);
        await d.waitForLine(new RegExp(`^attackalert: Host ${esc(ATK4)} has been blocked`), 5000);
        const m = await lab.cli(['ban', '203.0.113.50', '--ttl', '1h', '--reason', 'manual one', '--config', cfg]);
        assert.equal(m.code, 0, describeRun(m));
        await sleep(500);

        const h = await historyJson(lab, cfg);
        assert.ok(
          h.some((e) => e.event === 'alert' && e.source === ATK4 && e.port === 11 && e.kind === 'syn'),
          JSON.stringify(h),
        );
        assert.ok(
          h.some((e) => e.event === 'ban' && e.target === ATK4 && e.origin === 'auto'),
          JSON.stringify(h),
        );
        assert.ok(
          h.some((e) => e.event === 'ban' && e.target === '203.0.113.50' && e.reason === 'manual one'),
          JSON.stringify(h),
        );
        const only = await historyJson(lab, cfg, [ATK4, '--since', '10m']);
        assert.ok(only.length >= 2 && only.every((e) => e.source === ATK4 || e.target === ATK4), JSON.stringify(only));
        const top = await lab.cli(['top', '--since', '1h', '--config', cfg]);
        assert.match(top.stdout, new RegExp(`^\\s+${esc(ATK4)}\\s+1\\s+1\\s+1$`, 'm'), describeRun(top));

        // kill -9 and restart: the kernel kept everything
        d.child.kill('SIGKILL');
        await d.done;
        assert.ok(await banned(lab), 'still banned with the daemon killed');
        d = await lab.startDaemon({ config: cfg });
        const after1 = await listJson(lab, cfg);
        assert.deepEqual(after1.map((e) => e.target).sort(), ['198.18.0.2', '203.0.113.50'], JSON.stringify(after1));
        assert.ok(after1.every((e) => e.remainingSeconds !== null && e.remainingSeconds > 0 && e.remainingSeconds <= 3600));

        // kill -9 and a wiped bpffs (a reboot): the bans come back from the store
        d.child.kill('SIGKILL');
        await d.done;
        await lab.reboot();
        assert.ok(!(await banned(lab)), 'with bpffs and nftables wiped nothing is enforced any more');
        d = await lab.startDaemon({ config: cfg });
        assert.equal(d.matching(new RegExp(`^sentry-xdp: restored 2 ban\\(s\\) in force from the ${store}`)).length, 1, d.output());
        const after2 = await listJson(lab, cfg);
        assert.deepEqual(after2.map((e) => e.target).sort(), ['198.18.0.2', '203.0.113.50'], JSON.stringify(after2));
        const auto = after2.find((e) => e.target === ATK4)!;
        assert.ok(auto.remainingSeconds! <= 600 && auto.remainingSeconds! > 500, `remaining time kept: ${JSON.stringify(auto)}`);
        assert.ok(await banned(lab), 'enforced again after the restore');
      },
    );
  });
}

describe('a fleet of two gateways on one redis', () => {
  let redis: RedisServer;
  before(async () => {
    requireTools('hping3', 'ping');
    redis = new RedisServer();
    await redis.start();
  });
  after(async () => redis?.destroy());

  test(
    'a scan of gateway A gets the scanner dropped at gateway B within a second; an unban on B lifts it on A, with its hosts.deny line and unban_cmd',
    { timeout: 90_000 },
    async (t) => {
      const a = createLab(t);
      const b = createLab(t);
      const { cfg: cfgA, deny, unbans } = hookedConfig(a, `redis: { url: "${redis.url}" }\nfleet: { name: gw-a }\n`);
      const cfgB = config(b, redis, 'fleet: { name: gw-b }\n');
      const da = await a.startDaemon({ config: cfgA });
      const db = await b.startDaemon({ config: cfgB });
      await db.waitForLine(/^sentry-xdp: fleet: gateway "gw-b"/, 5000);
      assert.ok(!(await banned(b)), 'B lets the host in before');
      await a.probe(ATK4, 15);
      await da.waitForLine(new RegExp(`^attackalert: Host ${esc(ATK4)} has been blocked via XDP drop`), 5000);
      const t0 = Date.now();
      await db.waitForLine(new RegExp(`^attackalert: Host ${esc(ATK4)} has been blocked via fleet ban from gateway gw-a`), 3000);
      const ms = Date.now() - t0;
      assert.ok(ms < 1000, `B applied A's ban after ${ms} ms`);
      assert.ok(await banned(b), 'B drops the scanner');
      const lb = await listJson(b, cfgB);
      assert.equal(lb.find((e) => e.target === ATK4)?.origin, 'fleet', JSON.stringify(lb));

      const u = await b.cli(['unban', ATK4, '--config', cfgB]);
      assert.equal(u.code, 0, describeRun(u));
      await da.waitForLine(new RegExp(`^attackalert: Host ${esc(ATK4)} has been unblocked \\(lifted on gateway gw-b\\)`), 3000);
      assert.ok(!(await banned(a)), 'A lifted it');
      await until("A's hosts.deny line out, unban_cmd run", () => !readFileSync(deny, 'utf8').includes(`ALL: ${ATK4}`) && unbans().length === 1);
      await sleep(500);
      assert.deepEqual(unbans(), [ATK4], 'unban_cmd ran once');
      assert.equal(db.matching(/has been blocked via fleet ban/).length, 1, `no loops, no duplicates\n${db.output()}`);
      assert.equal(da.matching(/has been blocked via fleet ban/).length, 0, `A does not get its own ban back\n${da.output()}`);
    },
  );

  test(
    "a gateway that was away catches up when it starts: the fleet's bans in force, except what its own allow list protects",
    { timeout: 90_000 },
    async (t) => {
      const a = createLab(t);
      const b = createLab(t);
      const cfgA = config(a, redis, 'fleet: { name: gw-a2 }\n');
      const cfgB = config(b, redis, 'fleet: { name: gw-b2 }\nallow: [198.51.100.77]\n');
      for (const target of ['198.51.100.66', '198.51.100.77']) {
        const r = await a.cli(['ban', target, '--ttl', '10m', '--config', cfgA]);
        assert.equal(r.code, 0, describeRun(r));
      }
      const db = await b.startDaemon({ config: cfgB });
      await db.waitForLine(/^sentry-xdp: fleet: gateway "gw-b2"/, 5000);
      assert.equal(db.matching(/^sentry-xdp: not restoring the ban of 198\.51\.100\.77: it is on the allow list$/).length, 1, db.output());
      const lb = await listJson(b, cfgB);
      const caught = lb.find((e) => e.target === '198.51.100.66');
      assert.equal(caught?.origin, 'fleet', JSON.stringify(lb));
      assert.equal(caught?.gateway, 'gw-a2');
      assert.ok(caught!.remainingSeconds! > 500 && caught!.remainingSeconds! <= 600, JSON.stringify(caught));
      assert.ok(!lb.some((e) => e.target === '198.51.100.77'), 'the local allow list wins');

      // B away again (its pins and bans stay): the ban is lifted on A meanwhile; B lifts it when it comes back
      await db.stop();
      const u = await a.cli(['unban', '198.51.100.66', '--config', cfgA]);
      assert.equal(u.code, 0, describeRun(u));
      const db2 = await b.startDaemon({ config: cfgB });
      assert.equal(
        db2.matching(/^sentry-xdp: fleet: 1 fleet ban\(s\) were lifted on other gateways while this one was away; lifted here too$/).length,
        1,
        db2.output(),
      );
      assert.ok(!(await listJson(b, cfgB)).some((e) => e.target === '198.51.100.66'), 'lifted on B too');
    },
  );

  test(
    "the CLI follows the running daemon's config: on A, ban and unban without -c reach B within a second; a different -c is warned about; with no daemon the default config is read",
    { timeout: 90_000 },
    async (t) => {
      const a = createLab(t);
      const b = createLab(t);
      const cfgA = config(a, redis, 'fleet: { name: gw-a3 }\n');
      const cfgB = config(b, redis, 'fleet: { name: gw-b3 }\n');
      const da = await a.startDaemon({ config: cfgA });
      const db = await b.startDaemon({ config: cfgB });
      await db.waitForLine(/^sentry-xdp: fleet: gateway "gw-b3"/, 5000);
      const X = '203.0.113.99';
      const ban = await a.cli(['ban', X, '--ttl', '10m']);
      assert.equal(ban.code, 0, describeRun(ban));
      assert.equal(ban.stderr, '', "no warning: the daemon's config is the one used");
      let t0 = Date.now();
      await db.waitForLine(new RegExp(`^attackalert: Host ${esc(X)} has been blocked via fleet ban from gateway gw-a3`), 3000);
      assert.ok(Date.now() - t0 < 1000, `B applied it after ${Date.now() - t0} ms`);
      const unban = await a.cli(['unban', X]);
      assert.equal(unban.code, 0, describeRun(unban));
      t0 = Date.now();
      await db.waitForLine(new RegExp(`^attackalert: Host ${esc(X)} has been unblocked \\(lifted on gateway gw-a3\\)`), 3000);
      assert.ok(Date.now() - t0 < 1000, `B lifted it after ${Date.now() - t0} ms`);

      const st = await a.status();
      assert.equal(st.config, cfgA, 'status names the config in use');
      const other = a.writeConfig('other.yaml', 'tcp_ports: "1"\n');
      const l = await a.cli(['list', '-c', other]);
      assert.equal(l.code, 0, describeRun(l));
      assert.match(
        l.stderr,
        new RegExp(`^sentry-xdp: warning: the running daemon \\(pid \\d+\\) uses ${esc(cfgA)}; this command uses ${esc(other)}\n$`),
        describeRun(l),
      );

      await da.stop();
      const check = await a.cli(['config', 'check']);
      assert.equal(check.code, 0, describeRun(check));
      assert.match(check.stdout, /^(\/etc\/sentry-xdp\/sentry\.yaml|built-in defaults): ok/, 'no daemon: the default config, as before');
      assert.notEqual((await a.status()).config, cfgA);
    },
  );

  test('redis away for 30 s in the middle of a scan: no crash, blocking goes on, that history appears once it is back', { timeout: 120_000 }, async (t) => {
    const lab = createLab(t);
    const cfg = config(lab, redis);
    const d = await lab.startDaemon({ config: cfg });
    await redis.stop();
    await d.waitForLine(/^sentry-xdp: redis: .*detection and blocking go on/, 10_000);
    for (const [i, src] of ['198.18.0.2', '198.18.0.77', '198.18.0.78'].entries()) {
      await lab.probe(src, [1, 11, 15][i]);
      await d.waitForLine(new RegExp(`^attackalert: Host ${esc(src)} has been blocked via XDP drop`), 5000);
    }
    assert.ok(await banned(lab), 'blocking goes on without redis');
    await sleep(27_000);
    assert.equal(d.exited, false, `the daemon is still running\n${d.output()}`);
    await redis.start();
    await d.waitForLine(/^sentry-xdp: redis: connected again; writing \d+ buffered event\(s\)/, 15_000);
    await sleep(1000);
    const h = await historyJson(lab, cfg);
    for (const src of ['198.18.0.2', '198.18.0.77', '198.18.0.78']) {
      assert.ok(
        h.some((e) => e.event === 'alert' && e.source === src),
        `the alert of ${src} reached redis\n${JSON.stringify(h)}`,
      );
      assert.ok(
        h.some((e) => e.event === 'ban' && e.target === src),
        `the ban of ${src} reached redis`,
      );
    }
  });
});
