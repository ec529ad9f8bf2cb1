// The playground: one panel per program (`server.py`, `client.py`) in index.html, each with an editor,
// Run and Stop, a status, the public address of the program's listening sockets, and a console.
//
// Programs run through `window.soket.run` (soket.js); the panels carry the data-testid contract of
// DESIGN.md: `editor-NAME`, `run-NAME`, `stop-NAME`, `output-NAME` (plain text, stderr in a span of class
// `stderr`), `status-NAME` (`running`, or `exited N`; empty before the first run). Under each console,
// `stdin-NAME` is the program's input: Enter sends the line (it shows in the console, as a terminal echoes
// it), Ctrl-D ends the input.
//
// The editors are CodeMirror, bundled from frontend/web/ into editor.js by the build. If that file is
// missing, a plain textarea takes an editor's place, so the page still runs programs.

// The seed's example, in Python 3.
const SEEDS = {
  'server.py': `import socket               # Import socket module

s = socket.socket()         # Create a socket object
host = socket.gethostname() # Get local machine name
port = 12345                # Reserve a port for your service.
s.bind((host, port))        # Bind to the port

s.listen(5)                 # Now wait for client connection.
while True:
    c, addr = s.accept()    # Establish connection with client.
    print('Got connection from', addr)
    c.send(b'Thank you for connecting')
    c.close()               # Close the connection
`,
  'client.py': `import socket               # Import socket module

s = socket.socket()         # Create a socket object
host = socket.gethostname() # Get local machine name
port = 12345                # Reserve a port for your service.

s.connect((host, port))
print(s.recv(1024).decode())
s.close()                   # Close the socket when done
`,
};

// A console keeps about this many characters; older output is dropped from the top.
const CONSOLE_LIMIT = 200_000;

let createEditor;
try {
  ({ createEditor } = await import('./editor.js'));
} catch (error) {
  console.error('editor.js did not load (run `cargo xtask serve`, which builds it); plain text boxes instead:', error);
  createEditor = plainEditor;
}

/** A textarea with the editor's interface, for when editor.js is missing. */
function plainEditor(parent, { doc, label, onRun }) {
  const area = document.createElement('textarea');
  area.className = 'plain-editor';
  area.spellcheck = false;
  area.rows = doc.split('\n').length + 1;
  area.value = doc;
  area.setAttribute('aria-label', `${label} source`);
  area.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      onRun();
    }
  });
  parent.append(area);
  return {
    text: () => area.value,
    setText: (text) => { area.value = text; },
    focus: () => area.focus(),
  };
}

class Panel {
  constructor(section) {
    this.name = section.dataset.program;
    const part = (kind) => section.querySelector(`[data-testid="${kind}-${this.name}"]`);
    this.runButton = part('run');
    this.stopButton = part('stop');
    this.status = part('status');
    this.output = part('output');
    this.listening = part('listening');
    this.input = part('stdin');
    this.input.addEventListener('keydown', (event) => this.onInputKey(event));
    const holder = part('editor');
    this.editor = createEditor(holder, {
      doc: SEEDS[this.name] ?? '',
      label: this.name,
      onRun: () => { if (!this.runButton.disabled) this.run(); },
    });
    // The holder is what a test or a person finds by its testid: focusing it focuses the editor inside.
    holder.addEventListener('focus', () => this.editor.focus());
    // The program now running, if any; whether Run is waiting for it to stop; the console's length.
    this.program = null;
    this.restarting = false;
    this.outputLength = 0;
    this.runButton.addEventListener('click', () => this.run());
    this.stopButton.addEventListener('click', () => this.program?.stop());
  }

  /** Runs the editor's source, after stopping (and waiting for) the run before, if any. */
  async run() {
    // A second click while the run before is being stopped changes nothing.
    if (this.restarting) return;
    const previous = this.program;
    if (previous) {
      this.restarting = true;
      previous.stop();
      await previous.done;
      this.restarting = false;
    }
    this.output.replaceChildren();
    this.outputLength = 0;
    this.setStatus('running');
    this.stopButton.disabled = false;
    this.input.disabled = false;
    this.input.value = '';
    const current = window.soket.run(this.name, this.editor.text(), {
      onOutput: (stream, text) => { if (this.program === current) this.write(stream, text); },
    });
    this.program = current;
    const { exitCode } = await current.done;
    // Its listeners are gone with it (the network worker's own report may come a moment later).
    refreshListeners();
    if (this.program === current) {
      this.program = null;
      this.setStatus(`exited ${exitCode}`, exitCode === 0 ? 'ok' : 'failed');
      this.stopButton.disabled = true;
      this.input.disabled = true;
    }
  }

  /** Enter sends the line to the running program; Ctrl-D (on an empty line, as in a terminal) ends its input. */
  onInputKey(event) {
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

  setStatus(text, kind = text) {
    this.status.textContent = text;
    this.status.dataset.kind = kind;
  }

  /** Appends output to the console, keeping it scrolled to the end if it was there. */
  write(stream, text) {
    const box = this.output;
    const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 4;
    const last = box.lastChild;
    if (last && last.className === stream) {
      last.textContent += text;
    } else {
      const piece = document.createElement('span');
      piece.className = stream;
      piece.textContent = text;
      box.append(piece);
    }
    this.outputLength += text.length;
    while (this.outputLength > CONSOLE_LIMIT) {
      const first = box.firstChild;
      const excess = this.outputLength - CONSOLE_LIMIT;
      if (first.textContent.length <= excess && first !== box.lastChild) {
        this.outputLength -= first.textContent.length;
        first.remove();
      } else {
        first.textContent = first.textContent.slice(excess);
        this.outputLength -= excess;
      }
    }
    if (atEnd) box.scrollTop = box.scrollHeight;
  }

  /** Shows where this program's listening sockets can be reached from outside the browser. */
  showListeners(all) {
    const mine = all.filter((l) => l.program === this.name);
    this.listening.hidden = mine.length === 0;
    this.listening.replaceChildren(...mine.map((l) => {
      const line = document.createElement('span');
      line.className = 'listener';
      const split = l.public.lastIndexOf(':');
      const nc = `nc ${l.public.slice(0, split)} ${l.public.slice(split + 1)}`;
      line.title = `${this.name} listens on ${l.host}:${l.port} in the page; the relay forwards ${l.public} to it`;
      line.append('listening on ', code(l.public), ' — try ', code(nc));
      return line;
    }));
  }
}

function code(text) {
  const element = document.createElement('code');
  element.textContent = text;
  return element;
}

const panels = [...document.querySelectorAll('section.program')].map((section) => new Panel(section));

const refreshListeners = () => {
  const all = window.soket.listeners();
  for (const panel of panels) panel.showListeners(all);
};
window.addEventListener('soket-listeners', refreshListeners);
refreshListeners();

window.soket.ready.then(
  () => {
    for (const panel of panels) panel.runButton.disabled = false;
  },
  // soket.js shows the failure in the header and the browser console; Run stays disabled.
  () => {},
);
