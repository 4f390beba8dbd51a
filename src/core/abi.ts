/**
 * The TypeScript mirror of bpf/sentry_shared.h. Offsets are written out once
 * here; test/unit/abi.test.ts compares them with offsetof() from the C header
 * (build/abi_dump), so the two cannot drift apart silently.
 */
export const ABI_VERSION = 1;

export const Stat = {
  SEEN: 0,
  PASSED: 1,
  DROPPED: 2,
  UNPARSED: 3,
  NON_IP: 4,
  FRAGMENTS: 5,
  ALLOWED: 6,
  PROBE_SYN: 7,
  PROBE_FIN: 8,
  PROBE_NULL: 9,
  PROBE_XMAS: 10,
  PROBE_UNKNOWN: 11,
  PROBE_UDP: 12,
  ALERTS: 13,
  BANS_ADDED: 14,
  BAN_TABLE_FULL: 15,
  RB_LOST: 16,
  EXPIRED_HITS: 17,
  LOCAL_SOCKET: 18,
} as const;
export const STAT_COUNT = 19;
export type StatName = keyof typeof Stat;

export const PORT_TCP = 0x01;
export const PORT_UDP = 0x02;
export const Origin = { AUTO: 1, MANUAL: 2, IMPORTED: 3, FLEET: 4 } as const;
export const EV_ALERT = 1;
export const EV_F_BANNED = 0x01;
export const EV_F_BAN_FAILED = 0x02;

/** [offset, size] of each field, by struct. */
export const Layout = {
  sx_config: {
    size: 24,
    fields: { window_ns: [0, 8], ban_ttl_ns: [8, 8], trigger: [16, 4], block_tcp: [20, 1], block_udp: [21, 1], enabled: [22, 1] },
  },
  sx_ban: {
    size: 32,
    fields: { expires_ns: [0, 8], created_ns: [8, 8], drops: [16, 8], port: [24, 2], proto: [26, 1], kind: [27, 1], origin: [28, 1] },
  },
  sx_lpm_v4: { size: 8, fields: { prefixlen: [0, 4], addr: [4, 4] } },
  sx_lpm_v6: { size: 20, fields: { prefixlen: [0, 4], addr: [4, 16] } },
  sx_source: { size: 24, fields: { window_start_ns: [0, 8], last_ns: [8, 8], probes: [16, 4], alerted: [20, 4] } },
  sx_event: {
    size: 56,
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
    },
  },
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
}

export function encodeConfig(c: KernelConfig): Buffer {
  const b = Buffer.alloc(Layout.sx_config.size);
  b.writeBigUInt64LE(c.windowNs, F.cfg.window_ns[0]);
  b.writeBigUInt64LE(c.banTtlNs, F.cfg.ban_ttl_ns[0]);
  b.writeUInt32LE(c.trigger, F.cfg.trigger[0]);
  b.writeUInt8(c.blockTcp ? 1 : 0, F.cfg.block_tcp[0]);
  b.writeUInt8(c.blockUdp ? 1 : 0, F.cfg.block_udp[0]);
  b.writeUInt8(c.enabled ? 1 : 0, F.cfg.enabled[0]);
  return b;
}

export interface BanValue {
  expiresNs: bigint; // CLOCK_BOOTTIME; 0n = permanent
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
  tsNs: bigint;
  expiresNs: bigint;
  addr: Buffer; // 16 bytes, IPv4 as ::ffff:a.b.c.d
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

export function decodeEvent(b: Buffer, at = 0): AlertEvent {
  return {
    tsNs: b.readBigUInt64LE(at + F.ev.ts_ns[0]),
    expiresNs: b.readBigUInt64LE(at + F.ev.expires_ns[0]),
    addr: Buffer.from(b.subarray(at + F.ev.addr[0], at + F.ev.addr[0] + 16)),
    ifindex: b.readUInt32LE(at + F.ev.ifindex[0]),
    probes: b.readUInt32LE(at + F.ev.probes[0]),
    port: b.readUInt16LE(at + F.ev.port[0]),
    family: b.readUInt16LE(at + F.ev.family[0]),
    type: b.readUInt8(at + F.ev.type[0]),
    proto: b.readUInt8(at + F.ev.proto[0]),
    kind: b.readUInt8(at + F.ev.kind[0]),
    tcpFlags: b.readUInt8(at + F.ev.tcp_flags[0]),
    flags: b.readUInt8(at + F.ev.flags[0]),
  };
}
