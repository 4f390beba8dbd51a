/**
 * The gateway's kernel state: the pinned sentry object (program and maps), the
 * links on each interface, the config and watched-port maps. Everything that
 * outlives the daemon lives here, in bpffs.
 */
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pinRootStep, SYS_BPF, type PinRootState } from '../adapters/paths.js';
import { ABI_VERSION, encodeConfig, FEAT_CONNTRACK, FEAT_FRAGS, Layout, PORT_TCP, PORT_UDP, Stat } from '../core/abi.js';
import type { Cidr } from '../core/addr.js';
import type { Config } from '../core/config.js';
import { lpmKey } from './allow-list.js';
import type { WatchSet } from '../core/watch.js';
import { SentryError } from '../errors.js';
import {
  artifactPath,
  BpfObject,
  kernelClockNs,
  detachLink,
  errnoName,
  ifIndexToName,
  ifNameToIndex,
  isBpffs,
  linkInfo,
  modeName,
  mountBpffs,
  unmount,
  xdpAttachedName,
  xdpQuery,
  type AttachModeName,
} from '../adapters/kernel.js';

export interface AttachedIface {
  name: string;
  ifindex: number;
  progId: number;
  mode: string;
  stale: boolean; // the link outlived its interface
}

/** What is at pinRoot now (src/adapters/paths.ts pinRootStep decides what to do with it). */
function pinRootState(pinRoot: string): PinRootState {
  if (existsSync(pinRoot)) {
    if (!statSync(pinRoot).isDirectory()) return { kind: 'not-dir' };
    if (isBpffs(pinRoot)) return { kind: 'bpffs' };
    const names = readdirSync(pinRoot).sort();
    return names.length ? { kind: 'files', names } : { kind: 'empty' };
  }
  let up = dirname(pinRoot);
  while (!existsSync(up) && up !== dirname(up)) up = dirname(up);
  if (isBpffs(up)) return { kind: 'missing', under: 'bpffs' };
  const sysBpf = up === SYS_BPF && statSync(up).isDirectory() && readdirSync(up).length === 0;
  return { kind: 'missing', under: sysBpf ? 'sys-bpf' : 'other' };
}

/** Throws, touching nothing, when pinRoot cannot be a pin root (a directory with files, not on bpffs). */
export function checkPinRoot(pinRoot: string): void {
  pinRootStep(pinRoot, pinRootState(resolve(pinRoot)));
}

/** Makes sure pinRoot is a directory on bpffs, mounting bpffs where it is missing (as xdp-tools do). */
function ensureBpffs(pinRoot: string): void {
  const dir = resolve(pinRoot);
  const step = pinRootStep(pinRoot, pinRootState(dir));
  if (step === 'use') return;
  if (step === 'mount-sys-bpf') mountBpffs(SYS_BPF);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (step === 'mount') mountBpffs(dir);
}

/**
 * Loads the program as multi-buffer XDP with conntrack lookups, and falls back,
 * in that order, to a plain (single-buffer) program where the kernel has no
 * xdp.frags, and to the build without conntrack where it lacks the XDP
 * conntrack kfuncs (SENTRY_XDP_NO_CONNTRACK=1 asks for that one); records what
 * it loaded in sentry_info. Adopts what is pinned after checking its ABI.
 */
function loadProgram(pinRoot: string): BpfObject {
  const adopting = existsSync(join(pinRoot, 'prog'));
  const forced = process.env.SENTRY_XDP_BPF_OBJ;
  const objects =
    process.env.SENTRY_XDP_NO_CONNTRACK === '1'
      ? [['sentry_noct.bpf.o', 0] as const]
      : [['sentry.bpf.o', FEAT_CONNTRACK] as const, ['sentry_noct.bpf.o', 0] as const];
  const tries = (forced ? objects.slice(0, 1) : objects).flatMap(([name, feat]) => [
    { name, features: feat | FEAT_FRAGS },
    { name, features: feat },
  ]);
  let obj: BpfObject | undefined;
  let features = 0;
  let first: unknown;
  for (const t of adopting ? tries.slice(0, 1) : tries) {
    try {
      obj = BpfObject.open(artifactPath(t.name, 'SENTRY_XDP_BPF_OBJ'), pinRoot, { frags: (t.features & FEAT_FRAGS) !== 0 });
      features = t.features;
      break;
    } catch (e) {
      first ??= e;
    }
  }
  if (!obj) throw first;
  const info = obj.map('sentry_info');
  const key = Buffer.alloc(4);
  if (!obj.adopted) {
    const v = Buffer.alloc(Layout.sx_info.size);
    v.writeUInt32LE(ABI_VERSION, Layout.sx_info.fields.abi_version[0]);
    v.writeUInt32LE(features, Layout.sx_info.fields.features[0]);
    info.update(key, v);
    return obj;
  }
  const abi = info.lookup(key)?.readUInt32LE(Layout.sx_info.fields.abi_version[0]) ?? 0;
  if (abi !== ABI_VERSION) {
    obj.close();
    throw new SentryError(
      'KERNEL',
      `${pinRoot} holds the maps of another sentry-xdp version (ABI ${abi}, this one is ${ABI_VERSION})`,
      'run `sentry-xdp detach --all` to remove them (the bans in the history store come back at the next attach), then attach again',
    );
  }
  return obj;
}

export class Gateway {
  readonly obj: BpfObject;
  readonly linksDir: string;

  private constructor(
    readonly pinRoot: string,
    obj: BpfObject,
  ) {
    this.obj = obj;
    this.linksDir = join(pinRoot, 'links');
  }

  /** Loads the program and pins it, or adopts the one already pinned. */
  static open(pinRoot: string): Gateway {
    ensureBpffs(pinRoot);
    const gw = new Gateway(pinRoot, loadProgram(pinRoot));
    if (!existsSync(gw.linksDir)) mkdirSync(gw.linksDir, { mode: 0o700 });
    return gw;
  }

  /** What the loaded program can do (sentry_info, written when it was loaded). */
  features(): number {
    return this.obj.map('sentry_info').lookup(Buffer.alloc(4))?.readUInt32LE(Layout.sx_info.fields.features[0]) ?? 0;
  }

  /** Adopts what is pinned, without loading anything; undefined when nothing is. */
  static adopt(pinRoot: string): Gateway | undefined {
    if (!existsSync(join(pinRoot, 'prog'))) return undefined;
    return Gateway.open(pinRoot);
  }

  writeConfig(cfg: Config): void {
    const buf = encodeConfig({
      windowNs: BigInt(cfg.scan_window) * 1_000_000_000n,
      banTtlNs: BigInt(cfg.ban_ttl) * 1_000_000_000n,
      trigger: cfg.scan_trigger,
      blockTcp: cfg.block_tcp === 1,
      blockUdp: cfg.block_udp === 1,
      enabled: true,
      maxBansPerMin: cfg.max_auto_bans_per_minute,
      // with no protected network (the default: this host only) there is nothing to sweep, and nothing to pay
      sweepTrigger: cfg.protect.networks.length ? cfg.sweep_trigger : 0,
      pressurePerSec: cfg.flood.pressure,
      alertsPerSec: cfg.flood.alerts_per_second,
    });
    const key = Buffer.alloc(4);
    this.obj.map('sentry_config').update(key, buf);
  }

  /** Replaces the per-CIDR TTL rules the program uses for automatic bans. */
  writeTtlRules(rules: ReadonlyArray<{ net: Cidr; ttl: number }>): void {
    for (const fam of [4, 6] as const) {
      const m = this.obj.map(fam === 4 ? 'sentry_ttl_v4' : 'sentry_ttl_v6');
      const { keys, count } = m.dump(8192);
      const want = rules.filter((r) => r.net.family === fam);
      const wantKeys = new Set(want.map((r) => lpmKey(r.net).toString('hex')));
      for (let i = 0; i < count; i++) {
        const k = keys.subarray(i * m.keySize, (i + 1) * m.keySize);
        if (!wantKeys.has(k.toString('hex'))) m.delete(Buffer.from(k));
      }
      for (const r of want) {
        const v = Buffer.alloc(8);
        v.writeBigUInt64LE(BigInt(r.ttl) * 1_000_000_000n);
        m.update(lpmKey(r.net), v);
      }
    }
  }

  /** Writes the whole watched-port table in one batch. */
  writePorts(watch: WatchSet): void {
    const keys = Buffer.alloc(65536 * 4);
    const vals = Buffer.alloc(65536);
    for (let p = 0; p < 65536; p++) keys.writeUInt32LE(p, p * 4);
    for (const p of watch.tcp) vals[p]! |= PORT_TCP;
    for (const p of watch.udp) vals[p]! |= PORT_UDP;
    this.obj.map('sentry_ports').updateBatch(keys, vals, 65536);
  }

  linkPin(iface: string): string {
    return join(this.linksDir, iface);
  }

  /** Our live link on iface, if sentry-xdp is attached there. */
  attachedTo(iface: string): AttachedIface | undefined {
    const ifindex = ifNameToIndex(iface);
    const pin = this.linkPin(iface);
    if (!ifindex || !existsSync(pin)) return undefined;
    const info = linkInfo(pin);
    if (!info || info.ifindex !== ifindex) return undefined;
    return { name: iface, ifindex, progId: info.progId, mode: xdpAttachedName(xdpQuery(ifindex).mode), stale: false };
  }

  /** Attaches to one interface; returns the mode used. */
  attach(iface: string, mode: AttachModeName): AttachedIface {
    const ifindex = ifNameToIndex(iface);
    if (!ifindex) {
      throw new SentryError('NO_INTERFACE', `no such interface: ${iface}`, 'list interfaces with `ip link`');
    }
    const pin = this.linkPin(iface);
    if (existsSync(pin)) {
      const ours = this.attachedTo(iface);
      if (ours) {
        throw new SentryError(
          'ALREADY_ATTACHED',
          `${iface} already has sentry-xdp attached (program id ${ours.progId})`,
          `run \`sentry-xdp detach ${iface}\` first, or \`sentry-xdp status\` to see it`,
        );
      }
      detachLink(pin); // stale: the interface it was made for is gone
    }
    const q = xdpQuery(ifindex);
    if (q.progId) {
      throw new SentryError(
        'ALREADY_ATTACHED',
        `${iface} already runs another XDP program (id ${q.progId}, ${xdpAttachedName(q.mode)} mode)`,
        `remove it first (\`ip link set dev ${iface} xdp off\`), or attach sentry-xdp elsewhere`,
      );
    }
    let used: number;
    try {
      used = this.obj.attach(ifindex, mode, pin);
    } catch (e) {
      const errno = (e as { errno?: number }).errno;
      if (mode === 'native' && (errno === 95 || errno === 22)) {
        throw new SentryError('KERNEL', `${iface}: the driver has no native XDP (${errnoName(-errno)})`, 'use --mode generic or --mode auto');
      }
      throw e;
    }
    const info = linkInfo(pin);
    return { name: iface, ifindex, progId: info?.progId ?? 0, mode: modeName(used), stale: false };
  }

  interfaces(): AttachedIface[] {
    return listInterfaces(this.linksDir);
  }

  stats(): Record<string, bigint> {
    const raw = this.obj.readStats();
    const out: Record<string, bigint> = {};
    for (const [name, idx] of Object.entries(Stat)) out[name] = raw[idx] ?? 0n;
    return { SEEN: out.PASSED! + out.DROPPED!, ...out };
  }

  /** Bans whose expiry has not passed, in the four ban maps. */
  bansInForce(): { v4: number; v6: number; cidr4: number; cidr6: number } {
    const now = kernelClockNs();
    const live = (name: string, max: number): number => {
      const m = this.obj.map(name);
      const { values, count } = m.dump(max);
      let n = 0;
      for (let i = 0; i < count; i++) {
        const exp = values.readBigUInt64LE(i * Layout.sx_ban.size);
        if (exp === 0n || exp > now) n++;
      }
      return n;
    };
    const sizeOf = (name: string) => Math.max(1, this.obj.map(name).count());
    return {
      v4: live('sentry_bans_v4', sizeOf('sentry_bans_v4')),
      v6: live('sentry_bans_v6', sizeOf('sentry_bans_v6')),
      cidr4: live('sentry_ban_cidr_v4', sizeOf('sentry_ban_cidr_v4')),
      cidr6: live('sentry_ban_cidr_v6', sizeOf('sentry_ban_cidr_v6')),
    };
  }

  close(): void {
    this.obj.close();
  }
}

/** Detaches one interface by its pinned link; false when it was not attached. */
export function detachIface(pinRoot: string, iface: string): boolean {
  const pin = join(pinRoot, 'links', iface);
  if (!existsSync(pin)) return false;
  const rc = detachLink(pin);
  if (rc < 0 && existsSync(pin)) {
    throw new SentryError('KERNEL', `detaching ${iface}: ${errnoName(rc)}`);
  }
  return true;
}

export function listInterfaces(linksDir: string): AttachedIface[] {
  if (!existsSync(linksDir)) return [];
  return readdirSync(linksDir)
    .sort()
    .map((name) => {
      const info = linkInfo(join(linksDir, name));
      const ifindex = info?.ifindex ?? 0;
      const current = ifindex ? ifIndexToName(ifindex) : undefined;
      let mode = 'unknown';
      if (ifindex && current) {
        try {
          mode = xdpAttachedName(xdpQuery(ifindex).mode);
        } catch {
          mode = 'unknown';
        }
      }
      return { name, ifindex, progId: info?.progId ?? 0, mode, stale: !current };
    });
}

/** What sentry-xdp pins in a pin root besides links/: the program, and its maps (all named sentry_*). */
const ours = (name: string): boolean => name === 'prog' || name.startsWith('sentry_');
/** What the kernel puts in every fresh bpffs (bpf_preload's iterators); they cannot be unlinked. */
const PRELOADED = new Set(['maps.debug', 'progs.debug']);

/**
 * Removes every link, the program and the maps from pinRoot, then pinRoot itself
 * (unmounting it when sentry-xdp mounted bpffs there). Bans are gone after this.
 * Only what sentry-xdp pinned is removed: other pins in the same bpffs, and
 * anything outside bpffs, are left alone.
 */
export function removeAll(pinRoot: string): string[] {
  const dir = resolve(pinRoot);
  if (!existsSync(dir) || !isBpffs(dir)) return []; // nothing of ours can be pinned outside bpffs
  const detached: string[] = [];
  const linksDir = join(dir, 'links');
  if (existsSync(linksDir)) {
    for (const name of readdirSync(linksDir)) {
      detachLink(join(linksDir, name));
      if (existsSync(join(linksDir, name))) unlinkSync(join(linksDir, name));
      detached.push(name);
    }
    rmdirSync(linksDir);
  }
  for (const name of readdirSync(dir)) if (ours(name)) unlinkSync(join(dir, name));
  const left = readdirSync(dir).filter((n) => !PRELOADED.has(n));
  if (left.length) return detached; // someone else's pins live here too
  // a bpffs of its own (sentry-xdp mounted it) goes with it; the system's /sys/fs/bpf stays
  if (dir !== SYS_BPF && dir !== '/' && statSync(dir).dev !== statSync(dirname(dir)).dev) unmount(dir);
  if (dir !== SYS_BPF) rmdirSync(dir);
  return detached;
}
