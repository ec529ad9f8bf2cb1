// A program's console: the output it writes (`output-NAME`, plain text, stderr in spans of class
// `stderr`, what the learner typed in spans of class `stdin`) and, under it, the line its input() reads
// (`stdin-NAME`): Enter sends the line (it shows in the console, as a terminal echoes it), Ctrl-D on an
// empty line ends the input. When the program has ended, the traceback lines that point into its own file
// become buttons (`trace-link`) that take the editor to that line.

import { element } from './dom.js';
import { t } from './i18n.js';

// A console keeps about this many characters; older output is dropped from the top.
const CONSOLE_LIMIT = 200_000;

export class Console {
  /** Appends the console's two elements to `parent`; `name` is the program's file name. */
  constructor(parent, name) {
    this.output = element('pre', {
      class: 'console', 'data-testid': `output-${name}`, role: 'log', 'aria-label': `${name} output`,
    });
    this.input = element('input', {
      class: 'console-input',
      'data-testid': `stdin-${name}`,
      'aria-label': `${name} input`,
      autocomplete: 'off',
      spellcheck: 'false',
    });
    this.input.disabled = true;
    this.input.addEventListener('keydown', (event) => this.onKey(event));
    parent.append(this.output, this.input);
    this.setLanguage('en');
    this.length = 0;
    // Pieces written since the last frame, and the frame that draws them.
    this.pending = [];
    this.frame = 0;
    // The running program's input: { write(text), closeStdin() }, while there is one.
    this.program = null;
  }

  /** The console's own words in `lang`. */
  setLanguage(lang) {
    this.input.placeholder = t('inputHere', lang);
    this.output.dataset.empty = t('outputHere', lang);
  }

  /** Empties the console and its input line (a new run). */
  clear() {
    this.clearOutput();
    this.input.value = '';
  }

  /** Empties what the console shows (the Clear button); a half-typed input line stays. */
  clearOutput() {
    cancelAnimationFrame(this.frame);
    this.pending = [];
    this.output.replaceChildren();
    this.length = 0;
  }

  /** Connects the input line to `program`'s stdin (null: nothing reads it). */
  attach(program) {
    this.program = program;
    this.input.disabled = program === null;
  }

  onKey(event) {
    const program = this.program;
    if (!program) return;
    if (event.key === 'Enter') {
      event.preventDefault();
      const line = `${this.input.value}\n`;
      this.input.value = '';
      this.write('stdin', line);
      program.write(line);
    } else if (event.key === 'd' && event.ctrlKey && this.input.value === '') {
      event.preventDefault();
      this.write('stdin', '^D\n');
      program.closeStdin();
      this.input.disabled = true;
    }
  }

  /**
   * Turns every traceback line of stderr that points into `file` (`File "server.py", line 9`) into a
   * button (class `trace-link`, `data-line`) that calls `jump(line)`. Returns the lines, in order.
   */
  linkTraceback(file, jump) {
    this.draw();
    const pattern = /File "([^"\n]+)", line (\d+)/g;
    const lines = [];
    for (const span of [...this.output.querySelectorAll('span.stderr')]) {
      const text = span.textContent;
      const parts = [];
      let last = 0;
      for (const match of text.matchAll(pattern)) {
        if (match[1] !== file) continue;
        const line = Number(match[2]);
        lines.push(line);
        parts.push(text.slice(last, match.index));
        const link = element('button', {
          class: 'trace-link', type: 'button', 'data-line': line, title: `go to line ${line} of ${file}`,
        }, match[0]);
        link.addEventListener('click', () => jump(line));
        parts.push(link);
        last = match.index + match[0].length;
      }
      if (parts.length === 0) continue;
      parts.push(text.slice(last));
      span.replaceChildren(...parts);
    }
    return lines;
  }

  /**
   * Appends output ('stdout', 'stderr' or 'stdin'), keeping the console scrolled to the end if it was.
   * Pieces are drawn once per frame, however many arrive: a program that prints in a tight loop sends
   * thousands a second.
   */
  write(stream, text) {
    this.pending.push([stream, text]);
    if (this.pending.length === 1) this.frame = requestAnimationFrame(() => this.draw());
  }

  /** Draws what was written since the last frame, then trims the console to its limit. */
  draw() {
    const pieces = this.pending;
    this.pending = [];
    if (pieces.length === 0) return;
    // Consecutive pieces of one stream become one text; only the last CONSOLE_LIMIT characters matter.
    const runs = [];
    for (const [stream, text] of pieces) {
      const last = runs[runs.length - 1];
      if (last && last[0] === stream) last[1].push(text);
      else runs.push([stream, [text]]);
    }
    for (const [stream, texts] of runs) this.append(stream, texts.join(''));
  }

  append(stream, whole) {
    const text = whole.length > CONSOLE_LIMIT ? whole.slice(whole.length - CONSOLE_LIMIT) : whole;
    const box = this.output;
    const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 4;
    const last = box.lastChild;
    if (last && last.className === stream) {
      last.textContent += text;
    } else {
      box.append(element('span', { class: stream }, text));
    }
    this.length += text.length;
    while (this.length > CONSOLE_LIMIT) {
      const first = box.firstChild;
      const excess = this.length - CONSOLE_LIMIT;
      if (first.textContent.length <= excess && first !== box.lastChild) {
        this.length -= first.textContent.length;
        first.remove();
      } else {
        first.textContent = first.textContent.slice(excess);
        this.length -= excess;
      }
    }
    if (atEnd) box.scrollTop = box.scrollHeight;
  }
}
