# README's second command. Installs what the tests need (idempotent), then
# vets and runs every test.
.PHONY: test demo build vet bench scale
test:
	bash scripts/test.sh

demo:
	go run ./starter demo

build:
	go build -o bin/ ./worker ./starter

vet:
	go vet ./...

bench:
	go run ./cmd/transferbench
	go run ./cmd/stagingbench
	go run ./cmd/orgbench
	go run ./cmd/inventorybench

# The scale test at NHS trust size: one organization of 50,000 tiny
# mailboxes (250,000 Mailbox workflows; hours on 2 cores).
scale:
	MAILSHIFT_SCALE_MAILBOXES=50000 go test -count=1 -timeout 24h -run TestLargeOrganization -v ./testsuite
