// The playground: the seed's example in Python 3, one panel per program, free to edit and run, and the
// network view below them (their sockets and calls).

import { element, code } from './dom.js';
import { NetworkView } from './network-view.js';
import { ProgramPanel } from './program-panel.js';
import * as store from './store.js';

// The seed's example, in Python 3.
const PROGRAMS = [
  {
    name: 'server.py',
    source: `import socket               # Import socket module

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
  },
  {
    name: 'client.py',
    source: `import socket               # Import socket module

s = socket.socket()         # Create a socket object
host = socket.gethostname() # Get local machine name
port = 12345                # Reserve a port for your service.

s.connect((host, port))
print(s.recv(1024).decode())
s.close()                   # Close the socket when done
`,
  },
];

/** Shows the playground in `root`; returns what takes it down again. */
export function showPlayground(root, soket) {
  const kbd = (text) => element('kbd', {}, text);
  const intro = element('p', { class: 'intro' },
    'Write a server and a client in Python 3, run them here in your browser, and they really talk over TCP ',
    'and UDP through this page\'s relay. Run ', code('server.py'), ' first, then ', code('client.py'), '. ',
    kbd('Ctrl'), '+', kbd('Enter'), ' in an editor runs its program.');
  const grid = element('div', { class: 'programs' });
  root.replaceChildren(intro, grid);
  const panels = PROGRAMS.map((program) => new ProgramPanel(grid, soket, program));
  const network = new NetworkView(root, soket, { programs: PROGRAMS.map((p) => p.name), lang: store.language() });
  let live = true;
  soket.ready.then(
    () => { if (live) panels.forEach((panel) => panel.enable(true)); },
    // The header shows the failure and the browser console says why; Run stays disabled.
    () => {},
  );
  return {
    // The language switch (page.js) calls this; the playground's own text stays in English.
    render(lang) {
      network.setLanguage(lang);
    },
    async destroy() {
      live = false;
      network.destroy();
      await Promise.all(panels.map((panel) => panel.destroy()));
    },
  };
}
