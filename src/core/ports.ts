import { SentryError } from '../errors.js';

/**
 * PortSentry's "just be aware" lists, as Debian's portsentry.conf ships them,
 * less the ports inside Linux's ephemeral range (32768-60999: TCP 32771-32774,
 * 40421, 49724, 54320; UDP 32770-32774, 34555, 37444, 54321): replies to this
 * host's and its clients' own connections land there.
 */
export const AWARE_TCP_PORTS = '1,11,15,79,111,119,143,540,635,1080,1524,2000,5742,6667,12345,12346,20034,27665,31337';
export const AWARE_UDP_PORTS = '1,7,9,69,161,162,513,635,640,641,700,31335,31337';

/** Linux's default net.ipv4.ip_local_port_range, for configs made on another host. */
export const LINUX_EPHEMERAL_RANGE: [number, number] = [32768, 60999];

/** Lines for watched ports that lie inside this host's ephemeral port range. */
export function ephemeralWarnings(ports: { tcp: readonly number[]; udp: readonly number[] }, range: [number, number] | undefined, where = 'watched'): string[] {
  if (!range) return [];
  const [lo, hi] = range;
  const out: string[] = [];
  for (const proto of ['tcp', 'udp'] as const) {
    const inside = ports[proto].filter((p) => p >= lo && p <= hi);
    if (inside.length) {
      out.push(
        `${where} ${proto.toUpperCase()} port(s) ${formatPortList(inside)} lie inside the ephemeral range ${lo}-${hi} (net.ipv4.ip_local_port_range): ` +
          `replies to outgoing connections land there; they are probes only when no socket or conntrack entry owns them, but consider removing them`,
      );
    }
  }
  return out;
}

/** "32768\t60999" (/proc/sys/net/ipv4/ip_local_port_range) → [32768, 60999]. */
export function parsePortRange(text: string): [number, number] | undefined {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/**
 * Parses "1,7,9-12" (or an array of numbers and "a-b" strings) into a sorted
 * list of unique ports. `where` names the setting for the error message.
 */
export function parsePortList(spec: string | ReadonlyArray<number | string>, where: string): number[] {
  const tokens = typeof spec === 'string' ? spec.split(',') : spec.map(String);
  const out = new Set<number>();
  for (const raw of tokens) {
    const tok = raw.trim();
    if (tok === '') continue;
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(tok);
    const lo = m ? Number(m[1]) : NaN;
    const hi = m && m[2] !== undefined ? Number(m[2]) : lo;
    if (!m || lo < 1 || hi > 65535 || lo > hi) {
      throw new SentryError('CONFIG', `${where}: "${tok}" is not a port or port range`, 'ports are 1-65535, written as 23 or 6000-6063, separated by commas');
    }
    for (let p = lo; p <= hi; p++) out.add(p);
  }
  return [...out].sort((a, b) => a - b);
}

/** [1,2,3,7] → "1-3,7": compact for status lines. */
export function formatPortList(ports: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < ports.length;) {
    let j = i;
    while (j + 1 < ports.length && ports[j + 1] === ports[j]! + 1) j++;
    parts.push(j > i ? `${ports[i]}-${ports[j]}` : `${ports[i]}`);
    i = j + 1;
  }
  return parts.join(',');
}
