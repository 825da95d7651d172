#!/usr/bin/env bash
# Single process, all local devices (CPU, one GPU, or every GPU of one machine).
#   launch/local.sh configs/flow_matching/toy2d.py runs/fm_toy2d [--config.KEY=VALUE ...]
set -euo pipefail
CONFIG=${1:?usage: launch/local.sh CONFIG WORKDIR [--config.KEY=VALUE ...]}
WORKDIR=${2:?usage: launch/local.sh CONFIG WORKDIR [--config.KEY=VALUE ...]}
shift 2
exec python -m jaxgen train --config "$CONFIG" --workdir "$WORKDIR" "$@"
