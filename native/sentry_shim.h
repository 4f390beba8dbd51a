/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * libsentry_shim: the thin C layer between the TypeScript control plane
 * (through koffi) and the system's libbpf. It does what is awkward or slow
 * across FFI: load/pin/attach, batched map writes, draining the ring buffer
 * into one caller-owned buffer per call, BPF_PROG_TEST_RUN.
 *
 * It never prints. Every function returns 0 (or a count) on success and
 * -errno on failure; sx_last_error() returns libbpf's last warning text.
 */
#ifndef SENTRY_SHIM_H
#define SENTRY_SHIM_H

#include <stdint.h>

struct sx_obj;
struct sx_rb;

enum sx_attach_mode { SX_MODE_AUTO = 0, SX_MODE_NATIVE = 1, SX_MODE_GENERIC = 2 };

int sx_last_error(char *buf, int len);
int64_t sx_clock_ns(void);
int sx_bpffs_mount(const char *dir);
int sx_is_bpffs(const char *dir);

/* Opens obj_path. With a pin_dir: adopts the program and maps pinned there, or
 * loads the object and pins them. Without one: loads, pins nothing (tests). */
#define SX_OPEN_FRAGS 0x01 /* load the program as multi-buffer XDP (xdp.frags) */
int sx_open(const char *obj_path, const char *pin_dir, int flags, struct sx_obj **out);
int sx_map_fd(struct sx_obj *o, const char *name);
int sx_prog_fd(struct sx_obj *o);
int sx_adopted(struct sx_obj *o);
void sx_close(struct sx_obj *o);

int sx_attach(struct sx_obj *o, int ifindex, int mode, const char *link_pin, int *out_mode);
int sx_detach(const char *link_pin);
int sx_link_info(const char *link_pin, uint32_t *prog_id, uint32_t *ifindex);
int sx_xdp_query(int ifindex, uint32_t *prog_id, uint32_t *mode);

int sx_stats_read(int fd, uint32_t n, uint64_t *out);
int sx_percpu_sum(int fd, uint32_t key, uint64_t *out);
int sx_num_cpus(void);
int sx_percpu_array_read(int fd, uint32_t n, uint32_t value_size, void *out);
int sx_map_update(int fd, const void *key, const void *val, uint64_t flags);
int sx_map_lookup(int fd, const void *key, void *val);
int sx_map_delete(int fd, const void *key);
int sx_map_update_batch(int fd, const void *keys, const void *vals, uint32_t count,
			uint32_t key_size, uint32_t val_size, uint64_t flags);
/* Sets the filter bits (sentry_ban_filter, sentry_list_filter) of `count`
 * packed keys with an atomic OR through mmap, before the caller inserts them.
 * Keys wider than one host are skipped. Returns how many bits it set. */
int sx_filter_add(int filter_fd, const void *keys, uint32_t count, uint32_t key_size);
/* Raises sentry_ban_epoch by one (atomically, through mmap) after a write or
 * delete of exact bans: the program's cached bans of older epochs are void. */
int sx_u32_store(int fd, uint32_t offset, uint32_t value);
int sx_epoch_bump(int epoch_fd);
int sx_map_delete_batch(int fd, const void *keys, uint32_t count, uint32_t key_size);
int sx_map_dump(int fd, void *keys, void *vals, uint32_t max, uint32_t key_size, uint32_t val_size);
int sx_map_count(int fd, uint32_t key_size);
int sx_map_lookup_step(int fd, void *token, int first, void *keys, void *vals, uint32_t max, int *done);
int sx_map_histogram(int fd, uint32_t key_size, uint32_t val_size, uint32_t offset, uint32_t *counts);
int sx_bans_sweep(int fd, uint32_t key_size, uint32_t val_size, uint64_t now,
		  void *keys_out, void *vals_out, uint32_t max);

int sx_rb_open(int map_fd, struct sx_rb **out);
int sx_rb_drain(struct sx_rb *rb, void *buf, uint32_t rec_size, uint32_t max_recs, int timeout_ms);
void sx_rb_close(struct sx_rb *rb);

int sx_test_run(int prog_fd, const void *data, uint32_t len, uint32_t repeat,
		uint32_t *retval, uint32_t *duration_ns);

/* Bench only: a thread that runs prog_fd through BPF_PROG_TEST_RUN `total`
 * times, paced to `rate` runs per second, in chunks of `chunk`. */

/* Live-peer tracker (sentry_peers.c): one background thread per process that
 * keeps the sentry_peers map (16-byte address, IPv4 v4-mapped -> struct sx_peer)
 * in step with conntrack, from ctnetlink events plus a full dump at start,
 * after lost events and every 5 minutes. An entry is live when assured (TCP)
 * or answered (anything else). Each live entry adds 1 to the responder count of
 * its distinct responder addresses (orig dst, reply src) and, for TCP only, 1 to
 * the originator count of its distinct originator addresses (orig src, reply
 * dst); its end takes exactly that away again. originator_since_ns is
 * CLOCK_MONOTONIC (read coarse, as bpf_ktime_get_coarse_ns) when the originator
 * count last rose from 0, kept across resyncs while it stays above 0; an
 * address leaves the map when both counts are 0. Start joins netns_path first
 * when it is given (NULL or "": the caller's namespace) and returns once the
 * map holds the initial dump, or -errno when conntrack cannot be read (no
 * ctnetlink, no CAP_NET_ADMIN); -EBUSY when one runs already. The map fd is
 * duplicated, so the caller may close its own. Stop joins the thread within a
 * second and leaves the map as it is; -ENOENT when none runs. Stats: out[0]
 * events handled, out[1] resyncs after the initial dump, out[2] addresses
 * counted (what the map holds), out[3] errors (map writes that failed,
 * unreadable entries). */
int sx_peers_start(int peers_map_fd, const char *netns_path);
int sx_peers_stop(void);
int sx_peers_stats(uint64_t *out);

#endif
