/**
 * Escalation for repeat offenders, decided where the ban is made: after each
 * automatic ban the daemon writes the length of the source's next ban into the
 * kernel (sentry_offenders), and the XDP program uses it when it bans that
 * source again. The entry holds until the oldest counted offence leaves the
 * look-back; then it steps down (or goes). Nothing rewrites a ban afterwards.
 */
import { Layout } from '../core/abi.js';
import { addrToKey16, parseCidr } from '../core/addr.js';
import { escalate, ttlFor, type Escalation, type OffenceTracker, type TtlRule } from '../core/policy.js';
import { kernelClockNs, type BpfMap } from '../adapters/kernel.js';

export interface EscalationPolicy {
  rules: TtlRule[];
  base: number; // seconds, 0 = permanent
  escalation: Escalation;
}

export class Offenders {
  /** Source → wall ms when its kernel entry must be written again (an offence leaves the look-back). */
  private readonly due = new Map<string, number>();

  constructor(
    private readonly map: BpfMap,
    private readonly tracker: OffenceTracker,
    private readonly policy: () => EscalationPolicy,
  ) {}

  /** An automatic ban of `source` at `when` (wall ms): returns its number within the look-back (1 = first). */
  record(source: string, when: number): number {
    const n = this.tracker.record(source, when);
    this.write(source, Date.now());
    return n;
  }

  /** Writes what the source's next ban lasts, or deletes the entry when that is just the base length. */
  private write(source: string, now: number, clockNs = kernelClockNs()): void {
    const target = parseCidr(source);
    const key = addrToKey16(target);
    const p = this.policy();
    const times = this.tracker.recent(source, now);
    const base = ttlFor(target, p.rules, p.base);
    const ttl = times.length ? escalate(base, times.length + 1, p.escalation) : base;
    if (ttl === base) {
      this.map.delete(key);
      this.due.delete(source);
      return;
    }
    const until = times[0]! + this.tracker.lookback;
    const v = Buffer.alloc(Layout.sx_offender.size);
    v.writeBigUInt64LE(BigInt(ttl) * 1_000_000_000n, Layout.sx_offender.fields.ttl_ns[0]);
    v.writeBigUInt64LE(clockNs + BigInt(Math.max(0, until - now)) * 1_000_000n, Layout.sx_offender.fields.until_ns[0]);
    this.map.update(key, v);
    this.due.set(source, until);
  }

  /** Entries whose oldest offence left the look-back step down (call it every second or so). */
  tick(now = Date.now()): void {
    for (const [source, until] of this.due) if (until <= now) this.write(source, now);
  }

  /** Every entry afresh: at start (past offences from history) and after a reload changed the policy. */
  rewriteAll(now = Date.now()): void {
    const { keys, count } = this.map.dump(this.map.count() + 1024);
    if (count) this.map.deleteBatch(keys, count);
    this.due.clear();
    const clock = kernelClockNs();
    for (const s of this.tracker.sources()) this.write(s, now, clock);
  }
}
