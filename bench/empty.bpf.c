// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The baseline for `make bench`: an XDP program that only passes. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int empty_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
