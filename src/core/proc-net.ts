/**
 * Parses /proc/net/{tcp,tcp6,udp,udp6}: which local ports have a listening
 * TCP socket or a bound, unconnected UDP socket.
 */
const TCP_LISTEN = '0A';

export function listeningPorts(text: string, proto: 'tcp' | 'udp'): Set<number> {
  const out = new Set<number>();
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    const local = f[1]!;
    const remote = f[2]!;
    const state = f[3]!;
    const port = parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
    if (!Number.isFinite(port) || port === 0) continue;
    if (proto === 'tcp' ? state === TCP_LISTEN : /^0+:0000$/.test(remote)) out.add(port);
  }
  return out;
}
