/**
 * The fleet: gateways pointed at one Redis share bans. Every gateway writes its
 * own bans (and manual unbans) to PREFIX:fleet through its history store
 * (src/adapters/redis.ts); this reads the others' and applies them. No loops:
 * bans applied from the fleet are tagged origin "fleet" and never re-sent; a
 * gateway skips its own messages. A gateway that was away catches up from
 * PREFIX:bans, the fleet-wide table of bans in force.
 */
import type { BanRecord, UnbanRecord } from '../adapters/journal.js';
import { bounded, connectRedis, redisKeys, scanLiveBans, type RedisClient, type RedisSettings } from '../adapters/redis.js';
import { check, JournalRecordSchema } from '../core/records.js';

export interface FleetHandlers {
  ban(b: BanRecord): Promise<void>;
  unban(u: UnbanRecord): Promise<void>;
  /** The fleet-wide table of bans in force (after an absence). */
  catchUp(bans: BanRecord[]): Promise<void>;
  report(line: string): void;
}

/** The ID of the fleet stream's last message ('0-0' if none). */
export async function fleetMark(c: RedisClient, s: Pick<RedisSettings, 'prefix' | 'cluster'>): Promise<string> {
  const last = (await c.xrevrange(redisKeys(s).fleet, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
  return last[0]?.[0] ?? '0-0';
}

export class FleetReader {
  private client: RedisClient | undefined;
  private stopped = false;
  private lastId = '$';
  private caughtUp = false;
  private loop: Promise<void> | undefined;
  private lastTrouble: string | undefined;

  constructor(
    private readonly s: RedisSettings,
    private readonly gateway: string,
    private readonly h: FleetHandlers,
  ) {}

  /**
   * `from`: the fleet stream's last ID taken before the daemon restored every
   * ban in force from the same Redis; the reader goes on from there and skips
   * the catch-up (a second read of the whole table).
   */
  start(from?: string): void {
    if (from) {
      this.lastId = from;
      this.caughtUp = true;
    }
    // a connection of its own: XREAD BLOCK holds it
    this.client = connectRedis(this.s, { maxRetriesPerRequest: null, enableOfflineQueue: true });
    this.client.on('error', () => {}); // the history store reports Redis trouble once
    this.loop = this.run();
  }

  private async catchUp(c: RedisClient): Promise<void> {
    this.lastId = await fleetMark(c, this.s);
    const bans = await scanLiveBans(c, redisKeys(this.s).bans, Date.now(), (l) => this.h.report(`fleet: ${l}`));
    await this.h.catchUp(bans);
    this.caughtUp = true;
  }

  /**
   * One message of the fleet stream, checked with the schema it was written
   * with; a bad one, or one this gateway cannot apply, is reported and passed
   * over (never retried forever, never holding up the messages after it).
   */
  private async apply(id: string, fields: string[]): Promise<void> {
    const key = redisKeys(this.s).fleet;
    const c = check(JournalRecordSchema, fields[1] ?? '');
    if (!c.ok) return this.h.report(`fleet: ${key} entry ${id}: ${c.why}; skipped`);
    const e = c.value;
    if (e.gateway === this.gateway) return; // our own
    try {
      if (e.op === 'ban') await this.h.ban(e);
      else await this.h.unban(e);
    } catch (err) {
      this.h.report(`fleet: ${key} entry ${id} (${e.op} of ${e.target}) not applied: ${(err as Error).message.split('\n')[0]}`);
    }
  }

  private async run(): Promise<void> {
    const c = this.client!;
    while (!this.stopped) {
      try {
        if (!this.caughtUp) await this.catchUp(c);
        const res = (await c.xread('BLOCK', 1000, 'STREAMS', redisKeys(this.s).fleet, this.lastId)) as Array<[string, Array<[string, string[]]>]> | null;
        for (const [, rows] of res ?? []) {
          for (const [id, fields] of rows) {
            this.lastId = id;
            await this.apply(id, fields);
          }
        }
        this.lastTrouble = undefined;
      } catch (e) {
        if (this.stopped) break;
        // said once per kind of trouble: a loop that fails the same way must not be silent, nor flood the log
        const msg = (e as Error).message.split('\n')[0];
        if (msg !== this.lastTrouble) this.h.report(`fleet: ${msg}; trying again`);
        this.lastTrouble = msg;
        this.caughtUp = false; // after an outage, catch up again
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** Within a second, whatever Redis does (a command waiting for a Redis that is gone never settles). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.client?.disconnect();
    await bounded(this.loop?.catch(() => {}) ?? Promise.resolve(), 1000);
  }
}
