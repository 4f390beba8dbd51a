/**
 * Packet builder for BPF_PROG_TEST_RUN rows: each call returns a whole frame.
 * Checksums are left zero: the XDP program never reads them.
 */
import { parseCidr } from '../../src/core/addr.js';

export const TH = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 } as const;

export interface PacketSpec {
  src: string;
  dst?: string;
  proto: 'tcp' | 'udp' | 'icmp' | number;
  dport?: number;
  sport?: number;
  flags?: number; // TCP flags byte
  vlans?: number[]; // VLAN ids, outermost first (802.1ad outer when two)
  ipOptionsWords?: number; // IPv4 options, in 4-byte words (IHL = 5 + this)
  fragOffset?: number; // IPv4/IPv6 fragment offset in 8-byte units
  moreFragments?: boolean;
  v6Ext?: Array<'hop' | 'dst' | 'routing' | 'frag'>; // extension headers before L4
  truncateTo?: number; // cut the frame to this many bytes
  l4Bytes?: number; // keep only this many bytes of the L4 header (a tiny first fragment); the IP length says so
  payload?: number; // bytes of data after the L4 header
  icmpType?: number; // ICMP/ICMPv6 type (default echo request)
  etherType?: number; // override (e.g. ARP 0x0806)
}

const IPPROTO: Record<string, number> = { tcp: 6, udp: 17, icmp: 1 };

function l4(spec: PacketSpec): { proto: number; bytes: Buffer } {
  const proto = typeof spec.proto === 'number' ? spec.proto : IPPROTO[spec.proto]!;
  if (proto === 6) {
    const b = Buffer.alloc(20);
    b.writeUInt16BE(spec.sport ?? 40000, 0);
    b.writeUInt16BE(spec.dport ?? 80, 2);
    b.writeUInt32BE(1, 4);
    b[12] = 5 << 4;
    b[13] = spec.flags ?? TH.SYN;
    b.writeUInt16BE(1024, 14);
    return { proto, bytes: b };
  }
  if (proto === 17) {
    const b = Buffer.alloc(8 + 4);
    b.writeUInt16BE(spec.sport ?? 40000, 0);
    b.writeUInt16BE(spec.dport ?? 53, 2);
    b.writeUInt16BE(b.length, 4);
    return { proto, bytes: b };
  }
  return { proto, bytes: Buffer.from([spec.icmpType ?? 8, 0, 0, 0, 0, 1, 0, 1]) };
}

/** The L4 bytes as the spec shapes them: cut short (tiny fragment), or with data after the header. */
function l4Shaped(spec: PacketSpec, family: 4 | 6): { proto: number; bytes: Buffer } {
  const v6Icmp = family === 6 && spec.proto === 'icmp';
  const { proto, bytes } = l4({ ...spec, ...(v6Icmp && spec.icmpType === undefined ? { icmpType: 128 } : {}) });
  const shaped = spec.l4Bytes !== undefined ? bytes.subarray(0, spec.l4Bytes) : Buffer.concat([bytes, Buffer.alloc(spec.payload ?? 0)]);
  return { proto: v6Icmp ? 58 : proto, bytes: shaped };
}

export function packet(spec: PacketSpec): Buffer {
  const src = parseCidr(spec.src);
  const dst = parseCidr(spec.dst ?? (src.family === 4 ? '198.18.0.1' : '2001:db8::1'));
  const { proto, bytes: l4b } = l4Shaped(spec, src.family);
  let l3: Buffer;
  if (src.family === 4) {
    const opt = spec.ipOptionsWords ?? 0;
    const h = Buffer.alloc(20 + Math.max(0, opt) * 4);
    h[0] = 0x40 | (5 + opt); // opt -1 makes a malformed IHL of 4
    const body = spec.fragOffset ? Buffer.alloc(spec.payload ?? 8) : l4b;
    h.writeUInt16BE(h.length + body.length, 2);
    const frag = ((spec.moreFragments ? 1 : 0) << 13) | (spec.fragOffset ?? 0);
    h.writeUInt16BE(frag, 6);
    h[8] = 64;
    h[9] = proto;
    src.bytes.copy(h, 12);
    dst.bytes.copy(h, 16);
    for (let i = 20; i < h.length; i++) h[i] = 1; // NOP options
    l3 = Buffer.concat([h, body]);
  } else {
    const exts = spec.v6Ext ?? [];
    const codes = { hop: 0, routing: 43, dst: 60, frag: 44 } as const; // each header 8 bytes
    const chain: Buffer[] = [];
    exts.forEach((e, i) => {
      const next = i + 1 < exts.length ? codes[exts[i + 1]!] : proto;
      const b = Buffer.alloc(8);
      b[0] = next;
      if (e === 'frag') b.writeUInt16BE(((spec.fragOffset ?? 0) << 3) | (spec.moreFragments ? 1 : 0), 2);
      chain.push(b);
    });
    const payload = Buffer.concat([...chain, spec.fragOffset ? Buffer.alloc(spec.payload ?? 8) : l4b]);
    const h = Buffer.alloc(40);
    h[0] = 0x60;
    h.writeUInt16BE(payload.length, 4);
    h[6] = exts.length ? codes[exts[0]!] : proto;
    h[7] = 64;
    src.bytes.copy(h, 8);
    dst.bytes.copy(h, 24);
    l3 = Buffer.concat([h, payload]);
  }
  const eth = Buffer.alloc(12);
  eth.set([0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2]);
  const tags: Buffer[] = [];
  const vlans = spec.vlans ?? [];
  vlans.forEach((id, i) => {
    const t = Buffer.alloc(4);
    t.writeUInt16BE(vlans.length === 2 && i === 0 ? 0x88a8 : 0x8100, 0);
    t.writeUInt16BE(id, 2);
    tags.push(t);
  });
  const type = Buffer.alloc(2);
  type.writeUInt16BE(spec.etherType ?? (src.family === 4 ? 0x0800 : 0x86dd));
  let frame = Buffer.concat([eth, ...tags, type, l3]);
  if (spec.truncateTo !== undefined) frame = frame.subarray(0, spec.truncateTo);
  // test_run wants at least an Ethernet header's worth; pad short frames only when not truncating
  if (spec.truncateTo === undefined && frame.length < 60) frame = Buffer.concat([frame, Buffer.alloc(60 - frame.length)]);
  return frame;
}
