/**
 * The one process runner of sentry-xdp: hooks, notification commands and nft. It never throws, never blocks
 * the event loop, and keeps only the tail of the child's output. A child in its own process group (the
 * default) is killed as a whole with SIGKILL at the timeout, so `sh -c 'sleep 30 & sleep 30'` leaves nothing
 * behind.
 *
 * Hand-written on node:child_process rather than execa, because what it is for is what execa does not do:
 * execa's timeout kills the child but not its group, its maxBuffer keeps the head of the output and fails the
 * run when reached, and its buffered output waits for every pipe to close, which a backgrounded grandchild
 * of a hook can hold open long after the hook itself exited.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { oneLine } from '../core/text.js';

export { oneLine };

/** After the main process exits, how long to wait for its pipes (a backgrounded child may hold them). */
const PIPE_GRACE_MS = 200;
/** After SIGKILL, how long to wait for the exit event before reporting anyway. */
const KILL_GRACE_MS = 2000;

export interface GroupRun {
  /** null when the child did not start or was killed by a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** Set when the program could not be started: "cannot start: ENOENT". */
  spawnError?: string;
  /** The errno code behind spawnError (ENOENT, EACCES, ...). */
  spawnErrno?: string;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface GroupRunOptions {
  /** Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Kill the child (its whole group, when it has its own) after this long. Default: no limit. */
  timeoutMs?: number;
  /**
   * A string is written to the child's stdin, then closed; a number is a file descriptor handed to the
   * child as it is (nft needs a real file, see src/adapters/nft.ts); without it stdin is /dev/null.
   */
  stdin?: string | number;
  /** Bytes of stdout and of stderr kept (the last ones). */
  tailBytes: number;
  /**
   * Default true. false keeps the child in our process group, so a Ctrl-C on the terminal reaches it too;
   * for programs that leave no children behind (nft).
   */
  ownGroup?: boolean;
  /**
   * Wait for the output pipes to close however long that takes after the exit, for programs that leave no
   * children behind and whose whole output matters (nft's listings run to megabytes). Default: give them
   * PIPE_GRACE_MS, since a backgrounded grandchild may hold them open.
   */
  waitForOutput?: boolean;
}

/** Keeps the last `max` bytes written to it. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  private dropped = false;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
    while (this.size - this.chunks[0]!.length >= this.max) {
      this.size -= this.chunks.shift()!.length;
      this.dropped = true;
    }
  }
  text(): string {
    let buf = Buffer.concat(this.chunks);
    if (buf.length > this.max) {
      buf = buf.subarray(buf.length - this.max);
      this.dropped = true;
    }
    const s = buf.toString('utf8');
    return this.dropped ? `...${s}` : s;
  }
}

export function runInGroup(file: string, args: readonly string[], o: GroupRunOptions): Promise<GroupRun> {
  return new Promise<GroupRun>((resolve) => new ChildRun(o, resolve).start(file, args));
}

/** One run of runInGroup: the child, its timers, and what is known about its end. */
class ChildRun {
  private readonly t0 = performance.now();
  private readonly stdout: Tail;
  private readonly stderr: Tail;
  private readonly ownGroup: boolean;
  private child: ChildProcess | undefined;
  private timer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private done = false;
  private timedOut = false;
  private exitCode: number | null = null;
  private signal: NodeJS.Signals | null = null;
  private spawnError: string | undefined;
  private spawnErrno: string | undefined;

  constructor(
    private readonly o: GroupRunOptions,
    private readonly resolve: (r: GroupRun) => void,
  ) {
    this.stdout = new Tail(o.tailBytes);
    this.stderr = new Tail(o.tailBytes);
    this.ownGroup = o.ownGroup ?? true;
  }

  start(file: string, args: readonly string[]): void {
    const stdin = this.o.stdin === undefined ? 'ignore' : typeof this.o.stdin === 'number' ? this.o.stdin : 'pipe';
    try {
      this.child = spawn(file, [...args], {
        detached: this.ownGroup,
        stdio: [stdin, 'pipe', 'pipe'],
        env: this.o.env ?? process.env,
        windowsHide: true,
      });
    } catch (e) {
      this.spawnError = `cannot start: ${oneLine(e instanceof Error ? e.message : String(e))}`;
      return this.complete();
    }
    const child = this.child;
    this.listen(child);
    if (child.pid === undefined) return;
    if (typeof this.o.stdin === 'string') child.stdin?.end(this.o.stdin);
    if (this.o.timeoutMs !== undefined) this.timer = setTimeout(() => this.kill(child.pid!), this.o.timeoutMs);
  }

  private listen(child: ChildProcess): void {
    const pid = child.pid;
    child.stdout?.on('data', (b: Buffer) => this.stdout.push(b));
    child.stderr?.on('data', (b: Buffer) => this.stderr.push(b));
    child.stdout?.on('error', () => {});
    child.stderr?.on('error', () => {});
    // a command that does not read its stdin (or dies) makes writes fail with EPIPE: not a failure to report
    child.stdin?.on('error', () => {});
    child.on('error', (e: NodeJS.ErrnoException) => {
      this.spawnError = `cannot start: ${oneLine(e.code ?? e.message)}`;
      this.spawnErrno = e.code;
      // a child that never started emits no exit; one that did will still emit exit/close
      if (pid === undefined) this.complete();
    });
    child.on('exit', (code, sig) => {
      this.exitCode = code;
      this.signal = sig;
      if (!this.done && !this.graceTimer && !this.o.waitForOutput) this.graceTimer = setTimeout(() => this.complete(), PIPE_GRACE_MS);
    });
    child.on('close', (code, sig) => {
      if (pid !== undefined) {
        this.exitCode = code;
        this.signal = sig;
      }
      this.complete();
    });
  }

  private kill(pid: number): void {
    if (this.done) return;
    this.timedOut = true;
    if (!(this.ownGroup && killGroup(pid))) {
      try {
        this.child?.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
    this.graceTimer ??= setTimeout(() => this.complete(), KILL_GRACE_MS);
  }

  private complete(): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.child?.stdin?.destroy();
    this.child?.stdout?.destroy();
    this.child?.stderr?.destroy();
    this.resolve({
      exitCode: this.exitCode,
      signal: this.signal,
      timedOut: this.timedOut,
      ...(this.spawnError !== undefined ? { spawnError: this.spawnError } : {}),
      ...(this.spawnErrno !== undefined ? { spawnErrno: this.spawnErrno } : {}),
      stdout: this.stdout.text(),
      stderr: this.stderr.text(),
      durationMs: Math.round(performance.now() - this.t0),
    });
  }
}

function killGroup(pid: number): boolean {
  try {
    process.kill(-pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}
