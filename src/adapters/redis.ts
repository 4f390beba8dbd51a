/**
 * Redis, through ioredis: the history store of a gateway and the channel of
 * a fleet. Layout (prefix "sentry-xdp" by default):
 *   PREFIX:events  stream  every alert (100 to an entry), ban and unban (XADD MAXLEN ~ N/100 entries)
 *   PREFIX:bans    hash    target → the latest ban in force (JSON), for restore and catch-up
 *   PREFIX:fleet   stream  bans and unbans for the other gateways
 * Nothing here waits on Redis on the alert path: writes are buffered (bounded)
 * and flushed in pipelines; while Redis is down they wait, and what overflows
 * the buffer is counted as lost.
 */
import { Redis, Cluster, type RedisOptions } from 'ioredis';
import type { BanRecord } from './journal.js';
import { SentryError } from '../errors.js';
import { eventSource, type HistoryEvent, type HistoryHealth, type HistoryQuery, type HistoryStore } from './history.js';

export interface RedisSettings {
  url?: string | undefined; // redis://, rediss://, unix:///path or a plain socket path
  sentinels?: Array<{ host: string; port: number }> | undefined;
  name?: string | undefined; // sentinel master name
  cluster?: Array<{ host: string; port: number }> | undefined;
  prefix: string;
  maxlen: number; // stream trim (~)
  buffer: number; // events kept while Redis is away
  /** Share this gateway's bans and manual unbans with the fleet. */
  fleetSend?: boolean;
}

/** Unbans that the other gateways follow: lifted by a person, not lapsed or evicted locally. */
export function sharedUnban(why: string): boolean {
  return !/expired|evicted|fleet|detach/.test(why);
}

export type RedisClient = Redis | Cluster;

/** A client that fails fast instead of queueing without bound, and reconnects forever. */
export function connectRedis(s: RedisSettings, extra: Partial<RedisOptions> = {}): RedisClient {
  const common: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(100 + times * 200, 2000),
    lazyConnect: false,
    ...extra,
  };
  if (s.cluster?.length) return new Cluster(s.cluster, { redisOptions: common, enableOfflineQueue: false });
  if (s.sentinels?.length) return new Redis({ ...common, sentinels: s.sentinels, name: s.name ?? 'mymaster' });
  const url = s.url ?? 'redis://127.0.0.1:6379';
  if (url.startsWith('unix://')) return new Redis({ ...common, path: url.slice('unix://'.length) });
  if (url.startsWith('/')) return new Redis({ ...common, path: url });
  return new Redis(url, common);
}

/** The bans in force of a PREFIX:bans hash, read with HSCAN (corrupt entries skipped). */
export async function scanLiveBans(client: RedisClient, key: string, now: number): Promise<BanRecord[]> {
  const out: BanRecord[] = [];
  let cursor = '0';
  do {
    const [next, kv] = await client.hscan(key, cursor, 'COUNT', 10000);
    cursor = next;
    for (let i = 1; i < kv.length; i += 2) {
      try {
        const b = JSON.parse(kv[i]!) as BanRecord;
        if (b.expires === null || b.expires > now) out.push(b);
      } catch {
        /* skip a corrupt entry */
      }
    }
  } while (cursor !== '0');
  return out;
}

export class RedisStore implements HistoryStore {
  readonly kind = 'redis' as const;
  readonly client: RedisClient;
  private queue: HistoryEvent[] = [];
  private lost = 0;
  private flushing = false;
  private lastError: string | undefined;
  private timer: NodeJS.Timeout;

  constructor(
    private readonly s: RedisSettings,
    private readonly onState?: (line: string) => void,
  ) {
    this.client = connectRedis(s);
    this.client.on('error', (e: Error) => {
      const msg = e.message.split('\n')[0];
      if (msg !== this.lastError) this.onState?.(`redis: ${msg}; detection and blocking go on, history waits in a buffer`);
      this.lastError = msg;
    });
    this.client.on('ready', () => {
      if (this.lastError) this.onState?.(`redis: connected again; writing ${this.queue.length} buffered event(s)`);
      this.lastError = undefined;
      void this.flush();
    });
    this.timer = setInterval(() => void this.flush(), 200);
    this.timer.unref();
  }

  get key() {
    return { events: `${this.s.prefix}:events`, bans: `${this.s.prefix}:bans`, fleet: `${this.s.prefix}:fleet` };
  }

  record(events: readonly HistoryEvent[]): void {
    for (const e of events) this.queue.push(e);
    const over = this.queue.length - this.s.buffer;
    if (over > 0) {
      this.queue.splice(0, over);
      this.lost += over;
    }
    // bans and unbans go out at once (the fleet waits for them); alerts in batches
    if (this.queue.length >= 1000 || events.some((e) => e.op !== 'alert')) setImmediate(() => void this.flush());
  }

  /** Writes the buffer in pipelines of 5000; keeps it when Redis is away. */
  async flush(): Promise<void> {
    if (this.flushing || !this.queue.length || this.client.status !== 'ready') return;
    this.flushing = true;
    try {
      while (this.queue.length && this.client.status === 'ready') {
        const batch = this.queue.slice(0, 5000);
        const p = this.client.pipeline();
        // alerts go 100 to a stream entry (field "b"); bans and unbans one each (field "e")
        let alerts: HistoryEvent[] = [];
        const flushAlerts = () => {
          if (alerts.length) p.xadd(this.key.events, 'MAXLEN', '~', String(Math.ceil(this.s.maxlen / 100)), '*', 'b', JSON.stringify(alerts));
          alerts = [];
        };
        for (const e of batch) {
          if (e.op === 'alert') {
            alerts.push(e);
            if (alerts.length >= 100) flushAlerts();
            continue;
          }
          flushAlerts();
          p.xadd(this.key.events, 'MAXLEN', '~', String(Math.ceil(this.s.maxlen / 100)), '*', 'e', JSON.stringify(e));
          if (e.op === 'ban') p.hset(this.key.bans, e.target, JSON.stringify(e));
          else if (e.op === 'unban') p.hdel(this.key.bans, e.target);
          const share = this.s.fleetSend && ((e.op === 'ban' && e.origin !== 'fleet') || (e.op === 'unban' && sharedUnban(e.why)));
          if (share) p.xadd(this.key.fleet, 'MAXLEN', '~', '100000', '*', 'e', JSON.stringify(e));
        }
        flushAlerts();
        const res = await p.exec();
        if (res?.some(([err]) => err)) throw res.find(([err]) => err)![0]!;
        this.queue.splice(0, batch.length);
      }
    } catch (e) {
      this.lastError = (e as Error).message.split('\n')[0];
    } finally {
      this.flushing = false;
    }
  }

  private async needReady(): Promise<void> {
    if (!(await this.ready(3000))) {
      throw new SentryError('IO', `redis: not reachable (${this.lastError ?? 'no answer'})`, 'check redis.url in the config, and that redis-server runs');
    }
  }

  async query(q: HistoryQuery): Promise<HistoryEvent[]> {
    await this.needReady();
    const start = q.since !== undefined ? `${Math.floor(q.since)}-0` : '-';
    const out: HistoryEvent[] = [];
    let from = start;
    for (;;) {
      const rows = (await this.client.xrange(this.key.events, from, '+', 'COUNT', 10000)) as Array<[string, string[]]>;
      for (const [, fields] of rows) {
        try {
          const v = JSON.parse(fields[1] ?? '') as HistoryEvent | HistoryEvent[];
          for (const e of Array.isArray(v) ? v : [v]) {
            if (q.since !== undefined && e.time < q.since) continue;
            if (q.source === undefined || eventSource(e) === q.source) out.push(e);
          }
        } catch {
          /* not ours */
        }
      }
      if (rows.length < 10000) break;
      const last = rows[rows.length - 1]![0];
      const [ms, seq] = last.split('-');
      from = `${ms}-${Number(seq) + 1}`;
    }
    return q.limit ? out.slice(-q.limit) : out;
  }

  async liveBans(now: number): Promise<BanRecord[]> {
    await this.needReady();
    return scanLiveBans(this.client, this.key.bans, now);
  }

  /** The hash of bans in force, in HSCAN chunks (no unbans: the hash holds only what is in force). */
  async *streamBans(): AsyncIterable<BanRecord[]> {
    await this.needReady();
    // the next HSCAN is on its way while this chunk is parsed and written
    let ask = this.client.hscan(this.key.bans, '0', 'COUNT', 20000);
    for (;;) {
      const [next, kv] = await ask;
      if (next !== '0') ask = this.client.hscan(this.key.bans, next, 'COUNT', 20000);
      const out: BanRecord[] = [];
      for (let i = 1; i < kv.length; i += 2) {
        try {
          out.push(JSON.parse(kv[i]!) as BanRecord);
        } catch {
          /* skip a corrupt entry */
        }
      }
      if (out.length) yield out;
      if (next === '0') break;
    }
  }

  health(): HistoryHealth {
    const healthy = this.client.status === 'ready' && !this.lastError;
    return { kind: 'redis', healthy, buffered: this.queue.length, lost: this.lost, ...(this.lastError ? { error: this.lastError } : {}) };
  }

  /** Waits until connected (true), or timeoutMs (false). */
  ready(timeoutMs = 2000): Promise<boolean> {
    if (this.client.status === 'ready') return Promise.resolve(true);
    return new Promise((res) => {
      const t = setTimeout(() => {
        this.client.off('ready', ok);
        res(false);
      }, timeoutMs);
      const ok = () => {
        clearTimeout(t);
        res(true);
      };
      this.client.once('ready', ok);
    });
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    if (this.queue.length && (await this.ready(2000))) await Promise.race([this.flush(), new Promise((r) => setTimeout(r, 2000))]);
    if (this.queue.length) this.onState?.(`redis: ${this.queue.length} event(s) could not be written before exit`);
    this.client.disconnect();
  }
}
