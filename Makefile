# sentry-xdp build. `make` (`make build`) builds what ships: the XDP objects, the native shim and
# the control plane (src/ only, tsconfig.json). `make build-dev` builds what the tests and scripts
# run as well (tsconfig.dev.json adds test/, bench/, scripts/; the ABI dumper); the bench XDP
# objects are built by `make bench` only. `make test`, `make demo`, `make bench` install what they
# need first (scripts/deps.sh). `make lint` (npm run lint: eslint and prettier) runs first in
# `make test`. `make deb` builds the Debian package.
CLANG ?= clang
CC ?= cc
ARCH_INC := /usr/include/$(shell uname -m)-linux-gnu
BPF_CFLAGS := -O2 -g -target bpf -mcpu=v3 -Wall -Werror -I$(ARCH_INC) -Ibpf
LIBBPF_CFLAGS := $(shell pkg-config --cflags libbpf 2>/dev/null)
LIBBPF_LIBS := $(shell pkg-config --libs libbpf 2>/dev/null || echo -lbpf)
NFCT_CFLAGS := $(shell pkg-config --cflags libnetfilter_conntrack 2>/dev/null)
NFCT_LIBS := $(shell pkg-config --libs libnetfilter_conntrack 2>/dev/null || echo -lnetfilter_conntrack -lnfnetlink)
PREFIX ?= /usr/local
SYSTEMD_UNIT_DIR ?= /etc/systemd/system

BPF_OBJS := build/sentry.bpf.o build/sentry_noct.bpf.o
BENCH_BPF_OBJS := build/empty.bpf.o build/bench_ringbuf.bpf.o build/libsentry_bench.so
NATIVE := build/libsentry_shim.so

.PHONY: all build build-dev deps bpf bench-bpf native ts ts-dev lint test test-unit test-kernel bench demo install uninstall clean man completion deb

all: build

# what ships (make install, make deb): no tests, benchmarks or scripts
build: bpf native ts

# the production build plus what tests and scripts run: dist/{test,bench,scripts} (ts-dev compiles
# src as well, the same way) and build/abi_dump (test/unit/abi.test.ts)
build-dev: bpf native ts-dev build/abi_dump

deps:
	bash scripts/deps.sh

bpf: $(BPF_OBJS)

bench-bpf: $(BENCH_BPF_OBJS)

build/%.bpf.o: bpf/%.bpf.c bpf/sentry_shared.h
	@mkdir -p build
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# the same program without conntrack lookups, for kernels without the XDP conntrack kfuncs
build/sentry_noct.bpf.o: bpf/sentry.bpf.c bpf/sentry_shared.h
	@mkdir -p build
	$(CLANG) $(BPF_CFLAGS) -DSX_NO_CONNTRACK -c $< -o $@

build/%.bpf.o: bench/%.bpf.c bpf/sentry_shared.h
	@mkdir -p build
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

native: $(NATIVE)

build/libsentry_shim.so: native/sentry_shim.c native/sentry_peers.c native/sentry_shim.h bpf/sentry_shared.h
	@mkdir -p build
	$(CC) -O2 -g -Wall -Wextra -Werror -fPIC -shared -Ibpf $(LIBBPF_CFLAGS) $(NFCT_CFLAGS) $(filter %.c,$^) -o $@ $(LIBBPF_LIBS) $(NFCT_LIBS) -lpthread

# bench only: the paced ring-buffer producer (bench/producer.ts loads it)
build/libsentry_bench.so: native/bench_producer.c
	@mkdir -p build
	$(CC) -O2 -g -Wall -Wextra -Werror -fPIC -shared $(LIBBPF_CFLAGS) $< -o $@ $(LIBBPF_LIBS) -lpthread

build/abi_dump: native/abi_dump.c bpf/sentry_shared.h
	@mkdir -p build
	$(CC) -O2 -Wall -Werror -Ibpf $< -o $@

ts: node_modules/.package-lock.json
	npx tsc -p tsconfig.json

# the same compiler options over src, test, bench and scripts, into the same dist/ layout
ts-dev: node_modules/.package-lock.json
	npx tsc -p tsconfig.dev.json

lint: node_modules/.package-lock.json
	npm run lint

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

test: deps
	$(MAKE) build-dev
	npm run lint
	node scripts/run-tests.mjs

test-unit: build-dev
	node scripts/run-tests.mjs unit

# README's table of config keys, generated from src/core/config.ts (a unit test checks it)
readme-config: ts
	node scripts/readme-config.mjs

bench: deps
	$(MAKE) build-dev bench-bpf
	node dist/bench/run.js

demo: deps
	$(MAKE) build
	bash scripts/demo.sh

install: build
	install -d $(DESTDIR)$(PREFIX)/lib/sentry-xdp
	cp -r dist build package.json node_modules $(DESTDIR)$(PREFIX)/lib/sentry-xdp/
	install -d $(DESTDIR)$(PREFIX)/bin
	printf '#!/bin/sh\nexec node $(PREFIX)/lib/sentry-xdp/dist/src/cli/main.js "$$@"\n' > $(DESTDIR)$(PREFIX)/bin/sentry-xdp
	chmod 755 $(DESTDIR)$(PREFIX)/bin/sentry-xdp
	install -d $(DESTDIR)$(SYSTEMD_UNIT_DIR) $(DESTDIR)/etc/default
	sed 's#^ExecStart=/usr/local/bin/sentry-xdp #ExecStart=$(PREFIX)/bin/sentry-xdp #' packaging/sentry-xdp.service > $(DESTDIR)$(SYSTEMD_UNIT_DIR)/sentry-xdp.service
	chmod 644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/sentry-xdp.service
	[ -e $(DESTDIR)/etc/default/sentry-xdp ] || install -m 644 packaging/sentry-xdp.default $(DESTDIR)/etc/default/sentry-xdp
	@echo "systemd: set SENTRY_XDP_IFACES in /etc/default/sentry-xdp, then: systemctl daemon-reload && systemctl enable --now sentry-xdp"

# sentry-xdp(8) and sentry-xdp.yaml(5) from buildProgram() and the config schema (scripts/gen-man.ts)
man: ts-dev
	node dist/scripts/gen-man.js build/man

# bash completion from buildProgram() (scripts/gen-completion.ts)
completion: ts-dev
	node dist/scripts/gen-completion.js build/completion/sentry-xdp

# build/sentry-xdp_VERSION_ARCH.deb (scripts/build-deb.sh; packaging/deb/ holds the maintainer scripts)
deb: build man completion
	bash scripts/build-deb.sh

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/lib/sentry-xdp $(DESTDIR)$(PREFIX)/bin/sentry-xdp
	rm -f $(DESTDIR)$(SYSTEMD_UNIT_DIR)/sentry-xdp.service

clean:
	rm -rf build dist
