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
 * and flushed in transactions. While Redis is away, bans and unbans go to the
 * outbox under the state directory (src/adapters/outbox.ts), and whoever reaches
 * Redis next sends them first, in order; alerts wait in the buffer, and what
 * overflows it is counted as lost. Every record read back is checked with the
 * schema it was written with (src/core/records.ts); a bad one is skipped and
 * reported with its key and field or stream ID.
 */
import { Redis, Cluster, type RedisOptions } from 'ioredis';
import { PartialWrite, type BanRecord, type UnbanRecord } from './journal.js';
import { SentryError } from '../errors.js';
import { BanPacker, packBans, unpackBans, type PackedBans } from '../core/ban-pack.js';
import { BanRecordSchema, check, HistoryEventSchema, Rejects } from '../core/records.js';
import { eventSource, storeFailure, type HistoryEvent, type HistoryHealth, type HistoryQuery, type HistoryStore } from './history.js';
import { Outbox } from './outbox.js';

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
  /** Where the outbox lives (the state directory); without it, records wait in memory only. */
  outboxDir?: string;
}

/** Unbans that the other gateways follow: lifted by a person, not lapsed or evicted locally. */
function sharedUnban(why: string): boolean {
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

/** A PREFIX:bans entry, checked: its field must be its target too. */
function checkBan(key: string, field: string, v: string, rejects: Rejects): BanRecord | undefined {
  const c = check(BanRecordSchema, v);
  if (c.ok && c.value.target === field) return c.value;
  rejects.add(`${key} field ${field}`, c.ok ? `its target is ${c.value.target}` : c.why);
  return undefined;
}

/** A PREFIX:bans hash in HSCAN chunks (bad entries skipped into `rejects`); the next chunk is asked for while one is used. */
async function* hscanBans(client: RedisClient, key: string, count: number, rejects: Rejects): AsyncGenerator<BanRecord[]> {
  let ask = client.hscan(key, '0', 'COUNT', count);
  for (;;) {
    const [next, kv] = await ask;
    if (next !== '0') ask = client.hscan(key, next, 'COUNT', count);
    const out: BanRecord[] = [];
    for (let i = 1; i < kv.length; i += 2) {
      const b = checkBan(key, kv[i - 1]!, kv[i]!, rejects);
      if (b) out.push(b);
    }
    if (out.length) yield out;
    if (next === '0') return;
  }
}

/**
 * A PREFIX:bans hash whole, for a restore without a snapshot: plain IPv4 bans
 * packed as each HSCAN reply comes in (blocks of `block`), the others as
 * records; lapsed entries left out, bad ones skipped into `rejects`. The
 * parsed records of one reply die young, where a million of them kept to the
 * end would cost the restore seconds of garbage collection.
 */
async function* hscanPacked(client: RedisClient, key: string, block: number, rejects: Rejects): AsyncGenerator<PackedBans | BanRecord[]> {
  const packer = new BanPacker(block);
  let others: BanRecord[] = [];
  for await (const recs of hscanBans(client, key, 1000, rejects)) {
    const now = Date.now();
    for (const b of recs) {
      if (b.expires !== null && b.expires <= now) continue;
      if (!packer.add(b)) others.push(b);
      else if (packer.full) yield packer.take();
    }
    if (others.length >= block) {
      yield others;
      others = [];
    }
  }
  if (packer.count) yield packer.take();
  if (others.length) yield others;
}

/** The bans in force of a PREFIX:bans hash; bad entries are skipped and reported. */
export async function scanLiveBans(client: RedisClient, key: string, now: number, report?: (line: string) => void): Promise<BanRecord[]> {
  const out: BanRecord[] = [];
  const rejects = new Rejects();
  for await (const chunk of hscanBans(client, key, 10000, rejects)) for (const b of chunk) if (b.expires === null || b.expires > now) out.push(b);
  for (const l of rejects.drain(key)) report?.(`redis: ${l}`);
  return out;
}

/** Settles within ms whatever p does (a Redis that never answers must not hold a shutdown). */
export function bounded<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<undefined>((r) => (t = setTimeout(() => r(undefined), ms)))]).finally(() => clearTimeout(t));
}

const SNAP_CHUNK = 65536;
/** The layout of PREFIX:snap and its chunks; a snapshot without it (or another) is not used. */
const SNAP_VERSION = '2'; // 2: chunks carry their checksum (SXB2)

export class RedisStore implements HistoryStore {
  readonly kind = 'redis' as const;
  readonly client: RedisClient;
  private queue: HistoryEvent[] = [];
  private lost = 0;
  private flushing: Promise<void> | undefined;
  private lastError: string | undefined;
  private timer: NodeJS.Timeout;
  private readonly outbox: Outbox | undefined;
  /** Bans and unbans this process was asked to record, and how many of them got nowhere durable (a full disk). */
  private asked = 0;
  private failed: PartialWrite | undefined;
  private unstored = 0;
  private onlyBans = true;

  constructor(
    private readonly s: RedisSettings,
    private readonly onState?: (line: string) => void,
  ) {
    this.outbox = s.outboxDir ? new Outbox(s.outboxDir) : undefined;
    this.client = connectRedis(s);
    this.client.on('error', (e: Error) => {
      const msg = e.message.split('\n')[0];
      if (msg !== this.lastError)
        this.onState?.(`redis: ${msg}; detection and blocking go on, ${this.outbox ? 'bans wait in the outbox' : 'history waits in a buffer'}`);
      this.lastError = msg;
      this.spill();
    });
    this.client.on('ready', () => {
      const waiting = this.outbox?.size() ? ' and the outbox' : '';
      if (this.lastError) this.onState?.(`redis: connected again; writing ${this.queue.length} buffered event(s)${waiting}`);
      this.lastError = undefined;
      void this.flush();
    });
    this.timer = setInterval(() => void this.flush(), 200);
    this.timer.unref();
  }

  get key() {
    return redisKeys(this.s);
  }

  /** Known to be away (not merely still connecting): bans go to the outbox now. */
  private away(): boolean {
    return this.client.status !== 'ready' && (this.lastError !== undefined || ['reconnecting', 'close', 'end'].includes(this.client.status));
  }

  record(events: readonly HistoryEvent[]): void {
    for (const e of events) {
      const c = check(HistoryEventSchema, e);
      if (c.ok) {
        this.queue.push(c.value);
        if (e.op !== 'alert') this.asked++;
        if (e.op !== 'ban') this.onlyBans = false;
      } else {
        this.lost++;
        this.onState?.(`redis: not recording an impossible ${e.op} record (${c.why})`);
      }
    }
    const over = this.queue.length - this.s.buffer;
    if (over > 0) {
      const dropped = this.queue.splice(0, over);
      this.lost += over;
      this.unstored += dropped.filter((e) => e.op !== 'alert').length;
    }
    // bans and unbans go out at once (the fleet waits for them); alerts in batches
    if (this.away() || this.outbox?.size()) this.spill();
    else if (this.queue.length >= 1000 || events.some((e) => e.op !== 'alert')) setImmediate(() => void this.flush());
  }

  /**
   * Moves the buffered bans and unbans (or everything, at exit) to the outbox,
   * in order; what a full disk refuses stays in the buffer.
   */
  private spill(all = false): void {
    if (!this.outbox) return;
    const go = this.queue.filter((e) => all || e.op !== 'alert');
    if (!go.length) return;
    let n = go.length;
    try {
      this.outbox.append(go);
    } catch (e) {
      if (!(e instanceof PartialWrite)) throw e;
      n = e.stored;
      if (!this.failed) this.onState?.(`redis: ${e.message}; the rest waits in memory`);
      this.failed = e;
    }
    const moved = new Set(go.slice(0, n));
    this.queue = this.queue.filter((e) => !moved.has(e));
  }

  /** Writes the outbox, then the buffer, in transactions of up to 5000; keeps them when Redis is away. */
  flush(): Promise<void> {
    if (this.flushing || this.client.status !== 'ready') return this.flushing ?? Promise.resolve();
    this.flushing = this.flushNow().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async flushNow(): Promise<void> {
    try {
      if (this.outbox?.size()) {
        // another process sending it: our buffer waits (it is newer than what the outbox holds)
        const sent = await this.outbox.sending(() => this.sendOutbox());
        if (!sent || this.outbox.size()) return;
      }
      while (this.queue.length && this.client.status === 'ready') {
        const batch = this.queue.slice(0, 5000);
        await this.send(batch);
        // by identity: an outage met meanwhile may have moved some of the buffer to the outbox
        const sent = new Set(batch);
        this.queue = this.queue.filter((e) => !sent.has(e));
      }
    } catch (e) {
      this.lastError = (e as Error).message.split('\n')[0];
    }
  }

  /** The outbox to Redis in order, 4 MB at a time; each part taken out once Redis has it. */
  private async sendOutbox(): Promise<void> {
    const ob = this.outbox!;
    const rejects = new Rejects();
    let sent = 0;
    while (this.client.status === 'ready') {
      const { events, bytes } = ob.peek(4 << 20, rejects);
      if (!bytes) break;
      for (let i = 0; i < events.length; i += 5000) await this.send(events.slice(i, i + 5000));
      ob.drop(bytes);
      sent += events.length;
    }
    for (const l of rejects.drain(ob.file)) this.onState?.(`redis: ${l}`);
    if (sent) this.onState?.(`redis: ${sent} record(s) from the outbox written`);
  }

  /**
   * One transaction: the hash and the banlog change together or not at all
   * (Redis out of memory refuses some writes and not others; a half-applied
   * batch would fool the next restore).
   */
  private async send(batch: readonly HistoryEvent[]): Promise<void> {
    const p = this.client.multi();
    const maxlen = String(Math.ceil(this.s.maxlen / 100));
    // alerts go 100 to a stream entry (field "b"); bans and unbans one each (field "e")
    let alerts: string[] = [];
    const flushAlerts = () => {
      if (alerts.length) p.xadd(this.key.events, 'MAXLEN', '~', maxlen, '*', 'b', `[${alerts.join(',')}]`);
      alerts = [];
    };
    for (const e of batch) {
      const json = JSON.stringify(e); // checked when recorded (or read back from the outbox)
      if (e.op === 'alert') {
        alerts.push(json);
        if (alerts.length >= 100) flushAlerts();
        continue;
      }
      flushAlerts();
      p.xadd(this.key.events, 'MAXLEN', '~', maxlen, '*', 'e', json);
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
  }

  private async needReady(): Promise<void> {
    if (!(await this.ready(3000))) {
      throw new SentryError('IO', `redis: not reachable (${this.lastError ?? 'no answer'})`, 'check redis.url in the config, and that redis-server runs');
    }
    // what waits in the outbox goes first: a read must see it (bounded: a reader does not wait on a dying Redis)
    await bounded(this.flush(), 5000);
  }

  /** Bad records of one read, reported (the first few with their place, then a count). */
  private report(rejects: Rejects, what: string): void {
    for (const l of rejects.drain(what)) this.onState?.(`redis: ${l}`);
  }

  async query(q: HistoryQuery): Promise<HistoryEvent[]> {
    await this.needReady();
    const start = q.since !== undefined ? `${Math.floor(q.since)}-0` : '-';
    const out: HistoryEvent[] = [];
    const rejects = new Rejects();
    let from = start;
    for (;;) {
      const rows = (await this.client.xrange(this.key.events, from, '+', 'COUNT', 10000)) as Array<[string, string[]]>;
      for (const [id, fields] of rows) {
        let v: unknown;
        try {
          v = JSON.parse(fields[1] ?? '');
        } catch {
          rejects.add(`${this.key.events} entry ${id}`, 'not valid JSON (truncated or corrupt)');
          continue;
        }
        for (const [i, raw] of (Array.isArray(v) ? v : [v]).entries()) {
          const c = check(HistoryEventSchema, raw);
          if (!c.ok) {
            rejects.add(`${this.key.events} entry ${id}${Array.isArray(v) ? ` record ${i + 1}` : ''}`, c.why);
            continue;
          }
          const e = c.value;
          if (q.since !== undefined && e.time < q.since) continue;
          if (q.source === undefined || eventSource(e) === q.source) out.push(e);
        }
      }
      if (rows.length < 10000) break;
      from = nextId(rows[rows.length - 1]![0]);
    }
    this.report(rejects, this.key.events);
    return q.limit ? out.slice(-q.limit) : out;
  }

  async liveBans(now: number): Promise<BanRecord[]> {
    await this.needReady();
    return scanLiveBans(this.client, this.key.bans, now, this.onState);
  }

  /**
   * The bans in force for a restore: the snapshot's packed chunks, then the
   * targets changed since it as they are now in the hash (unbans for those
   * gone). Without a usable snapshot, the whole hash by HSCAN, its plain
   * IPv4 bans packed on the way (hscanPacked).
   */
  async *streamBans(): AsyncIterable<Array<BanRecord | UnbanRecord> | PackedBans> {
    await this.needReady();
    const snap = await this.readSnapshot();
    const rejects = new Rejects();
    if (!snap) {
      yield* hscanPacked(this.client, this.key.bans, SNAP_CHUNK, rejects);
      this.report(rejects, this.key.bans);
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
        const b = v ? checkBan(this.key.bans, target, v, rejects) : undefined;
        // a bad entry counts as no ban: the snapshot's one, if any, is of an earlier time
        out.push(b ?? { op: 'unban', time: 0, target, why: 'lifted while away' });
      });
      yield out;
    }
    this.report(rejects, this.key.bans);
  }

  /**
   * The snapshot named by PREFIX:snap, every chunk read and checked, and the
   * targets the banlog names since it; undefined if there is none or it cannot
   * be trusted (a chunk gone, or the banlog trimmed past it).
   */
  private async readSnapshot(): Promise<{ chunks: ReturnType<typeof unpackBans>[]; changed: string[] } | undefined> {
    const meta = await this.client.hgetall(this.key.snap);
    const chunks = Number(meta.chunks);
    const unusable = (why: string) => {
      this.onState?.(`redis: snapshot ${meta.gen} unusable (${why}); reading ${this.key.bans} whole`);
      return undefined;
    };
    if (!meta.gen) return undefined;
    if (meta.v !== SNAP_VERSION) return unusable(`format ${meta.v ?? '?'}, this version reads ${SNAP_VERSION}`);
    if (!meta.id || !Number.isInteger(chunks) || chunks < 0) return unusable('its header is incomplete');
    // the banlog since the snapshot, whole: it must hold every entry added since (two newer snapshots may have trimmed it)
    const mark = await streamMark(this.client, this.key.banlog);
    const changed = new Set<string>();
    let seen = 0;
    for (let from = nextId(meta.id); ;) {
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
      const rejects = new Rejects();
      for await (const recs of hscanBans(c, k.bans, 5000, rejects)) {
        const now = Date.now();
        for (const b of recs) if (b.expires === null || b.expires > now) batch.push(b);
        if (batch.length >= SNAP_CHUNK) await put();
      }
      if (batch.length) await put();
      this.report(rejects, k.bans);
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

  /**
   * Within 3 s whatever Redis does: what it takes in that time goes, the
   * rest to the outbox (or, with a full disk, the failure line). A daemon has
   * 5 s to stop.
   */
  async close(): Promise<void> {
    clearInterval(this.timer);
    if (!this.away() && (this.queue.length || this.outbox?.size()) && (await this.ready(1000))) await bounded(this.flush(), 2000);
    this.spill(true);
    this.client.disconnect();
    const waiting = this.outbox?.size();
    if (waiting)
      this.onState?.(
        `redis: not reachable; records wait in the outbox ${this.outbox!.file} and go to Redis when it is back (the daemon, or any command that uses the store, sends them)`,
      );
    const left = this.queue.filter((e) => e.op !== 'alert').length;
    if (this.queue.length && !this.outbox) this.onState?.(`redis: ${this.queue.length} event(s) could not be written before exit`);
    if (this.outbox && left + this.unstored && this.asked) {
      const errno = this.failed?.errno;
      throw storeFailure({
        file: this.outbox?.file ?? this.key.bans,
        stored: this.asked - left - this.unstored,
        tried: this.asked,
        bans: this.onlyBans,
        errno,
      });
    }
  }
}
