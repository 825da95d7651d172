#!/usr/bin/env bash
# The GPU check (issue 19, part 7): one table per run, under 8 minutes on one GPU.
#   bash benchmarks/gpu_check.sh [--only mlp,unet] [--json gpu.json]
# Needs jax with the accelerator's plugin (e.g. pip install -U "jax[cuda12]"); it prints the
# backend it found first, so a CPU-only jax is seen at once.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import jax; print('jax', jax.__version__, jax.default_backend(), jax.devices())"
exec timeout 470 python3 benchmarks/gpu_check.py "$@"
