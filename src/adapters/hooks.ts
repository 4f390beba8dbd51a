import { oneLine, runInGroup } from './process-group.js';
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
        this.finish(
          {
            ...blank(name, oneLine(String(template))),
            error: oneLine(e instanceof Error ? e.message : String(e)),
          },
          'failed',
        ),
      );
    }
    if (this.running >= this.maxConcurrent && this.queue.length >= this.maxQueued) {
      return Promise.resolve(this.finish({ ...blank(name, describeHook(plan)), error: `dropped: ${this.queue.length} hooks already waiting` }, 'dropped'));
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

  private async execute(job: Job): Promise<HookResult> {
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
    const r = await runInGroup(file, args, { env, timeoutMs: this.timeoutMs, tailBytes: TAIL_BYTES });
    const result: HookResult = {
      name: job.name,
      plan: description,
      ok: !r.timedOut && r.spawnError === undefined && r.exitCode === 0,
      exitCode: r.exitCode,
      signal: r.signal,
      timedOut: r.timedOut,
      durationMs: r.durationMs,
      stderrTail: r.stderr,
      stdoutTail: r.stdout,
    };
    if (r.timedOut) result.error = `timed out after ${this.timeoutMs} ms; process group killed`;
    else if (r.spawnError !== undefined) result.error = r.spawnError.replace('cannot start', `cannot start ${file}`);
    else if (r.signal) result.error = `killed by ${r.signal}`;
    else if (r.exitCode !== 0) result.error = `exited with status ${r.exitCode}`;
    return this.finish(result, result.ok ? 'ok' : r.timedOut ? 'timedOut' : 'failed');
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
