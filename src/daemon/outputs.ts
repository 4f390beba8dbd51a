/**
 * Where the daemon's words go besides stdout: syslog (PortSentry's facility and
 * wording), the notification digest, and the names of sources (RESOLVE_HOST).
 */
import { hostname } from 'node:os';
import type { Config } from '../core/config.js';
import { DigestBuilder, type DigestEvent } from '../core/digest.js';
import { alertLine, banLine, unbanLine, type Alert } from '../core/log-format.js';
import { scanName } from '../core/scan-kind.js';
import { Notifier } from '../adapters/notifier.js';
import { NameCache } from '../adapters/resolver.js';
import { Syslog } from '../adapters/syslog.js';
import type { Reporter } from './daemon.js';

export interface Outputs {
  reporter: Reporter;
  close(): Promise<void>;
}

export function makeOutputs(cfg: Config, base: Reporter, info: (line: string) => void): Outputs {
  const syslog = cfg.syslog.enabled
    ? new Syslog({ path: cfg.syslog.path, facility: cfg.syslog.facility, tag: cfg.syslog.tag, report: info })
    : undefined;
  const names = cfg.resolve_host ? new NameCache() : undefined;
  const notifier =
    cfg.notify.command || cfg.notify.webhook
      ? new Notifier({
          ...(cfg.notify.command ? { command: cfg.notify.command } : {}),
          ...(cfg.notify.webhook ? { webhook: cfg.notify.webhook } : {}),
          timeoutMs: cfg.notify.timeout * 1000,
          report: (l) => info(`notify: ${l}`),
        })
      : undefined;
  const digest = notifier
    ? new DigestBuilder({ intervalMs: cfg.notify.interval * 1000, urgent: cfg.notify.urgent, host: hostname() })
    : undefined;
  const feed = (e: DigestEvent) => {
    if (!digest || !notifier) return;
    const r = digest.add(e, Date.now());
    if (r.urgent) void notifier.send(r.urgent);
  };
  const timer = digest
    ? setInterval(() => {
        const now = Date.now();
        if (!digest.due(now)) return;
        const m = digest.take(now);
        if (m) void notifier!.send(m);
      }, 1000)
    : undefined;
  timer?.unref();

  const reporter: Reporter = {
    alert(a: Alert) {
      const name = names?.name(a.source);
      const shown = name ? { ...a, hostname: name } : a;
      base.alert(shown);
      syslog?.log('notice', alertLine(shown));
      const b = banLine(shown);
      if (b) syslog?.log('notice', b);
      const scan = scanName(a.kind, a.tcpFlags, a.proto);
      const at = { source: a.source, destination: a.destination, proto: a.proto, port: a.port, scan };
      feed({ time: a.time.getTime(), kind: 'alert', ...at });
      if (a.banned) feed({ time: a.time.getTime(), kind: 'ban', ...at, ttlSeconds: a.banSeconds, origin: 'auto' });
    },
    unban(target, why) {
      base.unban(target, why);
      syslog?.log('notice', unbanLine(target, why));
      feed({ time: Date.now(), kind: 'unban', source: target, reason: why });
    },
    info(text) {
      base.info(text);
      syslog?.log('info', `sentry-xdp: ${text}`);
    },
    notice(text, json) {
      base.notice(text, json);
      syslog?.log('notice', `attackalert: ${text}`);
      const j = json as { event?: string; source?: string; destination?: string; reason?: string; origin?: string };
      if (j.event === 'not_blocked' && j.source) {
        feed({ time: Date.now(), kind: 'not_blocked', source: j.source, ...(j.destination ? { destination: j.destination } : {}), ...(j.reason ? { reason: j.reason } : {}) });
      }
      if (j.event === 'ban' && j.source) feed({ time: Date.now(), kind: 'ban', source: j.source, origin: j.origin ?? 'fleet' });
    },
  };
  return {
    reporter,
    async close() {
      if (timer) clearInterval(timer);
      if (digest && notifier) {
        const m = digest.take(Date.now(), { force: true });
        if (m) await notifier.send(m);
      }
      names?.close();
      syslog?.close();
    },
  };
}
