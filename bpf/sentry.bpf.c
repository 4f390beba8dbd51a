// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sentry-xdp: port-scan detection and ban enforcement at the driver.
 *
 * Fail-open / fail-closed decisions, in order of precedence:
 *   1. The allow list always wins: an allowed source is passed, never counted
 *      as a probe, never banned. The never-ban list (this host, its gateways
 *      and resolvers) is never dropped or banned either, but its probes are
 *      still alerted: a spoofed scan is logged, not turned into self-harm.
 *   2. A banned source (exact address or CIDR, v4 or v6) whose ban has not
 *      expired is dropped. Expiry is checked here, so a ban lapses on time even
 *      when no daemon runs. The clock is bpf_ktime_get_coarse_ns()
 *      (CLOCK_MONOTONIC, tick resolution), read once per tick and CPU and
 *      cached (coarse_now): bans need no better than milliseconds, and a ban
 *      may lapse a tick or two late, never early.
 *   3. Anything we cannot parse (truncated, malformed, unknown protocol,
 *      non-first fragment) is passed and counted: a parser bug must never
 *      black-hole a gateway.
 *   4. Until the daemon has written sentry_config, nothing is classified: bans
 *      are enforced, detection is off.
 *   5. A packet is a probe only when it has a probe's shape, is addressed to a
 *      protected destination (this host, or a network the admin listed) that is
 *      not a listed service, and belongs to no connection the kernel knows (a
 *      local socket, a conntrack entry). Anything in doubt is passed: a false
 *      ban cuts off a real user. These checks run only on probe-shaped packets.
 *   6. A source with a live connection to or through this host is never banned
 *      on a probe (which anyone can forge with its address): it is alerted as
 *      possibly spoofed.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "sentry_shared.h"

#define VLAN_MAX_DEPTH 2
#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif
#define IPV6_EXT_MAX 6

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

struct ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

/* Exact IPv4 bans: key = source address (__be32), value = struct sx_ban. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SX_MAX_BANS_V4);
	__type(key, __be32);
	__type(value, struct sx_ban);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sentry_bans_v4 SEC(".maps");

/* Exact IPv6 bans: key = 16-byte source address, value = struct sx_ban. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SX_MAX_BANS_V6);
	__type(key, struct in6_addr);
	__type(value, struct sx_ban);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sentry_bans_v6 SEC(".maps");

/* CIDR bans: key = prefix length + network, value = struct sx_ban. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SX_MAX_CIDR_BANS);
	__type(key, struct sx_lpm_v4);
	__type(value, struct sx_ban);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sentry_ban_cidr_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SX_MAX_CIDR_BANS);
	__type(key, struct sx_lpm_v6);
	__type(value, struct sx_ban);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sentry_ban_cidr_v6 SEC(".maps");

/* Allow list (PortSentry's ignore file) and never-ban list: key = prefix +
 * network, value = SX_ALLOW or SX_NEVER_BAN. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SX_MAX_ALLOW);
	__type(key, struct sx_lpm_v4);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sentry_allow_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SX_MAX_ALLOW);
	__type(key, struct sx_lpm_v6);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sentry_allow_v6 SEC(".maps");

/* Per-CIDR TTL rules for automatic bans: key = prefix + network, value =
 * ban length in ns (0 = permanent). The most specific rule wins; none = config. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__type(key, struct sx_lpm_v4);
	__type(value, __u64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sentry_ttl_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__type(key, struct sx_lpm_v6);
	__type(value, __u64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sentry_ttl_v6 SEC(".maps");

/* Maybe-banned filter (sentry_shared.h): bit sx_filter_bit(source) set when
 * an exact ban (v4 or v6) may hold the source; clear = surely not banned. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SX_BAN_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(map_flags, BPF_F_MMAPABLE);
} sentry_ban_filter SEC(".maps");

/* Maybe-listed filter: the same for the single-host entries of the allow and
 * never-ban lists (wider entries are counted in sentry_presence instead). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SX_LIST_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(map_flags, BPF_F_MMAPABLE);
} sentry_list_filter SEC(".maps");

/* Ban epoch: key 0, value = a count user space raises (atomically, through
 * mmap) after every write or delete of an exact ban: cached bans of older
 * epochs in sentry_drops are void (struct sx_dropslot). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(map_flags, BPF_F_MMAPABLE);
} sentry_ban_epoch SEC(".maps");

/* The coarse clock as last read on this CPU, and the jiffies it was read at
 * (program-private: user space never reads it). */
struct clock_cache {
	__u64 jiffies;
	__u64 ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct clock_cache);
} sentry_clock SEC(".maps");

/* Drops of address bans, per CPU (a flood from one banned source over many
 * RX queues must not bounce one cache line between cores): slot = a hash of
 * the source. User space sums the CPUs' slots of a source and adds the ban
 * entry's own count. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SX_DROP_SLOTS);
	__type(key, __u32);
	__type(value, struct sx_dropslot);
} sentry_drops SEC(".maps");

/* Flood accounting: key 0, value = struct sx_flood. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sx_flood);
} sentry_flood SEC(".maps");

/* The destination ports of summarised alerts, as 65536 bits (the daemon reads
 * and clears them once a second for its summary line). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SX_FLOOD_PORT_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} sentry_flood_ports SEC(".maps");

/* Repeat offenders: key = 16-byte source (v4-mapped), value = struct sx_offender. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SX_MAX_OFFENDERS);
	__type(key, struct in6_addr);
	__type(value, struct sx_offender);
} sentry_offenders SEC(".maps");

/* Per-minute cap on automatic bans: key = 0, value = struct sx_ratecap. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sx_ratecap);
} sentry_ratecap SEC(".maps");

/* Watched ports: key = destination port (host order), value = SX_PORT_* bits. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} sentry_ports SEC(".maps");

/* Per-source scan state: key = 16-byte source (v4-mapped), value = struct sx_source. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SX_MAX_SOURCES);
	__type(key, struct in6_addr);
	__type(value, struct sx_source);
} sentry_sources SEC(".maps");

/* Per-source sweep state: key = 16-byte source (v4-mapped), value = struct
 * sx_sweep. Touched only by SYN, UDP and ICMP echo to protected networks, and
 * only when sweep detection is on. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SX_MAX_SOURCES);
	__type(key, struct in6_addr);
	__type(value, struct sx_sweep);
} sentry_sweeps SEC(".maps");

/* Runtime configuration: key = 0, value = struct sx_config. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sx_config);
} sentry_config SEC(".maps");

/* Entry counts of the LPM tries: key = 0, value = struct sx_presence.
 * Mmapable: user space stores each count on its own (sx_u32_store), so the
 * CLI and the daemon writing different counts never undo each other. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sx_presence);
	__uint(map_flags, BPF_F_MMAPABLE);
} sentry_presence SEC(".maps");

/* Protected destinations: key = prefix + address, value = SX_DEST_*. This
 * host's addresses (/32, /128) and the networks of protect.networks. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SX_MAX_PROTECT);
	__type(key, struct sx_lpm_v4);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sentry_protect_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SX_MAX_PROTECT);
	__type(key, struct sx_lpm_v6);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sentry_protect_v6 SEC(".maps");

/* This host's addresses, direct-mapped: key = slot, value = struct sx_host_slot. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SX_HOST_SLOTS);
	__type(key, __u32);
	__type(value, struct sx_host_slot);
} sentry_hosts SEC(".maps");

/* Services in protected networks (protect.services): key = proto + port +
 * address prefix, value = 1. A service is never a tripwire. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SX_MAX_SERVICES);
	__type(key, struct sx_svc_v4);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sentry_services_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SX_MAX_SERVICES);
	__type(key, struct sx_svc_v6);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sentry_services_v6 SEC(".maps");

/* Live peers: key = 16-byte address (v4-mapped), value = struct sx_peer (its
 * live conntrack entries by role). Kept by the daemon from conntrack events;
 * read on the ban path only. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SX_MAX_PEERS);
	__type(key, struct in6_addr);
	__type(value, struct sx_peer);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sentry_peers SEC(".maps");

/* What this program is: key = 0, value = struct sx_info (written at load). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sx_info);
} sentry_info SEC(".maps");

/* Probes per destination port: key = port (TCP) or 65536 + port (UDP), value =
 * per-CPU count. Touched on the probe path only. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 131072);
	__type(key, __u32);
	__type(value, __u64);
} sentry_port_probes SEC(".maps");

/* Counters: key = enum sx_stat, value = per-CPU packet count. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SX_STAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} sentry_stats SEC(".maps");

/* Alerts to user space: struct sx_event records. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SX_RINGBUF_BYTES);
} sentry_events SEC(".maps");

/* Parsed facts about one packet; filled by the parsers below. */
struct pkt {
	struct in6_addr saddr; /* v4 as ::ffff:a.b.c.d */
	struct in6_addr daddr;
	__be32 saddr4;
	__be32 daddr4;
	__u16 family; /* 4 or 6 */
	__u8 l4proto;
	__u8 tcp_flags;
	__u8 dscope; /* SX_DEST_*, once the destination was checked */
	__u8 frag;   /* 0: not a fragment; 1: the first of several; 2: a later one */
	__u16 frag_off; /* a later fragment's offset, in bytes */
	__u16 l4len;    /* a first fragment's bytes of L4 header and data, by the IP length fields */
	__be16 sport;
	__be16 dport;
	__u32 sfold; /* the source folded to 32 bits for the filters (sx_filter_bit) */
};

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&sentry_stats, &idx);
	if (v)
		*v += 1;
}

static __always_inline int verdict(__u32 action)
{
	count(action == XDP_DROP ? SX_STAT_DROPPED : SX_STAT_PASSED);
	return action;
}

/* Each parser takes the cursor, checks bounds before every access, advances
 * the cursor and returns the next protocol, or -1 when the packet is short. */
static __always_inline int parse_eth(void **cur, void *end)
{
	struct ethhdr *eth = *cur;
	if ((void *)(eth + 1) > end)
		return -1;
	*cur = eth + 1;
	__u16 proto = eth->h_proto;

#pragma unroll
	for (int i = 0; i < VLAN_MAX_DEPTH; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		struct vlan_hdr *vh = *cur;
		if ((void *)(vh + 1) > end)
			return -1;
		proto = vh->encap_proto;
		*cur = vh + 1;
	}
	return bpf_ntohs(proto);
}

/* Returns the L4 protocol (p->frag says whether this is a fragment), or -1
 * when short or malformed. */
static __always_inline int parse_ipv4(void **cur, void *end, struct pkt *p)
{
	struct iphdr *ip = *cur;
	if ((void *)(ip + 1) > end)
		return -1;
	if (ip->version != 4 || ip->ihl < 5)
		return -1;
	__u32 hlen = ip->ihl * 4;
	if ((void *)ip + hlen > end)
		return -1;
	p->family = 4;
	p->saddr4 = ip->saddr;
	p->sfold = ip->saddr;
	p->daddr4 = ip->daddr;
	p->saddr.in6_u.u6_addr32[2] = bpf_htonl(0xffff);
	p->saddr.in6_u.u6_addr32[3] = ip->saddr;
	p->daddr.in6_u.u6_addr32[2] = bpf_htonl(0xffff);
	p->daddr.in6_u.u6_addr32[3] = ip->daddr;
	*cur = (void *)ip + hlen;
	if (!(ip->frag_off & bpf_htons(0x3fff)))
		return ip->protocol; /* the common case: not a fragment */
	__u16 fo = bpf_ntohs(ip->frag_off);
	if (fo & 0x1fff) {
		p->frag = 2;
		p->frag_off = (fo & 0x1fff) * 8;
		return ip->protocol;
	}
	/* the first of several: how much of its L4 header it carries, by its length field */
	__u16 tot = bpf_ntohs(ip->tot_len);
	if (tot < hlen)
		return -1;
	p->frag = 1;
	p->l4len = tot - hlen;
	return ip->protocol;
}

static __always_inline int parse_ipv6(void **cur, void *end, struct pkt *p)
{
	struct ipv6hdr *ip6 = *cur;
	if ((void *)(ip6 + 1) > end)
		return -1;
	if (ip6->version != 6)
		return -1;
	p->family = 6;
	__builtin_memcpy(&p->saddr, &ip6->saddr, sizeof(p->saddr));
	p->sfold = p->saddr.in6_u.u6_addr32[0] ^ p->saddr.in6_u.u6_addr32[1] ^ p->saddr.in6_u.u6_addr32[2] ^
		   p->saddr.in6_u.u6_addr32[3];
	__builtin_memcpy(&p->daddr, &ip6->daddr, sizeof(p->daddr));
	*cur = ip6 + 1;
	__u8 next = ip6->nexthdr;
	__u32 plen = bpf_ntohs(ip6->payload_len);
	__u32 hdrs = 0; /* extension header bytes so far */

	/* IPV6_EXT_MAX headers, and one more turn to reach what follows them */
#pragma unroll
	for (int i = 0; i <= IPV6_EXT_MAX; i++) {
		switch (next) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS: {
			struct ipv6_opt_hdr *oh = *cur;
			if ((void *)(oh + 1) > end)
				return -1;
			next = oh->nexthdr;
			hdrs += (oh->hdrlen + 1) * 8;
			*cur = (void *)oh + (oh->hdrlen + 1) * 8;
			break;
		}
		case IPPROTO_AH: {
			struct ipv6_opt_hdr *oh = *cur;
			if ((void *)(oh + 1) > end)
				return -1;
			next = oh->nexthdr;
			hdrs += (oh->hdrlen + 2) * 4;
			*cur = (void *)oh + (oh->hdrlen + 2) * 4;
			break;
		}
		case IPPROTO_FRAGMENT: {
			struct ipv6_frag_hdr *fh = *cur;
			if ((void *)(fh + 1) > end)
				return -1;
			__u16 fo = bpf_ntohs(fh->frag_off);
			next = fh->nexthdr;
			hdrs += sizeof(*fh);
			*cur = fh + 1;
			if (fo & 0xfff8) { /* a later fragment: the rest is payload */
				p->frag = 2;
				p->frag_off = fo & 0xfff8;
				return next;
			}
			if (fo & 1)
				p->frag = 1;
			break;
		}
		default:
			if (plen < hdrs)
				return -1;
			p->l4len = plen - hdrs;
			return next;
		}
	}
	return -3; /* more extension headers than we follow: the addresses are known */
}

/* True when the filter's bit for `bit` is set: the address may be in the
 * table behind the filter. An array lookup is inlined: no call. */
static __always_inline int filter_has(void *filter, __u32 bit)
{
	__u32 word = bit >> 6;
	__u64 *w = bpf_map_lookup_elem(filter, &word);
	return !w || (*w & (1ULL << (bit & 63))); /* no word: look in the table */
}

static __always_inline void filter_set(void *filter, __u32 bit)
{
	__u32 word = bit >> 6;
	__u64 *w = bpf_map_lookup_elem(filter, &word);
	if (w)
		__sync_fetch_and_or(w, 1ULL << (bit & 63));
}

/* The coarse clock without its helper calls while the jiffies stand still:
 * both move on the same tick, so the cached reading is at most a tick or two
 * behind (a ban lapses that much late, never early). bpf_jiffies64() is
 * inlined by the verifier; the clock helper costs two kernel calls. */
static __always_inline __u64 coarse_now(void)
{
	__u32 zero = 0;
	struct clock_cache *c = bpf_map_lookup_elem(&sentry_clock, &zero);
	__u64 j = bpf_jiffies64();
	if (!c)
		return bpf_ktime_get_coarse_ns();
	if (c->jiffies != j) {
		/* jiffies move before the coarse clock does: latch the tick only once
		 * the clock has moved too, or this CPU would keep the old time for it */
		__u64 ns = bpf_ktime_get_coarse_ns();
		if (ns != c->ns)
			c->jiffies = j;
		c->ns = ns;
	}
	return c->ns;
}

/* A ban entry is in force when it exists and has not expired. The clock is
 * read only when there is an entry: the pass path never pays for it. */
static __always_inline int ban_in_force(struct sx_ban *b)
{
	if (!b)
		return 0;
	if (b->expires_ns && b->expires_ns <= coarse_now()) {
		count(SX_STAT_EXPIRED_HITS);
		return 0;
	}
	return 1;
}

/* One more drop of an address ban, on this CPU's counter: the ban entry is
 * only read on the drop path, never written, except when this source takes
 * the slot over from another banned source, whose count then goes into its
 * entry (or is dropped with it, when its ban is gone). */
static __always_inline struct sx_dropslot *drop_slot(struct pkt *p)
{
	__u32 i = (p->sfold * 2654435761u) >> 18; /* Fibonacci hashing: 14 bits = SX_DROP_SLOTS */
	return bpf_map_lookup_elem(&sentry_drops, &i);
}

/* An IPv6 source written v4-mapped (spoofed: no stack sends one) has the 16
 * bytes of the IPv4 address: its bans are never cached, nor looked up in the
 * cache, so neither family can take the other's cached ban. */
static __always_inline int cacheable(struct pkt *p)
{
	__u32 *a = p->saddr.in6_u.u6_addr32;
	return p->family == 4 || a[0] || a[1] || a[2] != bpf_htonl(0xffff);
}

static __always_inline int slot_is(struct sx_dropslot *s, struct pkt *p)
{
	__u32 *a = (__u32 *)s->addr;
	return a[0] == p->saddr.in6_u.u6_addr32[0] && a[1] == p->saddr.in6_u.u6_addr32[1] &&
	       a[2] == p->saddr.in6_u.u6_addr32[2] && a[3] == p->saddr.in6_u.u6_addr32[3];
}

/* The source's exact ban as cached in this CPU's drop slot, when the cache
 * is current (epoch) and the ban in force; else NULL (look in the table). */
static __always_inline struct sx_dropslot *cached_ban(struct pkt *p, __u64 epoch)
{
	struct sx_dropslot *s = drop_slot(p);
	if (!s || s->epoch != epoch + 1 || !slot_is(s, p) || !cacheable(p))
		return NULL;
	if (s->expires_ns && s->expires_ns <= coarse_now())
		return NULL;
	return s;
}

/* `epoch`: sentry_ban_epoch as read before the lookup that found b. The
 * slot's epoch is voided first and set last, so a run nested on this CPU
 * never matches a half-written slot. */
static __always_inline void count_drop(struct pkt *p, struct sx_ban *b, __u64 epoch)
{
	struct sx_dropslot *s = drop_slot(p);
	if (!s) {
		__sync_fetch_and_add(&b->drops, 1);
		return;
	}
	s->epoch = 0;
	if (!slot_is(s, p)) {
		__u32 *a = (__u32 *)s->addr;
		if (s->drops) {
			struct sx_ban *old;
			if (a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0xffff))
				old = bpf_map_lookup_elem(&sentry_bans_v4, &a[3]);
			else
				old = bpf_map_lookup_elem(&sentry_bans_v6, s->addr);
			if (old)
				__sync_fetch_and_add(&old->drops, s->drops);
		}
		__builtin_memcpy(s->addr, &p->saddr, 16);
		s->drops = 0;
	}
	s->drops += 1;
	s->expires_ns = b->expires_ns;
	if (cacheable(p))
		s->epoch = epoch + 1;
}

/* SX_ALLOW, SX_NEVER_BAN, or 0 when the source is on neither list. The trie
 * is searched only when a wide entry exists or the source's filter bit is set. */
static __always_inline __u8 allow_kind(struct pkt *p, struct sx_presence *pr)
{
	__u8 *v;
	int maybe = filter_has(&sentry_list_filter, sx_filter_bit(p->sfold, SX_LIST_FILTER_LOG));
	if (p->family == 4) {
		if (!pr->allow_v4 || !(pr->wide_v4 || maybe))
			return 0;
		struct sx_lpm_v4 k = { .prefixlen = 32, .addr = p->saddr4 };
		v = bpf_map_lookup_elem(&sentry_allow_v4, &k);
	} else {
		if (!pr->allow_v6 || !(pr->wide_v6 || maybe))
			return 0;
		struct sx_lpm_v6 k = { .prefixlen = 128 };
		__builtin_memcpy(k.addr, &p->saddr, 16);
		v = bpf_map_lookup_elem(&sentry_allow_v6, &k);
	}
	return v ? *v : 0;
}

/* Ban length for this source: a repeat offender's escalated length, else the
 * most specific TTL rule, else the config's. */
static __always_inline __u64 ban_ttl(struct pkt *p, struct sx_config *cfg, __u64 now)
{
	struct sx_offender *o = bpf_map_lookup_elem(&sentry_offenders, &p->saddr);
	if (o && now < o->until_ns)
		return o->ttl_ns;
	__u64 *ttl;
	if (p->family == 4) {
		struct sx_lpm_v4 k = { .prefixlen = 32, .addr = p->saddr4 };
		ttl = bpf_map_lookup_elem(&sentry_ttl_v4, &k);
	} else {
		struct sx_lpm_v6 k = { .prefixlen = 128 };
		__builtin_memcpy(k.addr, &p->saddr, 16);
		ttl = bpf_map_lookup_elem(&sentry_ttl_v6, &k);
	}
	return ttl ? *ttl : cfg->ban_ttl_ns;
}

/* True when the per-minute cap on automatic bans allows one more. */
static __always_inline int under_cap(struct sx_config *cfg, __u64 now)
{
	if (!cfg->max_bans_per_min)
		return 1;
	__u32 zero = 0;
	struct sx_ratecap *rc = bpf_map_lookup_elem(&sentry_ratecap, &zero);
	if (!rc)
		return 1;
	if ((__s64)(now - rc->minute_start_ns) > 60000000000LL) {
		rc->minute_start_ns = now;
		rc->bans = 0;
	}
	return __sync_fetch_and_add(&rc->bans, 1) < cfg->max_bans_per_min;
}

/* The ban in force on this source, or NULL; *exact says whether it is an
 * address's own (a hash entry) rather than a network's (an LPM entry). */
static __always_inline struct sx_ban *ban_of(struct pkt *p, struct sx_presence *pr, int *exact)
{
	struct sx_ban *b = NULL;
	int maybe = filter_has(&sentry_ban_filter, sx_filter_bit(p->sfold, SX_BAN_FILTER_LOG));
	*exact = 1;
	if (p->family == 4) {
		if (maybe)
			b = bpf_map_lookup_elem(&sentry_bans_v4, &p->saddr4);
		if (ban_in_force(b))
			return b;
		if (!pr->cidr_v4)
			return NULL;
		struct sx_lpm_v4 k = { .prefixlen = 32, .addr = p->saddr4 };
		b = bpf_map_lookup_elem(&sentry_ban_cidr_v4, &k);
	} else {
		if (maybe)
			b = bpf_map_lookup_elem(&sentry_bans_v6, &p->saddr);
		if (ban_in_force(b))
			return b;
		if (!pr->cidr_v6)
			return NULL;
		struct sx_lpm_v6 k = { .prefixlen = 128 };
		__builtin_memcpy(k.addr, &p->saddr, 16);
		b = bpf_map_lookup_elem(&sentry_ban_cidr_v6, &k);
	}
	*exact = 0;
	return ban_in_force(b) ? b : NULL;
}

/* A banned source's packet is dropped: counted per CPU for an address's ban,
 * in the entry for a network's (CIDR bans are few). */
static __always_inline int drop_banned(struct pkt *p, struct sx_ban *b, int exact, __u64 epoch)
{
	if (exact)
		count_drop(p, b, epoch);
	else
		__sync_fetch_and_add(&b->drops, 1);
	return verdict(XDP_DROP);
}

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10
#define TH_URG 0x20

/* Flag sets no TCP stack sends outside a connection are probes on any port;
 * a bare SYN, and an ACK or FIN+ACK (nmap's ACK, window and Maimon scans), are
 * probes only on a watched port (and the latter only outside any connection the
 * kernel knows). SYN+ACK and RST(+ACK) are answers. ECE/CWR are ignored (ECN). */
static __always_inline __u8 classify_tcp(__u8 raw, __u8 port_bits)
{
	__u8 f = raw & 0x3f;
	if ((f & (TH_SYN | TH_FIN)) == (TH_SYN | TH_FIN) || (f & (TH_SYN | TH_RST)) == (TH_SYN | TH_RST))
		return SX_KIND_UNKNOWN;
	if (f & TH_ACK) {
		if ((f & (TH_SYN | TH_RST)) || !(port_bits & SX_PORT_TCP))
			return SX_KIND_NONE;
		return (f & TH_FIN) ? SX_KIND_MAIMON : SX_KIND_ACK;
	}
	if (f == 0)
		return SX_KIND_NULL;
	if (f == TH_FIN)
		return SX_KIND_FIN;
	if (f == (TH_FIN | TH_PSH | TH_URG))
		return SX_KIND_XMAS;
	if (f == TH_SYN)
		return (port_bits & SX_PORT_TCP) ? SX_KIND_SYN : SX_KIND_NONE;
	if (f == TH_RST)
		return SX_KIND_NONE; /* a stack answering an unexpected segment */
	return SX_KIND_UNKNOWN; /* FIN+PSH, URG alone, PSH alone, SYN+PSH, ... */
}

/* SX_DEST_HOST or SX_DEST_NET when the destination is protected, else 0.
 * This host's own addresses are found in sentry_hosts without an LPM lookup. */
static __always_inline __u8 dest_scope(struct pkt *p)
{
	__u32 *d = p->daddr.in6_u.u6_addr32;
	__u32 slot = sx_filter_bit(d[0] ^ d[1] ^ d[2] ^ d[3], SX_HOST_SLOTS_LOG);
	struct sx_host_slot *h = bpf_map_lookup_elem(&sentry_hosts, &slot);
	/* slots hold IPv4 addresses v4-mapped: an IPv6 packet to ::ffff:a.b.c.d goes to the trie */
	if (h && h->scope && (p->family == 4 || d[0] || d[1] || d[2] != bpf_htonl(0xffff))) {
		__u32 *a = (__u32 *)h->addr;
		if (a[0] == d[0] && a[1] == d[1] && a[2] == d[2] && a[3] == d[3])
			return h->scope;
	}
	__u8 *v;
	if (p->family == 4) {
		struct sx_lpm_v4 k = { .prefixlen = 32, .addr = p->daddr4 };
		v = bpf_map_lookup_elem(&sentry_protect_v4, &k);
	} else {
		struct sx_lpm_v6 k = { .prefixlen = 128 };
		__builtin_memcpy(k.addr, &p->daddr, 16);
		v = bpf_map_lookup_elem(&sentry_protect_v6, &k);
	}
	return v ? *v : 0;
}

/* True when the destination address, protocol and port are a listed service. */
static __always_inline int is_service(struct pkt *p, struct sx_presence *pr)
{
	if (!(p->family == 4 ? pr->svc_v4 : pr->svc_v6))
		return 0; /* no services listed: no LPM lookup */
	if (p->family == 4) {
		struct sx_svc_v4 k = { .prefixlen = 64, .proto = p->l4proto, .port = p->dport, .addr = p->daddr4 };
		return bpf_map_lookup_elem(&sentry_services_v4, &k) != NULL;
	}
	struct sx_svc_v6 k = { .prefixlen = 160, .proto = p->l4proto, .port = p->dport };
	__builtin_memcpy(k.addr, &p->daddr, 16);
	return bpf_map_lookup_elem(&sentry_services_v6, &k) != NULL;
}

static __always_inline __u32 fill_tuple(struct pkt *p, struct bpf_sock_tuple *t)
{
	if (p->family == 4) {
		t->ipv4.saddr = p->saddr4;
		t->ipv4.daddr = p->daddr4;
		t->ipv4.sport = p->sport;
		t->ipv4.dport = p->dport;
		return sizeof(t->ipv4);
	}
	__builtin_memcpy(t->ipv6.saddr, &p->saddr, 16);
	__builtin_memcpy(t->ipv6.daddr, &p->daddr, 16);
	t->ipv6.sport = p->sport;
	t->ipv6.dport = p->dport;
	return sizeof(t->ipv6);
}

/* True when a local socket owns the packet: the reply to our own DNS query
 * that lands on a "watched" ephemeral port, a segment of an established
 * connection (a listener too: a SYN-cookie handshake ends on the listener). */
static __always_inline int local_socket(struct xdp_md *ctx, struct pkt *p)
{
	struct bpf_sock_tuple t = {};
	__u32 len = fill_tuple(p, &t);
	struct bpf_sock *sk = p->l4proto == IPPROTO_UDP ? bpf_sk_lookup_udp(ctx, &t, len, BPF_F_CURRENT_NETNS, 0)
							 : bpf_skc_lookup_tcp(ctx, &t, len, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	bpf_sk_release(sk);
	return 1;
}

#ifndef SX_NO_CONNTRACK
/* The XDP conntrack kfuncs (net/netfilter/nf_conntrack_bpf.c). */
struct bpf_ct_opts {
	__s32 netns_id;
	__s32 error;
	__u8 l4proto;
	__u8 dir;
	__u16 ct_zone_id;
	__u8 ct_zone_dir;
	__u8 reserved[3];
};

struct nf_conn {
	unsigned long status;
} __attribute__((preserve_access_index));

extern struct nf_conn *bpf_xdp_ct_lookup(struct xdp_md *ctx, struct bpf_sock_tuple *tuple, __u32 tuple__sz,
					 struct bpf_ct_opts *opts, __u32 opts__sz) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;

#define CT_DIR_REPLY 1
#define IPS_SEEN_REPLY (1 << 1)
#define IPS_ASSURED (1 << 2)

/* True when conntrack knows the packet's connection: it is a reply (the other
 * side opened it: a forwarded or NATed flow, our own query), or it belongs to
 * a flow that was answered (UDP, ICMP) or completed its handshake (TCP). A
 * repeated probe matches an unanswered entry of its own, which does not count. */
static __always_inline int known_connection(struct xdp_md *ctx, struct pkt *p)
{
	struct bpf_sock_tuple t = {};
	__u32 len = fill_tuple(p, &t);
	struct bpf_ct_opts opts = { .netns_id = -1, .l4proto = p->l4proto };
	struct nf_conn *ct = bpf_xdp_ct_lookup(ctx, &t, len, &opts, sizeof(opts));
	if (!ct)
		return 0;
	unsigned long live = p->l4proto == IPPROTO_TCP ? IPS_ASSURED : IPS_SEEN_REPLY;
	int known = opts.dir == CT_DIR_REPLY || (ct->status & live);
	bpf_ct_release(ct);
	return known;
}
#else
static __always_inline int known_connection(struct xdp_md *ctx, struct pkt *p)
{
	return 0;
}
#endif

/* True when the source has a live connection to or through this host that a
 * forged probe must not cut: one we opened to it, or its own settled TCP one. */
static __always_inline int live_peer(struct pkt *p, __u64 now)
{
	struct sx_peer *v = bpf_map_lookup_elem(&sentry_peers, &p->saddr);
	if (!v)
		return 0;
	/* since may be a tick ahead of the coarse clock: never let the difference wrap */
	__u64 since = v->originator_since_ns;
	return v->responder || (v->originator && now >= since && now - since >= SX_PEER_SETTLE_NS);
}

static __always_inline void emit_alert(struct xdp_md *ctx, struct pkt *p, __u8 kind,
				       __u32 probes, __u64 now, __u64 expires, __u8 flags)
{
	struct sx_event *ev = bpf_ringbuf_reserve(&sentry_events, sizeof(*ev), 0);
	if (!ev) {
		count(SX_STAT_RB_LOST);
		return;
	}
	ev->ts_ns = now;
	ev->expires_ns = expires;
	__builtin_memcpy(ev->addr, &p->saddr, 16);
	ev->ifindex = ctx->ingress_ifindex;
	ev->probes = probes;
	ev->port = bpf_ntohs(p->dport);
	ev->family = p->family;
	ev->type = SX_EV_ALERT;
	ev->proto = p->l4proto;
	ev->kind = kind;
	ev->tcp_flags = p->tcp_flags;
	ev->flags = flags;
	ev->dscope = p->dscope;
	__builtin_memset(ev->pad0, 0, sizeof(ev->pad0));
	__builtin_memcpy(ev->daddr, &p->daddr, 16);
	bpf_ringbuf_submit(ev, 0);
}

/* Inserts an automatic ban; returns 0 on success. */
static __always_inline int ban_source(struct pkt *p, __u8 kind, __u64 now, __u64 expires)
{
	struct sx_ban b = {
		.expires_ns = expires,
		.created_ns = now,
		.drops = 1, /* the probe that crossed the trigger is dropped too */
		.port = bpf_ntohs(p->dport),
		.proto = p->l4proto,
		.kind = kind,
		.origin = SX_ORIGIN_AUTO,
	};
	filter_set(&sentry_ban_filter, sx_filter_bit(p->sfold, SX_BAN_FILTER_LOG)); /* the bit before the entry */
	if (p->family == 4)
		return bpf_map_update_elem(&sentry_bans_v4, &p->saddr4, &b, BPF_ANY);
	return bpf_map_update_elem(&sentry_bans_v6, &p->saddr, &b, BPF_ANY);
}

/* Per-kind probe counter (the first kinds are contiguous, the later ones appended). */
static __always_inline __u32 kind_stat(__u8 kind)
{
	switch (kind) {
	case SX_KIND_FRAG:
		return SX_STAT_PROBE_FRAG;
	case SX_KIND_ACK:
		return SX_STAT_PROBE_ACK;
	case SX_KIND_MAIMON:
		return SX_STAT_PROBE_MAIMON;
	case SX_KIND_SWEEP:
		return SX_STAT_PROBE_SWEEP;
	case SX_KIND_V6CHAIN:
		return SX_STAT_PROBE_V6CHAIN;
	default:
		return SX_STAT_PROBE_SYN + kind - SX_KIND_SYN;
	}
}

static __always_inline struct sx_flood *flood_now(__u64 now)
{
	__u32 zero = 0;
	struct sx_flood *f = bpf_map_lookup_elem(&sentry_flood, &zero);
	if (f && (__s64)(now - f->second_start_ns) > 1000000000LL) {
		/* a second with no crossing at all in between leaves no pressure behind */
		f->crossings_prev = (__s64)(now - f->second_start_ns) > 2000000000LL ? 0 : f->crossings;
		f->crossings = 0;
		f->alerts = 0;
		f->second_start_ns = now;
	}
	return f;
}

/* One more trigger crossing; true when crossings run above pressure_per_sec
 * (this second or the last), i.e. a flood of single probes is under way. */
static __always_inline int under_pressure(struct sx_config *cfg, __u64 now)
{
	struct sx_flood *f = flood_now(now);
	if (!f || !cfg->pressure_per_sec)
		return 0;
	__u32 n = __sync_fetch_and_add(&f->crossings, 1) + 1;
	return n > cfg->pressure_per_sec || f->crossings_prev > cfg->pressure_per_sec;
}

/* Marks the probe's port for the daemon's summary line. */
static __always_inline void summarise_port(struct pkt *p)
{
	__u16 port = bpf_ntohs(p->dport);
	__u32 word = port >> 6;
	__u64 *bits = bpf_map_lookup_elem(&sentry_flood_ports, &word);
	if (bits)
		__sync_fetch_and_or(bits, 1ULL << (port & 63));
}

/* An alert that bans nothing: sent while under alerts_per_sec this second;
 * beyond that only counted, with its port, for the daemon's summary line. */
static __always_inline void alert_or_summarise(struct xdp_md *ctx, struct pkt *p, __u8 kind, __u32 probes,
					       struct sx_config *cfg, __u64 now, __u8 flags)
{
	struct sx_flood *f = flood_now(now);
	if (!f || !cfg->alerts_per_sec || __sync_fetch_and_add(&f->alerts, 1) < cfg->alerts_per_sec) {
		emit_alert(ctx, p, kind, probes, now, 0, flags);
		return;
	}
	count(SX_STAT_ALERTS_SUMMARISED);
	summarise_port(p);
}

/* A source crossed a trigger: alert once, and ban it unless blocking is off
 * for the protocol, it is on the never-ban list, it has a live connection,
 * or the per-minute cap is reached. Returns XDP_DROP when it banned it. */
static __always_inline int judge(struct xdp_md *ctx, struct pkt *p, __u8 kind, struct sx_config *cfg,
				 __u64 now, __u8 never_ban, __u32 probes)
{
	count(SX_STAT_ALERTS);
	int block = p->l4proto == IPPROTO_UDP ? cfg->block_udp : cfg->block_tcp;
	if (!block) {
		alert_or_summarise(ctx, p, kind, probes, cfg, now, 0);
		return XDP_PASS;
	}
	if (never_ban) { /* spoofed, or our own: log it, never ban it */
		count(SX_STAT_NEVER_BAN);
		alert_or_summarise(ctx, p, kind, probes, cfg, now, SX_EV_F_NEVER_BAN);
		return XDP_PASS;
	}
	if (live_peer(p, now)) { /* one forged packet must not cut off a live partner */
		count(SX_STAT_LIVE_PEER);
		alert_or_summarise(ctx, p, kind, probes, cfg, now, SX_EV_F_LIVE_PEER);
		return XDP_PASS;
	}
	if (!under_cap(cfg, now)) {
		count(SX_STAT_BAN_CAPPED);
		alert_or_summarise(ctx, p, kind, probes, cfg, now, SX_EV_F_CAPPED);
		return XDP_PASS;
	}
	__u64 ttl = ban_ttl(p, cfg, now);
	__u64 expires = ttl ? now + ttl : 0;
	if (ban_source(p, kind, now, expires)) {
		count(SX_STAT_BAN_TABLE_FULL);
		alert_or_summarise(ctx, p, kind, probes, cfg, now, SX_EV_F_BAN_FAILED);
		return XDP_PASS;
	}
	count(SX_STAT_BANS_ADDED);
	emit_alert(ctx, p, kind, probes, now, expires, SX_EV_F_BANNED);
	return XDP_DROP;
}

/* Counts the probe against its source; returns XDP_DROP when it banned it. */
static __always_inline int on_probe(struct xdp_md *ctx, struct pkt *p, __u8 kind,
				    struct sx_config *cfg, __u64 now, __u8 never_ban)
{
	count(kind_stat(kind));
	if (p->l4proto == IPPROTO_TCP || p->l4proto == IPPROTO_UDP) {
		__u32 pk = bpf_ntohs(p->dport) + (p->l4proto == IPPROTO_UDP ? 65536 : 0);
		__u64 *pc = bpf_map_lookup_elem(&sentry_port_probes, &pk);
		if (pc)
			*pc += 1;
	}

	struct sx_source *st = bpf_map_lookup_elem(&sentry_sources, &p->saddr);
	/* A source we banned that probes again got here past the ban check: its
	 * ban lapsed or was lifted. Judge it afresh; no stale "already blocked". */
	__u16 port = bpf_ntohs(p->dport);
	if (!st || st->banned || (__s64)(now - st->window_start_ns) > (__s64)cfg->window_ns) {
		struct sx_source fresh = { .window_start_ns = now, .last_ns = now, .first_port = port };
		bpf_map_update_elem(&sentry_sources, &p->saddr, &fresh, BPF_ANY);
		st = bpf_map_lookup_elem(&sentry_sources, &p->saddr);
		if (!st)
			return XDP_PASS;
	}
	st->last_ns = now;
	if (port != st->first_port)
		st->multi_port = 1;
	__u32 probes = __sync_fetch_and_add(&st->probes, 1) + 1;
	if (probes <= cfg->trigger || st->alerted)
		return XDP_PASS;
	/* Under a flood of single probes, one port is not evidence enough: the
	 * source's next probe to another port bans it. Until then it is only
	 * counted in the daemon's summary line. */
	if (under_pressure(cfg, now) && !st->multi_port) {
		count(SX_STAT_BANS_DEFERRED);
		summarise_port(p);
		return XDP_PASS;
	}
	/* Over the trigger: exactly one alert per source per window, even when
	 * several CPUs see the crossing at once. */
	if (__sync_fetch_and_add(&st->alerted, 1) != 0)
		return XDP_PASS;
	int v = judge(ctx, p, kind, cfg, now, never_ban, probes);
	if (v == XDP_DROP)
		st->banned = 1;
	return v;
}

/* Which of the sweep set's 512 bits a destination takes. */
static __always_inline __u32 sweep_bit(struct pkt *p)
{
	__u32 h = p->daddr.in6_u.u6_addr32[0] ^ p->daddr.in6_u.u6_addr32[1] ^ p->daddr.in6_u.u6_addr32[2] ^
		  p->daddr.in6_u.u6_addr32[3];
	return (h * 2654435761u) >> (32 - 9); /* Fibonacci hashing: 9 bits */
}

/* A SYN, UDP datagram or ICMP echo to a host of a protected network: one more
 * host reached? Returns XDP_DROP when that made a sweep and banned the source. */
static __always_inline int on_sweep(struct xdp_md *ctx, struct pkt *p, struct sx_config *cfg, __u64 now,
				    __u8 never_ban)
{
	struct sx_sweep *st = bpf_map_lookup_elem(&sentry_sweeps, &p->saddr);
	if (!st || (__s64)(now - st->window_start_ns) > (__s64)cfg->window_ns) {
		struct sx_sweep fresh = { .window_start_ns = now };
		bpf_map_update_elem(&sentry_sweeps, &p->saddr, &fresh, BPF_ANY);
		st = bpf_map_lookup_elem(&sentry_sweeps, &p->saddr);
		if (!st)
			return XDP_PASS;
	}
	__u32 bit = sweep_bit(p) & (SX_SWEEP_BITS - 1);
	__u64 mask = 1ULL << (bit & 63);
	__u64 *word = &st->bits[bit >> 6];
	if (*word & mask)
		return XDP_PASS; /* a host this source already reached in this window */
	/* a datagram of a flow the kernel knows (a reply) reaches no new host */
	if (p->l4proto == IPPROTO_UDP && known_connection(ctx, p))
		return XDP_PASS;
	__sync_fetch_and_or(word, mask);
	__u32 hosts = __sync_fetch_and_add(&st->hosts, 1) + 1;
	count(SX_STAT_PROBE_SWEEP);
	if (hosts < cfg->sweep_trigger)
		return XDP_PASS;
	if (__sync_fetch_and_add(&st->alerted, 1) != 0)
		return XDP_PASS;
	return judge(ctx, p, SX_KIND_SWEEP, cfg, now, never_ban, hosts);
}

/* A fragment no stack sends (the first one too short for its L4 header, or a
 * later one overlapping that header: RFC 1858, RFC 3128): a probe when its
 * destination is protected, and dropped wherever it goes. */
static __always_inline int on_evasion(struct xdp_md *ctx, struct pkt *p, struct sx_config *cfg, __u8 never_ban)
{
	p->dscope = dest_scope(p);
	if (p->dscope)
		on_probe(ctx, p, SX_KIND_FRAG, cfg, coarse_now(), never_ban);
	if (never_ban)
		return XDP_PASS; /* rule 1: the never-ban list is never dropped */
	count(SX_STAT_EVASION_DROPPED);
	return XDP_DROP;
}

/* L4 of a packet with a probe's possible shape: the ports, the TCP flags, the
 * kind (SX_KIND_NONE when it cannot be a probe of a watched port), whether it
 * is sweep-shaped. Returns -1 when the header is cut short (not a fragment
 * trick: the frame itself is truncated), 1 for an evasion fragment. */
static __always_inline int parse_l4(void *cur, void *end, struct pkt *p, __u8 *kind, int *sweepable)
{
	if (p->l4proto == IPPROTO_TCP) {
		struct tcphdr *th = cur;
		if (p->frag == 1 && p->l4len < sizeof(*th)) {
			if ((void *)((__u8 *)cur + 4) <= end) { /* the ports, when the fragment holds them */
				p->sport = th->source;
				p->dport = th->dest;
			}
			return 1;
		}
		if ((void *)(th + 1) > end)
			return -1;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		if (p->frag == 1 && p->l4len < th->doff * 4)
			return 1; /* the options (and with them what follows) arrive in a later fragment */
		__u32 port = bpf_ntohs(th->dest);
		__u8 *bits = bpf_map_lookup_elem(&sentry_ports, &port);
		*kind = classify_tcp(p->tcp_flags, bits ? *bits : 0);
		*sweepable = (p->tcp_flags & 0x3f) == TH_SYN;
	} else if (p->l4proto == IPPROTO_UDP) {
		struct udphdr *uh = cur;
		if (p->frag == 1 && p->l4len < sizeof(*uh))
			return 1;
		if ((void *)(uh + 1) > end)
			return -1;
		p->sport = uh->source;
		p->dport = uh->dest;
		__u32 port = bpf_ntohs(uh->dest);
		__u8 *bits = bpf_map_lookup_elem(&sentry_ports, &port);
		if (bits && (*bits & SX_PORT_UDP))
			*kind = SX_KIND_UDP;
		*sweepable = 1;
	} else if (p->l4proto == IPPROTO_ICMP || p->l4proto == IPPROTO_ICMPV6) {
		__u8 *type = cur;
		if ((void *)(type + 1) > end)
			return -1;
		*sweepable = *type == (p->l4proto == IPPROTO_ICMP ? 8 : 128); /* echo request */
	}
	return 0;
}

/* Global functions (not static) are verified once on their own, not again
 * for every state that reaches them: the rare paths live here, so the
 * verifier's budget goes to the inlined fast path. A call costs a few ns, paid
 * only by the packets that reach them. */
#define RARE __attribute__((noinline))

/* The start of both rare paths: the config (enabled) and presence entries,
 * and what the lists say of the source. -1: pass (no entries, sentry-xdp
 * disabled, or an allowed source, counted); else 1 for a never-ban source, 0. */
static __always_inline int rare_start(struct pkt *p, struct sx_presence **pr, struct sx_config **cfg)
{
	__u32 zero = 0;
	*pr = bpf_map_lookup_elem(&sentry_presence, &zero);
	*cfg = bpf_map_lookup_elem(&sentry_config, &zero);
	if (!p || !*pr || !*cfg || !(*cfg)->enabled)
		return -1;
	__u8 listed = allow_kind(p, *pr);
	if (listed == SX_ALLOW) {
		count(SX_STAT_ALLOWED);
		return -1;
	}
	return listed == SX_NEVER_BAN;
}

/* A chain we do not follow (l4 == -3), or a later fragment that overlaps the
 * TCP header: a probe of what we protect, or an evasion fragment. */
RARE int rare_shape(struct xdp_md *ctx, struct pkt *p, int l4)
{
	struct sx_presence *pr;
	struct sx_config *cfg;
	int never_ban = rare_start(p, &pr, &cfg);
	if (never_ban < 0 || !pr || !cfg)
		return XDP_PASS;
	if (l4 == -3) {
		p->dscope = dest_scope(p);
		if (!p->dscope) {
			count(SX_STAT_NOT_PROTECTED);
			return XDP_PASS;
		}
		return on_probe(ctx, p, SX_KIND_V6CHAIN, cfg, coarse_now(), never_ban);
	}
	p->l4proto = l4;
	return on_evasion(ctx, p, cfg, never_ban); /* overlaps the TCP header */
}

/* A packet of a probe's shape, an evasion fragment (r > 0), or (with sweeps
 * on) one more host reached: is it a probe of something we protect? */
RARE int rare_probe(struct xdp_md *ctx, struct pkt *p, int r, int kind, int sweepable)
{
	struct sx_presence *pr;
	struct sx_config *cfg;
	int never_ban = rare_start(p, &pr, &cfg);
	if (never_ban < 0 || !pr || !cfg)
		return XDP_PASS;
	if (r > 0)
		return on_evasion(ctx, p, cfg, never_ban);

	/* Sweeps: one more host of a protected network reached (any port). */
	int scoped = 0;
	if (sweepable && cfg->sweep_trigger) {
		p->dscope = dest_scope(p);
		scoped = 1;
		if (p->dscope == SX_DEST_NET && on_sweep(ctx, p, cfg, coarse_now(), never_ban) == XDP_DROP)
			return XDP_DROP;
	}
	if (kind == SX_KIND_NONE)
		return XDP_PASS;

	if (!scoped)
		p->dscope = dest_scope(p);
	if (!p->dscope) {
		count(SX_STAT_NOT_PROTECTED);
		return XDP_PASS;
	}
	if (is_service(p, pr)) {
		count(SX_STAT_SERVICE);
		return XDP_PASS;
	}
	/* A SYN or an impossible flag set belongs to no connection (the first SYN
	 * of one reaches us before conntrack has seen it, and the daemon never
	 * watches a port something listens on): only what can be part of a flow
	 * (a datagram, an ACK) pays for the socket and conntrack lookups. */
	if (kind == SX_KIND_UDP || kind == SX_KIND_ACK || kind == SX_KIND_MAIMON) {
		if (p->dscope == SX_DEST_HOST && local_socket(ctx, p)) {
			count(SX_STAT_LOCAL_SOCKET);
			return XDP_PASS;
		}
		if (known_connection(ctx, p)) {
			count(SX_STAT_CONNTRACK);
			return XDP_PASS;
		}
	}
	return on_probe(ctx, p, kind, cfg, coarse_now(), never_ban);
}

SEC("xdp")
int sentry_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	void *cur = data;
	struct pkt p = {};
	int l4;

	int l3 = parse_eth(&cur, end);
	if (l3 == ETH_P_IP)
		l4 = parse_ipv4(&cur, end, &p);
	else if (l3 == ETH_P_IPV6)
		l4 = parse_ipv6(&cur, end, &p);
	else {
		count(l3 < 0 ? SX_STAT_UNPARSED : SX_STAT_NON_IP);
		return verdict(XDP_PASS);
	}
	if (l4 == -1) {
		count(SX_STAT_UNPARSED);
		return verdict(XDP_PASS);
	}

	/* Source is known from here on: bans apply even to fragments and to IPv6
	 * chains we do not follow to the end, so a banned host cannot slip through
	 * by fragmenting or stacking headers. The allow and never-ban lists (an
	 * LPM lookup) are read only where they change a verdict: for a banned
	 * source (they win over bans: a fleet ban of our own gateway) and for a
	 * probe. A packet that is neither pays bit tests of the filters, no call. */
	__u32 zero = 0;
	struct sx_presence *pr = bpf_map_lookup_elem(&sentry_presence, &zero);
	if (!pr)
		return verdict(XDP_PASS);
	{
		/* the epoch before the lookup (volatile: never read after it) */
		__u64 *ep = bpf_map_lookup_elem(&sentry_ban_epoch, &zero);
		__u64 epoch = ep ? *(volatile __u64 *)ep : 0;
		int maybe = filter_has(&sentry_ban_filter, sx_filter_bit(p.sfold, SX_BAN_FILTER_LOG));
		struct sx_dropslot *hot = ep && maybe ? cached_ban(&p, epoch) : NULL;
		if (hot) { /* a banned source seen before on this CPU: no hash lookup */
			__u8 l = allow_kind(&p, pr);
			if (!l) {
				hot->drops += 1;
				return verdict(XDP_DROP);
			}
			if (l == SX_ALLOW) {
				count(SX_STAT_ALLOWED);
				return verdict(XDP_PASS);
			}
		} else {
			int exact;
			struct sx_ban *ban = ban_of(&p, pr, &exact);
			if (ban) {
				__u8 l = allow_kind(&p, pr);
				if (!l)
					return drop_banned(&p, ban, exact, ep ? epoch : ~0ULL);
				if (l == SX_ALLOW) {
					count(SX_STAT_ALLOWED);
					return verdict(XDP_PASS);
				}
			}
		}
	}

	if (l4 < 0 || p.frag == 2) { /* the rare shapes: a chain we do not follow, a later fragment */
		if (l4 == -3)
			count(SX_STAT_V6_CHAIN_LONG);
		else if (!(l4 == IPPROTO_TCP && p.frag_off < sizeof(struct tcphdr))) {
			count(SX_STAT_FRAGMENTS); /* a later fragment that leaves the L4 header alone */
			return verdict(XDP_PASS);
		}
		return verdict(rare_shape(ctx, &p, l4));
	}

	struct sx_config *cfg = bpf_map_lookup_elem(&sentry_config, &zero);
	if (!cfg || !cfg->enabled)
		return verdict(XDP_PASS);
	p.l4proto = l4;

	__u8 kind = SX_KIND_NONE;
	int sweepable = 0;
	int r = parse_l4(cur, end, &p, &kind, &sweepable);
	if (r < 0) {
		count(SX_STAT_UNPARSED);
		return verdict(XDP_PASS);
	}
	if (!r && kind == SX_KIND_NONE && !(sweepable && cfg->sweep_trigger))
		return verdict(XDP_PASS); /* the pass path ends here */
	return verdict(rare_probe(ctx, &p, r, kind, sweepable));
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
