// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Prints the layout of every shared struct as JSON, from the C compiler's own
 * offsetof, so test/unit/abi.test.ts can check src/core/abi.ts against it. */
#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>
#include "sentry_shared.h"

#define F(s, f) printf("%s\"%s\":[%zu,%zu]", first++ ? "," : "", #f, offsetof(struct s, f), sizeof(((struct s *)0)->f))
#define S(s, body) do { int first = 0; printf("%s\"%s\":{\"size\":%zu,\"fields\":{", n++ ? "," : "", #s, sizeof(struct s)); body; printf("}}"); } while (0)

int main(void)
{
	int n = 0;
	printf("{\"abi\":%d,\"stats\":%d,", SX_ABI_VERSION, SX_STAT__MAX);
	printf("\"sizes\":{\"bansV4\":%d,\"bansV6\":%d,\"cidrBans\":%d,\"allow\":%d,\"sources\":%d,\"protect\":%d,"
	       "\"services\":%d,\"peers\":%d,\"offenders\":%d,\"dropSlots\":%d},",
	       SX_MAX_BANS_V4, SX_MAX_BANS_V6, SX_MAX_CIDR_BANS, SX_MAX_ALLOW, SX_MAX_SOURCES, SX_MAX_PROTECT,
	       SX_MAX_SERVICES, SX_MAX_PEERS, SX_MAX_OFFENDERS, SX_DROP_SLOTS);
	printf("\"structs\":{");
	S(sx_config, F(sx_config, window_ns); F(sx_config, ban_ttl_ns); F(sx_config, trigger);
	  F(sx_config, block_tcp); F(sx_config, block_udp); F(sx_config, enabled);
	  F(sx_config, max_bans_per_min); F(sx_config, sweep_trigger); F(sx_config, pressure_per_sec);
	  F(sx_config, alerts_per_sec));
	S(sx_ratecap, F(sx_ratecap, minute_start_ns); F(sx_ratecap, bans));
	S(sx_presence, F(sx_presence, allow_v4); F(sx_presence, allow_v6); F(sx_presence, cidr_v4);
	  F(sx_presence, cidr_v6); F(sx_presence, wide_v4); F(sx_presence, wide_v6);
	  F(sx_presence, svc_v4); F(sx_presence, svc_v6));
	S(sx_host_slot, F(sx_host_slot, addr); F(sx_host_slot, scope));
	S(sx_ban, F(sx_ban, expires_ns); F(sx_ban, created_ns); F(sx_ban, drops); F(sx_ban, port);
	  F(sx_ban, proto); F(sx_ban, kind); F(sx_ban, origin));
	S(sx_lpm_v4, F(sx_lpm_v4, prefixlen); F(sx_lpm_v4, addr));
	S(sx_lpm_v6, F(sx_lpm_v6, prefixlen); F(sx_lpm_v6, addr));
	S(sx_source, F(sx_source, window_start_ns); F(sx_source, last_ns); F(sx_source, probes);
	  F(sx_source, alerted); F(sx_source, banned); F(sx_source, first_port); F(sx_source, multi_port));
	S(sx_event, F(sx_event, ts_ns); F(sx_event, expires_ns); F(sx_event, addr); F(sx_event, ifindex);
	  F(sx_event, probes); F(sx_event, port); F(sx_event, family); F(sx_event, type);
	  F(sx_event, proto); F(sx_event, kind); F(sx_event, tcp_flags); F(sx_event, flags);
	  F(sx_event, dscope); F(sx_event, daddr));
	S(sx_info, F(sx_info, abi_version); F(sx_info, features));
	S(sx_sweep, F(sx_sweep, window_start_ns); F(sx_sweep, bits); F(sx_sweep, hosts); F(sx_sweep, alerted));
	S(sx_peer, F(sx_peer, responder); F(sx_peer, originator); F(sx_peer, originator_since_ns));
	S(sx_offender, F(sx_offender, ttl_ns); F(sx_offender, until_ns));
	S(sx_dropslot, F(sx_dropslot, addr); F(sx_dropslot, drops); F(sx_dropslot, expires_ns); F(sx_dropslot, epoch));
	S(sx_flood, F(sx_flood, second_start_ns); F(sx_flood, crossings); F(sx_flood, crossings_prev); F(sx_flood, alerts));
	S(sx_svc_v4, F(sx_svc_v4, prefixlen); F(sx_svc_v4, proto); F(sx_svc_v4, port); F(sx_svc_v4, addr));
	S(sx_svc_v6, F(sx_svc_v6, prefixlen); F(sx_svc_v6, proto); F(sx_svc_v6, port); F(sx_svc_v6, addr));
	printf("}}\n");
	return 0;
}
