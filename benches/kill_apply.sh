#!/usr/bin/env bash
# The kill test of tests/hardening.rs, repeated: SIGKILL `ouroboros apply` at random moments
# around its writes, hundreds of times, and check every time that the file is whole and that a
# new version in place is named by the run's record or journal (so `rollback` can undo it).
# Not part of `cargo test` (it takes ~10 minutes for 200 rounds on two cores).
#
#   benches/kill_apply.sh [ROUNDS]     # default 200
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-200}"
OUROBOROS_KILL_ROUNDS="$rounds" cargo test --test hardening \
    a_kill_at_any_moment_leaves_a_change_that_can_be_undone -- --nocapture 2>&1 \
    | grep -E "kills came|test result|panicked"
