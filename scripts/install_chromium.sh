#!/usr/bin/env bash
# Installs what the console's real-browser tests (tests/browser/) need, the way
# scripts/install_dynamodb_local.sh installs Java: Debian's Chromium when /usr/bin/chromium is missing, and
# the pinned npm packages of package-lock.json (axe-core, injected into each page) into node_modules/.
# Idempotent: a second run changes nothing. No browser is ever downloaded by Playwright (no `playwright
# install`); the tests launch /usr/bin/chromium through Playwright's executable_path.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHROMIUM="${LEADLOOP_CHROMIUM:-/usr/bin/chromium}"

install_chromium() {
  if [[ -x "${CHROMIUM}" ]]; then
    return
  fi
  echo "chromium not found at ${CHROMIUM}: installing Debian's chromium" >&2
  local sudo=""
  if [[ "$(id -u)" -ne 0 ]]; then
    sudo="sudo"
  fi
  ${sudo} apt-get update >&2
  DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y --no-install-recommends chromium fonts-dejavu-core >&2
}

# node_modules/ matches package-lock.json once `npm ci` has run; npm writes its own copy of the lock there.
install_node_packages() {
  if [[ -f "${REPO_ROOT}/node_modules/.package-lock.json" \
        && "${REPO_ROOT}/node_modules/.package-lock.json" -nt "${REPO_ROOT}/package-lock.json" ]]; then
    return
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm not found: install Node.js (which ships npm) to fetch the pinned axe-core" >&2
    exit 1
  fi
  (cd "${REPO_ROOT}" && npm ci --ignore-scripts --no-audit --no-fund >&2)
}

install_chromium
install_node_packages
echo "${CHROMIUM}"
