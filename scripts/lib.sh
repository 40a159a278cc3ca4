# Shared helpers for scripts/*: the project venv and a moto_server we start and stop ourselves.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
RUN_DIR="$ROOT/.run"
MOTO_VERSION="${MOTO_VERSION:-5.2.5}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# The moto venv (moto, boto3, pytest, pyyaml), made once; kept apart from SAM/checkov (.venv-infra). Every
# package, dependencies included, at the version of scripts/constraints.txt; a changed constraints file
# reinstalls (the venv remembers the one it was made with).
CONSTRAINTS="$ROOT/scripts/constraints.txt"
ensure_venv() {
  if [ ! -x "$VENV/bin/moto_server" ] || ! "$VENV/bin/python" -c "import moto, boto3, pytest, yaml" 2>/dev/null \
     || ! cmp -s "$CONSTRAINTS" "$VENV/.tasksub-constraints"; then
    log "creating $VENV (moto[server]==$MOTO_VERSION, boto3, pytest, pyyaml; pinned by scripts/constraints.txt)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -c "$CONSTRAINTS" \
      "moto[server]==$MOTO_VERSION" boto3 pytest pyyaml
    cp "$CONSTRAINTS" "$VENV/.tasksub-constraints"
  fi
}

# The LocalStack venv for the filter-policy differential test (scripts/filter-diff): localstack-core,
# whose localstack.services.sns.filter imports without the server, and the modules that import needs.
# Pinned like the moto venv, by scripts/constraints-filter.txt; the system python3 (3.11) suffices.
FILTER_VENV="$ROOT/.venv-filter"
FILTER_CONSTRAINTS="$ROOT/scripts/constraints-filter.txt"
LOCALSTACK_VERSION="${LOCALSTACK_VERSION:-2026.3.0}"
ensure_filter_venv() {
  if ! "$FILTER_VENV/bin/python" -c "from localstack.services.sns.filter import SubscriptionFilter, FilterPolicyValidator" 2>/dev/null \
     || ! cmp -s "$FILTER_CONSTRAINTS" "$FILTER_VENV/.tasksub-constraints"; then
    log "creating $FILTER_VENV (localstack-core==$LOCALSTACK_VERSION; pinned by scripts/constraints-filter.txt)"
    python3 -m venv "$FILTER_VENV"
    "$FILTER_VENV/bin/pip" install --quiet --disable-pip-version-check -c "$FILTER_CONSTRAINTS" \
      "localstack-core==$LOCALSTACK_VERSION" botocore boto3 rolo jsonpatch
    cp "$FILTER_CONSTRAINTS" "$FILTER_VENV/.tasksub-constraints"
  fi
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Starts moto_server on a free 127.0.0.1 port; exports TASKSUB_MOTO_ENDPOINT and AWS_* for the emulator.
# scripts/moto_server.py is moto_server plus the cross-account SNS delivery moto lacks (see its header).
moto_start() {
  mkdir -p "$RUN_DIR"
  local port; port="$(free_port)"
  "$VENV/bin/python" "$ROOT/scripts/moto_server.py" -H 127.0.0.1 -p "$port" >"$RUN_DIR/moto.log" 2>&1 &
  MOTO_PID=$!
  echo "$MOTO_PID" >"$RUN_DIR/moto.pid"
  trap moto_stop EXIT
  export TASKSUB_MOTO_ENDPOINT="http://127.0.0.1:$port"
  local i
  for i in $(seq 1 100); do
    if curl -s -o /dev/null "$TASKSUB_MOTO_ENDPOINT/moto-api/"; then
      log "moto_server $MOTO_VERSION listening on $TASKSUB_MOTO_ENDPOINT (pid $MOTO_PID)"
      return 0
    fi
    kill -0 "$MOTO_PID" 2>/dev/null || { cat "$RUN_DIR/moto.log" >&2; echo "moto_server died" >&2; return 1; }
    sleep 0.1
  done
  echo "moto_server did not answer within 10 s" >&2
  return 1
}

moto_stop() {
  if [ -n "${MOTO_PID:-}" ] && kill -0 "$MOTO_PID" 2>/dev/null; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    log "moto_server stopped"
  fi
  MOTO_PID=""
}

# AWS client settings for the emulator (fixed fake credentials; nothing leaves 127.0.0.1).
use_emulator() {
  export AWS_ENDPOINT_URL="$TASKSUB_MOTO_ENDPOINT" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
  unset AWS_PROFILE AWS_SESSION_TOKEN
}
