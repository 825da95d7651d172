#!/usr/bin/env bash
# A Cloud TPU VM pod slice: the same command on every worker; JAX finds the other workers
# and the coordinator from the TPU metadata (jax.distributed.initialize() with no arguments).
# Run from your machine; the repository and its environment must exist on every worker
# (e.g. `--command "git clone ... && pip install -e ."` once) and WORKDIR must be shared
# storage every worker can write (a gs:// bucket mounted with gcsfuse, or an NFS path).
#   TPU=my-v5e-32 ZONE=us-west4-a launch/tpu_pod.sh configs/diffusion/ddpm_fashion_mnist.py \
#       /mnt/shared/runs/ddpm [--config.KEY=VALUE ...]
set -euo pipefail
CONFIG=${1:?usage: TPU=NAME ZONE=ZONE launch/tpu_pod.sh CONFIG WORKDIR [--config.KEY=VALUE ...]}
WORKDIR=${2:?usage: TPU=NAME ZONE=ZONE launch/tpu_pod.sh CONFIG WORKDIR [--config.KEY=VALUE ...]}
shift 2
: "${TPU:?set TPU to the TPU VM name}" "${ZONE:?set ZONE to its zone}"
REPO=${REPO:-jaxgen}  # the checkout's path on the workers
CMD="cd $(printf '%q' "$REPO") && JAXGEN_AUTO_DISTRIBUTED=1 python -m jaxgen train"
CMD+=" --config $(printf '%q' "$CONFIG") --workdir $(printf '%q' "$WORKDIR")"
for a in "$@"; do CMD+=" $(printf '%q' "$a")"; done
exec gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" --worker=all --command "$CMD"
