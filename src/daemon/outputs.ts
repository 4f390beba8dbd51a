/**
 * Where the daemon's events go besides stdout: syslog (PortSentry's facility and
 * wording), the notification digest, and the names of sources (RESOLVE_HOST).
 * Each output renders the typed event through its own projection (eventLine,
 * digestEvent); none reads another's output back.
 */
import { hostname } from 'node:os';
import type { Config } from '../core/config.js';
import { DigestBuilder, digestEvent, type DigestMessage } from '../core/digest.js';
import type { DaemonEvent } from '../core/events.js';
import { eventLine } from '../core/log-format.js';
import { Notifier } from '../adapters/notifier.js';
import { NameCache } from '../adapters/resolver.js';
import { Syslog, type SyslogSeverity } from '../adapters/syslog.js';
import { reporterOf, type Reporter } from './daemon.js';

export interface Outputs {
  reporter: Reporter;
  close(): Promise<void>;
}

/** The outputs besides stdout, each optional (off in the config); fakes in tests. */
export interface OutputSinks {
  syslog?: { log(severity: SyslogSeverity, line: string): void; close(): void } | undefined;
  /** Reverse DNS of sources (RESOLVE_HOST). */
  names?: { name(addr: string): string | undefined; close(): void } | undefined;
  /** The digest and where its messages go: both or neither. */
  notify?: { digest: DigestBuilder; send(m: DigestMessage): Promise<unknown> } | undefined;
}

/** The sinks as the config sets them. */
function configuredSinks(cfg: Config, info: (line: string) => void): OutputSinks {
  const syslog = cfg.syslog.enabled ? new Syslog({ path: cfg.syslog.path, facility: cfg.syslog.facility, tag: cfg.syslog.tag, report: info }) : undefined;
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
  const notify = notifier
    ? {
        digest: new DigestBuilder({ intervalMs: cfg.notify.interval * 1000, urgent: cfg.notify.urgent, host: hostname() }),
        send: (m: DigestMessage) => notifier.send(m),
      }
    : undefined;
  return { syslog, names, notify };
}

/** The event with its source's name, for the alert line (the name is the attacker's to write: log-format checks it). */
function withName(e: DaemonEvent, names: OutputSinks['names']): DaemonEvent {
  if (!names || (e.type !== 'alert' && e.type !== 'ban' && e.type !== 'ban_failed')) return e;
  const name = names.name(e.alert.source);
  return name ? { ...e, alert: { ...e.alert, hostname: name } } : e;
}

export function makeOutputs(cfg: Config, base: Reporter, info: (line: string) => void, sinks: OutputSinks = configuredSinks(cfg, info)): Outputs {
  const { syslog, names, notify } = sinks;
  const timer = notify
    ? setInterval(() => {
        const now = Date.now();
        if (!notify.digest.due(now)) return;
        const m = notify.digest.take(now);
        if (m) void notify.send(m);
      }, 1000)
    : undefined;
  timer?.unref();

  const emit = (e: DaemonEvent) => {
    const shown = withName(e, names);
    base.emit(shown);
    const line = syslog && eventLine(shown);
    if (line) syslog!.log(e.type === 'info' ? 'info' : 'notice', line);
    const d = notify && digestEvent(e);
    if (d) {
      const r = notify!.digest.add(d, Date.now());
      if (r.urgent) void notify!.send(r.urgent);
    }
  };
  return {
    reporter: reporterOf(emit),
    async close() {
      if (timer) clearInterval(timer);
      if (notify) {
        const m = notify.digest.take(Date.now(), { force: true });
        if (m) await notify.send(m);
      }
      names?.close();
      syslog?.close();
    },
  };
}
