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
})();
