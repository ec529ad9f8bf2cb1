// The playground: the seed's example in Python 3, one panel per program, free to edit and run.

import { element, code } from './dom.js';
import { ProgramPanel } from './program-panel.js';

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
  let live = true;
  soket.ready.then(
    () => { if (live) panels.forEach((panel) => panel.enable(true)); },
    // The header shows the failure and the browser console says why; Run stays disabled.
    () => {},
  );
  return {
    async destroy() {
      live = false;
      await Promise.all(panels.map((panel) => panel.destroy()));
    },
  };
}
