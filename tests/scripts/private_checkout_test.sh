#!/usr/bin/env bash
# The suite passes from a checkout that only its owner can enter: CI may clone into
# a folder made by `mktemp -d` (mode 0700), and the tests that run the CLI as another
# user (e2e.OfflineCli.EveryCacheShapeInAReadOnlyCache runs it as 'nobody') must not
# depend on where the checkout lives.
#
# A fresh clone and build there would cost minutes of compiling, so this uses the
# suite's own build and gives the tests what a build in such a clone gives them: the
# CLI they run (HUBCACHE_TEST_CLI) inside a 0700 folder. Run as root, the test must
# then pass, not skip; with TMPDIR inside the private folder too (so 'nobody' cannot
# even reach the test's cache) it must skip and say why, never fail.
set -euo pipefail
: "${HUBCACHE_CLI:?}" "${HUBCACHE_BUILD_DIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
e2e="$HUBCACHE_BUILD_DIR/tests/e2e_tests"
[[ -x $e2e ]] || fail "no $e2e: build the tests first"
private=$(mktemp -d)
trap 'rm -rf "$private"' EXIT
[[ $(stat -c %a "$private") == 700 ]] || fail "mktemp -d did not make a 0700 folder"
mkdir -p "$private/clone/build" "$private/tmp"
cp "$HUBCACHE_CLI" "$private/clone/build/hubcache"
filter='OfflineCli.EveryCacheShapeInAReadOnlyCache'

out=$(HUBCACHE_TEST_CLI="$private/clone/build/hubcache" "$e2e" --gtest_filter="$filter" 2>&1) ||
  { echo "$out" >&2; fail "$filter failed with the CLI under a 0700 folder"; }
grep -q '\[  PASSED  \] 1 test' <<< "$out" || { echo "$out" >&2; fail "$filter did not pass"; }
if [[ $(id -u) -eq 0 ]]; then
  grep -q SKIPPED <<< "$out" && { echo "$out" >&2; fail "$filter skipped instead of running as nobody"; }

  out=$(TMPDIR="$private/tmp" HUBCACHE_TEST_CLI="$private/clone/build/hubcache" \
        "$e2e" --gtest_filter="$filter" 2>&1) || { echo "$out" >&2; fail "$filter failed with a private TMPDIR"; }
  grep -q "SKIPPED" <<< "$out" || { echo "$out" >&2; fail "$filter should skip when nobody cannot reach TMPDIR"; }
  grep -q "user 'nobody' cannot" <<< "$out" || { echo "$out" >&2; fail "the skip does not say why"; }
fi
echo PASS
