#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian 12 machine. Safe to
# run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Go modules (the embedded Temporal server is large: download once).
go mod download
