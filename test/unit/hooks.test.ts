import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HookRunner, type HookResult } from '../../src/adapters/hooks.js';
import type { HookTokens } from '../../src/core/hook-command.js';
import { scratch } from '../helpers/scratch.js';

const tk: HookTokens = { target: '1.2.3.4', port: 23, mode: 'tcp' };
const { dir, leftovers } = scratch('sentry-hooks-');
assert.match(dir, /^[A-Za-z0-9_/.-]+$/, 'the temp dir path is used unquoted in templates');

/** A KILL_RUN_CMD-style script: appends "$1 $2" to a file. */
const banScript = join(dir, 'ban.sh');
writeFileSync(banScript, '#!/bin/sh\nprintf \'%s %s\\n\' "$1" "$2" >> "$(dirname "$0")/ban.log"\n');
chmodSync(banScript, 0o755);
const banLog = join(dir, 'ban.log');

const read = (f: string): string => readFileSync(f, 'utf8');

/** True once the process is gone (or a zombie, which no longer runs). */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

test('a KILL_RUN_CMD script receives exactly the target and port (argv, no shell)', async () => {
  rmSync(banLog, { force: true });
  const runner = new HookRunner({ timeoutMs: 5000 });
  const r = await runner.run('KILL_RUN_CMD', `${banScript} $TARGET$ $PORT$`, tk);
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(r.exitCode, 0);
  assert.equal(r.plan, `${banScript} 1.2.3.4 23`);
  assert.equal(read(banLog), '1.2.3.4 23\n');
  assert.deepEqual(runner.stats(), { started: 1, ok: 1, failed: 0, timedOut: 0, dropped: 0 });
});

test('the seed KILL_RUN_CMD shape (subshell | pipe; script) runs under /bin/sh with the right values', async () => {
  rmSync(banLog, { force: true });
  const mail = join(dir, 'mail.txt');
  const runner = new HookRunner({ timeoutMs: 5000 });
  const r = await runner.run(
    'KILL_RUN_CMD',
    `(/bin/echo whois $TARGET$) | /bin/cat > ${mail}; /bin/echo 'Ganymede banned $TARGET$ for scanning port $PORT$' >> ${mail}; ${banScript} $TARGET$ $PORT$;`,
    tk,
  );
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.match(r.plan, /^\/bin\/sh -c /);
  assert.equal(read(mail), 'whois 1.2.3.4\nGanymede banned 1.2.3.4 for scanning port 23\n');
  assert.equal(read(banLog), '1.2.3.4 23\n');
});

test('echo "$TARGET$:$PORT$" >> FILE && echo done writes 1.2.3.4:23', async () => {
  const out = join(dir, 'block.log');
  const runner = new HookRunner({ timeoutMs: 5000 });
  const r = await runner.run('KILL_ROUTE', `echo "$TARGET$:$PORT$" >> ${out} && echo done`, tk);
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(read(out), '1.2.3.4:23\n');
  assert.equal(r.stdoutTail, 'done\n');
});

test('IPv6 addresses and networks pass through argv and shell plans intact', async () => {
  const out = join(dir, 'v6.log');
  rmSync(banLog, { force: true });
  const runner = new HookRunner({ timeoutMs: 5000 });
  for (const target of ['2001:db8::1', '2001:db8::/48', '::1', '198.18.0.0/15']) {
    const t = { target, port: 65535, mode: 'audp' };
    const a = await runner.run('KILL_RUN_CMD', `${banScript} $TARGET$ $MODE$`, t);
    const s = await runner.run('KILL_ROUTE', `echo "$TARGET$:$PORT$" $TARGET$ '[$MODE$]' >> ${out}`, t);
    assert.equal(a.ok && s.ok, true, JSON.stringify([a, s]));
  }
  assert.equal(read(banLog), '2001:db8::1 audp\n2001:db8::/48 audp\n::1 audp\n198.18.0.0/15 audp\n');
  assert.equal(
    read(out),
    '2001:db8::1:65535 2001:db8::1 [audp]\n2001:db8::/48:65535 2001:db8::/48 [audp]\n::1:65535 ::1 [audp]\n198.18.0.0/15:65535 198.18.0.0/15 [audp]\n',
  );
});

test('hostile token values never reach a shell: planHook refuses them and nothing runs', async () => {
  const marker = join(dir, 'pwned');
  const out = join(dir, 'never.log');
  const results: HookResult[] = [];
  const runner = new HookRunner({ timeoutMs: 5000, onResult: (r) => results.push(r) });
  const hostile = [
    `1.2.3.4;touch ${marker}`,
    `$(touch ${marker})`,
    `\`touch ${marker}\``,
    `1.2.3.4\ntouch ${marker}`,
    `1.2.3.4' ; touch '${marker}`,
    `1.2.3.4" ; touch "${marker}`,
    `1.2.3.4 && touch ${marker}`,
  ];
  for (const target of hostile) {
    for (const template of [`echo $TARGET$ >> ${out}`, `echo "$TARGET$" >> ${out}`, `echo '$TARGET$' >> ${out}`, `/bin/echo $TARGET$`]) {
      const r = await runner.run('KILL_ROUTE', template, { ...tk, target });
      assert.equal(r.ok, false);
      assert.match(r.error ?? '', /\$TARGET\$ .* is not an IP address/);
      assert.doesNotMatch(r.error ?? '', /\n/);
    }
  }
  const r = await runner.run('KILL_ROUTE', `echo $MODE$ >> ${out}`, { ...tk, mode: `tcp;touch ${marker}` });
  assert.equal(r.ok, false);
  assert.equal(existsSync(marker), false);
  assert.equal(existsSync(out), false);
  assert.equal(runner.stats().started, 0);
  assert.equal(runner.stats().failed, hostile.length * 4 + 1);
  assert.equal(results.length, hostile.length * 4 + 1);

  // and a legitimate value in a template full of quoting contexts runs correctly
  const ok = await runner.run(
    'KILL_ROUTE',
    `X=$TARGET$; printf '%s|%s|%s|%s\\n' $TARGET$ "$X" '$TARGET$' "$(echo $TARGET$)" > ${out}; touch ${marker}.$PORT$`,
    { ...tk, target: '2001:db8:1::/48' },
  );
  assert.equal(ok.ok, true, JSON.stringify(ok));
  assert.equal(read(out), '2001:db8:1::/48|2001:db8:1::/48|2001:db8:1::/48|2001:db8:1::/48\n');
  assert.equal(existsSync(`${marker}.23`), true);
});

test('hanging hooks are killed with their process group after timeoutMs; other hooks are not delayed', async () => {
  const pidFileA = join(dir, 'bg-a.pid');
  const pidFileB = join(dir, 'bg-b.pid');
  const runner = new HookRunner({ timeoutMs: 300 });
  const t0 = performance.now();
  const order: string[] = [];
  const hang1 = runner.run('KILL_RUN_CMD', 'sleep 30', tk).then((r) => (order.push('hang1'), r));
  // argv plan: the single-quoted script goes to sh -c as one argument
  const hang2 = runner.run('KILL_RUN_CMD', `sh -c 'sleep 30 & echo $! > ${pidFileA}; sleep 30'`, tk).then((r) => (order.push('hang2'), r));
  // shell plan: our own /bin/sh backgrounds a child
  const hang3 = runner.run('KILL_RUN_CMD', `sleep 30 & echo $! > ${pidFileB}; sleep 30`, tk).then((r) => (order.push('hang3'), r));
  const quick = await runner.run('KILL_RUN_CMD', '/bin/echo quick', tk);
  const quickMs = performance.now() - t0;
  order.push('quick');
  assert.equal(quick.ok, true);
  assert.equal(quick.stdoutTail, 'quick\n');
  assert.ok(quickMs < 250, `quick hook took ${quickMs} ms while others hung`);

  const hung = await Promise.all([hang1, hang2, hang3]);
  assert.equal(order[0], 'quick');
  for (const r of hung) {
    assert.equal(r.timedOut, true, JSON.stringify(r));
    assert.equal(r.ok, false);
    assert.equal(r.signal, 'SIGKILL');
    assert.ok(r.durationMs >= 290 && r.durationMs < 2000, `durationMs ${r.durationMs}`);
    assert.match(r.error ?? '', /timed out after 300 ms/);
  }
  assert.ok(performance.now() - t0 < 2000);
  for (const f of [pidFileA, pidFileB]) {
    const pid = Number(read(f).trim());
    assert.ok(pid > 1);
    leftovers.push(pid);
    let dead = gone(pid);
    for (let i = 0; i < 40 && !dead; i++) {
      await sleep(50);
      dead = gone(pid);
    }
    assert.equal(dead, true, `background child ${pid} of a timed-out hook is still running`);
  }
  assert.deepEqual(runner.stats(), { started: 4, ok: 1, failed: 0, timedOut: 3, dropped: 0 });
  await runner.idle();
});

test('a hook that exits while a background child holds its output is reported promptly', async () => {
  const pidFile = join(dir, 'bg-c.pid');
  const runner = new HookRunner({ timeoutMs: 5000 });
  const t0 = performance.now();
  const r = await runner.run('KILL_RUN_CMD', `sleep 5 & echo $! > ${pidFile}; echo started`, tk);
  const pid = Number(read(pidFile).trim());
  leftovers.push(pid);
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(r.timedOut, false);
  assert.equal(r.stdoutTail, 'started\n');
  assert.ok(performance.now() - t0 < 1500);
  process.kill(pid, 'SIGKILL');
});

test('a failing hook reports its exit code and the tail of stderr', async () => {
  const runner = new HookRunner({ timeoutMs: 5000 });
  const r = await runner.run('KILL_ROUTE', 'echo "cannot ban $TARGET$" >&2; exit 3', tk);
  assert.equal(r.ok, false);
  assert.equal(r.exitCode, 3);
  assert.equal(r.signal, null);
  assert.equal(r.timedOut, false);
  assert.equal(r.stderrTail, 'cannot ban 1.2.3.4\n');
  assert.equal(r.error, 'exited with status 3');

  const missing = await runner.run('KILL_ROUTE', `${dir}/no-such-program $TARGET$`, tk);
  assert.equal(missing.ok, false);
  assert.equal(missing.exitCode, null);
  assert.match(missing.error ?? '', /cannot start .*no-such-program: ENOENT/);

  const big = await runner.run('KILL_ROUTE', "head -c 100000 /dev/zero | tr '\\0' x; head -c 50000 /dev/zero | tr '\\0' y >&2", tk);
  assert.equal(big.ok, true);
  assert.ok(big.stdoutTail.length <= 4096 + 3 && big.stdoutTail.startsWith('...x'), `stdout tail ${big.stdoutTail.length}`);
  assert.ok(big.stderrTail.length <= 4096 + 3 && big.stderrTail.endsWith('yyy'));
  assert.deepEqual(runner.stats(), { started: 3, ok: 1, failed: 2, timedOut: 0, dropped: 0 });
});

test('the hook environment carries the validated tokens', async () => {
  const runner = new HookRunner({ env: { PATH: '/usr/bin:/bin' } });
  const r = await runner.run('KILL_RUN_CMD', 'printf "%s %s %s %s" "$SENTRY_HOOK" "$SENTRY_TARGET" "$SENTRY_PORT" "$SENTRY_MODE"', tk);
  assert.equal(r.stdoutTail, 'KILL_RUN_CMD 1.2.3.4 23 tcp');
});

test('beyond maxQueued hooks are dropped and counted; idle() waits for the rest', async () => {
  const seen: HookResult[] = [];
  const runner = new HookRunner({ timeoutMs: 5000, maxConcurrent: 1, maxQueued: 2, onResult: (r) => seen.push(r) });
  const runs = [1, 2, 3, 4, 5].map((i) => runner.run(`H${i}`, 'sleep 0.2', tk));
  const [r4, r5] = await Promise.all([runs[3]!, runs[4]!]);
  assert.equal(runner.stats().dropped, 2);
  for (const r of [r4, r5]) {
    assert.equal(r.ok, false);
    assert.match(r.error ?? '', /^dropped/);
  }
  const t0 = performance.now();
  await runner.idle();
  assert.ok(performance.now() - t0 > 300, 'three hooks of 0.2 s run one after another');
  const done = await Promise.all(runs.slice(0, 3));
  assert.equal(
    done.every((r) => r.ok),
    true,
  );
  assert.deepEqual(runner.stats(), { started: 3, ok: 3, failed: 0, timedOut: 0, dropped: 2 });
  assert.equal(seen.length, 5);
  await runner.idle(); // resolves at once when nothing runs
});
