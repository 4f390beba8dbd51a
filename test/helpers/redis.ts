/**
 * A real redis-server for a test: its own unix socket and data directory
 * (append-only, so a restart keeps the data), stopped and removed afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTools, sleep } from './lab.js';

export class RedisServer {
  readonly dir: string;
  readonly socket: string;
  private child: ChildProcess | undefined;

  constructor() {
    requireTools('redis-server');
    this.dir = mkdtempSync(join(tmpdir(), 'sentry-xdp-redis-'));
    this.socket = join(this.dir, 'redis.sock');
  }

  get url(): string {
    return `unix://${this.socket}`;
  }

  async start(): Promise<void> {
    this.child = spawn(
      'redis-server',
      [
        '--port',
        '0',
        '--unixsocket',
        this.socket,
        '--unixsocketperm',
        '700',
        '--dir',
        this.dir,
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--daemonize',
        'no',
      ],
      { stdio: 'ignore' },
    );
    const child = this.child;
    // never outlive the test process, whatever way it ends
    process.once('exit', () => child.kill('SIGKILL'));
    for (let i = 0; i < 100 && !existsSync(this.socket); i++) await sleep(50);
    if (!existsSync(this.socket)) throw new Error(`redis-server did not start (socket ${this.socket} missing)`);
  }

  async stop(): Promise<void> {
    const c = this.child;
    this.child = undefined;
    if (!c || c.exitCode !== null) return;
    const done = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await Promise.race([done, sleep(3000)]);
    if (c.exitCode === null) c.kill('SIGKILL');
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
