/**
 * Redis, through ioredis: the history store of a gateway and the channel of
 * a fleet. Layout (prefix "sentry-xdp" by default):
 *   PREFIX:events  stream  every alert (100 to an entry), ban and unban (XADD MAXLEN ~ N/100 entries)
 *   PREFIX:bans    hash    target → the latest ban in force (JSON), for restore and catch-up
 *   PREFIX:fleet   stream  bans and unbans for the other gateways
 *   PREFIX:banlog  stream  targets whose entry in PREFIX:bans changed, in order (trimmed at each snapshot)
 *   PREFIX:snap    hash    the latest snapshot of PREFIX:bans: generation, banlog id, chunk count, bans
 *   PREFIX:snap:G:I string chunk I of snapshot G, packed (src/core/ban-pack.ts), 65536 bans each
 * A restart reads the snapshot (a few large strings) and then the targets the
 * banlog names since it, from the hash: seconds for a million bans, where an
 * HSCAN of the hash takes far longer. Any gateway of the fleet rewrites the
 * snapshot once the banlog has grown past a quarter of it (one at a time).
 * With a Redis Cluster every key carries the hash tag {PREFIX}, so that the
 * pipelines stay on one slot.
 * Nothing here waits on Redis on the alert path: writes are buffered (bounded)
 * and flushed in pipelines; while Redis is down they wait, and what overflows
 * the buffer is counted as lost.
 */
import { Redis, Cluster, type RedisOptions } from 'ioredis';
import type { BanRecord, UnbanRecord } from './journal.js';
import { SentryError } from '../errors.js';
import { packBans, unpackBans, type PackedBans } from '../core/ban-pack.js';
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

/** The keys of one prefix; with a Cluster they share a hash tag (one slot). */
export function redisKeys(s: Pick<RedisSettings, 'prefix' | 'cluster'>) {
  const base = s.cluster?.length ? `{${s.prefix}}` : s.prefix;
  return {
    events: `${base}:events`,
    bans: `${base}:bans`,
    fleet: `${base}:fleet`,
    banlog: `${base}:banlog`,
    snap: `${base}:snap`,
    snapGen: `${base}:snap:gen`,
    snapLock: `${base}:snap:lock`,
  };
}

/** A stream's last ID and how many entries were ever added to it (Redis 7+; undefined before). No stream: 0-0, 0. */
async function streamMark(client: RedisClient, key: string): Promise<{ id: string; added: number | undefined }> {
  const info = (await client.xinfo('STREAM', key).catch(() => undefined)) as unknown[] | undefined;
  if (!info) return { id: '0-0', added: 0 };
  const field = (name: string) => {
    const i = info.indexOf(name);
    return i >= 0 ? info[i + 1] : undefined;
  };
  const added = field('entries-added');
  return { id: String(field('last-generated-id') ?? '0-0'), added: typeof added === 'number' ? added : undefined };
}

/** The ID right after a stream ID (XRANGE's start is inclusive). */
function nextId(id: string): string {
  const [ms, seq] = id.split('-');
  return `${ms}-${Number(seq) + 1}`;
}

/** A PREFIX:bans hash in HSCAN chunks (corrupt entries skipped); the next chunk is asked for while one is used. */
async function* hscanBans(client: RedisClient, key: string, count: number): AsyncGenerator<BanRecord[]> {
  let ask = client.hscan(key, '0', 'COUNT', count);
  for (;;) {
    const [next, kv] = await ask;
    if (next !== '0') ask = client.hscan(key, next, 'COUNT', count);
    const out: BanRecord[] = [];
    for (let i = 1; i < kv.length; i += 2) {
      try {
        out.push(JSON.parse(kv[i]!) as BanRecord);
      } catch {
        /* skip a corrupt entry */
      }
    }
    if (out.length) yield out;
    if (next === '0') return;
  }
}

/** The bans in force of a PREFIX:bans hash. */
export async function scanLiveBans(client: RedisClient, key: string, now: number): Promise<BanRecord[]> {
  const out: BanRecord[] = [];
  for await (const chunk of hscanBans(client, key, 10000)) for (const b of chunk) if (b.expires === null || b.expires > now) out.push(b);
  return out;
}

const SNAP_CHUNK = 65536;
/** The layout of PREFIX:snap and its chunks; a snapshot without it (or another) is not used. */
const SNAP_VERSION = '1';

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
    return redisKeys(this.s);
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
        // one transaction: the hash and the banlog change together or not at all (Redis out of memory
        // refuses some writes and not others; a half-applied batch would fool the next restore)
        const p = this.client.multi();
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
          const json = JSON.stringify(e);
          p.xadd(this.key.events, 'MAXLEN', '~', String(Math.ceil(this.s.maxlen / 100)), '*', 'e', json);
          // the hash first, then the banlog: a snapshot taken in between still sees the change (see snapshot())
          if (e.op === 'ban') p.hset(this.key.bans, e.target, json);
          else p.hdel(this.key.bans, e.target);
          p.xadd(this.key.banlog, '*', 't', e.target);
          const share = this.s.fleetSend && ((e.op === 'ban' && e.origin !== 'fleet') || (e.op === 'unban' && sharedUnban(e.why)));
          if (share) p.xadd(this.key.fleet, 'MAXLEN', '~', '100000', '*', 'e', json);
        }
        flushAlerts();
        const res = await p.exec();
        if (!res) throw new Error('history batch not applied');
        if (res.some(([err]) => err)) throw res.find(([err]) => err)![0]!;
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
      from = nextId(rows[rows.length - 1]![0]);
    }
    return q.limit ? out.slice(-q.limit) : out;
  }

  async liveBans(now: number): Promise<BanRecord[]> {
    await this.needReady();
    return scanLiveBans(this.client, this.key.bans, now);
  }

  /**
   * The bans in force for a restore: the snapshot's packed chunks, then the
   * targets changed since it as they are now in the hash (unbans for those
   * gone). Without a usable snapshot, the whole hash in HSCAN chunks.
   */
  async *streamBans(): AsyncIterable<Array<BanRecord | UnbanRecord> | PackedBans> {
    await this.needReady();
    const snap = await this.readSnapshot();
    if (!snap) {
      yield* hscanBans(this.client, this.key.bans, 20000);
      return;
    }
    for (const chunk of snap.chunks) {
      yield chunk.v4;
      if (chunk.others.length) yield chunk.others;
    }
    // the targets whose ban changed since the snapshot, as the hash has them now
    for (let i = 0; i < snap.changed.length; i += 20000) {
      const targets = snap.changed.slice(i, i + 20000);
      const vals = await this.client.hmget(this.key.bans, ...targets);
      const out: Array<BanRecord | UnbanRecord> = [];
      targets.forEach((target, j) => {
        const v = vals[j];
        try {
          out.push(v ? (JSON.parse(v) as BanRecord) : { op: 'unban', time: 0, target, why: 'lifted while away' });
        } catch {
          /* skip a corrupt entry */
        }
      });
      yield out;
    }
  }

  /**
   * The snapshot named by PREFIX:snap, every chunk read and checked, and the
   * targets the banlog names since it; undefined if there is none or it cannot
   * be trusted (a chunk gone, or the banlog trimmed past it).
   */
  private async readSnapshot(): Promise<{ chunks: ReturnType<typeof unpackBans>[]; changed: string[] } | undefined> {
    const meta = await this.client.hgetall(this.key.snap);
    const chunks = Number(meta.chunks);
    if (meta.v !== SNAP_VERSION || !meta.gen || !meta.id || !Number.isInteger(chunks) || chunks < 0) return undefined;
    const unusable = (why: string) => {
      this.onState?.(`redis: snapshot ${meta.gen} unusable (${why}); reading ${this.key.bans} whole`);
      return undefined;
    };
    // the banlog since the snapshot, whole: it must hold every entry added since (two newer snapshots may have trimmed it)
    const mark = await streamMark(this.client, this.key.banlog);
    const changed = new Set<string>();
    let seen = 0;
    for (let from = nextId(meta.id); ; ) {
      const rows = (await this.client.xrange(this.key.banlog, from, '+', 'COUNT', 20000)) as Array<[string, string[]]>;
      seen += rows.length;
      for (const [, f] of rows) if (f[1]) changed.add(f[1]);
      if (rows.length < 20000) break;
      from = nextId(rows[rows.length - 1]![0]);
    }
    if (mark.added !== undefined && meta.added !== undefined && seen < mark.added - Number(meta.added)) {
      return unusable(`${this.key.banlog} was trimmed past it`);
    }
    const p = this.client.pipeline();
    for (let i = 0; i < chunks; i++) p.getBuffer(`${this.key.snap}:${meta.gen}:${i}`);
    const res = (await p.exec()) ?? [];
    try {
      return {
        changed: [...changed],
        chunks: res.map(([err, buf]) => {
          if (err || !Buffer.isBuffer(buf)) throw new Error('a snapshot chunk is missing');
          return unpackBans(buf);
        }),
      };
    } catch (e) {
      return unusable((e as Error).message);
    }
  }

  /**
   * Rewrites the snapshot if the banlog has grown past a quarter of it (or
   * `force`). One gateway at a time (a lock key); the others skip. Returns
   * what was written, or undefined.
   *
   * Why it is consistent: the banlog's last ID is read before the hash is
   * scanned, and every writer changes the hash before it appends to the
   * banlog. A target changed during the scan is therefore in the banlog after
   * that ID, and a restore reads it afresh from the hash; any other target
   * was the same for the whole scan, and HSCAN returns such entries.
   */
  async snapshot(force = false): Promise<{ bans: number; ms: number } | undefined> {
    await this.needReady();
    const c = this.client;
    const k = this.key;
    const [meta, logged, live] = await Promise.all([c.hgetall(k.snap), c.xlen(k.banlog), c.hlen(k.bans)]);
    // `base`: what the banlog held right after the last snapshot (entries it already covers)
    const due = meta.gen ? logged - Number(meta.base ?? 0) > 10_000 + Number(meta.bans ?? 0) / 4 : live > 10_000 || logged > 10_000;
    if (!force && !due) return undefined;
    const token = `${process.pid}-${Date.now()}`;
    if ((await c.set(k.snapLock, token, 'PX', 600_000, 'NX')) !== 'OK') return undefined; // another gateway is at it
    try {
      const t0 = Date.now();
      const { id, added } = await streamMark(c, k.banlog);
      const gen = await c.incr(k.snapGen);
      let chunks = 0;
      let bans = 0;
      let batch: BanRecord[] = [];
      const put = async () => {
        // an hour to live until the switch below: a writer that dies leaves nothing for long
        await c.set(`${k.snap}:${gen}:${chunks}`, packBans(batch), 'PX', 3_600_000);
        chunks++;
        bans += batch.length;
        batch = [];
      };
      for await (const recs of hscanBans(c, k.bans, 5000)) {
        const now = Date.now();
        for (const b of recs) if (typeof b?.target === 'string' && (b.expires === null || b.expires > now)) batch.push(b);
        if (batch.length >= SNAP_CHUNK) await put();
      }
      if (batch.length) await put();
      // the switch, unless another writer switched to a newer snapshot meanwhile (ours then expires);
      // on a connection of its own: WATCH belongs to a connection, and the history's transactions share ours
      const w = c.duplicate();
      w.on('error', () => {});
      try {
        return await this.switchSnapshot(w, { gen, id, added, chunks, bans }, t0);
      } finally {
        w.disconnect();
      }
    } finally {
      // ours only (it may have lapsed and been taken); an error here must not hide the first one
      await c.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0", 1, k.snapLock, token).catch(() => {});
    }
  }

  private async switchSnapshot(
    w: RedisClient,
    snap: { gen: number; id: string; added: number | undefined; chunks: number; bans: number },
    t0: number,
  ): Promise<{ bans: number; ms: number } | undefined> {
    const k = this.key;
    const { gen, id, added, chunks, bans } = snap;
    if (w.status !== 'ready') {
      await new Promise<void>((res, rej) => {
        const t = setTimeout(() => rej(new Error('redis: a second connection did not come up')), 3000);
        w.once('ready', () => {
          clearTimeout(t);
          res();
        });
      });
    }
    await w.watch(k.snap);
    const current = await w.hgetall(k.snap);
    if (Number(current.gen ?? 0) > gen) return undefined;
    const m = w.multi();
    for (let i = 0; i < chunks; i++) m.persist(`${k.snap}:${gen}:${i}`);
    m.hset(k.snap, { v: SNAP_VERSION, gen, id, chunks, bans, time: Date.now(), ...(added !== undefined ? { added } : {}) });
    // a restore that has just read the previous snapshot has two minutes to fetch it, and its banlog stays
    for (let i = 0; i < Number(current.chunks ?? 0); i++) m.pexpire(`${k.snap}:${current.gen}:${i}`, 120_000);
    // with no snapshot before, nobody reads the banlog from further back than this one
    m.xtrim(k.banlog, 'MINID', '~', current.id ?? id, 'LIMIT', 0); // LIMIT 0: all of it, not 10 000 a call
    m.xlen(k.banlog);
    const res = await m.exec();
    if (!res) return undefined; // the meta changed under WATCH: another writer won
    if (res.some(([err]) => err)) throw res.find(([err]) => err)![0]!;
    await w.hset(k.snap, 'base', Number(res[res.length - 1]?.[1] ?? 0));
    return { bans, ms: Date.now() - t0 };
  }

  /** Housekeeping on the daemon's timer: a new snapshot when due. A line to report, or undefined. */
  async maintain(): Promise<string | undefined> {
    if (this.client.status !== 'ready') return undefined;
    const r = await this.snapshot();
    return r && `redis: snapshot of ${r.bans} ban(s) in force written in ${r.ms} ms (for a fast restore)`;
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
