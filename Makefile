# larder — build, test and install what the build needs.
#
#   make            build/larder
#   make test       every test (C unit tests under cmocka, oracle and client
#                   tests in node/python/sh), twice: native kernels, then
#                   LARDER_CPU=avx2 (tests/run.sh); last line "N passed, N failed"
#   make asan       the C unit tests under ASan+UBSan (build-asan/)
#   make deps       Debian packages (apt-get) and npm packages (node_modules/)
#   make fuzz       libFuzzer targets, bounded time (clang)
#   make soak       30 minutes of mixed hostile traffic against larder serve
#                   (bench/soak.mjs; SOAK_SECONDS to shorten; not in make test)
#   make bench      benchmarks (bench/)
#
# Layout: every .c under src/ except src/cli/ goes into build/liblarder.a;
# src/cli/ links it into build/larder. Each tests/<module>/test_*.c is one
# cmocka program linked against liblarder.a. Files named *_avx2.c / *_avx512.c
# are compiled with that ISA enabled and are only called after a run-time CPU
# feature check (src/backend/cpu/cpu_features.h).

.DEFAULT_GOAL := all
CC      ?= gcc
BUILD   ?= build
OPT     ?= -O2
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
              -Wvla -g $(OPT) -pthread -fno-strict-aliasing -Isrc $(EXTRA_CFLAGS)
PKG_CFLAGS := $(shell pkg-config --cflags libpcre2-8 libmicrohttpd libcjson 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs libpcre2-8 libmicrohttpd libcjson 2>/dev/null)
CFLAGS  = $(CFLAGS_BASE) $(PKG_CFLAGS)
LDLIBS  = $(PKG_LIBS) -lm -pthread $(EXTRA_LDFLAGS)
AVX2_FLAGS   = -mavx2 -mfma -mf16c
AVX512_FLAGS = -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mprefer-vector-width=256

# MODULES="base jinja" restricts the library and tests to those folders of
# src/ and tests/ (for working on one module while others are mid-change).
MODULES ?=
ifeq ($(MODULES),)
LIB_SRC  := $(shell find src -name '*.c' ! -path 'src/cli/*' ! -path 'src/backend/cuda/*' | sort)
TEST_SRC := $(shell find tests -name 'test_*.c' | sort)
else
LIB_SRC  := $(shell find $(addprefix src/,$(MODULES)) -name '*.c' ! -path 'src/backend/cuda/*' | sort)
TEST_SRC := $(shell find $(addprefix tests/,$(MODULES)) -name 'test_*.c' 2>/dev/null | sort)
endif
CLI_SRC  := $(shell find src/cli -name '*.c' | sort)
FUZZ_SRC := $(shell find tests -name 'fuzz_*.c' | sort)

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:%.c=$(BUILD)/%)

.PHONY: all test asan deps fuzz bench run clean deps-check tests-c soak

# `make test` and `make tests-c` build in parallel: one job per CPU, unless
# make was given -j itself (then its own job server is used).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PARALLEL = $(if $(filter -j%,$(MAKEFLAGS)),,-j$(JOBS))

# Build and run only the cmocka tests (with MODULES, only those modules').
tests-c:
	@$(MAKE) --no-print-directory $(PARALLEL) $(TEST_BIN)
	@BUILD=$(BUILD) ONLY_C=1 bash tests/run.sh
all: $(BUILD)/larder

$(BUILD)/obj/%_avx512.o: %_avx512.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX512_FLAGS) -MMD -MP -c $< -o $@
$(BUILD)/obj/%_avx2.o: %_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX2_FLAGS) -MMD -MP -c $< -o $@
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/liblarder.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/larder: $(CLI_OBJ) $(BUILD)/liblarder.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/liblarder.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/liblarder.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -MMD -MP -o $@ $< $(BUILD)/liblarder.a $(LDLIBS) -lcmocka

# The countdown-allocator test sees every allocation of larder's code.
$(BUILD)/tests/server/test_request_oom: LDLIBS += -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free

test: deps-check
	@$(MAKE) --no-print-directory $(PARALLEL) all $(TEST_BIN)
	@BUILD=$(BUILD) bash tests/run.sh

# The C unit tests under AddressSanitizer and UndefinedBehaviorSanitizer.
asan:
	$(MAKE) $(PARALLEL) BUILD=build-asan OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined" all $(TEST_SRC:%.c=build-asan/%)
	@BUILD=build-asan ONLY_C=1 bash tests/run.sh

fuzz:
	@bash tests/fuzz.sh

bench: all
	@bash bench/run.sh

soak: all
	@LARDER=$(abspath $(BUILD))/larder SHARED=$(abspath ../shared) TEST_TMP=$$(mktemp -d) node bench/soak.mjs

run: deps all
	./$(BUILD)/larder serve

deps:
	@bash tools/deps.sh

deps-check:
	@bash tools/deps.sh --check || $(MAKE) deps

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:=.d)
