import type { Alert, DaemonEvent, FleetBanApplied, FloodSummary, NotBlocked } from './events.js';
import { Kind, kindKey, scanName, tcpFlagNames } from './scan-kind.js';
import { hostName } from './text.js';
import { formatDuration } from './ttl.js';

export type { Alert } from './events.js';

/** " to TCP port: 23" where the protocol has ports; a sweep also says how many hosts it reached. */
function target(a: Alert, portWord: string): string {
  const port = a.proto === 'tcp' || a.proto === 'udp' ? ` to ${a.proto.toUpperCase()} ${portWord}${a.port}` : '';
  return a.kind === Kind.SWEEP ? `${port} (${a.probes} hosts)` : port;
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

export function spoofedLine(a: Pick<Alert, 'source'>): string {
  return `Host ${a.source} has a live connection to or through this host; not blocked (possibly spoofed)`;
}

/** Why a source that crossed the trigger was not banned (after `attackalert: `). */
function notBlockedText(e: NotBlocked): string {
  switch (e.reason) {
    case 'live-connection':
      return spoofedLine(e);
    case 'never-ban':
      return `Host ${e.source} is on the never-ban list; not blocked (spoofed, or our own)`;
    case 'cap':
      return `Host ${e.source} not blocked: the cap of ${e.cap ?? 0} automatic bans per minute is reached`;
  }
}

function fleetBanText(e: FleetBanApplied): string {
  const left = e.expires === null ? 'permanent' : formatDuration(e.leftSeconds);
  return `Host ${e.target} has been blocked via fleet ban from gateway ${e.gateway ?? '?'} (ban ${left})`;
}

/** The summary line (PortSentry's attackalert: prefix, so log filters see it). */
function floodLine(s: FloodSummary): string {
  const parts: string[] = [];
  if (s.deferred) parts.push(`${s.deferred} source(s) probed one port during a flood of single probes and were not banned (a second port bans them)`);
  if (s.summarised) parts.push(`${s.summarised} more alert(s) than the log takes one by one`);
  return `flood: in the last ${s.seconds}s ${parts.join('; ')}; ${s.probes} probe(s) to ${s.ports} port(s); details in metrics`;
}

/** An event as the lines people (and logcheck, fail2ban) read: stdout and syslog. */
export function eventLine(e: DaemonEvent): string | undefined {
  switch (e.type) {
    case 'alert':
      return alertLine(e.alert);
    case 'ban':
    case 'ban_failed':
      return banLine(e.alert);
    case 'not_blocked':
      return `attackalert: ${notBlockedText(e)}`;
    case 'fleet_ban':
      return `attackalert: ${fleetBanText(e)}`;
    case 'unban':
      return unbanLine(e.target, e.why);
    case 'flood_summary':
      return `attackalert: ${floodLine(e.summary)}`;
    case 'info':
      return `sentry-xdp: ${e.text}`;
  }
}
