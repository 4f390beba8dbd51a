import { kindKey, scanName, tcpFlagNames } from './scan-kind.js';
import { formatDuration } from './ttl.js';

/** An alert as the daemon reports it, after decoding and address/time conversion. */
export interface Alert {
  time: Date;
  source: string;
  hostname?: string;
  proto: 'tcp' | 'udp';
  port: number;
  kind: number;
  tcpFlags: number;
  iface: string;
  probes: number;
  banned: boolean;
  banFailed: boolean;
  banSeconds: number; // 0 = permanent (when banned)
  expires?: Date;
}

/**
 * PortSentry's wording, so existing logcheck rules and fail2ban filters match:
 *   attackalert: TCP SYN/Normal scan from host: 198.18.0.1/198.18.0.1 to TCP port: 23
 */
export function alertLine(a: Alert): string {
  const host = a.hostname ?? a.source;
  return `attackalert: ${scanName(a.kind, a.tcpFlags)} from host: ${host}/${a.source} to ${a.proto.toUpperCase()} port: ${a.port}`;
}

export function banLine(a: Alert): string | undefined {
  if (a.banFailed) return `attackalert: Host ${a.source} could not be blocked: the kernel ban table is full`;
  if (!a.banned) return undefined;
  const until = a.expires ? `, until ${a.expires.toISOString()}` : '';
  return `attackalert: Host ${a.source} has been blocked via XDP drop (ban ${formatDuration(a.banSeconds)}${until})`;
}

export function unbanLine(source: string, why: string): string {
  return `attackalert: Host ${source} has been unblocked (${why})`;
}

export function alertJson(a: Alert): object {
  return {
    time: a.time.toISOString(),
    event: 'alert',
    source: a.source,
    proto: a.proto,
    port: a.port,
    kind: kindKey(a.kind),
    scan: scanName(a.kind, a.tcpFlags),
    flags: a.proto === 'tcp' ? tcpFlagNames(a.tcpFlags) : undefined,
    iface: a.iface,
    probes: a.probes,
    banned: a.banned,
  };
}

export function banJson(a: Alert): object | undefined {
  if (!a.banned && !a.banFailed) return undefined;
  return {
    time: a.time.toISOString(),
    event: a.banFailed ? 'ban_failed' : 'ban',
    source: a.source,
    origin: 'auto',
    ttl_seconds: a.banSeconds,
    expires: a.expires?.toISOString() ?? null,
    reason: `${scanName(a.kind, a.tcpFlags)} to ${a.proto.toUpperCase()} port ${a.port}`,
  };
}
