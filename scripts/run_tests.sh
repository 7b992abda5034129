#!/usr/bin/env bash
# Run the whole test suite: brings up the one-node SLURM cluster the SLURM tests use,
# then pytest over tests/ (every marker included). Exits with pytest's status.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/slurm_cluster.sh start)"
export SLURM_CONF
exec .venv/bin/python -m pytest -p no:cacheprovider tests "$@"
