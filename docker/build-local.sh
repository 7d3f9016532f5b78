#!/usr/bin/env bash
# Build the toolkit image on a machine that reaches no container registry (an air-gapped
# cluster, a sandbox behind a TLS-intercepting proxy), with the legacy builder:
#
#   docker/build-local.sh [TAG]            # default tag: toolkit:local
#   DOCKERFILE=docker/inference.Dockerfile docker/build-local.sh toolkit-inference:local
#
# 1. a Debian base image made here: debootstrap + `docker import` (once; reused after),
# 2. this machine's CA bundle copied into docker/certs/ (so pip trusts the proxy, if any),
# 3. a wheelhouse in docker/wheels/: every wheel the package needs, fetched with THIS machine's
#    pip configuration (its local wheel folders and indexes), so the build itself installs
#    with `pip --no-index` and downloads nothing from PyPI,
# 4. `DOCKER_BUILDKIT=0 docker build --build-arg BASE_IMAGE=<that base> --build-arg PIP_NO_INDEX=1`.
#
# Needs root (debootstrap), a running dockerd, `debootstrap` (apt-get install debootstrap) and
# Debian's package mirror (apt inside the build installs python3). Settings, all optional:
#   BASE_TAG   base image tag                     (toolkit-base:bookworm)
#   SUITE      Debian release for the base        (bookworm: its python3 is 3.11)
#   MIRROR     Debian mirror                      (the first deb.debian.org-style URI apt uses)
#   CA_BUNDLE  CA bundle to trust in the build    (/etc/ssl/certs/ca-certificates.crt)
#   PYTHON     interpreter whose pip fills the wheelhouse (python3; must be 3.11 on x86_64)
#   NETWORK    network for RUN steps              (host)
#   DOCKERFILE which image, relative to the root  (Dockerfile; or docker/inference.Dockerfile)
#   REBUILD_BASE=1  debootstrap again even if the base image exists
set -euo pipefail

TAG="${1:-toolkit:local}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE_TAG="${BASE_TAG:-toolkit-base:bookworm}"
SUITE="${SUITE:-bookworm}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
PYTHON="${PYTHON:-python3}"
NETWORK="${NETWORK:-host}"
DOCKERFILE="${DOCKERFILE:-Dockerfile}"

say() { printf '\033[1m[build-local]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[build-local] error:\033[0m %s\n' "$*" >&2; exit 1; }

default_mirror() {
    # The Debian mirror apt already uses here (deb822 .sources or one-line sources.list).
    local uri
    uri="$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
        | grep -oE 'https?://[^ ]*/debian/?( |$)' | head -n1 | tr -d ' ')" || true
    echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR="${MIRROR:-$(default_mirror)}"

[[ -f "$ROOT/$DOCKERFILE" ]] || die "no $ROOT/$DOCKERFILE (DOCKERFILE is relative to the repository root)"
command -v docker >/dev/null || die "no docker client (apt-get install docker.io)"
docker info >/dev/null 2>&1 \
    || die "no Docker engine answers: start one (nohup dockerd >/tmp/dockerd.log 2>&1 &)"

started=$(date +%s)

# 1. The base image, made locally. minbase: apt, dpkg and bash, as small as debian:*-slim.
if [[ "${REBUILD_BASE:-0}" == 1 ]] || ! docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || die "no debootstrap (apt-get install debootstrap)"
    [[ $(id -u) == 0 ]] || die "debootstrap needs root to build the base image"
    rootfs="$(mktemp -d /var/tmp/toolkit-rootfs.XXXXXX)"
    trap 'rm -rf "$rootfs"' EXIT
    say "debootstrap $SUITE from $MIRROR into $rootfs"
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 \
        || { tail -n 20 "$rootfs.log" >&2; die "debootstrap failed (log: $rootfs.log)"; }
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
    say "docker import -> $BASE_TAG"
    tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' - "$BASE_TAG" >/dev/null
    rm -rf "$rootfs" "$rootfs.log"
    trap - EXIT
else
    say "base image $BASE_TAG exists (REBUILD_BASE=1 to make it again)"
fi

# 2. This machine's CA bundle (git-ignored in docker/certs/).
if [[ -f "$CA_BUNDLE" ]]; then
    # Only when it changed: a fresh copy would miss the builder's layer cache.
    cmp -s "$CA_BUNDLE" "$ROOT/docker/certs/local-ca-bundle.crt" \
        || cp "$CA_BUNDLE" "$ROOT/docker/certs/local-ca-bundle.crt"
    say "CA bundle $CA_BUNDLE -> docker/certs/local-ca-bundle.crt"
fi

# 3. The wheelhouse: the package's dependencies plus the build backend, as wheels. pip skips
# files already there, so a second build fetches nothing. The image's python3 must match.
version="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[[ "$version" == 3.11 ]] || die "$PYTHON is Python $version; the $SUITE image has 3.11 (set PYTHON)"
# The inference image needs only its two pinned packages (the ARG defaults in its Dockerfile).
dockerfile_arg() { sed -nE "s/^ARG $1=(.+)$/\1/p" "$ROOT/$DOCKERFILE" | head -n1; }
if [[ "$DOCKERFILE" == *inference* ]]; then
    wanted=("numpy==$(dockerfile_arg NUMPY_VERSION)" "onnxruntime==$(dockerfile_arg ONNXRUNTIME_VERSION)")
else
    wanted=("setuptools>=69" "$ROOT")
fi
say "wheelhouse docker/wheels/ (pip download with this machine's pip configuration)"
"$PYTHON" -m pip download --quiet --dest "$ROOT/docker/wheels" --prefer-binary \
    --only-binary=:all: "${wanted[@]}" \
    || die "pip download failed: the wheelhouse needs every dependency as a wheel"

# 4. The image, with the legacy builder (no buildx here), installing from the wheelhouse only.
commit="$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
    commit="$commit-dirty"
fi
pkg_version="$(sed -nE 's/^version = "([^"]+)"/\1/p' "$ROOT/pyproject.toml" | head -n1)"
say "DOCKER_BUILDKIT=0 docker build -f $DOCKERFILE -t $TAG (base $BASE_TAG, commit $commit)"
DOCKER_BUILDKIT=0 docker build \
    --file "$ROOT/$DOCKERFILE" \
    --network "$NETWORK" \
    --build-arg BASE_IMAGE="$BASE_TAG" \
    --build-arg PIP_NO_INDEX=1 \
    --build-arg VERSION="$pkg_version" \
    --build-arg VCS_REF="$commit" \
    --build-arg BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --tag "$TAG" \
    "$ROOT"

size="$(docker image inspect --format '{{.Size}}' "$TAG")"
say "built $TAG ($((size / 1024 / 1024)) MiB) in $(($(date +%s) - started)) s"
if [[ "$DOCKERFILE" == *inference* ]]; then
    say "try: docker run --rm --network none -v BUNDLE_DIR:/bundle:ro -v IO_DIR:/io $TAG /io/challenges.json /io/submission.json"
else
    say "try: docker run --rm --network none $TAG recipes list"
fi
