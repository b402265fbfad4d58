# Makefile — Tandem's entry points. Every target that builds or runs first calls
# scripts/setup.sh (idempotent: installs missing system packages, a no-op otherwise).
#
#   make build         debug build
#   make run           release build of `tandem`, then `tandem serve $(ARGS)`
#   make test          kernel driver and seccomp checks, unit/integration tests (Swift Testing,
#                      real containers included), release build, then the quick Autobahn
#                      conformance run (what CI runs)
#   make conformance   release build, then the full Autobahn conformance run (all 517 cases
#                      against the server and the client)
#   make fuzz / bench  scripts/fuzz.sh / scripts/bench.sh $(ARGS)
#   make bench-kernels release build, then scripts/bench-kernels.sh $(ARGS) (kernels vs Jupyter)
#   make clean         remove .build/
#
# Variables: ARGS (extra arguments for run, fuzz and bench), SWIFT (default swift).

SWIFT ?= swift
ARGS ?=

.DEFAULT_GOAL := build
.PHONY: build run test conformance fuzz bench bench-kernels clean

# Release builds of the server and of the Autobahn client (SwiftPM takes one --product per call).
define build_release
	$(SWIFT) build -c release --product tandem
	$(SWIFT) build -c release --product tandem-autobahn-client
endef

build:
	bash scripts/setup.sh
	$(SWIFT) build

run:
	bash scripts/setup.sh
	$(SWIFT) build -c release --product tandem
	.build/release/tandem serve $(ARGS)

test:
	bash scripts/setup.sh --test
	python3 scripts/test-kernel-drivers.py
	bash scripts/seccomp-check.sh
	$(SWIFT) build --build-tests
	$(SWIFT) test --no-parallel
	$(build_release)
	bash scripts/conformance.sh quick

conformance:
	bash scripts/setup.sh --test
	$(build_release)
	bash scripts/conformance.sh full

fuzz:
	bash scripts/setup.sh
	bash scripts/fuzz.sh $(ARGS)

bench:
	bash scripts/setup.sh
	bash scripts/bench.sh $(ARGS)

bench-kernels:
	bash scripts/setup.sh
	$(SWIFT) build -c release --product tandem
	bash scripts/bench-kernels.sh $(ARGS)

clean:
	rm -rf .build
