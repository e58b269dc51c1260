# `make fuzz`: builds the libFuzzer targets with clang (build/fuzz) and fuzzes each for
# FUZZ_SECONDS, growing fuzz/corpus/ and keeping crashes in fuzz/regressions/ (fuzz/README.md).
# Included by the Makefile; alone: make -f fuzz/fuzz.mk fuzz. Variables: FUZZ_SECONDS (per
# target), FUZZ_TARGETS (a subset), FUZZ_JOBS (build parallelism).
_fuzz_self := $(lastword $(MAKEFILE_LIST))
_fuzz_default_goal := $(.DEFAULT_GOAL)

FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= task_json request_builder rfc3339 config_loader http_server
FUZZ_BUILD_DIR ?= build/fuzz
FUZZ_JOBS ?= 2

.PHONY: fuzz fuzz-build fuzz-minimize fuzz-seeds

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_BUILD_DIR=$(FUZZ_BUILD_DIR) fuzz/run.sh $(FUZZ_TARGETS)

fuzz-build:
	@cmake -S fuzz -B $(FUZZ_BUILD_DIR) -G Ninja -DCMAKE_CXX_COMPILER=clang++ >/dev/null
	@cmake --build $(FUZZ_BUILD_DIR) -j $(FUZZ_JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))

# Shrinks each corpus to the inputs that keep its coverage (seeds stay).
fuzz-minimize: fuzz-build
	@FUZZ_BUILD_DIR=$(FUZZ_BUILD_DIR) fuzz/run.sh --minimize $(FUZZ_TARGETS)

# Rewrites the hand-made seeds (fuzz/corpus/*/seed-*).
fuzz-seeds:
	@/usr/bin/python3 fuzz/seed_corpora.py

# Included from another makefile, this file must not change its default goal (when included
# before any rule, the next rule of the includer becomes the default, as if it were absent).
ifneq ($(firstword $(MAKEFILE_LIST)),$(_fuzz_self))
.DEFAULT_GOAL := $(_fuzz_default_goal)
endif
