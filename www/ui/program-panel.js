// One program's panel: its name, status, Run and Stop, the editor, the public address of its listening
// sockets and its console. The page renders one per program of a list (the playground's, a lesson's).
//
// It carries the data-testid contract (ARCHITECTURE.md, "The page's contract"): `editor-NAME`,
// `run-NAME`, `stop-NAME`, `clear-NAME`, `status-NAME` (`running`, or `exited N`; empty before the first run),
// `listening-NAME`, and the console's `output-NAME` and `stdin-NAME`.

import { Console } from './console.js';
import { code, element } from './dom.js';
import { createEditor } from './editor.js';
import { t } from './i18n.js';

export class ProgramPanel {
  /**
   * Renders the panel into `parent`. `soket` is the library (soket.js); `onChange(text)` hears the
   * learner's edits.
   */
  constructor(parent, soket, { name, source, onChange }) {
    this.soket = soket;
    this.name = name;
    this.runButton = element('button', { class: 'run', 'data-testid': `run-${name}`, disabled: true });
    this.stopButton = element('button', { class: 'stop', 'data-testid': `stop-${name}`, disabled: true });
    this.clearButton = element('button', { class: 'clear', 'data-testid': `clear-${name}` });
    this.status = element('span', { class: 'program-status', 'data-testid': `status-${name}`, 'aria-live': 'polite' });
    const holder = element('div', { class: 'editor', 'data-testid': `editor-${name}`, tabindex: '-1' });
    this.listening = element('p', { class: 'listening', 'data-testid': `listening-${name}`, hidden: true });
    this.section = element('section', { class: 'program', 'data-program': name, 'aria-labelledby': `title-${name}` },
      element('div', { class: 'program-head' },
        element('h2', { id: `title-${name}` }, name),
        this.status,
        element('span', { class: 'program-buttons' }, this.runButton, this.stopButton, this.clearButton)),
      holder,
      this.listening);
    this.console = new Console(this.section, name);
    this.setLanguage('en');
    parent.append(this.section);
    this.editor = createEditor(holder, {
      doc: source,
      label: name,
      onRun: () => { if (!this.runButton.disabled) this.run(); },
      onChange,
    });
    // The holder is what a test or a person finds by its testid: focusing it focuses the editor inside.
    holder.addEventListener('focus', () => this.editor.focus());
    // The program now running, if any; whether Run is waiting for the run before to stop.
    this.program = null;
    this.restarting = false;
    this.runButton.addEventListener('click', () => this.run());
    this.stopButton.addEventListener('click', () => this.program?.stop());
    // Empties the console only: a running program goes on, and its next output shows.
    this.clearButton.addEventListener('click', () => this.console.clearOutput());
    this.onListeners = () => this.showListeners(soket.listeners());
    soket.addEventListener('listeners', this.onListeners);
    this.showListeners(soket.listeners());
  }

  /** Writes the panel's own words in `lang` ('id' or 'en'); the contract's values stay as they are. */
  setLanguage(lang) {
    this.runButton.textContent = t('run', lang);
    this.stopButton.textContent = t('stop', lang);
    this.clearButton.textContent = t('clear', lang);
    this.clearButton.title = t('clearHelp', lang);
    this.status.dataset.empty = t('notStarted', lang);
    this.console.setLanguage(lang);
  }

  /** Lets Run be pressed (once the runtime is ready), or not. */
  enable(enabled) {
    this.runButton.disabled = !enabled;
  }

  text() {
    return this.editor.text();
  }

  setText(text) {
    this.editor.setText(text);
  }

  /**
   * Runs the editor's source, after stopping (and waiting for) the run before, if any. Resolves with
   * its outcome, `{ exitCode, stdout, stderr }`, when it ends; null if a second Run came meanwhile.
   * `started(program)` is called with the running program (`soket.run`'s handle) once it starts.
   */
  async run({ stdin, started } = {}) {
    // A second click while the run before is being stopped changes nothing.
    if (this.restarting) return null;
    await this.stop();
    this.setStatus('running');
    this.stopButton.disabled = false;
    const current = this.soket.run(this.name, this.editor.text(), {
      stdin,
      onOutput: (stream, text) => { if (this.program === current) this.console.write(stream, text); },
    });
    this.program = current;
    this.console.clear();
    this.editor.markLines([]);
    this.console.attach(stdin === undefined ? current : null);
    started?.(current);
    const outcome = await current.done;
    // Its listeners are gone with it (the network worker's own report may come a moment later).
    this.showListeners(this.soket.listeners());
    if (this.program === current) {
      this.program = null;
      // Where a traceback points into this file: marked in the editor, a click away in the console.
      const lines = this.console.linkTraceback(this.name, (line) => this.editor.goToLine(line));
      this.editor.markLines(lines);
      this.setStatus(`exited ${outcome.exitCode}`, outcome.exitCode === 0 ? 'ok' : 'failed');
      this.stopButton.disabled = true;
      this.console.attach(null);
    }
    return outcome;
  }

  /** Stops the running program, if any, and resolves once it has ended. */
  async stop() {
    const previous = this.program;
    if (!previous) return;
    this.restarting = true;
    previous.stop();
    await previous.done;
    this.restarting = false;
  }

  setStatus(text, kind = text) {
    this.status.textContent = text;
    this.status.dataset.kind = kind;
  }

  /** Shows where this program's listening sockets can be reached from outside the browser. */
  showListeners(all) {
    const mine = all.filter((l) => l.program === this.name);
    this.listening.hidden = mine.length === 0;
    this.listening.replaceChildren(...mine.map((l) => {
      const split = l.public.lastIndexOf(':');
      const nc = `nc ${l.public.slice(0, split)} ${l.public.slice(split + 1)}`;
      const line = element('span', {
        class: 'listener',
        title: `${this.name} listens on ${l.host}:${l.port} in the page; the relay forwards ${l.public} to it`,
      }, 'listening on ', code(l.public), ' — try ', code(nc));
      return line;
    }));
  }

  /** Stops the program and takes the panel off the page. */
  async destroy() {
    this.soket.removeEventListener('listeners', this.onListeners);
    this.section.remove();
    await this.stop();
  }
}
