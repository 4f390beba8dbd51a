/**
 * The TypeScript mirror of bpf/sentry_shared.h. Offsets are written out once
 * here; test/unit/abi.test.ts compares them with offsetof() from the C header
 * (build/abi_dump), so the two cannot drift apart silently.
 */
export const ABI_VERSION = 4;

export const Stat = {
  PASSED: 0,
  DROPPED: 1,
  UNPARSED: 2,
  NON_IP: 3,
  FRAGMENTS: 4,
  ALLOWED: 5,
  PROBE_SYN: 6,
  PROBE_FIN: 7,
  PROBE_NULL: 8,
  PROBE_XMAS: 9,
  PROBE_UNKNOWN: 10,
  PROBE_UDP: 11,
  ALERTS: 12,
  BANS_ADDED: 13,
  BAN_TABLE_FULL: 14,
  RB_LOST: 15,
  EXPIRED_HITS: 16,
  LOCAL_SOCKET: 17,
  NEVER_BAN: 18,
  BAN_CAPPED: 19,
  NOT_PROTECTED: 20,
  SERVICE: 21,
  CONNTRACK: 22,
  LIVE_PEER: 23,
  PROBE_FRAG: 24,
  PROBE_ACK: 25,
  PROBE_MAIMON: 26,
  PROBE_SWEEP: 27,
  PROBE_V6CHAIN: 28,
  EVASION_DROPPED: 29,
  V6_CHAIN_LONG: 30,
  BANS_DEFERRED: 31,
  ALERTS_SUMMARISED: 32,
} as const;
export const STAT_COUNT = 33;
export type StatName = keyof typeof Stat;

export const PORT_TCP = 0x01;
export const PORT_UDP = 0x02;
export const Origin = { AUTO: 1, MANUAL: 2, IMPORTED: 3, FLEET: 4 } as const;
/** The origins by name (as history records them) and back. */
export const ORIGIN_CODE: Readonly<Record<'auto' | 'manual' | 'imported' | 'fleet', number>> = {
  auto: Origin.AUTO,
  manual: Origin.MANUAL,
  imported: Origin.IMPORTED,
  fleet: Origin.FLEET,
};
export const ORIGIN_NAME: Readonly<Record<number, 'auto' | 'manual' | 'imported' | 'fleet'>> = { 1: 'auto', 2: 'manual', 3: 'imported', 4: 'fleet' };
export const EV_F_BANNED = 0x01;
export const EV_F_BAN_FAILED = 0x02;
export const EV_F_NEVER_BAN = 0x04;
export const EV_F_CAPPED = 0x08;
export const EV_F_LIVE_PEER = 0x10;
/** Values of the protected-destination tries: why a destination is protected. */
/** SX_HOST_SLOTS_LOG: sentry_hosts has 2^8 slots. */
export const HOST_SLOTS_LOG = 8;

/** sx_filter_bit(): the bit (or slot) of a 32-bit fold of an address among 2^log. */
export function filterBit(fold: number, log: number): number {
  return Number(((BigInt(fold >>> 0) * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn) >> BigInt(64 - log));
}

export const DEST_HOST = 1;
export const DEST_NET = 2;
/** sx_info feature bits. */
export const FEAT_CONNTRACK = 0x01;
export const FEAT_FRAGS = 0x02;
/** Capacity of the kernel's maps: SX_MAX_* and SX_DROP_SLOTS (test/unit/abi.test.ts checks them against the header). */
export const MapSize = {
  bansV4: 1_200_000,
  bansV6: 262_144,
  cidrBans: 65_536,
  allow: 16_384,
  sources: 131_072,
  protect: 16_384,
  services: 16_384,
  peers: 262_144,
  offenders: 65_536,
  dropSlots: 16_384,
} as const;
/** Per-CPU drop counters of address bans (sentry_drops), SX_DROP_SLOTS. */
export const DROP_SLOTS = MapSize.dropSlots;
/** Values of the allow tries. */
export const ALLOW = 1;
export const NEVER_BAN = 2;

/** [offset, size] of each field, by struct. */
export const Layout = {
  sx_config: {
    size: 40,
    fields: {
      window_ns: [0, 8],
      ban_ttl_ns: [8, 8],
      trigger: [16, 4],
      block_tcp: [20, 1],
      block_udp: [21, 1],
      enabled: [22, 1],
      max_bans_per_min: [24, 4],
      sweep_trigger: [28, 4],
      pressure_per_sec: [32, 4],
      alerts_per_sec: [36, 4],
    },
  },
  sx_flood: { size: 24, fields: { second_start_ns: [0, 8], crossings: [8, 4], crossings_prev: [12, 4], alerts: [16, 4] } },
  sx_ratecap: { size: 16, fields: { minute_start_ns: [0, 8], bans: [8, 4] } },
  sx_presence: {
    size: 32,
    fields: { allow_v4: [0, 4], allow_v6: [4, 4], cidr_v4: [8, 4], cidr_v6: [12, 4], wide_v4: [16, 4], wide_v6: [20, 4], svc_v4: [24, 4], svc_v6: [28, 4] },
  },
  sx_host_slot: { size: 24, fields: { addr: [0, 16], scope: [16, 1] } },
  sx_ban: {
    size: 32,
    fields: { expires_ns: [0, 8], created_ns: [8, 8], drops: [16, 8], port: [24, 2], proto: [26, 1], kind: [27, 1], origin: [28, 1] },
  },
  sx_lpm_v4: { size: 8, fields: { prefixlen: [0, 4], addr: [4, 4] } },
  sx_lpm_v6: { size: 20, fields: { prefixlen: [0, 4], addr: [4, 16] } },
  sx_source: {
    size: 32,
    fields: { window_start_ns: [0, 8], last_ns: [8, 8], probes: [16, 4], alerted: [20, 4], banned: [24, 4], first_port: [28, 2], multi_port: [30, 2] },
  },
  sx_event: {
    size: 72,
    fields: {
      ts_ns: [0, 8],
      expires_ns: [8, 8],
      addr: [16, 16],
      ifindex: [32, 4],
      probes: [36, 4],
      port: [40, 2],
      family: [42, 2],
      type: [44, 1],
      proto: [45, 1],
      kind: [46, 1],
      tcp_flags: [47, 1],
      flags: [48, 1],
      dscope: [49, 1],
      daddr: [56, 16],
    },
  },
  sx_info: { size: 8, fields: { abi_version: [0, 4], features: [4, 4] } },
  sx_sweep: { size: 80, fields: { window_start_ns: [0, 8], bits: [8, 64], hosts: [72, 4], alerted: [76, 4] } },
  sx_peer: { size: 16, fields: { responder: [0, 4], originator: [4, 4], originator_since_ns: [8, 8] } },
  sx_offender: { size: 16, fields: { ttl_ns: [0, 8], until_ns: [8, 8] } },
  sx_dropslot: { size: 40, fields: { addr: [0, 16], drops: [16, 8], expires_ns: [24, 8], epoch: [32, 8] } },
  sx_svc_v4: { size: 12, fields: { prefixlen: [0, 4], proto: [4, 1], port: [6, 2], addr: [8, 4] } },
  sx_svc_v6: { size: 24, fields: { prefixlen: [0, 4], proto: [4, 1], port: [6, 2], addr: [8, 16] } },
} as const;

const F = {
  cfg: Layout.sx_config.fields,
  ban: Layout.sx_ban.fields,
  ev: Layout.sx_event.fields,
};

export interface KernelConfig {
  windowNs: bigint;
  banTtlNs: bigint;
  trigger: number;
  blockTcp: boolean;
  blockUdp: boolean;
  enabled: boolean;
  maxBansPerMin?: number; // 0 or absent = no cap
  sweepTrigger?: number; // distinct protected hosts that make a sweep; 0 or absent = off
  pressurePerSec?: number; // trigger crossings a second above which a ban needs two ports or a sweep; 0 or absent = never
  alertsPerSec?: number; // alerts without a ban sent one by one each second; 0 or absent = all
}

export function encodeConfig(c: KernelConfig): Buffer {
  const b = Buffer.alloc(Layout.sx_config.size);
  b.writeBigUInt64LE(c.windowNs, F.cfg.window_ns[0]);
  b.writeBigUInt64LE(c.banTtlNs, F.cfg.ban_ttl_ns[0]);
  b.writeUInt32LE(c.trigger, F.cfg.trigger[0]);
  b.writeUInt8(c.blockTcp ? 1 : 0, F.cfg.block_tcp[0]);
  b.writeUInt8(c.blockUdp ? 1 : 0, F.cfg.block_udp[0]);
  b.writeUInt8(c.enabled ? 1 : 0, F.cfg.enabled[0]);
  b.writeUInt32LE(c.maxBansPerMin ?? 0, F.cfg.max_bans_per_min[0]);
  b.writeUInt32LE(c.sweepTrigger ?? 0, F.cfg.sweep_trigger[0]);
  b.writeUInt32LE(c.pressurePerSec ?? 0, F.cfg.pressure_per_sec[0]);
  b.writeUInt32LE(c.alertsPerSec ?? 0, F.cfg.alerts_per_sec[0]);
  return b;
}

export interface BanValue {
  expiresNs: bigint; // kernel clock (CLOCK_MONOTONIC ns); 0n = permanent
  createdNs: bigint;
  drops: bigint;
  port: number;
  proto: number;
  kind: number;
  origin: number;
}

export function encodeBan(v: BanValue, out = Buffer.alloc(Layout.sx_ban.size), at = 0): Buffer {
  out.writeBigUInt64LE(v.expiresNs, at + F.ban.expires_ns[0]);
  out.writeBigUInt64LE(v.createdNs, at + F.ban.created_ns[0]);
  out.writeBigUInt64LE(v.drops, at + F.ban.drops[0]);
  out.writeUInt16LE(v.port, at + F.ban.port[0]);
  out.writeUInt8(v.proto, at + F.ban.proto[0]);
  out.writeUInt8(v.kind, at + F.ban.kind[0]);
  out.writeUInt8(v.origin, at + F.ban.origin[0]);
  return out;
}

export function decodeBan(b: Buffer, at = 0): BanValue {
  return {
    expiresNs: b.readBigUInt64LE(at + F.ban.expires_ns[0]),
    createdNs: b.readBigUInt64LE(at + F.ban.created_ns[0]),
    drops: b.readBigUInt64LE(at + F.ban.drops[0]),
    port: b.readUInt16LE(at + F.ban.port[0]),
    proto: b.readUInt8(at + F.ban.proto[0]),
    kind: b.readUInt8(at + F.ban.kind[0]),
    origin: b.readUInt8(at + F.ban.origin[0]),
  };
}

export interface AlertEvent {
  tsNs: number; // CLOCK_MONOTONIC ns (bpf_ktime_get_coarse_ns) (a double: exact for 104 days of uptime, then to a few ns)
  expiresNs: number; // 0 = none or permanent
  source: string; // "198.18.0.2", "2001:db8::2"
  destination: string; // the address probed
  dscope: number; // DEST_HOST or DEST_NET
  ifindex: number;
  probes: number;
  port: number;
  family: number;
  type: number;
  proto: number;
  kind: number;
  tcpFlags: number;
  flags: number;
}

const TWO32 = 2 ** 32;
const hex4 = (v: number) => v.toString(16);

/** IPv6 text of 8 big-endian 16-bit groups, with the longest zero run folded. */
function v6Text(groups: number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.map(hex4).join(':');
  return `${groups.slice(0, best).map(hex4).join(':')}::${groups
    .slice(best + bestLen)
    .map(hex4)
    .join(':')}`;
}

/**
 * Decodes one struct sx_event. Hot path (a million events a second): reads
 * through a DataView, allocates nothing but the result and the address text.
 */
function addrText(dv: DataView, a: number): string {
  const mapped = dv.getUint32(a, true) === 0 && dv.getUint32(a + 4, true) === 0 && dv.getUint32(a + 8, false) === 0xffff;
  return mapped
    ? `${dv.getUint8(a + 12)}.${dv.getUint8(a + 13)}.${dv.getUint8(a + 14)}.${dv.getUint8(a + 15)}`
    : v6Text(Array.from({ length: 8 }, (_, i) => dv.getUint16(a + i * 2, false)));
}

export function decodeEvent(dv: DataView, at = 0): AlertEvent {
  const source = addrText(dv, at + F.ev.addr[0]);
  return {
    tsNs: dv.getUint32(at + F.ev.ts_ns[0] + 4, true) * TWO32 + dv.getUint32(at + F.ev.ts_ns[0], true),
    expiresNs: dv.getUint32(at + F.ev.expires_ns[0] + 4, true) * TWO32 + dv.getUint32(at + F.ev.expires_ns[0], true),
    source,
    destination: addrText(dv, at + F.ev.daddr[0]),
    dscope: dv.getUint8(at + F.ev.dscope[0]),
    ifindex: dv.getUint32(at + F.ev.ifindex[0], true),
    probes: dv.getUint32(at + F.ev.probes[0], true),
    port: dv.getUint16(at + F.ev.port[0], true),
    family: dv.getUint16(at + F.ev.family[0], true),
    type: dv.getUint8(at + F.ev.type[0]),
    proto: dv.getUint8(at + F.ev.proto[0]),
    kind: dv.getUint8(at + F.ev.kind[0]),
    tcpFlags: dv.getUint8(at + F.ev.tcp_flags[0]),
    flags: dv.getUint8(at + F.ev.flags[0]),
  };
}

export function dataView(b: Buffer): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}
