"""The ``shadho`` command: ``demo``, ``status``, ``report``, ``export``, ``workers``, ``plan``.

Every subcommand opens the results file read-only, so it is safe to run while a
master writes to it. Errors are one sentence on stderr and a non-zero exit
status (2: bad usage, 1: anything else); never a traceback.

Example:
    >>> main(['export', '/no/such/file.db', '--format', 'json'])  # stderr: shadho: error: ...
    1
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from typing import Any, Callable, Sequence

from shadho.errors import ShadhoError

log = logging.getLogger("shadho")

#: Exit statuses.
OK, ERROR, USAGE = 0, 1, 2

#: Subcommands implemented elsewhere: name -> (module, what it does). They get the raw
#: arguments, so their own ``--help`` answers.
_DISPATCH = {
    "demo": ("shadho.demo", "run the README's demo search (SVM kernels on digits, two local workers)"),
    "workers": ("shadho.batch.cli", "start, list and stop Work Queue workers on batch systems"),
    "retry": ("shadho.retry", "queue an experiment's failed trials again (the next run re-runs them)"),
    "plan": ("shadho.plan_cli", "predict what a pool of workers does for a search (trials/h, time, cost)"),
}

#: pip requirement that provides an optional top-level module.
_PIP = {"rich": "shadho[cli]", "matplotlib": "shadho[cli]", "sklearn": "scikit-learn",
        "work_queue": "ndcctools (conda install -c conda-forge ndcctools)", "pandas": "pandas"}


class CliError(ShadhoError):
    """A command-line problem reported as one sentence (exit status 1)."""


def missing_extra(command: str, module: str) -> CliError:
    """The error for an optional package ``module`` that ``command`` needs."""
    return CliError(f"shadho {command} needs {module}: pip install '{_PIP.get(module, module)}'")


# ---------------------------------------------------------------- helpers

def open_store(path: str) -> Any:
    """Open ``path`` read-only (never blocks or changes a running master's file)."""
    from shadho.store import ResultsStore

    if os.path.isdir(path):
        raise CliError(f"{path}: is a directory, not a shadho results file")
    if path.endswith(".json"):
        raise CliError(f"{path}: a JSON mirror; point shadho at the .db file written next to it")
    return ResultsStore(path, readonly=True)


def select_experiment(store: Any, key: str | None, required: bool = True) -> tuple[int, str] | None:
    """The experiment ``key`` or, without one, the file's only experiment.

    Returns None when the file holds no experiment and ``required`` is false.
    """
    keys = store.experiments()
    if key is not None:
        exp = store.experiment_id(key)
        if exp is None:
            listing = ", ".join(keys) if keys else "none"
            raise CliError(f"{store.path}: no experiment {key!r}; experiments: {listing}")
        return exp, key
    if not keys:
        if required:
            raise CliError(f"{store.path}: holds no experiments yet")
        return None
    if len(keys) > 1:
        raise CliError(f"{store.path} holds {len(keys)} experiments; choose one with --exp: "
                       f"{', '.join(keys)}")
    return store.experiment_id(keys[0]), keys[0]


def _stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


# ---------------------------------------------------------------- subcommands

def cmd_status(args: argparse.Namespace) -> int:
    from shadho import status, status_rich

    use_rich = _stdout_is_tty() and not args.plain and not args.json
    if use_rich:
        try:
            import rich  # noqa: F401
        except ImportError:
            use_rich = False
    count = 0
    live = None
    try:
        while True:
            # Reopen each time: a fresh read-only connection sees the writer's latest commit
            # and holds no snapshot between refreshes.
            store = open_store(args.results)
            try:
                chosen = select_experiment(store, args.exp, required=False)
                snap = status.collect(store, *chosen) if chosen else status.empty(store.path)
            finally:
                store.close()
            count += 1
            if args.json:
                print(status.render_json(snap), flush=True)
            elif use_rich:
                if args.watch is None:
                    status_rich.print_rich(snap)
                else:
                    if live is None:
                        live = status_rich.start_live(snap)
                    else:
                        live.update(status_rich.render_rich(snap), refresh=True)
            else:
                if count > 1:
                    print(flush=True)
                print(status.render_plain(snap), end="", flush=True)
            if args.watch is None or (args.count is not None and count >= args.count):
                return OK
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return OK
    finally:
        if live is not None:
            live.stop()


def cmd_report(args: argparse.Namespace) -> int:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise missing_extra("report", "matplotlib") from None
    if args.serve:
        from shadho.serve import serve

        serve(args.results, args.exp, args.host, args.port, args.interval)
        return OK
    if args.output is None:
        raise CliError("shadho report needs -o DIR (a folder to write) or --serve (a live page)")
    from shadho import report

    store = open_store(args.results)
    try:
        chosen = select_experiment(store, args.exp, required=False)
        manifest = report.write_report(store, chosen[0] if chosen else None, args.output)
    finally:
        store.close()
    n = len(manifest["plots"])
    print(f"wrote {os.path.join(args.output, 'index.html')} and {n} plots", file=sys.stderr)
    return OK


def cmd_export(args: argparse.Namespace) -> int:
    store = open_store(args.results)
    try:
        exp, _ = select_experiment(store, args.exp)
        if args.output is not None and args.output != "-":
            out_dir = os.path.dirname(os.path.abspath(args.output))
            if not os.path.isdir(out_dir):
                raise CliError(f"{args.output}: folder {out_dir} does not exist")
            if args.format == "json":
                store.export_json(exp, args.output)
            else:
                store.export_csv(exp, args.output)
            return OK
        if args.format == "json":
            json.dump(store.export_json(exp), sys.stdout, indent=1, default=str)
            sys.stdout.write("\n")
        else:
            # The store writes CSV files atomically; go through a temporary file for stdout.
            with tempfile.TemporaryDirectory(prefix="shadho-export-") as tmp:
                path = os.path.join(tmp, "trials.csv")
                store.export_csv(exp, path)
                with open(path, newline="") as fh:
                    shutil.copyfileobj(fh, sys.stdout)
        sys.stdout.flush()
        return OK
    finally:
        store.close()


def _dispatch(name: str, argv: Sequence[str]) -> int:
    module_name = _DISPATCH[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == module_name or module_name.startswith(exc.name + ".")):
            raise CliError(f"shadho {name} is not available in this install "
                           f"({module_name} is missing)") from None
        raise missing_extra(name, (exc.name or "?").split(".")[0]) from None
    rc = module.main(list(argv))
    return int(rc or 0) if not isinstance(rc, bool) else int(rc)


# ---------------------------------------------------------------- parser

def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line naming where to find help (exit status 2)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from shadho import __version__

    parser = _Parser(
        prog="shadho", description="Scalable Hardware-Aware Distributed Hyperparameter Optimization.",
        epilog="Run 'shadho COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"shadho {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (_, help_text) in _DISPATCH.items():
        sub.add_parser(name, help=help_text, add_help=False)

    p = sub.add_parser("status", help="trials, best losses and heuristics of a search (live)",
                       description="Per search space and per compute class: trials done, failed "
                       "and running, best loss and its parameters, trials per minute, complexity, "
                       "uncertainty, rank and assigned classes; workers while the master runs. "
                       "Safe while the master writes. Prints rich tables on a terminal, "
                       "tab-separated text otherwise.")
    p.add_argument("results", metavar="RESULTS.db", help="the results file")
    p.add_argument("--exp", metavar="KEY", help="experiment (needed when the file holds several)")
    p.add_argument("--watch", nargs="?", const=2.0, type=_positive_seconds, metavar="SECONDS",
                   help="refresh every SECONDS (default 2) until Ctrl-C")
    p.add_argument("--count", type=_positive_int, metavar="N", help="with --watch: stop after N refreshes")
    p.add_argument("--plain", action="store_true", help="tab-separated text even on a terminal")
    p.add_argument("--json", action="store_true", help="one JSON object per refresh")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("report", help="PNG plots and an HTML page of a search (or a live page)",
                       description="Writes the run's settings, the 10 best trials, best loss vs time "
                       "and trial number, where the routing sent work (trials per space x class, "
                       "assignment over time, measured speeds), runtime per space and class, "
                       "parameter importance and loss vs each hyperparameter per space, and "
                       "failures grouped by cause: PNG files, an index.html that embeds them "
                       "(self-contained) and manifest.json. With --serve, serves the same page "
                       "live while a search runs (read-only). Needs matplotlib and scikit-learn.")
    p.add_argument("results", metavar="RESULTS.db", help="the results file")
    p.add_argument("-o", "--output", metavar="DIR", help="folder to write (created)")
    p.add_argument("--exp", metavar="KEY", help="experiment (needed when the file holds several)")
    p.add_argument("--serve", action="store_true",
                   help="serve the page live over HTTP, refreshed as trials finish (Ctrl-C stops)")
    p.add_argument("--port", type=int, default=8765, metavar="P", help="with --serve: port (default 8765)")
    p.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                   help="with --serve: address to bind (default 127.0.0.1: reach it via an SSH tunnel)")
    p.add_argument("--interval", type=_positive_seconds, default=2.0, metavar="SECONDS",
                   help="with --serve: seconds between reads of the results file (default 2)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export", help="trials as CSV or JSON",
                       description="One row per trial (CSV, params and metrics in dotted columns) "
                       "or the whole experiment (JSON).")
    p.add_argument("results", metavar="RESULTS.db", help="the results file")
    p.add_argument("--format", choices=("csv", "json"), required=True, help="output format")
    p.add_argument("-o", "--output", metavar="FILE", help="file to write (default: standard output)")
    p.add_argument("--exp", metavar="KEY", help="experiment (needed when the file holds several)")
    p.set_defaults(func=cmd_export)
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
        if argv and argv[0] in _DISPATCH:
            _setup_logging(verbose)
            return _dispatch(argv[0], argv[1:])
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version and usage errors
            return int(exc.code or 0) if not isinstance(exc.code, str) else USAGE
        if args.command is None:
            parser.print_help(sys.stderr)
            return USAGE
        _setup_logging(verbose or args.verbose)
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except ShadhoError as exc:
        _error(str(exc))
        return ERROR
    except ModuleNotFoundError as exc:
        _error(f"missing Python package {exc.name!r}: pip install '{_PIP.get(exc.name or '', exc.name)}'")
        return ERROR
    except BrokenPipeError:  # e.g. `shadho export ... | head`
        return OK
    except OSError as exc:
        _error(f"{exc.filename + ': ' if getattr(exc, 'filename', None) else ''}{exc.strerror or exc}")
        return ERROR
    except KeyboardInterrupt:
        return 130


def _error(message: str) -> None:
    print(f"shadho: error: {' '.join(message.split())}", file=sys.stderr)


def entry_point() -> None:
    """``python -m shadho``."""
    sys.exit(main())
