#!/usr/bin/env bash
# Set up everything shadho needs on a fresh Debian machine (as root), idempotently:
#   - Debian packages: cctools (Work Queue), SLURM + munge (tests), chromium (report tests)
#   - a virtualenv in .venv with shadho installed editable plus test/CLI extras
#   - Debian's Work Queue Python module made importable in the venv (and nothing else
#     from Debian's dist-packages: a folder of symlinks named in a .pth file)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${SHADHO_PYTHON:-python3}

need_apt=()
command -v work_queue_worker >/dev/null || need_apt+=(coop-computing-tools)
[ -f /usr/lib/python3/dist-packages/work_queue.py ] || need_apt+=(python3-workqueue)
command -v slurmctld >/dev/null || need_apt+=(slurm-wlm)
command -v munged >/dev/null || need_apt+=(munge)
command -v chromium >/dev/null || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "bootstrap: installing ${need_apt[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # apt's and debconf's notices go to a log (shown on failure), not into the user's first lines.
    if ! { apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"; } >/tmp/shadho-bootstrap-apt.log 2>&1; then
        tail -n 40 /tmp/shadho-bootstrap-apt.log >&2
        echo "bootstrap: apt-get failed (full log: /tmp/shadho-bootstrap-apt.log)" >&2
        exit 1
    fi
fi

if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
pyver=$(.venv/bin/python -c 'import sys; print("%d%d" % sys.version_info[:2])')
so=$(ls /usr/lib/python3/dist-packages/_work_queue.cpython-${pyver}-*.so 2>/dev/null | head -n1 || true)
if [ -z "$so" ]; then
    echo "bootstrap: Debian's Work Queue module is built for another Python than .venv's ($pyver);" \
         "set SHADHO_PYTHON to a python3.11, or use conda-forge's ndcctools" >&2
    exit 1
fi
mkdir -p .venv/cctools
ln -sf /usr/lib/python3/dist-packages/work_queue.py "$so" .venv/cctools/
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$ROOT/.venv/cctools" > "$site/cctools_work_queue.pth"

if ! .venv/bin/python -c 'import shadho, rich, matplotlib, sklearn, hypothesis, pytest, htcondor, playwright, cocoex, hyperopt' 2>/dev/null; then
    # pip's and setuptools' own chatter (e.g. setuptools' "Editable installation" warning) goes
    # to a log, so the first lines a user sees after bootstrap are shadho's; shown on failure.
    log=.venv/bootstrap-pip.log
    echo "bootstrap: installing shadho and its extras into .venv (pip log: $log)" >&2
    if ! { .venv/bin/python -m pip install -q --upgrade pip "setuptools>=70" &&
           .venv/bin/python -m pip install -q -e ".[test,cli,bench]"; } >"$log" 2>&1; then
        grep -v '^WARNING: Location' "$log" | tail -n 40 >&2
        echo "bootstrap: pip install failed (full log: $log)" >&2
        exit 1
    fi
fi
.venv/bin/python -c 'import shadho, work_queue, cloudpickle' || { echo "bootstrap: install failed" >&2; exit 1; }
echo "bootstrap: ready (.venv)" >&2
