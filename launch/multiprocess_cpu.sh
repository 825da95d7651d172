#!/usr/bin/env bash
# N CPU processes on this machine, talking through jax.distributed (gloo collectives).
# Each process owns DEVICES_PER_PROCESS forced host devices and feeds its slice of
# every global batch; process 0 logs, writes samples and coordinates checkpoints.
#   NUM_PROCESSES=2 launch/multiprocess_cpu.sh configs/flow_matching/toy2d.py runs/mp [--config.KEY=VALUE ...]
set -euo pipefail
CONFIG=${1:?usage: launch/multiprocess_cpu.sh CONFIG WORKDIR [--config.KEY=VALUE ...]}
WORKDIR=${2:?usage: launch/multiprocess_cpu.sh CONFIG WORKDIR [--config.KEY=VALUE ...]}
shift 2
NUM_PROCESSES=${NUM_PROCESSES:-2}
DEVICES_PER_PROCESS=${DEVICES_PER_PROCESS:-1}
PORT=${PORT:-$((20000 + RANDOM % 20000))}
export JAX_PLATFORMS=cpu
export XLA_FLAGS="--xla_force_host_platform_device_count=${DEVICES_PER_PROCESS} ${XLA_FLAGS:-}"
export JAXGEN_COORDINATOR="127.0.0.1:${PORT}" JAXGEN_NUM_PROCESSES="$NUM_PROCESSES" JAXGEN_CPU=1
python -m jaxgen.runner.workdir claim "$WORKDIR"  # a run (or refused) before logs/ goes in
mkdir -p "$WORKDIR/logs"
pids=()
for ((i = 0; i < NUM_PROCESSES; i++)); do
  if [ "$i" = 0 ]; then
    JAXGEN_PROCESS_ID=$i python -m jaxgen train --config "$CONFIG" --workdir "$WORKDIR" "$@" &
  else
    JAXGEN_PROCESS_ID=$i python -m jaxgen train --config "$CONFIG" --workdir "$WORKDIR" "$@" \
      > "$WORKDIR/logs/process_$i.log" 2>&1 &
  fi
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit $status
