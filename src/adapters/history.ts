/**
 * History: every alert, ban and unban, behind one interface with two stores.
 * The daemon records without waiting (never on the alert path); a store that
 * is down buffers a bounded number of events and counts what it had to drop.
 */
import { closeSync, createReadStream, existsSync, openSync, readSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { createInterface } from 'node:readline';
import { SentryError } from '../errors.js';
import { appendLines, BanJournal, PartialWrite, type BanRecord, type JournalRecord } from './journal.js';
import type { PackedBans } from '../core/ban-pack.js';
import {
  AlertRecordSchema,
  check,
  encodeRecord,
  HistoryEventSchema,
  JournalRecordSchema,
  Rejects,
  type AlertRecord,
  type HistoryEvent,
} from '../core/records.js';

export type { HistoryEvent } from '../core/records.js';

export interface HistoryHealth {
  kind: 'journal' | 'redis';
  healthy: boolean;
  buffered: number;
  lost: number;
  error?: string;
}

export interface HistoryQuery {
  source?: string;
  since?: number; // wall ms
  limit?: number;
}

export interface HistoryStore {
  readonly kind: 'journal' | 'redis';
  /** Queues events; never throws, never waits. */
  record(events: readonly HistoryEvent[]): void;
  /** Events in time order, oldest first. */
  query(q: HistoryQuery): Promise<HistoryEvent[]>;
  /** The latest ban of every target not unbanned since, for restore. */
  liveBans(now: number): Promise<BanRecord[]>;
  /**
   * The ban history in order, in chunks, for a fast restore into an empty
   * table: replaying it (a later record of a target wins) gives liveBans().
   * A chunk is records, or plain IPv4 bans packed (src/core/ban-pack.ts).
   */
  streamBans(): AsyncIterable<JournalRecord[] | PackedBans>;
  /** Housekeeping on the daemon's timer; a line worth reporting, or undefined. */
  maintain?(): Promise<string | undefined>;
  health(): HistoryHealth;
  /**
   * Writes what is buffered (within a few seconds, whatever the store does) and
   * closes. Throws SentryError IO, saying what was stored, when records could
   * not be stored durably anywhere (a full disk).
   */
  close(): Promise<void>;
}

export function eventSource(e: HistoryEvent): string {
  return e.op === 'alert' ? e.source : e.target;
}

/** What a run could not store durably, as the CLI's one line. */
export function storeFailure(f: { file: string; stored: number; tried: number; bans: boolean; errno: string | undefined }): SentryError {
  const why = f.errno === 'ENOSPC' ? 'the disk is full' : f.errno === 'EDQUOT' ? 'the disk quota is exceeded' : `cannot write (${f.errno ?? 'error'})`;
  return new SentryError(
    'IO',
    `stored ${f.stored} of ${f.tried} ${f.bans ? 'bans' : 'records'} in ${f.file}; ${why}`,
    'those in force stay in the kernel, but what was not stored does not come back after a reboot: free space and run it again',
  );
}

/** Counts what a store was asked to keep and what it kept, for the failure line above. */
class WriteTally {
  tried = 0;
  stored = 0;
  bans = true;
  failed: { file: string; errno: string | undefined } | undefined;

  add(events: readonly HistoryEvent[], stored: number, failure?: PartialWrite): void {
    this.tried += events.length;
    this.stored += stored;
    if (events.some((e) => e.op !== 'ban')) this.bans = false;
    if (failure) this.failed = { file: failure.file, errno: failure.errno };
  }

  /** Throws the failure line, if any write failed. */
  check(): void {
    if (this.failed) throw storeFailure({ ...this.failed, stored: this.stored, tried: this.tried, bans: this.bans });
  }
}

/**
 * The embedded default: bans and unbans in bans.jsonl (the ban journal, compacted),
 * alerts in alerts.jsonl, rotated to alerts.jsonl.1 past `maxBytes`.
 */
export class JournalStore implements HistoryStore {
  readonly kind = 'journal' as const;
  readonly bans: BanJournal;
  private readonly alerts: string;
  private lost = 0;
  private error: string | undefined;
  private readonly tally = new WriteTally();
  /** Corrupt or impossible lines met when reading, by file and line number (the first few, then a count). */
  readonly problems: string[] = [];

  constructor(
    readonly dir: string,
    private readonly maxBytes = 64 << 20,
  ) {
    this.bans = new BanJournal(dir);
    this.alerts = join(dir, 'alerts.jsonl');
  }

  record(events: readonly HistoryEvent[]): void {
    const alerts = events.filter((e): e is AlertRecord => e.op === 'alert');
    const bans = events.filter((e): e is JournalRecord => e.op !== 'alert');
    let stored = 0;
    try {
      this.bans.append(bans);
      stored = bans.length;
      if (alerts.length) {
        if (existsSync(this.alerts) && statSync(this.alerts).size > this.maxBytes) renameSync(this.alerts, `${this.alerts}.1`);
        appendLines(
          this.alerts,
          alerts.map((a) => encodeRecord(AlertRecordSchema, a)),
        );
      }
      stored = events.length;
      this.error = undefined;
      this.tally.add(events, stored);
    } catch (e) {
      if (e instanceof PartialWrite) stored += e.stored;
      this.lost += events.length - stored;
      this.error = (e as Error).message.split('\n')[0];
      this.tally.add(
        events,
        stored,
        e instanceof PartialWrite ? e : new PartialWrite(this.bans.file, stored, events.length, (e as NodeJS.ErrnoException).code),
      );
    }
  }

  /** The first bad lines of one read, then how many in all. */
  private report(rejects: Rejects, file: string): void {
    this.problems.push(...rejects.drain(file));
  }

  private async readLines(file: string, into: HistoryEvent[], keep: (e: HistoryEvent) => boolean): Promise<void> {
    if (!existsSync(file)) return;
    const rl = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    const rejects = new Rejects();
    let n = 0;
    for await (const line of rl) {
      n++;
      if (!line.trim()) continue;
      const c = check(HistoryEventSchema, line);
      if (!c.ok) rejects.add(`${file}:${n}`, c.why);
      else if (keep(c.value)) into.push(c.value);
    }
    this.report(rejects, file);
  }

  async query(q: HistoryQuery): Promise<HistoryEvent[]> {
    const keep = (e: HistoryEvent) => (q.since === undefined || e.time >= q.since) && (q.source === undefined || eventSource(e) === q.source);
    const out: HistoryEvent[] = [];
    for (const f of [`${this.alerts}.1`, this.alerts, this.bans.file]) await this.readLines(f, out, keep);
    out.sort((a, b) => a.time - b.time);
    return q.limit ? out.slice(-q.limit) : out;
  }

  async liveBans(now: number): Promise<BanRecord[]> {
    const r = this.bans.replay();
    const rejects = new Rejects();
    for (const e of r.errors) rejects.add(`${this.bans.file}:${e.line}`, e.message);
    this.report(rejects, this.bans.file);
    return [...r.bans.values()].filter((b) => b.expires === null || b.expires > now);
  }

  /**
   * bans.snap (packed, written by the last compaction) if it still fits, then
   * the lines after it. A chunk of it that fails its checksum is replaced by
   * the lines of bans.jsonl it stood for.
   */
  async *streamBans(): AsyncIterable<JournalRecord[] | PackedBans> {
    let snap: ReturnType<BanJournal['readSnapshot']>;
    try {
      snap = this.bans.readSnapshot();
    } catch (e) {
      this.problems.push(`${this.bans.snapFile}: not used, ${(e as Error).message}; reading ${this.bans.file} whole`);
    }
    const rejects = new Rejects();
    for (const [i, chunk] of (snap?.chunks ?? []).entries()) {
      if ('ok' in chunk) {
        yield chunk.ok.v4;
        if (chunk.ok.others.length) yield chunk.ok.others;
        continue;
      }
      this.problems.push(`${this.bans.snapFile}: chunk ${i + 1} not used (${chunk.bad}); reading lines ${chunk.line + 1}-… of ${this.bans.file} for it`);
      yield* this.readJournal(chunk.from, chunk.to, chunk.line, rejects);
    }
    yield* this.readJournal(snap?.covered ?? 0, Infinity, snap?.lines ?? 0, rejects);
    this.report(rejects, this.bans.file);
  }

  /** The records of bans.jsonl from byte `from` (line `lineNo` + 1) to byte `to`, in chunks of 8 MB. */
  private *readJournal(from: number, to: number, lineNo: number, rejects: Rejects): Generator<JournalRecord[]> {
    if (!existsSync(this.bans.file)) return;
    const fd = openSync(this.bans.file, 'r');
    try {
      const buf = Buffer.alloc(8 << 20);
      let rest = '';
      let pos = from;
      const utf8 = new StringDecoder('utf8'); // a character cut by the 8 MB boundary stays whole
      for (;;) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, to - pos), pos);
        pos += n;
        const text = rest + (n ? utf8.write(buf.subarray(0, n)) : utf8.end());
        const cut = n ? text.lastIndexOf('\n') + 1 : text.length;
        rest = text.slice(cut);
        const out: JournalRecord[] = [];
        for (const line of text.slice(0, cut).split('\n')) {
          lineNo++;
          if (!line.trim()) continue;
          const c = check(JournalRecordSchema, line);
          if (c.ok) out.push(c.value);
          else rejects.add(`${this.bans.file}:${lineNo}`, c.why);
        }
        lineNo--; // the piece after the last newline is counted with the next chunk
        if (out.length) yield out;
        if (!n) break;
      }
    } finally {
      closeSync(fd);
    }
  }

  health(): HistoryHealth {
    return { kind: 'journal', healthy: !this.error, buffered: 0, lost: this.lost, ...(this.error ? { error: this.error } : {}) };
  }

  async close(): Promise<void> {
    this.tally.check();
  }
}
