// The page's network worker: loads the network stack (Rust, wasm) that owns the page's one WebSocket to
// the relay and answers the Python programs' socket calls.
//
// Messages from the main thread:
//   { type: 'attach', program, port, buffer }  a Python program's call port and shared call buffer
//   { type: 'stop', program }                  the program ended or was stopped: close its sockets
// Messages to the main thread: { type: 'relay', status, hostname?, reason? },
// { type: 'listeners', list: [{ program, host, port, public }] } and, at most every 100 ms,
// { type: 'net', events, sockets, dropped, origin }: the network view's new events and socket table (JSON
// text in the format of ARCHITECTURE.md), how many events were dropped, and this worker's time origin.

import init, { NetWorker } from './pkg/soket_networker.js';

const queued = [];
let net = null;
self.onmessage = (event) => (net ? handle(event.data) : queued.push(event.data));

function handle(message) {
  if (message.type === 'attach') net.attach(message.program, message.port, message.buffer);
  else if (message.type === 'stop') net.stop(message.program);
}

// The glue has no default path to its wasm (xtask generates it without one): name it.
await init({ module_or_path: new URL('./pkg/soket_networker_bg.wasm', import.meta.url) });
const url = new URL('/ws', self.location.href);
url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
// The page passes on its ?token= (soket.js) for a relay that asks for one.
const token = new URL(self.location.href).searchParams.get('token');
if (token) url.searchParams.set('token', token);
net = new NetWorker(url.href, (status) => self.postMessage(status));
queued.splice(0).forEach(handle);
