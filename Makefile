# The two commands: `make run` and `make test`. Both install missing Debian packages first
# (silent when nothing is missing), then configure and build.
BUILD ?= build
JOBS ?= $(shell nproc)
RUN_ARGS ?=

.PHONY: deps build run test unit functional format check-format check-layers clean bench

deps:
	@scripts/install-deps.sh

# Development and CI build with warnings as errors (ALUMIA_WERROR defaults to OFF for packagers); a
# build directory configured without it is switched on here.
$(BUILD)/CMakeCache.txt:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALUMIA_WERROR=ON >/dev/null

build: deps $(BUILD)/CMakeCache.txt
	@grep -qx 'ALUMIA_WERROR:BOOL=ON' $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DALUMIA_WERROR=ON >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

run: build
	exec $(BUILD)/daemon/alumia-connectd $(RUN_ARGS)

test: build check-format check-layers
	@tests/support/oauth-peer/install.sh
	@tests/browser/install.sh
	cd $(BUILD) && ALUMIA_REQUIRE_OAUTH_PEER=1 ALUMIA_REQUIRE_BROWSER=1 ctest --output-on-failure -j2 --timeout 900

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

functional: build
	cd $(BUILD) && ctest --output-on-failure -L functional

bench: build
	bench/ingest.sh $(BUILD)

format:
	@find common daemon cli tests bench -name '*.cpp' -o -name '*.hpp' | xargs clang-format -i

check-format: deps
	@find common daemon cli tests bench -name '*.cpp' -o -name '*.hpp' | xargs clang-format --dry-run --Werror

# An include that crosses a layer of common/ upward fails (docs/ARCHITECTURE.md, "Layers").
check-layers:
	@python3 scripts/check-layers.py

clean:
	rm -rf $(BUILD)
