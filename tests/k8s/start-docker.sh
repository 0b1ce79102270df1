#!/usr/bin/env bash
# Make a Docker engine reachable for the node-failure tests (tests/k8s/test_k8s_nodefailure.py).
#
# Idempotent. Uses the engine of $DOCKER_HOST (or the default socket) when it answers; else the
# project's own dockerd: its own socket ($SOCK), data root ($DATA_ROOT), exec root, pidfile and log
# ($LOG), so another dockerd on this machine (another user's, the real-node tests') is neither
# reused nor a reason to give up. When ours is not running, installs Debian's docker.io (dockerd +
# containerd + runc) and busybox-static (the stand-in "kind node" image is made from its binary with
# `docker import`) when they are missing (CHAOSML_DOCKER_INSTALL=0: never), then starts dockerd in
# the background with a configuration that works inside a container (no bridge, no iptables; the
# overlay2 storage driver, or vfs when overlay mounts are not allowed).
# Prints DOCKER_HOST=<the engine's address> on stdout and exits 0 when the engine answers; exits 1
# otherwise, naming the log (the tests then skip with the reason).
set -uo pipefail

STATE="${CHAOSML_DOCKER_STATE:-/run/chaosml-docker}"
SOCK="${CHAOSML_DOCKER_SOCK:-$STATE/docker.sock}"
DATA_ROOT="${CHAOSML_DOCKER_ROOT:-/var/lib/chaosml-docker}"
PIDFILE="$STATE/docker.pid"
LOG="${CHAOSML_DOCKERD_LOG:-$STATE/dockerd.log}"
WAIT_S="${CHAOSML_DOCKERD_WAIT_S:-30}"

answers() { timeout 10 docker -H "$1" info >/dev/null 2>&1; }  # $1 = unix:///path

found() {
  echo "docker: engine answers at $1" >&2
  echo "DOCKER_HOST=$1"
  exit 0
}

command -v docker >/dev/null 2>&1 && answers "${DOCKER_HOST:-unix:///var/run/docker.sock}" && found "${DOCKER_HOST:-unix:///var/run/docker.sock}"
command -v docker >/dev/null 2>&1 && answers "unix://$SOCK" && found "unix://$SOCK"

mkdir -p "$STATE" "$(dirname "$LOG")" 2>/dev/null
touch "$LOG" 2>/dev/null

# our dockerd, started by an earlier call, running but not answering yet, gets its time
pid="$(cat "$PIDFILE" 2>/dev/null)"
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  for _ in $(seq 1 "$WAIT_S"); do answers "unix://$SOCK" && found "unix://$SOCK"; sleep 1; done
  echo "docker: our dockerd (pid $pid) runs but does not answer at unix://$SOCK; see $LOG" >&2
  exit 1
fi

if [ "$(id -u)" != 0 ]; then
  echo "docker: no engine answers and this is not root: cannot install or start dockerd" >&2
  exit 1
fi

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || need+=(busybox-static)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "${CHAOSML_DOCKER_INSTALL:-1}" = 0 ]; then
    echo "docker: ${need[*]} missing and CHAOSML_DOCKER_INSTALL=0" >&2
    exit 1
  fi
  echo "docker: installing ${need[*]} from Debian's registry" >&2
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -qq >/dev/null 2>&1 || true
  if ! timeout 600 apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
    echo "docker: apt-get install ${need[*]} failed" >&2
    exit 1
  fi
fi
command -v dockerd >/dev/null 2>&1 || { echo "docker: dockerd is missing after the install" >&2; exit 1; }

start_dockerd() {  # $1 = storage driver
  echo "docker: starting dockerd (storage driver $1) at unix://$SOCK, data root $DATA_ROOT, log $LOG" >&2
  rm -f "$SOCK"
  setsid dockerd --storage-driver="$1" --iptables=false --ip6tables=false --bridge=none \
    --host="unix://$SOCK" --data-root="$DATA_ROOT" --exec-root="$STATE/exec" --pidfile="$PIDFILE" \
    >>"$LOG" 2>&1 < /dev/null &
  local started=$!
  for _ in $(seq 1 "$WAIT_S"); do
    answers "unix://$SOCK" && return 0
    kill -0 "$started" 2>/dev/null || return 1
    sleep 1
  done
  kill "$started" 2>/dev/null
  return 1
}

start_dockerd overlay2 || { sleep 1; start_dockerd vfs; } || {
  echo "docker: dockerd did not start; last lines of $LOG:" >&2
  tail -n 15 "$LOG" >&2
  exit 1
}
found "unix://$SOCK"
