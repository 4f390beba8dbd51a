import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Syslog, timestamp } from '../../src/adapters/syslog.js';
import { SentryError } from '../../src/errors.js';

/*
 * Node cannot bind a unix datagram socket (node:dgram is UDP only), so the receiving end of /dev/log is a
 * few lines of python3: bind AF_UNIX/SOCK_DGRAM at the path, print every datagram as hex on its own line.
 */
const LISTENER = `
import socket, sys, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("ready", flush=True)
while True:
    print(s.recv(65536).hex(), flush=True)
`;

const python = spawnSync('python3', ['--version']);
if (python.error || python.status !== 0) {
  throw new Error('test/unit/syslog.test.ts needs python3 to listen on a unix datagram socket (Node cannot); install python3');
}

const dir = mkdtempSync(join(tmpdir(), 'sentry-syslog-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

class DgramListener {
  private readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private waiters: (() => void)[] = [];
  readonly ready: Promise<void>;

  constructor(readonly path: string) {
    rmSync(path, { force: true });
    this.child = spawn('python3', ['-u', '-c', LISTENER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(this.child);
    let ready!: () => void;
    this.ready = new Promise((r) => (ready = r));
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      if (l === 'ready') return ready();
      this.lines.push(l);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** The next datagram, as bytes. */
  async next(timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (Date.now() > deadline) throw new Error(`no datagram on ${this.path} within ${timeoutMs} ms`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(50)]);
    }
    return Buffer.from(this.lines.shift()!, 'hex');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await exited;
    rmSync(this.path, { force: true });
  }
}

const at = new Date(2024, 9, 4, 9, 5, 7); // local time, as syslog(3) writes it

test('a line arrives as glibc syslog(3) writes it: <PRI>Mmm dd hh:mm:ss TAG[PID]: message', async () => {
  const path = join(dir, 'log1');
  const l = new DgramListener(path);
  await l.ready;
  const reports: string[] = [];
  const s = new Syslog({ path, report: (r) => reports.push(r), now: () => at });
  try {
    const line = 'attackalert: TCP SYN/Normal scan from host: 198.18.0.1/198.18.0.1 to TCP port: 23';
    s.log('notice', line);
    // daemon (3) * 8 + notice (5) = 29; the day of the month is padded with a space, not a zero.
    assert.deepEqual(await l.next(), Buffer.from(`<29>Oct  4 09:05:07 sentry-xdp[${process.pid}]: ${line}`, 'latin1'), 'exact bytes, no NUL, no newline');

    s.log('err', 'adminalert: ERROR: could not attach');
    assert.equal((await l.next()).toString(), `<27>Oct  4 09:05:07 sentry-xdp[${process.pid}]: adminalert: ERROR: could not attach`);
    // an inner newline would forge a second line, ESC and bidi controls would drive a terminal: shown escaped
    s.log('info', 'two\nlines\x1b[31m\u202e\r\n');
    assert.equal((await l.next()).toString(), `<30>Oct  4 09:05:07 sentry-xdp[${process.pid}]: two\\u000alines\\u001b[31m\\u202e`);
    assert.equal(reports.length, 0, reports.join('\n'));
  } finally {
    s.close();
    await l.stop();
  }

  // tag portsentry keeps PortSentry-era filters matching; other facilities change only the PRI.
  const l2 = new DgramListener(path);
  await l2.ready;
  const p = new Syslog({
    path,
    facility: 'local0',
    tag: 'portsentry',
    pid: 25360,
    report: (r) => void reports.push(r),
    now: () => new Date(2024, 9, 14, 19, 24, 32),
  });
  try {
    p.log('warning', 'attackalert: Host 152.2.81.51 has been blocked via XDP drop (ban 10m)');
    // local0 (16) * 8 + warning (4) = 132
    assert.equal((await l2.next()).toString(), '<132>Oct 14 19:24:32 portsentry[25360]: attackalert: Host 152.2.81.51 has been blocked via XDP drop (ban 10m)');
    assert.equal(reports.length, 0, reports.join('\n'));
    const a = new Syslog({ path, facility: 'authpriv', report: () => {}, now: () => at, pid: 1 });
    assert.equal(a.format('notice', 'x').toString(), '<85>Oct  4 09:05:07 sentry-xdp[1]: x');
    a.close();
  } finally {
    p.close();
    await l2.stop();
  }
});

test('a missing socket is reported once; lines wait and are delivered when it appears', async () => {
  const path = join(dir, 'log2');
  const reports: string[] = [];
  const s = new Syslog({ path, report: (r) => reports.push(r), now: () => at, pid: 7 });
  try {
    s.log('notice', 'one');
    s.log('notice', 'two');
    s.log('notice', 'three');
    assert.equal(reports.length, 1);
    assert.match(reports[0]!, new RegExp(`^syslog: cannot log to ${path}: it does not exist`));

    const l = new DgramListener(path);
    await l.ready;
    try {
      // Retried within about a second, in order.
      for (const word of ['one', 'two', 'three']) assert.equal((await l.next(4000)).toString(), `<29>Oct  4 09:05:07 sentry-xdp[7]: ${word}`);
      s.log('notice', 'four');
      assert.equal((await l.next()).toString(), '<29>Oct  4 09:05:07 sentry-xdp[7]: four');
      assert.equal(reports.length, 1, 'no more reports once it works');
    } finally {
      await l.stop();
    }
  } finally {
    s.close();
  }
});

test('when the syslog daemon restarts, the next line reconnects and is delivered', async () => {
  const path = join(dir, 'log3');
  const reports: string[] = [];
  const s = new Syslog({ path, report: (r) => reports.push(r), now: () => at, pid: 8 });
  const first = new DgramListener(path);
  await first.ready;
  s.log('notice', 'before');
  assert.equal((await first.next()).toString(), '<29>Oct  4 09:05:07 sentry-xdp[8]: before');
  await first.stop();
  const second = new DgramListener(path);
  await second.ready;
  try {
    s.log('notice', 'after');
    assert.equal((await second.next()).toString(), '<29>Oct  4 09:05:07 sentry-xdp[8]: after');
    assert.deepEqual(reports, []);
  } finally {
    s.close();
    await second.stop();
  }
});

test('a SOCK_STREAM /dev/log (some syslog-ng setups) gets NUL-terminated messages, as glibc sends them', async () => {
  const path = join(dir, 'log4');
  let received = Buffer.alloc(0);
  const server = createServer((c) => c.on('data', (b: Buffer) => (received = Buffer.concat([received, b]))));
  await new Promise<void>((r) => server.listen(path, r));
  const reports: string[] = [];
  const s = new Syslog({ path, report: (r) => reports.push(r), now: () => at, pid: 9 });
  try {
    s.log('notice', 'one');
    s.log('notice', 'two');
    for (let i = 0; i < 100 && received.length < 2 * 38; i++) await sleep(20);
    assert.equal(received.toString(), '<29>Oct  4 09:05:07 sentry-xdp[9]: one\0<29>Oct  4 09:05:07 sentry-xdp[9]: two\0');
    assert.deepEqual(reports, []);
  } finally {
    s.close();
    server.close();
  }
});

test('timestamps, long lines and bad settings', () => {
  assert.equal(timestamp(new Date(2025, 0, 31, 23, 59, 59)), 'Jan 31 23:59:59');
  assert.equal(timestamp(new Date(2025, 11, 1, 0, 0, 0)), 'Dec  1 00:00:00');
  const s = new Syslog({ path: join(dir, 'unused'), report: () => {}, now: () => at, pid: 1 });
  const long = s.format('notice', 'é'.repeat(10_000));
  assert.ok(long.length <= 8192 + 40);
  assert.ok(long.toString().endsWith('é...'), 'cut on a character boundary');
  s.close();
  s.log('notice', 'after close is ignored');

  const bad = (o: object): void =>
    assert.throws(
      () => new Syslog({ report: () => {}, ...o }),
      (e: unknown) => e instanceof SentryError && e.code === 'CONFIG',
    );
  bad({ facility: 'local9' });
  bad({ tag: 'port sentry' });
  bad({ tag: 'x[1]:' });
  bad({ path: `/${'x'.repeat(120)}` });
});
