"""``shadho report RESULTS --serve``: the report page, live, over HTTP.

A background thread polls the results file (read-only, one short read transaction
per poll, so the master is never blocked) and rebuilds the page only when
:meth:`ResultsStore.data_version` changed. Requests are answered from the last
built page, never by reading the file. The page polls ``/version`` and reloads
itself when a newer one exists. Binds to 127.0.0.1 unless told otherwise: reach it
from your laptop through an SSH tunnel (``ssh -L 8765:localhost:8765 login-node``).

Paths: ``/`` (the page), ``/version`` (JSON: version, trials, built), ``/<plot>.png``.

Example:
    >>> server = ReportServer('r.db', port=0)   # doctest: +SKIP
    >>> server.start(); print(server.url)       # doctest: +SKIP
"""
from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("shadho")


class ReportServer:
    """Serves the live report of ``path`` (experiment ``exp_key`` or the file's only one).

    Args:
        path: the results file.
        exp_key: the experiment (None: the file's only one, or none yet).
        host: address to bind (default localhost only).
        port: TCP port (0: any free port; read :attr:`port` after :meth:`start`).
        interval: seconds between polls of the results file.
    """

    def __init__(self, path: str, exp_key: str | None = None, host: str = "127.0.0.1",
                 port: int = 8765, interval: float = 2.0) -> None:
        self.path, self.exp_key, self.interval = path, exp_key, interval
        self._lock = threading.Lock()
        self._page = b"<!DOCTYPE html><title>shadho</title><p>building the report...</p>"
        self._files: dict[str, bytes] = {}
        self._version = "none"
        self._trials = 0
        self._built = 0.0
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer((host, port), self._handler())
        self._httpd.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self._httpd.server_address[0]
        return f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{self.port}/"

    # ------------------------------------------------------------ building

    def _read(self, known: str) -> tuple[str, Any] | None:
        """(version, data) when the file changed since ``known``, else None."""
        from shadho.cli_read import open_store, select_experiment
        from shadho.report_data import load

        store = open_store(self.path)  # a fresh connection sees the writer's latest commit
        try:
            chosen = select_experiment(store, self.exp_key, required=False)
            if chosen is None:
                version = "empty"
            else:
                version = json.dumps(store.data_version(chosen[0]), default=str)
            if version == known:
                return None
            return version, load(store, chosen[0] if chosen else None)
        finally:
            store.close()

    def refresh(self) -> bool:
        """Rebuild the page if the results changed; returns whether it did."""
        from shadho.report import build

        got = self._read(self._version)
        if got is None:
            return False
        version, data = got
        page, figures = build(data, live={"version": version, "interval_s": min(self.interval, 5.0)})
        with self._lock:
            self._page = page.encode("utf-8")
            self._files = {p["file"]: p["png"] for p in figures}
            self._version, self._trials, self._built = version, data.snap.trials, time.time()
        return True

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - keep serving the last page; say why
                log.warning("shadho report --serve: could not read %s (%s); retrying", self.path, exc)
            self._stop.wait(self.interval)

    # ------------------------------------------------------------ serving

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                path = self.path.split("?", 1)[0].lstrip("/")
                if path == "favicon.ico":  # browsers ask; a 404 would be a console error
                    self.send_response(204)
                    self.end_headers()
                    return
                with server._lock:
                    if path in ("", "index.html"):
                        body, kind = server._page, "text/html; charset=utf-8"
                    elif path == "version":
                        body = json.dumps({"version": server._version, "trials": server._trials,
                                           "built": server._built}).encode()
                        kind = "application/json"
                    elif path in server._files:
                        body, kind = server._files[path], "image/png"
                    else:
                        self.send_error(404, "not found")
                        return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("shadho report --serve: " + fmt, *args)

        return Handler

    def start(self) -> None:
        """Build the first page, then serve and poll in background threads."""
        self.refresh()
        for target in (self._httpd.serve_forever, self._poll):
            th = threading.Thread(target=target, daemon=True, name=f"shadho-serve-{target.__name__}")
            th.start()
            self._threads.append(th)

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        for th in self._threads:
            th.join(timeout=30)


def serve(path: str, exp_key: str | None, host: str, port: int, interval: float) -> None:
    """Serve until Ctrl-C (``shadho report --serve``)."""
    import sys

    server = ReportServer(path, exp_key, host, port, interval)
    server.start()
    print(f"shadho report: serving {path} at {server.url} (read-only; Ctrl-C stops)", file=sys.stderr,
          flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.stop()
