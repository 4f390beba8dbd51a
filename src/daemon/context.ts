/** Wiring shared by the verbs: the lists that win over bans, the TTL rules. */
import { hostname } from 'node:os';
import { parseCidr } from '../core/addr.js';
import { SentryError } from '../errors.js';
import { JournalStore, type HistoryStore } from '../adapters/history.js';
import { RedisStore } from '../adapters/redis.js';
import type { Config } from '../core/config.js';
import { loadConfig } from '../adapters/config-file.js';
import { Notifier } from '../adapters/notifier.js';
import { Syslog } from '../adapters/syslog.js';
import { AllowFile } from '../adapters/allow-file.js';
import { readHostFacts } from '../adapters/host-facts.js';
import type { Paths } from '../adapters/paths.js';
import { AllowList } from './allow-list.js';
import type { Protected } from './bans.js';
import type { Gateway } from './gateway.js';
import { kernelLists, protectedList } from './protect.js';

/**
 * The config as the daemon takes it at start-up, and as `config check` checks
 * it: the schema, then what the outputs' constructors refuse (they open
 * nothing), so nothing the daemon would refuse after attaching passes here.
 */
export function loadCheckedConfig(path: string | undefined): { config: Config; source: string } {
  const loaded = loadConfig(path);
  const { config: cfg, source } = loaded;
  try {
    if (cfg.syslog.enabled) new Syslog({ path: cfg.syslog.path, facility: cfg.syslog.facility, tag: cfg.syslog.tag, report: () => {} }).close();
    if (cfg.notify.command || cfg.notify.webhook) {
      new Notifier({
        ...(cfg.notify.command ? { command: cfg.notify.command } : {}),
        ...(cfg.notify.webhook ? { webhook: cfg.notify.webhook } : {}),
        report: () => {},
      });
    }
  } catch (e) {
    if (e instanceof SentryError) throw new SentryError('CONFIG', `${source}: ${e.message}`, e.hint);
    throw e;
  }
  return loaded;
}

export function ttlRules(cfg: Config) {
  return cfg.ttl_rules.map((r) => ({ net: parseCidr(r.cidr), ttl: r.ttl }));
}

/** Allow (config + `allow add`) and never-ban (config + host facts, with the addresses this host held lately), as they stand now. */
export function currentProtected(cfg: Config, paths: Paths): Protected[] {
  return protectedList(cfg, readHostFacts(cfg.never_ban.resolv_conf, paths.stateDir), new AllowFile(paths.stateDir).read());
}

/** Writes them into the kernel's allow tries. */
export function syncLists(gw: Gateway, cfg: Config, paths: Paths): void {
  new AllowList(gw.obj).sync(kernelLists(currentProtected(cfg, paths)));
}

/** This gateway's name in the fleet and in history. */
export function gatewayName(cfg: Config): string {
  return cfg.fleet.name ?? hostname();
}

/** Redis when configured, else the local journal under the state directory. */
export function openHistory(cfg: Config, paths: Paths, report: (line: string) => void): HistoryStore {
  if (cfg.redis) return new RedisStore({ ...cfg.redis, fleetSend: cfg.fleet.send, outboxDir: paths.stateDir }, report);
  return new JournalStore(paths.stateDir, cfg.history.max_bytes);
}
