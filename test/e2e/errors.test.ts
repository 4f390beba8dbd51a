/**
 * End to end: bad input gives one line on stderr and a non-zero exit, and
 * leaves nothing behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, createLab, describeRun, REPO, requireTools, run, type RunResult } from '../helpers/lab.js';

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
];

for (const b of BAD_CONFIGS) {
  test(`a config file with ${b.name} is refused with one line naming the file`, { timeout: 30_000 }, async (t) => {
    const lab = createLab(t);
    const file = lab.writeConfig('bad.yaml', b.text);
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
