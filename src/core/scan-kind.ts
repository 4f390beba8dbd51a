/** Probe kinds as the XDP program reports them (enum sx_kind in bpf/sentry_shared.h). */
export const Kind = { NONE: 0, SYN: 1, FIN: 2, NULL: 3, XMAS: 4, UNKNOWN: 5, UDP: 6, FRAG: 7, ACK: 8, MAIMON: 9, SWEEP: 10, V6CHAIN: 11 } as const;

const TCP_FLAG_NAMES = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'] as const;

/** "SYN FIN" for a flags byte; "none" for a NULL packet. */
export function tcpFlagNames(flags: number): string {
  const names = TCP_FLAG_NAMES.filter((_, bit) => flags & (1 << bit));
  return names.length ? names.join(' ') : 'none';
}

/** The short name used in JSON and counters. */
export function kindKey(kind: number): string {
  return ['none', 'syn', 'fin', 'null', 'xmas', 'unknown', 'udp', 'frag', 'ack', 'maimon', 'sweep', 'v6chain'][kind] ?? `kind${kind}`;
}

/**
 * PortSentry's wording for a scan, so logcheck and fail2ban filters written
 * for PortSentry keep matching: "TCP SYN/Normal scan", "UDP scan", ...
 */
export function scanName(kind: number, tcpFlags: number, proto = 'tcp'): string {
  const P = proto.toUpperCase();
  switch (kind) {
    case Kind.SYN:
      return 'TCP SYN/Normal scan';
    case Kind.FIN:
      return 'TCP FIN scan';
    case Kind.NULL:
      return 'TCP NULL scan';
    case Kind.XMAS:
      return 'TCP XMAS scan';
    case Kind.UNKNOWN:
      return `TCP Unknown Type scan (flags: ${tcpFlagNames(tcpFlags)})`;
    case Kind.UDP:
      return 'UDP scan';
    case Kind.FRAG:
      return `${P} fragment evasion scan`;
    case Kind.ACK:
      return 'TCP ACK scan';
    case Kind.MAIMON:
      return 'TCP Maimon scan';
    case Kind.SWEEP:
      return proto === 'icmp' ? 'ICMP echo sweep' : `${P} sweep`;
    case Kind.V6CHAIN:
      return 'IPv6 extension-header evasion scan';
    default:
      return `scan of kind ${kind}`;
  }
}
