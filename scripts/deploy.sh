#!/usr/bin/env bash
# Deploys one stage to AWS as the CloudFormation stack `leadloop-STAGE` (never run in CI):
# scripts/package.sh STAGE, then `aws cloudformation package` (uploads the Lambda zip to S3) and
# `aws cloudformation deploy`. Prerequisites and teardown: infra/README.md.
#
#   LEADLOOP_DEPLOY_BUCKET=my-artifacts LEADLOOP_SES_FROM=nurture@example.com scripts/deploy.sh prod
#
# Required: AWS credentials and region in the environment (AWS_PROFILE / AWS_REGION ...);
#   LEADLOOP_DEPLOY_BUCKET  an S3 bucket in the same region for the packaged code;
#   LEADLOOP_SES_FROM       the sender address, verified in SES (address or its domain).
# Optional: LEADLOOP_SES_FROM_NAME, LEADLOOP_PUBLIC_URL, LEADLOOP_ALARM_EMAIL,
#   LEADLOOP_INGEST_RESERVED_CONCURRENCY (100; 0 in an account too small to reserve from: infra/README.md).
set -euo pipefail

STAGE="${1:?usage: scripts/deploy.sh STAGE}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="leadloop-${STAGE}"
AWS="${AWS_CLI:-aws}"

fail() {
  echo "deploy: $*" >&2
  exit 1
}

if [[ "${CI:-}" == "true" ]]; then
  fail "refusing to deploy from CI"
fi
[[ -n "${LEADLOOP_DEPLOY_BUCKET:-}" ]] || fail "set LEADLOOP_DEPLOY_BUCKET to an S3 bucket for the packaged code"
[[ -n "${LEADLOOP_SES_FROM:-}" ]] || fail "set LEADLOOP_SES_FROM to the verified SES sender address"
command -v "${AWS}" >/dev/null || fail "the AWS CLI ('${AWS}') is not installed"
"${AWS}" sts get-caller-identity >/dev/null || fail "no usable AWS credentials"

SECRETS_PARAMETER="/leadloop/${STAGE}/secrets"
"${AWS}" ssm get-parameter --name "${SECRETS_PARAMETER}" --query Parameter.Type --output text >/dev/null \
  || fail "create the SecureString parameter ${SECRETS_PARAMETER} first (infra/README.md, 'Secrets')"

# Never the validation-only build: a deployed zip needs its libraries.
TEMPLATE="$(LEADLOOP_PACKAGE_DEPS=requirements bash "${REPO_ROOT}/scripts/package.sh" "${STAGE}" | tail -n 1)"
OUT_DIR="$(dirname "${TEMPLATE}")"
"${AWS}" cloudformation package \
  --template-file "${TEMPLATE}" \
  --s3-bucket "${LEADLOOP_DEPLOY_BUCKET}" \
  --s3-prefix "${STACK}" \
  --output-template-file "${OUT_DIR}/packaged.yaml"

"${AWS}" cloudformation deploy \
  --template-file "${OUT_DIR}/packaged.yaml" \
  --stack-name "${STACK}" \
  --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
  --no-fail-on-empty-changeset \
  --parameter-overrides \
    "Stage=${STAGE}" \
    "SesFromAddress=${LEADLOOP_SES_FROM}" \
    "SesFromName=${LEADLOOP_SES_FROM_NAME:-}" \
    "PublicUrl=${LEADLOOP_PUBLIC_URL:-}" \
    "AlarmEmail=${LEADLOOP_ALARM_EMAIL:-}" \
    "CountInStream=${LEADLOOP_COUNT_IN_STREAM:-1}" \
    "IngestReservedConcurrency=${LEADLOOP_INGEST_RESERVED_CONCURRENCY:-100}"

"${AWS}" cloudformation describe-stacks --stack-name "${STACK}" \
  --query "Stacks[0].Outputs[].[OutputKey,OutputValue]" --output table
