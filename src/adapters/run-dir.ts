/** The runtime directory: the daemon's pid file and the watched-port report. */
import { existsSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { WatchSet } from '../core/watch.js';
import { SentryError } from '../errors.js';
import { makeDir, RUN_DIR_MODE, RUN_FILE_MODE, writeFileAtomic } from './file-modes.js';

/**
 * Who a process is, beyond its pid: a pid is reused once its process is gone,
 * but (boot, start time) names one process for good. Start time is field 22 of
 * /proc/PID/stat, in clock ticks since boot.
 */
export interface ProcIdentity {
  pid: number;
  start: string;
  boot: string;
}

/** daemon.pid: the pid on the first line (for `cat` and `kill $(head -1 ...)`), the identity on the second. */
export function formatPidFile(id: ProcIdentity): string {
  return `${id.pid}\nstart=${id.start} boot=${id.boot}\n`;
}

/** What a pid file records; start/boot are missing in a file older sentry-xdp versions wrote. */
export function parsePidFile(text: string): { pid: number; start?: string; boot?: string } | undefined {
  const [first = '', second = ''] = text.split('\n');
  if (!/^\s*[1-9]\d*\s*$/.test(first)) return undefined;
  const pid = Number(first.trim());
  const start = /(?:^|\s)start=(\d+)(?:\s|$)/.exec(second)?.[1];
  const boot = /(?:^|\s)boot=([\w-]+)(?:\s|$)/.exec(second)?.[1];
  return { pid, ...(start ? { start } : {}), ...(boot ? { boot } : {}) };
}

/** State (R, S, Z, ...) and start time from /proc/PID/stat; the command name may hold spaces and parentheses. */
export function parseProcStat(text: string): { state: string; start: string } | undefined {
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = rest[0];
  const start = rest[19]; // field 22; `rest` starts at field 3
  return state && start && /^\d+$/.test(start) ? { state, start } : undefined;
}

/** A sentry-xdp daemon's argv: `node .../sentry-xdp attach ...` or `node .../dist/src/cli/main.js attach ...`. */
export function looksLikeDaemon(argv: readonly string[]): boolean {
  const cli = argv.findIndex((a) => basename(a) === 'sentry-xdp' || a.endsWith('/cli/main.js'));
  return cli >= 0 && argv.slice(cli + 1).includes('attach');
}

/**
 * Whether the process now at the recorded pid is the one that wrote the pid
 * file. With an identity recorded it must match; a file without one (older
 * versions) is trusted only when the process is a sentry-xdp daemon.
 */
export function isRecordedProcess(
  rec: { start?: string | undefined; boot?: string | undefined },
  live: { start: string; boot: string; argv: readonly string[] },
): boolean {
  if (rec.start !== undefined) return rec.start === live.start && (rec.boot === undefined || rec.boot === live.boot);
  return looksLikeDaemon(live.argv);
}

const bootId = (): string => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

/** The live process at pid (not a zombie), or undefined. */
function liveProcess(pid: number): { start: string; boot: string; argv: string[] } | undefined {
  try {
    const st = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    if (!st || st.state === 'Z' || st.state === 'X') return undefined;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    return { start: st.start, boot: bootId(), argv };
  } catch {
    return undefined; // gone
  }
}

/** This process's identity, as its pid file records it. */
export function selfIdentity(): ProcIdentity {
  const live = liveProcess(process.pid);
  if (!live) throw new Error(`cannot read /proc/${process.pid}/stat`);
  return { pid: process.pid, start: live.start, boot: live.boot };
}

export class RunDir {
  constructor(readonly dir: string) {}

  get pidFile(): string {
    return join(this.dir, 'daemon.pid');
  }

  private ensure(): void {
    makeDir(this.dir, RUN_DIR_MODE);
  }

  private write(name: string, text: string): void {
    this.ensure();
    writeFileAtomic(join(this.dir, name), text, { mode: RUN_FILE_MODE });
  }

  /** What the pid file says, whether or not that process still runs. */
  private recorded(): ReturnType<typeof parsePidFile> {
    try {
      return parsePidFile(readFileSync(this.pidFile, 'utf8'));
    } catch {
      return undefined;
    }
  }

  /** The pid of a live daemon, if one runs: the pid file's process, checked by identity (a reused pid is not it). */
  daemonPid(): number | undefined {
    const rec = this.recorded();
    if (!rec) return undefined;
    const live = liveProcess(rec.pid);
    return live && isRecordedProcess(rec, live) ? rec.pid : undefined;
  }

  /** Why the pid file names no daemon, when it names a pid at all (for error messages). */
  stalePidNote(): string | undefined {
    const rec = this.recorded();
    if (!rec || this.daemonPid()) return undefined;
    const why = liveProcess(rec.pid) ? 'a process that is not the sentry-xdp daemon that wrote it' : 'a process that has exited';
    return `the pid file ${this.pidFile} is stale: pid ${rec.pid} is ${why}`;
  }

  claimDaemon(): void {
    const other = this.daemonPid();
    if (other && other !== process.pid) {
      throw new SentryError(
        'DAEMON_RUNNING',
        `a sentry-xdp daemon already runs (pid ${other})`,
        'add interfaces with `sentry-xdp attach IFACE --no-daemon`; the running daemon serves them all',
      );
    }
    this.write('daemon.pid', formatPidFile(selfIdentity()));
  }

  releaseDaemon(): void {
    if (this.daemonPid() === process.pid) {
      rmSync(this.pidFile, { force: true });
      rmSync(join(this.dir, 'daemon.json'), { force: true });
      rmSync(join(this.dir, 'config.json'), { force: true });
    }
    if (!existsSync(join(this.dir, 'watch.json'))) this.clear(); // `detach --all` ran meanwhile
  }

  /** The config the daemon runs with: an absolute path, or null for the built-in defaults. */
  writeDaemonConfig(path: string | null): void {
    this.write('config.json', `${JSON.stringify({ pid: process.pid, path })}\n`);
  }

  /** The running daemon's config (its pid and path), if a live daemon recorded one. */
  daemonConfig(): { pid: number; path: string | null } | undefined {
    const pid = this.daemonPid();
    if (!pid) return undefined;
    try {
      const c = JSON.parse(readFileSync(join(this.dir, 'config.json'), 'utf8')) as { pid: number; path: string | null };
      return c.pid === pid ? c : undefined;
    } catch {
      return undefined;
    }
  }

  writeWatch(w: WatchSet): void {
    this.write('watch.json', `${JSON.stringify(w)}\n`);
  }

  readWatch(): WatchSet | undefined {
    try {
      return JSON.parse(readFileSync(join(this.dir, 'watch.json'), 'utf8')) as WatchSet;
    } catch {
      return undefined;
    }
  }

  writeDaemonStats(stats: object): void {
    this.write('daemon.json', `${JSON.stringify({ pid: process.pid, time: new Date().toISOString(), ...stats })}\n`);
  }

  readDaemonStats(): Record<string, unknown> | undefined {
    try {
      return JSON.parse(readFileSync(join(this.dir, 'daemon.json'), 'utf8')) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  }

  /** Removes what we put there (after `detach --all`). */
  clear(): void {
    rmSync(join(this.dir, 'watch.json'), { force: true });
    rmSync(join(this.dir, 'daemon.json'), { force: true });
    if (!this.daemonPid()) {
      rmSync(this.pidFile, { force: true });
      rmSync(join(this.dir, 'config.json'), { force: true });
    }
    try {
      rmdirSync(this.dir);
    } catch {
      /* not empty or not ours to remove */
    }
  }
}
