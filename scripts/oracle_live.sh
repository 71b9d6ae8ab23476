#!/usr/bin/env bash
# Run the live Oracle tests against a throwaway container (compose.oracle.yml).
#
#   scripts/oracle_live.sh                  # Oracle Database Free 23ai, then pytest -m oracle
#   scripts/oracle_live.sh --db xe          # Oracle Database XE 21c instead
#   scripts/oracle_live.sh --keep           # leave the container running afterwards
#   scripts/oracle_live.sh -- python scripts/bench_oracle.py --records 200000
#   scripts/oracle_live.sh --dry-run        # print what would run; needs no Docker
#
# Starts the service, waits until it is healthy and the test user can log in,
# exports SPOOL_TARGET_TEST_ORACLE_DSN, _USER and _PASSWORD, runs the command
# (default: pytest -m oracle) from the repository root, then removes the
# container unless --keep. Options: --timeout SECONDS (to become healthy,
# default 600). Python: $PYTHON, else .venv/bin/python, else python3.
# Exit status: the command's; 2 bad usage; 3 Docker missing or not running;
# 4 the database did not start or never became ready.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMPOSE_FILE="$ROOT/compose.oracle.yml"
# Both must match APP_USER and APP_USER_PASSWORD in compose.oracle.yml (a test checks it).
APP_USER=spool
APP_USER_PASSWORD=spool_test_pw

db=free
keep=0
dry_run=0
timeout=600
command=()

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
say() { echo "oracle_live: $*" >&2; }
die() {
  local code=$1
  shift
  say "$*"
  exit "$code"
}
needs_value() { [[ $# -ge 2 && -n "$2" ]] || die 2 "$1 needs a value (see --help)"; }

while (($#)); do
  case "$1" in
    --db) needs_value "$@"; db=$2; shift 2 ;;
    --db=*) db=${1#--db=}; shift ;;
    --timeout) needs_value "$@"; timeout=$2; shift 2 ;;
    --timeout=*) timeout=${1#--timeout=}; shift ;;
    --keep) keep=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; command=("$@"); break ;;
    *) die 2 "unknown argument '$1' (see --help; a command to run goes after --)" ;;
  esac
done

# Host ports and services: compose.oracle.yml; service names: the images' default PDBs.
case "$db" in
  free) service=oracle-free port=1521 pdb=FREEPDB1 label="Oracle Database Free 23ai" ;;
  xe) service=oracle-xe port=1522 pdb=XEPDB1 label="Oracle Database XE 21c" ;;
  *) die 2 "--db is free or xe, not '$db'" ;;
esac
[[ "$timeout" =~ ^[1-9][0-9]*$ ]] || die 2 "--timeout takes whole seconds, not '$timeout'"

python=${PYTHON:-}
if [[ -z "$python" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then python="$ROOT/.venv/bin/python"; else python=python3; fi
fi
((${#command[@]})) || command=("$python" -m pytest -m oracle -rs)

export SPOOL_TARGET_TEST_ORACLE_DSN="127.0.0.1:$port/$pdb"
export SPOOL_TARGET_TEST_ORACLE_USER="$APP_USER"
export SPOOL_TARGET_TEST_ORACLE_PASSWORD="$APP_USER_PASSWORD"

compose() { docker compose -f "$COMPOSE_FILE" "$@"; }
remove_hint="docker compose -f $COMPOSE_FILE rm -s -f -v $service"

if ((dry_run)); then
  # One key=value per line, for people and for tests/test_oracle_setup.py.
  echo "service=$service"
  echo "label=$label"
  echo "SPOOL_TARGET_TEST_ORACLE_DSN=$SPOOL_TARGET_TEST_ORACLE_DSN"
  echo "SPOOL_TARGET_TEST_ORACLE_USER=$SPOOL_TARGET_TEST_ORACLE_USER"
  echo "SPOOL_TARGET_TEST_ORACLE_PASSWORD=$SPOOL_TARGET_TEST_ORACLE_PASSWORD"
  echo "start=docker compose -f $COMPOSE_FILE up -d $service"
  echo "wait=$python $ROOT/scripts/oracle_wait.py --timeout 300"
  echo "run=${command[*]}"
  if ((keep)); then echo "remove=(kept)"; else echo "remove=$remove_hint"; fi
  exit 0
fi

command -v docker >/dev/null 2>&1 ||
  die 3 "Docker is not installed (no 'docker' command). Install Docker, or point SPOOL_TARGET_TEST_ORACLE_DSN, _USER and _PASSWORD at an Oracle of your own and run: $python -m pytest -m oracle"
if ! problem=$(docker info 2>&1 >/dev/null); then
  die 3 "cannot reach the Docker daemon; start Docker (or set DOCKER_HOST) and run this again. docker info said: ${problem%%$'\n'*}"
fi
docker compose version >/dev/null 2>&1 ||
  die 3 "Docker Compose v2 is missing ('docker compose' does not run). Install the Docker Compose plugin and run this again."

# shellcheck disable=SC2329  # it runs from the EXIT trap below
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if ((keep)); then
    say "$service keeps running at $SPOOL_TARGET_TEST_ORACLE_DSN (user $APP_USER). Remove it with: $remove_hint"
  else
    say "removing $service"
    compose rm -s -f -v "$service" >/dev/null 2>&1 || say "could not remove $service; remove it with: $remove_hint"
  fi
  exit "$status"
}
trap 'cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail_start() {
  say "last lines of the $service log:"
  compose logs --no-color --tail 40 "$service" >&2 || true
  die 4 "$*"
}

say "starting $label ($service; the first run also pulls its image)"
compose up -d "$service" || die 4 "docker compose could not start $service (see above). A port already in use? $service publishes 127.0.0.1:$port."
container=$(compose ps -a -q "$service")
[[ -n "$container" ]] || fail_start "docker compose started no container for $service"

deadline=$((SECONDS + timeout))
next_note=$((SECONDS + 30))
while :; do
  state=$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$container") ||
    fail_start "cannot inspect the $service container ($container)"
  case "$state" in
    "running healthy") break ;;
    "running starting") ;;
    *) fail_start "$service is '$state' instead of 'running healthy'" ;;
  esac
  ((SECONDS < deadline)) || fail_start "$service is not healthy after $timeout s (--timeout to wait longer)"
  if ((SECONDS >= next_note)); then
    say "still waiting for $service to become healthy ($((SECONDS - deadline + timeout)) s)"
    next_note=$((SECONDS + 30))
  fi
  sleep 3
done
say "$service is healthy; waiting until $APP_USER can log in to $SPOOL_TARGET_TEST_ORACLE_DSN"
"$python" "$ROOT/scripts/oracle_wait.py" --timeout 300 || fail_start "$APP_USER cannot log in to $SPOOL_TARGET_TEST_ORACLE_DSN"

cd "$ROOT"
say "running: ${command[*]}"
set +e
"${command[@]}"
status=$?
set -e
exit "$status"
