#!/bin/bash
# A shadho worker as a local process (for trying things out, and for tests).
# Rendered by shadho.batch.local from batch/templates/local.sh.
# The job id is this shell's pid (exec keeps it); the worker advertises it.
export SHADHO_BATCH_SYSTEM=local SHADHO_BATCH_JOB="local-$$$$"
exec ${command}
