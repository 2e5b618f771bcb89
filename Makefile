# The targets people expect. `make test` is what CI runs (.ci/run) and what README.md names.
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# browser: the dashboard tests that drive a real Chromium (chromedp); without the tag a build
# or a plain `go test` compiles no chromedp.
TEST_TAGS ?= browser

.PHONY: build test race demo lint fuzz bench bench-rtt bench-probe package

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/hotdrop ./cmd/hotdrop

test:
	$(GO) test -race -tags '$(TEST_TAGS)' ./...

# race: the whole suite RACE_COUNT times under the race detector, to shake out flaky tests.
RACE_COUNT ?= 3
race:
	$(GO) test -race -count=$(RACE_COUNT) -tags '$(TEST_TAGS)' ./...

# fuzz: every Fuzz function in the module, one after the other, for FUZZTIME each (their seed
# corpora alone run in `make test`); a failing input lands in the package's testdata/fuzz/.
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline exceeded" as
# -fuzztime ends on a busy machine (go.dev/issue/75804, fixed in Go 1.27): with no failing
# input written that is reported and passed over, anything else fails.
FUZZTIME ?= 10s
fuzz:
	@$(GO) test -list '^Fuzz' ./... 2>&1 | \
	awk '/^Fuzz/ { f[n++] = $$1; next } /^ok/ { for (i = 0; i < n; i++) print $$2, f[i]; n = 0 } /^FAIL/ { print "-", $$2; n = 0 }' | \
	while read -r pkg fn; do \
	  if [ "$$pkg" = - ]; then echo "fuzz: $$fn does not build: go test -list '^Fuzz' $$fn"; exit 1; fi; \
	  echo "== $$pkg $$fn ($(FUZZTIME))"; \
	  out=$$($(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) "$$pkg" 2>&1); rc=$$?; echo "$$out"; \
	  [ $$rc = 0 ] && continue; \
	  if echo "$$out" | grep -q 'Failing input written' || ! echo "$$out" | grep -qx '    context deadline exceeded'; then exit 1; fi; \
	  echo "   (no failing input: Go's fuzz coordinator stopping at -fuzztime, go.dev/issue/75804)"; \
	done

demo:
	$(GO) run ./cmd/hotdrop demo

lint:
	gofmt -l $$(git ls-files '*.go')
	$(GO) vet -tags '$(TEST_TAGS)' ./...

# Packages: dist/hotdrop_*.deb and dist/hotdrop-*.rpm for linux/$(PKG_ARCH), from packaging/.
# nfpm runs from the Go module proxy at a pinned version (v2.46 and later need modules the
# proxy does not serve); no downloaded binaries.
NFPM ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.0
PKG_ARCH ?= $(shell $(GO) env GOARCH)
# deb and rpm versions start with a digit: tag v1.2.3 gives 1.2.3, an untagged tree 0.0.0~git<sha>.
PKG_VERSION ?= $(or $(patsubst v%,%,$(shell git describe --tags --match 'v[0-9]*' 2>/dev/null)),0.0.0~git$(shell git rev-parse --short HEAD 2>/dev/null || echo unknown))
RELEASE_FLAGS = -trimpath -ldflags "-s -w -X main.version=$(VERSION)"

package:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(PKG_ARCH) $(GO) build $(RELEASE_FLAGS) -o dist/package/hotdrop ./cmd/hotdrop
	for p in deb rpm; do \
	  ARCH=$(PKG_ARCH) VERSION=$(PKG_VERSION) $(NFPM) package --config packaging/nfpm.yaml --packager $$p --target dist/ || exit 1; \
	done

# Static binaries for every platform hotdrop supports, in dist/OS-ARCH/.
CROSS_TARGETS = linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
.PHONY: cross
cross:
	@for t in $(CROSS_TARGETS); do \
	  os=$${t%/*}; arch=$${t#*/}; ext=; [ $$os = windows ] && ext=.exe; \
	  echo "build $$os/$$arch"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build $(RELEASE_FLAGS) -o dist/$$os-$$arch/hotdrop$$ext ./cmd/hotdrop || exit 1; \
	done

# The tests and benchmarks must build where the binary does: a developer on macOS or Windows
# runs `go test ./...` too (the real-server tests skip there, saying why).
.PHONY: cross-vet
cross-vet:
	@for os in darwin windows; do \
	  echo "vet $$os"; \
	  CGO_ENABLED=0 GOOS=$$os $(GO) vet ./... || exit 1; \
	done

# bench: hotdrop send against sftp, rclone and ssh on a local sshd (bench/run.sh --help).
# BENCH_FLAGS=--quick for the small data sets; the Go benchmarks: go test -bench SSHD ./uploader/
bench:
	bash bench/run.sh $(BENCH_FLAGS)

# bench-rtt: the same at RTT 0, 50, 100 and 200 ms through bench/delayproxy, and a resume after
# a cut at 100 ms (issue 12). Hours at full size; BENCH_FLAGS="--quick --rtt 0,100 --rounds 1"
# for a look in minutes.
bench-rtt:
	bash bench/run.sh --rtt 0,50,100,200 --cut $(BENCH_FLAGS)

# bench-probe: what the content check adds per file (ffprobe on a 2 GiB movie, 1,000 WAVs).
bench-probe:
	HOTDROP_MEASURE=1 go test -count=1 -run TestMeasureProbe -v -timeout 20m ./checks/

# faults: the fault suite (faults/, build tag "faults"): the real daemon binary against a real
# sshd behind a proxy that counts, cuts and redirects connections; one FAULT line per scenario,
# a failed test per missed goal. Needs root and the hotdrop-test user, as .ci/run sets up.
# HOTDROP_FAULTS=reduced is the CI size (about 3 minutes); the full run takes about 20.
# FAULTS_ARGS sets sizes and goals, e.g. FAULTS_ARGS="-kills 30 -ratio-kill9 1.10 -seed 7";
# FAULTS_RUN picks scenarios by test name, e.g. FAULTS_RUN=Kill9.
FAULTS_RUN ?= .
.PHONY: faults
faults: build
	HOTDROP_BIN=$(CURDIR)/bin/hotdrop HOTDROP_FAULTS=$(HOTDROP_FAULTS) \
	  $(GO) test -tags faults -count=1 -v -timeout 90m -run '$(FAULTS_RUN)' ./faults/ -args $(FAULTS_ARGS)
