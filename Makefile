# Thin wrapper: every target installs what is missing, then drives CMake.
BUILD      ?= build
BUILD_SAN  ?= build-san
JOBS       ?= $(shell nproc)
DEMO_ARGS  ?=

.PHONY: all deps build build-san test test-san demo demo-analyze bench fuzz format clean docs

all: build

deps:
	@./deploy/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DNOPS_WERROR=ON >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@ln -sf $(BUILD)/compile_commands.json compile_commands.json

build-san: deps
	@cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DNOPS_WERROR=ON \
	    -DNOPS_SANITIZER=address,undefined >/dev/null
	@cmake --build $(BUILD_SAN) -j $(JOBS)

# Every test (units, integration, fuzz-corpus replay), then again under ASan+UBSan.
# tests/with-postgres.sh starts a throw-away PostgreSQL server for the run and stops it after.
test: build build-san
	@./tests/with-postgres.sh sh -c 'cd $(BUILD) && ctest --output-on-failure -j $(JOBS)'
	@./tests/with-postgres.sh sh -c 'cd $(BUILD_SAN) && \
	    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j $(JOBS)'

# The streaming demo: in-process Kafka, a synthetic fleet with incidents, the pipeline.
demo: build
	@./$(BUILD)/neuralops demo $(DEMO_ARGS)

# Batch detection over the bundled sample day (neuralops analyze).
demo-analyze: build
	@./deploy/demo.sh

bench: build
	@./$(BUILD)/neuralops-bench detect

# libFuzzer targets (clang); corpora live in tests/fuzz/corpus/<target>/.
fuzz: deps
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DNOPS_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

docs: build
	@./$(BUILD)/neuralops config docs > docs/configuration.md

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	@rm -rf $(BUILD) $(BUILD_SAN) build-fuzz
