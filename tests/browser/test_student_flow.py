"""A student in a real browser: register, solve nnx-module-basics after one wrong try, see progress."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from live_server import SharedServer
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]
PID = "nnx-module-basics"
PROBLEM = yaml.safe_load((ROOT / "problems" / f"{PID}.yaml").read_text())
WRONG = next(m for m in PROBLEM["known_mistakes"] if m["id"] == "no-scaling")
PLAIN_KERNEL = next(m for m in PROBLEM["known_mistakes"] if m["id"] == "plain-array-kernel")
RIGHT = (ROOT / "reference_solutions" / "nnx_module_basics.py").read_text()
GRADING_TIMEOUT_MS = 180_000  # a cold sandboxed Python per submission, on a shared 2-core machine

# Same xdist worker as tests/api/test_grading.py: real grading in both, kept from competing for the 2 cores.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("web-grading")]


def replace_code(page, code: str) -> None:  # type: ignore[no-untyped-def]
    """Type into CodeMirror the way a paste does: select all, then insert the text."""
    page.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(code)
    assert page.evaluate("window.gradaxEditor.getValue()") == code


def test_register_fail_fix_and_solve(shared_server: SharedServer, browser, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    server = shared_server.base
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    long_polls: list[str] = []
    page.on("request", lambda req: long_polls.append(req.url) if "wait=" in req.url else None)
    try:
        page.goto(server + "/register")
        page.fill("input[name=username]", "student1")
        page.fill("input[name=password]", "a long enough password")
        page.click("button[type=submit]")
        page.wait_for_url(server + "/")
        assert page.locator("[data-testid=username]").inner_text() == "student1"

        page.click(f"a[href='/problems/{PID}']")
        page.wait_for_url(f"{server}/problems/{PID}")
        page.wait_for_selector(".cm-editor")
        # the editor starts from the starter code, with Python highlighting
        assert page.evaluate("window.gradaxEditor.getValue()") == PROBLEM["starter_code"]
        assert page.locator(".markdown h2").first.inner_text() == "Why this matters"

        page.click("#hint-button")
        page.wait_for_selector("#hint-list li")
        assert page.locator("#hint-list li").count() == 1

        replace_code(page, WRONG["code"])
        page.click("#run-button")  # public tests only
        page.wait_for_selector("#verdict:not(:empty)", timeout=GRADING_TIMEOUT_MS)
        assert page.locator("#verdict").inner_text() == "Run: Wrong answer"
        assert page.locator("#tests tbody tr").count() == len(PROBLEM["tests"]["public"])

        page.locator(".cm-content").click()
        page.keyboard.press("Control+Enter")  # the submit shortcut, from inside the editor
        page.wait_for_selector("#status.working", timeout=10_000)  # live status while grading
        # (the page's CSP forbids eval, so waits use locators rather than wait_for_function)
        page.wait_for_selector("#verdict:not(:empty)", timeout=GRADING_TIMEOUT_MS)
        assert page.locator("#verdict").inner_text() == "Wrong answer"
        diagnosis = page.locator("#diagnosis-text")
        assert diagnosis.is_visible() and diagnosis.inner_text() == WRONG["message"]
        first = page.locator("#tests tbody tr").first
        assert first.get_attribute("data-status") == "failed"
        assert "expected:" in first.inner_text()
        assert first.locator(".stage").inner_text() == "Stage: Values"
        assert page.locator("#solution").is_hidden()
        page.screenshot(path=str(artifacts / "problem-wrong-answer.png"), full_page=True)

        # Right numbers from a module whose kernel is a plain array: the model-state stage says so.
        replace_code(page, PLAIN_KERNEL["code"])
        page.click("#run-button")
        page.wait_for_selector("#verdict:not(:empty)", timeout=GRADING_TIMEOUT_MS)
        assert page.locator("#verdict").inner_text() == "Run: Wrong answer"
        first = page.locator("#tests tbody tr").first
        assert first.locator(".stage").inner_text() == "Stage: Model state"
        assert "`kernel` is a plain jax.Array: wrap it in `nnx.Param`" in first.inner_text()
        page.screenshot(path=str(artifacts / "problem-state-stage.png"), full_page=True)

        replace_code(page, RIGHT)
        page.click("#submit-button")
        page.wait_for_selector("#verdict:not(:empty)", timeout=GRADING_TIMEOUT_MS)
        assert page.locator("#verdict").inner_text() == "Accepted"
        assert page.locator("#score").inner_text() == "7/7 tests passed"
        page.wait_for_selector("#solution:not([hidden])")
        assert "def module_basics_forward" in page.locator("#solution-code").inner_text()
        assert page.locator("#solved-badge").is_visible()
        expect(page.locator("#history tbody tr")).to_have_count(4)
        page.screenshot(path=str(artifacts / "problem-accepted.png"), full_page=True)
        # Each of the four gradings waited on the server (long poll) for its verdict.
        assert len(long_polls) >= 4 and all("/api/v1/submissions/" in url for url in long_polls)

        # the draft survives a reload
        page.reload()
        page.wait_for_selector(".cm-editor")
        assert page.evaluate("window.gradaxEditor.getValue()") == RIGHT

        page.goto(server + "/")
        item = page.locator(f"li[data-problem='{PID}']")
        assert "✓ solved" in item.locator("[data-testid=progress]").inner_text()
        assert page.locator("[data-testid=overall-progress]").inner_text().startswith("You have solved 1 of")
        page.screenshot(path=str(artifacts / "problem-list-progress.png"), full_page=True)
        assert errors == []
    finally:
        context.close()


def test_problem_page_fits_a_phone(shared_server: SharedServer, browser, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    server = shared_server.base
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    try:
        page.goto(f"{server}/problems/{PID}")
        page.wait_for_selector(".cm-editor", state="attached")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"
        # the statement first; the editor is one tap away (the Code tab), not below the whole statement
        assert page.locator(".statement").is_visible() and page.locator("#editor").is_hidden()
        page.click("#tab-workspace")
        editor = page.locator("#editor").bounding_box()
        assert editor and editor["y"] < 844 / 3 and editor["width"] <= 390
        page.screenshot(path=str(artifacts / "problem-phone.png"), full_page=False)
    finally:
        context.close()
