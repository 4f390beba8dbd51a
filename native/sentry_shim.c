// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* See sentry_shim.h. Never prints; returns 0/count or -errno. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sentry_shim.h"
#include "sentry_shared.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

#define MAX_MAPS 48
#ifndef ENOTSUPP
#define ENOTSUPP 524 /* kernel-internal, leaks out of some bpf() paths */
#endif

/* ---- libbpf log capture: keep the last warning so callers can show it ---- */

static __thread char last_err[4096];

static int capture_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	char line[1024];
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t used = strlen(last_err);
	if (used + strlen(line) >= sizeof(last_err))
		used = 0; /* keep the most recent text */
	snprintf(last_err + used, sizeof(last_err) - used, "%s", line);
	return 0;
}

__attribute__((constructor)) static void shim_init(void)
{
	libbpf_set_print(capture_print);
}

int sx_last_error(char *buf, int len)
{
	snprintf(buf, len, "%s", last_err);
	last_err[0] = 0;
	return 0;
}

int64_t sx_clock_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts))
		return -errno;
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int sx_is_bpffs(const char *dir)
{
	struct statfs st;
	if (statfs(dir, &st))
		return -errno;
	return st.f_type == BPF_FS_MAGIC;
}

int sx_bpffs_mount(const char *dir)
{
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	int r = sx_is_bpffs(dir);
	if (r != 0)
		return r < 0 ? r : 0;
	if (mount("bpf", dir, "bpf", 0, "mode=0700"))
		return -errno;
	return 0;
}

/* ---- object: load or adopt, with pins ---- */

struct sx_obj {
	struct bpf_object *obj; /* NULL when adopted from pins */
	int prog_fd;
	int adopted;
	int nmaps;
	char names[MAX_MAPS][64];
	int fds[MAX_MAPS];
};

static int path_join(char *out, size_t len, const char *dir, const char *name)
{
	int n = snprintf(out, len, "%s/%s", dir, name);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

static int adopt_pins(struct sx_obj *o, const char *pin_dir)
{
	char path[PATH_MAX];
	struct bpf_map *m;
	int err = path_join(path, sizeof(path), pin_dir, "prog");
	if (err)
		return err;
	o->prog_fd = bpf_obj_get(path);
	if (o->prog_fd < 0)
		return -errno;
	bpf_object__for_each_map(m, o->obj) {
		if (o->nmaps >= MAX_MAPS)
			return -E2BIG;
		const char *name = bpf_map__name(m);
		if (name[0] == '.')
			continue; /* .rodata/.bss: owned by the loaded program */
		if ((err = path_join(path, sizeof(path), pin_dir, name)))
			return err;
		int fd = bpf_obj_get(path);
		if (fd < 0)
			return -errno;
		snprintf(o->names[o->nmaps], sizeof(o->names[0]), "%s", name);
		o->fds[o->nmaps++] = fd;
	}
	o->adopted = 1;
	return 0;
}

static int load_and_pin(struct sx_obj *o, const char *pin_dir, int flags)
{
	char path[PATH_MAX];
	struct bpf_map *m;
	struct bpf_program *prog;
	int err;
	if (flags & SX_OPEN_FRAGS) {
		/* multi-buffer XDP: jumbo MTUs attach natively and the MTU may change while attached */
		bpf_object__for_each_program(prog, o->obj) {
			if ((err = bpf_program__set_flags(prog, bpf_program__flags(prog) | BPF_F_XDP_HAS_FRAGS)))
				return err;
		}
	}
	if (pin_dir) {
		bpf_object__for_each_map(m, o->obj) {
			const char *name = bpf_map__name(m);
			if (name[0] == '.')
				continue;
			if ((err = path_join(path, sizeof(path), pin_dir, name)))
				return err;
			/* libbpf reuses a compatible pinned map, and pins new ones on load */
			if ((err = bpf_map__set_pin_path(m, path)))
				return err;
		}
	}
	if ((err = bpf_object__load(o->obj)))
		return err;
	struct bpf_program *p = bpf_object__next_program(o->obj, NULL);
	if (!p)
		return -ENOENT;
	o->prog_fd = bpf_program__fd(p);
	if (pin_dir) {
		if ((err = path_join(path, sizeof(path), pin_dir, "prog")))
			return err;
		if (bpf_obj_pin(o->prog_fd, path))
			return -errno;
	}
	bpf_object__for_each_map(m, o->obj) {
		if (o->nmaps >= MAX_MAPS)
			return -E2BIG;
		snprintf(o->names[o->nmaps], sizeof(o->names[0]), "%s", bpf_map__name(m));
		o->fds[o->nmaps++] = bpf_map__fd(m);
	}
	return 0;
}

int sx_open(const char *obj_path, const char *pin_dir, int flags, struct sx_obj **out)
{
	char path[PATH_MAX];
	struct sx_obj *o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->prog_fd = -1;
	if (pin_dir && !pin_dir[0])
		pin_dir = NULL;
	o->obj = bpf_object__open_file(obj_path, NULL);
	if (!o->obj) {
		int err = -errno;
		free(o);
		return err;
	}
	int err;
	if (pin_dir && !path_join(path, sizeof(path), pin_dir, "prog") && access(path, F_OK) == 0)
		err = adopt_pins(o, pin_dir);
	else
		err = load_and_pin(o, pin_dir, flags);
	if (err) {
		sx_close(o);
		return err;
	}
	*out = o;
	return 0;
}

int sx_map_fd(struct sx_obj *o, const char *name)
{
	for (int i = 0; i < o->nmaps; i++)
		if (!strcmp(o->names[i], name))
			return o->fds[i];
	return -ENOENT;
}

int sx_prog_fd(struct sx_obj *o) { return o->prog_fd; }
int sx_adopted(struct sx_obj *o) { return o->adopted; }

void sx_close(struct sx_obj *o)
{
	if (!o)
		return;
	if (o->adopted) {
		for (int i = 0; i < o->nmaps; i++)
			close(o->fds[i]);
		if (o->prog_fd >= 0)
			close(o->prog_fd);
	}
	bpf_object__close(o->obj); /* closes its own fds when it loaded them */
	free(o);
}

/* ---- attach / detach through pinned bpf_links ---- */

int sx_attach(struct sx_obj *o, int ifindex, int mode, const char *link_pin, int *out_mode)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts);
	int fd = -1;
	if (mode == SX_MODE_AUTO || mode == SX_MODE_NATIVE) {
		opts.flags = XDP_FLAGS_DRV_MODE;
		fd = bpf_link_create(o->prog_fd, ifindex, BPF_XDP, &opts);
		if (fd >= 0)
			*out_mode = SX_MODE_NATIVE;
		else if (mode == SX_MODE_NATIVE || (errno != EOPNOTSUPP && errno != EINVAL))
			return -errno;
	}
	if (fd < 0) {
		opts.flags = XDP_FLAGS_SKB_MODE;
		fd = bpf_link_create(o->prog_fd, ifindex, BPF_XDP, &opts);
		if (fd < 0)
			return -errno;
		*out_mode = SX_MODE_GENERIC;
	}
	if (link_pin && link_pin[0] && bpf_obj_pin(fd, link_pin)) {
		int err = -errno;
		bpf_link_detach(fd);
		close(fd);
		return err;
	}
	close(fd); /* the pin keeps the link alive */
	return 0;
}

int sx_detach(const char *link_pin)
{
	int fd = bpf_obj_get(link_pin);
	if (fd < 0)
		return -errno;
	int err = bpf_link_detach(fd) ? -errno : 0;
	close(fd);
	/* a defunct link (interface gone) fails to detach but must still be unpinned */
	if (unlink(link_pin))
		return -errno;
	return err == -ENOLINK ? 0 : err;
}

int sx_link_info(const char *link_pin, uint32_t *prog_id, uint32_t *ifindex)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);
	memset(&info, 0, sizeof(info));
	int fd = bpf_obj_get(link_pin);
	if (fd < 0)
		return -errno;
	int err = bpf_obj_get_info_by_fd(fd, &info, &len) ? -errno : 0;
	close(fd);
	if (err)
		return err;
	*prog_id = info.prog_id;
	*ifindex = info.xdp.ifindex;
	return 0;
}

int sx_xdp_query(int ifindex, uint32_t *prog_id, uint32_t *mode)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	if (bpf_xdp_query(ifindex, 0, &q))
		return -errno;
	*prog_id = q.prog_id;
	*mode = q.attach_mode;
	return 0;
}

/* ---- maps ---- */

/* One key of a per-CPU u64 array, summed over the CPUs. */
int sx_percpu_sum(int fd, uint32_t key, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	uint64_t *vals = calloc(ncpu, sizeof(uint64_t));
	if (!vals)
		return -ENOMEM;
	int err = bpf_map_lookup_elem(fd, &key, vals) ? -errno : 0;
	*out = 0;
	for (int c = 0; !err && c < ncpu; c++)
		*out += vals[c];
	free(vals);
	return err;
}

/* How many values a per-CPU map holds per key (the possible CPUs). */
int sx_num_cpus(void)
{
	return libbpf_num_possible_cpus();
}

/* Keys 0..n-1 of a per-CPU array, every CPU's value: out holds n * ncpu
 * values of value_size bytes (value_size a multiple of 8, as the kernel
 * lays them out). Returns 0 or -errno. */
int sx_percpu_array_read(int fd, uint32_t n, uint32_t value_size, void *out)
{
	int ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	for (uint32_t k = 0; k < n; k++)
		if (bpf_map_lookup_elem(fd, &k, (char *)out + (size_t)k * ncpu * value_size))
			return -errno;
	return 0;
}

/* Keys 0..n-1 of a per-CPU u64 array (the counters), each summed over the CPUs. */
int sx_stats_read(int fd, uint32_t n, uint64_t *out)
{
	for (uint32_t k = 0; k < n; k++) {
		int err = sx_percpu_sum(fd, k, &out[k]);
		if (err)
			return err;
	}
	return 0;
}

int sx_map_update(int fd, const void *key, const void *val, uint64_t flags)
{
	return bpf_map_update_elem(fd, key, val, flags) ? -errno : 0;
}

int sx_map_lookup(int fd, const void *key, void *val)
{
	return bpf_map_lookup_elem(fd, key, val) ? -errno : 0;
}

int sx_map_delete(int fd, const void *key)
{
	return bpf_map_delete_elem(fd, key) ? -errno : 0;
}

/* Batched update; maps without batch support (LPM tries) fall back to a loop
 * here, still one FFI call. Returns the number of elements written. */
int sx_map_update_batch(int fd, const void *keys, const void *vals, uint32_t count,
			uint32_t key_size, uint32_t val_size, uint64_t flags)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = flags);
	uint32_t done = 0;
	while (done < count) {
		uint32_t n = count - done;
		if (bpf_map_update_batch(fd, (const char *)keys + (size_t)done * key_size,
					 (const char *)vals + (size_t)done * val_size, &n, &opts)) {
			if (errno != EINVAL && errno != ENOTSUPP && errno != EOPNOTSUPP)
				return -errno;
			break; /* no batch support: loop below */
		}
		done += n;
	}
	for (; done < count; done++)
		if (bpf_map_update_elem(fd, (const char *)keys + (size_t)done * key_size,
					(const char *)vals + (size_t)done * val_size, flags))
			return -errno;
	return done;
}

/* The filter bit of one key, or -1 when the key stands for more than one
 * address (an LPM key wider than a host). Key layouts by size: __be32, in6
 * address, struct sx_lpm_v4, struct sx_lpm_v6. */
static int filter_fold(const char *k, uint32_t key_size, uint32_t *fold)
{
	uint32_t w[4] = { 0 }, prefix = 0;
	switch (key_size) {
	case 4:
		memcpy(fold, k, 4);
		return 0;
	case 16:
		memcpy(w, k, 16);
		break;
	case sizeof(struct sx_lpm_v4):
		memcpy(&prefix, k, 4);
		if (prefix != 32)
			return -1;
		memcpy(fold, k + 4, 4);
		return 0;
	case sizeof(struct sx_lpm_v6):
		memcpy(&prefix, k, 4);
		if (prefix != 128)
			return -1;
		memcpy(w, k + 4, 16);
		break;
	default:
		return -1;
	}
	*fold = w[0] ^ w[1] ^ w[2] ^ w[3];
	return 0;
}

int sx_filter_add(int filter_fd, const void *keys, uint32_t count, uint32_t key_size)
{
	struct bpf_map_info info = { 0 };
	uint32_t len = sizeof(info);
	if (bpf_obj_get_info_by_fd(filter_fd, &info, &len))
		return -errno;
	if (info.value_size != 8 || !info.max_entries || (info.max_entries & (info.max_entries - 1)))
		return -EINVAL;
	size_t bytes = (size_t)info.max_entries * 8;
	uint64_t *words = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, filter_fd, 0);
	if (words == MAP_FAILED)
		return -errno;
	uint32_t log = __builtin_ctz(info.max_entries) + 6;
	int set = 0;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t fold;
		if (filter_fold((const char *)keys + (size_t)i * key_size, key_size, &fold))
			continue;
		uint32_t bit = sx_filter_bit(fold, log);
		__atomic_fetch_or(&words[bit >> 6], 1ULL << (bit & 63), __ATOMIC_SEQ_CST);
		set++;
	}
	munmap(words, bytes);
	return set;
}

/* One u32 of the first page of an mmapable array, stored atomically: the
 * other fields of the value stay as whoever else wrote them left them. */
int sx_u32_store(int fd, uint32_t offset, uint32_t value)
{
	long page = sysconf(_SC_PAGESIZE);
	if (offset % 4 || offset + 4 > (uint32_t)page)
		return -EINVAL;
	uint32_t *v = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (v == MAP_FAILED)
		return -errno;
	__atomic_store_n(&v[offset / 4], value, __ATOMIC_SEQ_CST);
	munmap(v, page);
	return 0;
}

int sx_epoch_bump(int epoch_fd)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t *v = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, epoch_fd, 0);
	if (v == MAP_FAILED)
		return -errno;
	__atomic_fetch_add(v, 1, __ATOMIC_SEQ_CST);
	munmap(v, page);
	return 0;
}

/* Deletes each key; keys that are already gone are not an error. */
int sx_map_delete_batch(int fd, const void *keys, uint32_t count, uint32_t key_size)
{
	int deleted = 0;
	for (uint32_t i = 0; i < count; i++) {
		if (bpf_map_delete_elem(fd, (const char *)keys + (size_t)i * key_size) == 0)
			deleted++;
		else if (errno != ENOENT)
			return -errno;
	}
	return deleted;
}

/* Copies up to max entries out; returns how many. Uses lookup_batch where the
 * map supports it, get_next_key otherwise. */
/* One step of a batched walk of a hash map: up to max entries after the
 * position in token (64 bytes, kept by the caller; first != 0 starts over).
 * Returns how many were read, and sets *done when the walk has ended;
 * -errno on failure (-EINVAL: the map has no batch lookup, -ENOSPC: max too
 * small for one bucket). Lets user space walk a big table in small buffers. */
int sx_map_lookup_step(int fd, void *token, int first, void *keys, void *vals, uint32_t max, int *done)
{
	uint32_t n = max;
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	int r = bpf_map_lookup_batch(fd, first ? NULL : token, token, keys, vals, &n, &opts);
	int e = errno;
	*done = 0;
	if (r == 0)
		return (int)n;
	if (e == ENOENT) {
		*done = 1;
		return (int)n;
	}
	return -e;
}

int sx_map_dump(int fd, void *keys, void *vals, uint32_t max, uint32_t key_size, uint32_t val_size)
{
	char token[64];
	uint32_t got = 0;
	int first = 1;
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	while (got < max) {
		uint32_t n = max - got;
		int r = bpf_map_lookup_batch(fd, first ? NULL : token, token,
					     (char *)keys + (size_t)got * key_size,
					     (char *)vals + (size_t)got * val_size, &n, &opts);
		int e = errno;
		first = 0;
		got += n;
		if (r == 0)
			continue;
		if (e == ENOENT)
			return got;
		if (e == ENOSPC)
			return max; /* a bucket did not fit: "full", so the caller asks again with more room */
		if (e == EINVAL || e == ENOTSUPP || e == EOPNOTSUPP) {
			if (got)
				return -e;
			break; /* iterate by key below */
		}
		return -e;
	}
	if (got >= max)
		return got;
	char prev[64], next[64];
	void *cur = NULL;
	if (key_size > sizeof(prev))
		return -E2BIG;
	while (got < max && bpf_map_get_next_key(fd, cur, next) == 0) {
		memcpy(prev, next, key_size);
		cur = prev;
		if (bpf_map_lookup_elem(fd, next, (char *)vals + (size_t)got * val_size))
			continue; /* deleted meanwhile */
		memcpy((char *)keys + (size_t)got * key_size, next, key_size);
		got++;
	}
	return got;
}

/* Walks a whole map a chunk at a time (lookup_batch where the map has it,
 * get_next_key otherwise) and hands each chunk to cb; cb returns non-zero to
 * stop. Returns 0 or -errno. */
typedef int (*chunk_cb)(void *ctx, char *keys, char *vals, uint32_t n);

static int walk_chunks(int fd, uint32_t key_size, uint32_t val_size, chunk_cb cb, void *ctx)
{
	enum { CHUNK = 4096 };
	if (key_size > 64 || val_size > 256)
		return -E2BIG;
	char *keys = malloc((size_t)CHUNK * key_size), *vals = malloc((size_t)CHUNK * val_size);
	char token[64], prev[64], next[64];
	void *pk = NULL;
	int err = 0, first = 1, use_batch = 1;
	if (!keys || !vals) {
		err = -ENOMEM;
		goto done;
	}
	for (;;) {
		uint32_t n = CHUNK;
		int last = 0;
		if (use_batch) {
			LIBBPF_OPTS(bpf_map_batch_opts, opts);
			int r = bpf_map_lookup_batch(fd, first ? NULL : token, token, keys, vals, &n, &opts);
			int e = errno;
			if (r && e != ENOENT) {
				if (first && (e == EINVAL || e == ENOTSUPP || e == EOPNOTSUPP)) {
					use_batch = 0;
					continue;
				}
				err = -e;
				goto done;
			}
			first = 0;
			last = r != 0;
		} else {
			n = 0;
			while (n < CHUNK && bpf_map_get_next_key(fd, pk, next) == 0) {
				memcpy(prev, next, key_size);
				pk = prev;
				if (bpf_map_lookup_elem(fd, next, vals + (size_t)n * val_size) == 0) {
					memcpy(keys + (size_t)n * key_size, next, key_size);
					n++;
				}
			}
			last = n < CHUNK;
		}
		if (n && cb(ctx, keys, vals, n))
			break;
		if (last || n == 0)
			break;
	}
done:
	free(keys);
	free(vals);
	return err;
}

struct sweep_ctx {
	int fd;
	uint32_t key_size, val_size, max, out;
	uint64_t now;
	char *keys_out, *vals_out;
};

static int sweep_chunk(void *p, char *keys, char *vals, uint32_t n)
{
	struct sweep_ctx *c = p;
	char cur[256];
	for (uint32_t i = 0; i < n && c->out < c->max; i++) {
		uint64_t exp;
		memcpy(&exp, vals + (size_t)i * c->val_size, 8);
		if (!exp || exp > c->now)
			continue;
		char *k = keys + (size_t)i * c->key_size;
		if (bpf_map_lookup_elem(c->fd, k, cur))
			continue; /* someone else removed it */
		memcpy(&exp, cur, 8);
		if (!exp || exp > c->now)
			continue; /* renewed meanwhile */
		if (bpf_map_delete_elem(c->fd, k))
			continue;
		memcpy(c->keys_out + (size_t)c->out * c->key_size, k, c->key_size);
		memcpy(c->vals_out + (size_t)c->out * c->val_size, cur, c->val_size);
		c->out++;
	}
	return c->out >= c->max;
}

/* Deletes the bans whose expiry (the first __u64 of the value) has passed and
 * copies them out; returns how many (at most max: call again when it returns
 * max). Each entry is read again just before deletion, so a ban renewed
 * meanwhile survives. Runs in C so the daemon never holds the whole table. */
int sx_bans_sweep(int fd, uint32_t key_size, uint32_t val_size, uint64_t now,
		  void *keys_out, void *vals_out, uint32_t max)
{
	struct sweep_ctx c = { fd, key_size, val_size, max, 0, now, keys_out, vals_out };
	if (val_size > 256)
		return -E2BIG;
	int err = walk_chunks(fd, key_size, val_size, sweep_chunk, &c);
	return err ? err : (int)c.out;
}

static int count_chunk(void *p, char *keys, char *vals, uint32_t n)
{
	(void)keys;
	(void)vals;
	*(uint32_t *)p += n;
	return 0;
}

/* Entries in a map: hash maps a batch at a time (a million in ~0.1 s),
 * others (tries, arrays) by walking their keys. */
int sx_map_count(int fd, uint32_t key_size)
{
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info), n = 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
	    (info.type == BPF_MAP_TYPE_HASH || info.type == BPF_MAP_TYPE_LRU_HASH) && info.key_size <= 64 &&
	    info.value_size <= 256) {
		/* the kernel's sizes, not the caller's: the buffers must fit what it writes */
		int err = walk_chunks(fd, info.key_size, info.value_size, count_chunk, &n);
		return err ? err : (int)n;
	}
	char prev[64], next[64];
	void *cur = NULL;
	if (key_size > sizeof(prev))
		return -E2BIG;
	while (bpf_map_get_next_key(fd, cur, next) == 0) {
		memcpy(prev, next, key_size);
		cur = prev;
		n++;
	}
	return (int)n;
}

struct hist_ctx {
	uint32_t val_size, offset, total;
	uint32_t *counts;
};

static int hist_chunk(void *p, char *keys, char *vals, uint32_t n)
{
	struct hist_ctx *c = p;
	(void)keys;
	for (uint32_t i = 0; i < n; i++)
		c->counts[(uint8_t)vals[(size_t)i * c->val_size + c->offset]]++;
	c->total += n;
	return 0;
}

/* Counts entries by the value of one byte of their value (e.g. sx_ban.origin)
 * into counts[256]; returns the number of entries. In C, so a 1M-entry table
 * never crosses into JavaScript just to be counted. */
int sx_map_histogram(int fd, uint32_t key_size, uint32_t val_size, uint32_t offset, uint32_t *counts)
{
	struct hist_ctx c = { val_size, offset, 0, counts };
	if (offset >= val_size)
		return -EINVAL;
	memset(counts, 0, 256 * sizeof(uint32_t));
	int err = walk_chunks(fd, key_size, val_size, hist_chunk, &c);
	return err ? err : (int)c.total;
}

/* ---- ring buffer: our own consumer, so one call copies many records ---- */

struct sx_rb {
	int map_fd;
	int epfd;
	size_t page;
	uint64_t mask;
	unsigned long *consumer_pos;
	unsigned long *producer_pos;
	char *data;
	size_t prod_len;
};

int sx_rb_open(int map_fd, struct sx_rb **out)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(map_fd, &info, &len))
		return -errno;
	struct sx_rb *rb = calloc(1, sizeof(*rb));
	if (!rb)
		return -ENOMEM;
	rb->map_fd = map_fd;
	rb->page = sysconf(_SC_PAGESIZE);
	rb->mask = info.max_entries - 1;
	rb->consumer_pos = mmap(NULL, rb->page, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
	if (rb->consumer_pos == MAP_FAILED) {
		int err = -errno;
		free(rb);
		return err;
	}
	rb->prod_len = rb->page + 2 * (size_t)info.max_entries;
	rb->producer_pos = mmap(NULL, rb->prod_len, PROT_READ, MAP_SHARED, map_fd, rb->page);
	if (rb->producer_pos == MAP_FAILED) {
		int err = -errno;
		munmap(rb->consumer_pos, rb->page);
		free(rb);
		return err;
	}
	rb->data = (char *)rb->producer_pos + rb->page;
	rb->epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN };
	if (rb->epfd < 0 || epoll_ctl(rb->epfd, EPOLL_CTL_ADD, map_fd, &ev)) {
		int err = -errno;
		sx_rb_close(rb);
		return err;
	}
	*out = rb;
	return 0;
}

static uint32_t drain_once(struct sx_rb *rb, char *buf, uint32_t rec_size, uint32_t max)
{
	uint32_t n = 0;
	unsigned long cons = __atomic_load_n(rb->consumer_pos, __ATOMIC_ACQUIRE);
	unsigned long prod = __atomic_load_n(rb->producer_pos, __ATOMIC_ACQUIRE);
	while (cons < prod && n < max) {
		uint32_t *hdr = (uint32_t *)(rb->data + (cons & rb->mask));
		uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
		if (len & BPF_RINGBUF_BUSY_BIT)
			break;
		uint32_t body = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
		if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
			char *dst = buf + (size_t)n * rec_size;
			uint32_t c = body < rec_size ? body : rec_size;
			memcpy(dst, (char *)hdr + BPF_RINGBUF_HDR_SZ, c);
			if (c < rec_size)
				memset(dst + c, 0, rec_size - c);
			n++;
		}
		cons += (body + BPF_RINGBUF_HDR_SZ + 7) & ~7UL;
		__atomic_store_n(rb->consumer_pos, cons, __ATOMIC_RELEASE);
		if (cons >= prod)
			prod = __atomic_load_n(rb->producer_pos, __ATOMIC_ACQUIRE);
	}
	return n;
}

int sx_rb_drain(struct sx_rb *rb, void *buf, uint32_t rec_size, uint32_t max_recs, int timeout_ms)
{
	uint32_t n = drain_once(rb, buf, rec_size, max_recs);
	if (n || timeout_ms == 0)
		return n;
	struct epoll_event ev;
	if (epoll_wait(rb->epfd, &ev, 1, timeout_ms) < 0 && errno != EINTR)
		return -errno;
	return drain_once(rb, buf, rec_size, max_recs);
}

void sx_rb_close(struct sx_rb *rb)
{
	if (!rb)
		return;
	if (rb->epfd >= 0)
		close(rb->epfd);
	munmap(rb->producer_pos, rb->prod_len);
	munmap(rb->consumer_pos, rb->page);
	free(rb);
}

/* ---- BPF_PROG_TEST_RUN ---- */

int sx_test_run(int prog_fd, const void *data, uint32_t len, uint32_t repeat,
		uint32_t *retval, uint32_t *duration_ns)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = len, .repeat = repeat);
	if (bpf_prog_test_run_opts(prog_fd, &opts))
		return -errno;
	*retval = opts.retval;
	*duration_ns = opts.duration;
	return 0;
}
