#!/usr/bin/env bash
# One SLURM task = one jaxgen process. `srun` starts one per GPU (launch/slurm.sbatch);
# JAX reads SLURM_JOB_ID, SLURM_STEP_NODELIST, SLURM_NTASKS, SLURM_PROCID and SLURM_LOCALID
# to find the coordinator (the first node), the process count and this process's rank.
# With --gpus-per-task=1 SLURM gives each task its own GPU (CUDA_VISIBLE_DEVICES).
#   srun launch/slurm_task.sh CONFIG WORKDIR [--config.KEY=VALUE ...]
set -euo pipefail
CONFIG=${1:?usage: launch/slurm_task.sh CONFIG WORKDIR [--config.KEY=VALUE ...]}
WORKDIR=${2:?usage: launch/slurm_task.sh CONFIG WORKDIR [--config.KEY=VALUE ...]}
shift 2
export JAXGEN_AUTO_DISTRIBUTED=1
if [ "${SLURM_PROCID:-0}" = 0 ]; then
  python -m jaxgen.runner.workdir claim "$WORKDIR"  # a run (or refused) before logs/ goes in
  exec python -m jaxgen train --config "$CONFIG" --workdir "$WORKDIR" "$@"
fi
for _ in $(seq 1200); do [ -f "$WORKDIR/jaxgen_run.json" ] && break; sleep 0.1; done
mkdir -p "$WORKDIR/logs"
exec python -m jaxgen train --config "$CONFIG" --workdir "$WORKDIR" "$@" \
  > "$WORKDIR/logs/process_${SLURM_PROCID}.log" 2>&1
