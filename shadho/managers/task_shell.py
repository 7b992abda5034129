"""The shell line every Work Queue task of shadho runs, around the objective's own command.

It does three things the objective cannot be trusted to do:

* **bounded output**: the objective's stdout and stderr go to a file in the sandbox; only
  the last :data:`OUTPUT_TAIL_BYTES` come back to the master (Work Queue would otherwise
  hold a task's whole stdout in the master's memory), preceded by a line saying how many
  bytes were cut;
* **no stray processes**: objectives run under ``shadho_worker.py`` (callables, and shell
  commands when the worker has Python: :func:`command_line`), which is the child subreaper
  of everything they start and ends it all, in the task's process group or not. Without
  Python, the rest of the task's process group is sent SIGTERM, when the task leads its
  own group (Work Queue's ``setpgid`` races with the task's ``exec`` and now and then
  leaves the task in the worker's group: then nothing is sent);
* **memory limit**: ``ulimit -v`` for shell-command objectives when ``memory_mb=`` is set
  (callables set the same limit on themselves in the worker entry).

Example:
    >>> line = wrap("python train.py", memory_mb=500)
    >>> "ulimit -v 512000" in line and "tail -c 65536" in line
    True
    >>> split_output("@@shadho output-cut=10\\nlast words")
    (10, 'last words')
"""
from __future__ import annotations

import math

#: Bytes of a task's output that come back to the master.
OUTPUT_TAIL_BYTES = 64 * 1024
#: The first line of a task's output when some of it was cut.
CUT_MARK = "@@shadho output-cut="
#: The sandbox file that holds the objective's whole output (it stays on the worker).
OUTPUT_FILE = ".shadho-output"


#: The sandbox file that holds a shell-command objective (run by :func:`command_line`).
COMMAND_FILE = ".shadho-command"


def command_line(python: str) -> str:
    """Run the objective in :data:`COMMAND_FILE` through ``shadho_worker.py --command`` (which
    ends every process it leaves, in its group or not) when ``python`` is found, else plain sh."""
    return (f'if command -v {python} >/dev/null 2>&1; then {python} shadho_worker.py --command '
            f'{COMMAND_FILE}; else sh {COMMAND_FILE}; fi')


def wrap(command: str, memory_mb: float | None = None, first_line: str = "") -> str:
    """The task's command line: ``first_line`` (echoed first), then ``command`` with its
    output captured, its process group ended afterwards and its exit status kept."""
    limit = f"ulimit -v {int(math.ceil(float(memory_mb) * 1024))}; " if memory_mb else ""
    n = OUTPUT_TAIL_BYTES
    return (f"{first_line}"
            # Where shadho_worker writes results, whatever cwd the objective moves to.
            'SHADHO_SANDBOX="$PWD"; export SHADHO_SANDBOX; '
            f"( {limit}{command}\n) > {OUTPUT_FILE} 2>&1; __shadho_rc=$?; "
            # End what the objective left in the task's process group. Work Queue puts a task in a
            # group of its own, but it races with the task's exec: when it loses, the task shares
            # the worker's group, so kill only a group this shell leads (we ignore the signal).
            "__shadho_pg=$(cut -d' ' -f5 /proc/$$/stat 2>/dev/null); "
            "if [ \"$__shadho_pg\" = \"$$\" ]; then trap '' TERM; kill -TERM 0 2>/dev/null; fi; "
            f"__shadho_n=$(wc -c < {OUTPUT_FILE}); "
            f'if [ "$__shadho_n" -gt {n} ]; then echo "{CUT_MARK}$((__shadho_n - {n}))"; fi; '
            f"tail -c {n} {OUTPUT_FILE}; exit $__shadho_rc")


def split_output(text: str) -> tuple[int, str]:
    """``(bytes cut, the rest)`` of a task's output as :func:`wrap` returns it."""
    if text.startswith(CUT_MARK):
        head, _, rest = text.partition("\n")
        try:
            return int(head[len(CUT_MARK):]), rest
        except ValueError:
            return 0, rest
    return 0, text
