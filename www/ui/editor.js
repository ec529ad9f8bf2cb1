// The code editor: CodeMirror, bundled from frontend/web/ into ../editor.js by the build. If that file is
// missing, a plain textarea with the same interface takes its place, so the page still runs programs.
//
//   const editor = createEditor(parent, { doc, label, onRun, onChange });
//   editor.text(); editor.setText(text); editor.focus();
//   editor.markLines([3]); editor.goToLine(3);  // where a traceback points (1-based lines)
// onRun: Ctrl+Enter (Cmd+Enter) was pressed; onChange(text): the learner edited the text.

let bundled;
try {
  ({ createEditor: bundled } = await import('../editor.js'));
} catch (error) {
  console.error('editor.js did not load (run `cargo xtask serve`, which builds it); plain text boxes instead:', error);
}

export function createEditor(parent, options) {
  return (bundled ?? plainEditor)(parent, options);
}

/** A textarea with the editor's interface, for when editor.js is missing. */
function plainEditor(parent, { doc, label, onRun, onChange }) {
  const area = document.createElement('textarea');
  area.className = 'plain-editor';
  area.spellcheck = false;
  area.rows = doc.split('\n').length + 1;
  area.value = doc;
  area.setAttribute('aria-label', `${label} source`);
  area.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      onRun?.();
    }
  });
  area.addEventListener('input', () => onChange?.(area.value));
  parent.append(area);
  return {
    text: () => area.value,
    setText: (text) => { area.value = text; },
    focus: () => area.focus(),
    // A textarea cannot mark a line; going to one still works.
    markLines: () => {},
    goToLine: (n) => {
      const lines = area.value.split('\n');
      const at = lines.slice(0, Math.max(n - 1, 0)).reduce((sum, line) => sum + line.length + 1, 0);
      area.focus();
      area.setSelectionRange(at, at);
    },
  };
}
