# README's second command, the everyday one: installs what the tests need
# (idempotent), checks formatting, vets, checks that the worker does not
# link the Temporal server, and runs every test: unit tests, replay of the
# shipped versions' histories, and the end-to-end tests on the embedded
# server, the scale test among them at 2,000 mailboxes (it continues as
# new several times with bounded history).
.PHONY: test demo build vet bench scale
test:
	bash scripts/test.sh

demo:
	go run ./starter demo

build:
	go build -o bin/ ./worker ./starter

vet:
	go vet ./...

# transferbench: medians of 3 runs of each tool (starter migrate end to end,
# the engine alone, mbsync, doveadm, the read limit) on the 2 GB corpus.
bench:
	go run ./cmd/transferbench --repeat 3
	go run ./cmd/stagingbench
	go run ./cmd/orgbench
	go run ./cmd/inventorybench

# The long run (CI runs it after make test; about 32 minutes on 2 cores):
# the scale test at an NHS trust's size, one organization of 50,000 tiny
# mailboxes, one Mailbox workflow each. It proves that every message
# arrives once and that each run's history stays bounded (under 10,000
# events) over at least 100 runs. MAILSHIFT_SCALE_MAILBOXES=N
# runs another size.
MAILSHIFT_SCALE_MAILBOXES ?= 50000
scale:
	MAILSHIFT_SCALE_MAILBOXES=$(MAILSHIFT_SCALE_MAILBOXES) go test -count=1 -timeout 75m -run TestLargeOrganization -v ./testsuite
