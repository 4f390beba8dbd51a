/**
 * Runs one child process in its own process group, for hooks and notification
 * commands: never throws, never blocks the event loop, kills the whole group
 * with SIGKILL at the timeout (so `sh -c 'sleep 30 & sleep 30'` leaves nothing
 * behind), and keeps only the tail of the child's output.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { oneLine } from '../core/text.js';

export { oneLine };

/** After the main process exits, how long to wait for its pipes (a backgrounded child may hold them). */
const PIPE_GRACE_MS = 200;
/** After SIGKILL, how long to wait for the exit event before reporting anyway. */
const KILL_GRACE_MS = 2000;

export interface GroupRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** Set when the program could not be started (ENOENT, ...). */
  spawnError?: string;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface GroupRunOptions {
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  /** Written to the child's stdin, then closed; without it stdin is /dev/null. */
  stdin?: string;
  /** Bytes of stdout and of stderr kept. */
  tailBytes: number;
}


/** Keeps the last `max` bytes written to it. */
export class Tail {
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
  const t0 = performance.now();
  return new Promise<GroupRun>((resolve) => {
    const stdout = new Tail(o.tailBytes);
    const stderr = new Tail(o.tailBytes);
    let timedOut = false;
    let done = false;
    let spawnError: string | undefined;
    let exitCode: number | null = null;
    let signal: NodeJS.Signals | null = null;
    let timer: NodeJS.Timeout | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    let child: ReturnType<typeof spawn> | undefined;

    const complete = (): void => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      if (graceTimer) clearTimeout(graceTimer);
      child?.stdin?.destroy();
      child?.stdout?.destroy();
      child?.stderr?.destroy();
      resolve({
        exitCode,
        signal,
        timedOut,
        ...(spawnError !== undefined ? { spawnError } : {}),
        stdout: stdout.text(),
        stderr: stderr.text(),
        durationMs: Math.round(performance.now() - t0),
      });
    };

    try {
      child = spawn(file, [...args], {
        detached: true,
        stdio: [o.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        env: o.env,
        windowsHide: true,
      });
    } catch (e) {
      spawnError = `cannot start: ${oneLine(e instanceof Error ? e.message : String(e))}`;
      complete();
      return;
    }
    const pid = child.pid;
    child.stdout?.on('data', (b: Buffer) => stdout.push(b));
    child.stderr?.on('data', (b: Buffer) => stderr.push(b));
    child.stdout?.on('error', () => {});
    child.stderr?.on('error', () => {});
    // a command that does not read its stdin (or dies) makes writes fail with EPIPE: not a failure to report
    child.stdin?.on('error', () => {});
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError = `cannot start: ${oneLine(e.code ?? e.message)}`;
      // a child that never started emits no exit; one that did will still emit exit/close
      if (pid === undefined) complete();
    });
    child.on('exit', (code, sig) => {
      exitCode = code;
      signal = sig;
      if (!done && !graceTimer) graceTimer = setTimeout(complete, PIPE_GRACE_MS);
    });
    child.on('close', (code, sig) => {
      if (pid !== undefined) {
        exitCode = code;
        signal = sig;
      }
      complete();
    });
    if (pid === undefined) return;
    if (o.stdin !== undefined) child.stdin?.end(o.stdin);
    timer = setTimeout(() => {
      if (done) return;
      timedOut = true;
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        try {
          child?.kill('SIGKILL');
        } catch {
          /* already gone */
        }
      }
      graceTimer ??= setTimeout(complete, KILL_GRACE_MS);
    }, o.timeoutMs);
  });
}
