# README's second command. Installs what the tests need (idempotent), then
# vets and runs every test.
.PHONY: test demo build vet bench
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
