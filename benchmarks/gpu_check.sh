#!/usr/bin/env bash
# The GPU check: one table per run, about 9 minutes at most on one GPU.
#   bash benchmarks/gpu_check.sh [--only mlp,unet] [--out runs/gpu_check] [--no-memory] [--synthetic]
# Needs jax with the accelerator's plugin (e.g. pip install -U "jax[cuda12]"); it prints the
# backend it found first, so a CPU-only jax is seen at once.
# The whole run is capped at 540 s. Each row is written to runs/gpu_check/gpu_check.md and
# .json when its architecture finishes (and the stage under way when one starts), so a run
# cut by the cap keeps the rows it finished and says where it stopped (exit status 124).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import jax; print('jax', jax.__version__, jax.default_backend(), jax.devices())"
exec timeout -k 20 540 python3 benchmarks/gpu_check.py --out runs/gpu_check "$@"
