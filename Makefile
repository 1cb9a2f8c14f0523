# The two commands: `make run` and `make test`. Both install missing Debian packages first
# (silent when nothing is missing), then configure and build.
BUILD ?= build
JOBS ?= $(shell nproc)
RUN_ARGS ?=
PREFIX ?= /usr/local

# PREFIX: where `make install` puts both programs, the man pages, completions and the user unit.
.PHONY: deps build install package run test unit functional format check-format check-layers clean bench

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
