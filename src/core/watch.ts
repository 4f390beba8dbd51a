import type { Config } from './config.js';

type Proto = 'tcp' | 'udp';
interface Skipped {
  proto: Proto;
  port: number;
  reason: string;
}
export interface WatchSet {
  tcp: number[];
  udp: number[];
  skipped: Skipped[];
}
/** Ports that local sockets listen on (TCP LISTEN, bound UDP), per protocol. */
export interface Listeners {
  tcp: ReadonlySet<number>;
  udp: ReadonlySet<number>;
}

/**
 * Which ports are tripwires. A port a local service listens on is never one:
 * PortSentry could not bind it either, and banning that service's clients is
 * the worst false positive a gateway can have. Advanced mode watches every port
 * below N that nothing listens on, minus the excludes.
 */
export function computeWatchSet(cfg: Config, listening: Listeners): WatchSet {
  const skipped: Skipped[] = [];
  const pick = (proto: Proto): number[] => {
    const adv = cfg.advanced[proto];
    const exclude = new Set(cfg.advanced[`exclude_${proto}`]);
    const wanted = new Set<number>(cfg[`${proto}_ports`]);
    if (adv > 0) for (let p = 1; p < adv; p++) if (!exclude.has(p)) wanted.add(p);
    const out: number[] = [];
    for (const port of [...wanted].sort((a, b) => a - b)) {
      if (listening[proto].has(port)) {
        // advanced mode skips listeners by definition; only report listed ports
        if (cfg[`${proto}_ports`].includes(port)) {
          skipped.push({ proto, port, reason: `a local service listens on ${proto.toUpperCase()} ${port}` });
        }
        continue;
      }
      out.push(port);
    }
    return out;
  };
  return { tcp: pick('tcp'), udp: pick('udp'), skipped };
}
