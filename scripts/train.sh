#!/usr/bin/env bash
# make train: reproduce the shipped weights from scratch on CPU.
#   1. usx dataset build --spines 200 --seed 1 (80/10/10 by spine) -> out/data/phantom_train.h5
#   2. usx train (config/train.yaml: 64 epochs, ~60 min) for the full model and the US-only
#      baseline, side by side, one core each (2-core machine: two single-thread runs beat
#      two 2-thread runs)
#   3. copy each run's best model.pt (+ provenance .json) into usx_model/usx_model/weights/
# Resumable: re-running continues the runs in runs/ from their last checkpoint.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
USX=.venv/bin/usx
DATA=out/data/phantom_train.h5
if [[ ! -f $DATA ]]; then
    $USX dataset build --spines 200 --seed 1 --out "$DATA" --workers 2
fi
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
mkdir -p runs
# threads: 1 per run (the YAML says 2 for a single run on an idle machine)
sed 's/^threads: .*/threads: 1/' config/train.yaml > runs/train_make.yaml
sed -i "s#^data: .*#data: $PWD/$DATA#" runs/train_make.yaml
$USX train --config runs/train_make.yaml --out runs/make_full --quiet &
full=$!
$USX train --config runs/train_make.yaml --variant us_only --out runs/make_us_only --quiet &
base=$!
wait $full
wait $base
for v in full us_only; do
    cp "runs/make_$v/model.pt" "usx_model/usx_model/weights/$v.pt"
    cp "runs/make_$v/model.pt.json" "usx_model/usx_model/weights/$v.pt.json"
done
echo "[train] shipped weights updated: usx_model/usx_model/weights/{full,us_only}.pt"
