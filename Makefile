# Thin wrapper over CMake presets. `make run` and `make test` are the README's contract.
.PHONY: all deps build build-asan run test bench format docs package coverage clean

JOBS ?= $(shell nproc)
ARGS ?=

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS) --target fetchd

build-asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS)

# The embedded service: SQLite file ./fetchd.db, API on http://127.0.0.1:8000.
# --fetch-allow-private lets tasks fetch this machine's own addresses, such as the demo feeds
# that fetchd serves under /demo/ (`fetchd db seed` points tasks there); drop it in production.
run: build
	./build/fetchd serve --fetch-allow-private $(ARGS)

# Every test (unit, contract, integration) against the ASan+UBSan build.
test: build build-asan
	@cd build/asan && ctest --output-on-failure -j $(JOBS) $(if $(LABEL),-L $(LABEL),)

bench: build
	@cmake --build --preset release -j $(JOBS) --target fetch_floor
	@bench/run

format:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

# Regenerates the docs derived from the option table, the command line and /openapi.json
# (tests check they are current): the example config, the README's table, the man page and
# the Insomnia and Postman collections in clients/.
docs: build
	@./build/fetchd config example > fetchd.example.toml
	@./build/fetchd config table > build/config-table.md
	@scripts/replace-between.py README.md '<!-- config-table:begin -->' '<!-- config-table:end -->' build/config-table.md
	@./build/fetchd config man > docs/fetchd.1
	@scripts/gen_collections.py --binary build/fetchd --out clients

# The Debian package (CPack, DEB generator): build/fetchd_<version>_<arch>.deb, its Depends
# computed by dpkg-shlibdeps. Install it with `apt install ./build/fetchd_*.deb`.
package: build
	@cd build && cpack -G DEB
	@ls build/fetchd_*.deb

coverage: deps
	@cmake --preset coverage >/dev/null
	@cmake --build --preset coverage -j $(JOBS)
	@find build/cov -name '*.gcda' -delete
	@cd build/cov && ctest -j $(JOBS) --output-on-failure
	@mkdir -p build/coverage
	@gcovr --root . --filter src/ --object-directory build/cov --print-summary \
	  --html-details build/coverage/index.html --txt build/coverage/summary.txt
	@echo "HTML report: build/coverage/index.html"

clean:
	rm -rf build

# Fuzzing (libFuzzer, clang): make fuzz; see fuzz/README.md.
include fuzz/fuzz.mk
