/**
 * The records sentry-xdp stores (the journal's lines, the Redis hash, the
 * events and fleet streams, the outbox): one schema each, used by every writer
 * before a record goes out and by every reader before a record is believed.
 * A record that another version, a hand edit or a flipped bit made impossible
 * (a port of 99999999999, an expiry that is not a number) is then refused where
 * it is read, with its place, instead of failing a restore of a million bans
 * deep inside the kernel writes.
 */
import { z } from 'zod/v4';
import { DOTTED_QUAD, parseCidr } from './addr.js';

const ORIGINS = ['auto', 'manual', 'imported', 'fleet'] as const;
export type Origin = (typeof ORIGINS)[number];

const PROTOS = ['tcp', 'udp', 'icmp', 'ip'] as const;
const wallMs = z.number().finite().nonnegative();
const port = z.number().int().min(0).max(65535);
const text = z.string().max(4096);
/** An address or network as parseCidr reads it (the restore and the kernel keys depend on it). */
function isTarget(t: string): boolean {
  if (DOTTED_QUAD.test(t)) return true; // nearly every record: no need to build the address
  try {
    parseCidr(t);
    return true;
  } catch {
    return false;
  }
}
const target = z.string().refine(isTarget, { message: 'not an address or CIDR' });

export const BanRecordSchema = z.object({
  op: z.literal('ban'),
  time: wallMs,
  target,
  ttl: z.number().int().nonnegative(), // seconds, 0 = permanent
  expires: wallMs.nullable(), // wall ms, null = permanent
  origin: z.enum(ORIGINS),
  reason: text,
  by: text,
  port: port.optional(),
  proto: z
    .string()
    .refine((p) => (PROTOS as readonly string[]).includes(p), { message: `not one of ${PROTOS.join(', ')}` })
    .optional(),
  kind: text.optional(),
  gateway: text.optional(), // which gateway made it
});

const UnbanRecordSchema = z.object({
  op: z.literal('unban'),
  time: wallMs,
  target,
  why: text,
  by: text.optional(),
  gateway: text.optional(),
});

export const AlertRecordSchema = z.object({
  op: z.literal('alert'),
  time: wallMs,
  source: target,
  destination: z.string().optional(), // the address probed (absent in records older than the gateway model)
  proto: z.enum(PROTOS),
  port,
  kind: text, // syn, fin, null, xmas, unknown, udp
  flags: text.optional(),
  iface: text,
  gateway: text,
});

export const JournalRecordSchema = z.discriminatedUnion('op', [BanRecordSchema, UnbanRecordSchema]);
export const HistoryEventSchema = z.discriminatedUnion('op', [BanRecordSchema, UnbanRecordSchema, AlertRecordSchema]);

export type BanRecord = z.infer<typeof BanRecordSchema>;
export type UnbanRecord = z.infer<typeof UnbanRecordSchema>;
export type AlertRecord = z.infer<typeof AlertRecordSchema>;
export type JournalRecord = z.infer<typeof JournalRecordSchema>;
export type HistoryEvent = z.infer<typeof HistoryEventSchema>;

export type Checked<T> = { ok: true; value: T } | { ok: false; why: string };

/** The first problem zod found, as "field: message". */
function why(e: z.ZodError): string {
  const i = e.issues[0];
  if (!i) return 'not a valid record';
  return i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message;
}

/** The ban record's keys in the schema's order (the order zod returns them in). */
const BAN_KEYS = new Map(Object.keys(BanRecordSchema.shape).map((k, i) => [k, i]));
const isWallMs = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x >= 0;
const isText = (x: unknown) => typeof x === 'string' && x.length <= 4096;
const isOptText = (x: unknown) => x === undefined || isText(x);

/**
 * A ban record exactly as the writers store it, checked by hand: zod costs a
 * few microseconds a record, which a restore of a million bans pays in whole
 * seconds. True only where BanRecordSchema would return the record unchanged
 * (no key it would strip, keys in its order); anything else goes to zod,
 * which then names the field at fault. test/unit/records.test.ts holds the two
 * to the same verdicts.
 */
function isPlainBan(o: unknown): o is BanRecord {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return false;
  const r = o as Record<string, unknown>;
  let last = -1;
  for (const k in r) {
    const i = BAN_KEYS.get(k);
    if (i === undefined || i < last || r[k] === undefined) return false;
    last = i;
  }
  return (
    r.op === 'ban' &&
    isWallMs(r.time) &&
    typeof r.target === 'string' &&
    isTarget(r.target) &&
    Number.isSafeInteger(r.ttl) &&
    (r.ttl as number) >= 0 &&
    (r.expires === null || isWallMs(r.expires)) &&
    (ORIGINS as readonly unknown[]).includes(r.origin) &&
    isText(r.reason) &&
    isText(r.by) &&
    (r.port === undefined || (Number.isSafeInteger(r.port) && (r.port as number) >= 0 && (r.port as number) <= 65535)) &&
    (r.proto === undefined || (PROTOS as readonly unknown[]).includes(r.proto)) &&
    isOptText(r.kind) &&
    isOptText(r.gateway)
  );
}

/** The schemas of the restore paths (the Redis hash, the journal): a ban there may take the fast path. */
const BAN_SCHEMAS: ReadonlySet<unknown> = new Set<unknown>([BanRecordSchema, JournalRecordSchema]);

/**
 * A stored value (already parsed, or a JSON text) checked against a schema.
 * A JSON text of a well-formed ban skips zod (the restore's bulk); the value
 * is then the parsed object itself, as zod would have returned it.
 */
export function check<T>(schema: z.ZodType<T>, v: unknown): Checked<T> {
  let value = v;
  if (typeof v === 'string') {
    try {
      value = JSON.parse(v);
    } catch {
      return { ok: false, why: 'not valid JSON (truncated or corrupt)' };
    }
    if (BAN_SCHEMAS.has(schema) && isPlainBan(value)) return { ok: true, value: value as T };
  }
  const r = schema.safeParse(value);
  return r.success ? { ok: true, value: r.data } : { ok: false, why: why(r.error) };
}

/**
 * A record as stored: JSON, after checking it with its schema. Throws on a
 * record no reader would accept: that is a bug of the writer, and storing it
 * would fail every later restore.
 */
export function encodeRecord(schema: z.ZodType<unknown>, r: unknown): string {
  const c = check(schema, r);
  if (!c.ok) throw new Error(`refusing to store an impossible record (${c.why}): ${JSON.stringify(r).slice(0, 200)}`);
  return JSON.stringify(c.value);
}

/**
 * Bad records met while reading one store: counted, the first few kept with
 * their place (file:line, key/field, stream id) for the log.
 */
export class Rejects {
  count = 0;
  private readonly first: string[] = [];

  constructor(private readonly keep = 10) {}

  add(where: string, why: string): void {
    if (this.count++ < this.keep) this.first.push(`${where}: ${why}; skipped`);
  }

  /** The lines to report (and a count of the rest), emptied. */
  drain(what: string): string[] {
    const out = this.first.splice(0);
    if (this.count > out.length) out.push(`... ${this.count} bad record(s) in all skipped in ${what}`);
    this.count = 0;
    return out;
  }
}
