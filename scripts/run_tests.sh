#!/usr/bin/env bash
# Run the whole test suite: brings up the one-node SLURM cluster the SLURM tests use,
# then pytest over tests/ (every marker included). Exits with pytest's status.
set -euo pipefail
cd "$(dirname "$0")/.."
# A cluster that cannot start stops the run here, with the cluster script's reason
# (e.g. "slurmd: port 6818 already in use"), instead of SLURM tests waiting for minutes.
if ! slurm_env=$(bash scripts/slurm_cluster.sh start); then
    echo "run_tests: the one-node SLURM cluster did not start (reason above); no tests run" >&2
    exit 1
fi
eval "$slurm_env"
export SLURM_CONF
exec .venv/bin/python -m pytest -p no:cacheprovider tests "$@"
