"""Headless Chromium for the report tests, through Playwright (its own driver, the
system's Chromium). Runs as root, hence ``--no-sandbox``."""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from typing import Any, Iterator

import pytest


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is not installed (apt-get install -y chromium)")


@contextmanager
def browser_page(scale: float = 1.0, width: int = 1400, height: int = 1000) -> Iterator[tuple[Any, list[str]]]:
    """A fresh page and the list its console errors and page errors are appended to."""
    from playwright.sync_api import sync_playwright  # a test extra: missing must fail

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height},
                                    device_scale_factor=scale)
            errors: list[str] = []
            page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            yield page, errors
        finally:
            browser.close()


def check_report_page(page: Any, errors: list[str], url: str, n_plots: int) -> dict[str, Any]:
    """Open ``url``; assert it renders every plot without console errors; return what it saw."""
    page.goto(url)
    page.wait_for_function("document.documentElement.dataset.images !== 'loading'", timeout=60_000)
    seen = page.evaluate("""() => ({
        images: document.documentElement.dataset.images,
        decoded: Array.from(document.images).filter(i => i.naturalWidth > 0).map(i => i.dataset.file),
        captions: Array.from(document.querySelectorAll('figcaption')).map(c => c.innerText),
        headings: Array.from(document.querySelectorAll('h2')).map(h => h.innerText),
        height: document.body.scrollHeight})""")
    assert seen["images"] == "ok", seen
    assert len(seen["decoded"]) == n_plots, seen["decoded"]
    assert all(len(c) > 80 for c in seen["captions"]), seen["captions"]
    assert errors == [], errors
    return seen
