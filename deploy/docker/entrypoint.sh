#!/usr/bin/env bash
# The container's entrypoint. With arguments it runs `camsync ARGS…` (e.g. `docker compose run --rm camsync doctor`);
# without, SYNC_MODE decides, with the meanings of the old agent's container:
#   daemon  `camsync worker`: run-all every SYNC_INTERVAL_SECONDS; SIGTERM stops it cleanly (exit 0)
#   cron    Debian's cron daemon running the shipped line (/etc/cron.d/camsync) every 5 minutes; needs the
#           container to start as root (cron runs the line as the camsync user)
#   once    one `camsync run-all` pass, then exit with its code (for an outside scheduler)
set -euo pipefail

CAMSYNC=${CAMSYNC_BIN:-/usr/local/bin/camsync}
ENV_FILE=/etc/camsync/camsync.env
LOG_DIR=/var/log/camsync
LOG_FILE=$LOG_DIR/camsync.log

die() {
  printf 'Error: %s.\n' "$1" >&2
  exit "${2:-4}"
}

# cron starts its jobs with an empty environment: hand them the container's settings through the env file that
# the shipped line reads (--env-file). Only camsync's settings are written, each single-quoted.
write_env_file() {
  install -d -m 0750 -o root -g camsync "$(dirname "$ENV_FILE")"
  python3 - "$ENV_FILE" <<'PY'
import os
import sys

from camsync.settings import settings_vars

names = {spec.env for _name, spec, _default in settings_vars()}
lines = []
for key in sorted(os.environ):
    if key in names:
        value = os.environ[key].replace("\\", "\\\\").replace("'", "\\'")
        lines.append(f"{key}='{value}'\n")
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
with os.fdopen(fd, "w") as handle:
    handle.writelines(lines)
PY
  chown root:camsync "$ENV_FILE"
  chmod 0640 "$ENV_FILE"
}

run_cron() {
  [ "$(id -u)" = 0 ] || die "SYNC_MODE=cron starts Debian's cron daemon, which must run as root (it runs the jobs as \
the camsync user). Start the container with --user root (compose: user: root), or use SYNC_MODE=daemon"
  write_env_file
  install -d -m 0750 -o camsync -g camsync "$LOG_DIR"
  touch "$LOG_FILE"
  chown camsync:camsync "$LOG_FILE"
  chmod 0640 "$LOG_FILE"
  # The runs' output goes to the log file (the shipped line's >>); follow it so that `docker logs` shows it.
  tail -n 0 -F "$LOG_FILE" &
  local tail_pid=$!
  cron -f &
  local cron_pid=$!
  trap 'kill -TERM "$cron_pid" 2>/dev/null || true' TERM INT
  local status=0
  wait "$cron_pid" || status=$?
  wait "$cron_pid" 2>/dev/null || true
  kill "$tail_pid" 2>/dev/null || true
  # Stopped by a signal: a clean stop, like the worker's.
  if [ "$status" -gt 128 ]; then
    status=0
  fi
  exit "$status"
}

if [ "$#" -gt 0 ]; then
  if [ "$1" = camsync ]; then
    shift
  fi
  exec "$CAMSYNC" "$@"
fi

case "${SYNC_MODE:-daemon}" in
  daemon) exec "$CAMSYNC" worker ;;
  once) exec "$CAMSYNC" --trigger cron run-all ;;
  cron) run_cron ;;
  *) die "SYNC_MODE must be daemon, cron or once, not '${SYNC_MODE}'" ;;
esac
