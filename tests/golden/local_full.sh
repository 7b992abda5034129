#!/bin/bash
# A shadho worker as a local process (for trying things out, and for tests).
# Rendered by shadho.batch.local from batch/templates/local.sh.
# The job id is this shell's pid (exec keeps it); the worker advertises it.
export SHADHO_BATCH_SYSTEM=local SHADHO_BATCH_JOB="local-$$"
exec timeout --signal=TERM 7200 /opt/shadho/venv/bin/python /opt/shadho/shadho_launch_worker.py --manager login1.example.org:9123 --password /home/alice/.shadho/password --cores 8 --memory 16000 --disk 20000 --gpus 2 --feature site=nd-crc --feature arch=x86_64 --timeout 600 --wall-time 7140
