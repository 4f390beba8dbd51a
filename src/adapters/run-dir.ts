/** The runtime directory: the daemon's pid file and the watched-port report. */
import { existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WatchSet } from '../core/watch.js';
import { SentryError } from '../errors.js';

export class RunDir {
  constructor(readonly dir: string) {}

  private ensure(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
  }

  /** The pid of a live daemon, if one runs. */
  daemonPid(): number | undefined {
    try {
      const pid = Number(readFileSync(join(this.dir, 'daemon.pid'), 'utf8').trim());
      if (!pid) return undefined;
      process.kill(pid, 0);
      return pid;
    } catch {
      return undefined;
    }
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
    this.ensure();
    writeFileSync(join(this.dir, 'daemon.pid'), `${process.pid}\n`);
  }

  releaseDaemon(): void {
    if (this.daemonPid() === process.pid) {
      rmSync(join(this.dir, 'daemon.pid'), { force: true });
      rmSync(join(this.dir, 'daemon.json'), { force: true });
      rmSync(join(this.dir, 'config.json'), { force: true });
    }
    if (!existsSync(join(this.dir, 'watch.json'))) this.clear(); // `detach --all` ran meanwhile
  }

  /** The config the daemon runs with: an absolute path, or null for the built-in defaults. */
  writeDaemonConfig(path: string | null): void {
    this.ensure();
    writeFileSync(join(this.dir, 'config.json'), `${JSON.stringify({ pid: process.pid, path })}\n`);
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
    this.ensure();
    writeFileSync(join(this.dir, 'watch.json'), `${JSON.stringify(w)}\n`);
  }

  readWatch(): WatchSet | undefined {
    try {
      return JSON.parse(readFileSync(join(this.dir, 'watch.json'), 'utf8')) as WatchSet;
    } catch {
      return undefined;
    }
  }

  writeDaemonStats(stats: object): void {
    this.ensure();
    const tmp = join(this.dir, 'daemon.json.tmp');
    writeFileSync(tmp, `${JSON.stringify({ pid: process.pid, time: new Date().toISOString(), ...stats })}\n`);
    renameSync(tmp, join(this.dir, 'daemon.json'));
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
      rmSync(join(this.dir, 'daemon.pid'), { force: true });
      rmSync(join(this.dir, 'config.json'), { force: true });
    }
    try {
      rmdirSync(this.dir);
    } catch {
      /* not empty or not ours to remove */
    }
  }
}
