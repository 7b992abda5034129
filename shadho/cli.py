"""The ``shadho`` command: one table of subcommands, one parser, one way to fail.

Every subcommand is a row of :data:`COMMANDS`: the module that defines it, with a function
that adds its arguments to its parser and one that runs it. The parser is built from the
table (only the chosen command's module is imported); every error is one sentence after
``shadho: error:`` on stderr and a non-zero exit status (2: bad usage, 1: anything else),
never a traceback. The read-only commands (``status``, ``report``, ``export``) never block
or change a running master's file.

Example:
    >>> main(['export', '/no/such/file.db', '--format', 'json'])  # stderr: shadho: error: ...
    1
    >>> sorted(COMMANDS)
    ['demo', 'export', 'plan', 'report', 'retry', 'status', 'workers']
"""
from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from shadho.cli_args import ERROR, OK, PIP, PREFIX, USAGE, Parser, missing_extra
from shadho.cli_read import open_store, select_experiment
from shadho.errors import CliError, ShadhoError

__all__ = ["main", "entry_point", "build_parser", "COMMANDS", "Command", "CliError", "open_store",
           "select_experiment", "missing_extra", "OK", "ERROR", "USAGE"]


@dataclass(frozen=True)
class Command:
    """One subcommand: ``module`` defines ``add(parser)`` and ``run(args) -> exit status``."""

    module: str
    help: str
    add: str = "add_arguments"
    run: str = "run"


#: Every subcommand, in the order ``shadho --help`` lists them.
COMMANDS: dict[str, Command] = {
    "demo": Command("shadho.demo", "run the README's demo search (SVM kernels on digits, two local workers)"),
    "status": Command("shadho.cli_read", "trials, best losses and heuristics of a search (live)",
                      "add_status", "run_status"),
    "report": Command("shadho.cli_read", "PNG plots and an HTML page of a search (or a live page)",
                      "add_report", "run_report"),
    "export": Command("shadho.cli_read", "trials as CSV or JSON", "add_export", "run_export"),
    "workers": Command("shadho.batch.cli", "start, list and stop Work Queue workers on batch systems"),
    "retry": Command("shadho.retry", "queue an experiment's failed trials again (the next run re-runs them)"),
    "plan": Command("shadho.plan_cli", "predict what a pool of workers does for a search (trials/h, time, cost)"),
}


def _module(name: str) -> Any:
    """The module of subcommand ``name``; a missing module or dependency is a CliError."""
    module_name = COMMANDS[name].module
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == module_name or module_name.startswith(exc.name + ".")):
            raise CliError(f"shadho {name} is not available in this install "
                           f"({module_name} is missing)") from None
        raise missing_extra(name, (exc.name or "?").split(".")[0]) from None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``shadho`` parser; with ``only``, just that subcommand gets its arguments (so
    ``shadho status`` never imports the modules of the other commands; ``''``: none does)."""
    from shadho import __version__

    parser = Parser(
        prog="shadho", description="Scalable Hardware-Aware Distributed Hyperparameter Optimization.",
        epilog="Run 'shadho COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"shadho {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.help)
        if only is None or only == name:
            module = _module(name)
            getattr(module, command.add)(p)
            p.set_defaults(func=getattr(module, command.run))
    return parser


def _setup_logging(verbose: bool) -> None:
    from shadho.progress import setup_logging

    setup_logging(verbose)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``shadho`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = False
    while argv and argv[0] in ("-v", "--verbose"):
        verbose, argv = True, argv[1:]
    try:
        parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else "")
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version and usage errors
            return int(exc.code or 0) if not isinstance(exc.code, str) else USAGE
        if args.command is None:
            parser.print_help(sys.stderr)
            return USAGE
        _setup_logging(verbose or args.verbose)
        func: Callable[[argparse.Namespace], Any] = args.func
        rc = func(args)
        return int(rc or 0)
    except (ShadhoError, ValueError, TypeError) as exc:  # bad input: said, not raised
        _error(str(exc))
        return ERROR
    except ModuleNotFoundError as exc:
        _error(f"missing Python package {exc.name!r}: pip install '{PIP.get(exc.name or '', exc.name)}'")
        return ERROR
    except BrokenPipeError:  # e.g. `shadho export ... | head`
        return OK
    except OSError as exc:
        _error(f"{exc.filename + ': ' if getattr(exc, 'filename', None) else ''}{exc.strerror or exc}")
        return ERROR
    except KeyboardInterrupt:
        return 130


def _error(message: str) -> None:
    print(PREFIX + " ".join(message.split()), file=sys.stderr)


def entry_point() -> None:
    """``python -m shadho``."""
    sys.exit(main())
