/**
 * The bench-only ring-buffer producer (native/bench_producer.c, built by `make bench` into
 * build/libsentry_bench.so): a native thread that runs bench_ringbuf.bpf.o at a paced rate.
 */
import koffi from 'koffi';
import { artifactPath } from '../src/adapters/kernel.js';

type Fn = (...args: unknown[]) => number;
let lib: { start: Fn; join: Fn } | undefined;

function producer(): { start: Fn; join: Fn } {
  if (!lib) {
    const so = koffi.load(artifactPath('libsentry_bench.so', 'SENTRY_XDP_BENCH_LIB'));
    lib = {
      start: so.func('int sx_bench_producer_start(int fd, uint64_t total, uint64_t rate, uint32_t chunk)') as Fn,
      join: so.func('int sx_bench_producer_join(_Out_ uint64_t *done)') as Fn,
    };
  }
  return lib;
}

function ok(rc: number, what: string): void {
  if (rc < 0) throw new Error(`${what}: errno ${-rc}`);
}

export function benchProducerStart(progFd: number, total: number, rate: number, chunk: number): void {
  ok(producer().start(progFd, total, rate, chunk), 'starting the bench producer');
}

/** Waits for the producer; returns how many packets it ran. */
export function benchProducerJoin(): number {
  const done = [0];
  ok(producer().join(done), 'bench producer');
  return Number(done[0]);
}
