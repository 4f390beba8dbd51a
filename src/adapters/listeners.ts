import { readFileSync } from 'node:fs';
import { listeningPorts } from '../core/proc-net.js';
import type { Listeners } from '../core/watch.js';

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return ''; // no IPv6 in this kernel/netns: nothing listens there
  }
}

/** Listening sockets in this process's network namespace. */
export function readListeners(procNet = '/proc/net'): Listeners {
  const tcp = new Set([...listeningPorts(read(`${procNet}/tcp`), 'tcp'), ...listeningPorts(read(`${procNet}/tcp6`), 'tcp')]);
  const udp = new Set([...listeningPorts(read(`${procNet}/udp`), 'udp'), ...listeningPorts(read(`${procNet}/udp6`), 'udp')]);
  return { tcp, udp };
}
