/**
 * A sentry object loaded without pins, for BPF_PROG_TEST_RUN tests: reset()
 * empties every map and writes a known config and port table.
 */
import {
  DEST_HOST,
  DEST_NET,
  DROP_SLOTS,
  HOST_SLOTS_LOG,
  dataView,
  decodeEvent,
  encodeConfig,
  Layout,
  Origin,
  PORT_TCP,
  PORT_UDP,
  Stat,
  type AlertEvent,
  type KernelConfig,
} from '../../src/core/abi.js';
import { parseService } from '../../src/core/destinations.js';
import { lpmKey } from '../../src/daemon/allow-list.js';
import { hostSlots, serviceKeys } from '../../src/daemon/destinations.js';
import { Presence } from '../../src/daemon/presence.js';
import { peerKey } from '../../src/adapters/peers.js';
import { artifactPath, BpfObject, kernelClockNs, RingBuffer } from '../../src/adapters/kernel.js';
import { parseCidr } from '../../src/core/addr.js';
import { BanTable } from '../../src/daemon/ban-table.js';

export type Counter = keyof typeof Stat | 'SEEN';
export const XDP_DROP = 1;
export const XDP_PASS = 2;

const HOST_SLOTS = 1 << HOST_SLOTS_LOG;

const CLEARED_MAPS = [
  'sentry_offenders',
  'sentry_bans_v4',
  'sentry_bans_v6',
  'sentry_ban_cidr_v4',
  'sentry_ban_cidr_v6',
  'sentry_allow_v4',
  'sentry_allow_v6',
  'sentry_sources',
  'sentry_protect_v4',
  'sentry_protect_v6',
  'sentry_services_v4',
  'sentry_services_v6',
  'sentry_peers',
  'sentry_sweeps',
];

/** The fixture's own addresses (packets.ts sends to these by default): protected as this host's. */
const HOST_ADDRESSES = ['198.18.0.1', '2001:db8::1'];

function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('this test loads BPF programs and needs root: run `sudo make test`');
  }
}

export class KernelFixture {
  readonly obj: BpfObject;
  readonly rb: RingBuffer;

  constructor() {
    requireRoot();
    this.obj = BpfObject.open(artifactPath('sentry.bpf.o', 'SENTRY_XDP_BPF_OBJ'), null);
    this.rb = new RingBuffer(this.obj.mapFd('sentry_events'), Layout.sx_event.size, 1024);
  }

  reset(cfg: Partial<KernelConfig> = {}, ports: { tcp?: number[]; udp?: number[] } = {}): void {
    this.obj.map('sentry_presence').update(Buffer.alloc(4), Buffer.alloc(Layout.sx_presence.size));
    this.obj.map('sentry_ratecap').update(Buffer.alloc(4), Buffer.alloc(16));
    this.obj.map('sentry_flood').update(Buffer.alloc(4), Buffer.alloc(Layout.sx_flood.size));
    const words = Buffer.alloc(1024 * 4);
    for (let i = 0; i < 1024; i++) words.writeUInt32LE(i, i * 4);
    this.obj.map('sentry_flood_ports').updateBatch(words, Buffer.alloc(1024 * 8), 1024);
    const slots = Buffer.alloc(DROP_SLOTS * 4);
    for (let i = 0; i < DROP_SLOTS; i++) slots.writeUInt32LE(i, i * 4);
    const { ncpu } = this.obj.percpuArray('sentry_drops', 1, Layout.sx_dropslot.size);
    this.obj.map('sentry_drops').updateBatch(slots, Buffer.alloc(DROP_SLOTS * Layout.sx_dropslot.size * ncpu), DROP_SLOTS);
    for (const name of CLEARED_MAPS) {
      const m = this.obj.map(name);
      const { keys, count } = m.dump(4096);
      for (let i = 0; i < count; i++) m.delete(keys.subarray(i * m.keySize, (i + 1) * m.keySize));
    }
    this.obj.map('sentry_config').update(
      Buffer.alloc(4),
      encodeConfig({
        windowNs: 60_000_000_000n,
        banTtlNs: 3_600_000_000_000n,
        trigger: 0,
        blockTcp: true,
        blockUdp: true,
        enabled: true,
        ...cfg,
      }),
    );
    const keys = Buffer.alloc(65536 * 4);
    const vals = Buffer.alloc(65536);
    for (let p = 0; p < 65536; p++) keys.writeUInt32LE(p, p * 4);
    for (const p of ports.tcp ?? [1, 23, 111]) vals[p]! |= PORT_TCP;
    for (const p of ports.udp ?? [7, 161]) vals[p]! |= PORT_UDP;
    this.obj.map('sentry_ports').updateBatch(keys, vals, 65536);
    for (const a of HOST_ADDRESSES) this.protect(a, DEST_HOST);
    // this host's addresses in their slots too, as Destinations writes them (other DEST_HOST entries: the trie alone)
    const slotKeys = Buffer.alloc(HOST_SLOTS * 4);
    for (let i = 0; i < HOST_SLOTS; i++) slotKeys.writeUInt32LE(i, i * 4);
    this.obj.map('sentry_hosts').updateBatch(slotKeys, hostSlots(HOST_ADDRESSES.map((a) => parseCidr(a))), HOST_SLOTS);
    this.events();
  }

  /** A protected destination: this host's address (DEST_HOST) or a network behind it (DEST_NET). */
  protect(cidr: string, scope: number = DEST_NET): void {
    const c = parseCidr(cidr);
    this.obj.map(c.family === 4 ? 'sentry_protect_v4' : 'sentry_protect_v6').update(lpmKey(c), Buffer.from([scope]));
  }

  /** A service in a protected network ("198.19.0.10:143/tcp"): never a tripwire. */
  service(text: string): void {
    const s = parseService(text);
    new Presence(this.obj).raise(s.net.family === 4 ? 'svc_v4' : 'svc_v6'); // as Destinations does before it inserts
    for (const k of serviceKeys(s)) this.obj.map(s.net.family === 4 ? 'sentry_services_v4' : 'sentry_services_v6').update(k, Buffer.from([1]));
  }

  /**
   * An address with live connections as the conntrack follower records them:
   * `responder` entries it answered, `originator` TCP entries it opened, the
   * latter for `originatorSeconds` so far.
   */
  peer(address: string, p: { responder?: number; originator?: number; originatorSeconds?: number } = { responder: 1 }): void {
    const v = Buffer.alloc(Layout.sx_peer.size);
    v.writeUInt32LE(p.responder ?? 0, Layout.sx_peer.fields.responder[0]);
    v.writeUInt32LE(p.originator ?? 0, Layout.sx_peer.fields.originator[0]);
    v.writeBigUInt64LE(kernelClockNs() - BigInt(p.originatorSeconds ?? 0) * 1_000_000_000n, Layout.sx_peer.fields.originator_since_ns[0]);
    this.obj.map('sentry_peers').update(peerKey(address), v);
  }

  /** A manual ban straight into the kernel table; ttlSeconds null = permanent, negative = already lapsed. */
  ban(target: string, ttlSeconds: number | null): void {
    const now = kernelClockNs();
    new BanTable(this.obj).add(parseCidr(target), {
      expiresNs: ttlSeconds === null ? 0n : now + BigInt(ttlSeconds) * 1_000_000_000n,
      createdNs: now,
      drops: 0n,
      port: 0,
      proto: 0,
      kind: 0,
      origin: Origin.MANUAL,
    });
  }

  /** Counters by name; SEEN is derived (passed + dropped), as status shows it. */
  stats(): Record<Counter, bigint> {
    const raw = this.obj.readStats();
    const s = Object.fromEntries(Object.entries(Stat).map(([k, i]) => [k, raw[i] ?? 0n])) as Record<keyof typeof Stat, bigint>;
    return { SEEN: s.PASSED + s.DROPPED, ...s };
  }

  /** Runs one packet; returns the verdict and the counters that moved. */
  run(pkt: Buffer): { verdict: number; delta: Partial<Record<Counter, number>> } {
    const before = this.stats();
    const { retval } = this.obj.testRun(pkt);
    const after = this.stats();
    const delta: Partial<Record<Counter, number>> = {};
    for (const k of Object.keys(after) as Counter[]) {
      const d = Number(after[k] - before[k]);
      if (d) delta[k] = d;
    }
    return { verdict: retval, delta };
  }

  events(): AlertEvent[] {
    const out: AlertEvent[] = [];
    for (;;) {
      const { buf, count } = this.rb.drainNow();
      const dv = dataView(buf);
      for (let i = 0; i < count; i++) out.push(decodeEvent(dv, i * Layout.sx_event.size));
      if (count === 0) return out;
    }
  }

  close(): void {
    this.rb.close();
    this.obj.close();
  }
}
