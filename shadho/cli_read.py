"""The read-only subcommands of ``shadho``: ``status``, ``report`` and ``export``.

Each opens the results file read-only (:func:`open_store`), so it is safe to run while a
master writes to it; :mod:`shadho.cli` holds the command table that lists them.

Example:
    >>> from shadho.cli import main
    >>> main(['export', '/no/such/file.db', '--format', 'json'])  # stderr: shadho: error: ...
    1
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any

from shadho.cli_args import OK, missing_extra, positive_seconds, whole_number
from shadho.errors import CliError

__all__ = ["open_store", "select_experiment", "add_status", "run_status", "add_report", "run_report",
           "add_export", "run_export"]


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

def run_status(args: argparse.Namespace) -> int:
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


def run_report(args: argparse.Namespace) -> int:
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


def run_export(args: argparse.Namespace) -> int:
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


# ---------------------------------------------------------------- arguments

def add_status(p: argparse.ArgumentParser) -> None:
    p.description = ("Per search space and per compute class: trials done, failed "
                     "and running, best loss and its parameters, trials per minute, complexity, "
                     "uncertainty, rank and assigned classes; workers while the master runs. "
                     "Safe while the master writes. Prints rich tables on a terminal, "
                     "tab-separated text otherwise.")
    p.add_argument("results", metavar="RESULTS.db", help="the results file")
    p.add_argument("--exp", metavar="KEY", help="experiment (needed when the file holds several)")
    p.add_argument("--watch", nargs="?", const=2.0, type=positive_seconds, metavar="SECONDS",
                   help="refresh every SECONDS (default 2) until Ctrl-C")
    p.add_argument("--count", type=whole_number(1), metavar="N", help="with --watch: stop after N refreshes")
    p.add_argument("--plain", action="store_true", help="tab-separated text even on a terminal")
    p.add_argument("--json", action="store_true", help="one JSON object per refresh")



def add_report(p: argparse.ArgumentParser) -> None:
    p.description = ("Writes the run's settings, the 10 best trials, best loss vs time "
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
    p.add_argument("--port", type=whole_number(0), default=8765, metavar="P", help="with --serve: port (default 8765)")
    p.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                   help="with --serve: address to bind (default 127.0.0.1: reach it via an SSH tunnel)")
    p.add_argument("--interval", type=positive_seconds, default=2.0, metavar="SECONDS",
                   help="with --serve: seconds between reads of the results file (default 2)")



def add_export(p: argparse.ArgumentParser) -> None:
    p.description = ("One row per trial (CSV, params and metrics in dotted columns) "
                     "or the whole experiment (JSON).")
    p.add_argument("results", metavar="RESULTS.db", help="the results file")
    p.add_argument("--format", choices=("csv", "json"), required=True, help="output format")
    p.add_argument("-o", "--output", metavar="FILE", help="file to write (default: standard output)")
    p.add_argument("--exp", metavar="KEY", help="experiment (needed when the file holds several)")
