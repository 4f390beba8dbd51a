/**
 * The live-peer tracker (native/sentry_peers.c) through koffi: a thread in the
 * shim that keeps sentry_peers (address → its live conntrack entries, by role)
 * in step with the kernel's conntrack table, so a source with a real connection
 * is alerted as possibly spoofed and never banned: a responder (someone here
 * connected to it) at once, an originator of live TCP connections once they
 * have lasted PEER_SETTLE_NS. One tracker per process.
 */
import koffi from 'koffi';
import { SentryError } from '../errors.js';
import { Layout } from '../core/abi.js';
import { parseCidr } from '../core/addr.js';
import { artifactPath, errnoName } from './kernel.js';

type Fn = koffi.KoffiFunction;
interface PeersShim {
  start: Fn;
  stop: Fn;
  stats: Fn;
  lookup: Fn;
}

let shim: PeersShim | undefined;

function load(): PeersShim {
  if (shim) return shim;
  const lib = koffi.load(artifactPath('libsentry_shim.so', 'SENTRY_XDP_SHIM'));
  shim = {
    start: lib.func('int sx_peers_start(int peers_map_fd, const char *netns_path)'),
    stop: lib.func('int sx_peers_stop()'),
    stats: lib.func('int sx_peers_stats(void *out)'),
    lookup: lib.func('int sx_map_lookup(int fd, const void *key, void *val)'),
  };
  return shim;
}

/** The sentry_peers key of an address: 16 bytes, IPv4 as ::ffff:a.b.c.d. */
export function peerKey(address: string): Buffer {
  const { family, bytes, prefix } = parseCidr(address);
  if (prefix !== (family === 4 ? 32 : 128)) throw new SentryError('USAGE', `"${address}" is a network, not one address`);
  if (family === 6) return Buffer.from(bytes);
  const key = Buffer.alloc(16);
  key[10] = 0xff;
  key[11] = 0xff;
  bytes.copy(key, 12);
  return key;
}

/** What sentry_peers holds for an address (struct sx_peer). */
export interface PeerEntry {
  /** live conntrack entries in which it answered (orig dst / reply src) */
  responder: number;
  /** live (assured) TCP entries it opened (orig src / reply dst) */
  originator: number;
  /** CLOCK_MONOTONIC ns (kernelClockNs) when originator last rose from 0; meaningless while it is 0 */
  originatorSinceNs: bigint;
}

/** The sentry_peers entry of an address; all zero when the map has none. */
export function peerEntry(peersMapFd: number, address: string): PeerEntry {
  const { size, fields: f } = Layout.sx_peer;
  const val = Buffer.alloc(size);
  const rc = load().lookup(peersMapFd, peerKey(address), val) as number;
  if (rc === -2) return { responder: 0, originator: 0, originatorSinceNs: 0n };
  if (rc < 0) throw new SentryError('KERNEL', `reading sentry_peers: ${errnoName(rc)}`);
  return {
    responder: val.readUInt32LE(f.responder[0]),
    originator: val.readUInt32LE(f.originator[0]),
    originatorSinceNs: val.readBigUInt64LE(f.originator_since_ns[0]),
  };
}

function startHint(rc: number): string | undefined {
  switch (errnoName(rc)) {
    case 'EPERM':
    case 'EACCES':
      return 'reading conntrack needs CAP_NET_ADMIN: run sentry-xdp as root';
    case 'EPROTONOSUPPORT':
    case 'EOPNOTSUPP':
    case 'ENOENT':
      return 'the kernel has no ctnetlink: load it with `modprobe nf_conntrack_netlink`';
    case 'EBUSY':
      return 'this process already runs a peer tracker';
    default:
      return undefined;
  }
}

export interface PeerStats {
  /** conntrack events handled */
  events: number;
  /** full resyncs after the initial dump (every 5 minutes, and after lost events) */
  resyncs: number;
  /** addresses with a live connection in either role, i.e. what sentry_peers holds */
  peers: number;
  /** map writes that failed (map full?) and entries that could not be read */
  errors: number;
}

export class PeerTracker {
  private running = true;

  private constructor() {}

  /**
   * Starts the tracker; returns once sentry_peers holds the current conntrack
   * table. netnsPath (e.g. /run/netns/NAME) makes it read that namespace's table.
   */
  static start(peersMapFd: number, netnsPath?: string): PeerTracker {
    const rc = load().start(peersMapFd, netnsPath ?? null) as number;
    if (rc < 0) {
      const where = netnsPath ? ` in ${netnsPath}` : '';
      throw Object.assign(new SentryError('KERNEL', `conntrack: ${errnoName(rc)} starting the live-peer tracker${where}`, startHint(rc)), { errno: -rc });
    }
    return new PeerTracker();
  }

  stats(): PeerStats {
    const out = Buffer.alloc(32);
    const rc = load().stats(out) as number;
    if (rc < 0) throw new SentryError('KERNEL', `conntrack: ${errnoName(rc)} reading the live-peer tracker's counters`);
    const n = (i: number) => Number(out.readBigUInt64LE(i * 8));
    return { events: n(0), resyncs: n(1), peers: n(2), errors: n(3) };
  }

  /** Stops the thread (within a second); sentry_peers keeps what it holds. */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    load().stop();
  }
}
