#!/usr/bin/env bash
# The mode-collapse table: {minimax, ns, wgan_gp} x {ring8, grid25} x SEEDS seeds, then
# a table of modes covered, % high-quality samples and reverse KL (mean ± s.e.).
#   launch/gan_mode_collapse.sh runs/mode_collapse [SEEDS=3] [--config.KEY=VALUE ...]
# Resumable: a run whose eval.json exists is skipped.
set -euo pipefail
ROOT=${1:?usage: launch/gan_mode_collapse.sh ROOT [SEEDS] [--config.KEY=VALUE ...]}
SEEDS=${2:-3}
shift $(( $# >= 2 ? 2 : 1 ))
for data in ring8 grid25; do
  for game in minimax ns wgan_gp; do
    for seed in $(seq 0 $((SEEDS - 1))); do
      wd="$ROOT/$data/$game/seed$seed"
      [ -f "$wd/eval.json" ] && continue
      mkdir -p "$(dirname "$wd")"
      python -m jaxgen train --config "configs/gan/${game}_toy2d.py" --workdir "$wd" \
        --config.data.name="$data" --config.seed="$seed" --config.train.progress=false "$@" \
        > "$wd.train.log" 2>&1
      python -m jaxgen eval --workdir "$wd" > "$wd.eval.log" 2>&1
    done
  done
done
python -c "import sys; from jaxgen.eval.modes import summarize; print(summarize(sys.argv[1]))" "$ROOT"
