import { Kind, kindKey, scanName, tcpFlagNames } from './scan-kind.js';
import { hostName } from './text.js';
import { formatDuration } from './ttl.js';

export type AlertProto = 'tcp' | 'udp' | 'icmp' | 'ip';

/** IPPROTO_* → the name alerts use. */
export function protoName(n: number): AlertProto {
  return n === 6 ? 'tcp' : n === 17 ? 'udp' : n === 1 || n === 58 ? 'icmp' : 'ip';
}

/** " to TCP port: 23" where the protocol has ports; a sweep also says how many hosts it reached. */
function target(a: Alert, portWord: string): string {
  const port = a.proto === 'tcp' || a.proto === 'udp' ? ` to ${a.proto.toUpperCase()} ${portWord}${a.port}` : '';
  return a.kind === Kind.SWEEP ? `${port} (${a.probes} hosts)` : port;
}

/** An alert as the daemon reports it, after decoding and address/time conversion. */
export interface Alert {
  time: Date;
  source: string;
  /** The address probed: this host's, or one in a protected network. */
  destination: string;
  hostname?: string;
  proto: AlertProto;
  port: number; // 0 for ICMP and for what carries no port
  kind: number;
  tcpFlags: number;
  iface: string;
  probes: number;
  banned: boolean;
  banFailed: boolean;
  /** Not banned: the source has a live connection to or through this host, so the probe may be forged. */
  possiblySpoofed: boolean;
  banSeconds: number; // 0 = permanent (when banned)
  expires?: Date;
}

/**
 * PortSentry's wording, so existing logcheck rules and fail2ban filters match:
 *   attackalert: TCP SYN/Normal scan from host: 198.18.0.1/198.18.0.1 to TCP port: 23
 * The address after the slash is always the packet's; the name before it only
 * when it is a valid host name (reverse DNS is the attacker's to write).
 */
export function alertLine(a: Alert): string {
  const host = (a.hostname !== undefined ? hostName(a.hostname) : undefined) ?? a.source;
  return `attackalert: ${scanName(a.kind, a.tcpFlags, a.proto)} from host: ${host}/${a.source}${target(a, 'port: ')}`;
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
    destination: a.destination,
    proto: a.proto,
    port: a.port,
    kind: kindKey(a.kind),
    scan: scanName(a.kind, a.tcpFlags, a.proto),
    flags: a.proto === 'tcp' ? tcpFlagNames(a.tcpFlags) : undefined,
    iface: a.iface,
    probes: a.probes,
    banned: a.banned,
    possiblySpoofed: a.possiblySpoofed,
  };
}

export function banJson(a: Alert): object | undefined {
  if (!a.banned && !a.banFailed) return undefined;
  return {
    time: a.time.toISOString(),
    event: a.banFailed ? 'ban_failed' : 'ban',
    source: a.source,
    origin: 'auto',
    ttlSeconds: a.banSeconds,
    expires: a.expires?.toISOString() ?? null,
    reason: banReason(a),
  };
}

/** Why an automatic ban was made, as history and `list` show it. */
export function banReason(a: Alert): string {
  const port = a.proto === 'tcp' || a.proto === 'udp' ? ` ${a.proto.toUpperCase()} port ${a.port}` : '';
  if (a.kind === Kind.SWEEP) return `${scanName(a.kind, a.tcpFlags, a.proto)} of ${a.probes} hosts (the last ${a.destination}${port})`;
  return `${scanName(a.kind, a.tcpFlags, a.proto)} to ${a.destination}${port}`;
}

export function spoofedLine(a: Alert): string {
  return `Host ${a.source} has a live connection to or through this host; not blocked (possibly spoofed)`;
}
