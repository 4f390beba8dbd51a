/**
 * Keeps our nftables table in step with the kernel ban table. nftables is the
 * second line (interfaces without XDP, visibility in `nft list ruleset`): when
 * nft is missing or fails, XDP blocking goes on and the error is reported once.
 */
import { kernelClockNs } from '../adapters/kernel.js';
import type { BanTable } from './ban-table.js';
import type { NftBans } from './bans.js';

/** The part of src/adapters/nft.ts this uses. */
export interface NftApi {
  exists(): Promise<boolean>;
  ensure(): Promise<boolean>;
  add(bans: Array<{ target: string; timeoutSeconds: number }>, onProgress?: (done: number, total: number) => void, fresh?: boolean): Promise<void>;
  addAddresses(set: 'bans_v4' | 'bans_v6', targets: readonly string[], seconds: readonly number[]): Promise<void>;
  remove(targets: string[]): Promise<number>;
  flush(): Promise<void>;
  health(): Promise<'missing' | 'damaged' | 'whole'>;
  hasAll(targets: readonly string[]): Promise<boolean>;
  list(): Promise<Array<{ target: string; expiresSeconds: number | null }>>;
}

/** Up to this many bans, the check compares every element; above, a sample. */
const EXACT_CHECK = 5000;
/**
 * Bans this close to their end may be gone from one side and not yet from the
 * other; bans this new may still be on their way in (a CLI `ban` writes the
 * kernel first, then nft).
 */
const MARGIN_S = 3;
const SETTLE_S = 5;

export class NftSync implements NftBans {
  private failed = false;

  constructor(
    private readonly nft: NftApi,
    private readonly report: (line: string) => void,
    private readonly table = 'sentry_xdp',
  ) {}

  /** Runs an nft operation; a failure is reported once, and recovery once (only a write proves it). */
  private async guard<T>(fn: () => Promise<T>, write = true): Promise<T | undefined> {
    try {
      const r = await fn();
      if (this.failed && write) {
        this.report(`nftables works again; table inet ${this.table} is kept in step`);
        this.failed = false;
      }
      return r;
    } catch (e) {
      if (!this.failed) {
        this.report(`${(e as Error).message.split('\n')[0]}; XDP blocking goes on, the nft sets are not kept in step until this is fixed`);
      }
      this.failed = true;
      return undefined;
    }
  }

  get healthy(): boolean {
    return !this.failed;
  }

  /**
   * `fresh`: none of these is banned yet, so a plain add does; replacing an
   * element's timeout (add, delete, add) costs more the bigger the set is.
   */
  async add(bans: Array<{ target: string; timeoutSeconds: number }>, onProgress?: (done: number, total: number) => void, fresh = false): Promise<void> {
    if (!bans.length) return;
    await this.guard(async () => {
      // nft 1.0.6 reads every set element for any command: a big table makes each check cost seconds,
      // so the table is made sure of once, and again only when an add finds it gone
      if (!this.ensured) await this.nft.ensure();
      this.ensured = true;
      try {
        await this.nft.add(bans, onProgress, fresh);
      } catch (e) {
        if (!/No such file or directory/i.test((e as Error).message)) throw e;
        await this.nft.ensure();
        await this.nft.add(bans, onProgress, fresh);
      }
    });
  }

  private ensured = false;

  /**
   * When the daemon should check the table again: every 2 s, less often for a huge set. nft 1.0.6
   * loads every element for any command (~1 s per 200k), so a check of N bans costs ~N/200k s; one
   * every 20x that keeps nft under 5% of a CPU. Taken from the table's size, not from how long the
   * last check took, so a loaded machine does not stretch the interval of a small table.
   */
  get nextCheckMs(): number {
    return Math.max(2000, Math.round(this.lastCheckSize * 0.1));
  }

  private lastCheckSize = 0;

  async remove(targets: string[]): Promise<number> {
    if (!targets.length) return 0;
    return (await this.guard(() => this.nft.remove(targets))) ?? 0;
  }

  async flush(): Promise<void> {
    await this.guard(() => this.nft.flush());
  }

  /** While nft is failing: retry now and then without repeating the report. */
  private lastRetry = 0;
  private async quietReconcile(bans: BanTable): Promise<void> {
    if (Date.now() - this.lastRetry < 30_000) return;
    this.lastRetry = Date.now();
    await this.reconcile(bans);
  }

  /** Makes nft hold exactly the kernel's live bans, with their remaining time. */
  async reconcile(bans: BanTable): Promise<number | undefined> {
    return this.guard(async () => {
      await this.nft.ensure();
      await this.nft.flush();
      const now = kernelClockNs();
      let n = 0;
      // in small chunks, as text: a million elements' worth of objects at once costs ~100 MB of peak memory
      for (const c of bans.liveChunks(now, 5000)) {
        const exact = c.map === 'sentry_bans_v4' ? 'bans_v4' : c.map === 'sentry_bans_v6' ? 'bans_v6' : undefined;
        if (exact) await this.nft.addAddresses(exact, c.targets, c.seconds);
        else
          await this.nft.add(
            c.targets.map((target, i) => ({ target, timeoutSeconds: c.seconds[i]! })),
            undefined,
            true,
          ); // networks: overlaps are checked there
        n += c.targets.length;
      }
      return n;
    });
  }

  /**
   * Every 2 s: our table is there, whole (chain, rules, sets) and holds the
   * kernel's live bans. Anything that drifted (`nft flush ruleset`, `nft flush
   * set`, a chain or rule deleted by hand) is repaired and said once.
   */
  async check(bans: BanTable): Promise<void> {
    this.lastCheckSize = bans.size();
    await this.checkNow(bans);
  }

  private async checkNow(bans: BanTable): Promise<void> {
    if (this.failed) return this.quietReconcile(bans);
    const health = await this.guard(() => this.nft.health(), false);
    if (health === undefined) return;
    let why: string | undefined;
    if (health === 'missing') why = 'was gone (nft flush ruleset?)';
    else if (health === 'damaged') why = 'was damaged (a chain, rule or set deleted by hand?)';
    else why = await this.guard(() => this.drift(bans), false);
    if (!why) return;
    const n = await this.reconcile(bans);
    if (n !== undefined) this.report(`nft table inet ${this.table} ${why}; re-created it with ${n} ban(s)`);
  }

  /** How the sets differ from the kernel's live bans, or undefined when they agree. */
  private async drift(bans: BanTable): Promise<string | undefined> {
    const now = kernelClockNs();
    const exact = bans.size() <= EXACT_CHECK;
    const sure: string[] = []; // live, settled, not about to end (above EXACT_CHECK: the first 32 of them)
    const live = new Set<string>();
    for (const c of bans.liveChunks(now, exact ? EXACT_CHECK : 256)) {
      c.targets.forEach((t, i) => {
        live.add(t);
        if ((c.seconds[i] === 0 || c.seconds[i]! > MARGIN_S) && c.ages[i]! > SETTLE_S) sure.push(t);
      });
      if (!exact && sure.length >= 32) break;
    }
    if (!exact) return (await this.nft.hasAll(sure.slice(0, 32))) ? undefined : 'had lost bans the kernel holds (nft flush set?)';
    const held = await this.nft.list();
    const inNft = new Set(held.map((e) => e.target));
    const missing = sure.filter((t) => !inNft.has(t)).length;
    const extra = held.filter((e) => (e.expiresSeconds === null || e.expiresSeconds > MARGIN_S) && !live.has(e.target)).length;
    if (!missing && !extra) return undefined;
    return `had drifted from the kernel's bans (${missing} missing, ${extra} not banned)`;
  }
}
