#!/usr/bin/env bash
# README's first command (after setup): the headless phantom demo.
# The graph (phantom -> probe_tracker -> us_compounding -> xray_ingest -> completion) runs
# one process per node, a sweep is recorded to out/demo/bag, and out/demo/ gets spine.png
# and report.{json,md}; then the bag is replayed through the graph to show that the
# completion reproduces (out/demo/replay_report.json; --check fails when the replay placed
# the same frames and still completed differently).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=out/demo
.venv/bin/usx demo --out "$OUT"
.venv/bin/usx demo --out "$OUT" --replay "$OUT/bag" --check
echo "[demo] outputs in $OUT: bag/, spine.png, report.md, report.json, replay_report.json"
