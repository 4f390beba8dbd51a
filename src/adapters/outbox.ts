/**
 * The Redis outbox: history records that could not reach Redis, in a file of
 * JSON lines under the state directory, in the order they were made. Every
 * writer (the daemon, each CLI command) appends to the same file while Redis
 * is away; whoever reaches Redis first sends it, in order, and takes out what
 * Redis took. Without it a `ban` typed during an outage would exist only in
 * the kernel, and be gone after a reboot.
 *
 * Processes share the file: a short lock (a symlink naming its holder's pid,
 * made atomically and needing no free block on a full disk) covers each
 * append and each take-out, and a second one the whole of a replay, so that
 * two processes never send the same records. A lock whose holder died is taken
 * over.
 */
import { closeSync, mkdirSync, openSync, readlinkSync, readSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { check, encodeRecord, HistoryEventSchema, type HistoryEvent, type Rejects } from '../core/records.js';
import { appendLines, PartialWrite } from './journal.js';

export class Outbox {
  readonly file: string;
  private readonly lock: string;
  private readonly sendLock: string;

  constructor(dir: string) {
    this.file = join(dir, 'redis-outbox.jsonl');
    this.lock = `${this.file}.lock`;
    this.sendLock = `${this.file}.send`;
  }

  /** Bytes waiting (0: empty). */
  size(): number {
    try {
      return statSync(this.file).size;
    } catch {
      return 0;
    }
  }

  /** Appends records, whole lines; throws PartialWrite with how many are in. */
  append(events: readonly HistoryEvent[]): void {
    if (!events.length) return;
    const lines = events.map((e) => encodeRecord(HistoryEventSchema, e));
    try {
      mkdirSync(dirname(this.file), { recursive: true, mode: 0o750 });
      withLock(this.lock, () => appendLines(this.file, lines));
    } catch (e) {
      throw e instanceof PartialWrite ? e : new PartialWrite(this.file, 0, events.length, (e as NodeJS.ErrnoException).code ?? (e as Error).message);
    }
  }

  /**
   * The first records waiting (up to about `maxBytes` of them), checked, and
   * the bytes they take; a bad line is skipped and reported with its number.
   */
  peek(maxBytes: number, rejects: Rejects): { events: HistoryEvent[]; bytes: number } {
    let fd: number;
    try {
      fd = openSync(this.file, 'r');
    } catch {
      return { events: [], bytes: 0 };
    }
    try {
      const buf = Buffer.alloc(maxBytes);
      const n = readSync(fd, buf, 0, maxBytes, 0);
      let end = buf.subarray(0, n).lastIndexOf(0x0a) + 1;
      if (!end && n === maxBytes) end = n; // one line longer than maxBytes: no record is that long, drop it
      const events: HistoryEvent[] = [];
      buf
        .toString('utf8', 0, end)
        .split('\n')
        .forEach((line, i) => {
          if (!line.trim()) return;
          const c = check(HistoryEventSchema, line);
          if (c.ok) events.push(c.value);
          else rejects.add(`${this.file}:${i + 1}`, c.why);
        });
      return { events, bytes: end };
    } finally {
      closeSync(fd);
    }
  }

  /** Takes the first `bytes` out: Redis has them. */
  drop(bytes: number): void {
    withLock(this.lock, () => {
      const rest = readFileSync(this.file).subarray(bytes);
      if (!rest.length) return rmSync(this.file, { force: true });
      const tmp = `${this.file}.tmp`;
      writeFileSync(tmp, rest, { mode: 0o640 });
      renameSync(tmp, this.file);
    });
  }

  /** Runs `send` as the only sender of this outbox; false (without running it) when another process is sending. */
  async sending(send: () => Promise<void>): Promise<boolean> {
    if (!tryLock(this.sendLock)) return false;
    try {
      await send();
      return true;
    } finally {
      rmSync(this.sendLock, { force: true });
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes a lock (a symlink to our pid) unless a live process holds it. */
function tryLock(path: string): boolean {
  for (let i = 0; i < 3; i++) {
    try {
      symlinkSync(String(process.pid), path);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder = 0;
    try {
      holder = Number(readlinkSync(path));
    } catch {
      continue; // released meanwhile
    }
    if (holder && holder !== process.pid && alive(holder)) return false;
    rmSync(path, { force: true }); // its holder died
  }
  return false;
}

/** Runs fn under the short lock, waiting up to 3 s for it. */
function withLock<T>(path: string, fn: () => T): T {
  const deadline = Date.now() + 3000;
  while (!tryLock(path)) {
    if (Date.now() > deadline) throw new Error(`${path}: held by another process for more than 3 s`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
  }
  try {
    return fn();
  } finally {
    rmSync(path, { force: true });
  }
}
