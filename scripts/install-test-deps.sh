#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian 12 machine. Safe to
# run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Go modules (the embedded Temporal server is large: download once).
go mod download

# Dovecot (imapd + doveadm) and isync (mbsync) for the Dovecot-backed tests
# and the transfer benchmark. Tests start private instances on free loopback
# ports; a system dovecot started by the package's postinst is left alone.
need_pkgs=()
# (/usr/sbin is not on a non-root PATH on Debian.)
{ command -v dovecot || [ -x /usr/sbin/dovecot ]; } >/dev/null 2>&1 || need_pkgs+=(dovecot-core)
command -v doveadm >/dev/null 2>&1 || need_pkgs+=(dovecot-core)
[ -x /usr/lib/dovecot/imap ] || need_pkgs+=(dovecot-imapd)
command -v mbsync >/dev/null 2>&1 || need_pkgs+=(isync)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    # Wait for another apt or dpkg run (an unattended upgrade) instead of failing at once.
    $SUDO apt-get -o DPkg::Lock::Timeout=300 update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends \
      $(printf '%s\n' "${need_pkgs[@]}" | sort -u)
  else
    echo "install-test-deps: apt-get not found; install ${need_pkgs[*]} by hand (Dovecot tests will skip)" >&2
  fi
fi

# Azurite (Azure Blob emulator) for the azblob staging tests, pinned in
# tools/azurite/package-lock.json. Reinstalled only when the lock file changes
# (a stamp in node_modules records the lock's hash). The tests find it at
# tools/azurite/node_modules/azurite; under CI (or MAILSHIFT_REQUIRE_AZURITE=1)
# they fail if it is missing, elsewhere they skip.
azurite_dir=tools/azurite
azurite_stamp=$azurite_dir/node_modules/.mailshift-lock.sha256
azurite_lock_sum=$(sha256sum "$azurite_dir/package-lock.json" | cut -d' ' -f1)
if [ -f "$azurite_dir/node_modules/azurite/dist/src/blob/main.js" ] &&
   [ "$(cat "$azurite_stamp" 2>/dev/null)" = "$azurite_lock_sum" ]; then
  : # installed and current
elif ! command -v npm >/dev/null 2>&1; then
  echo "install-test-deps: npm not found; install Node.js >= 20 and npm, then rerun (Azurite tests need it)" >&2
  exit 1
else
  # One retry: a registry hiccup or a half-extracted tree should not fail a run.
  (cd "$azurite_dir" && npm ci --no-audit --no-fund --loglevel=error) ||
    (sleep 5 && cd "$azurite_dir" && rm -rf node_modules && npm ci --no-audit --no-fund --loglevel=error)
  echo "$azurite_lock_sum" > "$azurite_stamp"
fi
