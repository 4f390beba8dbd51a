/**
 * The kernel side, through koffi: our shim over libbpf (build/libsentry_shim.so)
 * and a few libc calls. Every shim call returns 0/count or -errno; this module
 * turns negatives into SentryError('KERNEL') with the errno name.
 */
import koffi from 'koffi';
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SentryError } from '../errors.js';
import { Layout, STAT_COUNT } from '../core/abi.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The checkout (or install) root: dist/src/adapters/ → ../../.. */
export const PACKAGE_ROOT = resolve(here, '..', '..', '..');

export function artifactPath(name: string, envVar: string): string {
  const p = process.env[envVar] ?? join(PACKAGE_ROOT, 'build', name);
  if (!existsSync(p)) {
    throw new SentryError('BUILD', `${p} is missing`, 'run `make build` in the sentry-xdp checkout first');
  }
  return p;
}

const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([name, num]) => [num as number, name]));
errnoNames.set(524, 'ENOTSUPP');

export function errnoName(neg: number): string {
  return errnoNames.get(-neg) ?? `errno ${-neg}`;
}

type Fn = koffi.KoffiFunction;
interface Shim {
  last_error: Fn;
  clock: Fn;
  bpffs_mount: Fn;
  is_bpffs: Fn;
  open: Fn;
  map_fd: Fn;
  prog_fd: Fn;
  adopted: Fn;
  close: Fn;
  attach: Fn;
  detach: Fn;
  link_info: Fn;
  xdp_query: Fn;
  stats_read: Fn;
  map_update: Fn;
  map_lookup: Fn;
  u32_store: Fn;
  map_delete: Fn;
  map_update_batch: Fn;
  map_delete_batch: Fn;
  filter_add: Fn;
  epoch_bump: Fn;
  map_dump: Fn;
  map_count: Fn;
  map_lookup_step: Fn;
  bans_sweep: Fn;
  map_histogram: Fn;
  percpu_sum: Fn;
  num_cpus: Fn;
  percpu_array_read: Fn;
  rb_open: Fn;
  rb_drain: Fn;
  rb_close: Fn;
  test_run: Fn;
  if_nametoindex: Fn;
  if_indextoname: Fn;
  umount2: Fn;
}

let shim: Shim | undefined;
const SxObj = koffi.opaque('sx_obj');
const SxRb = koffi.opaque('sx_rb');

function load(): Shim {
  if (shim) return shim;
  const lib = koffi.load(artifactPath('libsentry_shim.so', 'SENTRY_XDP_SHIM'));
  const libc = koffi.load('libc.so.6');
  const objPtr = koffi.pointer(SxObj);
  const rbPtr = koffi.pointer(SxRb);
  shim = {
    last_error: lib.func('int sx_last_error(_Out_ char *buf, int len)'),
    clock: lib.func('int64_t sx_clock_ns()'),
    bpffs_mount: lib.func('int sx_bpffs_mount(const char *dir)'),
    is_bpffs: lib.func('int sx_is_bpffs(const char *dir)'),
    open: lib.func('sx_open', 'int', ['const char *', 'const char *', 'int', koffi.out(koffi.pointer(objPtr))]),
    map_fd: lib.func('sx_map_fd', 'int', [objPtr, 'const char *']),
    prog_fd: lib.func('sx_prog_fd', 'int', [objPtr]),
    adopted: lib.func('sx_adopted', 'int', [objPtr]),
    close: lib.func('sx_close', 'void', [objPtr]),
    attach: lib.func('sx_attach', 'int', [objPtr, 'int', 'int', 'const char *', koffi.out(koffi.pointer('int'))]),
    detach: lib.func('int sx_detach(const char *pin)'),
    link_info: lib.func('int sx_link_info(const char *pin, _Out_ uint32_t *prog_id, _Out_ uint32_t *ifindex)'),
    xdp_query: lib.func('int sx_xdp_query(int ifindex, _Out_ uint32_t *prog_id, _Out_ uint32_t *mode)'),
    stats_read: lib.func('int sx_stats_read(int fd, uint32_t n, void *out)'),
    map_update: lib.func('int sx_map_update(int fd, const void *key, const void *val, uint64_t flags)'),
    map_lookup: lib.func('int sx_map_lookup(int fd, const void *key, void *val)'),
    map_delete: lib.func('int sx_map_delete(int fd, const void *key)'),
    map_update_batch: lib.func('int sx_map_update_batch(int fd, const void *keys, const void *vals, uint32_t count, uint32_t ks, uint32_t vs, uint64_t flags)'),
    map_delete_batch: lib.func('int sx_map_delete_batch(int fd, const void *keys, uint32_t count, uint32_t ks)'),
    filter_add: lib.func('int sx_filter_add(int fd, const void *keys, uint32_t count, uint32_t ks)'),
    epoch_bump: lib.func('int sx_epoch_bump(int fd)'),
    u32_store: lib.func('int sx_u32_store(int fd, uint32_t offset, uint32_t value)'),
    map_dump: lib.func('int sx_map_dump(int fd, void *keys, void *vals, uint32_t max, uint32_t ks, uint32_t vs)'),
    map_count: lib.func('int sx_map_count(int fd, uint32_t ks)'),
    map_lookup_step: lib.func('int sx_map_lookup_step(int fd, void *token, int first, void *keys, void *vals, uint32_t max, void *done)'),
    percpu_sum: lib.func('int sx_percpu_sum(int fd, uint32_t key, void *out)'),
    num_cpus: lib.func('int sx_num_cpus(void)'),
    percpu_array_read: lib.func('int sx_percpu_array_read(int fd, uint32_t n, uint32_t value_size, void *out)'),
    map_histogram: lib.func('int sx_map_histogram(int fd, uint32_t ks, uint32_t vs, uint32_t offset, void *counts)'),
    bans_sweep: lib.func('int sx_bans_sweep(int fd, uint32_t ks, uint32_t vs, uint64_t now, void *keys, void *vals, uint32_t max)'),
    rb_open: lib.func('sx_rb_open', 'int', ['int', koffi.out(koffi.pointer(rbPtr))]),
    rb_drain: lib.func('sx_rb_drain', 'int', [rbPtr, 'void *', 'uint32_t', 'uint32_t', 'int']),
    rb_close: lib.func('sx_rb_close', 'void', [rbPtr]),
    test_run: lib.func('int sx_test_run(int fd, const void *data, uint32_t len, uint32_t repeat, _Out_ uint32_t *retval, _Out_ uint32_t *duration)'),
    if_nametoindex: libc.func('unsigned int if_nametoindex(const char *name)'),
    if_indextoname: libc.func('char *if_indextoname(unsigned int index, _Out_ char *buf)'),
    umount2: libc.func('int umount2(const char *target, int flags)'),
  };
  return shim;
}

function lastError(): string {
  const buf = Buffer.alloc(4096);
  load().last_error(buf, buf.length);
  const text = buf.toString('utf8', 0, Math.max(0, buf.indexOf(0))).trim();
  const lines = text.split('\n').filter((l) => l.trim());
  return lines.slice(-3).join(' | ');
}

/** Throws SentryError('KERNEL') for a negative return, naming the operation. */
function check(rc: number, what: string, hint?: string): number {
  if (rc >= 0) return rc;
  const detail = lastError();
  throw Object.assign(new SentryError('KERNEL', `${what}: ${errnoName(rc)}${detail ? ` (${detail})` : ''}`, hint), { errno: -rc });
}

export function kernelClockNs(): bigint {
  const v = load().clock() as number | bigint;
  return typeof v === 'bigint' ? v : BigInt(v);
}

export function ifNameToIndex(name: string): number {
  return load().if_nametoindex(name) as number;
}

export function ifIndexToName(index: number): string | undefined {
  const buf = Buffer.alloc(16);
  const r = load().if_indextoname(index, buf);
  if (!r) return undefined;
  return buf.toString('utf8', 0, buf.indexOf(0));
}

export function isBpffs(dir: string): boolean {
  return load().is_bpffs(dir) === 1;
}

export function mountBpffs(dir: string): void {
  check(load().bpffs_mount(dir), `mounting bpffs on ${dir}`);
}

export function unmount(dir: string): void {
  load().umount2(dir, 0);
}

const AttachMode = { auto: 0, native: 1, generic: 2 } as const;
export type AttachModeName = keyof typeof AttachMode;
export const modeName = (m: number): string => (m === 1 ? 'native' : m === 2 ? 'generic' : m === 3 ? 'offload' : 'none');

/** XDP_ATTACHED_* from linux/if_link.h, as bpf_xdp_query reports it. */
export const xdpAttachedName = (m: number): string => ['none', 'native', 'generic', 'offload', 'multi'][m] ?? `mode ${m}`;

export function detachLink(pin: string): number {
  return load().detach(pin) as number;
}

export function linkInfo(pin: string): { progId: number; ifindex: number } | undefined {
  const progId = [0];
  const ifindex = [0];
  if ((load().link_info(pin, progId, ifindex) as number) < 0) return undefined;
  return { progId: progId[0]!, ifindex: ifindex[0]! };
}

export function xdpQuery(ifindex: number): { progId: number; mode: number } {
  const progId = [0];
  const mode = [0];
  check(load().xdp_query(ifindex, progId, mode), `querying XDP on ifindex ${ifindex}`);
  return { progId: progId[0]!, mode: mode[0]! };
}

/** A BPF map by fd, with fixed key and value sizes. */
export class BpfMap {
  /**
   * `filter`: the fd of the map's filter (sentry_ban_filter, sentry_list_filter),
   * whose bits every write sets before the entries go in: the XDP program
   * skips the map for a source whose bit is clear. `epoch`: the fd of
   * sentry_ban_epoch, raised after every write or delete (the program's
   * per-CPU cached bans of an older epoch are void).
   */
  constructor(
    readonly name: string,
    readonly fd: number,
    readonly keySize: number,
    readonly valueSize: number,
    private readonly filter?: number,
    private readonly epoch?: number,
  ) {}

  private mark(keys: Buffer, count: number): void {
    if (this.filter !== undefined) check(load().filter_add(this.filter, keys, count, this.keySize), `marking the filter of ${this.name}`);
  }

  private bump(): void {
    if (this.epoch !== undefined) check(load().epoch_bump(this.epoch), `raising the epoch of ${this.name}`);
  }

  update(key: Buffer, value: Buffer, flags = 0): void {
    this.mark(key, 1);
    try {
      check(load().map_update(this.fd, key, value, flags), `updating ${this.name}`);
    } finally {
      this.bump();
    }
  }
  /** Returns the value, or undefined when the key is absent. */
  lookup(key: Buffer): Buffer | undefined {
    const v = Buffer.alloc(this.valueSize);
    const rc = load().map_lookup(this.fd, key, v) as number;
    if (rc === -2) return undefined;
    check(rc, `reading ${this.name}`);
    return v;
  }
  /** Stores one u32 of entry 0 of an mmapable array atomically, leaving the value's other fields alone. */
  storeU32(offset: number, value: number): void {
    check(load().u32_store(this.fd, offset, value), `updating ${this.name}`);
  }
  /** Returns false when the key was absent. */
  delete(key: Buffer): boolean {
    const rc = load().map_delete(this.fd, key) as number;
    this.bump();
    if (rc === -2) return false;
    check(rc, `deleting from ${this.name}`);
    return true;
  }
  /** Writes `count` packed keys and values in one call (batched where the map allows). */
  updateBatch(keys: Buffer, values: Buffer, count: number, flags = 0): number {
    this.mark(keys, count);
    const rc = load().map_update_batch(this.fd, keys, values, count, this.keySize, this.valueSize, flags) as number;
    this.bump();
    return check(rc, `writing ${count} entries to ${this.name}`);
  }
  /** The same on a worker thread, so the caller can go on (e.g. parse the next chunk) meanwhile. */
  updateBatchAsync(keys: Buffer, values: Buffer, count: number, flags = 0): Promise<number> {
    this.mark(keys, count);
    return new Promise((res, rej) => {
      load().map_update_batch.async(this.fd, keys, values, count, this.keySize, this.valueSize, flags, (err: unknown, n: number) => {
        try {
          this.bump();
        } catch (e) {
          return rej(e);
        }
        if (err) return rej(err);
        try {
          res(check(n, `writing ${count} entries to ${this.name}`));
        } catch (e) {
          rej(e);
        }
      });
    });
  }
  deleteBatch(keys: Buffer, count: number): number {
    const rc = load().map_delete_batch(this.fd, keys, count, this.keySize) as number;
    this.bump();
    return check(rc, `deleting from ${this.name}`);
  }
  /** Every entry, packed: keys[i*keySize], values[i*valueSize]. */
  dump(max: number): { keys: Buffer; values: Buffer; count: number } {
    const keys = Buffer.alloc(max * this.keySize);
    const values = Buffer.alloc(max * this.valueSize);
    const count = check(load().map_dump(this.fd, keys, values, max, this.keySize, this.valueSize), `reading ${this.name}`);
    return { keys, values, count };
  }
  /**
   * Every entry, `size` at a time, in the same two buffers (copy what you keep).
   * Hash maps only; undefined for a map without batch lookup (use dump()).
   */
  chunks(size: number): Iterable<{ keys: Buffer; values: Buffer; count: number }> | undefined {
    const keys = Buffer.alloc(size * this.keySize);
    const values = Buffer.alloc(size * this.valueSize);
    const token = Buffer.alloc(64);
    const done = Buffer.alloc(4);
    const step = (first: boolean) => load().map_lookup_step(this.fd, token, first ? 1 : 0, keys, values, size, done) as number;
    const n0 = step(true);
    // EINVAL, EOPNOTSUPP, ENOTSUPP: no batch ops; ENOSPC: a bucket bigger than `size`
    if (n0 === -22 || n0 === -95 || n0 === -524 || n0 === -28) return undefined;
    const name = this.name;
    return (function* () {
      let n = check(n0, `reading ${name}`);
      for (;;) {
        const last = done.readInt32LE(0) !== 0;
        if (n) yield { keys, values, count: n };
        if (last) return;
        n = check(step(false), `reading ${name}`);
      }
    })();
  }
  count(): number {
    return check(load().map_count(this.fd, this.keySize), `counting ${this.name}`);
  }
  /** Entries counted by one byte of their value (e.g. the ban origin): [total, counts[256]]. */
  histogram(offset: number): { total: number; counts: Uint32Array } {
    const counts = new Uint32Array(256);
    const total = check(load().map_histogram(this.fd, this.keySize, this.valueSize, offset, counts), `counting ${this.name}`);
    return { total, counts };
  }
  /** Deletes entries whose first u64 (expires_ns) has passed; returns them packed. */
  sweepExpired(nowNs: bigint, max: number): { keys: Buffer; values: Buffer; count: number } {
    const keys = Buffer.alloc(max * this.keySize);
    const values = Buffer.alloc(max * this.valueSize);
    const rc = load().bans_sweep(this.fd, this.keySize, this.valueSize, nowNs, keys, values, max) as number;
    this.bump();
    const count = check(rc, `sweeping expired entries from ${this.name}`);
    return { keys, values, count };
  }
}

const MAP_SIZES: Record<string, [number, number]> = {
  sentry_protect_v4: [Layout.sx_lpm_v4.size, 1],
  sentry_protect_v6: [Layout.sx_lpm_v6.size, 1],
  sentry_services_v4: [Layout.sx_svc_v4.size, 1],
  sentry_services_v6: [Layout.sx_svc_v6.size, 1],
  sentry_peers: [16, Layout.sx_peer.size],
  sentry_offenders: [16, Layout.sx_offender.size],
  sentry_flood: [4, Layout.sx_flood.size],
  sentry_flood_ports: [4, 8],
  sentry_drops: [4, Layout.sx_dropslot.size], // per CPU: read with percpuArray(), never dump()
  sentry_info: [4, Layout.sx_info.size],
  sentry_bans_v4: [4, Layout.sx_ban.size],
  sentry_bans_v6: [16, Layout.sx_ban.size],
  sentry_ban_cidr_v4: [Layout.sx_lpm_v4.size, Layout.sx_ban.size],
  sentry_ban_cidr_v6: [Layout.sx_lpm_v6.size, Layout.sx_ban.size],
  sentry_allow_v4: [Layout.sx_lpm_v4.size, 1],
  sentry_allow_v6: [Layout.sx_lpm_v6.size, 1],
  sentry_ban_filter: [4, 8],
  sentry_hosts: [4, Layout.sx_host_slot.size],
  sentry_list_filter: [4, 8],
  sentry_ports: [4, 1],
  sentry_sources: [16, Layout.sx_source.size],
  sentry_sweeps: [16, Layout.sx_sweep.size],
  sentry_config: [4, Layout.sx_config.size],
  sentry_presence: [4, Layout.sx_presence.size],
  sentry_ttl_v4: [Layout.sx_lpm_v4.size, 8],
  sentry_ttl_v6: [Layout.sx_lpm_v6.size, 8],
  sentry_ratecap: [4, Layout.sx_ratecap.size],
  sentry_stats: [4, 8],
  sentry_port_probes: [4, 8],
};

/** The filter in front of each exact ban table and allow trie (bpf/sentry_shared.h). */
const FILTER_OF: Record<string, string> = {
  sentry_bans_v4: 'sentry_ban_filter',
  sentry_bans_v6: 'sentry_ban_filter',
  sentry_allow_v4: 'sentry_list_filter',
  sentry_allow_v6: 'sentry_list_filter',
};

/** The loaded (or adopted) sentry object: its program and maps. */
export class BpfObject {
  private handle: unknown;
  readonly adopted: boolean;
  readonly progFd: number;

  private constructor(handle: unknown) {
    this.handle = handle;
    this.adopted = load().adopted(handle) === 1;
    this.progFd = load().prog_fd(handle) as number;
  }

  /**
   * Loads objPath, or adopts what is pinned in pinDir. With no pinDir nothing is
   * pinned: the object lives as long as this process (tests, benchmarks).
   */
  static open(objPath: string, pinDir: string | null, opts: { frags?: boolean } = {}): BpfObject {
    const out = [null];
    check(
      load().open(objPath, pinDir, opts.frags ? 1 : 0, out),
      `loading ${objPath}`,
      pinDir ? `if ${pinDir} holds maps of an older version, run \`sentry-xdp detach --all\` first` : undefined,
    );
    return new BpfObject(out[0]);
  }

  mapFd(name: string): number {
    return check(load().map_fd(this.handle, name), `finding map ${name}`);
  }

  map(name: string): BpfMap {
    const sizes = MAP_SIZES[name];
    if (!sizes) throw new Error(`unknown map ${name}`);
    const filter = FILTER_OF[name];
    const epoch = name === 'sentry_bans_v4' || name === 'sentry_bans_v6' ? this.mapFd('sentry_ban_epoch') : undefined;
    return new BpfMap(name, this.mapFd(name), sizes[0], sizes[1], filter ? this.mapFd(filter) : undefined, epoch);
  }

  /** Attaches to ifindex and pins the link; returns the mode actually used. */
  attach(ifindex: number, mode: AttachModeName, linkPin: string): number {
    const out = [0];
    check(load().attach(this.handle, ifindex, AttachMode[mode], linkPin, out), `attaching XDP to ifindex ${ifindex}`);
    return out[0]!;
  }

  /** Per-CPU counters summed, for the given keys of a per-CPU u64 array. */
  readPercpu(map: string, keys: readonly number[]): bigint[] {
    const fd = this.mapFd(map);
    const one = Buffer.alloc(8);
    return keys.map((k) => {
      check(load().percpu_sum(fd, k, one), `reading ${map}`);
      return one.readBigUInt64LE(0);
    });
  }

  /** Keys 0..n-1 of a per-CPU array: every CPU's value, n * ncpu of `valueSize` bytes (a multiple of 8), key by key. */
  percpuArray(map: string, n: number, valueSize: number): { values: Buffer; ncpu: number } {
    const ncpu = check(load().num_cpus(), 'counting CPUs');
    const values = Buffer.alloc(n * ncpu * valueSize);
    check(load().percpu_array_read(this.mapFd(map), n, valueSize, values), `reading ${map}`);
    return { values, ncpu };
  }

  readStats(): bigint[] {
    const buf = Buffer.alloc(STAT_COUNT * 8);
    check(load().stats_read(this.mapFd('sentry_stats'), STAT_COUNT, buf), 'reading counters');
    return Array.from({ length: STAT_COUNT }, (_, i) => buf.readBigUInt64LE(i * 8));
  }

  testRun(packet: Buffer, repeat = 1): { retval: number; durationNs: number } {
    const retval = [0];
    const duration = [0];
    check(load().test_run(this.progFd, packet, packet.length, repeat, retval, duration), 'BPF_PROG_TEST_RUN');
    return { retval: retval[0]!, durationNs: duration[0]! };
  }

  close(): void {
    if (this.handle) load().close(this.handle);
    this.handle = null;
  }
}

/** A consumer of a BPF ring buffer that copies many records per call. */
export class RingBuffer {
  private handle: unknown;
  private readonly buf: Buffer;
  constructor(
    mapFd: number,
    readonly recordSize: number,
    readonly batch = 4096,
  ) {
    const out = [null];
    check(load().rb_open(mapFd, out), 'opening the ring buffer');
    this.handle = out[0];
    this.buf = Buffer.alloc(recordSize * batch);
  }

  /** Waits up to timeoutMs on a worker thread; resolves with the records copied. */
  drain(timeoutMs: number): Promise<{ buf: Buffer; count: number }> {
    return new Promise((res, rej) => {
      load().rb_drain.async(this.handle, this.buf, this.recordSize, this.batch, timeoutMs, (err: unknown, n: number) => {
        if (err) return rej(err);
        try {
          res({ buf: this.buf, count: check(n, 'draining the ring buffer') });
        } catch (e) {
          rej(e);
        }
      });
    });
  }

  /** Non-blocking drain on the calling thread. */
  drainNow(): { buf: Buffer; count: number } {
    const n = load().rb_drain(this.handle, this.buf, this.recordSize, this.batch, 0) as number;
    return { buf: this.buf, count: check(n, 'draining the ring buffer') };
  }

  close(): void {
    if (this.handle) load().rb_close(this.handle);
    this.handle = null;
  }
}
