// The page's entry point: starts the library (soket.js), gives scripts and tests `window.soket`, and
// shows the UI. `window.soket` is a thin view of the library with the contract of ARCHITECTURE.md ("The
// page's contract"): `ready`, `run`, `listeners`, `timings`, and the `soket-listeners` event on
// `window` when the listeners change.

import { soket } from './soket.js';
import { showStatus } from './ui/header.js';
import { showPlayground } from './ui/playground.js';

window.soket = {
  ready: soket.ready,
  run: (name, source, options) => soket.run(name, source, options),
  listeners: () => soket.listeners(),
  timings: soket.timings,
};
soket.addEventListener('listeners', () => window.dispatchEvent(new Event('soket-listeners')));

showStatus(soket);
showPlayground(document.querySelector('main'), soket);
