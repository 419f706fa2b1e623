"""Reading asynchronous results out of a page in headless Chromium without handing Playwright a promise.

`page.evaluate` of a promise-valued function, and `page.wait_for_function` (which waits on a promise of its
own), make Playwright call Chromium's `Runtime.callFunctionOn(awaitPromise=true)` on the promise of Playwright's
async wrapper. The inspector holds that promise only weakly. Once it settles, nothing else references it, and
its value is delivered by a job queued after it; a garbage collection in between (the onnxruntime-web pages
allocate a lot) collects it, and Playwright fails with "Resulting promise was garbage collected" (1 page in 4
on the site tests). Keeping our own promise reachable does not help: the collected one is Playwright's.

So the page only ever answers synchronous questions: `page_value` starts the asynchronous work, parks its
result in `window.__pw_results`, and polls for it from Python; `wait_until` polls a condition the same way.
"""

from __future__ import annotations

import time
from typing import Any

POLL_S = 0.005


def page_value(page, expr: str, arg: Any = None, timeout: float = 60.0) -> Any:
    """The value of the JS expression `expr` (a promise or a plain value; `a` is `arg`) evaluated in `page`.
    A rejection is raised as an AssertionError with the page's message."""
    key = page.evaluate(
        "(a) => { const results = (window.__pw_results = window.__pw_results || {});"
        " const key = (window.__pw_next = (window.__pw_next || 0) + 1);"
        f" Promise.resolve().then(() => ({expr}))"
        "   .then(v => { results[key] = {ok: v === undefined ? null : v}; },"
        "         e => { results[key] = {error: String(e && e.stack || e)}; });"
        " return key; }", arg)
    got = _poll(page, "(k) => { const r = window.__pw_results[k]; delete window.__pw_results[k]; return r || null; }",
                key, timeout, f"the page did not settle {expr!r}")
    if "error" in got:
        raise AssertionError(f"{expr} failed in the page: {got['error']}")
    return got["ok"]


def wait_until(page, condition: str, timeout: float = 60.0) -> None:
    """Return once the JS expression `condition` is truthy in `page` (polled from Python)."""
    _poll(page, f"() => ({condition}) || null", None, timeout, f"timed out waiting for {condition!r}")


def _poll(page, fn: str, arg: Any, timeout: float, message: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = page.evaluate(fn, arg)
        if got is not None:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message} within {timeout:.0f} s")
        time.sleep(POLL_S)
