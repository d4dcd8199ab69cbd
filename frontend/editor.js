// The code editors of gradax: CodeMirror 6 with Python (problem page) or YAML (instructor upload) highlighting,
// read-only views and side-by-side diffs (@codemirror/merge).
// Bundled by build.sh into app/static/vendor/editor.js, exposed as the global `GradaxEditor`.
import { basicSetup } from "codemirror";
import { EditorView, keymap } from "@codemirror/view";
import { EditorState, Prec } from "@codemirror/state";
import { indentWithTab } from "@codemirror/commands";
import { python } from "@codemirror/lang-python";
import { yaml } from "@codemirror/lang-yaml";
import { setDiagnostics, lintGutter } from "@codemirror/lint";
import { MergeView } from "@codemirror/merge";

function contentAttributes(label, describedBy, testid) {
  const attrs = { "aria-label": label };
  if (describedBy) attrs["aria-describedby"] = describedBy;
  if (testid) attrs["data-testid"] = testid;
  return EditorView.contentAttributes.of(attrs);
}

function handle(view) {
  return {
    view,
    getValue: () => view.state.doc.toString(),
    setValue: (text) => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } }),
    focus: () => view.focus(),
    destroy: () => view.destroy(),
  };
}

// create(parent, {doc, onSubmit, onRun, onChange, label, describedBy}) -> {getValue, setValue, focus, view}
// Ctrl/Cmd+Enter submits, Shift+Ctrl/Cmd+Enter runs the public tests. Tab indents; Esc then Tab (within 2 s)
// moves focus out of the editor (CodeMirror's tab focus mode), which the page says next to the editor.
export function create(parent, options = {}) {
  const { doc = "", onSubmit = null, onRun = null, onChange = null, label = "Code editor",
    describedBy = null } = options;
  const shortcuts = Prec.highest(keymap.of([
    { key: "Mod-Enter", preventDefault: true, run: () => { if (onSubmit) onSubmit(); return true; } },
    { key: "Shift-Mod-Enter", preventDefault: true, run: () => { if (onRun) onRun(); return true; } },
  ]));
  const listener = EditorView.updateListener.of((update) => {
    if (update.docChanged && onChange) onChange(update.state.doc.toString());
  });
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        shortcuts,
        basicSetup,
        keymap.of([indentWithTab]),
        python(),
        EditorState.tabSize.of(4),
        EditorView.lineWrapping,
        listener,
        contentAttributes(label, describedBy, "editor"),
      ],
    }),
  });
  return handle(view);
}

// A read-only Python view (an old attempt, the reference solution).
export function createReadOnly(parent, options = {}) {
  const { doc = "", label = "Code (read-only)" } = options;
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [basicSetup, python(), EditorState.readOnly.of(true), EditorView.editable.of(false),
        EditorView.lineWrapping, contentAttributes(label, null, null)],
    }),
  });
  return handle(view);
}

// Side by side, both read-only, differences highlighted: {a, b, labelA, labelB}.
// Returns {destroy, changedLines} where changedLines counts lines of b that differ from a.
export function createDiff(parent, options = {}) {
  const { a = "", b = "", labelA = "Left", labelB = "Right" } = options;
  const side = (doc, label) => ({
    doc,
    extensions: [basicSetup, python(), EditorState.readOnly.of(true), EditorView.editable.of(false),
      EditorView.lineWrapping, contentAttributes(label, null, null)],
  });
  const merge = new MergeView({ a: side(a, labelA), b: side(b, labelB), parent, gutter: true,
    highlightChanges: true });
  let changed = 0;
  for (const chunk of merge.chunks) {
    const doc = merge.b.state.doc;
    if (chunk.fromB < chunk.toB) {
      changed += doc.lineAt(Math.max(chunk.fromB, Math.min(chunk.toB, doc.length) - 1)).number
        - doc.lineAt(chunk.fromB).number + 1;
    }
  }
  return { view: merge, changedLines: changed, chunks: merge.chunks.length, destroy: () => merge.destroy() };
}

// The instructor's upload form: a textarea becomes an editor with line numbers, YAML or Python highlighting and
// located errors in the gutter. The textarea (the form field) is kept in sync, so the form posts as before.
export function createFormEditor(textarea, options = {}) {
  const { label = "Problem YAML", language = "yaml" } = options;
  const parent = document.createElement("div");
  parent.className = "editor form-editor";
  textarea.insertAdjacentElement("afterend", parent);
  textarea.hidden = true;
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: textarea.value,
      extensions: [basicSetup, keymap.of([indentWithTab]), language === "python" ? python() : yaml(),
        EditorState.tabSize.of(language === "python" ? 4 : 2), lintGutter(),
        EditorView.updateListener.of((u) => { if (u.docChanged) textarea.value = u.state.doc.toString(); }),
        contentAttributes(label, options.describedBy || null, options.testid || null)],
    }),
  });
  const h = handle(view);
  // errors: [{line, message}] with 1-based lines; each is marked on its line in the gutter.
  h.setErrors = (errors) => {
    const doc = view.state.doc;
    const diagnostics = errors.filter((e) => e.line != null).map((e) => {
      const line = doc.line(Math.min(Math.max(1, e.line), doc.lines));
      return { from: line.from, to: line.to, severity: "error", message: e.message };
    });
    view.dispatch(setDiagnostics(view.state, diagnostics));
    return diagnostics.length;
  };
  return h;
}
