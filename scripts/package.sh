#!/usr/bin/env bash
# Packages one stage for CloudFormation: `chalice package --stage STAGE --merge-template
# infra/resources.yaml`, run on a staged copy of the project so the checkout is never touched, then
# infra/stage_template.py pins the Stage parameter and inlines the state machine definition.
#
#   scripts/package.sh [STAGE]          -> build/STAGE/sam.yaml + build/STAGE/deployment.zip
#
# The staged copy adds templates/ as vendor/templates/: Chalice ships only app.py, chalicelib/ and the
# contents of vendor/ (copied to the zip root), so the message templates land in /var/task/templates.
# LEADLOOP_PACKAGE_DEPS=none packages with an empty requirements.txt: no network (no pip download), a
# complete template, and a zip without third-party libraries that must never be deployed (CI uses it).
# LEADLOOP_BUILD_DIR moves the output (default: build/). Prints the template path on its last line.
set -euo pipefail

STAGE="${1:-dev}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${LEADLOOP_BUILD_DIR:-${REPO_ROOT}/build}"
DEPS="${LEADLOOP_PACKAGE_DEPS:-requirements}"
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
for needed in app.py chalicelib .chalice/config.json infra/resources.yaml; do
  if [[ ! -e "${REPO_ROOT}/${needed}" ]]; then
    echo "package: ${needed} is missing; nothing to package" >&2
    exit 3
  fi
done

OUT="${BUILD_DIR}/${STAGE}"
# Kept between runs: Chalice caches the dependency zip in .chalice/deployments/ of the project it packages.
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
  if [[ "${DEPS}" == "none" ]]; then
    : >"${PROJECT}/requirements.txt"
  else
    cp "${REPO_ROOT}/requirements.txt" "${PROJECT}/"
  fi
}

stage_project
rm -rf "${OUT}"
mkdir -p "$(dirname "${OUT}")"
# The app is imported while packaging; LEADLOOP_STAGE names its queue. Chalice needs a region to start.
(
  cd "${PROJECT}"
  LEADLOOP_STAGE="${STAGE}" AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" \
    "${CHALICE}" package --stage "${STAGE}" --merge-template "${REPO_ROOT}/infra/resources.yaml" "${OUT}"
)
"${PY}" "${REPO_ROOT}/infra/stage_template.py" finalize "${OUT}/sam.yaml" "${STAGE}"
if [[ "${DEPS}" == "none" ]]; then
  echo "package: built WITHOUT third-party libraries (LEADLOOP_PACKAGE_DEPS=none): for validation only" >&2
fi
echo "${OUT}/sam.yaml"
