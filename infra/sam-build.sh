#!/usr/bin/env bash
# Build the Lambda bootstraps with `sam build` (BuildMethod rust-cargolambda) and check them.
#
#   infra/sam-build.sh [arm64|x86_64]
#
# Default architecture: arm64 when the rustup target aarch64-unknown-linux-gnu is installed or can
# be added, else x86_64. cargo-lambda and zig (ziglang wheel) are pip-installed into
# <repo>/.venv-infra and put on PATH; the build shares the repository's target/ directory.
# The sweeper is built when the crate has a `sweeper` binary. Otherwise the build uses
# infra/.sam-build.template.json, the template specialised for EnableSweeper=false (`sam build`
# ignores conditions and would fail on the missing binary); deploy that build with EnableSweeper=false.
# Output: infra/.aws-sam/build/<Function>/bootstrap and infra/.aws-sam/build/template.yaml.
# Deploy afterwards with: (cd infra && sam deploy --guided)  - see infra/README.md.
set -euo pipefail

INFRA="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$INFRA/.." && pwd)"
VENV_INFRA="$REPO/.venv-infra"
INFRA_PIP_SPEC="aws-sam-cli==1.170.0 checkov==3.2.459 cfn-lint==1.58.0"
BUILD_PIP_SPEC="cargo-lambda==1.9.2 ziglang==0.17.1"

export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_EC2_METADATA_DISABLED=true
export SAM_CLI_TELEMETRY=0
unset CARGO_TARGET_DIR  # share <repo>/target with the other builds

die() { printf 'infra/sam-build.sh: %s\n' "$*" >&2; exit 1; }

# --------------------------------------------------------------------------- tools
if [ ! -x "$VENV_INFRA/bin/sam" ] || [ "$(cat "$VENV_INFRA/.tasksub-spec" 2>/dev/null)" != "$INFRA_PIP_SPEC" ]; then
  [ -x "$VENV_INFRA/bin/python" ] || python3 -m venv "$VENV_INFRA"
  # shellcheck disable=SC2086
  "$VENV_INFRA/bin/pip" install -q --disable-pip-version-check $INFRA_PIP_SPEC
  printf '%s' "$INFRA_PIP_SPEC" > "$VENV_INFRA/.tasksub-spec"
fi
if [ ! -x "$VENV_INFRA/bin/cargo-lambda" ] || ! "$VENV_INFRA/bin/python" -c 'import ziglang' 2>/dev/null; then
  # shellcheck disable=SC2086
  "$VENV_INFRA/bin/pip" install -q --disable-pip-version-check $BUILD_PIP_SPEC
fi
export PATH="$VENV_INFRA/bin:$PATH"  # cargo-lambda, and python3 -m ziglang for zig

# --------------------------------------------------------------------------- architecture
arch="${1:-}"
if [ -z "$arch" ]; then
  if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu \
     || rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
    arch=arm64
  else
    arch=x86_64
  fi
fi
case "$arch" in
  arm64) rust_target=aarch64-unknown-linux-gnu; file_arch='ARM aarch64' ;;
  x86_64) rust_target=x86_64-unknown-linux-gnu; file_arch='x86-64' ;;
  *) die "architecture must be arm64 or x86_64, not $arch" ;;
esac
if ! rustup target list --installed 2>/dev/null | grep -qx "$rust_target"; then
  rustup target add "$rust_target" || die "rustup target $rust_target is not installed and cannot be added"
fi

# --------------------------------------------------------------------------- sweeper present?
functions=(OnTaskRunningFunction OnTaskStoppedFunction)
if grep -q 'name = "sweeper"' "$REPO/functions/Cargo.toml" 2>/dev/null || [ -f "$REPO/functions/src/bin/sweeper.rs" ]; then
  enable_sweeper=true
  functions+=(SweeperFunction)
else
  enable_sweeper=false
  echo "note: crate tasksub-functions has no sweeper binary yet: building with EnableSweeper=false"
fi
template=template.yaml
if [ "$enable_sweeper" = false ]; then
  template=.sam-build.template.json
  "$VENV_INFRA/bin/python" "$INFRA/tools/drop_condition.py" "$INFRA/template.yaml" "$INFRA/$template" SweeperEnabled
fi

# --------------------------------------------------------------------------- build
echo "sam build ($template): Architecture=$arch EnableSweeper=$enable_sweeper ($(cargo lambda --version 2>/dev/null | head -1))"
cd "$INFRA"
rm -rf .aws-sam/build
t0=$SECONDS
sam build --template-file "$template" \
  --parameter-overrides "Architecture=$arch" "EnableSweeper=$enable_sweeper" \
    "ClusterArns=arn:aws:ecs:$AWS_DEFAULT_REGION:123456789012:cluster/build" "AlarmTopicArn=NONE"
echo "sam build took $((SECONDS - t0))s"

# --------------------------------------------------------------------------- check
rc=0
for fn in "${functions[@]}"; do
  boot=".aws-sam/build/$fn/bootstrap"
  if [ ! -s "$boot" ]; then
    echo "MISSING $INFRA/$boot"; rc=1; continue
  fi
  if command -v file >/dev/null; then
    desc="$(file -b "$boot")"
    case "$desc" in
      *"$file_arch"*) echo "ok $boot: $desc" ;;
      *) echo "WRONG ARCH $boot: $desc (want $file_arch)"; rc=1 ;;
    esac
  else
    echo "ok $boot ($(wc -c < "$boot") bytes)"
  fi
done
[ "$enable_sweeper" = true ] || [ ! -e .aws-sam/build/SweeperFunction/bootstrap ] || echo "note: SweeperFunction built although disabled"
if [ $rc -eq 0 ]; then
  echo "sam-build: ${#functions[@]} passed, 0 failed"
else
  echo "sam-build: FAILED"
fi
exit $rc
