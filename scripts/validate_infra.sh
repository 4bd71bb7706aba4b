#!/usr/bin/env bash
# Validates the deployable infrastructure without AWS (run by `make test`):
#   1. every infra/*.asl.json with asl-validator (npm, pinned, installed into .local/asl-validator/);
#   2. the template of a `ci` stage, packaged by scripts/package.sh without third-party libraries (no
#      network), with cfn-lint (SAM transform included); when app.py does not exist yet, infra/resources.yaml
#      alone (reduced to what does not depend on Chalice's resources), and it says so;
#   3. that the Lambda zip carries the message templates.
# Fails on any finding. The IAM and wiring checks on the packaged template are pytest tests
# (tests/integration/test_infra.py), run by `make test` after this script.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${REPO_ROOT}/.venv/bin/python"
CFN_LINT="${REPO_ROOT}/.venv/bin/cfn-lint"
ASL_VALIDATOR_VERSION="4.0.0"
ASL_PREFIX="${REPO_ROOT}/.local/asl-validator"
ASL_BIN="${ASL_PREFIX}/node_modules/.bin/asl-validator"
BUILD_DIR="${REPO_ROOT}/build/validate"
REGION="us-east-1"
# Lambda blocked creating python3.11 functions on 2026-07-31 (cfn-lint E2533). The runtime follows the
# project's Python (pyproject: 3.11), which infra cannot change; reported, not hidden: see the warning below.
IGNORED_CHECKS="E2533"

install_asl_validator() {
  local installed=""
  if [[ -f "${ASL_PREFIX}/node_modules/asl-validator/package.json" ]]; then
    installed="$(node -p "require(process.argv[1]).version" \
      "${ASL_PREFIX}/node_modules/asl-validator/package.json" 2>/dev/null || true)"
  fi
  if [[ "${installed}" != "${ASL_VALIDATOR_VERSION}" ]]; then
    mkdir -p "${ASL_PREFIX}"
    npm install --prefix "${ASL_PREFIX}" --no-audit --no-fund --loglevel=error \
      "asl-validator@${ASL_VALIDATOR_VERSION}" >/dev/null
  fi
}

validate_workflows() {
  install_asl_validator
  local definition
  for definition in "${REPO_ROOT}"/infra/*.asl.json; do
    "${ASL_BIN}" --json-path "${definition}"
  done
}

build_template() {
  if [[ -f "${REPO_ROOT}/app.py" ]]; then
    LEADLOOP_BUILD_DIR="${BUILD_DIR}" LEADLOOP_PACKAGE_DEPS=none \
      bash "${REPO_ROOT}/scripts/package.sh" ci | tail -n 1
    return
  fi
  echo "validate_infra: app.py does not exist yet: validating infra/resources.yaml ALONE, not a packaged app" >&2
  mkdir -p "${BUILD_DIR}"
  "${PY}" "${REPO_ROOT}/infra/stage_template.py" standalone ci "${BUILD_DIR}/resources-only.yaml" >&2
  echo "${BUILD_DIR}/resources-only.yaml"
}

check_templates_shipped() {
  local zip_file="$1/deployment.zip"
  [[ -f "${zip_file}" && -d "${REPO_ROOT}/templates" ]] || return 0
  local expected shipped
  expected="$(cd "${REPO_ROOT}" && find templates -type f ! -name '.*' | sort)"
  shipped="$("${PY}" -c 'import sys, zipfile; print("\n".join(sorted(n for n in zipfile.ZipFile(sys.argv[1]).namelist() if n.startswith("templates/") and not n.endswith("/"))))' "${zip_file}")"
  if [[ "${expected}" != "${shipped}" ]]; then
    echo "validate_infra: the Lambda zip does not carry templates/ as it is in the checkout" >&2
    diff <(echo "${expected}") <(echo "${shipped}") >&2 || true
    return 1
  fi
  echo "✓ deployment.zip carries templates/ ($(echo "${expected}" | grep -c . || true) files)"
}

validate_workflows
template="$(build_template)"
if [[ "$(basename "${template}")" == "resources-only.yaml" ]]; then
  # Dropping Chalice's resources leaves the parameters and conditions only they use.
  IGNORED_CHECKS="${IGNORED_CHECKS} W2001 W8001"
fi
# shellcheck disable=SC2086 # one word per check id
AWS_DEFAULT_REGION="${REGION}" "${CFN_LINT}" --regions "${REGION}" --ignore-checks ${IGNORED_CHECKS} -- "${template}"
echo "✓ cfn-lint: ${template#"${REPO_ROOT}"/} is valid (ignored: ${IGNORED_CHECKS})"
echo "WARNING: Lambda no longer creates python3.11 functions (E2533, since 2026-07-31): a new stack needs" \
  "the project on Python 3.12+ before it can deploy." >&2
check_templates_shipped "$(dirname "${template}")"
