/**
 * PortSentry's side effects of a ban, paired: when an automatic ban begins,
 * KILL_ROUTE, the KILL_HOSTS_DENY line and KILL_RUN_CMD; when it ends, however
 * it ends (expiry, unban, `unban --all`, a fleet unban, eviction, `detach
 * --all`), the hosts.deny line comes out and UNBAN_CMD runs, once. The daemon
 * and the CLI both reach this only through BanService (src/daemon/bans.ts).
 *
 * Only automatic bans have hooks: a manual, imported or fleet ban never ran
 * KILL_* here, so its end runs nothing either.
 */
import { Origin } from '../core/abi.js';
import type { Config } from '../core/config.js';
import { HookRunner } from '../adapters/hooks.js';
import { HostsDeny } from './hosts-deny.js';

/** What runs hook commands (src/adapters/hooks.ts HookRunner). */
export interface Hooks {
  run(name: string, template: string, tokens: { target: string; port: number; mode: string }): Promise<unknown>;
}

/** How a ban ended: `why` goes to history, `line` to the daemon's log. */
export interface Ending {
  cause: 'expired' | 'evicted' | 'unban' | 'unban-all' | 'fleet' | 'detach';
  why: string;
  line: string;
  by?: string;
}

/** A ban as the kernel table held it (the fields the hooks need). */
export interface EndedBan {
  target: string;
  value: { origin: number; port: number; proto: number };
}

/** A ban as it begins (the fields the hooks need). */
export interface BegunBan {
  target: string;
  origin: string;
  port?: number | undefined;
  proto?: string | undefined;
}

export interface BanEffectsOptions {
  /** The hooks section in force (a reload may replace it). */
  hooks: () => Config['hooks'];
  runner?: Hooks | undefined;
  hostsDeny?: HostsDeny | undefined;
  /** The log line of an ended ban (the daemon's reporter); the CLI prints its own. */
  log?: ((target: string, line: string) => void) | undefined;
}

export class BanEffects {
  constructor(private readonly o: BanEffectsOptions) {}

  /** An automatic ban began (`cmdOnly`: BLOCK_*=2, the external command alone). */
  began(b: BegunBan, cmdOnly = false): void {
    if (b.origin !== 'auto') return;
    const h = this.o.hooks();
    const tokens = { target: b.target, port: b.port ?? 0, mode: b.proto ?? 'tcp' };
    const cmd = () => h.kill_run_cmd && void this.o.runner?.run('KILL_RUN_CMD', h.kill_run_cmd, tokens);
    if (cmdOnly) return void cmd();
    if (h.kill_run_cmd_first) cmd();
    if (h.kill_route) void this.o.runner?.run('KILL_ROUTE', h.kill_route, tokens);
    if (h.kill_hosts_deny) this.o.hostsDeny?.add(h.kill_hosts_deny, tokens);
    if (!h.kill_run_cmd_first) cmd();
  }

  /** Bans ended (already out of the kernel table, recorded in history and nft). */
  ended(bans: readonly EndedBan[], how: Ending): void {
    if (!bans.length) return;
    const h = this.o.hooks();
    const auto: Array<{ target: string; port: number; mode: string }> = [];
    for (const b of bans) {
      this.o.log?.(b.target, how.line);
      if (b.value.origin === Origin.AUTO) auto.push({ target: b.target, port: b.value.port, mode: b.value.proto === 17 ? 'udp' : 'tcp' });
    }
    if (h.kill_hosts_deny) this.o.hostsDeny?.remove(h.kill_hosts_deny, auto);
    if (h.unban_cmd) for (const tokens of auto) void this.o.runner?.run('UNBAN_CMD', h.unban_cmd, tokens);
  }
}

/**
 * The effects as the config sets them, for the daemon and for the CLI alike;
 * `idle` waits for the hooks started so far (the CLI waits before it exits).
 */
export function configuredEffects(
  config: Config,
  report: (line: string) => void,
  log?: (target: string, line: string) => void,
): { effects: BanEffects; runner: HookRunner; idle: () => Promise<void> } {
  const runner = new HookRunner({
    timeoutMs: config.hooks.timeout * 1000,
    onResult: (r) => {
      if (!r.ok) report(`hook ${r.name} failed: ${r.timedOut ? `killed after ${config.hooks.timeout}s` : (r.error ?? `exit ${r.exitCode}`)} (${r.plan})`);
    },
  });
  const effects = new BanEffects({ hooks: () => config.hooks, runner, hostsDeny: new HostsDeny(config.hooks.hosts_deny_file, report), log });
  return { effects, runner, idle: () => runner.idle() };
}
