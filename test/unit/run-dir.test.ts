import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatPidFile, isRecordedProcess, looksLikeDaemon, parsePidFile, parseProcStat, RunDir, selfIdentity } from '../../src/adapters/run-dir.js';
import { scratch } from '../helpers/scratch.js';

const { dir, leftovers } = scratch('sentry-run-dir-');

test('the pid file: the pid on the first line, the identity on the second, and back', () => {
  const text = formatPidFile({ pid: 4242, start: '987654', boot: '0b1c2d3e-aaaa-bbbb-cccc-0123456789ab' });
  assert.equal(text, '4242\nstart=987654 boot=0b1c2d3e-aaaa-bbbb-cccc-0123456789ab\n');
  assert.deepEqual(parsePidFile(text), { pid: 4242, start: '987654', boot: '0b1c2d3e-aaaa-bbbb-cccc-0123456789ab' });
  assert.deepEqual(parsePidFile('4242\n'), { pid: 4242 }, 'the format of older versions');
  for (const bad of ['', 'x\n', '0\n', '-1\n', '12ab\n']) assert.equal(parsePidFile(bad), undefined, JSON.stringify(bad));
});

test('/proc/PID/stat: state and start time (field 22), with spaces and parentheses in the command name', () => {
  const fields = Array.from({ length: 50 }, (_, i) => String(i + 3)); // field numbers from 3 on
  fields[0] = 'S';
  assert.deepEqual(parseProcStat(`123 (a) b (c)) ${fields.join(' ')}`), { state: 'S', start: '22' });
  assert.equal(parseProcStat('123 (x) S 1 2'), undefined);
});

test('a recorded identity must match; without one only a sentry-xdp daemon is trusted', () => {
  const live = { start: '100', boot: 'B', argv: ['sleep', '60'] };
  assert.equal(isRecordedProcess({ start: '100', boot: 'B' }, live), true);
  assert.equal(isRecordedProcess({ start: '99', boot: 'B' }, live), false, 'the pid was reused');
  assert.equal(isRecordedProcess({ start: '100', boot: 'A' }, live), false, 'written before a reboot');
  assert.equal(isRecordedProcess({}, live), false, 'an old-format pid file naming some other process');
  assert.equal(isRecordedProcess({}, { ...live, argv: ['node', '/usr/lib/sentry-xdp/dist/src/cli/main.js', 'attach', 'eth0'] }), true);
  assert.equal(looksLikeDaemon(['node', '/opt/x/bin/sentry-xdp', 'attach', 'eth0']), true);
  assert.equal(looksLikeDaemon(['node', '/opt/x/bin/sentry-xdp', 'status']), false);
  assert.equal(looksLikeDaemon(['sh', '-c', 'attach sentry-xdp']), false);
});

test('daemonPid: the process that wrote the pid file, not whatever now has its pid', async () => {
  const run = new RunDir(join(dir, 'run1'));
  assert.equal(run.daemonPid(), undefined);
  run.claimDaemon();
  assert.equal(run.daemonPid(), process.pid);
  assert.equal(readFileSync(run.pidFile, 'utf8').split('\n')[0], String(process.pid), 'the first line is the pid');
  run.writeDaemonConfig('/etc/sentry-xdp/x.yaml');
  assert.deepEqual(run.daemonConfig(), { pid: process.pid, path: '/etc/sentry-xdp/x.yaml' });

  // a stale pid file naming an unrelated live process (a reused pid)
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  leftovers.push(sleeper.pid!);
  const me = selfIdentity();
  writeFileSync(run.pidFile, formatPidFile({ pid: sleeper.pid!, start: me.start === '1' ? '2' : '1', boot: me.boot }));
  writeFileSync(join(run.dir, 'config.json'), JSON.stringify({ pid: sleeper.pid, path: '/tmp/evil.yaml' }));
  assert.equal(run.daemonPid(), undefined);
  assert.equal(run.daemonConfig(), undefined, 'the CLI does not follow the config of a process that is not our daemon');
  assert.match(run.stalePidNote() ?? '', new RegExp(`pid ${sleeper.pid} is a process that is not the sentry-xdp daemon`));
  writeFileSync(run.pidFile, `${sleeper.pid}\n`); // the old format
  assert.equal(run.daemonPid(), undefined);
  run.claimDaemon(); // a stale file is taken over
  assert.equal(run.daemonPid(), process.pid);
  sleeper.kill('SIGKILL');
});

for (const umask of [0o077, 0o000]) {
  test(`run dir 0755 and its files 0644 with umask ${umask.toString(8).padStart(3, '0')}`, () => {
    const old = process.umask(umask);
    try {
      const run = new RunDir(join(dir, `modes-${umask}`, 'run'));
      run.claimDaemon();
      run.writeDaemonConfig(null);
      run.writeWatch({ tcp: [1], udp: [], skipped: [] });
      run.writeDaemonStats({});
      const mode = (p: string) => (statSync(p).mode & 0o7777).toString(8);
      assert.equal(mode(run.dir), '755');
      assert.equal(mode(join(dir, `modes-${umask}`)), '755', 'a parent it made too');
      for (const f of ['daemon.pid', 'config.json', 'watch.json', 'daemon.json']) assert.equal(mode(join(run.dir, f)), '644', f);
      run.releaseDaemon();
    } finally {
      process.umask(old);
    }
  });
}
