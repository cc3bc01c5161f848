# nanorlhf front door. CMake does the build; these targets are the commands the README shows.
#   make deps    install the Debian packages the build needs (apt-get; skips what is present)
#   make         build the libraries, the `nanorlhf` program, tests and examples (build/)
#   make test    build, then run every test with ctest
#   make demo    run the whole alignment pipeline on the built-in synthetic world (replaces runs/demo)
#   make bench   build and run the CPU benchmarks (bench/RESULTS.md holds the measured figures)
#   make relink  re-point the lectures' code links ([`name`](path#L<line>)) at the functions they name
#   make gpu-check   prepare the CUDA build and the script to run on a GPU machine (bench/README.md)
#   make grade ASSIGNMENT=<name>   grade a student's assignment (lectures/assignments/)

BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
PACKAGES := build-essential cmake libgtest-dev libbenchmark-dev libfmt-dev nlohmann-json3-dev libcli11-dev libopenblas-dev
BENCH_PACKAGES := python3-torch python3-numpy
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build deps bench-deps test demo bench relink gpu-check clean grade

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

demo: deps build
	./$(BUILD)/nanorlhf pipeline --out runs/demo --overwrite

bench: bench-deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target benchmarks
	bash bench/run_cpu_benchmarks.sh $(BUILD)

relink:
	bash lectures/relink.sh

gpu-check: deps
	bash bench/gpu_check_prepare.sh

grade: deps $(BUILD)/CMakeCache.txt
	bash lectures/assignments/grade.sh "$(ASSIGNMENT)" $(BUILD)

clean:
	rm -rf $(BUILD) build-gpu gpu
