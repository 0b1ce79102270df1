#!/usr/bin/env bash
# Build what a real Kubernetes node needs on this machine and cache it, for
# tests/k8s/realnode.py (the real-node fixtures) and `python tests/k8s/realnode.py up`:
#   - kubelet and kube-proxy v1.20.2 from the patched source tree that
#     build-control-plane.sh leaves in ${CHAOSML_K8S_CACHE:-~/.cache/chaosml/k8s}/<version>/tree,
#     installed next to the control-plane binaries (<version>/bin);
#   - the pause image's static binary (rootfs tar) and the Debian bookworm Python
#     base rootfs tar (mmdebstrap; the packages of node-rootfs-packages.txt, python3 and
#     stress-ng among them; the tar's name carries that list's key), under
#     ${CHAOSML_NODE_CACHE:-~/.cache/chaosml/node};
#   - the wheels the project image installs offline (pip wheel into <node cache>/wheels/<key>);
#   - with --kserve (optional; CI passes it): the wheels of the bring-your-own KServe example's image
#     (manifests/examples/byo-kserve/requirements.txt: kserve, scikit-learn, joblib), pip download
#     for the image's Python 3.11.2 into <node cache>/kserve-wheels/<key>.
# The Docker images themselves are imported/built by realnode.py into its own engine.
#
# Idempotent and cached; one build at a time (the control-plane build's lock).
# Progress goes to stderr; stdout gets `KEY=VALUE` lines (BIN, PAUSE_TAR, ROOTFS_TAR, WHEELS,
# and KSERVE_WHEELS with --kserve).
# See /work/shared/k8s-real-node.md for the facts behind each step.
set -euo pipefail

log() { printf '[build-node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
NODE_CACHE="${CHAOSML_NODE_CACHE:-$HOME/.cache/chaosml/node}"
PY="${CHAOSML_PYTHON:-python3}"
DEB_PACKAGES=(docker.io iptables conntrack gcc libc6-dev mmdebstrap)
KSERVE=0
for arg in "$@"; do
    case "$arg" in
        --kserve) KSERVE=1 ;;
        *) die "unknown argument $arg (usage: build-node.sh [--kserve])" ;;
    esac
done

[[ "$(id -u)" == 0 ]] || die "a real node needs root (dockerd, kubelet, iptables, sysctls)"

# --- 1. Debian packages and the control plane (its build leaves the patched tree) ---
missing=()
for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
mkdir -p "$NODE_CACHE"

# --- 2. kubelet + kube-proxy from the patched tree ---------------------------------
build_node_binaries() {
    BIN="$(bash "$HERE/build-control-plane.sh")"
    local VDIR VERSION TREE
    VDIR="$(dirname "$BIN")"
    VERSION="$(basename "$VDIR")"
    TREE="$VDIR/tree"
    printf '%s\n' "$BIN" >"$BIN_FILE"
    [[ -x "$BIN/kubelet" && -x "$BIN/kube-proxy" ]] && return 0
    exec 9>"$VDIR/.build.lock"
    flock 9
    if [[ -x "$BIN/kubelet" && -x "$BIN/kube-proxy" ]]; then exec 9>&-; return 0; fi
    [[ -f "$TREE/.patched" ]] || die "no patched tree in $TREE (build-control-plane.sh keeps it)"
    local upstream="${VERSION#*:}" major minor ldflags pkg c t0
    upstream="${upstream##*really}"; upstream="${upstream%%-*}"; upstream="${upstream%%+*}"
    major="${upstream%%.*}"; minor="${upstream#*.}"; minor="${minor%%.*}"
    ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $pkg.gitVersion=v$upstream -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
        ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    (
        cd "$TREE"
        export GOCACHE="$VDIR/gocache" GOPATH="$VDIR/gopath"
        export GO111MODULE=on GOFLAGS=-mod=vendor GOPROXY=off CGO_ENABLED=0
        for c in kubelet kube-proxy; do
            [[ -x "$BIN/$c" ]] && continue
            log "go build ./cmd/$c"
            t0=$SECONDS
            go build -trimpath -ldflags "$ldflags" -o "$BIN/.$c.tmp" "./cmd/$c"
            mv -f "$BIN/.$c.tmp" "$BIN/$c"
            log "$c built in $((SECONDS - t0)) s"
        done
    )
    exec 9>&-
}

# --- 3. The pause image's rootfs: a static program that sleeps until SIGTERM/SIGINT ---
build_pause() {
    local dir="$NODE_CACHE/pause"
    [[ -f "$dir/pause.tar" ]] && return 0
    mkdir -p "$dir/root"
    cat >"$dir/pause.c" <<'EOF'
#include <signal.h>
#include <unistd.h>
static void done(int sig) { (void)sig; _exit(0); }
int main(void) {
    signal(SIGTERM, done);
    signal(SIGINT, done);
    for (;;) pause();
}
EOF
    gcc -static -O2 -o "$dir/root/pause" "$dir/pause.c"
    tar -C "$dir/root" -cf "$dir/pause.tar.tmp" pause
    mv -f "$dir/pause.tar.tmp" "$dir/pause.tar"
    log "pause rootfs: $dir/pause.tar"
}

# --- 4. The Python base rootfs (Debian bookworm minbase + node-rootfs-packages.txt) ----
# the packages, comma-separated, and their key (realnode.py's rootfs_key computes the same)
ROOTFS_INCLUDE="$(grep -vE '^[[:space:]]*(#|$)' "$HERE/node-rootfs-packages.txt" | paste -sd, -)"
ROOTFS_KEY="$(printf '%s' "$ROOTFS_INCLUDE" | sha256sum | cut -c1-12)"
ROOTFS_TAR="$NODE_CACHE/rootfs/debian-python-bookworm-$ROOTFS_KEY.tar"

apt_mirror_lines() {
    # one "deb URI SUITE COMPONENTS" line per suite of the machine's `Types: deb` stanzas
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        awk 'BEGIN { RS = "" } /(^|\n)Types:[ \t]*deb[ \t]*(\n|$)/ {
                uri = ""; suites = ""; comps = ""
                n = split($0, lines, "\n")
                for (i = 1; i <= n; i++) {
                    if (lines[i] ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", lines[i]); split(lines[i], u, " "); uri = u[1] }
                    if (lines[i] ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", lines[i]); suites = lines[i] }
                    if (lines[i] ~ /^Components:/) { sub(/^Components:[ \t]*/, "", lines[i]); comps = lines[i] }
                }
                m = split(suites, s, " ")
                for (j = 1; j <= m; j++) print "deb " uri " " s[j] " " comps
            }' "$f"
    done
    grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null || true
}

build_rootfs() {
    local dir="$NODE_CACHE/rootfs" tar="$ROOTFS_TAR" t0
    [[ -f "$tar" ]] && return 0
    mkdir -p "$dir"
    mapfile -t mirrors < <(apt_mirror_lines | grep -E ' bookworm(-updates|-security)? ')
    ((${#mirrors[@]})) || die "no bookworm deb lines in the machine's apt sources"
    log "mmdebstrap bookworm ($ROOTFS_INCLUDE) from ${#mirrors[@]} apt lines"
    t0=$SECONDS
    # (mmdebstrap picks the output format from the name: keep the .tar suffix)
    rm -rf "$dir/partial-$ROOTFS_KEY.tar"
    mmdebstrap --quiet --variant=minbase --include="$ROOTFS_INCLUDE" \
        bookworm "$dir/partial-$ROOTFS_KEY.tar" "${mirrors[@]}" >&2
    mv -f "$dir/partial-$ROOTFS_KEY.tar" "$tar"
    log "rootfs $tar ($(du -h "$tar" | cut -f1)) in $((SECONDS - t0)) s"
}

# --- 5. Wheels for the project image (installed offline: docker build --network none) ---
wheels_key() {
    # the dependency list is what decides the wheel set
    sha256sum "$REPO/pyproject.toml" | cut -c1-16
}

build_wheels() {
    local dir="$NODE_CACHE/wheels/$(wheels_key)"
    if [[ -f "$dir/.complete" ]]; then printf '%s\n' "$dir"; return 0; fi
    rm -rf "$dir"
    mkdir -p "$dir"
    log "pip wheel (project dependencies) into $dir"
    "$PY" -m pip wheel --quiet --wheel-dir "$dir" "$REPO" >&2
    rm -f "$dir"/chaosml-*.whl
    # build requirements of `pip install .` (no build isolation index in the image) and
    # redis's dependency below Python 3.11.3 (the image has Debian's 3.11.2)
    "$PY" -m pip download --quiet --only-binary=:all: --dest "$dir" \
        'setuptools>=77' wheel async-timeout >&2
    touch "$dir/.complete"
    printf '%s\n' "$dir"
}

# --- 6. Wheels for the bring-your-own KServe example's image (optional: --kserve) ---------
KSERVE_REQUIREMENTS="$REPO/manifests/examples/byo-kserve/requirements.txt"

build_kserve_wheels() {
    # keyed by the requirements file (realnode.kserve_wheels_dir computes the same key)
    local dir="$NODE_CACHE/kserve-wheels/$(sha256sum "$KSERVE_REQUIREMENTS" | cut -c1-16)" t0
    if [[ -f "$dir/.complete" ]]; then printf '%s\n' "$dir"; return 0; fi
    rm -rf "$dir"
    mkdir -p "$dir"
    log "pip download (the KServe example's requirements) into $dir"
    t0=$SECONDS
    # binary wheels for the image's interpreter (Debian bookworm's Python 3.11.2, glibc 2.36)
    "$PY" -m pip download --quiet --only-binary=:all: --python-version 3.11.2 --dest "$dir" \
        -r "$KSERVE_REQUIREMENTS" >&2
    touch "$dir/.complete"
    log "kserve wheels ($(du -sh "$dir" | cut -f1)) in $((SECONDS - t0)) s"
    printf '%s\n' "$dir"
}

# the Go builds (control plane first, then the node) overlap the rootfs and wheels downloads
BIN_FILE="$(mktemp)"
trap 'rm -f "$BIN_FILE"' EXIT
build_node_binaries &
bin_pid=$!
build_pause
build_rootfs
WHEELS="$(build_wheels)"
KSERVE_WHEELS=""
if ((KSERVE)); then KSERVE_WHEELS="$(build_kserve_wheels)"; fi
wait "$bin_pid" || die "kubelet/kube-proxy build failed"
BIN="$(cat "$BIN_FILE")"
"$BIN/kubelet" --version >&2 || die "kubelet does not run"

printf 'BIN=%s\nPAUSE_TAR=%s\nROOTFS_TAR=%s\nWHEELS=%s\n' \
    "$BIN" "$NODE_CACHE/pause/pause.tar" "$ROOTFS_TAR" "$WHEELS"
if ((KSERVE)); then printf 'KSERVE_WHEELS=%s\n' "$KSERVE_WHEELS"; fi
