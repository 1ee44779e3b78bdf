# HissDFS: every set-up step lives here, so a fresh Debian machine needs only
# `make run` or `make test`.
SHELL := /bin/bash
NODE_MODULES_STAMP := node_modules/.install-stamp
DEB_STAMP := /tmp/.hissdfs-debs-ok
TAP ?= node_modules/.bin/tap

.PHONY: all deps debs build clean run test test-unit test-integration test-fuse bench bench-test lint

all: build

# Debian packages: libfuse2 for fuse-native's prebuilt addon, fuse3 for fusermount,
# rsync and git for the FUSE tests. Installed only when missing.
debs:
	@missing=""; \
	dpkg -s libfuse2 >/dev/null 2>&1 || missing="$$missing libfuse2"; \
	command -v fusermount >/dev/null 2>&1 || command -v fusermount3 >/dev/null 2>&1 || missing="$$missing fuse3"; \
	command -v rsync >/dev/null 2>&1 || missing="$$missing rsync"; \
	command -v git >/dev/null 2>&1 || missing="$$missing git"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq $$missing </dev/null; \
	fi

$(NODE_MODULES_STAMP): package.json package-lock.json patches/fuse-native+2.2.6.patch
	npm ci --no-audit --no-fund </dev/null
	@touch $@

deps: debs $(NODE_MODULES_STAMP)

build: deps
	node_modules/.bin/tsc -p tsconfig.json
	@chmod +x dist/src/cli/main.js dist/src/fuse/main.js 2>/dev/null || true

clean:
	rm -rf dist

# A local cluster: NameServer + three DataServers from configs/, data under ./data,
# mounted at ./mount, in the foreground until Ctrl-C.
run: build
	node dist/src/cli/run-local.js

# The whole suite: the system's tests and the benchmark harness's own (bench/test).
test: build
	node_modules/.bin/tsc -p bench/tsconfig.json
	@bash test/run-tests.sh dist/test dist/bench/test

test-unit: build
	@bash test/run-tests.sh dist/test/unit

test-integration: build
	@bash test/run-tests.sh dist/test/integration

test-fuse: build
	@bash test/run-tests.sh dist/test/fuse

# Benchmark against the local disk, bindfs and MooseFS, side by side (root; installs
# bindfs, MooseFS and fio from Debian when missing). QUICK=1: reduced, a few minutes;
# REPS=N overrides the number of reps; PROFILE=1 runs the HissDFS processes under
# node --cpu-prof and writes bench/results/<mode>-profile.md. Runs bench-test first.
bench: deps
	@bash bench/bench.sh $(if $(filter-out 0,$(QUICK)),--quick) $(if $(REPS),--reps=$(REPS)) $(if $(filter-out 0,$(PROFILE)),--profile)

# The benchmark harness's own unit tests (report, targets, profile summary): seconds.
# No `deps` prerequisite: it needs only an installed node_modules (tsc and tap).
bench-test:
	node_modules/.bin/tsc -p bench/tsconfig.json
	@bash test/run-tests.sh dist/bench/test
