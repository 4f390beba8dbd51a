/**
 * The lists that win over bans: the allow list (config + `allow add`) and the
 * never-ban list (config + this host's addresses, gateways and resolvers).
 */
import { ALLOW, NEVER_BAN } from '../core/abi.js';
import { parseCidr, type Cidr } from '../core/addr.js';
import type { Config } from '../core/config.js';
import type { HostFacts } from '../adapters/host-facts.js';
import type { Protected } from './bans.js';

function tryCidr(text: string): Cidr | undefined {
  try {
    return parseCidr(text);
  } catch {
    return undefined;
  }
}

export function protectedList(cfg: Config, facts: HostFacts | undefined, extraAllow: readonly string[]): Protected[] {
  const out: Protected[] = [];
  const add = (texts: readonly string[], why: string) => {
    for (const t of texts) {
      const net = tryCidr(t);
      if (net) out.push({ net, why });
    }
  };
  add([...cfg.allow, ...extraAllow], 'on the allow list');
  add(cfg.never_ban.cidrs, 'on the never-ban list');
  if (cfg.never_ban.auto && facts) {
    add(facts.addresses, "this host's own address");
    add(facts.gateways, 'a default gateway of this host');
    add(facts.nameservers, `a nameserver in ${cfg.never_ban.resolv_conf}`);
  }
  return out;
}

/** The kernel allow tries' wanted content: allow entries beat never-ban ones. */
export function kernelLists(prot: readonly Protected[]): Map<string, { net: Cidr; value: number }> {
  const want = new Map<string, { net: Cidr; value: number }>();
  for (const p of prot) {
    const value = p.why === 'on the allow list' ? ALLOW : NEVER_BAN;
    const cur = want.get(p.net.text);
    if (!cur || value === ALLOW) want.set(p.net.text, { net: p.net, value });
  }
  return want;
}
