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
#   make cuda       build-cuda/larder with the CUDA backend beside the CPU one
#                   (nvcc at CUDA_HOME, default /usr/local/cuda; code for
#                   sm_90a and sm_80, PTX for newer; cudart linked statically)
#   make fa-emu     the CUDA flash attention kernel emulated on the CPU against
#                   the CPU backend (CUDA headers, no GPU; FA_EMU_ARGS=--quick)
#
# Layout: every .c under src/ except src/cli/ goes into build/liblarder.a;
# src/cli/ links it into build/larder. Each tests/<module>/test_*.c is one
# cmocka program linked against liblarder.a. Files named *_avx2.c / *_avx512.c
# (x86-64) and *_dotprod.c / *_i8mm.c (AArch64) are compiled with that ISA
# enabled and are only called after a run-time CPU feature check
# (src/backend/cpu/cpu_features.h). Only the target's family is compiled:
# src/backend/cpu/x86/ for x86-64, src/backend/cpu/arm/ for AArch64 (the
# target is what $(CC) -dumpmachine names).
#
#   make test-arm64   cross-compiles for AArch64 (build-arm64/) and runs the
#                   C tests under qemu-aarch64 once per ARM kernel level,
#                   plus `larder logits` against the x86 build (tests/arm64/)

.DEFAULT_GOAL := all
CC      ?= gcc
BUILD   ?= build
OPT     ?= -O2
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
              -Wvla -g $(OPT) -pthread -fno-strict-aliasing -Isrc $(EXTRA_CFLAGS)
# PKG_CONFIG: pkg-config, or a cross one (test-arm64 points it at the arm64
# multiarch .pc files); on macOS Homebrew's pkg-config finds its
# libmicrohttpd, pcre2 and cjson (README: Building on macOS).
PKG_CONFIG ?= pkg-config
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags libpcre2-8 libmicrohttpd libcjson 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs libpcre2-8 libmicrohttpd libcjson 2>/dev/null)
# cmocka through pkg-config where it has a .pc file (Homebrew), else -lcmocka.
CMOCKA_CFLAGS := $(shell $(PKG_CONFIG) --cflags cmocka 2>/dev/null)
CMOCKA_LIBS   := $(or $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null),-lcmocka)
CFLAGS  = $(CFLAGS_BASE) $(PKG_CFLAGS)
LDLIBS  = $(PKG_LIBS) -lm -pthread $(LDLIBS_CUDA) $(EXTRA_LDFLAGS)
AVX2_FLAGS   = -mavx2 -mfma -mf16c
AVX512_FLAGS = -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mprefer-vector-width=256
# AArch64: the NEON files need nothing beyond the baseline (armv8-a).
DOTPROD_FLAGS = -march=armv8.2-a+dotprod
I8MM_FLAGS    = -march=armv8.2-a+dotprod+i8mm

# The target's instruction-set family decides which kernel folder is built.
TARGET_MACHINE := $(shell $(CC) -dumpmachine 2>/dev/null)
ifneq ($(filter x86_64% amd64%,$(TARGET_MACHINE)),)
ISA_EXCLUDE := ! -path 'src/backend/cpu/arm/*'
else ifneq ($(filter aarch64% arm64%,$(TARGET_MACHINE)),)
ISA_EXCLUDE := ! -path 'src/backend/cpu/x86/*'
else
ISA_EXCLUDE := ! -path 'src/backend/cpu/arm/*' ! -path 'src/backend/cpu/x86/*'
endif

# MODULES="base jinja" restricts the library and tests to those folders of
# src/ and tests/ (for working on one module while others are mid-change).
MODULES ?=
ifeq ($(MODULES),)
LIB_SRC  := $(shell find src -name '*.c' ! -path 'src/cli/*' ! -path 'src/backend/cuda/*' $(ISA_EXCLUDE) | sort)
TEST_SRC := $(shell find tests -name 'test_*.c' | sort)
else
LIB_SRC  := $(shell find $(addprefix src/,$(MODULES)) -name '*.c' ! -path 'src/backend/cuda/*' $(ISA_EXCLUDE) | sort)
TEST_SRC := $(shell find $(addprefix tests/,$(MODULES)) -name 'test_*.c' 2>/dev/null | sort)
endif
CLI_SRC  := $(shell find src/cli -name '*.c' | sort)
FUZZ_SRC := $(shell find tests -name 'fuzz_*.c' | sort)

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)

# The CUDA backend (src/backend/cuda/*.cu) joins the library only in a
# WITH_CUDA=1 build (`make cuda`), which also defines LARDER_CUDA (the
# backend registry and --device see it).
CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(CUDA_HOME)/bin/nvcc
CUDA_BUILD ?= build-cuda
CUDA_GENCODE ?= -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_80,code=sm_80 \
                -gencode=arch=compute_80,code=compute_80
NVCC_FLAGS = -std=c++17 -O3 -g -Isrc -Xcompiler -Wall,-Wextra,-Wno-unused-parameter,-fno-strict-aliasing \
             $(CUDA_GENCODE) -DLARDER_CUDA $(EXTRA_NVCCFLAGS)
ifeq ($(WITH_CUDA),1)
CUDA_OBJ := $(patsubst %.cu,$(BUILD)/obj/%.o,$(sort $(wildcard src/backend/cuda/*.cu)))
LIB_OBJ  += $(CUDA_OBJ)
CFLAGS_BASE += -DLARDER_CUDA
LDLIBS_CUDA = -L$(CUDA_HOME)/lib64 -lcudart_static -ldl -lrt -lstdc++
endif
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:%.c=$(BUILD)/%)

.PHONY: all test asan deps fuzz bench run clean deps-check tests-c cuda test-arm64 soak fa-emu

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
$(BUILD)/obj/%_dotprod.o: %_dotprod.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DOTPROD_FLAGS) -MMD -MP -c $< -o $@
$(BUILD)/obj/%_i8mm.o: %_i8mm.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(I8MM_FLAGS) -MMD -MP -c $< -o $@
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.cu $(wildcard src/backend/cuda/*.h src/backend/cuda/*.cuh)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -c $< -o $@

# CUDA build: its own folder, so the plain build never needs nvcc.
cuda:
	@test -x $(NVCC) || { echo "make cuda: no nvcc at $(NVCC) (set CUDA_HOME)"; exit 1; }
	@$(MAKE) --no-print-directory $(PARALLEL) WITH_CUDA=1 BUILD=$(CUDA_BUILD) $(CUDA_BUILD)/larder \
	  $(CUDA_BUILD)/tests/cuda/cuda_ops_check $(CUDA_BUILD)/tests/cuda/cuda_gemm_bench \
	  $(CUDA_BUILD)/tests/cuda/cuda_gemv_bench \
	  $(CUDA_BUILD)/tests/cuda/cuda_attn_bench \
	  $(CUDA_BUILD)/tests/cuda/cuda_mmq_unpack_check

$(BUILD)/tests/cuda/cuda_ops_check: tests/cuda/cuda_ops_check.c $(BUILD)/liblarder.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(BUILD)/liblarder.a $(LDLIBS)

# The MMQ's unpacking against dequantize_row, on the host (no GPU needed).
$(BUILD)/tests/cuda/cuda_mmq_unpack_check: tests/cuda/cuda_mmq_unpack_check.cu $(BUILD)/liblarder.a \
  $(wildcard src/backend/cuda/*.h src/backend/cuda/*.cuh)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -Itests -o $@ $< $(BUILD)/liblarder.a -lm -lpthread

# The prefill matmul microbenchmark (old path vs cuda_gemm.cu), CUDA C++.
$(BUILD)/tests/cuda/cuda_gemm_bench: tests/cuda/cuda_gemm_bench.cu tests/cuda/cuda_bench_common.h $(BUILD)/liblarder.a
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -o $@ $< $(BUILD)/liblarder.a -lm -lpthread

# The decode GEMV microbenchmark (its variants side by side), CUDA C++.
$(BUILD)/tests/cuda/cuda_gemv_bench: tests/cuda/cuda_gemv_bench.cu tests/cuda/cuda_bench_common.h $(BUILD)/liblarder.a
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -o $@ $< $(BUILD)/liblarder.a -lm -lpthread

# The flash attention kernel run on the CPU by emulation (tests/cuda/fa_emu.cpp)
# against the CPU backend: needs the CUDA toolkit's headers, not a GPU.
fa-emu: $(BUILD)/liblarder.a
	@mkdir -p $(BUILD)/tests/cuda
	$(CXX) -std=c++20 -O1 -g -Wall -Wextra -Wno-unused-parameter -Wno-unknown-pragmas -Werror -Isrc \
	  -I$(CUDA_HOME)/include -o $(BUILD)/tests/cuda/fa_emu tests/cuda/fa_emu.cpp $(BUILD)/liblarder.a $(LDLIBS)
	$(BUILD)/tests/cuda/fa_emu $(FA_EMU_ARGS)

# The attention microbenchmark (scalar kernel vs cuda_flash_attn.cu), CUDA C++.
$(BUILD)/tests/cuda/cuda_attn_bench: tests/cuda/cuda_attn_bench.cu tests/cuda/cuda_bench_common.h $(BUILD)/liblarder.a
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -o $@ $< $(BUILD)/liblarder.a -lm -lpthread

$(BUILD)/liblarder.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/larder: $(CLI_OBJ) $(BUILD)/liblarder.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/liblarder.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/liblarder.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CMOCKA_CFLAGS) -Itests -MMD -MP -o $@ $< $(BUILD)/liblarder.a $(LDLIBS) $(CMOCKA_LIBS)

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

# AArch64 under emulation: the cross build (Debian's gcc-aarch64-linux-gnu and
# the arm64 multiarch libraries, installed by `make deps`), then
# tests/arm64/run.sh: every cmocka program under qemu-aarch64 per kernel level
# (-cpu cortex-a53: NEON only; neoverse-n1: dotprod; max: i8mm) and `larder
# logits` on make-model files against the x86 build's output.
# ARM64_CC="clang --target=aarch64-linux-gnu" ARM64_BUILD=build-arm64-clang runs the same
# with clang (what macOS builds with).
ARM64_CC    ?= aarch64-linux-gnu-gcc
ARM64_BUILD ?= build-arm64
ARM64_PKG_CONFIG ?= env PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig pkg-config
test-arm64: deps-check
	@$(MAKE) --no-print-directory $(PARALLEL) all
	@$(MAKE) --no-print-directory $(PARALLEL) CC="$(ARM64_CC)" BUILD=$(ARM64_BUILD) PKG_CONFIG="$(ARM64_PKG_CONFIG)" \
	  all $(TEST_SRC:%.c=$(ARM64_BUILD)/%)
	@ARM64_BUILD=$(ARM64_BUILD) BUILD=$(BUILD) bash tests/arm64/run.sh

deps-check:
	@bash tools/deps.sh --check || $(MAKE) deps

clean:
	rm -rf build build-asan build-fuzz build-cuda build-arm64

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:=.d)
