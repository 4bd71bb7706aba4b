#!/usr/bin/env bash
# Validates the deployable infrastructure without AWS (run by `make test`):
#   1. every infra/*.asl.json with asl-validator (npm, pinned, installed into .local/asl-validator/);
#   2. the template of a `ci` stage, packaged by scripts/package.sh without third-party libraries (no
#      network), with cfn-lint (SAM transform included); when app.py does not exist yet, infra/resources.yaml
#      alone (reduced to what does not depend on Chalice's resources), and it says so;
#   3. that the Lambda zip carries the message templates;
#   4. the real zip (the `ci` stage packaged with its libraries, which needs PyPI) under the Python of the
#      functions' Lambda runtime, found on PATH or in pyenv: scripts/check_artifact.py. Without that Python
#      the check is skipped with a warning, or fails when LEADLOOP_REQUIRE_ARTIFACT_CHECK=1 (.ci/run).
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
ARTIFACT_DIR="${REPO_ROOT}/build/artifact"
REGION="us-east-1"
IGNORED_CHECKS=""

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

# The interpreter for a runtime such as python3.12: on PATH, else the newest pyenv build of that version.
# (A pyenv shim is on PATH whether or not that version is selected, so each candidate must run.)
runtime_python() {
  local version="${1#python}" candidate
  local candidates=("$(command -v "python${version}" || true)")
  if command -v pyenv >/dev/null; then
    mapfile -t -O 1 candidates < <(ls -d "$(pyenv root)/versions/${version}".*/bin/"python${version}" 2>/dev/null \
      | sort -V -r)
  fi
  for candidate in "${candidates[@]}"; do
    if [[ -n "${candidate}" ]] && "${candidate}" -c 'pass' 2>/dev/null; then
      echo "${candidate}"
      return
    fi
  done
}

check_artifact() {
  local runtime="$1" python
  python="$(runtime_python "${runtime}")"
  if [[ -z "${python}" ]]; then
    if [[ "${LEADLOOP_REQUIRE_ARTIFACT_CHECK:-0}" == "1" ]]; then
      echo "validate_infra: no ${runtime} interpreter to check the Lambda zip with" >&2
      return 1
    fi
    echo "WARNING: no ${runtime} interpreter (PATH or pyenv): the Lambda zip was NOT checked on its runtime" >&2
    return 0
  fi
  local built
  built="$(LEADLOOP_BUILD_DIR="${ARTIFACT_DIR}" LEADLOOP_PACKAGE_DEPS=requirements \
    bash "${REPO_ROOT}/scripts/package.sh" ci | tail -n 1)"
  "${python}" -I -S "${REPO_ROOT}/scripts/check_artifact.py" "$(dirname "${built}")/deployment.zip" "${runtime}"
}

validate_workflows
template="$(build_template)"
if [[ "$(basename "${template}")" == "resources-only.yaml" ]]; then
  # Dropping Chalice's resources leaves the parameters and conditions only they use.
  IGNORED_CHECKS="${IGNORED_CHECKS} W2001 W8001"
fi
ignore=()
if [[ -n "${IGNORED_CHECKS}" ]]; then
  # shellcheck disable=SC2206 # one word per check id
  ignore=(--ignore-checks ${IGNORED_CHECKS})
fi
AWS_DEFAULT_REGION="${REGION}" "${CFN_LINT}" --regions "${REGION}" "${ignore[@]}" -- "${template}"
echo "✓ cfn-lint: ${template#"${REPO_ROOT}"/} is valid (ignored: ${IGNORED_CHECKS:-nothing})"
check_templates_shipped "$(dirname "${template}")"
if [[ "$(basename "${template}")" == "sam.yaml" ]]; then
  check_artifact "$(grep -m 1 -o 'Runtime: python3\.[0-9]*' "${template}" | cut -d ' ' -f 2)"
fi
