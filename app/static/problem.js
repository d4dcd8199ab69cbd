// The problem page: editor, Run/Submit with live status, results, hints, history, solution reveal.
// Everything from the server or the student is inserted with textContent, never as HTML; the only HTML
// inserted is what the server rendered from Markdown and sanitised (nh3): hints and diagnoses.
// Sections: helpers · API and session loss · drafts · grading · results · examples · hints · solution and
// comparison · history (attempt view) · phone tabs · start-up.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("problem-config").textContent);
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 300;
  const WAIT_S = 2;
  const DRAFT_DELAY_MS = 1500;
  // Code typed while the session was lost (logged out in another tab) waits here until it reaches the server.
  const PENDING_KEY = "gradax:pending-draft:" + config.problemId;
  let busy = false;

  const editor = GradaxEditor.create($("editor"), {
    doc: config.draft != null ? config.draft : config.starter,
    onSubmit: () => grade("submit"),
    onRun: () => grade("run"),
    onChange: onEdit,
    describedBy: "editor-help",
  });
  window.gradaxEditor = editor;  // for the browser tests and the console

  // ---- helpers -------------------------------------------------------------------------------------------
  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text != null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  function setStatus(text, cls) {
    const s = $("status");
    s.replaceChildren(document.createTextNode(text));
    s.className = "status-line" + (cls ? " " + cls : "");
  }

  function setBusy(value) {
    busy = value;
    for (const id of ["run-button", "submit-button"]) { if ($(id)) $(id).disabled = value; }
  }

  // The stage that decided a test, in the order the grader runs them (graders/compare.py, model_checks.py).
  const STAGES = {
    structure: "Structure", shape: "Shape", dtype: "Dtype", state: "Model state",
    batch_invariance: "Batch invariance", finite: "Finite values", values: "Values", gradients: "Gradients",
    retrace: "Retracing", eval_determinism: "Eval mode",
  };

  const VERDICTS = {
    accepted: "Accepted", wrong_answer: "Wrong answer", runtime_error: "Runtime error",
    time_limit_exceeded: "Time limit exceeded", memory_limit_exceeded: "Memory limit exceeded",
    output_limit_exceeded: "Output limit exceeded", syntax_error: "Syntax error",
    invalid_submission: "Invalid submission", internal_error: "Grader error",
  };

  function when(iso) { return new Date(iso + (iso.endsWith("Z") ? "" : "Z")).toLocaleString(); }

  // ---- API and session loss ------------------------------------------------------------------------------
  async function api(method, path, body, extra) {
    const headers = { "Accept": "application/json", "X-CSRF-Token": config.csrf };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let resp;
    try {
      resp = await fetch("/api/v1" + path, {
        method, headers, credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body), ...(extra || {}),
      });
    } catch (e) {
      return { ok: false, status: 0, data: { detail: "the server cannot be reached; check your connection" } };
    }
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    const result = { ok: resp.ok, status: resp.status, data };
    if (config.loggedIn && sessionLost(result)) onSessionLost(result.status);
    return result;
  }

  function errorText(resp) {
    const d = resp.data && resp.data.detail;
    if (typeof d === "string") return d;  // 429 and 503 already say when to retry
    if (Array.isArray(d)) return d.map((e) => e.msg).join("; ");
    return "request failed (HTTP " + resp.status + ")";
  }

  // 401: logged out (here or in another tab). 403 with the CSRF message: logged in again elsewhere, so this
  // page's token is stale. Either way the code must not be lost and the way back must be one click.
  function sessionLost(resp) {
    if (resp.status === 401) return true;
    const d = resp.data && resp.data.detail;
    return resp.status === 403 && typeof d === "string" && d.indexOf("X-CSRF-Token") >= 0;
  }

  let lost = false;
  function onSessionLost(status) {
    keepPendingDraft();
    lost = true;
    const s = $("status");
    s.className = "status-line bad";
    const link = el("a", status === 401 ? "Log in again" : "Reload the page");
    link.href = status === 401 ? config.loginUrl : location.pathname;
    link.dataset.testid = "relogin";
    s.replaceChildren(
      document.createTextNode(status === 401
        ? "You are logged out (perhaps in another tab). Your code is kept in this browser. "
        : "You logged in again in another tab. Your code is kept in this browser. "),
      link, document.createTextNode(" to come back to this problem with it."));
  }

  // ---- drafts --------------------------------------------------------------------------------------------
  let draftTimer = null;
  let dirty = false;
  function onEdit() {
    if (!config.loggedIn) { keepPendingDraft(); return; }
    dirty = true;
    if (lost) { keepPendingDraft(); return; }
    clearTimeout(draftTimer);
    draftTimer = setTimeout(() => saveDraft(false), DRAFT_DELAY_MS);
  }

  function keepPendingDraft() {
    try {
      localStorage.setItem(PENDING_KEY, JSON.stringify({ code: editor.getValue(), user: config.username, at: Date.now() }));
    } catch (e) { /* storage full or disabled: nothing more to do */ }
  }

  async function saveDraft(leaving) {
    clearTimeout(draftTimer);
    if (!config.loggedIn || !dirty) return;
    dirty = false;
    const code = editor.getValue();
    if (leaving) {
      // The page may be gone before an answer: keepalive lets the request outlive it (bodies up to 64 KiB).
      keepPendingDraft();  // and if even that request is lost, the next visit finds the code here
      fetch("/api/v1/problems/" + config.problemId + "/draft", {
        method: "PUT", keepalive: true, credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": config.csrf },
        body: JSON.stringify({ code }),
      }).then((r) => { if (r.ok) clearPendingDraft(code); }).catch(() => {});
      return;
    }
    const resp = await api("PUT", "/problems/" + config.problemId + "/draft", { code });
    if (resp.ok) clearPendingDraft(code); else dirty = true;
  }

  function clearPendingDraft(savedCode) {
    try {
      const pending = JSON.parse(localStorage.getItem(PENDING_KEY) || "null");
      if (pending && pending.code === savedCode) localStorage.removeItem(PENDING_KEY);
    } catch (e) { /* nothing kept */ }
  }

  function restorePendingDraft() {
    let pending = null;
    try { pending = JSON.parse(localStorage.getItem(PENDING_KEY) || "null"); } catch (e) { pending = null; }
    // Someone else's unsaved code (a shared computer) is not put into this account.
    if (pending && config.loggedIn && pending.user && pending.user !== config.username) return;
    if (!pending || typeof pending.code !== "string" || pending.code === editor.getValue()) {
      if (pending) try { localStorage.removeItem(PENDING_KEY); } catch (e) { /* ignore */ }
      return;
    }
    editor.setValue(pending.code);
    if (config.loggedIn) {
      setStatus("Your code from before you were logged out is back in the editor, and saved.", "");
      dirty = true;
      saveDraft(false);
    }
  }

  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") saveDraft(true); });
  window.addEventListener("pagehide", () => saveDraft(true));

  // ---- grading -------------------------------------------------------------------------------------------
  async function grade(mode) {
    if (!config.loggedIn || busy) return;
    setBusy(true);
    closeAttempt();
    $("result").hidden = true;  // the previous result no longer describes the code being graded
    $("verdict").textContent = "";
    const started = performance.now();
    setStatus(mode === "run" ? "Sending to the grader (public tests)…" : "Sending to the grader (all tests)…", "working");
    dirty = false;  // posting the code saves it as the draft too
    const resp = await api("POST", "/submissions", { problem_id: config.problemId, code: editor.getValue(), mode });
    if (!resp.ok) {
      if (!sessionLost(resp)) setStatus(errorText(resp), "bad");
      dirty = true;
      setBusy(false);
      return;
    }
    const id = resp.data.id;
    for (let first = true; ; first = false) {
      // Long poll: the server answers the moment the verdict is stored, or after WAIT_S with the current
      // state (which refreshes the status line below). The first look answers at once, so what the attempt
      // waits for (a slot, its problem's first preparation) shows now, not WAIT_S later.
      const asked = performance.now();
      const poll = await api("GET", "/submissions/" + id + "?wait=" + (first ? 0 : WAIT_S));
      if (!poll.ok) { if (!sessionLost(poll)) setStatus(errorText(poll), "bad"); break; }
      const secs = ((performance.now() - started) / 1000).toFixed(1);
      if (poll.data.status === "done") {
        setStatus("Graded in " + secs + " s.", "");
        showResult(poll.data);
        refreshHistory();
        break;
      }
      setStatus(waitingText(poll.data) + " (" + secs + " s so far)", "working");
      $("status").dataset.phase = poll.data.phase || poll.data.status;
      if (!first && performance.now() - asked < POLL_MS) {
        await new Promise((r) => setTimeout(r, POLL_MS));  // a server that does not hold the request
      }
    }
    setBusy(false);
  }

  // While an attempt waits: what it waits for (a grading slot, its problem's first preparation, its own run),
  // its place in the queue and the server's estimate (app/services/waiting.py).
  function waitingText(sub) {
    const phase = sub.phase || sub.status;
    const about = sub.estimate_s != null ? ", about " + Math.max(1, Math.round(sub.estimate_s)) + " s to go" : "";
    if (phase === "preparing") return "Preparing this problem (first use)" + about;
    if (phase === "running") return "Running your code" + about;
    if (sub.queue_position != null) {
      const place = sub.queue_position === 1 ? "next in line" : "number " + sub.queue_position + " in line";
      return "Queued: " + place + about;
    }
    return "Queued";
  }

  // ---- results -------------------------------------------------------------------------------------------
  function showResult(sub) {
    const report = sub.report || {};
    $("result").hidden = false;
    const v = $("verdict");
    v.textContent = (sub.mode === "run" ? "Run: " : "") + (VERDICTS[sub.verdict] || sub.verdict);
    v.className = "verdict " + (sub.verdict === "accepted" ? "good" : "bad");
    $("score").textContent = report.total ? report.passed + "/" + report.total + " tests passed" : "";
    $("result-message").textContent = report.message || "";
    $("diagnosis").hidden = !report.diagnosis;
    // diagnosis_html: the report's Markdown rendered and sanitised by the server, like hints
    if (sub.diagnosis_html) $("diagnosis-text").innerHTML = sub.diagnosis_html;
    else $("diagnosis-text").textContent = report.diagnosis || "";
    const body = $("tests").querySelector("tbody");
    body.replaceChildren();
    for (const t of report.tests || []) {
      const row = el("tr", null, "test " + t.status);
      row.dataset.status = t.status;
      row.appendChild(el("td", t.name + (t.public ? "" : " (hidden)")));
      row.appendChild(el("td", t.status));
      const details = el("td");
      if (t.stage && t.status !== "passed") {
        const stage = el("div", "Stage: " + (STAGES[t.stage] || t.stage), "stage muted");
        stage.dataset.stage = t.stage;
        details.appendChild(stage);
      }
      if (t.message && t.status !== "passed") details.appendChild(el("div", t.message));
      if (t.expected != null) details.appendChild(el("pre", "expected: " + t.expected + "\ngot:      " + t.got));
      if (t.max_abs_error != null && t.status !== "passed") {
        details.appendChild(el("div", "max abs error " + t.max_abs_error.toPrecision(3) +
          (t.max_rel_error != null ? ", max rel error " + t.max_rel_error.toPrecision(3) : ""), "muted"));
      }
      if (t.traceback && t.public) details.appendChild(el("pre", t.traceback, "traceback"));
      row.appendChild(details);
      body.appendChild(row);
    }
    $("tests").hidden = !(report.tests && report.tests.length);
    $("stdout-box").hidden = !report.stdout;
    $("stdout").textContent = report.stdout || "";
    const solved = sub.mode === "submit" && sub.verdict === "accepted";
    $("solution-link").hidden = !solved;
    if (solved) revealSolution();
  }

  // ---- examples: expected outputs (inputs and snippets are in the page already) -------------------------
  async function loadExpected() {
    const boxes = document.querySelectorAll("[data-testid=expected-output]");
    if (!boxes.length) return;
    const resp = await api("GET", "/problems/" + config.problemId + "/examples");
    boxes.forEach((box, i) => {
      const ex = resp.ok && resp.data[i];
      box.textContent = ex && ex.expected_text != null ? ex.expected_text
        : "not available right now (the reference could not be run); Run shows it";
    });
  }

  function wireCopyButtons() {
    for (const button of document.querySelectorAll(".copy-snippet")) {
      button.addEventListener("click", async () => {
        const code = button.parentElement.querySelector("code").textContent;
        try {
          await navigator.clipboard.writeText(code);
          button.textContent = "Copied";
        } catch (e) {
          // No clipboard permission (plain http, old browser): select the text so Ctrl+C copies it.
          const range = document.createRange();
          range.selectNodeContents(button.parentElement.querySelector("code"));
          getSelection().removeAllRanges();
          getSelection().addRange(range);
          button.textContent = "Selected: press Ctrl+C";
        }
        setTimeout(() => { button.textContent = "Copy"; }, 2000);
      });
    }
  }

  // ---- hints (rendered and sanitised by the server) -----------------------------------------------------
  function renderHints(hints) {
    const list = $("hint-list");
    list.replaceChildren(...hints.map((h) => { const li = el("li"); li.innerHTML = h; return li; }));
    const button = $("hint-button");
    if (!button) return;
    const left = config.hintsTotal - hints.length;
    button.hidden = left <= 0;
    button.textContent = hints.length ? "Show another hint (" + left + " left)" : "Show a hint (" + left + " available)";
  }

  async function nextHint() {
    const resp = await api("POST", "/problems/" + config.problemId + "/hints");
    if (resp.ok) renderHints(resp.data.hints_html); else if (!sessionLost(resp)) setStatus(errorText(resp), "bad");
  }

  // ---- solution and the side-by-side comparison ---------------------------------------------------------
  async function revealSolution() {
    $("solved-badge").hidden = false;
    if (config.solution == null) {
      const resp = await api("GET", "/problems/" + config.problemId + "/solution");
      if (!resp.ok) return;
      config.solution = resp.data.solution;
    }
    $("solution-code").textContent = config.solution;
    $("solution").hidden = false;
  }

  let compareDiff = null;
  function openCompare() {
    if (config.solution == null) return;
    if (compareDiff) compareDiff.destroy();
    $("compare-view").hidden = false;
    compareDiff = GradaxEditor.createDiff($("compare-diff"), {
      a: editor.getValue(), b: config.solution, labelA: "Your code", labelB: "Reference solution",
    });
    $("compare-view").scrollIntoView({ block: "start" });
    $("compare-heading").focus({ preventScroll: true });
  }

  function closeCompare() {
    if (compareDiff) { compareDiff.destroy(); compareDiff = null; }
    $("compare-view").hidden = true;
  }

  // ---- history: open an attempt to see its code, report and changes since -------------------------------
  let attemptDiff = null;
  let openAttempt = null;

  async function showAttempt(id) {
    const r = await api("GET", "/submissions/" + id);
    if (!r.ok || r.data.status !== "done") return;
    const sub = r.data;
    openAttempt = sub;
    $("attempt-number").textContent = "#" + sub.id;
    $("attempt-meta").textContent = (sub.mode === "run" ? "Run" : "Submit") + " · " +
      (VERDICTS[sub.verdict] || sub.verdict) + (sub.total != null ? " · " + sub.passed + "/" + sub.total + " tests" : "") +
      " · sent " + when(sub.created_at);
    if (attemptDiff) attemptDiff.destroy();
    $("attempt-view").hidden = false;
    attemptDiff = GradaxEditor.createDiff($("attempt-diff"), {
      a: sub.code, b: editor.getValue(), labelA: "Attempt " + sub.id + " (read-only)", labelB: "Your code now",
    });
    $("attempt-diff-summary").textContent = attemptDiff.chunks === 0 ? "Same as the code in your editor."
      : attemptDiff.chunks + " change" + (attemptDiff.chunks === 1 ? "" : "s") + " since (highlighted).";
    setStatus("Showing attempt #" + sub.id + " from " + when(sub.created_at) + ", not your current code.", "");
    showResult(sub);
    for (const row of $("history").querySelectorAll("tbody tr")) {
      row.setAttribute("aria-current", row.dataset.id === String(sub.id) ? "true" : "false");
    }
    showPanel("workspace");
    $("attempt-view").scrollIntoView({ block: "nearest" });
    $("attempt-heading").focus({ preventScroll: true });
  }

  function closeAttempt() {
    if (attemptDiff) { attemptDiff.destroy(); attemptDiff = null; }
    openAttempt = null;
    $("attempt-view").hidden = true;
    for (const row of document.querySelectorAll("#history tbody tr")) row.setAttribute("aria-current", "false");
  }

  function restoreAttempt() {
    if (!openAttempt) return;
    const id = openAttempt.id;
    editor.setValue(openAttempt.code);  // one undoable change: Ctrl+Z brings the previous code back
    closeAttempt();
    $("result").hidden = true;
    setStatus("Attempt #" + id + "'s code is in the editor (Ctrl+Z undoes this).", "");
    editor.focus();
  }

  async function refreshHistory() {
    const table = $("history");
    if (!table) return;
    const resp = await api("GET", "/submissions?limit=20&problem_id=" + encodeURIComponent(config.problemId));
    if (!resp.ok) return;
    const body = table.querySelector("tbody");
    body.replaceChildren();
    for (const s of resp.data.data) {
      const row = el("tr");
      row.dataset.id = String(s.id);
      row.appendChild(el("td", String(s.id)));
      row.appendChild(el("td", when(s.created_at)));
      row.appendChild(el("td", s.mode));
      row.appendChild(el("td", s.status === "done" ? (VERDICTS[s.verdict] || s.verdict) : s.status,
        s.verdict === "accepted" ? "good" : (s.status === "done" ? "bad" : "")));
      row.appendChild(el("td", s.total != null ? s.passed + "/" + s.total : ""));
      row.tabIndex = 0;
      row.title = "Show this attempt: its code, report and changes since";
      row.setAttribute("aria-label", "Attempt " + s.id + ", " + s.mode + ", " +
        (s.status === "done" ? (VERDICTS[s.verdict] || s.verdict) : s.status) + ": show its code and report");
      row.addEventListener("click", () => showAttempt(s.id));
      row.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); showAttempt(s.id); } });
      body.appendChild(row);
    }
    if (!resp.data.data.length) {
      const row = el("tr");
      const cell = el("td", "No attempts yet.", "muted");
      cell.colSpan = 5;
      row.appendChild(cell);
      body.appendChild(row);
    }
  }

  // ---- phone: the statement and the code are two tabs ---------------------------------------------------
  function showPanel(name) {
    $("problem").dataset.panel = name;
    for (const [tab, panel] of [["tab-statement", "statement"], ["tab-workspace", "workspace"]]) {
      const selected = panel === name;
      $(tab).setAttribute("aria-selected", selected ? "true" : "false");
      $(tab).tabIndex = selected ? 0 : -1;
    }
  }

  function wireTabs() {
    $("tab-statement").addEventListener("click", () => showPanel("statement"));
    $("tab-workspace").addEventListener("click", () => { showPanel("workspace"); editor.focus(); });
    for (const tab of [$("tab-statement"), $("tab-workspace")]) {
      tab.addEventListener("keydown", (e) => {
        if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
        const next = tab.id === "tab-statement" ? $("tab-workspace") : $("tab-statement");
        next.click();
        next.focus();
      });
    }
    // Links into the other panel switch to it (skip link, solution link).
    document.addEventListener("click", (e) => {
      const a = e.target.closest && e.target.closest("a[href^='#']");
      if (!a) return;
      const target = a.getAttribute("href").slice(1);
      if (target === "workspace") showPanel("workspace");
      if (target === "solution" || target === "examples") showPanel("statement");
      if (target === "compare-view") { e.preventDefault(); openCompare(); }
    });
  }

  // ---- start-up ------------------------------------------------------------------------------------------
  if ($("run-button")) $("run-button").addEventListener("click", () => grade("run"));
  if ($("submit-button")) $("submit-button").addEventListener("click", () => grade("submit"));
  if ($("reset-button")) $("reset-button").addEventListener("click", () => {
    if (confirm("Replace your code with the starter code?")) editor.setValue(config.starter);
  });
  if ($("hint-button")) $("hint-button").addEventListener("click", nextHint);
  $("attempt-restore").addEventListener("click", restoreAttempt);
  $("attempt-close").addEventListener("click", () => { closeAttempt(); $("result").hidden = true; setStatus("", ""); });
  $("compare-button").addEventListener("click", openCompare);
  $("compare-close").addEventListener("click", closeCompare);
  // The shortcut also works when focus is outside the editor (the editor handles it itself inside).
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !e.defaultPrevented) {
      e.preventDefault();
      grade(e.shiftKey ? "run" : "submit");
    }
  });

  wireTabs();
  wireCopyButtons();
  renderHints(config.hints || []);
  restorePendingDraft();
  if (config.solved) revealSolution();
  refreshHistory();
  loadExpected();
})();
