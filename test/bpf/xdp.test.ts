/**
 * The XDP program through BPF_PROG_TEST_RUN: one row per behaviour, each a
 * packet built by a helper → the expected verdict → the counters that must move.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { DEST_HOST, DEST_NET, EV_F_BANNED, EV_F_CAPPED, EV_F_LIVE_PEER, EV_F_NEVER_BAN, NEVER_BAN, Origin, type KernelConfig } from '../../src/core/abi.js';
import { parseCidr } from '../../src/core/addr.js';
import { Kind } from '../../src/core/scan-kind.js';
import { kernelClockNs } from '../../src/adapters/kernel.js';
import { AllowList, lpmKey } from '../../src/daemon/allow-list.js';
import { BanTable } from '../../src/daemon/ban-table.js';
import { KernelFixture, XDP_DROP, XDP_PASS, type Counter } from '../helpers/kernel-fixture.js';
import { packet, TH, type PacketSpec } from '../helpers/packets.js';

interface Row {
  name: string;
  pkt: PacketSpec;
  verdict: number;
  counts: Partial<Record<Counter, number>>;
  setup?: (k: KernelFixture) => void;
  cfg?: Partial<KernelConfig>;
}

const A4 = '198.18.0.2';
const A6 = '2001:db8::2';
const probe = (counter: Counter): Partial<Record<Counter, number>> => ({
  SEEN: 1,
  DROPPED: 1,
  [counter]: 1,
  ALERTS: 1,
  BANS_ADDED: 1,
});
const pass = (extra: Partial<Record<Counter, number>> = {}): Partial<Record<Counter, number>> => ({ SEEN: 1, PASSED: 1, ...extra });

const ban = (target: string, ttlSeconds: number | null) => (k: KernelFixture) => k.ban(target, ttlSeconds);
const net = (cidr: string) => (k: KernelFixture) => k.protect(cidr);
const allow = (target: string) => (k: KernelFixture) => new AllowList(k.obj).add(parseCidr(target));
const neverBan = (target: string) => (k: KernelFixture) => new AllowList(k.obj).add(parseCidr(target), NEVER_BAN);

const rows: Row[] = [
  // probe kinds, IPv4
  {
    name: 'SYN to a watched TCP port is a SYN/Normal probe: banned at once',
    pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.SYN },
    verdict: XDP_DROP,
    counts: probe('PROBE_SYN'),
  },
  {
    name: 'SYN with ECN bits to a watched port is still SYN/Normal',
    pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.SYN | TH.ECE | TH.CWR },
    verdict: XDP_DROP,
    counts: probe('PROBE_SYN'),
  },
  { name: 'SYN to an unwatched port passes', pkt: { src: A4, proto: 'tcp', dport: 80, flags: TH.SYN }, verdict: XDP_PASS, counts: pass() },
  { name: 'SYN+ACK to a watched port is not a probe', pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.SYN | TH.ACK }, verdict: XDP_PASS, counts: pass() },
  { name: 'ACK to an unwatched port passes', pkt: { src: A4, proto: 'tcp', dport: 80, flags: TH.ACK }, verdict: XDP_PASS, counts: pass() },
  { name: 'RST alone passes (a stack answering)', pkt: { src: A4, proto: 'tcp', dport: 80, flags: TH.RST }, verdict: XDP_PASS, counts: pass() },
  {
    name: 'FIN without ACK on any port is a FIN probe',
    pkt: { src: A4, proto: 'tcp', dport: 80, flags: TH.FIN },
    verdict: XDP_DROP,
    counts: probe('PROBE_FIN'),
  },
  { name: 'FIN+ACK is a normal close', pkt: { src: A4, proto: 'tcp', dport: 80, flags: TH.FIN | TH.ACK }, verdict: XDP_PASS, counts: pass() },
  { name: 'NULL (no flags) is a NULL probe', pkt: { src: A4, proto: 'tcp', dport: 80, flags: 0 }, verdict: XDP_DROP, counts: probe('PROBE_NULL') },
  {
    name: 'FIN+PSH+URG is an XMAS probe',
    pkt: { src: A4, proto: 'tcp', dport: 80, flags: TH.FIN | TH.PSH | TH.URG },
    verdict: XDP_DROP,
    counts: probe('PROBE_XMAS'),
  },
  {
    name: 'SYN+FIN is an Unknown Type probe',
    pkt: { src: A4, proto: 'tcp', dport: 80, flags: TH.SYN | TH.FIN },
    verdict: XDP_DROP,
    counts: probe('PROBE_UNKNOWN'),
  },
  {
    name: 'SYN+RST is an Unknown Type probe',
    pkt: { src: A4, proto: 'tcp', dport: 80, flags: TH.SYN | TH.RST },
    verdict: XDP_DROP,
    counts: probe('PROBE_UNKNOWN'),
  },
  {
    name: 'SYN+FIN+ACK is an Unknown Type probe even with ACK',
    pkt: { src: A4, proto: 'tcp', dport: 80, flags: TH.SYN | TH.FIN | TH.ACK },
    verdict: XDP_DROP,
    counts: probe('PROBE_UNKNOWN'),
  },
  { name: 'PSH alone is an Unknown Type probe', pkt: { src: A4, proto: 'tcp', dport: 80, flags: TH.PSH }, verdict: XDP_DROP, counts: probe('PROBE_UNKNOWN') },
  { name: 'all six flags is an Unknown Type probe', pkt: { src: A4, proto: 'tcp', dport: 80, flags: 0x3f }, verdict: XDP_DROP, counts: probe('PROBE_UNKNOWN') },
  { name: 'UDP to a watched UDP port is a UDP probe', pkt: { src: A4, proto: 'udp', dport: 161 }, verdict: XDP_DROP, counts: probe('PROBE_UDP') },
  { name: 'UDP to an unwatched port passes', pkt: { src: A4, proto: 'udp', dport: 53 }, verdict: XDP_PASS, counts: pass() },
  { name: 'UDP to a port watched only for TCP passes', pkt: { src: A4, proto: 'udp', dport: 23 }, verdict: XDP_PASS, counts: pass() },
  { name: 'ICMP passes', pkt: { src: A4, proto: 'icmp' }, verdict: XDP_PASS, counts: pass() },
  // IPv6
  { name: 'IPv6 SYN to a watched port', pkt: { src: A6, proto: 'tcp', dport: 23, flags: TH.SYN }, verdict: XDP_DROP, counts: probe('PROBE_SYN') },
  { name: 'IPv6 XMAS', pkt: { src: A6, proto: 'tcp', dport: 443, flags: TH.FIN | TH.PSH | TH.URG }, verdict: XDP_DROP, counts: probe('PROBE_XMAS') },
  { name: 'IPv6 UDP probe', pkt: { src: A6, proto: 'udp', dport: 7 }, verdict: XDP_DROP, counts: probe('PROBE_UDP') },
  {
    name: 'IPv6 behind hop-by-hop, routing and destination options',
    pkt: { src: A6, proto: 'tcp', dport: 23, flags: TH.SYN, v6Ext: ['hop', 'routing', 'dst'] },
    verdict: XDP_DROP,
    counts: probe('PROBE_SYN'),
  },
  {
    name: 'IPv6 first fragment is classified',
    pkt: { src: A6, proto: 'tcp', dport: 23, flags: TH.SYN, v6Ext: ['frag'], moreFragments: true },
    verdict: XDP_DROP,
    counts: probe('PROBE_SYN'),
  },
  {
    name: 'IPv6 non-first fragment passes',
    pkt: { src: A6, proto: 'tcp', dport: 23, v6Ext: ['frag'], fragOffset: 10 },
    verdict: XDP_PASS,
    counts: pass({ FRAGMENTS: 1 }),
  },
  {
    name: 'IPv6 truncated in an extension header passes as unparsed',
    pkt: { src: A6, proto: 'tcp', dport: 23, v6Ext: ['hop'], truncateTo: 14 + 40 + 1 },
    verdict: XDP_PASS,
    counts: pass({ UNPARSED: 1 }),
  },
  // encapsulation and IPv4 header shapes
  { name: 'one VLAN tag', pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.SYN, vlans: [10] }, verdict: XDP_DROP, counts: probe('PROBE_SYN') },
  {
    name: 'two VLAN tags (802.1ad + 802.1Q)',
    pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.SYN, vlans: [100, 10] },
    verdict: XDP_DROP,
    counts: probe('PROBE_SYN'),
  },
  { name: 'IPv6 inside a VLAN', pkt: { src: A6, proto: 'udp', dport: 161, vlans: [10] }, verdict: XDP_DROP, counts: probe('PROBE_UDP') },
  {
    name: 'IPv4 with 12 bytes of options',
    pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.SYN, ipOptionsWords: 3 },
    verdict: XDP_DROP,
    counts: probe('PROBE_SYN'),
  },
  {
    name: 'IPv4 with the longest header (60 bytes)',
    pkt: { src: A4, proto: 'udp', dport: 161, ipOptionsWords: 10 },
    verdict: XDP_DROP,
    counts: probe('PROBE_UDP'),
  },
  {
    name: 'IPv4 first fragment (MF set) is classified',
    pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.SYN, moreFragments: true },
    verdict: XDP_DROP,
    counts: probe('PROBE_SYN'),
  },
  { name: 'IPv4 non-first fragment passes', pkt: { src: A4, proto: 'tcp', dport: 23, fragOffset: 185 }, verdict: XDP_PASS, counts: pass({ FRAGMENTS: 1 }) },
  // truncated and malformed
  { name: 'Ethernet header only', pkt: { src: A4, proto: 'tcp', truncateTo: 14 }, verdict: XDP_PASS, counts: pass({ UNPARSED: 1 }) },
  { name: 'IPv6 header cut short', pkt: { src: A6, proto: 'tcp', truncateTo: 14 + 39 }, verdict: XDP_PASS, counts: pass({ UNPARSED: 1 }) },
  {
    name: 'IPv4 header with IHL below 5',
    pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.SYN, ipOptionsWords: -1 },
    verdict: XDP_PASS,
    counts: pass({ UNPARSED: 1 }),
  },
  { name: 'VLAN tag cut short', pkt: { src: A4, proto: 'tcp', vlans: [10], truncateTo: 16 }, verdict: XDP_PASS, counts: pass({ UNPARSED: 1 }) },
  { name: 'IPv4 header cut short', pkt: { src: A4, proto: 'tcp', dport: 23, truncateTo: 14 + 19 }, verdict: XDP_PASS, counts: pass({ UNPARSED: 1 }) },
  {
    name: 'IPv4 options longer than the packet',
    pkt: { src: A4, proto: 'tcp', dport: 23, ipOptionsWords: 10, truncateTo: 14 + 40 },
    verdict: XDP_PASS,
    counts: pass({ UNPARSED: 1 }),
  },
  {
    name: 'TCP header cut short (after the bans check: counted, passed)',
    pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.SYN, truncateTo: 14 + 20 + 12 },
    verdict: XDP_PASS,
    counts: pass({ UNPARSED: 1 }),
  },
  { name: 'UDP header cut short', pkt: { src: A4, proto: 'udp', dport: 161, truncateTo: 14 + 20 + 6 }, verdict: XDP_PASS, counts: pass({ UNPARSED: 1 }) },
  { name: 'ARP is not IP', pkt: { src: A4, proto: 'tcp', etherType: 0x0806 }, verdict: XDP_PASS, counts: pass({ NON_IP: 1 }) },
  // allow list and bans
  {
    name: 'a banned address is dropped, any traffic',
    pkt: { src: A4, proto: 'tcp', dport: 80, flags: TH.ACK },
    setup: ban(A4, 600),
    verdict: XDP_DROP,
    counts: { SEEN: 1, DROPPED: 1 },
  },
  { name: 'a banned IPv6 address is dropped', pkt: { src: A6, proto: 'icmp' }, setup: ban(A6, 600), verdict: XDP_DROP, counts: { SEEN: 1, DROPPED: 1 } },
  { name: 'a permanent ban is dropped', pkt: { src: A4, proto: 'udp', dport: 53 }, setup: ban(A4, null), verdict: XDP_DROP, counts: { SEEN: 1, DROPPED: 1 } },
  {
    name: 'a CIDR ban (/24) drops its members',
    pkt: { src: '203.0.113.77', proto: 'tcp', dport: 80, flags: TH.ACK },
    setup: ban('203.0.113.0/24', 600),
    verdict: XDP_DROP,
    counts: { SEEN: 1, DROPPED: 1 },
  },
  {
    name: 'a CIDR ban does not drop its neighbours',
    pkt: { src: '203.0.114.1', proto: 'tcp', dport: 80, flags: TH.ACK },
    setup: ban('203.0.113.0/24', 600),
    verdict: XDP_PASS,
    counts: pass(),
  },
  {
    name: 'an IPv6 CIDR ban (/48) drops its members',
    pkt: { src: '2001:db8:5:ffff::9', proto: 'tcp', dport: 80, flags: TH.ACK },
    setup: ban('2001:db8:5::/48', 600),
    verdict: XDP_DROP,
    counts: { SEEN: 1, DROPPED: 1 },
  },
  {
    name: 'a banned source cannot slip through in fragments',
    pkt: { src: A4, proto: 'tcp', fragOffset: 100 },
    setup: ban(A4, 600),
    verdict: XDP_DROP,
    counts: { SEEN: 1, DROPPED: 1 },
  },
  {
    name: 'an expired ban passes (and the probe behind it is judged afresh)',
    pkt: { src: A4, proto: 'tcp', dport: 80, flags: TH.ACK },
    setup: ban(A4, -1),
    verdict: XDP_PASS,
    counts: pass({ EXPIRED_HITS: 1 }),
  },
  {
    name: 'the allow list beats an exact ban',
    pkt: { src: A4, proto: 'tcp', dport: 80, flags: TH.ACK },
    setup: (k) => {
      ban(A4, 600)(k);
      allow('198.18.0.0/24')(k);
    },
    verdict: XDP_PASS,
    counts: pass({ ALLOWED: 1 }),
  },
  {
    name: 'the allow list beats a CIDR ban (IPv6)',
    pkt: { src: A6, proto: 'tcp', dport: 80, flags: TH.ACK },
    setup: (k) => {
      ban('2001:db8::/32', 600)(k);
      allow(A6)(k);
    },
    verdict: XDP_PASS,
    counts: pass({ ALLOWED: 1 }),
  },
  {
    name: 'the allow list beats a probe: no alert, no ban',
    pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.SYN },
    setup: allow('198.18.0.2/32'),
    verdict: XDP_PASS,
    counts: pass({ ALLOWED: 1 }),
  },
  {
    name: 'a spoofed probe from a never-ban address (this host, a resolver) is alerted, not banned',
    pkt: { src: '198.18.0.53', proto: 'udp', dport: 161 },
    setup: neverBan('198.18.0.53'),
    verdict: XDP_PASS,
    counts: pass({ PROBE_UDP: 1, ALERTS: 1, NEVER_BAN: 1 }),
  },
  {
    name: 'the never-ban list beats an exact ban of a listed host',
    pkt: { src: '198.18.0.254', proto: 'tcp', dport: 80, flags: TH.ACK },
    setup: (k) => {
      ban('198.18.0.254', 600)(k);
      neverBan('198.18.0.254')(k);
    },
    verdict: XDP_PASS,
    counts: pass(),
  },
  {
    name: 'the never-ban list beats a ban (a fleet ban of our own gateway)',
    pkt: { src: '198.18.0.254', proto: 'tcp', dport: 80, flags: TH.ACK },
    setup: (k) => {
      ban('198.18.0.0/24', 600)(k);
      neverBan('198.18.0.254')(k);
    },
    verdict: XDP_PASS,
    counts: pass(),
  },
  // evasion: fragments, ACK-family scans, long IPv6 chains
  {
    name: 'a first fragment holding 8 bytes of TCP (nmap -f) is a fragment-evasion probe',
    pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.SYN, moreFragments: true, l4Bytes: 8 },
    verdict: XDP_DROP,
    counts: { ...probe('PROBE_FRAG'), EVASION_DROPPED: 1 },
  },
  {
    name: 'a first fragment holding 16 bytes of TCP (nmap -ff) is one too',
    pkt: { src: A4, proto: 'tcp', dport: 80, flags: TH.FIN, moreFragments: true, l4Bytes: 16 },
    verdict: XDP_DROP,
    counts: { ...probe('PROBE_FRAG'), EVASION_DROPPED: 1 },
  },
  {
    name: 'an IPv6 first fragment too short for the TCP header',
    pkt: { src: A6, proto: 'tcp', dport: 23, flags: TH.SYN, v6Ext: ['frag'], moreFragments: true, l4Bytes: 8 },
    verdict: XDP_DROP,
    counts: { ...probe('PROBE_FRAG'), EVASION_DROPPED: 1 },
  },
  {
    name: 'a first fragment too short for the UDP header',
    pkt: { src: A4, proto: 'udp', dport: 161, moreFragments: true, l4Bytes: 4 },
    verdict: XDP_DROP,
    counts: { ...probe('PROBE_FRAG'), EVASION_DROPPED: 1 },
  },
  {
    name: 'a later fragment overlapping the TCP header (RFC 1858, offset 8)',
    pkt: { src: A4, proto: 'tcp', fragOffset: 1 },
    verdict: XDP_DROP,
    counts: { ...probe('PROBE_FRAG'), EVASION_DROPPED: 1 },
  },
  {
    name: 'an IPv6 fragment overlapping the TCP header',
    pkt: { src: A6, proto: 'tcp', v6Ext: ['frag'], fragOffset: 2 },
    verdict: XDP_DROP,
    counts: { ...probe('PROBE_FRAG'), EVASION_DROPPED: 1 },
  },
  {
    name: 'an evasion fragment to a destination we do not protect is dropped, not alerted',
    pkt: { src: A4, dst: '198.19.0.10', proto: 'tcp', dport: 23, flags: TH.SYN, moreFragments: true, l4Bytes: 8 },
    verdict: XDP_DROP,
    counts: { SEEN: 1, DROPPED: 1, EVASION_DROPPED: 1 },
  },
  {
    name: 'a legitimately fragmented 4 000-byte UDP datagram: its first fragment passes',
    pkt: { src: A4, proto: 'udp', dport: 53, moreFragments: true, payload: 1472 },
    verdict: XDP_PASS,
    counts: pass(),
  },
  {
    name: 'a legitimately fragmented ping: its first fragment passes',
    pkt: { src: A4, proto: 'icmp', moreFragments: true, payload: 1472 },
    verdict: XDP_PASS,
    counts: pass(),
  },
  {
    name: 'an IPv6 UDP datagram fragmented at 1 280: its first fragment passes',
    pkt: { src: A6, proto: 'udp', dport: 53, v6Ext: ['frag'], moreFragments: true, payload: 1224 },
    verdict: XDP_PASS,
    counts: pass(),
  },
  {
    name: 'an ACK to a watched port with no socket and no connection is an ACK-scan probe (nmap -sA, -sW)',
    pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.ACK },
    verdict: XDP_DROP,
    counts: probe('PROBE_ACK'),
  },
  {
    name: 'FIN+ACK to a watched port with no connection is a Maimon probe (nmap -sM)',
    pkt: { src: A4, proto: 'tcp', dport: 111, flags: TH.FIN | TH.ACK },
    verdict: XDP_DROP,
    counts: probe('PROBE_MAIMON'),
  },
  { name: 'an IPv6 ACK probe', pkt: { src: A6, proto: 'tcp', dport: 23, flags: TH.ACK | TH.PSH }, verdict: XDP_DROP, counts: probe('PROBE_ACK') },
  {
    name: 'RST+ACK to a watched port is an answer, not a probe',
    pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.RST | TH.ACK },
    verdict: XDP_PASS,
    counts: pass(),
  },
  {
    name: 'an ACK to a watched port of a host we do not protect (forwarded) passes',
    pkt: { src: A4, dst: '198.19.0.10', proto: 'tcp', dport: 23, flags: TH.ACK },
    verdict: XDP_PASS,
    counts: pass({ NOT_PROTECTED: 1 }),
  },
  {
    name: 'a 7-header IPv6 chain from a banned source is dropped',
    pkt: { src: A6, proto: 'tcp', dport: 80, flags: TH.ACK, v6Ext: ['dst', 'dst', 'dst', 'dst', 'dst', 'dst', 'dst'] },
    setup: ban(A6, 600),
    verdict: XDP_DROP,
    counts: { SEEN: 1, DROPPED: 1 },
  },
  {
    name: 'a 7-header IPv6 chain to this host is an evasion probe',
    pkt: { src: A6, proto: 'tcp', dport: 80, flags: TH.ACK, v6Ext: ['dst', 'dst', 'dst', 'dst', 'dst', 'dst', 'dst'] },
    verdict: XDP_DROP,
    counts: { ...probe('PROBE_V6CHAIN'), V6_CHAIN_LONG: 1 },
  },
  {
    name: 'a 7-header IPv6 chain to a destination we do not protect is counted and passed',
    pkt: { src: A6, dst: '2001:db8:1::10', proto: 'tcp', dport: 80, flags: TH.ACK, v6Ext: ['dst', 'dst', 'dst', 'dst', 'dst', 'dst', 'dst'] },
    verdict: XDP_PASS,
    counts: pass({ V6_CHAIN_LONG: 1, NOT_PROTECTED: 1 }),
  },
  {
    name: 'a 6-header IPv6 chain is followed to the end',
    pkt: { src: A6, proto: 'tcp', dport: 23, flags: TH.SYN, v6Ext: ['hop', 'dst', 'dst', 'dst', 'dst', 'dst'] },
    verdict: XDP_DROP,
    counts: probe('PROBE_SYN'),
  },
  { name: 'an IPv6 ping passes', pkt: { src: A6, proto: 'icmp' }, verdict: XDP_PASS, counts: pass() },
  // the gateway model: only probes of protected destinations count
  {
    name: 'a SYN to a watched port of a host behind the gateway (forwarded) is no probe by default',
    pkt: { src: A4, dst: '198.19.0.10', proto: 'tcp', dport: 23, flags: TH.SYN },
    verdict: XDP_PASS,
    counts: pass({ NOT_PROTECTED: 1 }),
  },
  {
    name: 'forwarded UDP to a watched port is no probe by default',
    pkt: { src: A4, dst: '198.19.0.10', proto: 'udp', dport: 161 },
    verdict: XDP_PASS,
    counts: pass({ NOT_PROTECTED: 1 }),
  },
  {
    name: 'forwarded IPv6 XMAS is no probe by default',
    pkt: { src: A6, dst: '2001:db8:1::10', proto: 'tcp', dport: 80, flags: TH.FIN | TH.PSH | TH.URG },
    verdict: XDP_PASS,
    counts: pass({ NOT_PROTECTED: 1 }),
  },
  {
    name: 'a broadcast to a watched UDP port is no probe (not an address of this host)',
    pkt: { src: A4, dst: '198.18.0.255', proto: 'udp', dport: 161 },
    verdict: XDP_PASS,
    counts: pass({ NOT_PROTECTED: 1 }),
  },
  {
    name: 'a SYN to an unused watched port in a protected network is a probe',
    pkt: { src: A4, dst: '198.19.0.99', proto: 'tcp', dport: 23, flags: TH.SYN },
    setup: net('198.19.0.0/24'),
    verdict: XDP_DROP,
    counts: probe('PROBE_SYN'),
  },
  {
    name: 'an IPv6 UDP probe of a protected network',
    pkt: { src: A6, dst: '2001:db8:1::99', proto: 'udp', dport: 161 },
    setup: net('2001:db8:1::/64'),
    verdict: XDP_DROP,
    counts: probe('PROBE_UDP'),
  },
  {
    name: 'a listed service in a protected network is never a tripwire',
    pkt: { src: A4, dst: '198.19.0.10', proto: 'tcp', dport: 23, flags: TH.SYN },
    setup: (k) => {
      k.protect('198.19.0.0/24');
      k.service('198.19.0.10:23/tcp');
    },
    verdict: XDP_PASS,
    counts: pass({ SERVICE: 1 }),
  },
  {
    name: 'a service listed for a whole network covers its hosts',
    pkt: { src: A4, dst: '198.19.0.77', proto: 'udp', dport: 161 },
    setup: (k) => {
      k.protect('198.19.0.0/24');
      k.service('198.19.0.0/24:161/udp');
    },
    verdict: XDP_PASS,
    counts: pass({ SERVICE: 1 }),
  },
  {
    name: 'a service covers its protocol only: UDP to a TCP service port is still a probe',
    pkt: { src: A4, dst: '198.19.0.10', proto: 'udp', dport: 161 },
    setup: (k) => {
      k.protect('198.19.0.0/24');
      k.service('198.19.0.10:161/tcp');
    },
    verdict: XDP_DROP,
    counts: probe('PROBE_UDP'),
  },
  {
    name: 'an IPv6 service',
    pkt: { src: A6, dst: '2001:db8:1::10', proto: 'tcp', dport: 443, flags: TH.FIN },
    setup: (k) => {
      k.protect('2001:db8:1::/64');
      k.service('2001:db8:1::10:443/tcp');
    },
    verdict: XDP_PASS,
    counts: pass({ SERVICE: 1 }),
  },
  {
    name: "a service on this host's own address (a port forward, DNAT) is never a tripwire",
    pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.SYN },
    setup: (k) => k.service('198.18.0.1:23/tcp'),
    verdict: XDP_PASS,
    counts: pass({ SERVICE: 1 }),
  },
  {
    name: 'a probe bearing the address of a server we talk to (a resolver) is alerted as possibly spoofed, never banned',
    pkt: { src: '198.18.0.53', proto: 'tcp', dport: 23, flags: TH.SYN },
    setup: (k) => k.peer('198.18.0.53', { responder: 1 }),
    verdict: XDP_PASS,
    counts: pass({ PROBE_SYN: 1, ALERTS: 1, LIVE_PEER: 1 }),
  },
  {
    name: 'an IPv6 live peer is not banned either',
    pkt: { src: A6, proto: 'udp', dport: 7 },
    setup: (k) => k.peer(A6, { responder: 3 }),
    verdict: XDP_PASS,
    counts: pass({ PROBE_UDP: 1, ALERTS: 1, LIVE_PEER: 1 }),
  },
  {
    name: 'a client whose TCP connection has lasted a minute is not banned on one probe',
    pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.SYN },
    setup: (k) => k.peer(A4, { originator: 1, originatorSeconds: 61 }),
    verdict: XDP_PASS,
    counts: pass({ PROBE_SYN: 1, ALERTS: 1, LIVE_PEER: 1 }),
  },
  {
    name: 'a scanner that opened a connection just before its scan is banned',
    pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.SYN },
    setup: (k) => k.peer(A4, { originator: 1, originatorSeconds: 2 }),
    verdict: XDP_DROP,
    counts: probe('PROBE_SYN'),
  },
  {
    name: 'a peer whose connections all ended is banned as any scanner',
    pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.SYN },
    setup: (k) => k.peer(A4, { responder: 0, originator: 0, originatorSeconds: 600 }),
    verdict: XDP_DROP,
    counts: probe('PROBE_SYN'),
  },
  // configuration
  {
    name: 'blocking off for TCP: alert, no ban',
    pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.SYN },
    cfg: { blockTcp: false },
    verdict: XDP_PASS,
    counts: pass({ PROBE_SYN: 1, ALERTS: 1 }),
  },
  {
    name: 'blocking off for UDP: alert, no ban',
    pkt: { src: A4, proto: 'udp', dport: 161 },
    cfg: { blockUdp: false },
    verdict: XDP_PASS,
    counts: pass({ PROBE_UDP: 1, ALERTS: 1 }),
  },
  {
    name: 'trigger 2: the first probe is only counted',
    pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.SYN },
    cfg: { trigger: 2 },
    verdict: XDP_PASS,
    counts: pass({ PROBE_SYN: 1 }),
  },
  {
    name: 'before the daemon writes its config, nothing is classified',
    pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.SYN },
    cfg: { enabled: false },
    verdict: XDP_PASS,
    counts: pass(),
  },
  {
    name: 'a permanent automatic ban (ban_ttl 0) still drops',
    pkt: { src: A4, proto: 'tcp', dport: 23, flags: TH.SYN },
    cfg: { banTtlNs: 0n },
    verdict: XDP_DROP,
    counts: probe('PROBE_SYN'),
  },
];

describe('XDP program (BPF_PROG_TEST_RUN)', () => {
  let k: KernelFixture;
  before(() => {
    k = new KernelFixture();
  });
  after(() => k?.close());

  for (const row of rows) {
    test(row.name, () => {
      k.reset(row.cfg);
      row.setup?.(k);
      const { verdict, delta } = k.run(packet(row.pkt));
      assert.equal(verdict, row.verdict, `verdict (${verdict === XDP_DROP ? 'DROP' : verdict === XDP_PASS ? 'PASS' : verdict})`);
      assert.deepEqual(delta, row.counts, 'counters that moved');
    });
  }

  test('a ban cached on the drop path yields at once to an unban, a shorter ban and the lists', () => {
    k.reset();
    const pkt = packet({ src: A4, proto: 'tcp', dport: 80, flags: TH.ACK });
    const table = new BanTable(k.obj);
    ban(A4, 600)(k);
    for (let i = 0; i < 3; i++) assert.equal(k.run(pkt).verdict, XDP_DROP, 'dropped (then from the per-CPU cache)');
    assert.equal(table.drops(parseCidr(A4)), 3n, 'every drop counted');
    table.remove(parseCidr(A4));
    assert.deepEqual(k.run(pkt), { verdict: XDP_PASS, delta: pass() }, 'unbanned');
    ban(A4, 600)(k);
    k.run(pkt);
    k.run(pkt);
    ban(A4, -1)(k);
    assert.deepEqual(k.run(pkt), { verdict: XDP_PASS, delta: pass({ EXPIRED_HITS: 1 }) }, 'banned again, into the past');
    ban(A4, 600)(k);
    k.run(pkt);
    k.run(pkt);
    neverBan(A4)(k);
    assert.deepEqual(k.run(pkt), { verdict: XDP_PASS, delta: pass() }, 'listed never-ban after the ban');
    allow(A4)(k);
    assert.deepEqual(k.run(pkt), { verdict: XDP_PASS, delta: pass({ ALLOWED: 1 }) }, 'allowed');
  });

  test('an IPv6 source written v4-mapped never takes the cached ban of its IPv4 address', () => {
    k.reset();
    // 198.18.6.57 and ::ffff:198.18.6.57 fall in one drop slot, and 198.18.249.198 sets the IPv6 source's filter bit
    const v4 = '198.18.6.57';
    ban(v4, 600)(k);
    ban('198.18.249.198', 600)(k);
    const v4pkt = packet({ src: v4, proto: 'tcp', dport: 80, flags: TH.ACK });
    for (let i = 0; i < 3; i++) assert.equal(k.run(v4pkt).verdict, XDP_DROP, 'the IPv4 address is banned (and cached)');
    const v6pkt = packet({ src: A6, proto: 'tcp', dport: 80, flags: TH.ACK });
    Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 6, 57]).copy(v6pkt, 14 + 8); // the IPv6 source address
    assert.deepEqual(k.run(v6pkt), { verdict: XDP_PASS, delta: pass() }, '::ffff:198.18.6.57 over IPv6 is not banned');
    assert.equal(k.run(v4pkt).verdict, XDP_DROP, 'and the IPv4 ban still holds');
  });

  test('a probe to an address of this host found in its slot alone or in the trie alone is the same probe', () => {
    for (const [src, dst] of [
      [A4, '198.18.0.1'],
      [A6, '2001:db8::1'],
      [A4, '198.18.0.77'],
    ] as const) {
      k.reset();
      const c = parseCidr(dst);
      if (dst === '198.18.0.77')
        k.protect(dst, DEST_HOST); // the trie alone
      else k.obj.map(c.family === 4 ? 'sentry_protect_v4' : 'sentry_protect_v6').delete(lpmKey(c)); // the slot alone (hostSlots in TS)
      const { verdict, delta } = k.run(packet({ src, dst, proto: 'tcp', dport: 23, flags: TH.SYN }));
      assert.equal(verdict, XDP_DROP, dst);
      assert.deepEqual(delta, probe('PROBE_SYN'), dst);
      assert.equal(k.events()[0]?.dscope, DEST_HOST, dst);
    }
  });

  test('the alert event carries the source, port, kind, flags and ban', () => {
    k.reset();
    k.run(packet({ src: A4, proto: 'tcp', dport: 111, flags: TH.FIN | TH.PSH | TH.URG }));
    const evs = k.events();
    assert.equal(evs.length, 1);
    const ev = evs[0]!;
    assert.equal(ev.source, '198.18.0.2');
    assert.equal(ev.family, 4);
    assert.equal(ev.proto, 6);
    assert.equal(ev.port, 111);
    assert.equal(ev.kind, Kind.XMAS);
    assert.equal(ev.tcpFlags, TH.FIN | TH.PSH | TH.URG);
    assert.equal(ev.flags & EV_F_BANNED, EV_F_BANNED);
    const ttl = (ev.expiresNs - ev.tsNs) / 1e9;
    assert.ok(Math.abs(ttl - 3600) < 1, `ban length ${ttl}s`);
    const banVal = new BanTable(k.obj).get(parseCidr(A4));
    assert.ok(banVal, 'the kernel put the ban in the table');
    assert.equal(banVal.origin, Origin.AUTO);
    assert.equal(banVal.port, 111);
    assert.equal(banVal.kind, Kind.XMAS);
  });

  test('one alert per source per scan: a banned scanner that keeps knocking is counted, not re-alerted', () => {
    k.reset();
    for (let port = 1; port <= 50; port++) k.run(packet({ src: A4, proto: 'tcp', dport: port, flags: TH.SYN }));
    for (let i = 0; i < 20; i++) k.run(packet({ src: A4, proto: 'udp', dport: 161 }));
    assert.equal(k.events().length, 1);
    assert.equal(new BanTable(k.obj).drops(parseCidr(A4)), 70n);
  });

  test('trigger 2: the third probe alerts and is itself dropped; later probes are drops, not alerts', () => {
    k.reset({ trigger: 2 });
    const verdicts = [1, 23, 111, 1, 23].map((p) => k.run(packet({ src: A4, proto: 'tcp', dport: p, flags: TH.SYN })).verdict);
    assert.deepEqual(verdicts, [XDP_PASS, XDP_PASS, XDP_DROP, XDP_DROP, XDP_DROP]);
    const evs = k.events();
    assert.equal(evs.length, 1);
    assert.equal(evs[0]!.probes, 3);
  });

  test('log-only mode alerts once per window, not once per packet', () => {
    k.reset({ blockTcp: false });
    for (let i = 0; i < 10; i++) k.run(packet({ src: A4, proto: 'tcp', dport: 23, flags: TH.SYN }));
    assert.equal(k.events().length, 1);
    assert.equal(k.stats().ALERTS >= 1n, true);
  });

  test('a source that comes back after its ban lapsed is detected and banned again', () => {
    k.reset();
    ban(A4, -1)(k); // lapsed
    const { verdict, delta } = k.run(packet({ src: A4, proto: 'tcp', dport: 23, flags: TH.SYN }));
    assert.equal(verdict, XDP_DROP);
    assert.equal(delta.EXPIRED_HITS, 1);
    assert.equal(delta.BANS_ADDED, 1);
    const v = new BanTable(k.obj).get(parseCidr(A4))!;
    assert.ok(v.expiresNs > kernelClockNs(), 'the new ban runs into the future');
    assert.equal(v.origin, Origin.AUTO);
  });

  test('a scanner whose automatic ban was lifted (or lapsed) within the scan window is detected and banned again', () => {
    k.reset();
    const syn = packet({ src: A4, proto: 'tcp', dport: 23, flags: TH.SYN });
    assert.equal(k.run(syn).verdict, XDP_DROP);
    assert.ok(new BanTable(k.obj).remove(parseCidr(A4)), 'unban');
    const again = k.run(syn);
    assert.equal(again.verdict, XDP_DROP, 'banned again, not waved through as "already alerted"');
    assert.equal(again.delta.ALERTS, 1);
    assert.equal(k.events().length, 2);
  });

  test('never-ban: the alert carries the flag, no ban is made', () => {
    k.reset();
    neverBan('198.18.0.0/30')(k);
    k.run(packet({ src: A4, proto: 'tcp', dport: 23, flags: TH.SYN }));
    const evs = k.events();
    assert.equal(evs.length, 1);
    assert.equal(evs[0]!.flags, EV_F_NEVER_BAN);
    assert.equal(new BanTable(k.obj).get(parseCidr(A4)), undefined);
  });

  test('a per-CIDR TTL rule sets the length of the automatic ban (most specific wins)', () => {
    k.reset({ banTtlNs: 86_400_000_000_000n });
    const rule = (cidr: string, s: number) => {
      const c = parseCidr(cidr);
      const m = k.obj.map(c.family === 4 ? 'sentry_ttl_v4' : 'sentry_ttl_v6');
      const v = Buffer.alloc(8);
      v.writeBigUInt64LE(BigInt(s) * 1_000_000_000n);
      m.update(lpmKey(c), v);
    };
    rule('198.18.0.0/15', 600);
    rule('198.18.0.0/24', 60);
    k.run(packet({ src: A4, proto: 'tcp', dport: 23, flags: TH.SYN }));
    k.run(packet({ src: '198.19.9.9', proto: 'tcp', dport: 23, flags: TH.SYN }));
    k.run(packet({ src: '203.0.113.5', proto: 'tcp', dport: 23, flags: TH.SYN }));
    const ttls = k.events().map((e) => Math.round((e.expiresNs - e.tsNs) / 1e9));
    assert.deepEqual(ttls, [60, 600, 86400]);
    for (const m of ['sentry_ttl_v4', 'sentry_ttl_v6']) {
      const map = k.obj.map(m);
      const { keys, count } = map.dump(16);
      for (let i = 0; i < count; i++) map.delete(keys.subarray(i * map.keySize, (i + 1) * map.keySize));
    }
  });

  test('the per-minute cap on automatic bans: alerts go on, bans stop, and it is counted', () => {
    k.reset({ maxBansPerMin: 3 });
    k.obj.map('sentry_ratecap').update(Buffer.alloc(4), Buffer.alloc(16));
    const verdicts = [1, 2, 3, 4, 5].map((i) => k.run(packet({ src: `203.0.113.${i}`, proto: 'tcp', dport: 23, flags: TH.SYN })).verdict);
    assert.deepEqual(verdicts, [XDP_DROP, XDP_DROP, XDP_DROP, XDP_PASS, XDP_PASS]);
    const evs = k.events();
    assert.equal(evs.length, 5);
    assert.deepEqual(
      evs.map((e) => e.flags),
      [EV_F_BANNED, EV_F_BANNED, EV_F_BANNED, EV_F_CAPPED, EV_F_CAPPED],
    );
    assert.equal(k.stats().BAN_CAPPED, 2n);
  });

  test('under a flood of single probes (over pressure_per_sec crossings a second) one port is not enough to ban; a second port is', () => {
    k.reset({ pressurePerSec: 4 });
    const syn = (src: string, dport = 23) => k.run(packet({ src, proto: 'tcp', dport, flags: TH.SYN }));
    const verdicts = [1, 2, 3, 4, 5, 6].map((i) => syn(`203.0.113.${i}`).verdict);
    assert.deepEqual(verdicts, [XDP_DROP, XDP_DROP, XDP_DROP, XDP_DROP, XDP_PASS, XDP_PASS], 'the first 4 crossings ban; then single probes wait');
    assert.equal(k.stats().BANS_DEFERRED, 2n);
    assert.equal(k.events().length, 4, 'a deferred crossing sends no event (it is in the summary)');
    const again = syn('203.0.113.6', 111);
    assert.equal(again.verdict, XDP_DROP, 'its probe of a second port bans it at once');
    const evs = k.events();
    assert.deepEqual(
      evs.map((e) => [e.source, e.flags]),
      [['203.0.113.6', EV_F_BANNED]],
    );
    const bits = k.obj.map('sentry_flood_ports').lookup(Buffer.from([0, 0, 0, 0]))!; // ports 0-63: 23 is in it
    assert.equal(bits.readBigUInt64LE(0) & (1n << 23n), 1n << 23n, 'the summary knows the port');
  });

  test('alerts without a ban past alerts_per_sec are summarised (counted with their port), never sent one by one; bans always are', () => {
    k.reset({ alertsPerSec: 2, blockTcp: false });
    for (let i = 1; i <= 5; i++) k.run(packet({ src: `203.0.113.${i}`, proto: 'tcp', dport: 111, flags: TH.SYN }));
    assert.equal(k.events().length, 2);
    assert.equal(k.stats().ALERTS_SUMMARISED, 3n);
    k.reset({ alertsPerSec: 2 });
    for (let i = 1; i <= 5; i++) k.run(packet({ src: `203.0.113.${i}`, proto: 'tcp', dport: 111, flags: TH.SYN }));
    assert.equal(k.events().filter((e) => e.flags === EV_F_BANNED).length, 5, 'every ban is an event');
  });

  test('UDP to a watched port that a local socket owns is not a probe', async () => {
    k.reset();
    const sock = createSocket('udp4');
    await new Promise<void>((res) => sock.bind(0, '0.0.0.0', () => res()));
    const port = sock.address().port;
    try {
      k.reset({}, { udp: [port] });
      const { verdict, delta } = k.run(packet({ src: A4, proto: 'udp', dport: port }));
      assert.equal(verdict, XDP_PASS);
      assert.deepEqual(delta, { SEEN: 1, PASSED: 1, LOCAL_SOCKET: 1 });
    } finally {
      sock.close();
    }
  });

  test('a SYN or an XMAS probe pays for no socket lookup: a listener does not excuse it (the daemon never watches a port something listens on)', async () => {
    const srv = createServer();
    await new Promise<void>((res) => srv.listen(0, '0.0.0.0', () => res()));
    const port = (srv.address() as AddressInfo).port;
    try {
      k.reset({ trigger: 5 }, { tcp: [port] });
      let r = k.run(packet({ src: A4, proto: 'tcp', dport: port, flags: TH.SYN }));
      assert.deepEqual(r.delta, { SEEN: 1, PASSED: 1, PROBE_SYN: 1 });
      r = k.run(packet({ src: A4, proto: 'tcp', dport: port, flags: TH.FIN | TH.PSH | TH.URG }));
      assert.deepEqual(r.delta, { SEEN: 1, PASSED: 1, PROBE_XMAS: 1 });
    } finally {
      srv.close();
    }
  });

  test('an ACK or FIN+ACK that a local socket owns (a listener too: SYN cookies) is not a probe', async () => {
    const srv = createServer();
    await new Promise<void>((res) => srv.listen(0, '0.0.0.0', () => res()));
    const port = (srv.address() as AddressInfo).port;
    try {
      k.reset({}, { tcp: [port] });
      for (const flags of [TH.ACK, TH.FIN | TH.ACK]) {
        const r = k.run(packet({ src: A4, proto: 'tcp', dport: port, flags }));
        assert.equal(r.verdict, XDP_PASS);
        assert.deepEqual(r.delta, { SEEN: 1, PASSED: 1, LOCAL_SOCKET: 1 });
      }
    } finally {
      srv.close();
    }
  });

  test('a sweep: one source reaching sweep_trigger hosts of a protected network (any port) is alerted once and banned', () => {
    k.reset({ sweepTrigger: 4 });
    k.protect('198.19.0.0/24');
    const syn = (host: number) => packet({ src: A4, dst: `198.19.0.${host}`, proto: 'tcp', dport: 445, flags: TH.SYN });
    const before = k.stats().PROBE_SWEEP;
    for (const host of [1, 2, 2, 2, 3]) {
      const r = k.run(syn(host));
      assert.equal(r.verdict, XDP_PASS, `host ${host}`);
    }
    assert.equal(k.stats().PROBE_SWEEP - before, 3n, 'a host reached again is not counted again');
    const r = k.run(packet({ src: A4, dst: '198.19.0.4', proto: 'icmp' }));
    assert.equal(r.verdict, XDP_DROP, 'the fourth host (a ping) makes the sweep');
    assert.equal(r.delta.ALERTS, 1);
    assert.equal(r.delta.BANS_ADDED, 1);
    const evs = k.events();
    assert.equal(evs.length, 1);
    assert.equal(evs[0]!.kind, Kind.SWEEP);
    assert.equal(evs[0]!.probes, 4);
    assert.equal(evs[0]!.destination, '198.19.0.4');
    // other sources, and this host's own address, do not add up
    k.reset({ sweepTrigger: 2 });
    k.protect('198.19.0.0/24');
    const alerts = k.stats().ALERTS;
    assert.equal(k.run(packet({ src: '198.18.0.7', dst: '198.19.0.1', proto: 'udp', dport: 5000 })).verdict, XDP_PASS);
    assert.equal(k.run(packet({ src: '198.18.0.8', dst: '198.19.0.2', proto: 'udp', dport: 5000 })).verdict, XDP_PASS);
    assert.equal(k.run(packet({ src: '198.18.0.8', proto: 'tcp', dport: 80, flags: TH.SYN })).verdict, XDP_PASS);
    assert.equal(k.stats().ALERTS - alerts, 0n);
  });

  test('sweep detection off (sweep_trigger 0) counts nothing', () => {
    k.reset({ sweepTrigger: 0 });
    k.protect('198.19.0.0/24');
    const before = k.stats().PROBE_SWEEP;
    for (let h = 1; h <= 20; h++) assert.equal(k.run(packet({ src: A4, dst: `198.19.0.${h}`, proto: 'tcp', dport: 445, flags: TH.SYN })).verdict, XDP_PASS);
    assert.equal(k.stats().PROBE_SWEEP - before, 0n);
  });

  test('the alert event names the destination probed and why it is protected', () => {
    k.reset();
    k.protect('198.19.0.0/24');
    k.run(packet({ src: A4, dst: '198.19.0.99', proto: 'udp', dport: 161 }));
    k.run(packet({ src: A6, proto: 'tcp', dport: 23, flags: TH.SYN }));
    const evs = k.events();
    assert.equal(evs.length, 2);
    assert.equal(evs[0]!.destination, '198.19.0.99');
    assert.equal(evs[0]!.dscope, DEST_NET);
    assert.equal(evs[1]!.destination, '2001:db8::1');
    assert.equal(evs[1]!.dscope, DEST_HOST);
  });

  test('a possibly spoofed alert carries its flag and no ban', () => {
    k.reset();
    k.peer('198.18.0.53');
    k.run(packet({ src: '198.18.0.53', proto: 'tcp', dport: 23, flags: TH.SYN }));
    const evs = k.events();
    assert.equal(evs.length, 1);
    assert.equal(evs[0]!.flags, EV_F_LIVE_PEER);
    assert.equal(new BanTable(k.obj).get(parseCidr('198.18.0.53')), undefined);
  });

  test('per-source state is bounded: 200 000 spoofed sources do not fail the program', () => {
    k.reset({ trigger: 1_000_000 });
    const base = packet({ src: '10.0.0.1', proto: 'tcp', dport: 23, flags: TH.SYN });
    let drops = 0;
    for (let i = 0; i < 200_000; i++) {
      base.writeUInt32BE(0x0a000000 + i, 14 + 12);
      if (k.obj.testRun(base).retval === XDP_DROP) drops++;
    }
    assert.equal(drops, 0);
    assert.ok(k.obj.map('sentry_sources').count() <= 131072, 'LRU stays within its size');
  });
});
