# admitd: see README.md.
GO      ?= go
OPA     := $(GO) tool opa
BIN     := bin/admitd
POLICY_FLAGS := --capabilities policies/capabilities.json --ignore capabilities.json

.PHONY: build run test test-go test-policies lint bench demo faults fmt clean

build:
	$(GO) build -o $(BIN) ./cmd/admitd

run: build
	./$(BIN) serve --id node1 --bootstrap

test: lint test-policies test-go

test-go:
	$(GO) test -race -count=1 ./...

test-policies:
	$(OPA) check --strict $(POLICY_FLAGS) policies/
	$(OPA) test $(POLICY_FLAGS) policies/
	@$(OPA) test --coverage $(POLICY_FLAGS) policies/ | $(GO) run ./internal/tools/covercheck -min 90

lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	@test -z "$$($(OPA) fmt --list policies/)" || { echo "opa fmt needed:"; $(OPA) fmt --list policies/; exit 1; }

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./admission/

demo: build
	$(GO) run ./internal/tools/demo -bin $(BIN)

fmt:
	gofmt -w .
	$(OPA) fmt -w policies/

clean:
	rm -rf bin data
