# The two commands: `make run` and `make test`. Everything else is a helper for them.
BUILD ?= build/release
JOBS ?= $(shell nproc)
CONFIG ?= examples/llmscope.yaml

.PHONY: run test setup build build-debug unit integration e2e bench format check-format clean

setup:
	bash scripts/setup.sh

build: setup
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)

run: build
	$(BUILD)/llmscope serve --config $(CONFIG)

test: build
	bash scripts/test.sh

bench: build
	bash bench/run.sh

format:
	find src tests bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

check-format:
	find src tests bench -name '*.h' -o -name '*.cc' | xargs clang-format --dry-run -Werror

clean:
	rm -rf build
