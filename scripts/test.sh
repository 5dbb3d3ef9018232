#!/usr/bin/env bash
# The whole suite: ruff, then pytest over usx_model/test, usx_ros/test and test/.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k chamfer`).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

.venv/bin/ruff check . || { echo "[test] ruff found problems" >&2; exit 1; }
.venv/bin/ruff format --check . >/dev/null || { .venv/bin/ruff format --diff . | head -n 40; echo "[test] ruff format: run 'make format'" >&2; exit 1; }

# What only the tests need (headless Chromium for the viewer test, selenium); the demo's
# setup leaves it out. Fast when it is there already.
bash scripts/setup.sh --test-tools || { echo "[test] installing the test tools failed" >&2; exit 1; }

.venv/bin/python -P -m pytest "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
    # pytest's "no tests collected": the suite exists, so an empty run means the test paths
    # or a -k filter are wrong, never success.
    echo "[test] pytest collected no tests: treating as a failure" >&2
    exit 1
fi
exit $rc
