/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Everything that both the XDP program and user space read: structs, flags,
 * counter indexes. Fixed-width types, explicit padding, and a size assertion
 * on each struct. src/core/abi.ts mirrors this file; test/unit/abi.test.ts
 * checks the mirror against `native/abi_dump` (offsetof from this header).
 */
#ifndef SENTRY_SHARED_H
#define SENTRY_SHARED_H

#include <linux/types.h>

#define SX_ABI_VERSION 4

/* Bans map sizes. Exact addresses live in hashes (one lookup on the drop
 * path); CIDR bans and the allow list live in small LPM tries. */
#define SX_MAX_BANS_V4 1200000
#define SX_MAX_BANS_V6 262144
#define SX_MAX_CIDR_BANS 65536
#define SX_MAX_ALLOW 16384
#define SX_MAX_SOURCES 131072 /* LRU per-source scan state */
#define SX_RINGBUF_BYTES (16 * 1024 * 1024)
#define SX_MAX_PROTECT 16384  /* protected destinations (this host's addresses + networks) */
#define SX_MAX_SERVICES 16384 /* services in protected networks, by address/prefix + port */
#define SX_MAX_PEERS 262144   /* addresses with a live connection (conntrack) */
#define SX_MAX_OFFENDERS 65536 /* repeat offenders whose next ban is escalated */
#define SX_DROP_SLOTS 16384 /* per-CPU drop counters of address bans, by a hash of the source (a power of two) */

/* Filters in front of the exact ban hashes and of the allow/never-ban tries:
 * bitmaps (arrays of __u64 words, mmapable) where a clear bit proves that no
 * address hashing to it is banned (or listed as a single host). A hash lookup
 * is a kernel function call; a bit test is a few instructions, so a packet
 * from an unbanned, unlisted source pays for no call at all. Every writer
 * (the XDP program, user space through mmap) sets the bit with an atomic OR
 * before it inserts the entry; bits are never cleared (a stale bit only costs
 * the lookup it would have saved). */
#define SX_BAN_FILTER_LOG 25  /* 2^25 bits (4 MiB): ~3% of bits set by 1M bans */
#define SX_LIST_FILTER_LOG 16 /* 2^16 bits (8 KiB) for at most SX_MAX_ALLOW entries */
#define SX_BAN_FILTER_WORDS (1U << (SX_BAN_FILTER_LOG - 6))
#define SX_LIST_FILTER_WORDS (1U << (SX_LIST_FILTER_LOG - 6))

/* The filter bit of an address: `folded` is its IPv4 address as read from the
 * packet (network order in a native __u32), or the XOR of its IPv6 address's
 * four words. Shared by the program and the shim, so both pick the same bit. */
static inline __u32 sx_filter_bit(__u32 folded, __u32 log)
{
	return (__u32)(((__u64)folded * 0x9E3779B97F4A7C15ULL) >> (64 - log));
}

/* sentry_allow_v4/v6 values. */
#define SX_ALLOW 1     /* ignore entirely: never counted, never banned (portsentry.ignore) */
#define SX_NEVER_BAN 2 /* detect and alert, never ban: this host, its gateways, its resolvers */

/* sentry_protect_v4/v6 values: why a destination is protected. */
#define SX_DEST_HOST 1 /* one of this host's own addresses (kept current by the daemon) */
#define SX_DEST_NET 2  /* a network the admin listed in protect.networks */

/* sentry_info feature bits: what the loaded program can do. */
#define SX_FEAT_CONNTRACK 0x01 /* conntrack lookups (bpf_xdp_ct_lookup) are compiled in */
#define SX_FEAT_FRAGS 0x02     /* loaded as multi-buffer XDP (xdp.frags): jumbo MTUs attach natively */

/* sentry_ports value bits, indexed by destination port (host order). */
#define SX_PORT_TCP 0x01
#define SX_PORT_UDP 0x02

/* Probe kinds, named as PortSentry names them (src/core/scan-kind.ts). */
enum sx_kind {
	SX_KIND_NONE = 0,
	SX_KIND_SYN = 1,     /* SYN without ACK to a watched TCP port */
	SX_KIND_FIN = 2,     /* FIN alone, no ACK */
	SX_KIND_NULL = 3,    /* no flags at all */
	SX_KIND_XMAS = 4,    /* FIN+PSH+URG */
	SX_KIND_UNKNOWN = 5, /* any other flag set no stack sends outside a connection */
	SX_KIND_UDP = 6,     /* datagram to a watched UDP port */
	SX_KIND_FRAG = 7,    /* a first fragment too short for its L4 header, or one overlapping it */
	SX_KIND_ACK = 8,     /* ACK without SYN/RST/FIN to a watched TCP port, no connection (nmap -sA, -sW) */
	SX_KIND_MAIMON = 9,  /* FIN+ACK to a watched TCP port, no connection (nmap -sM) */
	SX_KIND_SWEEP = 10,  /* one source reaching sweep_trigger protected hosts within the window */
	SX_KIND_V6CHAIN = 11, /* an IPv6 extension-header chain longer than the parser follows */
	SX_KIND__MAX = 12,
};

/* Ban origins (who put the entry in the ban table). */
enum sx_origin {
	SX_ORIGIN_AUTO = 1,     /* the XDP program, on a scan */
	SX_ORIGIN_MANUAL = 2,   /* `sentry-xdp ban` */
	SX_ORIGIN_IMPORTED = 3, /* `ban --file` */
	SX_ORIGIN_FLEET = 4,    /* another gateway */
};

/* Counters in the per-CPU array sentry_stats. Append only: the index is ABI. */
enum sx_stat {
	SX_STAT_PASSED = 0,      /* XDP_PASS verdicts (seen = passed + dropped) */
	SX_STAT_DROPPED,         /* XDP_DROP verdicts (banned sources) */
	SX_STAT_UNPARSED,        /* passed because a header was truncated or malformed */
	SX_STAT_NON_IP,          /* passed: not IPv4/IPv6 (ARP, LLDP, ...) */
	SX_STAT_FRAGMENTS,       /* passed: non-first fragments (no L4 header to read) */
	SX_STAT_ALLOWED,         /* passed because the allow list matched */
	SX_STAT_PROBE_SYN,       /* probes by kind: keep in sx_kind order */
	SX_STAT_PROBE_FIN,
	SX_STAT_PROBE_NULL,
	SX_STAT_PROBE_XMAS,
	SX_STAT_PROBE_UNKNOWN,
	SX_STAT_PROBE_UDP,
	SX_STAT_ALERTS,          /* one per source per scan */
	SX_STAT_BANS_ADDED,      /* bans the program inserted itself */
	SX_STAT_BAN_TABLE_FULL,  /* a ban the program could not insert */
	SX_STAT_RB_LOST,         /* events dropped because the ring buffer was full */
	SX_STAT_EXPIRED_HITS,    /* packets from a source whose ban had lapsed */
	SX_STAT_LOCAL_SOCKET,    /* probe-shaped, but a local socket owns it (TCP or UDP) */
	SX_STAT_NEVER_BAN,       /* alerts whose source is on the never-ban list */
	SX_STAT_BAN_CAPPED,      /* automatic bans refused by the per-minute cap */
	SX_STAT_NOT_PROTECTED,   /* probe-shaped, but to a destination we do not protect (forwarded) */
	SX_STAT_SERVICE,         /* probe-shaped, but to a service listed in protect.services */
	SX_STAT_CONNTRACK,       /* probe-shaped, but part of a connection conntrack knows */
	SX_STAT_LIVE_PEER,       /* alerts not banned: the source has a live connection (possibly spoofed) */
	SX_STAT_PROBE_FRAG,      /* probes of the kinds added later, one counter each */
	SX_STAT_PROBE_ACK,
	SX_STAT_PROBE_MAIMON,
	SX_STAT_PROBE_SWEEP,     /* packets that reached one more protected host within a sweep window */
	SX_STAT_PROBE_V6CHAIN,
	SX_STAT_EVASION_DROPPED, /* evasion fragments dropped (no stack sends one), to any destination */
	SX_STAT_V6_CHAIN_LONG,   /* IPv6 chains longer than the parser follows (bans still apply) */
	SX_STAT_BANS_DEFERRED,   /* trigger crossings not banned under flood pressure: one port, no sweep */
	SX_STAT_ALERTS_SUMMARISED, /* alerts over alerts_per_sec: counted in the summary, not sent one by one */
	SX_STAT__MAX,
};

/* Load-free runtime configuration: one entry in sentry_config, written by the
 * daemon and read by the program on every probe, so a reload needs no reload of
 * the program. */
struct sx_config {
	__u64 window_ns;  /* probes are counted per source within this window */
	__u64 ban_ttl_ns; /* automatic ban length; 0 = permanent */
	__u32 trigger;    /* SCAN_TRIGGER: alert when probes in window > trigger */
	__u8 block_tcp;   /* 1: ban on TCP scans */
	__u8 block_udp;   /* 1: ban on UDP scans */
	__u8 enabled;     /* 0 until the daemon has written the config */
	__u8 pad0;
	__u32 max_bans_per_min; /* cap on automatic bans per minute; 0 = no cap */
	__u32 sweep_trigger;    /* distinct protected hosts that make a sweep; 0 = off */
	__u32 pressure_per_sec; /* trigger crossings a second above which a ban needs two ports or a sweep; 0 = never */
	__u32 alerts_per_sec;   /* alerts without a ban sent one by one each second; more are summarised; 0 = all */
};
_Static_assert(sizeof(struct sx_config) == 40, "sx_config layout");

/* Flood accounting (sentry_flood, key 0): trigger crossings and alerts per
 * second. A spoofed flood crosses the trigger from a new address on every
 * packet; past pressure_per_sec a source must show more evidence than one
 * probe to one port before it is banned, so the flood cannot spend the ban
 * budget and a real scanner (many ports) is still banned at once. */
struct sx_flood {
	__u64 second_start_ns;
	__u32 crossings;      /* trigger crossings in the current second */
	__u32 crossings_prev; /* in the second before */
	__u32 alerts;         /* alerts without a ban sent in the current second */
	__u32 pad0;
};
_Static_assert(sizeof(struct sx_flood) == 24, "sx_flood layout");
#define SX_FLOOD_PORT_WORDS 1024 /* sentry_flood_ports: 65536 bits, the ports of summarised alerts */

/* State of the per-minute cap on automatic bans (sentry_ratecap, key 0). */
struct sx_ratecap {
	__u64 minute_start_ns;
	__u32 bans;
	__u32 pad0;
};
_Static_assert(sizeof(struct sx_ratecap) == 16, "sx_ratecap layout");

/* How many entries each LPM trie holds, so the fast path skips empty tries
 * (an LPM lookup costs more than the rest of the pass path). User space raises
 * a count before it inserts and lowers it after it deletes. */
struct sx_presence {
	__u32 allow_v4;
	__u32 allow_v6;
	__u32 cidr_v4;
	__u32 cidr_v6;
	__u32 wide_v4; /* allow/never-ban entries wider than one host: no filter bit stands for them */
	__u32 wide_v6;
	__u32 svc_v4;  /* entries of sentry_services_v4/v6 */
	__u32 svc_v6;
};
_Static_assert(sizeof(struct sx_presence) == 32, "sx_presence layout");

/* This host's addresses in a direct-mapped table (sentry_hosts), so that a
 * probe to this host is recognised without an LPM lookup of sentry_protect:
 * slot sx_filter_bit(destination, SX_HOST_SLOTS_LOG). The daemon writes it
 * from the same list as the trie (first address wins a shared slot, the other
 * is found in the trie); an address leaves its slot before it leaves the trie. */
#define SX_HOST_SLOTS_LOG 8
#define SX_HOST_SLOTS (1U << SX_HOST_SLOTS_LOG)
struct sx_host_slot {
	__u8 addr[16]; /* v4-mapped for IPv4 */
	__u8 scope;    /* SX_DEST_HOST; 0 = an empty slot */
	__u8 pad0[7];
};
_Static_assert(sizeof(struct sx_host_slot) == 24, "sx_host_slot layout");

/* Value of sentry_peers: an address's live connections (conntrack), by its role.
 * A responder (someone here connected to it: a resolver, an upstream, a
 * partner) is never banned on a probe. An originator is, once its live TCP
 * connections have lasted SX_PEER_SETTLE_NS: a scanner cannot buy immunity with
 * a ping or a handshake made just before its scan. */
struct sx_peer {
	__u32 responder;            /* live entries where it answered (orig dst / reply src) */
	__u32 originator;           /* live TCP entries (assured) it opened (orig src / reply dst) */
	__u64 originator_since_ns;  /* CLOCK_MONOTONIC ns when originator last rose from 0 */
};
_Static_assert(sizeof(struct sx_peer) == 16, "sx_peer layout");
#define SX_PEER_SETTLE_NS (60ULL * 1000000000ULL)

/* The length of a repeat offender's next automatic ban (escalation), so that
 * the kernel decides the TTL once, where the ban is made. The daemon writes it
 * after each automatic ban from the source's offences within the look-back;
 * it holds until until_ns, when the oldest of them leaves the look-back (the
 * daemon then writes the next step down, or deletes it). */
struct sx_offender {
	__u64 ttl_ns;   /* 0 = permanent */
	__u64 until_ns; /* CLOCK_MONOTONIC ns */
};
_Static_assert(sizeof(struct sx_offender) == 16, "sx_offender layout");

/* One per-CPU drop counter (sentry_drops): the banned source it counts for,
 * and its drops on this CPU. A source that takes the slot over from another
 * first adds the other's count into that one's ban entry. The slot also
 * caches the source's exact ban (its expiry), so the next packet of a banned
 * source is dropped without a hash lookup: valid while the slot's epoch is
 * sentry_ban_epoch + 1, which user space bumps after every write or delete
 * of an exact ban (the program reads the epoch before its lookup, so a slot
 * filled from an entry that changed since holds an older epoch). */
struct sx_dropslot {
	__u8 addr[16]; /* v4-mapped for IPv4 */
	__u64 drops;
	__u64 expires_ns; /* the cached ban's expiry (0 = permanent) */
	__u64 epoch;      /* sentry_ban_epoch + 1 when it was cached; 0 = nothing cached */
};
_Static_assert(sizeof(struct sx_dropslot) == 40, "sx_dropslot layout");

/* What the loaded program is (sentry_info, key 0), written by the loader once
 * at load time: an adopter checks the ABI before it trusts any pinned map. */
struct sx_info {
	__u32 abi_version; /* SX_ABI_VERSION of the program that created the maps */
	__u32 features;    /* SX_FEAT_* */
};
_Static_assert(sizeof(struct sx_info) == 8, "sx_info layout");

/* Keys of the services tries: protocol and port first, so that a prefix over
 * (8 + 8 + 16) + N bits matches one port of a network of prefix N. */
struct sx_svc_v4 {
	__u32 prefixlen; /* 32 + address prefix */
	__u8 proto;      /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 pad0;
	__be16 port;
	__be32 addr;
};
_Static_assert(sizeof(struct sx_svc_v4) == 12, "sx_svc_v4 layout");

struct sx_svc_v6 {
	__u32 prefixlen; /* 32 + address prefix */
	__u8 proto;
	__u8 pad0;
	__be16 port;
	__u8 addr[16];
};
_Static_assert(sizeof(struct sx_svc_v6) == 24, "sx_svc_v6 layout");

/* Value of the ban maps (exact and CIDR). */
struct sx_ban {
	__u64 expires_ns; /* CLOCK_MONOTONIC ns (bpf_ktime_get_coarse_ns); 0 = permanent */
	__u64 created_ns; /* CLOCK_MONOTONIC ns (bpf_ktime_get_coarse_ns) */
	__u64 drops;      /* packets dropped by this ban (atomic add) */
	__u16 port;       /* probe that caused it (host order), 0 for manual */
	__u8 proto;       /* IPPROTO_TCP / IPPROTO_UDP, 0 for manual */
	__u8 kind;        /* enum sx_kind */
	__u8 origin;      /* enum sx_origin */
	__u8 pad0[3];
};
_Static_assert(sizeof(struct sx_ban) == 32, "sx_ban layout");

/* LPM keys for CIDR bans and the allow list. */
struct sx_lpm_v4 {
	__u32 prefixlen;
	__be32 addr;
};
_Static_assert(sizeof(struct sx_lpm_v4) == 8, "sx_lpm_v4 layout");

struct sx_lpm_v6 {
	__u32 prefixlen;
	__u8 addr[16];
};
_Static_assert(sizeof(struct sx_lpm_v6) == 20, "sx_lpm_v6 layout");

/* Per-source scan state (LRU). Key: 16-byte address, IPv4 as ::ffff:a.b.c.d. */
struct sx_source {
	__u64 window_start_ns;
	__u64 last_ns;
	__u32 probes;  /* probes in the current window */
	__u32 alerted; /* non-zero once this window raised its alert */
	__u32 banned;  /* non-zero once that alert banned the source */
	__u16 first_port; /* the first probe's destination port in the window */
	__u16 multi_port; /* non-zero once the source probed a second port in the window */
};
_Static_assert(sizeof(struct sx_source) == 32, "sx_source layout");

/* Per-source sweep state (LRU, sentry_sweeps): which protected hosts the source
 * reached within the window, as bits of a 512-bit set indexed by a hash of the
 * host (a collision only undercounts: never a false sweep). */
#define SX_SWEEP_BITS 512
struct sx_sweep {
	__u64 window_start_ns;
	__u64 bits[SX_SWEEP_BITS / 64];
	__u32 hosts;   /* bits set */
	__u32 alerted; /* non-zero once this window raised its alert */
};
_Static_assert(sizeof(struct sx_sweep) == 80, "sx_sweep layout");

/* Ring-buffer event: one per alert. */
#define SX_EV_ALERT 1
#define SX_EV_F_BANNED 0x01    /* the program banned the source */
#define SX_EV_F_BAN_FAILED 0x02 /* blocking was on but the ban table was full */
#define SX_EV_F_NEVER_BAN 0x04  /* the source is on the never-ban list */
#define SX_EV_F_CAPPED 0x08     /* the per-minute cap on automatic bans was reached */
#define SX_EV_F_LIVE_PEER 0x10  /* not banned: the source has a live connection (possibly spoofed) */
struct sx_event {
	__u64 ts_ns;      /* CLOCK_MONOTONIC ns (bpf_ktime_get_coarse_ns) */
	__u64 expires_ns; /* ban expiry, CLOCK_MONOTONIC ns (bpf_ktime_get_coarse_ns); 0 = none or permanent */
	__u8 addr[16];    /* source; IPv4 as ::ffff:a.b.c.d */
	__u32 ifindex;
	__u32 probes;     /* probes counted in the window so far */
	__u16 port;       /* destination port (host order) */
	__u16 family;     /* 4 or 6 */
	__u8 type;        /* SX_EV_* */
	__u8 proto;       /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 kind;        /* enum sx_kind */
	__u8 tcp_flags;   /* raw flags byte (FIN=0x01 ... CWR=0x80) */
	__u8 flags;       /* SX_EV_F_* */
	__u8 dscope;      /* SX_DEST_*: why the destination is protected */
	__u8 pad0[6];
	__u8 daddr[16];   /* destination probed; IPv4 as ::ffff:a.b.c.d */
};
_Static_assert(sizeof(struct sx_event) == 72, "sx_event layout");

#endif /* SENTRY_SHARED_H */
