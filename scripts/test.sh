#!/usr/bin/env bash
# The project's test command (make test). .ci/run runs it, then make scale.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
# The production worker must not carry the Temporal server.
if go list -deps ./worker | grep -q '^go.temporal.io/server'; then
  echo "worker links go.temporal.io/server" >&2
  exit 1
fi
go test -count=1 -timeout 30m ./...
