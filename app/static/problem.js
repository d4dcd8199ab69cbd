// The problem page: editor, Run/Submit with live status, results, hints, history, solution reveal.
// Everything from the server or the student is inserted with textContent, never as HTML.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("problem-config").textContent);
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 300;
  const WAIT_S = 2;
  let busy = false;

  const editor = GradaxEditor.create($("editor"), {
    doc: config.draft != null ? config.draft : config.starter,
    onSubmit: () => grade("submit"),
    onRun: () => grade("run"),
    onChange: scheduleDraftSave,
  });
  window.gradaxEditor = editor;  // for the browser tests and the console

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text != null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  async function api(method, path, body) {
    const headers = { "Accept": "application/json", "X-CSRF-Token": config.csrf };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch("/api/v1" + path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    return { ok: resp.ok, status: resp.status, data, retryAfter: resp.headers.get("Retry-After") };
  }

  function setStatus(text, cls) {
    const s = $("status");
    s.textContent = text;
    s.className = "status-line" + (cls ? " " + cls : "");
  }

  function setBusy(value) {
    busy = value;
    for (const id of ["run-button", "submit-button"]) { if ($(id)) $(id).disabled = value; }
  }

  const VERDICTS = {
    accepted: "Accepted", wrong_answer: "Wrong answer", runtime_error: "Runtime error",
    time_limit_exceeded: "Time limit exceeded", memory_limit_exceeded: "Memory limit exceeded",
    output_limit_exceeded: "Output limit exceeded", syntax_error: "Syntax error",
    invalid_submission: "Invalid submission", internal_error: "Grader error",
  };

  function errorText(resp) {
    const d = resp.data && resp.data.detail;
    if (typeof d === "string") return d;
    if (Array.isArray(d)) return d.map((e) => e.msg).join("; ");
    return "request failed (HTTP " + resp.status + ")";
  }

  async function grade(mode) {
    if (!config.loggedIn || busy) return;
    setBusy(true);
    $("result").hidden = true;  // the previous result no longer describes the code being graded
    $("verdict").textContent = "";
    const started = performance.now();
    setStatus(mode === "run" ? "Sending to the grader (public tests)…" : "Sending to the grader (all tests)…", "working");
    const resp = await api("POST", "/submissions", { problem_id: config.problemId, code: editor.getValue(), mode });
    if (!resp.ok) {
      let text = errorText(resp);
      if (resp.status === 429 && resp.retryAfter) text += " (retry after " + resp.retryAfter + " s)";
      setStatus(text, "bad");
      setBusy(false);
      return;
    }
    const id = resp.data.id;
    for (;;) {
      // Long poll: the server answers the moment the verdict is stored, or after WAIT_S with the current
      // state (which refreshes the status line below).
      const asked = performance.now();
      const poll = await api("GET", "/submissions/" + id + "?wait=" + WAIT_S);
      if (!poll.ok) { setStatus(errorText(poll), "bad"); break; }
      const secs = ((performance.now() - started) / 1000).toFixed(1);
      if (poll.data.status === "done") {
        setStatus("Graded in " + secs + " s.", "");
        showResult(poll.data);
        refreshHistory();
        break;
      }
      setStatus((poll.data.status === "queued" ? "Queued" : "Running your code") + "… " + secs + " s", "working");
      if (performance.now() - asked < POLL_MS) {
        await new Promise((r) => setTimeout(r, POLL_MS));  // a server that does not hold the request
      }
    }
    setBusy(false);
  }

  function showResult(sub) {
    const report = sub.report || {};
    $("result").hidden = false;
    const v = $("verdict");
    v.textContent = (sub.mode === "run" ? "Run: " : "") + (VERDICTS[sub.verdict] || sub.verdict);
    v.className = "verdict " + (sub.verdict === "accepted" ? "good" : "bad");
    $("score").textContent = report.total ? report.passed + "/" + report.total + " tests passed" : "";
    $("result-message").textContent = report.message || "";
    $("diagnosis").hidden = !report.diagnosis;
    $("diagnosis-text").textContent = report.diagnosis || "";
    const body = $("tests").querySelector("tbody");
    body.replaceChildren();
    for (const t of report.tests || []) {
      const row = el("tr", null, "test " + t.status);
      row.dataset.status = t.status;
      row.appendChild(el("td", t.name + (t.public ? "" : " (hidden)")));
      row.appendChild(el("td", t.status));
      const details = el("td");
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
    if (sub.mode === "submit" && sub.verdict === "accepted") revealSolution();
  }

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

  // Hints come from the problem files, rendered and sanitised (nh3) on the server.
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
    if (resp.ok) renderHints(resp.data.hints_html); else setStatus(errorText(resp), "bad");
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
      row.appendChild(el("td", String(s.id)));
      row.appendChild(el("td", new Date(s.created_at + "Z").toLocaleString()));
      row.appendChild(el("td", s.mode));
      row.appendChild(el("td", s.status === "done" ? (VERDICTS[s.verdict] || s.verdict) : s.status,
        s.verdict === "accepted" ? "good" : (s.status === "done" ? "bad" : "")));
      row.appendChild(el("td", s.total != null ? s.passed + "/" + s.total : ""));
      row.tabIndex = 0;
      row.title = "Show this attempt's result";
      const open = async () => {
        const r = await api("GET", "/submissions/" + s.id);
        if (r.ok && r.data.status === "done") showResult(r.data);
      };
      row.addEventListener("click", open);
      row.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
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

  let draftTimer = null;
  function scheduleDraftSave() {
    if (!config.loggedIn) return;
    clearTimeout(draftTimer);
    draftTimer = setTimeout(() => {
      api("PUT", "/problems/" + config.problemId + "/draft", { code: editor.getValue() });
    }, 1500);
  }

  if ($("run-button")) $("run-button").addEventListener("click", () => grade("run"));
  if ($("submit-button")) $("submit-button").addEventListener("click", () => grade("submit"));
  if ($("reset-button")) $("reset-button").addEventListener("click", () => {
    if (confirm("Replace your code with the starter code?")) editor.setValue(config.starter);
  });
  if ($("hint-button")) $("hint-button").addEventListener("click", nextHint);
  // The shortcut also works when focus is outside the editor (the editor handles it itself inside).
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !e.defaultPrevented) {
      e.preventDefault();
      grade(e.shiftKey ? "run" : "submit");
    }
  });

  renderHints(config.hints || []);
  if (config.solved) revealSolution();
  refreshHistory();
})();
