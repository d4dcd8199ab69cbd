"""The problem page's rough edges (issue 17), each seen in a real Chromium against a real server.

One server for the whole module (`shared_server`); each test uses users of its own. Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from live_server import PASSWORD, SharedServer
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]
PID = "nnx-module-basics"
PROBLEM = yaml.safe_load((ROOT / "problems" / f"{PID}.yaml").read_text())
WRONG = next(m for m in PROBLEM["known_mistakes"] if m["id"] == "no-scaling")
RIGHT = (ROOT / "reference_solutions" / "nnx_module_basics.py").read_text()
# Touches 8 GiB, four times the problem's memory limit: a limit verdict in well under a second of CPU.
MEMORY_HOG = ("import numpy as np\n\n\ndef module_basics_forward(seed, x, features):\n"
              "    return np.ones(8 * 1024**3 // 8)[: int(features)]\n")
GRADING_TIMEOUT_MS = 180_000  # a cold sandboxed Python per submission, on a shared 2-core machine
REFERENCE_TIMEOUT_MS = 180_000  # the first expected outputs of a problem run the trusted reference
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
                         "has_touch": True}
DESKTOP: dict[str, Any] = {"viewport": {"width": 1366, "height": 900}}

# Same xdist worker as the other grading tests: real grading, kept from competing for the 2 cores.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("web-grading")]


def login(page, server: SharedServer, username: str, next_path: str = "/") -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server.base}/login?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(server.base + next_path)


def replace_code(page, code: str) -> None:  # type: ignore[no-untyped-def]
    """Type into CodeMirror the way a paste does: select all, then insert the text."""
    page.locator("#editor .cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(code)
    assert page.evaluate("window.gradaxEditor.getValue()") == code


def editor_value(page) -> str:  # type: ignore[no-untyped-def]
    return str(page.evaluate("window.gradaxEditor.getValue()"))


def api_get(server: SharedServer, path: str, token: str) -> Any:
    """The JSON API with that user's bearer token, outside the browser."""
    request = urllib.request.Request(server.base + "/api/v1" + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request) as r:
        return json.load(r)


def wait_for_draft(server: SharedServer, username: str, code: str, why: str) -> None:
    """Poll the user's saved draft of the problem until it is `code` (10 s at most)."""
    token = server.token(username)
    deadline = time.monotonic() + 10
    while api_get(server, f"/problems/{PID}", token)["draft"] != code:
        assert time.monotonic() < deadline, why
        time.sleep(0.2)


def lines(text: str) -> list[str]:
    """Non-empty lines: CodeMirror's DOM text has an extra newline for each empty line."""
    return [line for line in text.splitlines() if line.strip()]


def no_code_cut_off(page, selector: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Code blocks under `selector` whose content is wider than the block (hidden or needing a scrollbar)."""
    return list(page.evaluate(
        "(sel) => Array.from(document.querySelectorAll(sel)).filter((e) => e.offsetParent !== null"
        " && e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent.slice(0, 60))", selector))


@pytest.fixture
def pages(browser):  # type: ignore[no-untyped-def]
    """New browser contexts for a test, closed after it; page errors are collected and must stay empty."""
    contexts, errors = [], []

    def new(**options: Any):  # type: ignore[no-untyped-def]
        context = browser.new_context(**{**DESKTOP, **options})
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield new
    for context in contexts:
        context.close()
    assert errors == []


# -- 1, 3, 4, 5: examples before any Run; Runs count as started; an old attempt; the solution after Accepted ----

def test_examples_runs_history_and_solution(shared_server: SharedServer, pages, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    shared_server.create_user("s-flow")
    page = pages()
    login(page, shared_server, "s-flow", f"/problems/{PID}")
    page.wait_for_selector(".cm-editor")

    # 5: concrete inputs, a snippet and the expected output, before any Run
    example = page.locator("[data-testid=example]").first
    assert page.locator("[data-testid=example]").count() == len(PROBLEM["tests"]["public"])
    values = [v.inner_text() for v in example.locator("[data-testid=arg-value]").all()]
    assert values == ["0.0", "[1. 2. 3.]", "4.0"], values
    snippet = example.locator("[data-testid=snippet]").text_content() or ""  # inside a closed <details>
    assert "x = jnp.array([1., 2., 3.], dtype=jnp.float32)" in snippet
    expected = example.locator("[data-testid=expected-output]")
    expect(expected).not_to_have_text("computing…", timeout=REFERENCE_TIMEOUT_MS)
    expected_text = expected.inner_text()
    assert re.fullmatch(r"\[[-\d. ]+\]", expected_text), expected_text
    assert "random" not in example.inner_text()  # no generator specs
    page.screenshot(path=str(artifacts / "problem-examples.png"), full_page=True)

    replace_code(page, WRONG["code"])
    page.click("#run-button")
    page.wait_for_selector("#verdict:not(:empty)", timeout=GRADING_TIMEOUT_MS)
    assert page.locator("#verdict").inner_text() == "Run: Wrong answer"
    # ... and what the page showed as expected is exactly what Run compared against
    assert f"expected: {expected_text}" in page.locator("#tests tbody tr").first.inner_text()

    # 4: a Run is a start
    page.goto(shared_server.base + "/")
    progress = page.locator(f"li[data-problem='{PID}'] [data-testid=progress]")
    assert progress.inner_text() == "started: 1 run, not submitted yet"
    page.screenshot(path=str(artifacts / "list-started-by-a-run.png"), full_page=False)

    # 1: an old attempt shows its own code read-only, its time and verdict, a diff, and can be restored
    page.goto(f"{shared_server.base}/problems/{PID}")
    page.wait_for_selector(".cm-editor")
    assert editor_value(page) == WRONG["code"]  # the Run saved the draft
    current = WRONG["code"].rstrip("\n") + "\n\n# a second thought\n"
    replace_code(page, current)
    page.locator("#history tbody tr").first.click()
    view = page.locator("[data-testid=attempt-view]")
    expect(view).to_be_visible()
    assert re.fullmatch(r"Run · Wrong answer · 0/1 tests · sent .+", page.locator("#attempt-meta").inner_text())
    assert page.locator("#status").inner_text().startswith("Showing attempt #")
    left = view.locator(".cm-merge-a .cm-content")
    assert left.get_attribute("contenteditable") == "false"  # read-only
    assert lines(left.inner_text()) == lines(WRONG["code"])
    assert lines(view.locator(".cm-merge-b .cm-content").inner_text()) == lines(current)
    assert page.locator("[data-testid=diff-summary]").inner_text() == "1 change since (highlighted)."
    assert view.locator(".cm-changedLine").count() >= 1
    assert page.locator("#verdict").inner_text() == "Run: Wrong answer"  # that attempt's report
    assert editor_value(page) == current  # the editor keeps the current code until asked
    page.screenshot(path=str(artifacts / "problem-history-attempt.png"), full_page=True)
    page.click("#attempt-restore")
    assert editor_value(page) == WRONG["code"]
    expect(view).to_be_hidden()

    # 3: after Accepted the result panel points at the solution and offers "your code | reference"
    replace_code(page, RIGHT)
    page.click("#submit-button")
    page.wait_for_selector("#verdict:not(:empty)", timeout=GRADING_TIMEOUT_MS)
    assert page.locator("#verdict").inner_text() == "Accepted"
    link = page.locator("#solution-link")
    expect(link).to_be_visible()
    assert link.locator("a[href='#solution']").is_visible()
    assert no_code_cut_off(page, "#solution pre") == []
    link.locator("#compare-link").click()
    compare = page.locator("[data-testid=compare-view]")
    expect(compare).to_be_visible()
    assert lines(compare.locator(".cm-merge-a .cm-content").inner_text()) == lines(RIGHT)
    assert "def module_basics_forward" in compare.locator(".cm-merge-b .cm-content").inner_text()
    assert compare.bounding_box()["y"] < 900  # scrolled into view, not 2000 px below  # type: ignore[index]
    page.screenshot(path=str(artifacts / "problem-accepted-compare.png"), full_page=False)
    page.click("a[href='#solution']")
    assert page.locator("#solution").bounding_box()["y"] < 900  # type: ignore[index]
    assert serious_violations(page) == []  # with a result, the history, the solution and the comparison open

    # 2: a limit verdict states the limit and what was seen, on the page (not "stopped from outside")
    replace_code(page, MEMORY_HOG)
    page.click("#run-button")
    expect(page.locator("#verdict")).to_have_text("Run: Memory limit exceeded", timeout=GRADING_TIMEOUT_MS)
    message = page.locator("#result-message").inner_text()
    limit = PROBLEM["limits"]["memory_mb"]
    assert re.search(rf"the memory of the run reached \d+ MiB, the limit is {limit} MiB", message), message
    assert "stopped from outside" not in message
    # ... and the test that was running when the limit hit says so in its row
    assert page.locator("#tests tbody tr", has_text=f"the limit is {limit} MiB").count() == 1


# -- 8: logged out in another tab ------------------------------------------------------------------------------

def test_logged_out_elsewhere_offers_a_login_that_keeps_the_code(shared_server: SharedServer, pages,  # type: ignore[no-untyped-def]
                                                                 artifacts: Path) -> None:
    shared_server.create_user("s-logout")
    page = pages()
    login(page, shared_server, "s-logout", f"/problems/{PID}")
    page.wait_for_selector(".cm-editor")
    other = page.context.new_page()  # the other tab: logs out
    other.goto(shared_server.base + "/")
    other.click("form[action='/logout'] button")
    other.wait_for_url(shared_server.base + "/")
    other.close()

    code = "def module_basics_forward(seed, x, features):\n    return x  # typed after the other tab logged out\n"
    replace_code(page, code)
    page.click("#run-button")
    relogin = page.locator("[data-testid=relogin]")
    expect(relogin).to_be_visible()
    assert "logged out" in page.locator("#status").inner_text()
    assert "bearer token" not in page.locator("#status").inner_text()
    assert relogin.get_attribute("href") == f"/login?next=/problems/{PID}"
    page.screenshot(path=str(artifacts / "problem-logged-out-elsewhere.png"), full_page=False)

    relogin.click()
    page.fill("input[name=username]", "s-logout")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{shared_server.base}/problems/{PID}")
    page.wait_for_selector(".cm-editor")
    assert editor_value(page) == code
    expect(page.locator("#status")).to_contain_text("back in the editor, and saved")
    wait_for_draft(shared_server, "s-logout", code, "the kept code never reached the server")


# -- 9: an edit followed at once by leaving the page -----------------------------------------------------------

def test_an_edit_survives_leaving_the_page_at_once(shared_server: SharedServer, pages) -> None:  # type: ignore[no-untyped-def]
    shared_server.create_user("s-draft")
    page = pages()
    login(page, shared_server, "s-draft", f"/problems/{PID}")
    page.wait_for_selector(".cm-editor")
    code = "# closed 0.1 s after typing\n" + PROBLEM["starter_code"]
    replace_code(page, code)
    page.close(run_before_unload=True)  # within the 1.5 s save delay: only pagehide's keepalive save can keep it
    wait_for_draft(shared_server, "s-draft", code, "the draft was lost when the page closed")

    # and a reload straight after typing shows the new code
    page = pages()
    login(page, shared_server, "s-draft", f"/problems/{PID}")
    page.wait_for_selector(".cm-editor")
    assert editor_value(page) == code
    again = code + "# and once more, then reload\n"
    replace_code(page, again)
    page.reload()
    page.wait_for_selector(".cm-editor")
    assert editor_value(page) == again


# -- 11: phone widths ----------------------------------------------------------------------------------------------

def test_phone_widths(shared_server: SharedServer, pages, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    shared_server.create_user("s-phone")
    shared_server.create_user("t-phone", role="instructor")
    page = pages(**PHONE)
    login(page, shared_server, "s-phone", "/problems/nnx-batchnorm-modes")
    page.wait_for_selector(".cm-editor", state="attached")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert no_code_cut_off(page, ".statement pre") == []
    page.screenshot(path=str(artifacts / "phone-problem-statement.png"), full_page=False)
    page.click("#tab-workspace")
    editor = page.locator("#editor").bounding_box()
    assert editor is not None and editor["y"] < 844 / 3, editor  # the editor is at the top, not 3.5 screens down
    assert editor["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(artifacts / "phone-problem-code.png"), full_page=False)

    page = pages(**PHONE)
    login(page, shared_server, "t-phone", "/instructor")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the instructor page is {width} px wide on a 390 px screen"
    page.screenshot(path=str(artifacts / "phone-instructor.png"), full_page=True)

    # desktop: statement code blocks fit the ~600 px column
    page = pages()
    page.goto(shared_server.base + "/problems/nnx-batchnorm-modes")
    assert no_code_cut_off(page, ".statement pre") == []


# -- 12: keyboard, favicon, hints when logged out ------------------------------------------------------------------

def test_keyboard_skip_links_favicon_and_hint_sign_in(shared_server: SharedServer, pages, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    page = pages()
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto(f"{shared_server.base}/problems/{PID}")
    page.wait_for_selector(".cm-editor")
    favicon = page.request.get(shared_server.base + "/favicon.ico")
    assert favicon.status == 200 and favicon.headers["content-type"] == "image/x-icon"
    assert missing == []

    # skip links come first
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the editor"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "workspace"

    # Tab indents in the editor; the page says how to leave; Esc then Tab leaves
    help_text = page.locator("#editor-help").inner_text()
    assert "Esc then Tab" in help_text
    assert page.locator("#editor .cm-content").get_attribute("aria-describedby") == "editor-help"
    page.locator("#editor .cm-content").click()
    page.keyboard.press("Control+End")
    before = editor_value(page)
    page.keyboard.press("Tab")
    assert editor_value(page) != before  # indented, focus stays
    assert page.evaluate("!!document.activeElement.closest('#editor')")
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")
    assert not page.evaluate("!!document.activeElement.closest('#editor')")

    # hints: a sign-in link instead of a greyed-out button
    link = page.locator("[data-testid=hints-login]")
    assert link.inner_text() == "Sign in to see hints"
    assert link.get_attribute("href") == f"/login?next=/problems/{PID}"
    assert page.locator("#hint-button").count() == 0
    page.screenshot(path=str(artifacts / "problem-logged-out-hints.png"), full_page=True)


# -- 13 in the browser: the upload page while it waits, then errors marked in the gutter ---------------------------

def test_upload_says_what_it_is_doing_then_marks_every_error_in_the_gutter(shared_server: SharedServer, pages,  # type: ignore[no-untyped-def]
                                                                           artifacts: Path) -> None:
    """While the server validates (and, box ticked, checks: seconds to a minute), the page says so and counts the
    seconds, and a second click sends nothing; then every error of both files is listed and marked at its line."""
    from graders.scaffold import REFERENCE, TEMPLATE

    shared_server.create_user("t-upload", role="instructor")
    page = pages()
    login(page, shared_server, "t-upload", "/instructor/problems/upload")
    text = TEMPLATE.format(id="zz-upload", title="zz", function="zz_upload")
    broken = text.replace("order: 100", "order: many").replace("args: {seed: 1, x: []}", "args: {seed: 1, y: []}")
    page.wait_for_selector("[data-testid=editor-yaml]")
    page.evaluate("([y, r]) => { window.gradaxUploadEditors['problem.yaml'].setValue(y);"
                  " window.gradaxUploadEditors['reference.py'].setValue(r); }",
                  [broken, REFERENCE.format(id="zz-upload", function="zz_upload")])
    # Held until the page has been looked at: what it says while the server validates and checks.
    held: list[Any] = []
    page.route("**/instructor/problems/upload", lambda route: held.append(route)
               if route.request.method == "POST" else route.continue_())
    page.check("input[name=check]")
    noted: list[Any] = []
    page.route("**/zz-noted", lambda route: (noted.append(1), route.fulfill(status=204)))
    # While the request is held, Playwright's clicks, locators and evaluations wait for the navigation: the page
    # itself notes what it shows 1.5 s in, and clicks again, into session storage, read once the answer is in.
    page.evaluate("""() => {
      const form = document.querySelector('form.upload');
      form.addEventListener('submit', () => {
        sessionStorage.setItem('submits', String(Number(sessionStorage.getItem('submits') || 0) + 1));
        setTimeout(() => {
          const p = document.querySelector('[data-testid=upload-progress]'), b = form.querySelector('button');
          sessionStorage.setItem('seen', JSON.stringify([p.hidden, p.textContent, b.textContent, b.disabled]));
          b.click();
          fetch('/zz-noted');  // tells the test (below) that it may let the answer in
        }, 1500);
      });
      form.querySelector('button').click();
    }""")
    deadline = time.monotonic() + 60
    while not noted and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert noted and len(held) == 1
    held[0].continue_()
    page.wait_for_selector("[data-testid=upload-errors]")
    page.unroute("**/instructor/problems/upload")
    page.unroute("**/zz-noted")
    hidden, progress, button, disabled = json.loads(page.evaluate("sessionStorage.getItem('seen')"))
    assert not hidden and re.fullmatch("Validating both files, then starting their check\u2026 [1-9][0-9]* s",
                                       progress), progress
    assert button == "Validating\u2026" and disabled
    assert page.evaluate("sessionStorage.getItem('submits')") == "1"  # the second click sent nothing
    rows = page.locator("[data-testid=upload-errors] tbody tr")
    assert rows.count() == 2  # both errors in one round
    assert [r.locator("[data-testid=error-file]").inner_text() for r in rows.all()] == ["problem.yaml"] * 2
    assert [r.locator("[data-testid=error-line]").inner_text() for r in rows.all()] == ["4", "34"]
    yaml_editor = page.locator(".form-editor").first
    # The gutter draws its markers in the editor's next view update (an animation frame after the page loads): on a
    # loaded machine that came after the table, which a count read at once saw empty.
    expect(yaml_editor.locator(".cm-lint-marker-error")).to_have_count(2, timeout=15_000)
    assert yaml_editor.locator(".cm-lineNumbers").is_visible()
    assert page.evaluate("window.gradaxUploadEditors['problem.yaml'].getValue()") == broken  # nothing lost
    page.screenshot(path=str(artifacts / "instructor-upload-errors.png"), full_page=True)

    # Corrected, the files are valid: the check runs in the background and the answer is its own page, which says
    # what it is doing (the same after a reload) until the problem is saved.
    page.evaluate("y => window.gradaxUploadEditors['problem.yaml'].setValue(y)", text)
    page.check("input[name=check]")
    page.click("form.upload button[type=submit]")
    page.wait_for_url(re.compile(r".*/instructor/problems/upload/checks/\d+$"))
    status = page.locator("[data-testid=upload-check]")
    if status.get_attribute("data-status") == "running":
        said = status.inner_text()
        assert re.search(r"Checking zz-upload(, step [12] of 2)?: .+ [0-9]+ s\.", said), said
        page.reload()
        expect(page.locator("[data-testid=upload-check]")).to_have_attribute("data-status", re.compile("running|done"))
    expect(page.locator("[data-testid=upload-ok]")).to_be_visible(timeout=180_000)
    assert page.locator("[data-testid=upload-check]").get_attribute("data-status") == "done"
    page.screenshot(path=str(artifacts / "instructor-upload-checked.png"), full_page=True)
    page.click("[data-testid=upload-ok] a")
    expect(page.locator("h1")).to_contain_text("zz")


# -- accessibility: axe-core on the list, problem and instructor pages ---------------------------------------------

def serious_violations(page) -> list[str]:  # type: ignore[no-untyped-def]
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def test_axe_finds_no_serious_or_critical_violations(shared_server: SharedServer, pages) -> None:  # type: ignore[no-untyped-def]
    shared_server.create_user("s-axe")
    shared_server.create_user("t-axe", role="instructor")
    found: dict[str, list[str]] = {}
    for viewport in (DESKTOP, PHONE):
        page = pages(**viewport)
        page.goto(shared_server.base + "/")
        found["list, logged out"] = serious_violations(page)
        page.goto(f"{shared_server.base}/problems/{PID}")
        page.wait_for_selector(".cm-editor", state="attached")
        found["problem, logged out"] = serious_violations(page)
        login(page, shared_server, "s-axe", "/")
        found["list"] = serious_violations(page)
        page.goto(f"{shared_server.base}/problems/{PID}")
        page.wait_for_selector(".cm-editor", state="attached")
        expect(page.locator("[data-testid=expected-output]").first).not_to_have_text(
            "computing…", timeout=REFERENCE_TIMEOUT_MS)
        found["problem"] = serious_violations(page)

        page = pages(**viewport)
        login(page, shared_server, "t-axe", "/instructor")
        found["instructor"] = serious_violations(page)
        page.goto(shared_server.base + "/instructor/problems/upload")
        page.wait_for_selector("[data-testid=editor-yaml]")
        found["instructor upload"] = serious_violations(page)
        assert {k: v for k, v in found.items() if v} == {}, viewport
