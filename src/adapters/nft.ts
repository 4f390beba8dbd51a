/**
 * nftables adapter: keeps sentry-xdp's own table in step with its bans, for
 * interfaces without XDP and for visibility in `nft list ruleset`.
 *
 *   table inet sentry_xdp {
 *     set bans_v4 { type ipv4_addr; flags timeout; }            exact addresses
 *     set bans_v6 { type ipv6_addr; flags timeout; }
 *     set nets_v4 { type ipv4_addr; flags interval,timeout; }   CIDRs
 *     set nets_v6 { type ipv6_addr; flags interval,timeout; }
 *     chain prerouting { type filter hook prerouting priority raw; policy accept;
 *       ip saddr @bans_v4 drop; ip saddr @nets_v4 drop; ip6 saddr @bans_v6 drop; ip6 saddr @nets_v6 drop;
 *       ct state == untracked }
 *   }
 *
 * The last rule does nothing to a packet: a rule that reads conntrack makes the
 * kernel track connections in this network namespace (nf_ct_netns_get), which
 * the XDP program's conntrack lookups need to recognise forwarded flows and
 * replies on a gateway that has no other stateful rule.
 *
 * Everything goes to `nft -j -f -` as a libnftables JSON batch on stdin, one
 * transaction per call; no rule text is ever built from strings. Only our own
 * table is touched. Behaviour of nft 1.0.6 (Debian 12) this relies on, checked
 * on kernel 6.18:
 * - interval + timeout sets are accepted; no `size` is needed (a set without one
 *   is unbounded: 1 000 000 elements went in).
 * - an interval set refuses overlapping networks ("interval overlaps with an
 *   existing one", "conflicting intervals specified") and nft does not say
 *   which element; so overlaps are found here before sending, and anything the
 *   kernel still refuses is isolated by splitting the batch.
 * - whether "add element" on an existing element updates its timeout depends
 *   on the kernel; "add, delete, add" in one batch replaces it on any kernel,
 *   and works whether or not the element was there.
 * - "delete element" of a missing element fails the whole batch with ENOENT
 *   and no name (1.0.6 has no "destroy").
 * - listing is slow for huge sets (100k: ~1 s, 1M: ~1 min), so it is done
 *   only when needed.
 * - nft resolves hostnames given as elements; every target is validated as an
 *   address first, so no DNS lookup can happen.
 */
import { mkdtemp, open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCidr, type Cidr } from '../core/addr.js';
import { SentryError } from '../errors.js';
import { runInGroup, type GroupRun } from './process-group.js';

export interface NftBan {
  /** Canonical "1.2.3.4", "2001:db8::1", "203.0.113.0/24", "2001:db8::/48". */
  target: string;
  /** 0 = permanent (an element without timeout). */
  timeoutSeconds: number;
}

export interface NftEntry {
  target: string;
  /** Seconds left; null = permanent. */
  expiresSeconds: number | null;
}

export interface NftRunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Runs nft with these arguments and this stdin. Throws only when nft could not be run at all. */
export type NftRun = (args: string[], input: string) => Promise<NftRunResult>;

export interface NftOptions {
  /** Table name (family inet). Default 'sentry_xdp'. */
  table?: string;
  /** The nft binary. Default 'nft'. Ignored when `run` is given. */
  nft?: string;
  /** Elements per nft invocation. Default 20 000. */
  batchSize?: number;
  /** Injected for tests or to run nft elsewhere (see `commandRunner`). Default: nft through src/adapters/process-group.ts. */
  run?: NftRun;
}

const DEFAULT_TABLE = 'sentry_xdp';
const DEFAULT_BATCH_SIZE = 20_000;

const FAMILY = 'inet';
const PRIORITY_RAW = -300; // before conntrack (-200): banned sources cost no conntrack entry
const CHAIN = 'prerouting';
/** nft output of a 1M-element set is ~70 MB of JSON. */
const MAX_OUTPUT = 1024 * 1024 * 1024;

type SetName = 'bans_v4' | 'nets_v4' | 'bans_v6' | 'nets_v6';

interface SetSpec {
  name: SetName;
  type: 'ipv4_addr' | 'ipv6_addr';
  flags: string[];
  protocol: 'ip' | 'ip6';
}

/** In rule order. */
const SETS: readonly SetSpec[] = [
  { name: 'bans_v4', type: 'ipv4_addr', flags: ['timeout'], protocol: 'ip' },
  { name: 'nets_v4', type: 'ipv4_addr', flags: ['interval', 'timeout'], protocol: 'ip' },
  { name: 'bans_v6', type: 'ipv6_addr', flags: ['timeout'], protocol: 'ip6' },
  { name: 'nets_v6', type: 'ipv6_addr', flags: ['interval', 'timeout'], protocol: 'ip6' },
];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Cmd = { [verb: string]: { [object: string]: Json } };

/** One parsed, validated element on its way to a set. */
interface Item {
  cidr: Cidr;
  set: SetName;
  timeout: number; // whole seconds, 0 = permanent
}

interface Refusal {
  target: string;
  reason: string;
}

/**
 * A runner that executes `argv[0] argv[1..] ...args` (e.g. `['ip', 'netns', 'exec', 'ns1', 'nft']`)
 * with the process runner. stdin is the input as a real file: nft 1.0.6 reads `-f -` by opening
 * /dev/stdin, which fails (ENXIO) on the socket Node gives a child for a piped stdin.
 * The file is unlinked before nft starts, so nothing is left behind.
 */
export function commandRunner(argv: string[]): NftRun {
  const [file, ...prefix] = argv;
  if (!file) throw new SentryError('USAGE', 'nft: empty command for the nft runner', 'give the nft binary, e.g. "nft"');
  return async (args, input) => {
    const stdin = input === '' ? undefined : await inputFile(input);
    try {
      // nft leaves no children and its listings are the answer: its whole output, no timeout, our process group
      const r = await runInGroup(file, [...prefix, ...args], {
        ...(stdin ? { stdin: stdin.fd } : {}),
        tailBytes: MAX_OUTPUT,
        ownGroup: false,
        waitForOutput: true,
      });
      if (r.exitCode === null) throw cannotRun(argv, r);
      return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
    } finally {
      await stdin?.close();
    }
  };
}

/** nft did not start, or was killed. */
function cannotRun(argv: string[], r: GroupRun): SentryError {
  const missing = r.spawnErrno === 'ENOENT';
  const why = missing ? 'not found' : r.signal ? `killed by ${r.signal}` : (r.spawnErrno ?? r.spawnError ?? 'failed to start');
  const hint = missing ? 'install nftables (e.g. `apt-get install nftables`) or give the path to nft' : 'check that nft runs by hand: `nft list tables`';
  return new SentryError('KERNEL', `nft: cannot run ${argv.join(' ')}: ${why}`, hint);
}

/** `text` in an already unlinked private file, open for reading. */
async function inputFile(text: string): Promise<FileHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'sentry-xdp-nft-'));
  const path = join(dir, 'batch.json');
  try {
    await writeFile(path, text, { mode: 0o600 });
    return await open(path, 'r');
  } catch (e) {
    throw new SentryError('IO', `nft: cannot write its input to ${path}: ${(e as Error).message}`, 'check that the temporary directory is writable (TMPDIR)');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export class Nft {
  readonly table: string;
  private readonly batchSize: number;
  private readonly run: NftRun;

  constructor(opts: NftOptions = {}) {
    this.table = opts.table ?? DEFAULT_TABLE;
    if (!/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/.test(this.table)) {
      throw new SentryError(
        'USAGE',
        `nft: "${this.table}" is not a usable table name`,
        'use letters, digits, "_" and "-", starting with a letter or "_", at most 64 characters',
      );
    }
    this.batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) {
      throw new SentryError(
        'USAGE',
        `nft: batch size ${String(opts.batchSize)} is not a positive whole number`,
        `leave it out for the default of ${DEFAULT_BATCH_SIZE}`,
      );
    }
    this.run = opts.run ?? commandRunner([opts.nft ?? 'nft']);
  }

  /** nft is installed and may talk to the kernel (root, nf_tables present). */
  async available(): Promise<boolean> {
    try {
      const r = await this.run(['-j', 'list', 'tables'], '');
      if (r.exitCode !== 0) return false;
      parseOutput(r.stdout);
      return true;
    } catch {
      return false;
    }
  }

  /** Our table is there. */
  async exists(): Promise<boolean> {
    const out = await this.query(['-j', 'list', 'tables'], 'listing tables');
    return parseOutput(out).some((o) => {
      const t = field(o, 'table');
      return t !== undefined && field(t, 'family') === FAMILY && field(t, 'name') === this.table;
    });
  }

  /**
   * Creates the table, sets, chain and rules where missing, in one batch.
   * Repairs a damaged table (a set or rule deleted by hand) in the same way,
   * keeping the elements of sets that are still right. True when it changed anything.
   */
  async ensure(): Promise<boolean> {
    let current: TableState | undefined;
    if (await this.exists()) {
      current = readTableState(parseOutput(await this.query(['-j', '-t', 'list', 'table', FAMILY, this.table], `reading table ${this.where}`)), this.table);
      if (isComplete(current)) return false;
    }
    await this.applyOrThrow(ensureCommands(this.table, current), `creating table ${this.where}`);
    return true;
  }

  /**
   * Adds or replaces bans, batchSize elements per nft call (each one atomic).
   * A ban already present gets the new timeout. A network that overlaps another
   * one in its set cannot be held by an nftables interval set: it is left out,
   * the rest is added, and then a SentryError names what was refused.
   */
  /**
   * `fresh`: the sets were just flushed, so every element is new and one
   * `add` does (an element already there needs add, delete, add again to take
   * its new timeout).
   */
  async add(bans: NftBan[], onProgress?: (done: number, total: number) => void, fresh = false): Promise<void> {
    const byTarget = new Map<string, Item>();
    for (const b of bans) {
      const item = toItem(b);
      byTarget.delete(item.cidr.text); // the last one wins, in its own position
      byTarget.set(item.cidr.text, item);
    }
    const refused: Refusal[] = [];
    let items = [...byTarget.values()];
    if (items.some((i) => i.set === 'nets_v4' || i.set === 'nets_v6')) {
      const overlapping = await this.findOverlaps(items);
      refused.push(...overlapping);
      const out = new Set(overlapping.map((r) => r.target));
      items = items.filter((i) => !out.has(i.cidr.text));
    }
    const total = items.length;
    let done = 0;
    for (let i = 0; i < total; i += this.batchSize) {
      const chunk = items.slice(i, i + this.batchSize);
      await this.addChunk(chunk, refused, fresh);
      done += chunk.length;
      onProgress?.(done, total);
    }
    if (refused.length > 0) {
      const shown = refused
        .slice(0, 3)
        .map((r) => `${r.target} (${r.reason})`)
        .join(', ');
      const more = refused.length > 3 ? ` and ${refused.length - 3} more` : '';
      throw new SentryError(
        'KERNEL',
        `nft: table ${this.where} refused ${refused.length} of ${plural(byTarget.size, 'ban')}: ${shown}${more}; the other ${byTarget.size - refused.length} went in`,
        'an nftables interval set cannot hold overlapping networks: unban one of them, or ban only the wider network',
      );
    }
  }

  /**
   * Adds plain addresses (no networks) to a freshly flushed bans_v4/bans_v6
   * set, `seconds[i]` to live (0 = permanent). The batch text is written
   * directly: a million bans at start make no object per element.
   */
  async addAddresses(set: 'bans_v4' | 'bans_v6', targets: readonly string[], seconds: readonly number[]): Promise<void> {
    for (let i = 0; i < targets.length; i += this.batchSize) {
      const elems: string[] = [];
      for (let j = i; j < Math.min(i + this.batchSize, targets.length); j++) {
        const t = targets[j]!;
        if (!/^[0-9a-fA-F.:]+$/.test(t)) throw new SentryError('USAGE', `nft: ${JSON.stringify(t)} is not a plain address`);
        const secs = Math.ceil(seconds[j]!);
        elems.push(secs > 0 ? `{"elem":{"val":"${t}","timeout":${secs}}}` : `"${t}"`);
      }
      const element = `{"family":"${FAMILY}","table":${JSON.stringify(this.table)},"name":"${set}","elem":[${elems.join(',')}]}`;
      const r = await this.run(['-j', '-f', '-'], `{"nftables":[{"add":{"element":${element}}}]}`);
      if (r.exitCode !== 0) throw this.failure(`adding ${plural(elems.length, 'element')} to table ${this.where}`, r.stderr || `exit status ${r.exitCode}`);
    }
  }

  /** Removes elements; absent ones are not an error. Returns how many were there and are now gone. */
  async remove(targets: string[]): Promise<number> {
    const byTarget = new Map<string, Item>();
    for (const t of targets) {
      const item = toItem({ target: t, timeoutSeconds: 0 });
      byTarget.set(item.cidr.text, item);
    }
    const items = [...byTarget.values()];
    const present = new Map<SetName, Set<string>>();
    let removed = 0;
    for (let i = 0; i < items.length; i += this.batchSize) {
      const chunk = items.slice(i, i + this.batchSize);
      const tried = await this.apply(this.elementCommands('delete', chunk, false));
      if (!tried) {
        removed += chunk.length;
        continue;
      }
      // the kernel says ENOENT for a missing address; nft itself checks interval sets first
      if (!/No such file or directory|element does not exist/i.test(tried.stderr))
        throw this.failure(`deleting ${plural(chunk.length, 'element')} from table ${this.where}`, tried.stderr);
      // Some are absent, and nft does not say which: look them up, then delete the present
      // ones behind an "add" so that one expiring meanwhile cannot fail the batch.
      const there: Item[] = [];
      for (const item of chunk) {
        let names = present.get(item.set);
        if (!names) {
          names = new Set((await this.listSet(item.set, true)).map((e) => e.target));
          present.set(item.set, names);
        }
        if (names.has(item.cidr.text)) there.push(item);
      }
      if (there.length === 0) continue;
      await this.applyOrThrow(
        [...this.elementCommands('add', there, false), ...this.elementCommands('delete', there, false)],
        `deleting ${plural(there.length, 'element')} from table ${this.where}`,
      );
      removed += there.length;
    }
    return removed;
  }

  /** Empties all four sets (no-op when the table is not there). */
  async flush(): Promise<void> {
    if (!(await this.exists())) return;
    await this.applyOrThrow(
      SETS.map((s) => ({ flush: { set: { family: FAMILY, table: this.table, name: s.name } } })),
      `flushing the sets of table ${this.where}`,
    );
  }

  /** Every element of the four sets, with the seconds it has left. */
  async list(): Promise<NftEntry[]> {
    if (!(await this.exists())) {
      throw new SentryError('KERNEL', `nft: table ${this.where} does not exist`, 'sentry-xdp creates it when it attaches; see `nft list tables`');
    }
    const objects = parseOutput(await this.query(['-j', 'list', 'table', FAMILY, this.table], `listing table ${this.where}`));
    const entries: NftEntry[] = [];
    for (const o of objects) {
      const set = field(o, 'set');
      if (!set || field(set, 'table') !== this.table || !SETS.some((s) => s.name === field(set, 'name'))) continue;
      entries.push(...entriesOf(field(set, 'elem')));
    }
    return entries;
  }

  /** Whether our table is there and whole (sets, chain and rules as ensure() makes them), in one terse listing. */
  async health(): Promise<'missing' | 'damaged' | 'whole'> {
    const r = await this.run(['-j', '-t', 'list', 'table', FAMILY, this.table], '');
    if (r.exitCode !== 0) {
      if (/No such file or directory/i.test(r.stderr)) return 'missing';
      throw this.failure(`reading table ${this.where}`, r.stderr || `exit status ${r.exitCode}`);
    }
    return isComplete(readTableState(parseOutput(r.stdout), this.table)) ? 'whole' : 'damaged';
  }

  /**
   * True when every one of these bans is in its set. nft 1.0.6 has no "get"
   * in JSON, so this is `nft get element` with arguments: the elements are
   * canonical addresses validated by toItem, never raw input.
   */
  async hasAll(targets: readonly string[]): Promise<boolean> {
    const bySet = new Map<SetName, string[]>();
    for (const t of targets) {
      const item = toItem({ target: t, timeoutSeconds: 0 });
      bySet.set(item.set, [...(bySet.get(item.set) ?? []), item.cidr.text]);
    }
    for (const [set, elems] of bySet) {
      const r = await this.run(['get', 'element', FAMILY, this.table, set, `{ ${elems.join(', ')} }`], '');
      if (r.exitCode === 0) continue;
      if (/No such file or directory|element does not exist/i.test(r.stderr)) return false;
      throw this.failure(`looking up ${plural(elems.length, 'element')} in table ${this.where}`, r.stderr || `exit status ${r.exitCode}`);
    }
    return true;
  }

  /** Deletes our table (no-op when it is not there). */
  async drop(): Promise<void> {
    if (!(await this.exists())) return;
    await this.applyOrThrow([{ delete: { table: { family: FAMILY, name: this.table } } }], `deleting table ${this.where}`);
  }

  // ---- internals ----

  private get where(): string {
    return `${FAMILY} ${this.table}`;
  }

  /** The elements of one set; empty when the table or set is missing and `missingIsEmpty`. */
  private async listSet(name: SetName, missingIsEmpty: boolean): Promise<NftEntry[]> {
    const r = await this.run(['-j', 'list', 'set', FAMILY, this.table, name], '');
    if (r.exitCode !== 0) {
      if (missingIsEmpty && /No such file or directory/i.test(r.stderr)) return [];
      throw this.failure(`listing set ${name} of table ${this.where}`, r.stderr);
    }
    const set = parseOutput(r.stdout)
      .map((o) => field(o, 'set'))
      .find((s) => s !== undefined);
    return entriesOf(set === undefined ? undefined : field(set, 'elem'));
  }

  /** Networks that overlap one already in their set, or a wider one in this same request. */
  private async findOverlaps(items: Item[]): Promise<Refusal[]> {
    const refused: Refusal[] = [];
    for (const name of ['nets_v4', 'nets_v6'] as const) {
      const wanted = items.filter((i) => i.set === name);
      if (wanted.length === 0) continue;
      const existing = (await this.listSet(name, false))
        .map((e) => intervalOf(e.target))
        .filter((x): x is Interval => x !== undefined)
        .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
      const fresh: Interval[] = [];
      for (const item of wanted) {
        const iv = cidrInterval(item.cidr);
        const hit = lastStartingAtOrBefore(existing, iv.end);
        if (hit && hit.end >= iv.start && !(hit.start === iv.start && hit.end === iv.end)) {
          refused.push({ target: item.cidr.text, reason: `overlaps ${hit.text} already in ${name}` });
        } else {
          fresh.push(iv);
        }
      }
      // Among the new ones the wider network wins: sort by start, wider first, and sweep.
      fresh.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.end > b.end ? -1 : a.end < b.end ? 1 : 0));
      let cover: Interval | undefined;
      for (const iv of fresh) {
        if (cover && iv.start <= cover.end) {
          refused.push({ target: iv.text, reason: `overlaps ${cover.text} in the same request` });
        } else if (!cover || iv.end > cover.end) {
          cover = iv;
        }
      }
    }
    return refused;
  }

  /**
   * One atomic batch: "add" (a no-op when present), "delete", "add with the new
   * timeout". If the kernel refuses an element, split to find it, keep the rest.
   */
  private async addChunk(chunk: Item[], refused: Refusal[], fresh: boolean): Promise<void> {
    const cmds = fresh
      ? this.elementCommands('add', chunk, true)
      : [...this.elementCommands('add', chunk, false), ...this.elementCommands('delete', chunk, false), ...this.elementCommands('add', chunk, true)];
    const failed = await this.apply(cmds);
    if (!failed) return;
    if (!/overlap|conflicting interval|File exists/i.test(failed.stderr)) {
      throw this.failure(`adding ${plural(chunk.length, 'element')} to table ${this.where}`, failed.stderr);
    }
    if (chunk.length === 1) {
      refused.push({ target: chunk[0]!.cidr.text, reason: firstErrorLine(failed.stderr) });
      return;
    }
    const half = Math.ceil(chunk.length / 2);
    await this.addChunk(chunk.slice(0, half), refused, fresh);
    await this.addChunk(chunk.slice(half), refused, fresh);
  }

  /** One `verb element` command per set the items fall in. */
  private elementCommands(verb: 'add' | 'delete', items: Item[], withTimeout: boolean): Cmd[] {
    const bySet = new Map<SetName, Json[]>();
    for (const item of items) {
      const list = bySet.get(item.set) ?? [];
      list.push(elementJson(item, withTimeout));
      bySet.set(item.set, list);
    }
    return SETS.filter((s) => bySet.has(s.name)).map((s) => ({
      [verb]: { element: { family: FAMILY, table: this.table, name: s.name, elem: bySet.get(s.name)! } },
    }));
  }

  /** Runs one JSON batch; returns the failure (stderr) or undefined. */
  private async apply(cmds: Cmd[]): Promise<{ stderr: string } | undefined> {
    const r = await this.run(['-j', '-f', '-'], JSON.stringify({ nftables: cmds }));
    return r.exitCode === 0 ? undefined : { stderr: r.stderr || `exit status ${r.exitCode}` };
  }

  private async applyOrThrow(cmds: Cmd[], what: string): Promise<void> {
    const failed = await this.apply(cmds);
    if (failed) throw this.failure(what, failed.stderr);
  }

  /** Runs a read-only nft command and returns its stdout. */
  private async query(args: string[], what: string): Promise<string> {
    const r = await this.run(args, '');
    if (r.exitCode !== 0) throw this.failure(what, r.stderr || `exit status ${r.exitCode}`);
    return r.stdout;
  }

  private failure(what: string, stderr: string): SentryError {
    const line = firstErrorLine(stderr);
    let hint = `look at the table with \`nft list table ${this.where}\``;
    if (/Operation not permitted|Permission denied/i.test(line)) hint = 'nftables needs root (CAP_NET_ADMIN): run sentry-xdp as root';
    else if (/Protocol not supported|Address family not supported/i.test(line)) hint = 'the kernel has no nf_tables: `modprobe nf_tables`';
    else if (/No such file or directory/i.test(line)) {
      hint = `table ${this.where} or one of its sets is missing (was the ruleset flushed?); sentry-xdp recreates it when it attaches`;
    }
    return new SentryError('KERNEL', `nft: ${what} failed: ${line}`, hint);
  }
}

// ---- pure helpers ----

function toItem(b: NftBan): Item {
  const cidr = parseCidr(b.target);
  if (typeof b.timeoutSeconds !== 'number' || !Number.isFinite(b.timeoutSeconds) || b.timeoutSeconds < 0) {
    throw new SentryError(
      'USAGE',
      `nft: timeout ${String(b.timeoutSeconds)} for ${cidr.text} is not a number of seconds`,
      'give 0 for permanent or a positive number of seconds',
    );
  }
  const exact = cidr.prefix === (cidr.family === 4 ? 32 : 128);
  const set: SetName = `${exact ? 'bans' : 'nets'}_v${cidr.family}`;
  return { cidr, set, timeout: Math.ceil(b.timeoutSeconds) };
}

/** "1.2.3.4", or {"prefix": {...}} for a network; with {"elem": {"val", "timeout"}} around it when it expires. */
function elementJson(item: Item, withTimeout: boolean): Json {
  const [addr] = item.cidr.text.split('/');
  const val: Json = item.set.startsWith('nets') ? { prefix: { addr: addr!, len: item.cidr.prefix } } : item.cidr.text;
  return withTimeout && item.timeout > 0 ? { elem: { val, timeout: item.timeout } } : val;
}

interface ChainState {
  type: unknown;
  hook: unknown;
  prio: unknown;
  policy: unknown;
}

interface TableState {
  sets: Map<string, { type: unknown; flags: unknown }>;
  chain: ChainState | undefined;
  rules: Json[][];
}

function readTableState(objects: Json[], table: string): TableState {
  const state: TableState = { sets: new Map(), chain: undefined, rules: [] };
  for (const o of objects) {
    const set = field(o, 'set');
    if (set && field(set, 'table') === table) {
      state.sets.set(String(field(set, 'name')), { type: field(set, 'type'), flags: field(set, 'flags') });
    }
    const chain = field(o, 'chain');
    if (chain && field(chain, 'table') === table && field(chain, 'name') === CHAIN) {
      state.chain = { type: field(chain, 'type'), hook: field(chain, 'hook'), prio: field(chain, 'prio'), policy: field(chain, 'policy') };
    }
    const rule = field(o, 'rule');
    if (rule && field(rule, 'table') === table && field(rule, 'chain') === CHAIN) {
      const expr = field(rule, 'expr');
      state.rules.push(Array.isArray(expr) ? expr : []);
    }
  }
  return state;
}

function setIsRight(spec: SetSpec, found: { type: unknown; flags: unknown } | undefined): boolean {
  return !!found && found.type === spec.type && Array.isArray(found.flags) && [...found.flags].sort().join() === [...spec.flags].sort().join();
}

function chainIsRight(c: ChainState | undefined): boolean {
  return !!c && c.type === 'filter' && c.hook === 'prerouting' && c.prio === PRIORITY_RAW && c.policy === 'accept';
}

function ruleExpr(s: SetSpec): Json[] {
  return [{ match: { op: '==', left: { payload: { protocol: s.protocol, field: 'saddr' } }, right: `@${s.name}` } }, { drop: null }];
}

/** A rule with no verdict that keeps conntrack on in this namespace (see the top of this file). */
const CT_RULE: Json[] = [{ match: { op: '==', left: { ct: { key: 'state' } }, right: 'untracked' } }];

function rules(): Json[][] {
  return [...SETS.map(ruleExpr), CT_RULE];
}

function isComplete(state: TableState): boolean {
  if (!SETS.every((s) => setIsRight(s, state.sets.get(s.name))) || !chainIsRight(state.chain)) return false;
  const want = rules()
    .map((r) => canonicalJson(r))
    .sort();
  const have = state.rules.map((r) => canonicalJson(r)).sort();
  return want.length === have.length && want.every((w, i) => w === have[i]);
}

/**
 * The batch that makes the table right: everything when it is missing; when it is
 * damaged, the chain's rules are rebuilt and wrong sets or a wrong chain replaced.
 */
function ensureCommands(table: string, current?: TableState): Cmd[] {
  const cmds: Cmd[] = [{ add: { table: { family: FAMILY, name: table } } }];
  if (current?.chain) {
    cmds.push({ flush: { chain: { family: FAMILY, table, name: CHAIN } } });
    if (!chainIsRight(current.chain)) cmds.push({ delete: { chain: { family: FAMILY, table, name: CHAIN } } });
  }
  for (const s of SETS) {
    const found = current?.sets.get(s.name);
    if (found && !setIsRight(s, found)) cmds.push({ delete: { set: { family: FAMILY, table, name: s.name } } });
  }
  for (const s of SETS) {
    cmds.push({ add: { set: { family: FAMILY, table, name: s.name, type: s.type, flags: s.flags } } });
  }
  cmds.push({ add: { chain: { family: FAMILY, table, name: CHAIN, type: 'filter', hook: 'prerouting', prio: PRIORITY_RAW, policy: 'accept' } } });
  for (const expr of rules()) cmds.push({ add: { rule: { family: FAMILY, table, chain: CHAIN, expr } } });
  return cmds;
}

/** Elements as nft prints them: "1.2.3.4", {"prefix"}, {"range"}, or {"elem": {"val", "timeout", "expires"}}. */
function entriesOf(elem: Json | undefined): NftEntry[] {
  if (!Array.isArray(elem)) return [];
  const out: NftEntry[] = [];
  for (const e of elem) {
    const wrapped = field(e, 'elem');
    const val = wrapped ? field(wrapped, 'val') : e;
    const target = valueText(val);
    if (target === undefined) continue;
    let expiresSeconds: number | null = null;
    if (wrapped) {
      const expires = field(wrapped, 'expires');
      const timeout = field(wrapped, 'timeout');
      if (typeof expires === 'number') expiresSeconds = expires;
      else if (typeof timeout === 'number') expiresSeconds = 0; // timed out, not yet collected
    }
    out.push({ target, expiresSeconds });
  }
  return out;
}

function valueText(val: Json | undefined): string | undefined {
  if (typeof val === 'string') return canonical(val);
  const prefix = field(val, 'prefix');
  if (prefix) return canonical(`${String(field(prefix, 'addr'))}/${String(field(prefix, 'len'))}`);
  const range = field(val, 'range');
  if (Array.isArray(range) && range.length === 2) return `${String(range[0])}-${String(range[1])}`;
  return undefined;
}

function canonical(text: string): string {
  try {
    return parseCidr(text).text;
  } catch {
    return text;
  }
}

interface Interval {
  start: bigint;
  end: bigint;
  text: string;
}

function cidrInterval(c: Cidr): Interval {
  const bits = BigInt(c.family === 4 ? 32 : 128);
  const start = BigInt(`0x${c.bytes.toString('hex')}`);
  return { start, end: start + (1n << (bits - BigInt(c.prefix))) - 1n, text: c.text };
}

/** "10.0.0.0/8", "8.8.8.8" or "10.0.0.5-10.0.0.9" as a closed interval. */
function intervalOf(text: string): Interval | undefined {
  try {
    const dash = text.indexOf('-');
    if (dash < 0) return cidrInterval(parseCidr(text));
    const a = cidrInterval(parseCidr(text.slice(0, dash)));
    const b = cidrInterval(parseCidr(text.slice(dash + 1)));
    return { start: a.start, end: b.end, text };
  } catch {
    return undefined;
  }
}

/** In intervals sorted by start, the last one starting at or before `x`. */
function lastStartingAtOrBefore(sorted: Interval[], x: bigint): Interval | undefined {
  let lo = 0;
  let hi = sorted.length - 1;
  let found: Interval | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]!.start <= x) {
      found = sorted[mid];
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

function parseOutput(stdout: string): Json[] {
  if (stdout.trim() === '') return [];
  let doc: Json;
  try {
    doc = JSON.parse(stdout) as Json;
  } catch {
    throw new SentryError('KERNEL', 'nft: its JSON output could not be read', 'check that `nft -j list tables` prints JSON (nftables built with JSON support)');
  }
  const list = field(doc, 'nftables');
  return Array.isArray(list) ? list : [];
}

function field(o: Json | undefined, key: string): Json | undefined {
  return o !== null && typeof o === 'object' && !Array.isArray(o) ? o[key] : undefined;
}

function canonicalJson(v: Json): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k]!)}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** nft's first error, without the "internal:0:0-0: Error:" location prefix. */
function firstErrorLine(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const line = lines.find((l) => /Error:/.test(l)) ?? lines[0] ?? 'no message from nft';
  return line.replace(/^.*?Error:\s*/, '');
}
