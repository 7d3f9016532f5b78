#!/usr/bin/env bash
# Test a built toolkit image from the outside, the way a competition runs code:
#
#   docker/smoke-test.sh IMAGE [WORK_DIR]      # e.g. docker/smoke-test.sh toolkit:local
#
# 1. `recipes list` with no network,
# 2. RECIPE (default eeg2025/c1-baseline) with --smoke, end to end, as uid 1234 (not in the
#    image's /etc/passwd) with WORK_DIR mounted at /work, no network,
# 3. `verify` of the bundle with --network none --read-only --tmpfs /tmp and the bundle mounted
#    read-only,
# 4. bad input, each one clear line and a non-zero exit: a read-only submissions folder, a
#    folder the uid may not write, a bundle that is not there, CUDA asked for without a GPU.
# Prints each step's time. CI (docker.yml) runs it on the CPU image; tests/test_docker.py does
# the same from pytest (-m docker).
set -euo pipefail

IMAGE="${1:?usage: docker/smoke-test.sh IMAGE [WORK_DIR]}"
WORK="${2:-$(mktemp -d "${TMPDIR:-/tmp}/toolkit-smoke.XXXXXX")}"
RECIPE="${RECIPE:-eeg2025/c1-baseline}"
RUN_UID="${RUN_UID:-1234}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
# The container's uid must be able to write here (a fresh mktemp folder is 0700).
chmod 0777 "$WORK"

pass=0
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; started=$(date +%s); }
ok() { pass=$((pass + 1)); printf '\033[32mok\033[0m (%ss)\n' "$(($(date +%s) - started))" >&2; }
die() { printf '\033[1;31mFAILED:\033[0m %s\n' "$*" >&2; exit 1; }

# expect_error DESCRIPTION PATTERN -- docker run args...: must exit non-zero and print PATTERN.
expect_error() {
    local what="$1" pattern="$2" out rc
    shift 3
    step "bad input: $what"
    set +e
    out="$(docker run --rm "$@" 2>&1)"
    rc=$?
    set -e
    printf '%s\n' "$out" | tail -n 3 >&2
    [[ $rc -ne 0 ]] || die "$what: exit code 0"
    grep -qiE "$pattern" <<<"$out" || die "$what: no line matching /$pattern/"
    if grep -q "Traceback" <<<"$out"; then die "$what: a traceback instead of one line"; fi
    ok
}

step "recipes list (--network none)"
docker run --rm --network none "$IMAGE" recipes list | tee "$WORK/recipes.txt"
grep -q "${RECIPE#*/}" "$WORK/recipes.txt" || die "$RECIPE not listed"
ok

step "run $RECIPE --smoke as uid $RUN_UID (--network none, $WORK mounted at /work)"
docker run --rm --network none --user "$RUN_UID:$RUN_UID" -v "$WORK:/work" \
    "$IMAGE" run "$RECIPE" --smoke | tee "$WORK/run.log"
# Paths from the run's own output: the files are the container uid's, owner-only, so this
# (non-root) shell may not be able to look inside.
bundle="$(sed -nE 's#^bundle +/work/submissions/(.+)/submission\.zip$#\1#p' "$WORK/run.log" | tail -n1)"
run_rel="$(sed -nE 's#^(trained|ensemble) (/work/)?(runs/[^ :]+).*#\3#p' "$WORK/run.log" | tail -n1)"
[[ -n "$bundle" && -n "$run_rel" ]] || die "no bundle or run folder in the run's output"
ok

step "verify $bundle (--network none --read-only --tmpfs /tmp, bundle mounted read-only)"
# Same uid as the run: the toolkit writes its files owner-only (0600/0700), so another uid
# could not read the bundle.
docker run --rm --network none --read-only --tmpfs /tmp --user "$RUN_UID:$RUN_UID" \
    -v "$WORK/submissions:/work/submissions:ro" "$IMAGE" verify "/work/submissions/$bundle"
ok

expect_error "read-only submissions folder" "read-only file system" -- \
    --network none --read-only --tmpfs /tmp --user "$RUN_UID:$RUN_UID" -v "$WORK/runs:/work/runs:ro" \
    -v "$WORK/submissions:/work/submissions:ro" "$IMAGE" bundle "/work/$run_rel"

mkdir -p "$WORK/locked" && chmod 0755 "$WORK/locked"
expect_error "a folder uid $((RUN_UID + 1)) may not write" "permission denied" -- \
    --network none --user "$((RUN_UID + 1)):$((RUN_UID + 1))" -v "$WORK/locked:/work/locked" \
    "$IMAGE" data synth eeg2025 /work/locked/bids --subjects 2

expect_error "a bundle folder that is not mounted" "no such bundle" -- \
    --network none --read-only --tmpfs /tmp "$IMAGE" verify /work/submissions/eeg2025/missing

expect_error "TOOLKIT_DEVICE=cuda without a GPU" "no CUDA device is visible" -- \
    --network none -e TOOLKIT_DEVICE=cuda "$IMAGE" \
    train "$RECIPE" --smoke --set train.epochs=1

printf '\n\033[1;32m%d checks passed\033[0m; outputs in %s\n' "$pass" "$WORK" >&2
