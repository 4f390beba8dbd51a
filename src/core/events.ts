/**
 * The daemon's events, one typed model from the ring buffer to every output.
 *
 * A ring-buffer record is decoded once (abi.ts decodeEvent, the wire form) and
 * turned once into a Probe (probeFromWire: wall-clock times, names, what the
 * kernel decided). The daemon's policy then emits DaemonEvents; each output
 * renders them through one projection of its own, defined next to its format:
 * the log line (log-format.ts eventLines), the JSON line (json-format.ts
 * eventJson), the history record (alertRecord below), the digest
 * (digest.ts digestEvent) and the metrics totals (daemon.ts DaemonTally).
 * No output reads another's output back.
 */
import { EV_F_BAN_FAILED, EV_F_BANNED, EV_F_CAPPED, EV_F_LIVE_PEER, EV_F_NEVER_BAN, type AlertEvent as WireEvent } from './abi.js';
import type { AlertRecord } from './records.js';
import { kindKey, tcpFlagNames } from './scan-kind.js';

export type AlertProto = 'tcp' | 'udp' | 'icmp' | 'ip';

/** IPPROTO_* → the name alerts use. */
export function protoName(n: number): AlertProto {
  return n === 6 ? 'tcp' : n === 17 ? 'udp' : n === 1 || n === 58 ? 'icmp' : 'ip';
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
  /** DEST_HOST or DEST_NET: what kind of destination was probed (bounded metric labels); absent = this host. */
  dscope?: number;
}

/** Why the kernel did not ban a source that crossed the trigger (README "JSON output": not_blocked reasons). */
export type NotBlockedReason = 'live-connection' | 'never-ban' | 'cap';

/**
 * One ring-buffer record in the domain's terms: the alert, and what the
 * kernel did about it. The kernel-clock stamps stay for the one decision that
 * needs them (a ban made while the start-up restore ran).
 */
export interface Probe {
  alert: Alert;
  /** Not banned for this reason (undefined: banned, or simply under the trigger / log-only). */
  held?: NotBlockedReason;
  /** Kernel clock (ns) of the event and of the ban's expiry (0 = none or permanent). */
  tsNs: number;
  expiresNs: number;
  /** The wire protocol and kind numbers, as the kernel ban table stores them. */
  protoNum: number;
  kindNum: number;
}

/** The kernel clock and the wall clock read at one moment: converts kernel stamps to wall time. */
export interface ClockPair {
  clockNowNs: number;
  wallNowMs: number;
}

function heldBy(flags: number): NotBlockedReason | undefined {
  if (flags & EV_F_LIVE_PEER) return 'live-connection';
  if (flags & EV_F_NEVER_BAN) return 'never-ban';
  if (flags & EV_F_CAPPED) return 'cap';
  return undefined;
}

/** Kernel event → Alert, converting kernel clock stamps to wall-clock time. */
function toAlert(ev: WireEvent, clockNowNs: number, wallNowMs: number, ifname: (i: number) => string): Alert {
  const wall = (ns: number) => new Date(wallNowMs - (clockNowNs - ns) / 1e6);
  const banned = (ev.flags & EV_F_BANNED) !== 0;
  return {
    time: wall(ev.tsNs),
    source: ev.source,
    destination: ev.destination,
    proto: protoName(ev.proto),
    port: ev.port,
    kind: ev.kind,
    tcpFlags: ev.tcpFlags,
    iface: ifname(ev.ifindex),
    probes: ev.probes,
    banned,
    banFailed: (ev.flags & EV_F_BAN_FAILED) !== 0,
    possiblySpoofed: (ev.flags & EV_F_LIVE_PEER) !== 0,
    banSeconds: banned && ev.expiresNs ? Math.round((ev.expiresNs - ev.tsNs) / 1e9) : 0,
    ...(banned && ev.expiresNs ? { expires: wall(ev.expiresNs) } : {}),
    dscope: ev.dscope,
  };
}

/** The one place a wire record becomes a domain probe. */
export function probeFromWire(ev: WireEvent, clock: ClockPair, ifname: (i: number) => string): Probe {
  const alert = toAlert(ev, clock.clockNowNs, clock.wallNowMs, ifname);
  const held = alert.banned ? undefined : heldBy(ev.flags);
  return {
    alert,
    ...(held ? { held } : {}),
    tsNs: ev.tsNs,
    expiresNs: ev.expiresNs,
    protoNum: ev.proto,
    kindNum: ev.kind,
  };
}

/** A one-second summary of what the kernel did not report one by one during a flood. */
export interface FloodSummary {
  seconds: number;
  deferred: number; // crossings not banned: one port during a flood
  summarised: number; // alerts not sent one by one
  probes: number;
  ports: number;
}

/** A probe was seen (whatever came of it). */
export interface AlertSeen {
  type: 'alert';
  alert: Alert;
}

/** The kernel banned the source of `alert` (an automatic ban begins). */
export interface AutoBanBegan {
  type: 'ban';
  alert: Alert;
}

/** The kernel wanted to ban the source of `alert` and could not (its table is full). */
export interface AutoBanFailed {
  type: 'ban_failed';
  alert: Alert;
}

/** A source crossed the trigger and was not banned, for `reason`. */
export interface NotBlocked {
  type: 'not_blocked';
  time: Date;
  source: string;
  destination: string;
  reason: NotBlockedReason;
  /** The cap of automatic bans a minute, when reason is 'cap'. */
  cap?: number;
}

/** Another gateway's ban was applied here. */
export interface FleetBanApplied {
  type: 'fleet_ban';
  time: Date;
  target: string;
  gateway?: string | undefined;
  /** When it ends (wall), null = permanent. */
  expires: Date | null;
  /** Seconds it had left when applied here, 0 = permanent. */
  leftSeconds: number;
}

/** A ban ended (expired, evicted, unbanned, lifted): `why` as the log line gives it. */
export interface BanEnded {
  type: 'unban';
  time: Date;
  target: string;
  why: string;
}

export interface FloodSummarised {
  type: 'flood_summary';
  time: Date;
  summary: FloodSummary;
}

/** What the daemon says about itself (start-up, reloads, trouble). */
export interface Info {
  type: 'info';
  time: Date;
  text: string;
}

export type DaemonEvent = AlertSeen | AutoBanBegan | AutoBanFailed | NotBlocked | FleetBanApplied | BanEnded | FloodSummarised | Info;

/** The events of one alert as PortSentry reports it: the alert, then its ban (or the failed ban) when there is one. */
export function alertEvents(alert: Alert): DaemonEvent[] {
  const out: DaemonEvent[] = [{ type: 'alert', alert }];
  if (alert.banFailed) out.push({ type: 'ban_failed', alert });
  else if (alert.banned) out.push({ type: 'ban', alert });
  return out;
}

export function fleetBanEvent(b: { target: string; gateway?: string | undefined; expires: number | null }, time: Date): FleetBanApplied {
  return {
    type: 'fleet_ban',
    time,
    target: b.target,
    gateway: b.gateway,
    expires: b.expires === null ? null : new Date(b.expires),
    leftSeconds: b.expires === null ? 0 : Math.max(1, Math.round((b.expires - time.getTime()) / 1000)),
  };
}

/** The history record of an alert (src/core/records.ts AlertRecordSchema). */
export function alertRecord(a: Alert, gateway: string): AlertRecord {
  return {
    op: 'alert',
    time: a.time.getTime(),
    source: a.source,
    destination: a.destination,
    proto: a.proto,
    port: a.port,
    kind: kindKey(a.kind),
    ...(a.proto === 'tcp' ? { flags: tcpFlagNames(a.tcpFlags) } : {}),
    iface: a.iface,
    gateway,
  };
}
