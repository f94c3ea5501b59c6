# Braid. `make test` is what CI runs (through .ci/run) on a fresh Debian machine.
SHELL := /bin/bash
GO ?= go
# Real C2SP tlog witnesses for the witness tests (docs/anchoring.md).
LITEWITNESS ?= filippo.io/torchwood/cmd/litewitness@v0.9.0
OMNIWITNESS ?= github.com/transparency-dev/witness/cmd/omniwitness@v0.0.0-20260720115447-2e1c6971d19e

.PHONY: run test deps check-format check-templ vet gotest fuzz generate assets bench bench-http build

run:
	$(GO) run ./cmd/web

build:
	CGO_ENABLED=0 $(GO) build -o web ./cmd/web

# Install what the tests need when it is missing, then every check.
test: deps check-format vet check-templ gotest fuzz

deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing chromium (browser tests)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi
	@if ! command -v openssl >/dev/null || ! command -v python3 >/dev/null || ! command -v npm >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl python3 npm >/dev/null; \
	fi
	@if [ ! -x node_modules/.bin/anvil ] || [ ! -f node_modules/axe-core/axe.min.js ]; then \
		echo "installing npm packages (anvil for the anchoring tests, axe-core for the browser suite)"; \
		npm install --no-audit --no-fund --loglevel=error; \
	fi
	@if ! command -v ssh-agent >/dev/null || ! command -v ssh-keygen >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-client >/dev/null; \
	fi
	@bin=$$($(GO) env GOPATH)/bin; \
	if [ ! -x $$bin/litewitness ] && ! command -v litewitness >/dev/null; then \
		echo "installing litewitness (tlog witness tests)"; \
		GOFLAGS= $(GO) install $(LITEWITNESS); \
	fi; \
	if [ ! -x $$bin/omniwitness ] && ! command -v omniwitness >/dev/null; then \
		echo "installing omniwitness (tlog witness tests; about 1.5 min to build)"; \
		GOFLAGS= $(GO) install $(OMNIWITNESS); \
	fi
	$(GO) mod download

check-format:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '_templ\.go$$')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Generated templ code is committed; regenerating must change nothing.
check-templ:
	$(GO) tool templ generate
	@if [ -n "$$(git status --porcelain -- '*_templ.go')" ]; then \
		echo "generated *_templ.go files are stale: run 'go tool templ generate' and commit"; \
		git status --porcelain -- '*_templ.go'; exit 1; fi

# The fuzz targets' seed corpora run in `make fuzz` (without -race: under
# it, their bcrypt sign-ins take minutes); plain `go test ./...` runs them too.
#
# The race detector runs on every package but cmd/web, and on cmd/web's
# tests of concurrent paths (parallel sign-ins, first person, tokens'
# limits, streams, replication, metrics, webhooks): the whole HTTP suite
# under -race takes over 25 minutes on two cores, so the rest of it runs
# once without. TestStreamDropsSlowConsumer is left out of that run: it
# posts hundreds of 10 KB comments until the kernel's socket buffers fill,
# which under -race takes five minutes; the hub it drives is checked under
# -race by internal/events' TestHubDropsFullSubscriberWithoutWaiting.
RACE_WEB = Parallel|OnlyOneFirstPerson|TokenRateLimit|TestStream|TestHub|Replicate|Follower|TestMetrics|TestWebhookResumes|Idempot
RACE_WEB_SKIP = TestStreamDropsSlowConsumer
gotest:
	$(GO) test -race -timeout 20m -skip '^Fuzz' $$($(GO) list ./... | grep -v '/cmd/web$$')
	$(GO) test -timeout 20m -skip '^Fuzz' ./cmd/web/
	$(GO) test -race -timeout 15m -run '$(RACE_WEB)' -skip '$(RACE_WEB_SKIP)' ./cmd/web/

# Fuzz every `func FuzzX` in the repository for FUZZTIME each, one target
# at a time in its own package (go test -fuzz takes one target). Every
# target runs even after one fails; a failure prints the input the fuzzer
# wrote under the package's testdata/fuzz/FuzzX/ (commit it there to keep
# it as a seed once the bug is fixed).
#
# Go before 1.27 may end a run that found nothing with "context deadline
# exceeded" when -fuzztime runs out while a starved worker is mid-input
# (golang/go#75804): such a run, with no failing input written, is run
# once more; any other failure fails.
FUZZTIME ?= 10s
fuzz:
	@failed=""; log=$$(mktemp); \
	for f in $$(git ls-files --cached --others --exclude-standard '*_test.go'); do \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$f"); do \
			pkg=./$$(dirname "$$f"); \
			echo "fuzz $$t in $$pkg for $(FUZZTIME)"; \
			before=$$(git ls-files --others --exclude-standard -- "$$pkg/testdata/fuzz/$$t" | tr "\n" " "); \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) "$$pkg" > "$$log" 2>&1; rc=$$?; cat "$$log"; \
			if [ $$rc -ne 0 ] && grep -q 'context deadline exceeded' "$$log" && ! grep -q 'Failing input written' "$$log" && \
				[ "$$(git ls-files --others --exclude-standard -- "$$pkg/testdata/fuzz/$$t" | tr "\n" " ")" = "$$before" ]; then \
				echo "fuzz $$t: stopped by Go's -fuzztime race (golang/go#75804) with no failing input: once more"; \
				$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) "$$pkg" > "$$log" 2>&1; rc=$$?; cat "$$log"; \
			fi; \
			if [ $$rc -ne 0 ]; then \
				failed="$$failed $$pkg:$$t"; \
				for new in $$(git ls-files --others --exclude-standard -- "$$pkg/testdata/fuzz/$$t"); do \
					case " $$before " in *" $$new "*) continue;; esac; \
					echo "--- failing input $$new (first 4 KB):"; head -c 4096 "$$new"; echo; \
				done; \
			fi; \
		done; \
	done; \
	rm -f "$$log"; \
	if [ -n "$$failed" ]; then echo "fuzzing failed:$$failed"; exit 1; fi

generate:
	$(GO) tool templ generate

# Refresh the front-end assets in static/ from the pinned npm packages.
assets:
	npm install --no-audit --no-fund
	cp node_modules/htmx.org/dist/htmx.min.js static/htmx.min.js
	cp node_modules/htmx-ext-sse/dist/sse.min.js static/htmx-ext-sse.min.js
	cp node_modules/@picocss/pico/css/pico.min.css static/pico.min.css

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./internal/...

# Comment posts against the real server: 64 signed-in clients, 100 tickets.
bench-http:
	$(GO) test -run '^$$' -bench BenchmarkHTTPComments -benchtime 20000x ./cmd/web
