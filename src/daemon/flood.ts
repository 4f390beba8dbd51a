/**
 * The one-a-second summary of what the kernel did not report one by one
 * during a flood: trigger crossings it did not ban (one port, no sweep, while
 * crossings ran above flood.pressure a second) and alerts over flood.alerts_per_second.
 * The details stay in metrics (flood_bans_deferred_total, alerts_summarised_total).
 */
import { Stat } from '../core/abi.js';
import type { FloodSummary } from '../core/events.js';
import type { Gateway } from './gateway.js';

const PROBE_STATS = [
  Stat.PROBE_SYN,
  Stat.PROBE_FIN,
  Stat.PROBE_NULL,
  Stat.PROBE_XMAS,
  Stat.PROBE_UNKNOWN,
  Stat.PROBE_UDP,
  Stat.PROBE_FRAG,
  Stat.PROBE_ACK,
  Stat.PROBE_MAIMON,
  Stat.PROBE_SWEEP,
  Stat.PROBE_V6CHAIN,
];

export type { FloodSummary } from '../core/events.js';

/** What the daemon needs of the flood counters (FloodWatch; a fake in tests). */
export interface FloodSource {
  take(): FloodSummary | undefined;
}

export class FloodWatch implements FloodSource {
  private last: bigint[];
  private at = Date.now();
  private readonly words = new Uint32Array(1024).map((_, i) => i);
  private readonly keys = Buffer.from(this.words.buffer);

  constructor(private readonly gw: Gateway) {
    this.last = gw.obj.readStats();
  }

  /** What was summarised since the last call, or undefined when nothing was. */
  take(): FloodSummary | undefined {
    const now = this.gw.obj.readStats();
    const d = (i: number) => Number((now[i] ?? 0n) - (this.last[i] ?? 0n));
    const deferred = d(Stat.BANS_DEFERRED);
    const summarised = d(Stat.ALERTS_SUMMARISED);
    const probes = PROBE_STATS.reduce((n, i) => n + d(i), 0);
    const seconds = Math.max(1, Math.round((Date.now() - this.at) / 1000));
    this.last = now;
    this.at = Date.now();
    if (!deferred && !summarised) return undefined;
    return { seconds, deferred, summarised, probes, ports: this.takePorts() };
  }

  /** How many distinct ports the kernel marked, and clears the marks. */
  private takePorts(): number {
    const m = this.gw.obj.map('sentry_flood_ports');
    const { values, count } = m.dump(1024);
    let ports = 0;
    for (let i = 0; i < count; i++) {
      let w = values.readBigUInt64LE(i * 8);
      for (; w; w &= w - 1n) ports++;
    }
    m.updateBatch(this.keys, Buffer.alloc(1024 * 8), 1024);
    return ports;
  }
}
