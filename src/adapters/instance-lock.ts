/**
 * One daemon per nftables table per network namespace. Two daemons with their
 * own pin roots in one namespace would keep rewriting each other's nft table.
 * The claim is an abstract unix socket (`\0sentry-xdp:TABLE`): abstract
 * sockets belong to the network namespace, and the kernel frees the name when
 * the process dies, so a crash never leaves a stale lock. A second daemon that
 * finds the name taken asks the holder who it is and says so.
 */
import { createConnection, createServer, type Server } from 'node:net';
import { SentryError } from '../errors.js';

export interface InstanceClaim {
  release(): Promise<void>;
}

interface Holder {
  pid: number;
  pinRoot: string;
}

function ask(path: string): Promise<Holder | undefined> {
  return new Promise((resolve) => {
    const c = createConnection({ path });
    let text = '';
    const done = (h: Holder | undefined) => {
      c.destroy();
      resolve(h);
    };
    c.setTimeout(1000, () => done(undefined));
    c.on('data', (d) => (text += d.toString('utf8')));
    c.on('end', () => {
      try {
        done(JSON.parse(text) as Holder);
      } catch {
        done(undefined);
      }
    });
    c.on('error', () => done(undefined));
  });
}

/** Claims `table` in this network namespace for this daemon, or throws naming the daemon that has it. */
export async function claimInstance(table: string, me: Holder): Promise<InstanceClaim> {
  const path = `\0sentry-xdp:${table}`;
  const server: Server = createServer((sock) => sock.end(`${JSON.stringify(me)}\n`));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path }, () => resolve());
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    const h = await ask(path);
    throw new SentryError(
      'DAEMON_RUNNING',
      `another sentry-xdp daemon${h ? ` (pid ${h.pid}, pins in ${h.pinRoot})` : ''} already runs in this network namespace with nftables table inet ${table}`,
      'one daemon serves every interface of a namespace (`attach IFACE --no-daemon` hands one to it); a second one needs its own nft.table',
    );
  }
  server.unref();
  return { release: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
