import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { describeHook, planHook, type HookPlan, type HookTokens } from '../core/hook-command.js';

/**
 * Runs hook commands (KILL_ROUTE, KILL_RUN_CMD, unban hooks) as child processes.
 *
 * - `run` never throws and never blocks the event loop: children are spawned asynchronously, at most
 *   `maxConcurrent` at a time, with at most `maxQueued` waiting; beyond that a hook is dropped and counted.
 * - Each child gets its own process group (`detached: true`); when `timeoutMs` passes the whole group is
 *   killed with SIGKILL, so `sh -c 'sleep 30 & sleep 30'` leaves nothing behind.
 * - Argv plans run the program directly (no shell); shell plans run `/bin/sh -c script`, with tokens that
 *   src/core/hook-command.ts has validated and quoted.
 * - Children that a hook deliberately leaves running after it exits (`cmd &`) are not waited for or killed.
 *
 * Every result ends in exactly one of: ok, failed (planning error, spawn error, non-zero exit, signal),
 * timedOut, dropped.
 */

export interface HookResult {
  name: string;
  /** describeHook(plan), or the raw template when planning failed. */
  plan: string;
  ok: boolean;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  durationMs: number;
  /** The last few KB of the child's stderr / stdout (UTF-8, invalid bytes replaced). */
  stderrTail: string;
  stdoutTail: string;
  /** Why it did not run or did not succeed, in one line, when there is more to say than the exit code. */
  error?: string;
}

export interface HookRunnerOptions {
  /** Kill the hook's process group after this long. Default 10000. */
  timeoutMs?: number;
  /** Hooks running at once. Default 8. */
  maxConcurrent?: number;
  /** Hooks waiting for a slot; beyond that a hook is dropped and counted. Default 1000. */
  maxQueued?: number;
  /** Environment of the children. Default process.env. SENTRY_HOOK/TARGET/PORT/MODE are added. */
  env?: NodeJS.ProcessEnv;
  /** Called with every result (exceptions it throws are ignored). */
  onResult?: (r: HookResult) => void;
}

export interface HookStats {
  started: number;
  ok: number;
  failed: number;
  timedOut: number;
  dropped: number;
}

/** Bytes of stdout and of stderr kept per hook. */
const TAIL_BYTES = 4096;
/** After the hook's main process exits, how long to wait for its pipes to close (a backgrounded child may hold them). */
const PIPE_GRACE_MS = 200;
/** After SIGKILL, how long to wait for the exit event before reporting anyway. */
const KILL_GRACE_MS = 2000;

interface Job {
  name: string;
  plan: HookPlan;
  tokens: HookTokens;
  resolve: (r: HookResult) => void;
}

export class HookRunner {
  private readonly timeoutMs: number;
  private readonly maxConcurrent: number;
  private readonly maxQueued: number;
  private readonly env: NodeJS.ProcessEnv | undefined;
  private readonly onResult: ((r: HookResult) => void) | undefined;
  private readonly queue: Job[] = [];
  private running = 0;
  private readonly counters: HookStats = { started: 0, ok: 0, failed: 0, timedOut: 0, dropped: 0 };
  private idleWaiters: (() => void)[] = [];

  constructor(options: HookRunnerOptions = {}) {
    this.timeoutMs = positive(options.timeoutMs, 10_000);
    this.maxConcurrent = positive(options.maxConcurrent, 8);
    this.maxQueued = options.maxQueued !== undefined && Number.isInteger(options.maxQueued) && options.maxQueued >= 0 ? options.maxQueued : 1000;
    this.env = options.env;
    this.onResult = options.onResult;
  }

  /** Plans and runs one hook. Never throws; the promise resolves when the hook has finished (or was refused). */
  run(name: string, template: string, tokens: HookTokens): Promise<HookResult> {
    let plan: HookPlan;
    try {
      plan = planHook(template, tokens);
    } catch (e) {
      return Promise.resolve(
        this.finish({
          ...blank(name, oneLine(String(template))),
          error: oneLine(e instanceof Error ? e.message : String(e)),
        }, 'failed'),
      );
    }
    if (this.running >= this.maxConcurrent && this.queue.length >= this.maxQueued) {
      return Promise.resolve(
        this.finish({ ...blank(name, describeHook(plan)), error: `dropped: ${this.queue.length} hooks already waiting` }, 'dropped'),
      );
    }
    return new Promise<HookResult>((resolve) => {
      this.queue.push({ name, plan, tokens, resolve });
      this.pump();
    });
  }

  stats(): HookStats {
    return { ...this.counters };
  }

  /** Resolves when no hook is running or waiting. */
  idle(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.running < this.maxConcurrent && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running++;
      this.counters.started++;
      void this.execute(job).then((r) => {
        this.running--;
        job.resolve(r);
        this.pump();
        if (this.running === 0 && this.queue.length === 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const w of waiters) w();
        }
      });
    }
  }

  private execute(job: Job): Promise<HookResult> {
    const description = describeHook(job.plan);
    const file: string = job.plan.kind === 'shell' ? '/bin/sh' : job.plan.argv[0]!;
    const args: string[] = job.plan.kind === 'shell' ? ['-c', job.plan.script] : job.plan.argv.slice(1);
    const env = {
      ...(this.env ?? process.env),
      SENTRY_HOOK: job.name,
      SENTRY_TARGET: job.tokens.target,
      SENTRY_PORT: String(job.tokens.port),
      SENTRY_MODE: job.tokens.mode,
    };
    const t0 = performance.now();

    return new Promise<HookResult>((resolve) => {
      const stdout = new Tail(TAIL_BYTES);
      const stderr = new Tail(TAIL_BYTES);
      let timedOut = false;
      let done = false;
      let spawnError: string | undefined;
      let exitCode: number | null = null;
      let signal: NodeJS.Signals | null = null;
      let timer: NodeJS.Timeout | undefined;
      let graceTimer: NodeJS.Timeout | undefined;

      const complete = (): void => {
        if (done) return;
        done = true;
        if (timer) clearTimeout(timer);
        if (graceTimer) clearTimeout(graceTimer);
        child?.stdout?.destroy();
        child?.stderr?.destroy();
        const result: HookResult = {
          name: job.name,
          plan: description,
          ok: !timedOut && spawnError === undefined && exitCode === 0,
          exitCode,
          signal,
          timedOut,
          durationMs: Math.round(performance.now() - t0),
          stderrTail: stderr.text(),
          stdoutTail: stdout.text(),
        };
        if (timedOut) result.error = `timed out after ${this.timeoutMs} ms; process group killed`;
        else if (spawnError !== undefined) result.error = spawnError;
        else if (signal) result.error = `killed by ${signal}`;
        else if (exitCode !== 0) result.error = `exited with status ${exitCode}`;
        resolve(this.finish(result, result.ok ? 'ok' : timedOut ? 'timedOut' : 'failed'));
      };

      let child: ReturnType<typeof spawn> | undefined;
      try {
        child = spawn(file, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env, windowsHide: true });
      } catch (e) {
        spawnError = `cannot start ${file}: ${oneLine(e instanceof Error ? e.message : String(e))}`;
        complete();
        return;
      }
      const pid = child.pid;

      child.stdout?.on('data', (b: Buffer) => stdout.push(b));
      child.stderr?.on('data', (b: Buffer) => stderr.push(b));
      child.stdout?.on('error', () => {});
      child.stderr?.on('error', () => {});
      child.on('error', (e: NodeJS.ErrnoException) => {
        spawnError = `cannot start ${file}: ${oneLine(e.code ?? e.message)}`;
        // A child that never started emits no exit; one that did will still emit exit/close.
        if (pid === undefined) complete();
      });
      child.on('exit', (code, sig) => {
        exitCode = code;
        signal = sig;
        // Wait briefly for the pipes; something the hook left running in the background may hold them open.
        if (!done && !graceTimer) graceTimer = setTimeout(complete, PIPE_GRACE_MS);
      });
      child.on('close', (code, sig) => {
        if (pid !== undefined) {
          exitCode = code;
          signal = sig;
        }
        complete();
      });

      if (pid !== undefined) {
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
        }, this.timeoutMs);
      }
    });
  }

  private finish(r: HookResult, outcome: 'ok' | 'failed' | 'timedOut' | 'dropped'): HookResult {
    this.counters[outcome]++;
    if (this.onResult) {
      try {
        this.onResult(r);
      } catch {
        /* a reporting callback must not break hook accounting */
      }
    }
    return r;
  }
}

function blank(name: string, plan: string): HookResult {
  return { name, plan, ok: false, exitCode: null, signal: null, timedOut: false, durationMs: 0, stderrTail: '', stdoutTail: '' };
}

function positive(v: number | undefined, dflt: number): number {
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : dflt;
}

function oneLine(s: string): string {
  const t = s.replace(/[\r\n]+/g, ' ').trim();
  return t.length > 400 ? `${t.slice(0, 397)}...` : t;
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
