#!/usr/bin/env bash
# Make a Docker engine reachable for the node-failure tests (tests/k8s/test_k8s_nodefailure.py).
#
# Idempotent: does nothing when `docker info` already answers. Otherwise installs Debian's
# docker.io (dockerd + containerd + runc) and busybox-static (the stand-in "kind node" image is
# made from its binary with `docker import`) when they are missing, then starts dockerd in the
# background with a configuration that works inside a container (no bridge, no iptables; the
# overlay2 storage driver, or vfs when overlay mounts are not allowed). Logs: $LOG.
# Exit 0 when the engine answers, 1 otherwise (the tests then skip with the reason).
set -uo pipefail

LOG="${CHAOSML_DOCKERD_LOG:-/tmp/chaosml-dockerd.log}"
WAIT_S="${CHAOSML_DOCKERD_WAIT_S:-30}"

engine_up() { timeout 10 docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_up; then
  echo "docker: engine already running" >&2
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "docker: no engine answers and this is not root: cannot install or start dockerd" >&2
  exit 1
fi

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || need+=(busybox-static)
if [ "${#need[@]}" -gt 0 ]; then
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
  echo "docker: starting dockerd (storage driver $1), log $LOG" >&2
  setsid dockerd --storage-driver="$1" --iptables=false --ip6tables=false --bridge=none \
    --host=unix:///var/run/docker.sock >>"$LOG" 2>&1 < /dev/null &
  for _ in $(seq 1 "$WAIT_S"); do
    engine_up && return 0
    kill -0 $! 2>/dev/null || return 1
    sleep 1
  done
  kill $! 2>/dev/null
  return 1
}

# a dockerd that is running but not answering yet (started by an earlier call) gets its time
if pgrep -x dockerd >/dev/null 2>&1; then
  for _ in $(seq 1 "$WAIT_S"); do engine_up && exit 0; sleep 1; done
  echo "docker: a dockerd process runs but does not answer; see $LOG" >&2
  exit 1
fi

start_dockerd overlay2 || { sleep 1; start_dockerd vfs; } || {
  echo "docker: dockerd did not start; last log lines:" >&2
  tail -n 15 "$LOG" >&2
  exit 1
}
echo "docker: engine running" >&2
exit 0
