/** Wiring shared by the verbs: the lists that win over bans, the TTL rules. */
import { parseCidr } from '../core/addr.js';
import type { Config } from '../core/config.js';
import { AllowFile } from '../adapters/allow-file.js';
import { readHostFacts } from '../adapters/host-facts.js';
import type { Paths } from '../adapters/paths.js';
import { AllowList } from './allow-list.js';
import type { Protected } from './bans.js';
import type { Gateway } from './gateway.js';
import { kernelLists, protectedList } from './protect.js';

export function ttlRules(cfg: Config) {
  return cfg.ttl_rules.map((r) => ({ net: parseCidr(r.cidr), ttl: r.ttl }));
}

/** Allow (config + `allow add`) and never-ban (config + host facts), as they stand now. */
export function currentProtected(cfg: Config, paths: Paths): Protected[] {
  return protectedList(cfg, readHostFacts(cfg.never_ban.resolv_conf), new AllowFile(paths.stateDir).read());
}

/** Writes them into the kernel's allow tries. */
export function syncLists(gw: Gateway, cfg: Config, paths: Paths): void {
  new AllowList(gw.obj).sync(kernelLists(currentProtected(cfg, paths)));
}
