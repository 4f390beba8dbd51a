/**
 * End to end: bad input gives one line on stderr and a non-zero exit, and
 * leaves nothing behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, createLab, describeRun, GW4, REPO, requireTools, run, type Lab, type RunResult } from '../helpers/lab.js';

const GOOD = 'tcp_ports: "1,11,15,79,111"\nudp_ports: "1,7,9,69,161"\nban_ttl: "5s"\n';

/** Exactly one non-empty line on stderr and a non-zero exit (not a timeout, not a signal). */
function assertOneLineError(r: RunResult, what: string, re?: RegExp): string {
  const ctx = `\n${describeRun(r)}`;
  assert.ok(!r.timedOut, `${what}: the command should fail at once, it ran until the timeout${ctx}`);
  assert.equal(r.signal, null, `${what}: the command died of a signal${ctx}`);
  assert.notEqual(r.code, 0, `${what}: the exit status should be non-zero${ctx}`);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, `${what}: expected exactly one line on stderr, got ${lines.length}${ctx}`);
  assert.doesNotMatch(lines[0]!, /unexpected error|at .*\.js:\d+/, `${what}: the message should be a handled error${ctx}`);
  if (re) assert.match(lines[0]!, re, `${what}: the message should match ${re}${ctx}`);
  return lines[0]!;
}

test('attach --no-daemon to an unknown interface fails with one line and pins nothing (the daemon would wait for it)', { timeout: 30_000 }, async (t) => {
  const lab = createLab(t);
  const r = await lab.cli(['attach', 'nosuch0', '--no-daemon', '--config', lab.writeConfig('good.yaml', GOOD)], { timeoutMs: 15_000 });
  assertOneLineError(r, 'attach nosuch0 --no-daemon', /no such interface: nosuch0/);
  assert.equal(r.stdout, '', `nothing should be printed on stdout\n${describeRun(r)}`);
  assert.ok(!existsSync(lab.pinRoot), `a failed attach must not leave ${lab.pinRoot} behind`);
});

test('a second attach on the same interface is refused with one line', { timeout: 30_000 }, async (t) => {
  const lab = createLab(t);
  const cfg = lab.writeConfig('good.yaml', GOOD);
  const first = await lab.cli(['attach', lab.gwIf, '--no-daemon', '--config', cfg]);
  assert.equal(first.code, 0, `attach --no-daemon should succeed and return\n${describeRun(first)}`);
  assert.match(first.stdout, new RegExp(`attached to ${lab.gwIf} in \\w+ mode \\(program id \\d+\\)`), describeRun(first));
  assert.doesNotMatch(first.stdout, /alerts follow/, `attach --no-daemon should not start the daemon\n${describeRun(first)}`);
  const s0 = await lab.status();

  // a second --no-daemon attach is refused; a daemon-mode attach would adopt it (restart), see lifecycle.test.ts
  const second = await lab.cli(['attach', lab.gwIf, '--no-daemon', '--config', cfg], { timeoutMs: 15_000 });
  assertOneLineError(second, `second attach (--no-daemon) on ${lab.gwIf}`, /already/i);
  const third = await lab.cli(['attach', lab.gwIf, '--no-daemon', '--mode', 'generic', '--config', cfg], { timeoutMs: 15_000 });
  assertOneLineError(third, `third attach (--no-daemon, generic) on ${lab.gwIf}`, /already/i);

  const s = await lab.status();
  assert.deepEqual(
    s.interfaces.map((i) => [i.name, i.progId, i.stale]),
    s0.interfaces.map((i) => [i.name, i.progId, i.stale]),
    `the refused attaches must not change what is attached\nbefore: ${JSON.stringify(s0)}\nafter: ${JSON.stringify(s)}`,
  );
  assert.equal(s.daemonPid, null, `no daemon should have been left running\n${JSON.stringify(s)}`);
});

const BAD_CONFIGS: Array<{ name: string; text: string; re: RegExp }> = [
  { name: 'a port out of range', text: 'tcp_ports: "1,99999"\n', re: /99999/ },
  { name: 'a YAML syntax error', text: 'tcp_ports: [1, 11\nudp_ports: "7"\n  ban_ttl: : 5s\n', re: /yaml|syntax/i },
  { name: 'an unknown key', text: 'tcp_ports: "1,11"\nscan_triger: 2\n', re: /scan_triger/ },
  { name: 'a bad duration', text: 'ban_ttl: "soon"\n', re: /ban_ttl|soon/ },
  // each of these passed `config check` once and then broke (or quietly disarmed) the daemon
  { name: 'a ban_ttl that overflows the kernel expiry', text: 'ban_ttl: 100000000d\n', re: /ban_ttl: .*longer than 3650d/ },
  { name: 'a ban_ttl in seconds that overflows', text: 'ban_ttl: 1000000000000\n', re: /ban_ttl: .*longer than 3650d/ },
  { name: 'an unknown syslog facility', text: 'syslog:\n  enabled: true\n  facility: nonsense\n', re: /syslog\.facility: unknown facility/ },
  { name: 'a scan_window of 0 (detection off)', text: 'scan_window: 0\n', re: /scan_window: .*at least 1s/ },
  { name: 'a ttl rule with an integer address', text: 'ttl_rules:\n  - { cidr: "10", ttl: 1h }\n', re: /ttl_rules\.0\.cidr: "10" is not a valid IP address/ },
  { name: 'an allow entry with a zone id', text: 'allow: ["fe80::1%eth0"]\n', re: /zone id/ },
  { name: 'a notify command with an unclosed quote', text: 'notify:\n  command: "mail -s \'x root"\n', re: /notify\.command has an unclosed ' quote/ },
];

for (const b of BAD_CONFIGS) {
  test(`a config file with ${b.name} is refused with one line naming the file`, { timeout: 30_000 }, async (t) => {
    const lab = createLab(t);
    const file = lab.writeConfig('bad.yaml', b.text);
    // `config check` is the daemon's own start-up validation: what it passes, attach takes
    const check = await lab.cli(['config', 'check', file], { timeoutMs: 15_000 });
    const checkLine = assertOneLineError(check, `config check with ${b.name}`, b.re);
    assert.ok(checkLine.includes(file), `the message should name the file ${file}\n${describeRun(check)}`);
    assert.equal(check.code, 2, `a config error should exit 2\n${describeRun(check)}`);
    for (const extra of [['--no-daemon'], []]) {
      const r = await lab.cli(['attach', lab.gwIf, '--config', file, ...extra], { timeoutMs: 15_000 });
      const line = assertOneLineError(r, `attach ${extra.join(' ')} with ${b.name}`, b.re);
      assert.ok(line.includes(file), `the message should name the file ${file}\n${describeRun(r)}`);
      assert.equal(r.code, 2, `a config error should exit 2 (what the user wrote is wrong)\n${describeRun(r)}`);
      assert.ok(!existsSync(lab.pinRoot), `a refused config must not load anything (${lab.pinRoot} exists)\n${describeRun(r)}`);
    }
  });
}

test('not being root gives one line and a non-zero exit', { timeout: 30_000 }, async () => {
  requireTools('setpriv');
  const drop = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
  const main = join(REPO, 'dist', 'src', 'cli', 'main.js');
  const readable = await run([...drop, '/bin/sh', '-c', `test -x "$1" && test -r "$2"`, 'sh', BIN, main]);
  assert.equal(readable.code, 0, `uid 65534 cannot read ${BIN} or ${main}; make the checkout world-readable to run this test\n${describeRun(readable)}`);
  for (const args of [['status'], ['status', '--json'], ['detach', '--all'], ['attach', 'nosuch0', '--no-daemon']]) {
    // nobody's commands run in the root namespace and send nothing anywhere
    const r = await run([...drop, BIN, ...args], {
      timeoutMs: 15_000,
      env: { SENTRY_XDP_PIN_ROOT: `/sys/fs/bpf/sentry-xdp-test-${process.pid}-nobody`, SENTRY_XDP_RUN_DIR: `/tmp/sentry-xdp-test-${process.pid}-nobody` },
    });
    assertOneLineError(r, `${args.join(' ')} as uid 65534`, /root/i);
    assert.equal(r.stdout, '', `nothing should be printed on stdout\n${describeRun(r)}`);
  }
  assert.ok(!existsSync(`/sys/fs/bpf/sentry-xdp-test-${process.pid}-nobody`), 'an unprivileged run must not create a pin root');
});

test('usage errors give one line and a non-zero exit', { timeout: 30_000 }, async (t) => {
  const lab = createLab(t);
  const cases: Array<[string[], RegExp | undefined]> = [
    [['attach'], undefined],
    [['attach', lab.gwIf, '--mode', 'turbo'], /turbo|mode/],
    [['frobnicate'], /frobnicate|unknown command/i],
    [['detach'], /interface|--all/],
    [['detach', lab.gwIf], new RegExp(`not attached|${lab.gwIf}`)],
  ];
  for (const [args, re] of cases) {
    const r = await lab.cli(args, { timeoutMs: 15_000 });
    assertOneLineError(r, args.join(' '), re);
  }
  assert.ok(!existsSync(lab.pinRoot), `usage errors must not load anything (${lab.pinRoot} exists)`);
});

interface ListRow {
  target: string;
  origin: string;
  reason: string;
}

/** What is stored: the bans (without the clock-driven fields) and the allow list. */
async function stored(lab: Lab, cfg: string): Promise<{ bans: ListRow[]; allow: unknown }> {
  const l = await lab.cli(['list', '--json', '--config', cfg]);
  assert.equal(l.code, 0, describeRun(l));
  const a = await lab.cli(['allow', 'list', '--json', '--config', cfg]);
  assert.equal(a.code, 0, describeRun(a));
  const bans = (JSON.parse(l.stdout) as { bans: ListRow[] }).bans.map(({ target, origin, reason }) => ({ target, origin, reason }));
  const allow = JSON.parse(a.stdout) as { version: number; entries: unknown[] };
  assert.equal(allow.version, 1, `allow list --json names its format version\n${describeRun(a)}`);
  return { bans, allow: allow.entries };
}

// C0, DEL, C1 and the bidi controls: none of them may reach a terminal or a log raw
// eslint-disable-next-line no-control-regex -- the test looks for raw control characters in the output
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;

test('hostile addresses, durations and reasons give one line, and nothing stored changes', { timeout: 120_000 }, async (t) => {
  const lab = createLab(t);
  const cfg = lab.writeConfig('good.yaml', GOOD);
  const a = await lab.cli(['attach', lab.gwIf, '--no-daemon', '--config', cfg]);
  assert.equal(a.code, 0, describeRun(a));
  const b = await lab.cli(['ban', '198.18.0.99', '--ttl', '10m', '--reason', 'kept', '--config', cfg]);
  assert.equal(b.code, 0, describeRun(b));
  const al = await lab.cli(['allow', 'add', '198.18.0.98', '--config', cfg]);
  assert.equal(al.code, 0, describeRun(al));
  const before = await stored(lab, cfg);

  const bad = /is not a valid IP address or CIDR.*no shorthands/;
  const cases: Array<[string[], RegExp]> = [
    [['ban', '10'], bad], // inet_aton would read 0.0.0.10
    [['ban', '0x0a.0.0.1'], bad],
    [['ban', '010.1.1.1'], bad],
    [['ban', '198.18'], bad],
    [['ban', '::ffff:198.18.0.0x1'], bad],
    [['allow', 'add', '0'], bad], // would allow 0.0.0.0
    [['allow', 'add', '0/0'], bad],
    [['unban', '10'], bad],
    [['history', '10'], bad],
    [['ban', 'fe80::1%eth0'], /"fe80::1%eth0" has an IPv6 zone id \(%eth0\)/],
    [['allow', 'add', 'fe80::1%eth0'], /zone id/],
    [['ban', '198.18.0.50', '--ttl', '99999999999999999999d'], /--ttl: "99999999999999999999d" is longer than 3650d/],
    [['ban', '198.18.0.50', '--ttl', '3651d'], /--ttl: .*longer than 3650d/],
    [['history', '--since', '99999999999999999999w'], /--since: .*longer than 3650d/],
    [['ban', '198.18.0.50', '--reason', 'x\n\x1b[31mfake'], /--reason .*control characters/],
    [['ban', '198.18.0.50', '--reason', 'evil\u202eesrever'], /--reason .*control characters/],
    [['ban', '\x1b[2J198.18.0.50'], /not a valid IP address/],
  ];
  for (const [args, re] of cases) {
    const r = await lab.cli([...args, '--config', cfg], { timeoutMs: 15_000 });
    const line = assertOneLineError(r, JSON.stringify(args), re);
    assert.doesNotMatch(line, RAW_CONTROL, `the error line must not carry raw control characters\n${describeRun(r)}`);
    assert.equal(r.code, 2, `bad input should exit 2\n${describeRun(r)}`);
  }
  assert.deepEqual(await stored(lab, cfg), before, 'refused input must not change the bans or the allow list');
});

test('stored text with control characters is printed escaped by list and history', { timeout: 60_000 }, async (t) => {
  const lab = createLab(t);
  const cfg = lab.writeConfig('good.yaml', GOOD);
  const a = await lab.cli(['attach', lab.gwIf, '--no-daemon', '--config', cfg]);
  assert.equal(a.code, 0, describeRun(a));
  const b = await lab.cli(['ban', '198.18.0.99', '--ttl', '10m', '--reason', 'first', '--config', cfg]);
  assert.equal(b.code, 0, describeRun(b));
  // what an older version, a fleet peer or a tampered store may have written: --reason refuses it now
  const now = Date.now();
  const evil = 'x\n2026-01-01T00:00:00.000Z  unban  198.18.0.99  fake\x1b[31m\x9b2J\u202eevil';
  const rec = { op: 'ban', time: now, target: '198.18.0.99', ttl: 600, expires: now + 600_000, origin: 'manual', reason: evil, by: 'root' };
  appendFileSync(join(lab.stateDir, 'bans.jsonl'), `${JSON.stringify(rec)}\n`);
  for (const args of [['list'], ['list', '--json'], ['history'], ['history', '--json'], ['history', '198.18.0.99']]) {
    const r = await lab.cli([...args, '--config', cfg]);
    assert.equal(r.code, 0, describeRun(r));
    assert.doesNotMatch(r.stdout, RAW_CONTROL, `${args.join(' ')} printed raw control characters\n${describeRun(r)}`);
    assert.match(r.stdout, /\\u001b\[31m/, `${args.join(' ')} should show the escape sequence escaped\n${describeRun(r)}`);
    assert.doesNotMatch(r.stdout, /^2026-01-01T00:00:00\.000Z {2}unban/m, `${args.join(' ')}: the reason forged a line\n${describeRun(r)}`);
  }
  const j = await lab.cli(['list', '--json', '--config', cfg]);
  const rows = (JSON.parse(j.stdout) as { bans: ListRow[] }).bans;
  assert.equal(
    rows.find((r) => r.target === '198.18.0.99')?.reason,
    evil,
    `list --json keeps the stored text (escaped as JSON), not a mangled copy\n${describeRun(j)}`,
  );
});

test("this host's own addresses cannot be banned while their link is down, nor tentative or deprecated IPv6 ones", { timeout: 60_000 }, async (t) => {
  const lab = createLab(t);
  const cfg = lab.writeConfig('good.yaml', GOOD);
  const a = await lab.cli(['attach', lab.gwIf, '--no-daemon', '--config', cfg]);
  assert.equal(a.code, 0, describeRun(a));
  const ip = async (...args: string[]) => {
    const r = await lab.gw(['ip', ...args]);
    assert.equal(r.code, 0, describeRun(r));
    return r.stdout;
  };
  const refused = async (targets: string[], when: string) => {
    for (const target of targets) {
      const r = await lab.cli(['ban', target, '--config', cfg], { timeoutMs: 15_000 });
      assertOneLineError(r, `ban ${target} (this host's, ${when})`, /never-ban|own address/i);
    }
  };
  // a deprecated address (preferred lifetime 0) while the link is up
  await ip('-6', 'addr', 'add', '2001:db8:77::1/64', 'dev', lab.gwIf, 'preferred_lft', '0', 'nodad');
  assert.match(await ip('-j', 'addr', 'show', 'dev', lab.gwIf), /"deprecated":true/, 'the address should be deprecated');
  const before = await stored(lab, cfg);
  await refused([GW4, '2001:db8:77::1'], 'link up');
  // link down: the IPv4 address stays, the kernel flushes the IPv6 ones, and a new IPv6 one stays tentative
  await ip('link', 'set', lab.gwIf, 'down');
  await ip('-6', 'addr', 'add', '2001:db8:78::1/64', 'dev', lab.gwIf);
  const shown = await ip('-j', 'addr', 'show', 'dev', lab.gwIf);
  assert.match(shown, /"tentative":true/, `the address added on a down link should be tentative\n${shown}`);
  await refused([GW4, `${GW4}/32`, '2001:db8:77::1', '2001:db8:78::1'], 'link down');
  assert.deepEqual((await stored(lab, cfg)).bans, before.bans, 'nothing may have been banned');
});
