/**
 * End to end: the files and processes sentry-xdp leaves on a host. The pin root
 * is bpffs or a directory sentry-xdp may mount it on (never one with files); a
 * stale pid file never gets an unrelated process signalled; the state and run
 * directories get their documented modes whatever the umask; hosts.deny keeps
 * its mode and owner, and its IPv6 lines are bracketed as tcp_wrappers wants.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { until } from '../helpers/hooks.js';
import { withUmask } from '../helpers/scratch.js';
import { ATK4, ATK6, createLab, describeRun, pidAlive, requireTools, runSync, sleep, type Lab } from '../helpers/lab.js';

const CONFIG = 'tcp_ports: "1,11,15"\nudp_ports: "1"\nscan_trigger: 0\nban_ttl: 1h\n';
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const mode = (p: string) => (statSync(p).mode & 0o7777).toString(8).padStart(3, '0');
const mountedAt = (dir: string) =>
  readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === dir);

/** A pin root of the test's own (not the lab's): detached, unmounted and removed after the test, whatever happened. */
function ownPinRoot(t: { after(fn: () => unknown): void }, lab: Lab, name: string): string {
  const dir = join(lab.confDir, name);
  t.after(async () => {
    await lab.cli(['--pin-root', dir, 'detach', '--all']);
    for (let i = 0; i < 3 && mountedAt(dir); i++) runSync(['umount', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

test('--pin-root on a directory with a file is refused with one line; the file stays visible and nothing is mounted', { timeout: 60_000 }, async (t) => {
  const lab = createLab(t);
  const dir = ownPinRoot(t, lab, 'pins-with-a-file');
  mkdirSync(dir);
  writeFileSync(join(dir, 'keep.txt'), "the admin's\n");
  for (const args of [
    ['attach', lab.gwIf, '--no-daemon'],
    ['attach', lab.gwIf],
    ['ban', '203.0.113.1'],
  ]) {
    const r = await lab.cli(['--pin-root', dir, ...args, '--config', lab.writeConfig('s.yaml', CONFIG)]);
    assert.equal(r.code, 2, describeRun(r));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line\n${describeRun(r)}`);
    assert.match(
      r.stderr,
      new RegExp(`^sentry-xdp: the pin root ${esc(dir)} holds files \\(keep.txt\\) and is not on bpffs: .*; point --pin-root`),
      describeRun(r),
    );
    assert.ok(!mountedAt(dir), `nothing may be mounted on ${dir} (${args.join(' ')})`);
    assert.deepEqual(readdirSync(dir), ['keep.txt'], `the directory is as it was (${args.join(' ')})`);
  }
  assert.ok(!existsSync(lab.runDir) || !existsSync(join(lab.runDir, 'daemon.pid')), 'the refused daemon wrote no pid file');
  const s = await lab.cli(['--pin-root', dir, 'status', '--json']);
  assert.equal((JSON.parse(s.stdout) as { loaded: boolean }).loaded, false, describeRun(s));
  const d = await lab.cli(['--pin-root', dir, 'detach', '--all']);
  assert.equal(d.code, 0, describeRun(d));
  assert.equal(readFileSync(join(dir, 'keep.txt'), 'utf8'), "the admin's\n", 'detach --all leaves what is not ours');
  const ip = await lab.gw(['ip', 'link', 'show', 'dev', lab.gwIf]);
  assert.doesNotMatch(ip.stdout, /\bxdp/, `nothing was attached\n${ip.stdout}`);
});

test(
  'detach --all works on every pin root sentry-xdp makes: a new directory, an empty one (bpffs mounted on each), one inside bpffs',
  { timeout: 60_000 },
  async (t) => {
    const lab = createLab(t);
    const fresh = join(ownPinRoot(t, lab, 'fresh'), 'nested', 'pins');
    const empty = ownPinRoot(t, lab, 'empty');
    mkdirSync(empty);
    const inBpffs = `${lab.pinRoot}-inside/a/b`;
    t.after(() => rmSync(`${lab.pinRoot}-inside`, { recursive: true, force: true }));
    for (const [dir, mounts] of [
      [fresh, true],
      [empty, true],
      [inBpffs, false],
    ] as const) {
      const a = await lab.cli(['--pin-root', dir, 'attach', lab.gwIf, '--no-daemon', '--config', lab.writeConfig('s.yaml', CONFIG)]);
      assert.equal(a.code, 0, describeRun(a));
      assert.equal(mountedAt(dir), mounts, `bpffs ${mounts ? 'mounted' : 'not mounted'} on ${dir}`);
      assert.ok(existsSync(join(dir, 'prog')), `pinned in ${dir}`);
      const d = await lab.cli(['--pin-root', dir, 'detach', '--all']);
      assert.equal(d.code, 0, `detach --all on ${dir}\n${describeRun(d)}`);
      assert.match(d.stdout, new RegExp(`detached from ${esc(lab.gwIf)}`), describeRun(d));
      assert.ok(!mountedAt(dir), `${dir} unmounted`);
      assert.ok(!existsSync(dir), `${dir} removed`);
    }
    assert.deepEqual(readdirSync(`${lab.pinRoot}-inside`), ['a'], 'only the pin root itself goes, not the directories above it');
  },
);

test(
  'a stale pid file naming an unrelated live process: reload signals nothing, status says no daemon; a new daemon takes the file over',
  { timeout: 60_000 },
  async (t) => {
    const lab = createLab(t);
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    let hups = 0;
    sleeper.on('exit', () => hups++);
    t.after(() => void sleeper.kill('SIGKILL'));
    const pid = sleeper.pid!;
    mkdirSync(lab.runDir, { recursive: true });
    for (const text of [`${pid}\n`, `${pid}\nstart=1 boot=00000000-0000-0000-0000-000000000000\n`]) {
      writeFileSync(join(lab.runDir, 'daemon.pid'), text);
      writeFileSync(join(lab.runDir, 'config.json'), `${JSON.stringify({ pid, path: '/nonexistent.yaml' })}\n`);
      const r = await lab.cli(['reload']);
      assert.equal(r.code, 1, describeRun(r));
      assert.equal(r.stderr.trim().split('\n').length, 1, describeRun(r));
      assert.match(
        r.stderr,
        new RegExp(
          `^sentry-xdp: no sentry-xdp daemon is running \\(the pid file .*daemon\\.pid is stale: pid ${pid} is a process that is not the sentry-xdp daemon that wrote it\\)`,
        ),
        describeRun(r),
      );
      await sleep(200);
      assert.ok(pidAlive(pid) && hups === 0, `the unrelated process was signalled (pid file ${JSON.stringify(text)})`);
      const s = await lab.status();
      assert.equal(s.daemonPid, null, `status must say no daemon\n${JSON.stringify(s)}`);
      assert.doesNotMatch(s.config, /nonexistent/, 'the CLI does not follow the config of a process that is not our daemon');
    }
    const cfg = lab.writeConfig('s.yaml', CONFIG);
    const d = await lab.startDaemon({ config: cfg });
    const s = await lab.status();
    assert.equal(s.daemonPid, d.child.pid, `the new daemon took the pid file over\n${JSON.stringify(s)}\n${d.output()}`);
    assert.equal(s.config, cfg);
    const mark = d.lines.length;
    const r = await lab.cli(['reload']);
    assert.equal(r.code, 0, describeRun(r));
    await d.waitForLine(/^sentry-xdp: reloaded /, 5000, mark);
    assert.ok(pidAlive(pid) && hups === 0, 'the unrelated process is untouched');
  },
);

for (const umask of [0o077, 0o000]) {
  const u = umask.toString(8).padStart(3, '0');
  test(`with umask ${u}: state dir 0750 and its files 0640, run dir 0755 and its files 0644`, { timeout: 60_000 }, async (t) => {
    requireTools('hping3');
    const lab = createLab(t);
    const cfg = lab.writeConfig('s.yaml', CONFIG);
    const d = await withUmask(umask, () => lab.startDaemon({ config: cfg }));
    const mark = d.lines.length;
    await lab.probe(ATK4);
    await d.waitForLine(new RegExp(`^attackalert: Host ${esc(ATK4)} has been blocked`), 5000, mark);
    const b = await withUmask(umask, () => lab.cli(['ban', '203.0.113.7']));
    assert.equal(b.code, 0, describeRun(b));
    const a = await withUmask(umask, () => lab.cli(['allow', 'add', '192.0.2.0/24']));
    assert.equal(a.code, 0, describeRun(a));
    await until('daemon.json written', () => existsSync(join(lab.runDir, 'daemon.json')));
    await sleep(1200); // daemon.json rewritten at least once more

    const want: Record<string, string> = { [lab.stateDir]: '750', [lab.runDir]: '755' };
    for (const f of readdirSync(lab.stateDir)) want[join(lab.stateDir, f)] = '640';
    for (const f of readdirSync(lab.runDir)) want[join(lab.runDir, f)] = '644';
    const got = Object.fromEntries(Object.keys(want).map((p) => [p, mode(p)]));
    assert.deepEqual(got, want, d.output());
    for (const f of ['bans.jsonl', 'allow.txt']) assert.ok(existsSync(join(lab.stateDir, f)), `${f} was written`);
    for (const f of ['daemon.pid', 'config.json', 'watch.json', 'daemon.json']) assert.ok(existsSync(join(lab.runDir, f)), `${f} was written`);
  });
}

test('hosts.deny keeps its mode and owner when an unban takes a line out, and an IPv6 auto-ban writes a bracketed line', { timeout: 60_000 }, async (t) => {
  requireTools('nmap', 'hping3');
  const lab = createLab(t);
  const deny = join(lab.confDir, 'hosts.deny');
  writeFileSync(deny, 'sshd: 192.0.2.1\n');
  chmodSync(deny, 0o644);
  chownSync(deny, 0, 65534); // a group of its own: the rewrite must keep it
  const cfg = lab.writeConfig('s.yaml', `${CONFIG}hooks:\n  kill_hosts_deny: "ALL: $TARGET$"\n  hosts_deny_file: ${deny}\n`);
  const d = await withUmask(0o077, () => lab.startDaemon({ config: cfg }));
  const lines = () => readFileSync(deny, 'utf8').split('\n').filter(Boolean);

  const mark = d.lines.length;
  const nm = await lab.atk(['nmap', '-6', '-sS', '-Pn', '-n', '-T5', '--max-retries', '1', '--host-timeout', '15s', '-p', '1', '2001:db8::1'], {
    timeoutMs: 30_000,
  });
  await d.waitForLine(new RegExp(`^attackalert: Host ${esc(ATK6)} has been blocked`), 5000, mark).catch((e: Error) => {
    throw new Error(`${e.message}\nnmap: ${describeRun(nm)}`);
  });
  await lab.probe(ATK4);
  await until('both hosts.deny lines in', () => lines().length === 3);
  assert.deepEqual(lines(), ['sshd: 192.0.2.1', `ALL: [${ATK6}]`, `ALL: ${ATK4}`], d.output());

  const u = await withUmask(0o077, () => lab.cli(['unban', ATK6])); // the CLI follows the daemon's config
  assert.equal(u.code, 0, describeRun(u));
  await until('the IPv6 line out', () => lines().length === 2);
  assert.deepEqual(lines(), ['sshd: 192.0.2.1', `ALL: ${ATK4}`]);
  const st = statSync(deny);
  assert.equal(mode(deny), '644', 'hosts.deny keeps its mode');
  assert.deepEqual([st.uid, st.gid], [0, 65534], 'hosts.deny keeps its owner');
  assert.deepEqual(
    readdirSync(lab.confDir).filter((f) => f.includes('tmp')),
    [],
    'no temporary file left',
  );
});
