# The two commands: `make run` and `make test`. Both install missing Debian packages first
# (silent when nothing is missing), then configure and build.
BUILD ?= build
JOBS ?= $(shell nproc)
RUN_ARGS ?=
PREFIX ?= /usr/local

# PREFIX: where `make install` puts both programs, the man pages, completions and the user unit.
.PHONY: deps build install package run test unit functional format check-format check-layers clean bench fuzz test-sanitize \
  test-sanitize-ci test-tsan

deps:
	@scripts/install-deps.sh

# Development and CI build with warnings as errors (ALUMIA_WERROR defaults to OFF for packagers); a
# build directory configured without it is switched on here.
$(BUILD)/CMakeCache.txt:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALUMIA_WERROR=ON >/dev/null

build: deps $(BUILD)/CMakeCache.txt
	@grep -qx 'ALUMIA_WERROR:BOOL=ON' $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DALUMIA_WERROR=ON >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	@echo "both programs are in $(BUILD)/bin/: make install (PREFIX=$(PREFIX)), or export PATH=\"$(abspath $(BUILD))/bin:\$$PATH\""

# Both programs into $(PREFIX)/bin, with the man pages, completions and the user unit (cmake/Packaging.cmake).
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# The .deb (and a .tar.gz) in $(BUILD)/ (cmake/Packaging.cmake; tests/packaging/test_deb.sh checks it).
package: build
	cd $(BUILD) && cpack

run: build
	exec $(BUILD)/bin/alumia-connectd $(RUN_ARGS)

# The whole suite, then the CI sanitizer pass (test-sanitize-ci below).
test: build check-format check-layers
	@tests/support/oauth-peer/install.sh
	@tests/browser/install.sh
	cd $(BUILD) && ALUMIA_REQUIRE_OAUTH_PEER=1 ALUMIA_REQUIRE_BROWSER=1 ALUMIA_REQUIRE_POSTGRES=1 ctest --output-on-failure -j2 --timeout 900
	@$(MAKE) --no-print-directory test-sanitize-ci

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

functional: build
	cd $(BUILD) && ctest --output-on-failure -L functional

# The functional suite's second pass, every daemon on PostgreSQL 15 (tests/CMakeLists.txt, label pg-suite).
.PHONY: functional-pg
functional-pg: build
	cd $(BUILD) && ALUMIA_REQUIRE_OAUTH_PEER=1 ALUMIA_REQUIRE_POSTGRES=1 ctest --output-on-failure -j2 -L pg-suite

bench: build
	bench/ingest.sh $(BUILD)

# Sanitizer and fuzz builds (README.md, "Sanitizers and fuzzing"), each in its own directory, cold the first
# time (nothing of build/ is reused: other flags, another compiler for fuzz).
# test-sanitize: ASan + UBSan, every report fatal, the whole suite. test-tsan: TSan, the concurrency tests
# (label tsan, tests/CMakeLists.txt; tests/support/tsan.supp says what it leaves out and why). fuzz: every libFuzzer target for FUZZ_SECONDS each (fuzz/run.sh).
SAN_FLAGS = -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALUMIA_WERROR=ON -DALUMIA_BUILD_BENCH=OFF
FUZZ_SECONDS ?= 10
FUZZ_CXX ?= clang++-19
FUZZ_CC ?= clang-19

# test-sanitize-ci: what `make test` (CI) runs of it: the same build-asan, then the unit tests and the
# functional subset labelled asan-ci (tests/CMakeLists.txt: hostile input on every route, the receiver,
# relay, listeners, retention and OAuth flows).
ASAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

build-asan/CMakeCache.txt:
	@cmake -S . -B build-asan $(SAN_FLAGS) -DALUMIA_SANITIZE=address,undefined >/dev/null

test-sanitize: deps check-format build-asan/CMakeCache.txt
	@cmake --build build-asan -j$(JOBS)
	@tests/support/oauth-peer/install.sh
	cd build-asan && ALUMIA_REQUIRE_OAUTH_PEER=1 ALUMIA_REQUIRE_POSTGRES=1 $(ASAN_ENV) ctest --output-on-failure -j2 --timeout 1800

test-sanitize-ci: deps build-asan/CMakeCache.txt
	@cmake --build build-asan -j$(JOBS)
	@tests/support/oauth-peer/install.sh
	cd build-asan && ALUMIA_REQUIRE_OAUTH_PEER=1 ALUMIA_REQUIRE_POSTGRES=1 $(ASAN_ENV) ctest --output-on-failure -j2 --timeout 900 -L 'unit|asan-ci'

test-tsan: deps
	@test -f build-tsan/CMakeCache.txt || cmake -S . -B build-tsan $(SAN_FLAGS) -DALUMIA_SANITIZE=thread >/dev/null
	@cmake --build build-tsan -j$(JOBS)
	@tests/support/oauth-peer/install.sh
	cd build-tsan && ALUMIA_REQUIRE_OAUTH_PEER=1 \
	  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/support/tsan.supp \
	  ctest --output-on-failure -j2 --timeout 1800 -L tsan

fuzz:
	@scripts/install-deps.sh fuzz
	@test -f build-fuzz/CMakeCache.txt || CC=$(FUZZ_CC) CXX=$(FUZZ_CXX) cmake -S . -B build-fuzz $(SAN_FLAGS) \
	  -DALUMIA_BUILD_TESTS=OFF -DALUMIA_SANITIZE=address,undefined -DALUMIA_BUILD_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j$(JOBS) --target fuzz_all
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh build-fuzz

format:
	@find common daemon cli tests bench fuzz -name '*.cpp' -o -name '*.hpp' | xargs clang-format -i

check-format: deps
	@find common daemon cli tests bench fuzz -name '*.cpp' -o -name '*.hpp' | xargs clang-format --dry-run --Werror

# An include that crosses a layer of common/ upward fails (docs/ARCHITECTURE.md, "Layers").
check-layers:
	@python3 scripts/check-layers.py

clean:
	rm -rf $(BUILD)
