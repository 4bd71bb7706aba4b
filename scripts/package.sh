#!/usr/bin/env bash
# Packages one stage for CloudFormation: `chalice package --stage STAGE --merge-template
# infra/resources.yaml`, run on a staged copy of the project so the checkout is never touched, then
# infra/stage_template.py pins the Stage parameter and inlines the state machine definition.
#
#   scripts/package.sh [STAGE]          -> build/STAGE/sam.yaml + build/STAGE/deployment.zip
#
# The staged copy adds templates/ as vendor/templates/: Chalice ships only app.py, chalicelib/ and the
# contents of vendor/ (copied to the zip root), so the message templates land in /var/task/templates.
# The third-party libraries are installed into the staged vendor/ by pip for the Lambda runtime's Python and
# platform (manylinux2014_x86_64, wheels only), the way AWS documents building a package on another OS; the
# staged requirements.txt is empty, so Chalice ships them as they are. (Chalice's own dependency builder
# assumes the packaging Python is the runtime's: from 3.11 for python3.12 it dropped pydantic-core.)
# LEADLOOP_LAMBDA_RUNTIME picks the runtime: python3.12 by default, the oldest Lambda still accepts (it
# stopped creating python3.11 functions on 2026-07-31); the code itself is held to Python 3.11.
# LEADLOOP_PACKAGE_DEPS=none skips the libraries: no network, a complete template, and a zip that must never
# be deployed (CI lints that one; scripts/validate_infra.sh also builds and imports the real one).
# LEADLOOP_BUILD_DIR moves the output (default: build/). Prints the template path on its last line.
set -euo pipefail

STAGE="${1:-dev}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${LEADLOOP_BUILD_DIR:-${REPO_ROOT}/build}"
DEPS="${LEADLOOP_PACKAGE_DEPS:-requirements}"
RUNTIME="${LEADLOOP_LAMBDA_RUNTIME:-python3.12}"
PY="${REPO_ROOT}/.venv/bin/python"
CHALICE="${REPO_ROOT}/.venv/bin/chalice"

if [[ ! "${STAGE}" =~ ^[a-z][a-z0-9]{1,15}$ ]]; then
  echo "package: stage '${STAGE}' must be 2-16 lowercase letters or digits, starting with a letter" >&2
  exit 2
fi
if [[ "${DEPS}" != "requirements" && "${DEPS}" != "none" ]]; then
  echo "package: LEADLOOP_PACKAGE_DEPS must be 'requirements' or 'none', got '${DEPS}'" >&2
  exit 2
fi
if [[ ! "${RUNTIME}" =~ ^python3\.(1[2-9])$ ]]; then
  echo "package: LEADLOOP_LAMBDA_RUNTIME must be python3.12 or newer (Lambda refuses python3.11), got '${RUNTIME}'" >&2
  exit 2
fi
for needed in app.py chalicelib .chalice/config.json infra/resources.yaml; do
  if [[ ! -e "${REPO_ROOT}/${needed}" ]]; then
    echo "package: ${needed} is missing; nothing to package" >&2
    exit 3
  fi
done

OUT="${BUILD_DIR}/${STAGE}"
# Rebuilt on every run but for .chalice/deployments/, where Chalice caches what it built before.
PROJECT="${BUILD_DIR}/.project-${STAGE}-${DEPS}"

stage_project() {
  mkdir -p "${PROJECT}/.chalice"
  find "${PROJECT}" -mindepth 1 -maxdepth 1 ! -name .chalice -exec rm -rf {} +
  find "${PROJECT}/.chalice" -mindepth 1 -maxdepth 1 ! -name deployments -exec rm -rf {} +
  cp "${REPO_ROOT}/.chalice/config.json" "${REPO_ROOT}"/.chalice/policy-*.json "${PROJECT}/.chalice/"
  cp "${REPO_ROOT}/app.py" "${PROJECT}/"
  cp -R "${REPO_ROOT}/chalicelib" "${PROJECT}/"
  if [[ -d "${REPO_ROOT}/vendor" ]]; then
    cp -R "${REPO_ROOT}/vendor" "${PROJECT}/"
  fi
  mkdir -p "${PROJECT}/vendor"
  if [[ -d "${REPO_ROOT}/templates" ]]; then
    rm -rf "${PROJECT}/vendor/templates"
    cp -R "${REPO_ROOT}/templates" "${PROJECT}/vendor/templates"
  fi
  find "${PROJECT}" -name __pycache__ -type d -prune -exec rm -rf {} +
  : >"${PROJECT}/requirements.txt"
}

install_libraries() {
  "${PY}" -m pip install --quiet --disable-pip-version-check --no-compile \
    --target "${PROJECT}/vendor" --platform manylinux2014_x86_64 --implementation cp \
    --python-version "${RUNTIME#python}" --only-binary=:all: -r "${REPO_ROOT}/requirements.txt"
  find "${PROJECT}/vendor" -maxdepth 1 -name bin -type d -prune -exec rm -rf {} +
}

stage_project
if [[ "${DEPS}" == "requirements" ]]; then
  install_libraries
fi
rm -rf "${OUT}"
mkdir -p "$(dirname "${OUT}")"
# The app is imported while packaging; LEADLOOP_STAGE names its queue. Chalice needs a region to start.
(
  cd "${PROJECT}"
  LEADLOOP_STAGE="${STAGE}" AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" \
    "${CHALICE}" package --stage "${STAGE}" --merge-template "${REPO_ROOT}/infra/resources.yaml" "${OUT}"
)
"${PY}" "${REPO_ROOT}/infra/stage_template.py" finalize "${OUT}/sam.yaml" "${STAGE}" "${RUNTIME}"
if [[ "${DEPS}" == "none" ]]; then
  echo "package: built WITHOUT third-party libraries (LEADLOOP_PACKAGE_DEPS=none): for validation only" >&2
fi
echo "${OUT}/sam.yaml"
