/**
 * `make bench`: prints measured figures next to their targets. Never a test:
 * nothing here fails the build; it reports.
 *
 *  1. per-packet cost (BPF_PROG_TEST_RUN) of the pass, banned-drop and probe
 *     paths, each next to an empty XDP program measured in the same run;
 *  2. ring-buffer alerts delivered into TypeScript per second over a 10 s burst,
 *     and how many were lost.
 */
import { dataView, decodeEvent, Layout, Origin } from '../src/core/abi.js';
import { parseCidr } from '../src/core/addr.js';
import { artifactPath, benchProducerJoin, benchProducerStart, BpfObject, kernelClockNs, RingBuffer } from '../src/adapters/kernel.js';
import { BanTable } from '../src/daemon/ban-table.js';
import { KernelFixture } from '../test/helpers/kernel-fixture.js';
import { packet, TH } from '../test/helpers/packets.js';

const REPEAT = Number(process.env.BENCH_REPEAT ?? 2_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const BURST_S = Number(process.env.BENCH_BURST_S ?? 10);
const RATE = Number(process.env.BENCH_RATE ?? 1_200_000);

const tty = process.stdout.isTTY;
function progress(text: string): void {
  if (tty) process.stdout.write(`\r\x1b[K${text}`);
}
function line(text: string): void {
  if (tty) process.stdout.write('\r\x1b[K');
  process.stdout.write(`${text}\n`);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function perPacket(): void {
  const empty = BpfObject.open(artifactPath('empty.bpf.o', 'SENTRY_XDP_EMPTY_OBJ'), null);
  const k = new KernelFixture();
  k.reset({ trigger: 0xffffffff }); // probes are counted, never cross the trigger
  const now = kernelClockNs();
  new BanTable(k.obj).add(parseCidr('198.18.0.66'), {
    expiresNs: now + 3_600_000_000_000n,
    createdNs: now,
    drops: 0n,
    port: 0,
    proto: 0,
    kind: 0,
    origin: Origin.MANUAL,
  });
  const paths = {
    pass: packet({ src: '198.18.0.2', proto: 'tcp', dport: 80, flags: TH.ACK }),
    'banned-drop': packet({ src: '198.18.0.66', proto: 'tcp', dport: 80, flags: TH.ACK }),
    probe: packet({ src: '198.18.0.3', proto: 'tcp', dport: 23, flags: TH.SYN }),
  };
  const targets: Record<string, number> = { pass: 25, 'banned-drop': 30, probe: 60 };
  line(`per-packet cost, BPF_PROG_TEST_RUN, ${REPEAT} runs x ${ROUNDS} rounds, median:`);
  for (const [name, pkt] of Object.entries(paths)) {
    const base: number[] = [];
    const ours: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      progress(`  ${name}: round ${r + 1}/${ROUNDS}`);
      base.push(empty.testRun(pkt, REPEAT).durationNs);
      ours.push(k.obj.testRun(pkt, REPEAT).durationNs);
    }
    const b = median(base);
    const o = median(ours);
    const delta = o - b;
    line(
      `  ${name.padEnd(12)} sentry ${String(o).padStart(4)} ns  empty ${String(b).padStart(4)} ns  ` +
        `ratio ${(o / Math.max(1, b)).toFixed(2)}x  +${delta} ns  (target +${targets[name]} ns: ${delta <= targets[name]! ? 'met' : 'MISSED'})`,
    );
  }
  k.close();
  empty.close();
}

async function ringBuffer(): Promise<void> {
  const prod = BpfObject.open(artifactPath('bench_ringbuf.bpf.o', 'SENTRY_XDP_BENCH_RB_OBJ'), null);
  const rb = new RingBuffer(prod.mapFd('bench_events'), Layout.sx_event.size, 16384);
  const total = RATE * BURST_S;
  line(`ring buffer → TypeScript: ${total} events offered at ${RATE}/s for ${BURST_S}s, drained in batches through the shim`);
  const t0 = process.hrtime.bigint();
  // BPF_PROG_TEST_RUN with repeat > 1 swaps the XDP dispatcher (~20 ms per call),
  // so the producer works in chunks of 50 000 and paces between them.
  benchProducerStart(prod.progFd, total, RATE, 50_000);
  let got = 0;
  let nextSeq = 0;
  let gaps = 0;
  let lastReport = 0;
  while (got < total) {
    const { buf, count } = await rb.drain(50);
    const dv = dataView(buf);
    for (let i = 0; i < count; i++) {
      const seq = decodeEvent(dv, i * Layout.sx_event.size).tsNs; // the daemon's own decoder
      if (seq !== nextSeq) gaps++;
      nextSeq = seq + 1;
    }
    got += count;
    const el = Number(process.hrtime.bigint() - t0) / 1e9;
    if (el - lastReport > 0.5) {
      progress(`  ${got} events in ${el.toFixed(1)}s`);
      lastReport = el;
    }
    if (count === 0 && el > BURST_S * 3) break;
  }
  const produced = benchProducerJoin();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const lost = prod.map('bench_lost').lookup(Buffer.alloc(4))!.readBigUInt64LE(0);
  const rate = got / secs;
  line(
    `  delivered ${got} of ${produced} in ${secs.toFixed(2)}s = ${Math.round(rate).toLocaleString('en-US')} events/s, ` +
      `lost ${lost}, sequence gaps ${gaps}  (target >= 1,000,000/s with zero loss: ${rate >= 1e6 && lost === 0n && gaps === 0 ? 'met' : 'MISSED'})`,
  );
  rb.close();
  prod.close();
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('bench: needs root (BPF_PROG_TEST_RUN); run `sudo make bench`');
    process.exit(1);
  }
  const only = process.argv.slice(2);
  if (!only.length || only.includes('packet')) perPacket();
  if (!only.length || only.includes('ringbuf')) await ringBuffer();
}

main().catch((e: Error) => {
  console.error(`bench: ${e.message}`);
  process.exit(1);
});
