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

# Only the scale test (make test runs it too): one organization of 50,000
# tiny mailboxes, one Mailbox workflow each; MAILSHIFT_SCALE_MAILBOXES=N
# runs another size.
scale:
	go test -count=1 -timeout 75m -run TestLargeOrganization -v ./testsuite
