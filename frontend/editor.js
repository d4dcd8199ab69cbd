// The code editor of the problem page: CodeMirror 6 with Python highlighting.
// Bundled by build.sh into app/static/vendor/editor.js, exposed as the global `GradaxEditor`.
import { basicSetup } from "codemirror";
import { EditorView, keymap } from "@codemirror/view";
import { EditorState, Prec } from "@codemirror/state";
import { indentWithTab } from "@codemirror/commands";
import { python } from "@codemirror/lang-python";

// create(parent, {doc, onSubmit, onRun, onChange}) -> {getValue, setValue, focus, view}
// Ctrl/Cmd+Enter submits, Shift+Ctrl/Cmd+Enter runs the public tests.
export function create(parent, options = {}) {
  const { doc = "", onSubmit = null, onRun = null, onChange = null } = options;
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
        EditorView.contentAttributes.of({ "aria-label": "Code editor", "data-testid": "editor" }),
      ],
    }),
  });
  return {
    view,
    getValue: () => view.state.doc.toString(),
    setValue: (text) => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } }),
    focus: () => view.focus(),
  };
}
