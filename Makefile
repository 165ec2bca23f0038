# admitd: see README.md.
GO      ?= go
OPA     := $(GO) tool opa
BIN     := bin/admitd
POLICY_FLAGS := --capabilities policies/capabilities.json --ignore capabilities.json

.PHONY: build run test test-go test-policies test-loaded lint faults bench demo fuzz fmt clean

build:
	$(GO) build -o $(BIN) ./cmd/admitd

run: build
	./$(BIN) serve --id node1 --bootstrap

test: lint test-policies test-go

test-go:
	$(GO) test -race -count=1 ./...

# make test LOADED_RUNS times in a row with a CPU burner on every core, as
# a busy CI machine runs it; it stops at the first failing run.
LOADED_RUNS ?= 5
test-loaded:
	@set -e; for i in $$(seq $(LOADED_RUNS)); do \
		pids=; for c in $$(seq $$(nproc)); do timeout 3600 sh -c 'while :; do :; done' & pids="$$pids $$!"; done; \
		echo "== loaded run $$i of $(LOADED_RUNS)"; \
		if ! $(MAKE) test; then kill $$pids; echo "loaded run $$i failed"; exit 1; fi; \
		kill $$pids; \
	done; echo "$(LOADED_RUNS) loaded runs passed"

# The fault suite alone: crashes at failpoints (ADMITD_FAILPOINTS, see
# internal/failpoint), dying candidates, silent voters, concurrent bursts,
# wiped data dirs. test-go runs it too.
faults:
	$(GO) test -race -count=1 -timeout 10m -run 'TestFault|TestFailpoint' ./e2e/ ./internal/failpoint/

test-policies:
	$(OPA) check --strict $(POLICY_FLAGS) policies/
	$(OPA) test $(POLICY_FLAGS) policies/
	@$(OPA) test --coverage $(POLICY_FLAGS) policies/ | $(GO) run ./internal/tools/covercheck -min 90

lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	@test -z "$$($(OPA) fmt --list policies/)" || { echo "opa fmt needed:"; $(OPA) fmt --list policies/; exit 1; }

# Each fuzzer runs for FUZZTIME, one after another (go test -fuzz takes one
# fuzz target per package run). A short minimize time keeps the workers
# fuzzing: with the 60s default they can spend most of a run minimizing new
# inputs and report 0 execs/sec (golang/go#51484).
FUZZTIME ?= 60s
FUZZMINIMIZETIME ?= 5s
FUZZERS  := FuzzDecode:./facts/ FuzzParseNodeState:./facts/ FuzzDecodeAdmissionRequest:./internal/server/ FuzzJSONValue:./admission/

fuzz:
	@set -e; for f in $(FUZZERS); do \
		echo "== $${f%%:*} ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$${f%%:*}$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $${f#*:}; \
	done

# The Go micro-benchmarks of the evaluation path, then the side-by-side
# harness (internal/tools/bench): admitd against the stock OPA server built
# from the pinned module, all on 127.0.0.1; docs/benchmarks.md has a run.
bench: build
	$(GO) build -o bin/opa github.com/open-policy-agent/opa
	$(GO) test -run '^$$' -bench . -benchmem ./admission/
	$(GO) test -run '^$$' -bench 'GateOnHost|DryRunAgainstRaftFloor' -benchtime 500x -benchmem .
	$(GO) run ./internal/tools/bench -admitd $(BIN) -opa bin/opa -go $(GO)

demo: build
	$(GO) run ./internal/tools/demo -bin $(BIN)

fmt:
	gofmt -w .
	$(OPA) fmt -w policies/

clean:
	rm -rf bin data
