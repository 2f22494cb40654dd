#!/usr/bin/env bash
# Screenshots of the Temporal Web UI as an operator sees it during a
# mailshift migration, for docs/img/. It runs the demo (embedded Temporal and
# Web UI) on loopback ports of its own, waits until every organization has
# ended, and photographs the organizations list and one organization's page
# with headless Chromium (Debian's `chromium`, installed if missing).
#
#   scripts/screenshots.sh [OUTDIR]        (default docs/img)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/img}
mkdir -p "$out"

if ! command -v chromium >/dev/null 2>&1; then
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get -o DPkg::Lock::Timeout=300 update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends chromium
fi

work=$(mktemp -d)
frontend=127.0.0.1:17233
ui=127.0.0.1:18233
log=$work/demo.log
go build -o "$work/starter" ./starter
st() { "$work/starter" "$@" --address "$frontend"; }
# Manual approval, so the list shows the states an operator meets: one
# organization approved and completed, one paused while it waits for its
# approval, one rolled back by an operator (listed as Failed).
"$work/starter" demo --keep --approval manual --workdir "$work/demo" --temporal-addr "$frontend" --ui-addr "$ui" \
  --concurrency 4 >"$log" 2>&1 &
demo=$!
trap 'kill $demo 2>/dev/null; wait $demo 2>/dev/null; rm -rf "$work"' EXIT

# count PHASE: organizations in that phase.
count() { st status --phase "$1" --output json 2>/dev/null | grep -o '"phase": *"[A-Za-z]*"' | grep -c "$1" || true; }
waitfor() { # PHASE N
  for _ in $(seq 1 600); do
    [ "$(count "$1")" -ge "$2" ] && return 0
    kill -0 $demo 2>/dev/null || { cat "$log"; echo "screenshots: the demo exited early" >&2; exit 1; }
    sleep 1
  done
  tail -20 "$log"; echo "screenshots: fewer than $2 organizations reached $1 in 10 minutes" >&2; exit 1
}
waitfor AwaitingCutover 3
st approve --approver screenshots --reason "docs screenshot" RXH >/dev/null
st pause --approver screenshots --reason "docs screenshot" GP7 >/dev/null
st rollback --approver screenshots --reason "docs screenshot" CH1 >/dev/null
waitfor Completed 1
waitfor RolledBack 1
org=RXH

# A running workflow's page long-polls its history, so virtual time never
# runs out there: only the list and finished organizations are shot.
shoot() { # URL FILE
  timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/chrome" --hide-scrollbars --window-size=1440,1000 \
    --virtual-time-budget=20000 --screenshot="$2" "$1" >/dev/null 2>&1 || true
  [ -s "$2" ] || { echo "screenshots: chromium wrote no $2" >&2; exit 1; }
  echo "screenshots: $2 ($(stat -c %s "$2") bytes) from $1"
}
shoot "http://$ui/namespaces/default/workflows?query=WorkflowType%3D%22Organization%22" "$out/ui-organizations.png"
shoot "http://$ui/namespaces/default/workflows/org%2F$org" "$out/ui-organization.png"
