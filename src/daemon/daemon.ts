/**
 * The foreground daemon: drains alerts from the ring buffer (in batches, on a
 * worker thread), reports them, and sweeps expired bans out of the kernel table.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { dataView, decodeEvent, EV_F_BAN_FAILED, EV_F_BANNED, Layout, type AlertEvent } from '../core/abi.js';
import { alertJson, alertLine, banJson, banLine, unbanLine, type Alert } from '../core/log-format.js';
import { kernelClockNs, ifIndexToName, RingBuffer } from '../adapters/kernel.js';
import { BanTable, type BanEntry } from './ban-table.js';
import type { Gateway } from './gateway.js';

export interface Reporter {
  alert(a: Alert): void;
  unban(e: BanEntry, why: string): void;
  info(text: string): void;
}

/** Lines for people (PortSentry's wording) or JSON lines for machines. */
export function makeReporter(json: boolean, write: (line: string) => void, now: () => Date = () => new Date()): Reporter {
  if (json) {
    return {
      alert(a) {
        write(JSON.stringify(alertJson(a)));
        const b = banJson(a);
        if (b) write(JSON.stringify(b));
      },
      unban(e, why) {
        write(JSON.stringify({ time: now().toISOString(), event: 'unban', source: e.target, reason: why }));
      },
      info(text) {
        write(JSON.stringify({ time: now().toISOString(), event: 'info', message: text }));
      },
    };
  }
  return {
    alert(a) {
      write(alertLine(a));
      const b = banLine(a);
      if (b) write(b);
    },
    unban(e, why) {
      write(unbanLine(e.target, why));
    },
    info(text) {
      write(`sentry-xdp: ${text}`);
    },
  };
}

/** Kernel event → Alert, converting kernel clock stamps to wall-clock time. */
export function toAlert(ev: AlertEvent, clockNowNs: number, wallNowMs: number, ifname: (i: number) => string): Alert {
  const wall = (ns: number) => new Date(wallNowMs - (clockNowNs - ns) / 1e6);
  const banned = (ev.flags & EV_F_BANNED) !== 0;
  return {
    time: wall(ev.tsNs),
    source: ev.source,
    proto: ev.proto === 17 ? 'udp' : 'tcp',
    port: ev.port,
    kind: ev.kind,
    tcpFlags: ev.tcpFlags,
    iface: ifname(ev.ifindex),
    probes: ev.probes,
    banned,
    banFailed: (ev.flags & EV_F_BAN_FAILED) !== 0,
    banSeconds: banned && ev.expiresNs ? Math.round((ev.expiresNs - ev.tsNs) / 1e9) : 0,
    ...(banned && ev.expiresNs ? { expires: wall(ev.expiresNs) } : {}),
  };
}

export interface DaemonOptions {
  reporter: Reporter;
  signal: AbortSignal;
  sweepMs?: number;
}

/** Runs until the signal fires ('signal') or the pins are removed under it ('removed'). */
export async function runDaemon(gw: Gateway, opts: DaemonOptions): Promise<'signal' | 'removed'> {
  const rb = new RingBuffer(gw.obj.mapFd('sentry_events'), Layout.sx_event.size, 4096);
  const bans = new BanTable(gw.obj);
  const names = new Map<number, string>();
  const ifname = (i: number) => {
    let n = names.get(i);
    if (!n) {
      n = ifIndexToName(i) ?? `if${i}`;
      names.set(i, n);
    }
    return n;
  };
  const sweepMs = opts.sweepMs ?? 1000;
  let nextSweep = 0;
  try {
    while (!opts.signal.aborted) {
      const { buf, count } = await rb.drain(200);
      if (count) {
        const clockNow = Number(kernelClockNs());
        const wallNow = Date.now();
        const dv = dataView(buf);
        for (let i = 0; i < count; i++) {
          opts.reporter.alert(toAlert(decodeEvent(dv, i * Layout.sx_event.size), clockNow, wallNow, ifname));
        }
      }
      if (Date.now() >= nextSweep) {
        // `detach --all` unpinned everything: our fds point at maps nobody uses
        if (!existsSync(join(gw.pinRoot, 'prog'))) return 'removed';
        const t0 = Date.now();
        for (const e of bans.sweepExpired(kernelClockNs())) opts.reporter.unban(e, 'ban expired');
        // a big table is swept less often: at most ~5% of one core
        nextSweep = Date.now() + Math.max(sweepMs, (Date.now() - t0) * 20);
      }
    }
    return 'signal';
  } finally {
    rb.close();
  }
}
