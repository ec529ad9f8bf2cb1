// The page's code editor: CodeMirror 6 with Python highlighting, bundled by esbuild into www/editor.js
// (`npm run build` here; `cargo xtask serve` and `cargo xtask test` run it).
//
//   import { createEditor } from './editor.js';
//   const editor = createEditor(parent, { doc: 'print(1)\n', label: 'server.py', onRun, onChange });
//   editor.text();            // the source as it is now
//   editor.setText('...');    // replaces it (undoable)
//   editor.focus();
//   editor.markLines([3, 9]);  // marks these lines (1-based) as where a traceback points; [] unmarks
//   editor.goToLine(9);        // puts the cursor at the start of line 9, scrolled into view, focused
//
// The setup is chosen for beginners typing real code, and for tests that type through WebDriver: auto-indent
// after `:` and on Enter, Tab indents (Escape then Tab leaves the editor), undo, bracket matching, line
// numbers, Ctrl-Enter (Cmd-Enter) calls `onRun`. No autocompletion pop-up and no auto-closed brackets: what one types is what one gets.

import { history, historyKeymap, defaultKeymap, indentWithTab } from '@codemirror/commands';
import { python } from '@codemirror/lang-python';
import {
  bracketMatching,
  HighlightStyle,
  indentOnInput,
  indentUnit,
  syntaxHighlighting,
} from '@codemirror/language';
import { tags } from '@lezer/highlight';
import { EditorState, StateEffect, StateField } from '@codemirror/state';
import {
  Decoration,
  EditorView,
  drawSelection,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
} from '@codemirror/view';

// The lines a traceback points at: set by markLines, cleared by the learner's next edit.
const setMarks = StateEffect.define();
const errorLine = Decoration.line({ class: 'cm-error-line' });
const marks = StateField.define({
  create: () => Decoration.none,
  update(value, transaction) {
    for (const effect of transaction.effects) {
      if (effect.is(setMarks)) {
        const doc = transaction.state.doc;
        const lines = [...new Set(effect.value)].filter((n) => n >= 1 && n <= doc.lines).sort((a, b) => a - b);
        return Decoration.set(lines.map((n) => errorLine.range(doc.line(n).from)));
      }
    }
    return transaction.docChanged ? Decoration.none : value;
  },
  provide: (field) => EditorView.decorations.from(field),
});

// Python's colours are the page's CSS variables (www/style.css), so that they follow its light or dark
// theme and keep their contrast in both.
const highlight = HighlightStyle.define([
  { tag: tags.keyword, color: 'var(--code-keyword)' },
  { tag: [tags.string, tags.special(tags.string)], color: 'var(--code-string)' },
  { tag: [tags.number, tags.bool, tags.null], color: 'var(--code-number)' },
  { tag: tags.comment, color: 'var(--code-comment)', fontStyle: 'italic' },
  { tag: [tags.definition(tags.variableName), tags.function(tags.definition(tags.variableName)), tags.className], color: 'var(--code-name)' },
  { tag: [tags.standard(tags.variableName), tags.self], color: 'var(--code-builtin)' },
  { tag: [tags.operator, tags.punctuation], color: 'var(--code-operator)' },
]);

const theme = EditorView.theme({
  '&': { fontSize: '0.9rem', backgroundColor: 'var(--code-bg)', color: 'var(--fg)' },
  '.cm-cursor': { borderLeftColor: 'var(--fg)' },
  '&.cm-focused .cm-selectionBackground, .cm-selectionBackground, ::selection': { backgroundColor: 'var(--hover)' },
  '.cm-activeLine': { backgroundColor: 'var(--surface-2)' },
  '.cm-activeLineGutter': { backgroundColor: 'var(--surface-2)' },
  '.cm-content': { fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace' },
  // Line numbers dark enough to read (WCAG AA: 4.5:1 on the gutter).
  '.cm-gutters': { backgroundColor: 'var(--code-gutter)', color: 'var(--code-gutter-fg)', borderRight: '1px solid var(--border)' },
  '&.cm-focused': { outline: '2px solid var(--accent)', outlineOffset: '-1px' },
  '.cm-scroller': { overflow: 'auto' },
  // The current line stands out only while one types in this editor.
  '&:not(.cm-focused) .cm-activeLine, &:not(.cm-focused) .cm-activeLineGutter': { backgroundColor: 'transparent' },
  '.cm-error-line, &:not(.cm-focused) .cm-error-line': { backgroundColor: 'var(--code-error-line)', boxShadow: 'inset 3px 0 var(--error)' },
});

/**
 * An editor for one program inside `parent`, holding `doc`; `label` names it for screen readers, `onRun`
 * is what Ctrl-Enter does, `onChange(text)` hears every edit (not setText's).
 */
export function createEditor(parent, { doc = '', label = 'code', onRun = () => {}, onChange = () => {} } = {}) {
  // setText's own change is not the learner's edit.
  let replacing = false;
  const changes = EditorView.updateListener.of((update) => {
    if (update.docChanged && !replacing) onChange(update.state.doc.toString());
  });
  const run = { key: 'Mod-Enter', run: () => { onRun(); return true; } };
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightSpecialChars(),
        history(),
        drawSelection(),
        indentOnInput(),
        indentUnit.of('    '),
        EditorState.tabSize.of(4),
        syntaxHighlighting(highlight),
        bracketMatching(),
        highlightActiveLine(),
        keymap.of([run, ...defaultKeymap, ...historyKeymap, indentWithTab]),
        python(),
        theme,
        marks,
        changes,
        EditorView.contentAttributes.of({
          'aria-label': `${label} source`,
          // Focusable by the keyboard as such, so that the scroller around it counts as reachable.
          tabindex: '0',
          spellcheck: 'false',
          autocorrect: 'off',
          autocapitalize: 'off',
        }),
      ],
    }),
  });
  return {
    view,
    text: () => view.state.doc.toString(),
    setText: (text) => {
      replacing = true;
      try {
        view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
      } finally {
        replacing = false;
      }
    },
    focus: () => view.focus(),
    markLines: (lines) => view.dispatch({ effects: setMarks.of(lines) }),
    goToLine: (n) => {
      const line = view.state.doc.line(Math.min(Math.max(n, 1), view.state.doc.lines));
      view.dispatch({ selection: { anchor: line.from }, effects: EditorView.scrollIntoView(line.from, { y: 'center' }) });
      view.focus();
    },
  };
}
