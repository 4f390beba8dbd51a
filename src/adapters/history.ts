/**
 * History: every alert, ban and unban, behind one interface with two stores.
 * The daemon records without waiting (never on the alert path); a store that
 * is down buffers a bounded number of events and counts what it had to drop.
 */
import { appendFileSync, closeSync, createReadStream, existsSync, mkdirSync, openSync, readSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { createInterface } from 'node:readline';
import { BanJournal, type BanRecord, type JournalRecord } from './journal.js';
import type { PackedBans } from '../core/ban-pack.js';

export interface AlertRecord {
  op: 'alert';
  time: number; // wall ms
  source: string;
  destination?: string; // the address probed (absent in records older than the gateway model)
  proto: 'tcp' | 'udp' | 'icmp' | 'ip';
  port: number;
  kind: string; // syn, fin, null, xmas, unknown, udp
  flags?: string;
  iface: string;
  gateway: string;
}

export type HistoryEvent = AlertRecord | JournalRecord;

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
  /** Writes what is buffered (best effort) and closes. */
  close(): Promise<void>;
}

export function eventSource(e: HistoryEvent): string {
  return e.op === 'alert' ? e.source : e.target;
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
  /** Corrupt lines met when reading, by file and line number. */
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
    try {
      this.bans.append(bans);
      if (alerts.length) {
        mkdirSync(this.dir, { recursive: true, mode: 0o750 });
        if (existsSync(this.alerts) && statSync(this.alerts).size > this.maxBytes) renameSync(this.alerts, `${this.alerts}.1`);
        appendFileSync(this.alerts, alerts.map((a) => JSON.stringify(a)).join('\n') + '\n');
      }
      this.error = undefined;
    } catch (e) {
      this.lost += events.length;
      this.error = (e as Error).message.split('\n')[0];
    }
  }

  private async readLines(file: string, into: HistoryEvent[], keep: (e: HistoryEvent) => boolean): Promise<void> {
    if (!existsSync(file)) return;
    const rl = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    let n = 0;
    for await (const line of rl) {
      n++;
      if (!line.trim()) continue;
      try {
        const e = JSON.parse(line) as HistoryEvent;
        if (keep(e)) into.push(e);
      } catch {
        this.problems.push(`${file}:${n}: not valid JSON (truncated or corrupt); skipped`);
      }
    }
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
    for (const e of r.errors) this.problems.push(`${this.bans.file}:${e.line}: ${e.message}; skipped`);
    return [...r.bans.values()].filter((b) => b.expires === null || b.expires > now);
  }

  /** bans.snap (packed, written by the last compaction) if it still fits, then the lines after it. */
  async *streamBans(): AsyncIterable<JournalRecord[] | PackedBans> {
    let snap: ReturnType<BanJournal['readSnapshot']>;
    try {
      snap = this.bans.readSnapshot();
    } catch (e) {
      this.problems.push(`${this.bans.snapFile}: not used, ${(e as Error).message}; reading ${this.bans.file} whole`);
    }
    for (const chunk of snap?.chunks ?? []) {
      yield chunk.v4;
      if (chunk.others.length) yield chunk.others;
    }
    if (!existsSync(this.bans.file)) return;
    const fd = openSync(this.bans.file, 'r');
    try {
      const buf = Buffer.alloc(8 << 20);
      let rest = '';
      let lineNo = snap?.lines ?? 0;
      let pos = snap?.covered ?? 0;
      const utf8 = new StringDecoder('utf8'); // a character cut by the 8 MB boundary stays whole
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, pos);
        pos += n;
        const text = rest + (n ? utf8.write(buf.subarray(0, n)) : utf8.end());
        const cut = n ? text.lastIndexOf('\n') + 1 : text.length;
        rest = text.slice(cut);
        const out: JournalRecord[] = [];
        for (const line of text.slice(0, cut).split('\n')) {
          lineNo++;
          if (!line.trim()) continue;
          try {
            out.push(JSON.parse(line) as JournalRecord);
          } catch {
            this.problems.push(`${this.bans.file}:${lineNo}: not valid JSON (truncated or corrupt); skipped`);
          }
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

  async close(): Promise<void> {}
}
