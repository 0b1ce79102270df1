#!/usr/bin/env bash
# Build a real Kubernetes control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler v1.20.2) from Debian bookworm's `kubernetes` source package and
# cache the binaries under ${CHAOSML_K8S_CACHE:-$HOME/.cache/chaosml/k8s}/<version>/bin.
#
# Idempotent: a second run with the binaries present only checks them and prints
# the bin dir. Progress goes to stderr; the only line on stdout is the bin dir.
#
# Environment:
#   CHAOSML_K8S_CACHE   cache root (default: $HOME/.cache/chaosml/k8s)
#   CHAOSML_K8S_VERSION Debian source version to use (default: what apt offers)
#   CHAOSML_K8S_KUBECTL set to 1 to also build kubectl (optional, tests do not need it)
#   CHAOSML_K8S_REBUILD set to 1 to rebuild the binaries even if they exist
# See /work/shared/k8s-control-plane.md for the facts behind each step.
set -euo pipefail

log() { printf '[build-control-plane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

CACHE_ROOT="${CHAOSML_K8S_CACHE:-$HOME/.cache/chaosml/k8s}"
SRC_PKG=kubernetes
DEB_PACKAGES=(golang-go make rsync etcd-server golang-github-modern-go-reflect2-dev openssl)
COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler)
if [[ "${CHAOSML_K8S_KUBECTL:-0}" == 1 ]]; then
    COMPONENTS+=(kubectl)
fi

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || die "not root and no sudo: cannot install Debian packages"
    SUDO=(sudo)
fi

APT_UPDATED=0
apt_update_once() {
    if [[ "$APT_UPDATED" == 0 ]]; then
        log "apt-get update"
        "${SUDO[@]}" apt-get update -qq >&2
        APT_UPDATED=1
    fi
}

# --- 1. Debian packages -----------------------------------------------------
missing=()
for p in "${DEB_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    apt_update_once
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "${missing[@]}" >&2
fi

find_etcd() {
    local e
    e="$(command -v etcd 2>/dev/null || true)"
    [[ -z "$e" && -x /usr/bin/etcd ]] && e=/usr/bin/etcd
    [[ -n "$e" ]] || die "etcd not found (package etcd-server)"
    printf '%s\n' "$e"
}

# --- 2. Source version (from the deb-src index) -------------------------------
DEBSRC_FILE=/etc/apt/sources.list.d/chaosml-deb-src.sources
ensure_deb_src() {
    if grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        return 0
    fi
    local main=/etc/apt/sources.list.d/debian.sources
    [[ -f "$main" ]] || die "$main not found: add a deb-src entry for bookworm by hand"
    log "adding deb-src entries in $DEBSRC_FILE"
    # Keep only the 'Types: deb' stanzas, retyped as deb-src.
    awk 'BEGIN { RS = ""; ORS = "\n\n" } /(^|\n)Types:[ \t]*deb[ \t]*(\n|$)/ {
            sub(/Types:[ \t]*deb[ \t]*(\n|$)/, "Types: deb-src\n"); print }' "$main" |
        "${SUDO[@]}" tee "$DEBSRC_FILE" >/dev/null
    APT_UPDATED=0
}

source_version() {
    apt-cache showsrc "$SRC_PKG" 2>/dev/null | awk '/^Version:/ { print $2; exit }'
}

VERSION=""
# CHAOSML_K8S_VERSION pins the version (cache key) and skips the apt lookup.
if [[ -n "${CHAOSML_K8S_VERSION:-}" ]]; then
    VERSION="$CHAOSML_K8S_VERSION"
else
    VERSION="$(source_version || true)"
    if [[ -z "$VERSION" ]]; then
        # No deb-src index yet. Reuse a complete cached build if there is one.
        for d in "$CACHE_ROOT"/*/bin; do
            [[ -f "$d/.complete" ]] && VERSION="$(basename "$(dirname "$d")")"
        done
    fi
    if [[ -z "$VERSION" ]]; then
        ensure_deb_src
        apt_update_once
        VERSION="$(source_version)"
        [[ -n "$VERSION" ]] || die "apt-cache showsrc $SRC_PKG found nothing"
    fi
fi
log "kubernetes source version $VERSION"

VDIR="$CACHE_ROOT/$VERSION"
BIN="$VDIR/bin"
mkdir -p "$BIN"

have_all() {
    local c
    for c in "${COMPONENTS[@]}"; do
        [[ -x "$BIN/$c" ]] || return 1
    done
    return 0
}

if [[ "${CHAOSML_K8S_REBUILD:-0}" != 1 ]] && have_all; then
    ln -sf "$(find_etcd)" "$BIN/etcd"
    log "binaries already built: $BIN"
    printf '%s\n' "$BIN"
    exit 0
fi

# One build at a time per version (two CI jobs on one machine share the cache).
exec 9>"$VDIR/.build.lock"
if ! flock -n 9; then
    log "another build holds $VDIR/.build.lock; waiting"
    flock 9
fi
if [[ "${CHAOSML_K8S_REBUILD:-0}" != 1 ]] && have_all; then
    ln -sf "$(find_etcd)" "$BIN/etcd"
    log "binaries built by a concurrent run: $BIN"
    printf '%s\n' "$BIN"
    exit 0
fi

# --- 3. Source tarball ------------------------------------------------------
SRC_CACHE="$VDIR/src"
mkdir -p "$SRC_CACHE"
if ! ls "$SRC_CACHE"/"${SRC_PKG}"_*.orig.tar.* >/dev/null 2>&1; then
    ensure_deb_src
    apt_update_once
    log "apt-get source --download-only $SRC_PKG=$VERSION"
    (cd "$SRC_CACHE" && apt-get source -qq --download-only "$SRC_PKG=$VERSION" >&2)
fi
ORIG="$(ls "$SRC_CACHE"/"${SRC_PKG}"_*.orig.tar.* | head -n1)"

TREE="$VDIR/tree"
if [[ ! -f "$TREE/.patched" ]]; then
    rm -rf "$TREE" "$TREE.tmp"
    mkdir -p "$TREE.tmp"
    log "unpacking $(basename "$ORIG")"
    tar -xf "$ORIG" -C "$TREE.tmp"
    # The orig tarball has a single top-level directory.
    top="$(find "$TREE.tmp" -mindepth 1 -maxdepth 1 -type d | head -n1)"
    [[ -f "$top/go.mod" ]] || die "no go.mod in $top"
    mv "$top" "$TREE"
    rm -rf "$TREE.tmp"

    cd "$TREE"
    # Fix 1: Go >= 1.16 rejects inline wildcard replacement lines
    # ("# module => replacement") in vendor/modules.txt; move them to the end.
    log "fix 1: vendor/modules.txt wildcard replacements to the end"
    awk '/^# / && $3 == "=>" { tail = tail $0 "\n"; next } { print } END { printf "%s", tail }' \
        vendor/modules.txt >vendor/modules.txt.new
    mv vendor/modules.txt.new vendor/modules.txt

    # Fix 2: vendored modern-go/reflect2 v1.0.1 crashes under Go >= 1.18; use
    # Debian's 1.0.2.
    log "fix 2: vendored modern-go/reflect2 -> Debian's 1.0.2"
    R2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2
    R2_DST=vendor/github.com/modern-go/reflect2
    [[ -d "$R2_SRC" ]] || die "$R2_SRC missing (golang-github-modern-go-reflect2-dev)"
    find "$R2_DST" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
    for f in "$R2_SRC"/*.go "$R2_SRC"/*.s; do
        [[ -e "$f" ]] || continue
        [[ "$f" == *_test.go ]] && continue
        cp "$f" "$R2_DST/"
    done
    sed -i -E 's#(github\.com/modern-go/reflect2) v1\.0\.1#\1 v1.0.2#g' go.mod vendor/modules.txt
    grep -q 'github.com/modern-go/reflect2 v1.0.2' vendor/modules.txt || die "reflect2 bump failed"
    # go.sum has no entry for 1.0.2; with -mod=vendor it is not consulted for
    # vendored packages, but drop the stale lines to keep the tree consistent.
    sed -i '/github.com\/modern-go\/reflect2 v1.0.1/d' go.sum

    touch "$TREE/.patched"
fi
cd "$TREE"

export GOCACHE="$VDIR/gocache"
export GOPATH="$VDIR/gopath"
export GO111MODULE=on GOFLAGS=-mod=vendor GOPROXY=off CGO_ENABLED=0
mkdir -p "$GOCACHE" "$GOPATH"
log "$(go version)"

# Fix 3: pkg/generated/openapi/zz_generated.openapi.go is not in the tarball.
OPENAPI=pkg/generated/openapi/zz_generated.openapi.go
if [[ ! -s "$OPENAPI" ]]; then
    log "fix 3: make gen_openapi (generates $OPENAPI)"
    t0=$SECONDS
    make gen_openapi >&2
    [[ -s "$OPENAPI" ]] || die "make gen_openapi did not produce $OPENAPI"
    log "gen_openapi took $((SECONDS - t0)) s"
fi

# --- 4. Build -----------------------------------------------------------------
# Stamp the upstream version (e.g. 1.20.5+really1.20.2-1 -> v1.20.2) so that
# /version reports it instead of v0.0.0-master.
UPSTREAM="${VERSION#*:}"
UPSTREAM="${UPSTREAM##*really}"
UPSTREAM="${UPSTREAM%%-*}"
UPSTREAM="${UPSTREAM%%+*}"
MAJOR="${UPSTREAM%%.*}"
MINOR="${UPSTREAM#*.}"
MINOR="${MINOR%%.*}"
LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LDFLAGS+=" -X $pkg.gitVersion=v$UPSTREAM -X $pkg.gitMajor=$MAJOR -X $pkg.gitMinor=$MINOR"
    LDFLAGS+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
# Binaries built in this run are moved into place atomically; .complete marks
# a full set (used by the fast path above).
for c in "${COMPONENTS[@]}"; do
    if [[ "${CHAOSML_K8S_REBUILD:-0}" != 1 && -x "$BIN/$c" ]]; then
        log "$c already built"
        continue
    fi
    log "go build ./cmd/$c"
    t0=$SECONDS
    go build -trimpath -ldflags "$LDFLAGS" -o "$BIN/.$c.tmp" "./cmd/$c"
    mv -f "$BIN/.$c.tmp" "$BIN/$c"
    log "$c built in $((SECONDS - t0)) s"
done
ln -sf "$(find_etcd)" "$BIN/etcd"
touch "$BIN/.complete"
"$BIN/kube-apiserver" --version >&2 || true
log "done: $BIN"
printf '%s\n' "$BIN"
