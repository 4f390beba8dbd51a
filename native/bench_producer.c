// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Bench only (make bench builds build/libsentry_bench.so; nothing ships it): a
 * thread that runs bench/bench_ringbuf.bpf.o through BPF_PROG_TEST_RUN at a
 * paced rate, so the ring-buffer consumer can be measured against a producer
 * it does not share an event loop with. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <bpf/bpf.h>

static struct {
	pthread_t tid;
	int prog_fd;
	uint64_t total, rate, done;
	uint32_t chunk;
	int err;
	int running;
} producer;

static void *produce(void *arg)
{
	(void)arg;
	static char pkt[64] = { 0 };
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (producer.done < producer.total) {
		uint32_t n = producer.chunk;
		if (n > producer.total - producer.done)
			n = producer.total - producer.done;
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt), .repeat = n);
		if (bpf_prog_test_run_opts(producer.prog_fd, &opts)) {
			producer.err = -errno;
			break;
		}
		producer.done += n;
		/* pace: sleep until the schedule catches up with what we produced */
		for (;;) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			double el = (t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9;
			double due = producer.done / (double)producer.rate;
			if (el >= due)
				break;
			struct timespec s = { 0, (long)((due - el) * 1e9) };
			nanosleep(&s, NULL);
		}
	}
	return NULL;
}

int sx_bench_producer_start(int prog_fd, uint64_t total, uint64_t rate, uint32_t chunk)
{
	if (producer.running)
		return -EBUSY;
	producer.prog_fd = prog_fd;
	producer.total = total;
	producer.rate = rate ? rate : 1;
	producer.chunk = chunk ? chunk : 1000;
	producer.done = 0;
	producer.err = 0;
	int r = pthread_create(&producer.tid, NULL, produce, NULL);
	if (r)
		return -r;
	producer.running = 1;
	return 0;
}

int sx_bench_producer_join(uint64_t *done)
{
	if (!producer.running)
		return -EINVAL;
	pthread_join(producer.tid, NULL);
	producer.running = 0;
	*done = producer.done;
	return producer.err;
}
