# Kiln: `make run` boots the Kiln kernel under kiln-vmm; `make test` runs every test. Both do all
# set-up on a fresh Debian 12 machine first: dependencies, configure, build.
BUILD      ?= build
ASAN_BUILD ?= build-asan
CMAKE_GEN  := -G Ninja
JOBS       ?= $(shell nproc)

.PHONY: all deps build build-asan test test-full run bench format clean

all: build

deps:
	./scripts/install-deps

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo

# clang: with both sanitizers it compiles the host code in about half gcc's time (CI's budget).
$(ASAN_BUILD)/build.ninja: | deps
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DKILN_SANITIZE=ON \
	  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
	  -DKILN_BUILD_KERNEL=OFF -DKILN_KERNEL_IMAGE=$(abspath $(BUILD))/kernel/kiln.elf \
	  -DKILN_GUEST_APPS=$(abspath $(BUILD))/tests/guest-apps

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# Host code again, with AddressSanitizer and UndefinedBehaviorSanitizer.
build-asan: build $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# Every retry of scripts/with-kvm (a nested VM frozen or reset by TCG) is logged here and counted
# at the end of the run: retried, never hidden.
KVM_RETRIES := $(abspath $(BUILD))/with-kvm-retries.log
export WITH_KVM_RETRY_LOG := $(KVM_RETRIES)
retry_summary = echo "with-kvm: $$(cat $(KVM_RETRIES) 2>/dev/null | wc -l) retries of a nested VM that TCG froze or reset in this run$$(test -s $(KVM_RETRIES) && echo ': $(KVM_RETRIES)')"

# What CI runs (about 13 minutes on 2 cores, builds included): unit, host-side and fuzz-corpus
# tests, the kernel under QEMU TCG, and the nested-KVM smoke set; then the host code sanitized.
# Two tests at a time: most of them wait on guests, sockets and timers (the plain suite keeps its
# two cores about two-thirds busy so, and takes half the time); each test makes its namespaces
# (named by its pid), state directories and sockets (mkdtemp) of its own. kvm.smoke, whose test
# VM has two vCPUs, runs alone (PROCESSORS 2).
TEST_JOBS ?= 2
test: build build-asan
	@rm -f $(KVM_RETRIES)
	cd $(BUILD) && ctest -j $(TEST_JOBS) --output-on-failure --timeout 600 --label-exclude full; s=$$?; $(retry_summary); exit $$s
	cd $(ASAN_BUILD) && ctest -j $(TEST_JOBS) --output-on-failure --timeout 300 --label-exclude full

# The rest (label `full`, up to 45 minutes): the whole KVM suites under nested emulation, the long
# e2e suites, the 1 GiB transfers, the wake and kill loops, the repeat tests of past flakes.
test-full: build
	@rm -f $(KVM_RETRIES)
	cd $(BUILD) && ctest --output-on-failure --timeout 2700 --label-regex full; s=$$?; $(retry_summary); exit $$s

# The hello example built into an image and run through kiln (which starts kilnd), then
# examples/http-c deployed as a scale-to-zero service and woken by a client, on the host's default
# platform (kiln info: kvm where /dev/kvm works, else proc). The state goes to /tmp.
run: build
	export KILN_STATE_DIR=/tmp/kiln-make-run; $(BUILD)/bin/kiln info && \
	  $(BUILD)/bin/kiln build $(BUILD)/examples/hello && $(BUILD)/bin/kiln run --rm hello && \
	  $(BUILD)/bin/kiln images && ./scripts/demo-scale-to-zero $(BUILD)

bench: build
	./scripts/with-kvm --timeout 1200 -- ./bench/boot/run --build $(BUILD)
	./scripts/with-kvm --timeout 1200 -- ./bench/apps/run --build $(BUILD)
	./scripts/with-kvm --timeout 1200 -- ./bench/net/run --build $(BUILD)
	./scripts/with-kvm --timeout 2400 -- ./bench/snapshot/run --build $(BUILD)
	./scripts/with-kvm --timeout 1200 -- ./bench/platform/run --build $(BUILD)
	./scripts/with-kvm --timeout 2400 -- ./bench/services/run --build $(BUILD)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
