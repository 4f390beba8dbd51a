/**
 * The daemon's interface supervisor: keeps every interface it was asked to
 * protect attached through what happens to links on a gateway. An interface
 * that is missing at start (PPP, VPN, a late driver) is waited for; one that is
 * deleted and created again under its name (a driver reload, a PPP redial) is
 * attached again; a rename is followed (the pinned link keeps working, the
 * name in status, alerts and `detach` follows). Looks every second: cheaper
 * than it sounds (one if_nametoindex and one link query per interface).
 */
import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { ifIndexToName, ifNameToIndex, type AttachModeName } from '../adapters/kernel.js';
import { SentryError } from '../errors.js';
import { listInterfaces, type Gateway } from './gateway.js';

export interface IfaceState {
  state: 'attached' | 'waiting' | 'failed';
  /** For waiting and failed: why, in one line. */
  reason?: string;
  mode?: string;
}

export class InterfaceSupervisor {
  private readonly state = new Map<string, IfaceState>();

  constructor(
    private readonly gw: Gateway,
    private readonly mode: AttachModeName,
    /** The interfaces asked for, by name; renames are followed in place. */
    readonly wanted: string[],
    private readonly say: (line: string) => void,
  ) {}

  /** What each wanted interface is now (status reads it from the run dir). */
  states(): Record<string, IfaceState> {
    return Object.fromEntries(this.wanted.map((n) => [n, this.state.get(n) ?? { state: 'waiting', reason: 'not looked at yet' }]));
  }

  /** Marks an interface the caller attached itself. */
  attached(name: string, mode: string): void {
    this.state.set(name, { state: 'attached', mode });
  }

  /** One look at the links. Returns true when a name changed (cached interface names are stale). */
  tick(): boolean {
    const renamed = this.followRenames();
    for (const name of [...this.wanted]) this.check(name);
    return renamed;
  }

  private followRenames(): boolean {
    let renamed = false;
    for (const link of listInterfaces(this.gw.linksDir)) {
      if (!link.stale && !this.wanted.includes(link.name) && ifIndexToName(link.ifindex) === link.name) {
        // attached while we run (`attach IFACE --no-daemon`): handed to us
        this.wanted.push(link.name);
        this.state.set(link.name, { state: 'attached', mode: link.mode });
        this.say(`${link.name}: attached by another command; supervised from now on`);
        continue;
      }
      const now = link.ifindex ? ifIndexToName(link.ifindex) : undefined;
      if (!now || now === link.name || existsSync(join(this.gw.linksDir, now))) continue;
      renameSync(join(this.gw.linksDir, link.name), join(this.gw.linksDir, now));
      const i = this.wanted.indexOf(link.name);
      if (i >= 0) this.wanted[i] = now;
      else this.wanted.push(now);
      const st = this.state.get(link.name);
      this.state.delete(link.name);
      if (st) this.state.set(now, st);
      this.say(`${link.name} was renamed ${now}; following it (still attached, ifindex ${link.ifindex})`);
      renamed = true;
    }
    return renamed;
  }

  private check(name: string): void {
    const before = this.state.get(name);
    if (!ifNameToIndex(name)) {
      if (before?.state !== 'waiting') {
        this.say(`${name}: no such interface ${before ? 'any more' : 'yet'}; waiting for it (attached within a second of its appearing)`);
      }
      this.state.set(name, { state: 'waiting', reason: 'no such interface' });
      return;
    }
    if (before?.state === 'attached' && !existsSync(this.gw.linkPin(name))) {
      // its link was unpinned while the interface is there: `sentry-xdp detach NAME`, not a re-creation
      this.wanted.splice(this.wanted.indexOf(name), 1);
      this.state.delete(name);
      this.say(`${name}: detached (sentry-xdp detach); no longer supervised`);
      return;
    }
    const ours = this.gw.attachedTo(name);
    if (ours) {
      this.state.set(name, { state: 'attached', mode: ours.mode });
      return;
    }
    const recreated = existsSync(this.gw.linkPin(name));
    try {
      const a = this.gw.attach(name, this.mode);
      this.state.set(name, { state: 'attached', mode: a.mode });
      this.say(`${name}: ${recreated ? 're-created; attached again' : 'appeared; attached'} in ${a.mode} mode (program id ${a.progId})`);
    } catch (e) {
      const reason = e instanceof SentryError ? e.message : (e as Error).message.split('\n')[0]!;
      if (before?.state !== 'failed' || before.reason !== reason) this.say(`${name}: cannot attach (${reason}); trying again every second`);
      this.state.set(name, { state: 'failed', reason });
    }
  }
}
