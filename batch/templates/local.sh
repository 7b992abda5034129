#!/bin/bash
# A shadho worker as a local process (for trying things out, and for tests).
# Rendered by shadho.batch.local from batch/templates/local.sh.
exec ${command}
