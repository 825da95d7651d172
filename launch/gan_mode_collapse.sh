#!/usr/bin/env bash
# The mode-collapse table: GAMES x {ring8, grid25} x SEEDS seeds, then a table of modes
# covered, % high-quality samples and reverse KL (mean ± s.e.).
#   [GAMES="minimax ns wgan_gp"] launch/gan_mode_collapse.sh runs/mode_collapse [SEEDS=3] \
#       [--config.KEY=VALUE ...]
# GAMES: any names of the GAN loss table (jaxgen.families.gan.gan.LOSSES, e.g. lsgan or
# hinge); a game with its own configs/gan/<game>_toy2d.py trains with it, the others with
# ns_toy2d.py and --config.objective.loss=<game>.
# Resumable: a run already evaluated (a file eval/test_step*.json in its folder) is skipped.
set -euo pipefail
ROOT=${1:?usage: launch/gan_mode_collapse.sh ROOT [SEEDS] [--config.KEY=VALUE ...]}
SEEDS=${2:-3}
shift $(( $# >= 2 ? 2 : 1 ))
GAMES=${GAMES:-"minimax ns wgan_gp"}
CONFIGS="$(cd "$(dirname "$0")/.." && pwd)/configs/gan"
python -c "
import sys
from jaxgen.families.gan.gan import LOSSES
bad = [g for g in sys.argv[1:] if g not in LOSSES]
sys.exit(f'unknown GAMES {bad}; the loss table has: {\" \".join(LOSSES)}' if bad else 0)
" $GAMES
for data in ring8 grid25; do
  for game in $GAMES; do
    if [ -f "$CONFIGS/${game}_toy2d.py" ]; then
      cfg=("$CONFIGS/${game}_toy2d.py")
    else
      cfg=("$CONFIGS/ns_toy2d.py" "--config.objective.loss=$game")
    fi
    for seed in $(seq 0 $((SEEDS - 1))); do
      wd="$ROOT/$data/$game/seed$seed"
      compgen -G "$wd/eval/test_step*.json" > /dev/null && continue
      mkdir -p "$(dirname "$wd")"
      python -m jaxgen train --config "${cfg[0]}" "${cfg[@]:1}" --workdir "$wd" \
        --config.data.name="$data" --config.seed="$seed" --config.train.progress=false "$@" \
        > "$wd.train.log" 2>&1
      python -m jaxgen eval --workdir "$wd" > "$wd.eval.log" 2>&1
    done
  done
done
python -c "import sys; from jaxgen.reproduce.mode_collapse import summarize; print(summarize(sys.argv[1]))" "$ROOT"
