/**
 * End to end: bans as a first-class tool (ban/unban/list/allow), nftables,
 * per-CIDR TTLs, escalation, never-ban, hooks, bad input. Real XDP on veth,
 * real nft, real hping3/ping from the attacker namespace.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { ATK4, createLab, describeRun, GW4, requireTools, sleep, type Daemon, type Lab } from '../helpers/lab.js';

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface ListJson {
  target: string;
  origin: string;
  remainingSeconds: number | null;
  reason: string;
  probe: string | null;
  drops: number;
}

async function list(lab: Lab): Promise<ListJson[]> {
  const r = await lab.cli(['list', '--json']);
  assert.equal(r.code, 0, describeRun(r));
  const j = JSON.parse(r.stdout) as { version: number; bans: ListJson[] };
  assert.equal(j.version, 1, `list --json names its format version\n${describeRun(r)}`);
  return j.bans;
}

async function pingFails(lab: Lab, why: string): Promise<void> {
  const p = await lab.ping(false);
  assert.ok(!p.ok, `${why}: the attacker's ping should be dropped\n${describeRun(p.run)}`);
}

async function pingPasses(lab: Lab, why: string): Promise<void> {
  let log = '';
  for (let i = 0; i < 3; i++) {
    const p = await lab.ping(false);
    if (p.ok) return;
    log += describeRun(p.run);
  }
  assert.fail(`${why}: the attacker's ping should get through\n${log}`);
}

async function nftElements(lab: Lab, set: string): Promise<string[]> {
  const r = await lab.gw(['nft', '-j', 'list', 'set', 'inet', 'sentry_xdp', set]);
  if (r.code !== 0) return [];
  const j = JSON.parse(r.stdout) as { nftables: Array<{ set?: { elem?: unknown[] } }> };
  const elems = j.nftables.find((x) => x.set)?.set?.elem ?? [];
  return elems.map((e) => {
    const v = (e as { elem?: { val: unknown } }).elem?.val ?? e;
    return typeof v === 'string' ? v : JSON.stringify(v);
  });
}

function config(lab: Lab, extra = ''): string {
  return lab.writeConfig('sentry.yaml', `tcp_ports: "1,11,15,79,111"\nudp_ports: "161"\nban_ttl: 1h\n${extra}`);
}

async function start(lab: Lab, extra = ''): Promise<Daemon> {
  return lab.startDaemon({ config: config(lab, extra) });
}

test(
  'a manual ban with --ttl 5s drops at once in XDP, is listed and in the nft set, and lapses after 5 s with an unban line',
  { timeout: 60_000 },
  async (t) => {
    requireTools('ping', 'nft');
    const lab = createLab(t);
    const d = await start(lab);
    await pingPasses(lab, 'before the ban');
    const b = await lab.cli(['ban', ATK4, '--ttl', '5s', '--reason', 'e2e test']);
    assert.equal(b.code, 0, describeRun(b));
    assert.match(b.stdout, /^banned 198\.18\.0\.2 \(5s\)$/m);
    await pingFails(lab, 'right after `ban --ttl 5s`');
    const l = await list(lab);
    assert.equal(l.length, 1, JSON.stringify(l));
    assert.equal(l[0]!.target, ATK4);
    assert.equal(l[0]!.origin, 'manual');
    assert.equal(l[0]!.reason, 'e2e test');
    assert.ok(l[0]!.remainingSeconds! <= 5 && l[0]!.remainingSeconds! >= 1, JSON.stringify(l));
    assert.ok(l[0]!.drops >= 1, `the ban counts the packets it dropped: ${JSON.stringify(l)}`);
    assert.ok(
      (await nftElements(lab, 'bans_v4')).some((e) => e.includes(ATK4)),
      'the ban is in the nft set too',
    );
    await d.waitForLine(new RegExp(`^attackalert: Host ${esc(ATK4)} has been unblocked \\(ban expired\\)$`), 10_000);
    await pingPasses(lab, 'after the 5 s ban lapsed');
    assert.deepEqual(await list(lab), []);
  },
);

test('with XDP detached, the nft set alone drops a banned host and lets it go when the ban lapses', { timeout: 60_000 }, async (t) => {
  requireTools('ping', 'nft');
  const lab = createLab(t);
  const d = await start(lab);
  const det = await lab.cli(['detach', lab.gwIf]);
  assert.equal(det.code, 0, describeRun(det));
  const s = await lab.status();
  assert.equal(s.interfaces.length, 0, `XDP is detached\n${JSON.stringify(s)}`);
  await pingPasses(lab, 'before the ban');
  const b = await lab.cli(['ban', ATK4, '--ttl', '5s']);
  assert.equal(b.code, 0, describeRun(b));
  await pingFails(lab, 'banned with XDP detached (nftables drops it)');
  await d.waitForLine(new RegExp(`^attackalert: Host ${esc(ATK4)} has been unblocked \\(ban expired\\)$`), 10_000);
  await sleep(500);
  await pingPasses(lab, 'after the ban lapsed (nft timeout)');
});

test('per-CIDR TTL: a LAN scanner gets a short ban, an outside one a long one; the third offence is escalated', { timeout: 90_000 }, async (t) => {
  requireTools('hping3');
  const lab = createLab(t);
  // a second subnet on the same wire: 198.18.1.0/24 is "outside"
  for (const [ns, a] of [
    [lab.gwNs, '198.18.1.1/24'],
    [lab.atkNs, '198.18.1.2/24'],
  ] as const) {
    const dev = ns === lab.gwNs ? lab.gwIf : lab.atkIf;
    const r = await lab.gw(['ip', '-n', ns, 'addr', 'add', a, 'dev', dev]);
    assert.equal(r.code, 0, describeRun(r));
  }
  const d = await start(lab, 'ttl_rules:\n  - { cidr: 198.18.0.0/24, ttl: 2s }\nescalation: { factor: 2, max: 1h, lookback: 1h }\n');
  const banOf = async (src: string, from: number) =>
    d.waitForLine(new RegExp(`^attackalert: Host ${esc(src)} has been blocked via XDP drop \\(ban (\\w+),`), 8000, from);

  let mark = d.lines.length;
  await lab.probe('198.18.1.2');
  assert.match(await banOf('198.18.1.2', mark), /\(ban 1h,/, 'outside: the default 1h');

  const ttls: string[] = [];
  for (let i = 0; i < 3; i++) {
    mark = d.lines.length;
    await lab.probe(ATK4, 11);
    const line = await banOf(ATK4, mark);
    ttls.push(/\(ban (\w+),/.exec(line)![1]!);
    await d.waitForLine(new RegExp(`^attackalert: Host ${esc(ATK4)} has been unblocked`), 15_000, mark);
  }
  assert.deepEqual(ttls, ['2s', '4s', '8s'], `LAN: 2s, then escalated\n${d.output()}`);
  assert.equal(d.matching(/offence 3 within 1h; ban escalated to 8s/).length, 1, d.output());
});

test('ban --file with 100 000 random addresses: all listed, all in nftables', { timeout: 180_000 }, async (t) => {
  requireTools('nft');
  const lab = createLab(t);
  await lab.startDaemon({ config: config(lab) });
  const seen = new Set<string>();
  while (seen.size < 100_000) {
    const n = 0x0b000000 + Math.floor(Math.random() * 0xc0000000);
    seen.add(`${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`);
  }
  const file = lab.writeConfig('bans.txt', `# 100k bans\n${[...seen].join('\n')}\n`);
  const t0 = Date.now();
  const r = await lab.cli(['ban', '--file', file, '--ttl', '1h', '--reason', 'bulk'], { timeoutMs: 150_000 });
  const secs = (Date.now() - t0) / 1000;
  assert.equal(r.code, 0, describeRun(r));
  assert.match(r.stdout, /^banned 100000 addresses \(1h\)$/m);
  process.stdout.write(`# ban --file: 100 000 addresses in ${secs.toFixed(1)} s (kernel, journal and nft)\n`);
  const l = await list(lab);
  assert.equal(l.length, 100_000);
  assert.ok(l.every((e) => e.origin === 'imported' && e.reason === 'bulk'));
  assert.equal((await nftElements(lab, 'bans_v4')).length, 100_000);
});

test('spoofed probes from the gateway itself or its nameserver are logged, never banned; a manual ban of them is refused', { timeout: 60_000 }, async (t) => {
  requireTools('hping3');
  const lab = createLab(t);
  const resolv = lab.writeConfig('resolv.conf', 'nameserver 198.18.0.53\n');
  const d = await start(lab, `never_ban: { resolv_conf: ${resolv} }\n`);
  const cfg = `${lab.confDir}/sentry.yaml`;
  for (const spoofed of [GW4, '198.18.0.53']) {
    const mark = d.lines.length;
    await lab.probe(spoofed);
    await d.waitForLine(new RegExp(`^attackalert: TCP SYN/Normal scan from host: ${esc(spoofed)}/`), 5000, mark);
    await d.waitForLine(new RegExp(`^attackalert: Host ${esc(spoofed)} is on the never-ban list; not blocked`), 5000, mark);
  }
  const s = await lab.status();
  assert.equal(s.bansInForce, 0, JSON.stringify(s));
  assert.equal(d.matching(/has been blocked/).length, 0, d.output());
  for (const target of ['198.18.0.53', '198.18.0.0/24']) {
    const r = await lab.cli(['ban', target, '--config', cfg]);
    assert.equal(r.code, 2, describeRun(r));
    assert.equal(r.stderr.trim().split('\n').length, 1, describeRun(r));
    assert.match(r.stderr, /refusing to ban/);
  }
});

test('a KILL_RUN_CMD hook receives the right target and port; shell metacharacters never reach a shell', { timeout: 60_000 }, async (t) => {
  requireTools('hping3');
  const lab = createLab(t);
  const out = `${lab.confDir}/hook.out`;
  const script = `${lab.confDir}/hook.sh`;
  writeFileSync(script, `#!/bin/sh\necho "$1 $2" >> ${out}\n`);
  chmodSync(script, 0o755);
  const marker = `${lab.confDir}/pwned`;
  const d = await start(lab, `hooks:\n  kill_run_cmd: "${script} $TARGET$ $PORT$"\n`);
  await lab.probe(ATK4, 79);
  await d.waitForLine(/has been blocked/, 5000);
  for (let i = 0; i < 50 && !existsSync(out); i++) await sleep(100);
  assert.equal(readFileSync(out, 'utf8'), `${ATK4} 79\n`);
  for (const evil of [`1.2.3.4;touch ${marker}`, `$(touch ${marker})`, `1.2.3.4 && touch ${marker}`]) {
    const r = await lab.cli(['ban', evil]);
    assert.equal(r.code, 2, describeRun(r));
    assert.match(r.stderr, /is not a valid IP address or CIDR/);
  }
  assert.ok(!existsSync(marker));
});

test('bad input: one clear line, a non-zero exit, and no ban lost', { timeout: 60_000 }, async (t) => {
  const lab = createLab(t);
  const cfg = config(lab);
  const keep = await lab.cli(['ban', '203.0.113.9', '--ttl', '1h', '--config', cfg]);
  assert.equal(keep.code, 0, describeRun(keep));
  const before = (await list(lab)).map((e) => e.target);
  const empty = lab.writeConfig('empty.txt', '# nothing\n\n');
  const oneBad = lab.writeConfig('onebad.txt', '198.51.100.1\n198.51.100.2\n198.51.100.300\n198.51.100.4\n');
  const cases: Array<[string[], RegExp]> = [
    [['ban', '1.2.3.4/33'], /"1\.2\.3\.4\/33" is not a valid IP address or CIDR/],
    [['ban', '300.1.1.1'], /"300\.1\.1\.1" is not a valid IP address or CIDR/],
    [['ban', '1.2.3.4', '--ttl', '10x'], /--ttl: "10x" is not a duration/],
    [['ban', '1.2.3.4', '--ttl=-5m'], /--ttl: "-5m" is not a duration/],
    [['ban', '--file', empty], /no addresses in it; nothing was banned/],
    [['ban', '--file', oneBad], /onebad\.txt:3: "198\.51\.100\.300" is not a valid IP address or CIDR; nothing was banned/],
    [['ban', '--file', `${lab.confDir}/missing.txt`], /cannot read it/],
    [['unban', '1.2.3.4/33'], /not a valid IP address/],
    [['allow', 'add', '10.0.0.0/99'], /not a valid IP address/],
  ];
  for (const [args, re] of cases) {
    const r = await lab.cli([...args, '--config', cfg]);
    assert.notEqual(r.code, 0, describeRun(r));
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line\n${describeRun(r)}`);
    assert.match(lines[0]!, re, describeRun(r));
  }
  assert.deepEqual(
    (await list(lab)).map((e) => e.target),
    before,
    'no ban lost, none added',
  );
});

test('nftables: our table survives `nft flush ruleset` (re-created by the daemon), and no other table is touched', { timeout: 60_000 }, async (t) => {
  requireTools('nft');
  const lab = createLab(t);
  const mk = await lab.gw(['nft', 'add table inet other; add chain inet other c { type filter hook input priority 0; }; add rule inet other c counter']);
  assert.equal(mk.code, 0, describeRun(mk));
  const d = await start(lab);
  const b = await lab.cli(['ban', '203.0.113.7', '2001:db8:9::/48', '--ttl', '1h']);
  assert.equal(b.code, 0, describeRun(b));
  const p = await lab.cli(['ban', '2001:db8:7::7', '--ttl', 'permanent']);
  assert.equal(p.code, 0, describeRun(p));
  const other = await lab.gw(['nft', 'list', 'table', 'inet', 'other']);
  assert.equal(other.code, 0, `the other table is untouched\n${describeRun(other)}`);
  assert.match(other.stdout, /counter/);
  const fl = await lab.gw(['nft', 'flush', 'ruleset']);
  assert.equal(fl.code, 0, describeRun(fl));
  await d.waitForLine(/nft table inet sentry_xdp was gone .*re-created it with 3 ban\(s\)/, 6000);
  assert.ok((await nftElements(lab, 'bans_v4')).some((e) => e.includes('203.0.113.7')));
  assert.deepEqual(await nftElements(lab, 'bans_v6'), ['2001:db8:7::7']);
  assert.equal((await nftElements(lab, 'nets_v6')).length, 1);
});

test('unban, unban --all and the allow list', { timeout: 60_000 }, async (t) => {
  requireTools('ping');
  const lab = createLab(t);
  const cfg = config(lab);
  await lab.startDaemon({ config: cfg });
  let r = await lab.cli(['ban', ATK4, '198.51.100.0/24', '2001:db8:5::1', '--config', cfg]);
  assert.equal(r.code, 0, describeRun(r));
  await pingFails(lab, 'banned');
  r = await lab.cli(['unban', ATK4, '--config', cfg]);
  assert.equal(r.code, 0, describeRun(r));
  assert.match(r.stdout, /^unbanned 198\.18\.0\.2$/m);
  await pingPasses(lab, 'unbanned');
  r = await lab.cli(['unban', ATK4, '--config', cfg]);
  assert.equal(r.code, 1, describeRun(r));
  assert.match(r.stderr, /not banned: 198\.18\.0\.2/);
  r = await lab.cli(['unban', '--all', '--config', cfg]);
  assert.match(r.stdout, /^unbanned 2 ban\(s\)$/m, describeRun(r));
  assert.deepEqual(await list(lab), []);

  r = await lab.cli(['allow', 'add', '198.18.0.0/24', '--config', cfg]);
  assert.equal(r.code, 0, describeRun(r));
  await lab.probe(ATK4);
  await sleep(500);
  const s = await lab.status();
  assert.equal(s.bansInForce, 0, 'an allowed source is never banned');
  assert.equal(s.counters.alerts, 0);
  r = await lab.cli(['allow', 'list', '--config', cfg]);
  assert.match(r.stdout, /^198\.18\.0\.0\/24\s+allow\s+`allow add`$/m, describeRun(r));
  assert.match(r.stdout, /^198\.18\.0\.1\s+never-ban\s+this host's own address$/m, describeRun(r));
  r = await lab.cli(['ban', ATK4, '--config', cfg]);
  assert.equal(r.code, 2, `banning an allowed address is refused\n${describeRun(r)}`);
  r = await lab.cli(['allow', 'rm', '198.18.0.0/24', '--config', cfg]);
  assert.equal(r.code, 0, describeRun(r));
});
