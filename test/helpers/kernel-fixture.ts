/**
 * A sentry object loaded without pins, for BPF_PROG_TEST_RUN tests: reset()
 * empties every map and writes a known config and port table.
 */
import { dataView, decodeEvent, encodeConfig, Layout, Origin, PORT_TCP, PORT_UDP, Stat, type AlertEvent, type KernelConfig } from '../../src/core/abi.js';
import { artifactPath, BpfObject, kernelClockNs, RingBuffer } from '../../src/adapters/kernel.js';
import { parseCidr } from '../../src/core/addr.js';
import { BanTable } from '../../src/daemon/ban-table.js';

export type Counter = keyof typeof Stat | 'SEEN';
export const XDP_DROP = 1;
export const XDP_PASS = 2;

const CLEARED_MAPS = [
  'sentry_bans_v4',
  'sentry_bans_v6',
  'sentry_ban_cidr_v4',
  'sentry_ban_cidr_v6',
  'sentry_allow_v4',
  'sentry_allow_v6',
  'sentry_sources',
];

export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('this test loads BPF programs and needs root: run `sudo make test`');
  }
}

export class KernelFixture {
  readonly obj: BpfObject;
  readonly rb: RingBuffer;

  constructor() {
    requireRoot();
    this.obj = BpfObject.open(artifactPath('sentry.bpf.o', 'SENTRY_XDP_BPF_OBJ'), null);
    this.rb = new RingBuffer(this.obj.mapFd('sentry_events'), Layout.sx_event.size, 1024);
  }

  reset(cfg: Partial<KernelConfig> = {}, ports: { tcp?: number[]; udp?: number[] } = {}): void {
    this.obj.map('sentry_presence').update(Buffer.alloc(4), Buffer.alloc(16));
    this.obj.map('sentry_ratecap').update(Buffer.alloc(4), Buffer.alloc(16));
    for (const name of CLEARED_MAPS) {
      const m = this.obj.map(name);
      const { keys, count } = m.dump(4096);
      for (let i = 0; i < count; i++) m.delete(keys.subarray(i * m.keySize, (i + 1) * m.keySize));
    }
    this.obj.map('sentry_config').update(
      Buffer.alloc(4),
      encodeConfig({
        windowNs: 60_000_000_000n,
        banTtlNs: 3_600_000_000_000n,
        trigger: 0,
        blockTcp: true,
        blockUdp: true,
        enabled: true,
        ...cfg,
      }),
    );
    const keys = Buffer.alloc(65536 * 4);
    const vals = Buffer.alloc(65536);
    for (let p = 0; p < 65536; p++) keys.writeUInt32LE(p, p * 4);
    for (const p of ports.tcp ?? [1, 23, 111]) vals[p]! |= PORT_TCP;
    for (const p of ports.udp ?? [7, 161]) vals[p]! |= PORT_UDP;
    this.obj.map('sentry_ports').updateBatch(keys, vals, 65536);
    this.events();
  }

  /** A manual ban straight into the kernel table; ttlSeconds null = permanent, negative = already lapsed. */
  ban(target: string, ttlSeconds: number | null): void {
    const now = kernelClockNs();
    new BanTable(this.obj).add(parseCidr(target), {
      expiresNs: ttlSeconds === null ? 0n : now + BigInt(ttlSeconds) * 1_000_000_000n,
      createdNs: now,
      drops: 0n,
      port: 0,
      proto: 0,
      kind: 0,
      origin: Origin.MANUAL,
    });
  }

  /** Counters by name; SEEN is derived (passed + dropped), as status shows it. */
  stats(): Record<Counter, bigint> {
    const raw = this.obj.readStats();
    const s = Object.fromEntries(Object.entries(Stat).map(([k, i]) => [k, raw[i] ?? 0n])) as Record<keyof typeof Stat, bigint>;
    return { SEEN: s.PASSED + s.DROPPED, ...s };
  }

  /** Runs one packet; returns the verdict and the counters that moved. */
  run(pkt: Buffer): { verdict: number; delta: Partial<Record<Counter, number>> } {
    const before = this.stats();
    const { retval } = this.obj.testRun(pkt);
    const after = this.stats();
    const delta: Partial<Record<Counter, number>> = {};
    for (const k of Object.keys(after) as Counter[]) {
      const d = Number(after[k] - before[k]);
      if (d) delta[k] = d;
    }
    return { verdict: retval, delta };
  }

  events(): AlertEvent[] {
    const out: AlertEvent[] = [];
    for (;;) {
      const { buf, count } = this.rb.drainNow();
      const dv = dataView(buf);
      for (let i = 0; i < count; i++) out.push(decodeEvent(dv, i * Layout.sx_event.size));
      if (count === 0) return out;
    }
  }

  close(): void {
    this.rb.close();
    this.obj.close();
  }
}
