/**
 * The local ban journal: an append-only file of JSON lines under the state
 * directory. It keeps what the kernel table cannot hold (reason, who, wall-clock
 * times) and lets `list` and a restart know them.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type Origin = 'auto' | 'manual' | 'imported' | 'fleet';

export interface BanRecord {
  op: 'ban';
  time: number; // wall ms
  target: string;
  ttl: number; // seconds, 0 = permanent
  expires: number | null; // wall ms
  origin: Origin;
  reason: string;
  by: string;
  port?: number;
  proto?: string;
  kind?: string;
  gateway?: string; // which gateway made it
}

export interface UnbanRecord {
  op: 'unban';
  time: number;
  target: string;
  why: string;
  by?: string;
  gateway?: string;
}

export type JournalRecord = BanRecord | UnbanRecord;

export interface ReplayResult {
  bans: Map<string, BanRecord>; // the latest ban of each target not unbanned since
  errors: Array<{ line: number; message: string }>;
  lines: number;
}

export class BanJournal {
  readonly file: string;

  constructor(readonly dir: string) {
    this.file = join(dir, 'bans.jsonl');
  }

  append(recs: readonly JournalRecord[]): void {
    if (!recs.length) return;
    mkdirSync(this.dir, { recursive: true, mode: 0o750 });
    appendFileSync(this.file, recs.map((r) => JSON.stringify(r)).join('\n') + '\n');
  }

  /** Replays the journal; a corrupt or truncated line is reported with its number and skipped. */
  replay(): ReplayResult {
    const bans = new Map<string, BanRecord>();
    const errors: ReplayResult['errors'] = [];
    if (!existsSync(this.file)) return { bans, errors, lines: 0 };
    const lines = readFileSync(this.file, 'utf8').split('\n');
    let n = 0;
    lines.forEach((text, i) => {
      if (!text.trim()) return;
      n++;
      let r: JournalRecord;
      try {
        r = JSON.parse(text) as JournalRecord;
      } catch {
        errors.push({ line: i + 1, message: 'not valid JSON (truncated or corrupt)' });
        return;
      }
      if (r?.op === 'ban' && typeof r.target === 'string') bans.set(r.target, r);
      else if (r?.op === 'unban' && typeof r.target === 'string') bans.delete(r.target);
      else errors.push({ line: i + 1, message: 'not a ban or unban record' });
    });
    return { bans, errors, lines: n };
  }

  /** Rewrites the journal with only the live bans, when it has grown past maxBytes. */
  compactIfLarger(maxBytes: number, now: number): boolean {
    if (!existsSync(this.file) || statSync(this.file).size <= maxBytes) return false;
    const { bans } = this.replay();
    const live = [...bans.values()].filter((b) => b.expires === null || b.expires > now);
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, live.map((r) => JSON.stringify(r)).join('\n') + (live.length ? '\n' : ''));
    renameSync(tmp, this.file);
    return true;
  }
}
