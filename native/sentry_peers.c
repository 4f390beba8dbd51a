// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The live-peer tracker (see sentry_shim.h): keeps sentry_peers, address ->
 * struct sx_peer (the live conntrack entries it takes part in, by role), in step
 * with the kernel's conntrack table, so the XDP program never bans a source that
 * has a real connection to or through this host.
 *
 * Roles: the responder of an entry (orig dst, reply src) is someone this host or
 * its LAN connected to, which a scanner cannot make us do cheaply; the
 * originator (orig src, reply dst) is counted only for TCP, whose live entries
 * cost a completed handshake, and the XDP program trusts it only once its
 * originator count has been above 0 for SX_PEER_SETTLE_NS. An answered ping or
 * datagram makes nobody but its responder a peer.
 *
 * One background thread owns everything below except the stats: it listens to
 * ctnetlink events (NEW, UPDATE, DESTROY), counts an entry once it is live (TCP:
 * assured; anything else: answered), and uncounts it when it is destroyed. A full
 * dump rebuilds the counts at start, after lost events (ENOBUFS) and every five
 * minutes, because events are not a reliable record: with the kernel's default
 * nf_conntrack_events=2 an entry created while nobody listened never reports its
 * end at all.
 *
 * Memory is two open-addressing tables: 8 bytes per counted entry and 32 bytes
 * per address, at most 75 % full, rebuilt at each resync so they shrink again
 * after a peak (about 16 MB + 32 MB for 1M entries over 500k addresses; during a
 * resync the old address table stays until the new one is built, for the
 * originator_since_ns it carries over).
 *
 * Never prints; returns 0 or -errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "sentry_shim.h"
#include "sentry_shared.h"

#ifndef ENOTSUPP
#define ENOTSUPP 524
#endif

#define RESYNC_MS (5 * 60 * 1000) /* SENTRY_XDP_PEERS_RESYNC_MS overrides it (tests) */
#define RETRY_MS 1000		  /* after a failed resync, and between resyncs forced by ENOBUFS */
#define EVENT_RCVBUF (16 << 20)	  /* events queue here while a dump runs */
#define CHUNK 1024		  /* map entries per batch syscall */
#define COUNT_MASK 0x7fffffffu
#define SYNCED 0x80000000u	  /* in responder: the map already holds this entry (only in map_rewrite) */

enum { ST_EVENTS, ST_RESYNCS, ST_PEERS, ST_ERRORS };

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* ---- counted conntrack entries: a set of keys, 0 = empty slot ---- */

/* key = conntrack id << 32 | 32-bit fingerprint of the tuples. The id alone is
 * a 32-bit hash in today's kernels: among 1M entries about a hundred pairs would
 * share one, and a DESTROY of the uncounted twin would then uncount the other. */
struct idset {
	uint64_t *slot;
	size_t cap, n; /* cap: a power of two, or 0 */
};

static long idset_find(const struct idset *s, uint64_t key)
{
	if (!s->cap)
		return -1;
	size_t mask = s->cap - 1;
	for (size_t i = mix64(key) & mask;; i = (i + 1) & mask) {
		if (s->slot[i] == key)
			return (long)i;
		if (!s->slot[i])
			return -1;
	}
}

static void idset_put(uint64_t *slot, size_t cap, uint64_t key)
{
	size_t i = mix64(key) & (cap - 1);
	while (slot[i])
		i = (i + 1) & (cap - 1);
	slot[i] = key;
}

/* 1 when added, 0 when already there, -ENOMEM */
static int idset_add(struct idset *s, uint64_t key)
{
	if (idset_find(s, key) >= 0)
		return 0;
	if ((s->n + 1) * 4 > s->cap * 3) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint64_t *slot = calloc(cap, sizeof(*slot));
		if (!slot)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++)
			if (s->slot[i])
				idset_put(slot, cap, s->slot[i]);
		free(s->slot);
		s->slot = slot;
		s->cap = cap;
	}
	idset_put(s->slot, s->cap, key);
	s->n++;
	return 1;
}

/* 1 when removed, 0 when it was not there. Backward-shift deletion: linear
 * probing stays correct without tombstones, so deletes never slow lookups. */
static int idset_del(struct idset *s, uint64_t key)
{
	long at = idset_find(s, key);
	if (at < 0)
		return 0;
	size_t mask = s->cap - 1, i = (size_t)at, j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (!s->slot[j])
			break;
		size_t home = mix64(s->slot[j]) & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			s->slot[i] = s->slot[j];
			i = j;
		}
	}
	s->slot[i] = 0;
	s->n--;
	return 1;
}

/* ---- live entries per address: both counts 0 marks an empty slot ---- */

struct peer {
	uint8_t addr[16];
	uint32_t responder;  /* live entries it answered; SYNCED bit only inside map_rewrite */
	uint32_t originator; /* live TCP entries it opened */
	uint64_t since;	     /* CLOCK_MONOTONIC_COARSE ns when originator last rose from 0 */
};

struct peers {
	struct peer *slot;
	size_t cap, n;
};

static int used(const struct peer *e) { return e->responder || e->originator; }

/* The clock of bpf_ktime_get_coarse_ns(), which the XDP program compares the
 * since with: CLOCK_MONOTONIC at the last tick. Never ahead of a later reading
 * there, so `now - since` in the program cannot wrap below 0 and look settled. */
static uint64_t now_coarse_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static size_t addr_hash(const uint8_t *a)
{
	uint64_t hi, lo;
	memcpy(&hi, a, 8);
	memcpy(&lo, a + 8, 8);
	return (size_t)mix64(hi ^ mix64(lo));
}

static struct peer *peers_find(const struct peers *p, const uint8_t *addr)
{
	if (!p->cap)
		return NULL;
	size_t mask = p->cap - 1;
	for (size_t i = addr_hash(addr) & mask;; i = (i + 1) & mask) {
		if (!used(&p->slot[i]))
			return NULL;
		if (!memcmp(p->slot[i].addr, addr, 16))
			return &p->slot[i];
	}
}

/* The free slot for addr (not in the table); the caller fills it in. */
static struct peer *peers_put(struct peer *slot, size_t cap, const uint8_t *addr)
{
	size_t i = addr_hash(addr) & (cap - 1);
	while (used(&slot[i]))
		i = (i + 1) & (cap - 1);
	return &slot[i];
}

static void peers_remove(struct peers *p, struct peer *e)
{
	size_t mask = p->cap - 1, i = (size_t)(e - p->slot), j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (!used(&p->slot[j]))
			break;
		size_t home = addr_hash(p->slot[j].addr) & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			p->slot[i] = p->slot[j];
			i = j;
		}
	}
	memset(&p->slot[i], 0, sizeof(p->slot[i]));
	p->n--;
}

static uint32_t add_clamped(uint32_t n, int delta, int *under)
{
	if (delta < 0 && n < (uint32_t)-delta) {
		*under = 1;
		return 0;
	}
	return (uint32_t)((int64_t)n + delta);
}

/* Adds dr to addr's responder count and dor to its originator count, stamps
 * the since when the originator count rises from 0, and puts the result in
 * *out (all 0: the address is gone). 0; -ENOMEM; -ENOENT when asked to take
 * more than the address has (the count stops at 0, and *out is still right). */
static int peers_adjust(struct peers *p, const uint8_t *addr, int dr, int dor, struct sx_peer *out)
{
	struct peer *e = peers_find(p, addr);
	int under = 0;
	memset(out, 0, sizeof(*out));
	if (!e) {
		if (dr < 0 || dor < 0)
			return -ENOENT;
		if (!dr && !dor)
			return 0;
		if ((p->n + 1) * 4 > p->cap * 3) {
			size_t cap = p->cap ? p->cap * 2 : 1024;
			struct peer *slot = calloc(cap, sizeof(*slot));
			if (!slot)
				return -ENOMEM;
			for (size_t i = 0; i < p->cap; i++)
				if (used(&p->slot[i]))
					*peers_put(slot, cap, p->slot[i].addr) = p->slot[i];
			free(p->slot);
			p->slot = slot;
			p->cap = cap;
		}
		e = peers_put(p->slot, p->cap, addr);
		memcpy(e->addr, addr, 16);
		p->n++;
	}
	uint32_t was = e->originator;
	e->responder = add_clamped(e->responder, dr, &under);
	e->originator = add_clamped(e->originator, dor, &under);
	if (!was && e->originator)
		e->since = now_coarse_ns();
	out->responder = e->responder;
	out->originator = e->originator;
	out->originator_since_ns = e->since;
	if (!used(e))
		peers_remove(p, e);
	return under ? -ENOENT : 0;
}

/* After a rebuild: an address whose originator count was above 0 already
 * before it keeps its since; for the others the rebuild's stamp stands. */
static void peers_carry_since(struct peers *p, const struct peers *old)
{
	for (size_t i = 0; i < p->cap; i++) {
		struct peer *e = &p->slot[i];
		if (!e->originator)
			continue;
		const struct peer *o = peers_find(old, e->addr);
		if (o && o->originator)
			e->since = o->since;
	}
}

/* ---- tracker state ---- */

static struct {
	pthread_mutex_t lock; /* serialises start and stop */
	int running;
	pthread_t tid;
	int map_fd;  /* our own dup: the caller may close its fd */
	int stop_fd; /* eventfd: wakes the thread's poll */
	int stopping;
	int resync_ms;
	char netns[PATH_MAX];

	/* start handshake: the thread's first result */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int ready, result;

	/* owned by the thread */
	struct idset ids;
	struct peers peers;

	uint64_t stats[4]; /* written by the thread, read by anyone: atomics */
} pt = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
	.map_fd = -1,
	.stop_fd = -1,
};

static void stat_add(int i, uint64_t n) { __atomic_add_fetch(&pt.stats[i], n, __ATOMIC_RELAXED); }
static void stat_set(int i, uint64_t v) { __atomic_store_n(&pt.stats[i], v, __ATOMIC_RELAXED); }
static int stopping(void) { return __atomic_load_n(&pt.stopping, __ATOMIC_RELAXED); }

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tables_free(void)
{
	free(pt.ids.slot);
	free(pt.peers.slot);
	memset(&pt.ids, 0, sizeof(pt.ids));
	memset(&pt.peers, 0, sizeof(pt.peers));
	stat_set(ST_PEERS, 0);
}

/* ---- one conntrack entry as the tracker sees it ---- */

#define ROLE_RESPONDER 1
#define ROLE_ORIGINATOR 2

struct ct_view {
	uint64_t key;
	int live;
	int naddr;
	uint8_t addr[4][16]; /* the distinct addresses among the two tuples that have a role */
	uint8_t role[4];     /* ROLE_* of each */
};

/* 0, -EAFNOSUPPORT for a family we do not track, -EINVAL when an attribute
 * the kernel always sends is missing. */
static int ct_view(const struct nf_conntrack *ct, struct ct_view *v)
{
	static const int v4[4] = { ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV4_DST, ATTR_REPL_IPV4_SRC,
				   ATTR_REPL_IPV4_DST };
	static const int v6[4] = { ATTR_ORIG_IPV6_SRC, ATTR_ORIG_IPV6_DST, ATTR_REPL_IPV6_SRC,
				   ATTR_REPL_IPV6_DST };
	const uint8_t *l3 = nfct_get_attr(ct, ATTR_L3PROTO);
	const uint8_t *l4 = nfct_get_attr(ct, ATTR_L4PROTO);
	if (!l3 || !l4)
		return -EINVAL;
	if (*l3 != AF_INET && *l3 != AF_INET6)
		return -EAFNOSUPPORT;
	uint64_t fp = mix64((uint64_t)*l3 << 8 | *l4);
	/* orig src, orig dst, reply src, reply dst; only TCP counts originators */
	const uint8_t roles[4] = { *l4 == IPPROTO_TCP ? ROLE_ORIGINATOR : 0, ROLE_RESPONDER, ROLE_RESPONDER,
				   *l4 == IPPROTO_TCP ? ROLE_ORIGINATOR : 0 };
	v->naddr = 0;
	for (int i = 0; i < 4; i++) {
		const void *p = nfct_get_attr(ct, *l3 == AF_INET ? v4[i] : v6[i]);
		uint8_t a[16] = { [10] = 0xff, [11] = 0xff };
		uint64_t hi, lo;
		if (!p)
			return -EINVAL;
		if (*l3 == AF_INET)
			memcpy(a + 12, p, 4); /* v4-mapped, as the XDP program keys it */
		else
			memcpy(a, p, 16);
		memcpy(&hi, a, 8);
		memcpy(&lo, a + 8, 8);
		fp = mix64(fp ^ hi) ^ mix64(lo + (uint64_t)i);
		if (!roles[i])
			continue;
		int j = 0;
		while (j < v->naddr && memcmp(v->addr[j], a, 16))
			j++;
		if (j == v->naddr) {
			memcpy(v->addr[v->naddr++], a, 16);
			v->role[j] = 0;
		}
		v->role[j] |= roles[i]; /* both roles when it is on both sides (e.g. loopback) */
	}
	/* ports tell apart two flows between the same hosts whose ids collide */
	const uint16_t *sport = nfct_get_attr(ct, ATTR_ORIG_PORT_SRC);
	const uint16_t *dport = nfct_get_attr(ct, ATTR_ORIG_PORT_DST);
	fp = mix64(fp ^ (uint64_t)(sport ? *sport : 0) << 16 ^ (dport ? *dport : 0));

	const uint32_t *id = nfct_get_attr(ct, ATTR_ID);
	const uint32_t *status = nfct_get_attr(ct, ATTR_STATUS);
	v->key = (uint64_t)(id ? *id : 0) << 32 | (uint32_t)fp;
	if (!v->key)
		v->key = 1;
	/* a TCP answer may be an RST: only the completed handshake proves a peer */
	v->live = status && (*l4 == IPPROTO_TCP ? (*status & IPS_ASSURED) : (*status & IPS_SEEN_REPLY));
	return 0;
}

/* Counts (delta +1) or uncounts (-1) the entry in each of its addresses' roles;
 * the entry's view is the same at both ends, so a DESTROY undoes exactly what
 * the entry added. With mirror, writes each address's new value to the map,
 * deleting the address when both its counts reach 0. */
static void apply(const struct ct_view *v, int delta, int mirror)
{
	for (int i = 0; i < v->naddr; i++) {
		struct sx_peer val;
		int r = peers_adjust(&pt.peers, v->addr[i], v->role[i] & ROLE_RESPONDER ? delta : 0,
				     v->role[i] & ROLE_ORIGINATOR ? delta : 0, &val);
		if (r)
			stat_add(ST_ERRORS, 1);
		if (r == -ENOMEM || !mirror)
			continue;
		if (val.responder || val.originator ? bpf_map_update_elem(pt.map_fd, v->addr[i], &val, BPF_ANY)
						    : (bpf_map_delete_elem(pt.map_fd, v->addr[i]) && errno != ENOENT))
			stat_add(ST_ERRORS, 1);
	}
	stat_set(ST_PEERS, pt.peers.n);
}

static int event_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data)
{
	struct ct_view v;
	(void)data;
	stat_add(ST_EVENTS, 1);
	int err = ct_view(ct, &v);
	if (err) {
		if (err != -EAFNOSUPPORT)
			stat_add(ST_ERRORS, 1);
	} else if (type == NFCT_T_DESTROY) {
		/* an id never counted (never live, or lost to a resync) changes nothing */
		if (idset_del(&pt.ids, v.key))
			apply(&v, -1, 1);
	} else if (v.live) {
		/* UPDATEs repeat the status; only the first live sighting counts */
		int r = idset_add(&pt.ids, v.key);
		if (r > 0)
			apply(&v, +1, 1);
		else if (r < 0)
			stat_add(ST_ERRORS, 1);
	}
	return stopping() ? NFCT_CB_STOP : NFCT_CB_CONTINUE;
}

static int dump_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data)
{
	struct ct_view v;
	(void)type;
	(void)data;
	int err = ct_view(ct, &v);
	if (err) {
		if (err != -EAFNOSUPPORT)
			stat_add(ST_ERRORS, 1);
	} else if (v.live) {
		int r = idset_add(&pt.ids, v.key);
		if (r > 0)
			apply(&v, +1, 0);
		else if (r < 0)
			stat_add(ST_ERRORS, 1);
	}
	return stopping() ? NFCT_CB_STOP : NFCT_CB_CONTINUE;
}

/* ---- the map: made to hold exactly pt.peers ---- */

/* Writes n entries, batched where the kernel can; after a failure part way
 * (map full, or no batch ops at all) the rest go one by one, each failure counted. */
static void write_chunk(uint8_t (*keys)[16], struct sx_peer *vals, uint32_t n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	uint32_t done = n;
	if (bpf_map_update_batch(pt.map_fd, keys, vals, &done, &opts) == 0)
		return;
	if (done > n)
		done = 0;
	for (uint32_t i = done; i < n; i++)
		if (bpf_map_update_elem(pt.map_fd, keys[i], &vals[i], BPF_ANY))
			stat_add(ST_ERRORS, 1);
}

/* Looks at one map entry: deletes it when the address is not counted any more,
 * marks the address SYNCED when the map already holds its value (the since
 * matters only while the originator count is above 0). */
static void check_entry(const uint8_t *key, const struct sx_peer *val)
{
	struct peer *e = peers_find(&pt.peers, key);
	if (!e) {
		if (bpf_map_delete_elem(pt.map_fd, key) && errno != ENOENT)
			stat_add(ST_ERRORS, 1);
	} else if (e->responder == val->responder && e->originator == val->originator &&
		   (!e->originator || e->since == val->originator_since_ns)) {
		e->responder |= SYNCED;
	}
}

static uint8_t chunk_keys[CHUNK][16];
static struct sx_peer chunk_vals[CHUNK];

/* Checks every map entry, in batches where the kernel has them. */
static int check_map(void)
{
	uint64_t token[8];
	for (int first = 1; !stopping(); first = 0) {
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		uint32_t n = CHUNK;
		int r = bpf_map_lookup_batch(pt.map_fd, first ? NULL : token, token, chunk_keys, chunk_vals, &n, &opts);
		int e = errno;
		if (r && e != ENOENT) {
			if (first && (e == EINVAL || e == ENOTSUPP || e == EOPNOTSUPP))
				break; /* no batch ops: key by key below */
			return -e;
		}
		/* the walk resumes at the next bucket, so deleting what it returned is safe */
		for (uint32_t i = 0; i < n; i++)
			check_entry(chunk_keys[i], &chunk_vals[i]);
		if (r)
			return 0;
	}
	/* old kernels: deleting the current key makes get_next_key start over, which
	 * only revisits entries already checked */
	uint8_t cur[16], next[16];
	void *prev = NULL;
	while (!stopping() && bpf_map_get_next_key(pt.map_fd, prev, next) == 0) {
		struct sx_peer val;
		memcpy(cur, next, 16);
		prev = cur;
		if (bpf_map_lookup_elem(pt.map_fd, next, &val) == 0)
			check_entry(next, &val);
	}
	return 0;
}

/* Makes the map hold exactly pt.peers: stale keys go, and only values that
 * differ are written, so a resync of a quiet table costs reads, not a million
 * element replacements. */
static int map_rewrite(void)
{
	int err = check_map();
	uint32_t n = 0;
	for (size_t i = 0; i < pt.peers.cap; i++) {
		struct peer *e = &pt.peers.slot[i];
		if (!used(e))
			continue;
		if (!(e->responder & SYNCED) && !err && !stopping()) {
			memcpy(chunk_keys[n], e->addr, 16);
			chunk_vals[n++] = (struct sx_peer){
				.responder = e->responder,
				.originator = e->originator,
				.originator_since_ns = e->since,
			};
			if (n == CHUNK) {
				write_chunk(chunk_keys, chunk_vals, n);
				n = 0;
			}
		}
		e->responder &= COUNT_MASK;
	}
	if (n && !stopping())
		write_chunk(chunk_keys, chunk_vals, n);
	return stopping() ? -ECANCELED : err;
}

/* Rebuilds the counts from a fresh dump of both families and makes the map
 * match. Events that queued meanwhile are applied afterwards, and change only
 * what the dump had not seen (the id set makes them idempotent). An address
 * that was an originator before keeps its since; one that becomes one only
 * now gets the time of the dump. */
static int resync(void)
{
	static const uint32_t families[] = { AF_INET, AF_INET6 };
	struct nfct_handle *h = nfct_open(CONNTRACK, 0);
	int err = 0;
	if (!h)
		return errno ? -errno : -EIO;
	struct peers old = pt.peers;
	memset(&pt.peers, 0, sizeof(pt.peers));
	tables_free(); /* fresh, sized to what is there now */
	if (nfct_callback_register(h, NFCT_T_ALL, dump_cb, NULL) < 0)
		err = errno ? -errno : -EINVAL;
	for (size_t i = 0; !err && i < sizeof(families) / sizeof(families[0]); i++)
		if (nfct_query(h, NFCT_Q_DUMP, &families[i]) < 0)
			err = errno ? -errno : -EIO;
	if (nfct_close(h) < 0 && !err)
		err = errno ? -errno : -EIO;
	if (!err && stopping())
		err = -ECANCELED;
	peers_carry_since(&pt.peers, &old);
	free(old.slot);
	/* on failure the map keeps what it had: stale counts are the safe side */
	return err ? err : map_rewrite();
}

/* ---- the thread ---- */

static int join_netns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* on this thread only: the caller's threads stay where they are */
	int err = setns(fd, CLONE_NEWNET) ? -errno : 0;
	close(fd);
	return err;
}

static int events_open(struct nfct_handle **out)
{
	unsigned groups = NF_NETLINK_CONNTRACK_NEW | NF_NETLINK_CONNTRACK_UPDATE | NF_NETLINK_CONNTRACK_DESTROY;
	struct nfct_handle *h = nfct_open(CONNTRACK, groups);
	int size = EVENT_RCVBUF, err = 0;
	if (!h)
		return errno ? -errno : -EIO;
	int fd = nfct_fd(h);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		err = -errno;
	else if (nfct_callback_register(h, NFCT_T_ALL, event_cb, NULL) < 0)
		err = errno ? -errno : -EINVAL;
	else if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) &&
		 setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)))
		stat_add(ST_ERRORS, 1); /* works, but loses events sooner */
	if (err) {
		nfct_close(h);
		return err;
	}
	*out = h;
	return 0;
}

static void report_start(int result)
{
	pthread_mutex_lock(&pt.mu);
	pt.result = result;
	pt.ready = 1;
	pthread_cond_signal(&pt.cv);
	pthread_mutex_unlock(&pt.mu);
}

/* Applies events until stopped; resyncs when due. */
static void event_loop(struct nfct_handle *ev)
{
	struct pollfd pfd[2] = { { .fd = nfct_fd(ev), .events = POLLIN }, { .fd = pt.stop_fd, .events = POLLIN } };
	int64_t last = now_ms(), due = last + pt.resync_ms;
	while (!stopping()) {
		int64_t wait = due - now_ms();
		if (wait <= 0) {
			int r = resync();
			if (r == -ECANCELED)
				return;
			stat_add(r ? ST_ERRORS : ST_RESYNCS, 1);
			last = now_ms();
			due = last + (r ? RETRY_MS : pt.resync_ms);
			continue;
		}
		if (poll(pfd, 2, wait > INT_MAX ? INT_MAX : (int)wait) < 0) {
			if (errno != EINTR) {
				stat_add(ST_ERRORS, 1);
				poll(&pfd[1], 1, 100); /* never spin on a broken poll */
			}
			continue;
		}
		if (pfd[1].revents)
			return;
		if (!pfd[0].revents)
			continue;
		/* drains the socket (it is non-blocking): -1 with EAGAIN once empty */
		if (nfct_catch(ev) < 0) {
			if (errno == ENOBUFS) {
				/* the kernel dropped events: only a dump can tell what they said.
				 * Not sooner than RETRY_MS after the last one, so a gateway whose
				 * events outrun us still spends most of its time on events. */
				if (last + RETRY_MS < due)
					due = last + RETRY_MS;
			} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				stat_add(ST_ERRORS, 1);
				poll(&pfd[1], 1, 100);
			}
		}
	}
}

static void *tracker_main(void *arg)
{
	struct nfct_handle *ev = NULL;
	int err = 0;
	(void)arg;
	if (pt.netns[0])
		err = join_netns(pt.netns);
	/* subscribe before the dump, so nothing that changes during it is missed */
	if (!err)
		err = events_open(&ev);
	if (!err)
		err = resync();
	report_start(err);
	if (!err)
		event_loop(ev);
	if (ev)
		nfct_close(ev);
	tables_free();
	return NULL;
}

/* ---- API ---- */

int sx_peers_start(int peers_map_fd, const char *netns_path)
{
	sigset_t all, old;
	int err = 0, r;
	if (netns_path && strlen(netns_path) >= sizeof(pt.netns))
		return -ENAMETOOLONG;
	pthread_mutex_lock(&pt.lock);
	if (pt.running) {
		err = -EBUSY;
		goto unlock;
	}
	snprintf(pt.netns, sizeof(pt.netns), "%s", netns_path ? netns_path : "");
	const char *period = getenv("SENTRY_XDP_PEERS_RESYNC_MS");
	pt.resync_ms = period && atoi(period) >= 100 ? atoi(period) : RESYNC_MS;
	memset(pt.stats, 0, sizeof(pt.stats));
	pt.stopping = 0;
	pt.ready = 0;
	pt.map_fd = fcntl(peers_map_fd, F_DUPFD_CLOEXEC, 3);
	if (pt.map_fd < 0) {
		err = -errno;
		goto unlock;
	}
	pt.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pt.stop_fd < 0) {
		err = -errno;
		goto close_map;
	}
	/* signals stay with the caller's threads (Node handles them there) */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&pt.tid, NULL, tracker_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		err = -r;
		goto close_stop;
	}
	pthread_mutex_lock(&pt.mu);
	while (!pt.ready)
		pthread_cond_wait(&pt.cv, &pt.mu);
	err = pt.result;
	pthread_mutex_unlock(&pt.mu);
	if (!err) {
		pt.running = 1;
		goto unlock;
	}
	pthread_join(pt.tid, NULL);
close_stop:
	close(pt.stop_fd);
	pt.stop_fd = -1;
close_map:
	close(pt.map_fd);
	pt.map_fd = -1;
unlock:
	pthread_mutex_unlock(&pt.lock);
	return err;
}

int sx_peers_stop(void)
{
	uint64_t one = 1;
	int err = 0;
	pthread_mutex_lock(&pt.lock);
	if (!pt.running) {
		err = -ENOENT;
		goto unlock;
	}
	__atomic_store_n(&pt.stopping, 1, __ATOMIC_RELAXED);
	/* the flag alone stops a dump or a burst of events; the eventfd wakes poll */
	if (write(pt.stop_fd, &one, sizeof(one)) < 0)
		err = -errno;
	pthread_join(pt.tid, NULL);
	close(pt.stop_fd);
	close(pt.map_fd);
	pt.stop_fd = pt.map_fd = -1;
	pt.running = 0;
unlock:
	pthread_mutex_unlock(&pt.lock);
	return err;
}

int sx_peers_stats(uint64_t *out)
{
	int err = 0;
	pthread_mutex_lock(&pt.lock);
	if (!pt.running)
		err = -ENOENT;
	for (int i = 0; !err && i < 4; i++)
		out[i] = __atomic_load_n(&pt.stats[i], __ATOMIC_RELAXED);
	pthread_mutex_unlock(&pt.lock);
	return err;
}
