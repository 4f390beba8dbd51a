// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Bench-only producer: every run emits one struct sx_event, the same record
 * the real program emits, so `make bench` measures the real drain path. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "sentry_shared.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SX_RINGBUF_BYTES);
} bench_events SEC(".maps");

/* key 0: events lost because the ring was full */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bench_lost SEC(".maps");

__u64 seq = 0;

SEC("xdp")
int bench_ringbuf(struct xdp_md *ctx)
{
	struct sx_event *ev = bpf_ringbuf_reserve(&bench_events, sizeof(*ev), 0);
	if (!ev) {
		__u32 k = 0;
		__u64 *lost = bpf_map_lookup_elem(&bench_lost, &k);
		if (lost)
			__sync_fetch_and_add(lost, 1);
		return XDP_PASS;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	__u64 n = __sync_fetch_and_add(&seq, 1);
	ev->ts_ns = n;
	ev->addr[10] = 0xff; /* a v4-mapped source, as most real alerts carry */
	ev->addr[11] = 0xff;
	ev->addr[12] = 198;
	ev->addr[13] = 18;
	ev->addr[14] = (n >> 8) & 0xff;
	ev->addr[15] = n & 0xff;
	ev->proto = 6;
	ev->port = 23;
	ev->type = SX_EV_ALERT;
	ev->family = 4;
	ev->kind = SX_KIND_SYN;
	bpf_ringbuf_submit(ev, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
