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
}

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

  async add(bans: Array<{ target: string; timeoutSeconds: number }>, onProgress?: (done: number, total: number) => void): Promise<void> {
    if (!bans.length) return;
    await this.guard(async () => {
      await this.nft.ensure();
      await this.nft.add(bans, onProgress);
    });
  }

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
        else await this.nft.add(c.targets.map((target, i) => ({ target, timeoutSeconds: c.seconds[i]! })), undefined, true); // networks: overlaps are checked there
        n += c.targets.length;
      }
      return n;
    });
  }

  /** After `nft flush ruleset` (or anyone deleting our table): re-create it and re-add every ban. */
  async reconcileIfMissing(bans: BanTable): Promise<void> {
    const exists = await this.guard(() => this.nft.exists(), false);
    if (exists !== false) return;
    if (this.failed) return this.quietReconcile(bans);
    const n = await this.reconcile(bans);
    if (n !== undefined) this.report(`nft table inet ${this.table} was gone (nft flush ruleset?); re-created it with ${n} ban(s)`);
  }
}
