import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Notifier, splitArgv } from '../../src/adapters/notifier.js';
import { DigestBuilder, type DigestMessage } from '../../src/core/digest.js';
import { SentryError } from '../../src/errors.js';
import { scratch } from '../helpers/scratch.js';

const { dir, leftovers } = scratch('sentry-notify-');

function script(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

/** A real digest: the 500-source burst. */
function burst(): DigestMessage {
  const d = new DigestBuilder({ intervalMs: 60_000, host: 'gw1' });
  for (let i = 0; i < 500; i++) d.add({ time: 0, kind: 'ban', source: `198.18.${i >> 8}.${i & 255}`, ttlSeconds: 600, origin: 'auto' }, 0);
  return d.take(60_000)!;
}

function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

test('the command gets the text on stdin, the subject as $SUBJECT$ and in SENTRY_SUBJECT, and no shell', async () => {
  const out = join(dir, 'mail');
  const mailer = script('mail.sh', `cat > "$3.body"; printf '%s\\n' "$1" "$2" "$SENTRY_SUBJECT" "$SENTRY_URGENT" > "$3.args"`);
  const m = burst();
  const reports: string[] = [];
  // "-s" and the subject are separate argv entries; quotes group "a b"; `;` and `|` are plain characters.
  const n = new Notifier({ command: `${mailer} -s $SUBJECT$ ${out} 'x; rm -rf /' "a | b"`, report: (l) => reports.push(l) });
  assert.equal(await n.send(m), true);
  assert.deepEqual(reports, []);
  assert.equal(readFileSync(`${out}.body`, 'utf8'), m.text);
  assert.equal(readFileSync(`${out}.args`, 'utf8'), `-s\n${m.subject}\n${m.subject}\n0\n`);
  for (let i = 0; i < 500; i++) assert.ok(m.text.includes(`198.18.${i >> 8}.${i & 255} `));
});

test('splitArgv honours quotes and backslashes and refuses an unclosed quote', () => {
  assert.deepEqual(splitArgv(`/usr/bin/mail  -s $SUBJECT$ root`), ['/usr/bin/mail', '-s', '$SUBJECT$', 'root']);
  assert.deepEqual(splitArgv(`a 'b c' "d \\"e\\" \\\\" f\\ g ''`), ['a', 'b c', 'd "e" \\', 'f g', '']);
  assert.deepEqual(splitArgv(`echo a|b>c`), ['echo', 'a|b>c']);
  assert.throws(
    () => splitArgv(`mail -s 'oops`),
    (e: unknown) => e instanceof SentryError && e.code === 'CONFIG',
  );
});

test('splitArgv quotes as hook templates do (the one command lexer)', () => {
  // inside "..." a backslash also escapes $ and `, and a backslash-newline joins lines, as in sh
  assert.deepEqual(splitArgv(`mail -s "\\$5 \\\`x\\\` \\y" a\\\nb`), ['mail', '-s', '$5 `x` \\y', 'ab']);
  // a newline separates words, a carriage return is text
  assert.deepEqual(splitArgv('mail\nroot\r'), ['mail', 'root\r']);
  // a lone backslash at the end is refused, not dropped
  assert.throws(
    () => splitArgv('mail root\\'),
    (e: unknown) => e instanceof SentryError && e.code === 'CONFIG' && /lone backslash/.test(e.message),
  );
});

test('the webhook receives POST JSON {subject, text, data, urgent}', async () => {
  const got: { method?: string; type?: string; body: string }[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      got.push({ method: req.method, type: req.headers['content-type'], body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    const reports: string[] = [];
    const m = burst();
    const n = new Notifier({ webhook: `http://127.0.0.1:${port}/hook/secret-token`, report: (l) => reports.push(l) });
    assert.equal(await n.send(m), true);
    assert.deepEqual(reports, []);
    assert.equal(got.length, 1);
    assert.equal(got[0]!.method, 'POST');
    assert.equal(got[0]!.type, 'application/json');
    const body = JSON.parse(got[0]!.body) as { subject: string; text: string; data: object; urgent: boolean };
    assert.deepEqual(body, { subject: m.subject, text: m.text, data: JSON.parse(JSON.stringify(m.json)), urgent: false });
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test('a webhook answering 500 is reported with its origin only (the path may hold a token)', async () => {
  const server = createServer((_req, res) => res.writeHead(500, 'Internal Server Error').end('no'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    const reports: string[] = [];
    const n = new Notifier({ webhook: `http://127.0.0.1:${port}/hook/secret-token`, report: (l) => reports.push(l) });
    assert.equal(await n.send(burst()), false);
    assert.deepEqual(reports, [`notify webhook http://127.0.0.1:${port}: answered 500 Internal Server Error`]);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test('a webhook that refuses connections is reported, not thrown', async () => {
  // A port that was just ours and is now closed.
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise((r) => server.close(r));

  const reports: string[] = [];
  const n = new Notifier({ webhook: `http://127.0.0.1:${port}/x`, timeoutMs: 3000, report: (l) => reports.push(l) });
  assert.equal(await n.send(burst()), false);
  assert.equal(reports.length, 1);
  assert.match(reports[0]!, new RegExp(`^notify webhook http://127\\.0\\.0\\.1:${port}: ECONNREFUSED`));
});

test('a hanging command is killed with its whole process group, and reported', async () => {
  const pids = join(dir, 'hang.pids');
  const hang = script('hang.sh', `sleep 30 & echo $! > ${pids}; echo $$ >> ${pids}; sleep 30`);
  const reports: string[] = [];
  const n = new Notifier({ command: hang, timeoutMs: 300, report: (l) => reports.push(l) });
  const t0 = Date.now();
  const p = n.send(burst());
  // The caller is not held up: send returned a promise at once.
  assert.ok(Date.now() - t0 < 100);
  assert.equal(await p, false);
  assert.ok(Date.now() - t0 < 3000, 'resolved soon after the timeout');
  assert.equal(reports.length, 1);
  assert.match(reports[0]!, new RegExp(`^notify command ${hang}: timed out after 300 ms; process group killed$`));
  const list = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
  leftovers.push(...list);
  assert.equal(list.length, 2);
  for (let i = 0; i < 50 && !list.every(gone); i++) await sleep(20);
  for (const pid of list) assert.ok(gone(pid), `pid ${pid} was killed`);
});

test('a failing or missing command is reported, never thrown', async () => {
  const fail = script('fail.sh', `cat >/dev/null; echo "mail: no such user" >&2; exit 3`);
  const reports: string[] = [];
  const n = new Notifier({ command: fail, report: (l) => reports.push(l) });
  assert.equal(await n.send(burst()), false);
  assert.deepEqual(reports, [`notify command ${fail}: exited with status 3: mail: no such user`]);

  reports.length = 0;
  const missing = join(dir, 'no-such-mailer');
  const n2 = new Notifier({ command: `${missing} -s x`, report: (l) => reports.push(l) });
  assert.equal(await n2.send(burst()), false);
  assert.deepEqual(reports, [`notify command ${missing}: cannot start: ENOENT`]);

  // A command that does not read its stdin is fine (EPIPE is not a failure of the command).
  reports.length = 0;
  const n3 = new Notifier({ command: 'true', report: (l) => reports.push(l) });
  assert.equal(await n3.send(burst()), true);
  assert.deepEqual(reports, []);
  // A throwing report callback does not escape.
  const n4 = new Notifier({
    command: fail,
    report: () => {
      throw new Error('boom');
    },
  });
  assert.equal(await n4.send(burst()), false);
});

test('deliveries beyond maxInFlight are dropped and reported; both targets are tried', async () => {
  const slow = script('slow.sh', 'cat >/dev/null; sleep 0.3');
  const reports: string[] = [];
  const n = new Notifier({ command: slow, maxInFlight: 1, report: (l) => reports.push(l) });
  const m = burst();
  const [a, b] = await Promise.all([n.send(m), n.send(m)]);
  assert.equal(a, true);
  assert.equal(b, false);
  assert.deepEqual(reports, [`notify: dropped "${m.subject}": 1 deliveries still running`]);

  // Command ok + webhook refused: false, one report, the command still ran.
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise((r) => server.close(r));
  const marker = join(dir, 'both.marker');
  const touch = script('touch.sh', `cat >/dev/null; : > ${marker}`);
  reports.length = 0;
  const both = new Notifier({ command: touch, webhook: `http://127.0.0.1:${port}/`, report: (l) => reports.push(l) });
  assert.equal(await both.send(m), false);
  assert.ok(existsSync(marker));
  assert.equal(reports.length, 1);
});

test('a webhook that is not http(s) is refused at construction', () => {
  assert.throws(() => new Notifier({ webhook: 'file:///etc/passwd', report: () => {} }), SentryError);
  assert.throws(() => new Notifier({ webhook: 'not a url', report: () => {} }), SentryError);
  assert.equal(new Notifier({ report: () => {} }).enabled, false);
});
