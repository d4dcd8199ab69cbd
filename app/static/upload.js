// The instructor's upload form: both textareas become CodeMirror editors (YAML and Python) with line numbers,
// and the errors of the last validation are marked in the gutter at their lines.
(function () {
  "use strict";
  const errors = JSON.parse(document.getElementById("upload-errors").textContent || "[]");
  window.gradaxUploadEditors = {};
  for (const textarea of document.querySelectorAll("textarea[data-editor]")) {
    const file = textarea.dataset.file;
    const editor = GradaxEditor.createFormEditor(textarea, {
      language: textarea.dataset.editor,
      label: file === "problem.yaml" ? "Problem YAML" : "Reference solution (Python)",
      testid: "editor-" + textarea.dataset.editor,
    });
    editor.setErrors(errors.filter((e) => e.file === file));
    window.gradaxUploadEditors[file] = editor;  // for the browser tests
  }

  // The server answers once it has validated both files (and, with the box ticked, started their check in the
  // background: the answer is the check's own page). Until then the page says what it is doing and how long it
  // has been, and a second click cannot send the form twice.
  const form = document.querySelector("form.upload");
  const progress = document.querySelector("[data-testid=upload-progress]");
  const button = form.querySelector("button[type=submit]");
  const label = button.textContent;
  let ticking = null;
  form.addEventListener("submit", () => {
    const checking = form.querySelector("input[name=check]").checked;
    const doing = checking ? "Validating both files, then starting their check" : "Validating both files";
    const started = Date.now();
    const show = () => {
      const seconds = Math.round((Date.now() - started) / 1000);
      progress.textContent = doing + "\u2026" + (seconds >= 1 ? " " + seconds + " s" : "");
    };
    // Disabled after this event: a disabled button would drop its own submission.
    setTimeout(() => { button.disabled = true; }, 0);
    button.textContent = "Validating\u2026";
    progress.hidden = false;
    show();
    ticking = setInterval(show, 1000);
  });
  // Back to this page from the browser's history (its back-forward cache keeps the page as it was left).
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    clearInterval(ticking);
    button.disabled = false;
    button.textContent = label;
    progress.hidden = true;
  });
})();
