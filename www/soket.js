// The page's side of the Python runtime, as a library: it starts the workers, runs programs and reports
// what happens as events. It never touches the DOM; the UI (ui/*.js) and `window.soket` (page.js) are
// views of it. State flows one way: worker → this module → event → UI.
//
//   import { soket } from './soket.js';
//   await soket.ready;                    // the runtime can run code and the relay is connected
//   const p = soket.run('server.py', source, { stdin: '' });
//   await p.done;                         // -> { exitCode, stdout, stderr } (the last 1,000,000 characters)
//   p.stop();                             // ends the program at once (exit code 130, as after Ctrl-C)
//   p.write('Ada\n');                     // types into its console: what input() and sys.stdin read
//   p.closeStdin();                       // Ctrl-D: end of its input
//   soket.listeners();                    // -> [{ program, host, port, public }]: every listening socket
//
// Events (`soket.addEventListener(type, (event) => event.detail ...)`):
//   load       { phase, received?, total?, error? }   how far the runtime has loaded: 'download' (bytes
//              received of total, total null when unknown), 'compile', 'start' (the first interpreter),
//              then 'ready' or 'failed' (error: what is wrong and what to do, in words)
//   runtime    { state: 'ready' | 'failed', error? }   the first worker's runtime is ready, or never will be
//   relay      { status: 'connected' | 'disconnected', hostname?, reason? }
//   listeners  { list }                                the listening sockets changed (as listeners())
//   start      { id, name }                            a program started (id: a number, name: as run)
//   output     { id, name, stream, text }              a piece of its output ('stdout' or 'stderr')
//   exit       { id, name, exitCode, stdout, stderr }  it ended
//   net        { events, sockets, dropped }            the network changed: new events, the socket table
//              (`soket.events()` and `soket.sockets()`; their format is in ARCHITECTURE.md)
// `soket.load`, `soket.relay` and `soket.runtime` hold the latest of their events' details.
//
// `run` also takes `onOutput(stream, text)` and `modules` in its options: onOutput is called with each
// piece of output as the program writes it; modules, [{ module, file, source, package }], are more
// Python modules the program can import (as www/pylib/ ones). With `stdin: text` the program reads that
// text and then end of file, as `python3 prog.py < file`; without it, its stdin is the console: reads wait
// for p.write().
//
// Every program runs in its own worker (python-worker.js). The wasm is compiled once, here, and each
// worker gets the compiled module; one worker is always kept warm (its interpreter built) so Run starts
// a program at once. This thread never blocks: workers do.
//
// The page's sockets live in one network worker (net-worker.js), which holds the page's one WebSocket to
// the relay. Each program gets a line to it: a MessageChannel to ring on and a SharedArrayBuffer for its
// calls and their replies (layout.js), so a blocking socket call parks the program's worker in
// Atomics.wait, never this thread. Stop sets the buffer's interrupt slot, so a program blocked in a
// socket call gets KeyboardInterrupt; one that does not stop soon is terminated.
//
// Exit codes besides the program's own (layout.js): 130 for a program stopped with stop(), 134 when the
// runtime itself failed (a Rust panic; stderr says why).

import { CHANNEL, CONSOLE, EXIT } from './layout.js';

const WASM_URL = new URL('pkg/soket_frontend_bg.wasm', import.meta.url);
const WORKER_URL = new URL('python-worker.js', import.meta.url);
const NET_WORKER_URL = new URL('net-worker.js', import.meta.url);
// A relay whose operator set an access token opens sessions only for a page opened with ?token=...: the
// network worker, which opens the WebSocket, gets it in its own URL.
const ACCESS_TOKEN = new URLSearchParams(globalThis.location?.search ?? '').get('token');
if (ACCESS_TOKEN) NET_WORKER_URL.searchParams.set('token', ACCESS_TOKEN);

// How long a stopped program may stay silent before its worker is terminated: each piece of output (its
// KeyboardInterrupt traceback, say) buys it that long again, up to STOP_LIMIT_MS in all.
const STOP_GRACE_MS = 300;
const STOP_LIMIT_MS = 3000;

// How much of a program's stdout and of its stderr `done` reports: the last 1,000,000 characters of each,
// so a program that prints for ever does not grow the page without bound.
const OUTPUT_LIMIT = 1_000_000;

// The most network events the page keeps: the timeline of a program that makes calls in a tight loop
// stays this long (what came before is counted in `dropped`).
const NET_EVENTS = 2000;

/**
 * The Python modules the page ships beside the runtime (www/pylib/, see frontend/pylib/): telnetlib and
 * nntplib. Without them the runtime still works; importing them then fails as in Python 3.13.
 */
async function pageModules() {
  try {
    const index = await (await fetch(new URL('pylib/index.json', import.meta.url))).json();
    return await Promise.all(index.map(async (entry) => {
      const response = await fetch(new URL(`pylib/${entry.file}`, import.meta.url));
      if (!response.ok) throw new Error(`pylib/${entry.file}: ${response.status}`);
      return { ...entry, source: await response.text() };
    }));
  } catch (error) {
    console.warn('the page\'s Python modules (www/pylib/) did not load:', error);
    return [];
  }
}

/**
 * The runtime's wasm as a Response whose body counts what arrives: `onBytes(received, total)` after
 * each chunk. `total` is the decoded size: the response's Content-Length when it is not compressed, else
 * the size the build wrote in pkg/sizes.json (the relay sends the .br copy, whose length is not the
 * stream's); null when neither says.
 */
async function countedFetch(url, onBytes) {
  const sizes = fetch(new URL('pkg/sizes.json', import.meta.url))
    .then((r) => (r.ok ? r.json() : {}))
    .catch(() => ({}));
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new Error(`The download from ${url.host} broke (${error.message}): check the connection and reload the page.`);
  }
  if (!response.ok) {
    throw new Error(`The server answered ${response.status} ${response.statusText} for ${url.pathname}. `
      + 'Reload the page to try again; if it goes on, the page is not built on this server (cargo xtask build).');
  }
  const encoding = response.headers.get('Content-Encoding');
  const length = Number(response.headers.get('Content-Length')) || null;
  const file = url.pathname.split('/').pop();
  const total = (!encoding || encoding === 'identity') && length ? length : (await sizes)[file] ?? null;
  if (!response.body) return response;
  let received = 0;
  onBytes(received, total);
  const counting = new TransformStream({
    transform(chunk, controller) {
      received += chunk.byteLength;
      onBytes(received, total);
      controller.enqueue(chunk);
    },
  });
  return new Response(response.body.pipeThrough(counting), {
    headers: { 'Content-Type': 'application/wasm' },
  });
}

/** Downloads and compiles the wasm, telling `onLoad` how far it got (the `load` event's detail). */
async function compile(timings, onLoad) {
  const started = performance.now();
  let downloaded = false;
  const response = await countedFetch(WASM_URL, (received, total) => {
    onLoad({ phase: 'download', received, total });
    if (total !== null && received >= total && !downloaded) {
      downloaded = true;
      onLoad({ phase: 'compile', received, total });
    }
  });
  // Compiling streams: it runs while the bytes arrive, and ends soon after the last one.
  const module = typeof WebAssembly.compileStreaming === 'function'
    ? await WebAssembly.compileStreaming(response)
    : await WebAssembly.compile(await response.arrayBuffer());
  timings.compileMs = performance.now() - started;
  onLoad({ phase: 'start' });
  return module;
}

/**
 * Why this browser cannot run the page, in words a learner can act on; null when it can. Python's
 * blocking calls need SharedArrayBuffer, which a browser gives only to a cross-origin isolated page.
 */
function missing() {
  if (typeof WebAssembly !== 'object') {
    return 'This browser cannot run WebAssembly, which the Python runtime is made of. '
      + 'Open the page in a recent Chrome, Edge, Firefox or Safari (with WebAssembly not turned off).';
  }
  if (typeof SharedArrayBuffer !== 'function' || !self.crossOriginIsolated) {
    return 'This page is not cross-origin isolated, so the browser does not give it SharedArrayBuffer, '
      + 'which Python\'s blocking calls need. Open it from the Soket relay itself (it sends the '
      + 'Cross-Origin-Opener-Policy and Cross-Origin-Embedder-Policy headers), over http://localhost or '
      + 'https, in a recent browser.';
  }
  return null;
}

/**
 * The last `limit` characters of a stream of text (a program's stdout as `done` reports it), kept
 * without copying the whole on every piece: pieces are joined only when they pass twice the limit.
 */
class Tail {
  constructor(limit) {
    this.limit = limit;
    this.pieces = [];
    this.length = 0;
  }

  add(text) {
    this.pieces.push(text);
    this.length += text.length;
    if (this.length > 2 * this.limit) this.pieces = [this.text()];
  }

  text() {
    const all = this.pieces.join('');
    const kept = all.length > this.limit ? all.slice(all.length - this.limit) : all;
    this.pieces = [kept];
    this.length = kept.length;
    return kept;
  }
}

// A worker with a runtime in it, ready (or getting ready) for one program.
class PythonWorker {
  constructor(loaded, timings) {
    this.worker = new Worker(WORKER_URL, { type: 'module' });
    // What the current program wants to hear: set by run().
    this.program = null;
    // Why the worker is dead, if it is: its program hears it on stderr, and exits with CRASHED.
    this.failure = null;
    this.ready = new Promise((resolve, reject) => {
      this.worker.onmessage = (event) => {
        const message = event.data;
        if (message.type === 'ready') {
          timings.instantiateMs ??= message.instantiateMs;
          timings.interpreterMs ??= message.interpreterMs;
          resolve();
        } else if (message.type === 'failed') {
          reject(new Error(`the Python runtime failed to start: ${message.message}`));
        } else if (this.program) {
          this.program.hear(message);
        }
      };
      this.fail = (why) => {
        this.failure = why;
        reject(new Error(why));
        this.tellFailure();
      };
      this.worker.onerror = (event) => this.fail(`the Python worker failed: ${event.message ?? event}`);
    });
    // A failure reaches the program through tellFailure; only the first worker's is reported as such.
    this.ready.catch(() => {});
    loaded.then(
      ([module, sources]) => this.worker.postMessage({ type: 'start', module, modules: sources }),
      (error) => this.fail(`The Python runtime did not load. ${error.message ?? error}`),
    );
  }

  tellFailure() {
    if (this.failure === null || this.program === null) return;
    this.program.hear({ type: 'stderr', text: `\n${this.failure}\n` });
    this.program.hear({ type: 'exit', exitCode: EXIT.CRASHED });
  }

  terminate() {
    this.worker.terminate();
  }
}

/**
 * A program's stdin: this thread writes into a SharedArrayBuffer ring the program's worker reads (and
 * waits on). What does not fit yet waits here and goes in as the program reads.
 */
class ConsoleInput {
  constructor() {
    this.buffer = new SharedArrayBuffer(CONSOLE.RING + CONSOLE.RING_SIZE);
    this.slots = new Int32Array(this.buffer);
    this.bytes = new Uint8Array(this.buffer, CONSOLE.RING);
    this.pending = [];
    this.closing = false;
    this.timer = null;
  }

  write(text) {
    if (this.closing) return;
    this.pending.push(new TextEncoder().encode(String(text)));
    this.flush();
  }

  close() {
    this.closing = true;
    this.flush();
  }

  flush() {
    let written = Atomics.load(this.slots, CONSOLE.WRITTEN);
    while (this.pending.length > 0) {
      const read = Atomics.load(this.slots, CONSOLE.READ);
      const free = CONSOLE.RING_SIZE - ((written - read) >>> 0);
      if (free === 0) break;
      const chunk = this.pending[0];
      const n = Math.min(free, chunk.length);
      for (let i = 0; i < n; i++) this.bytes[((written >>> 0) + i) % CONSOLE.RING_SIZE] = chunk[i];
      written = (written + n) | 0;
      if (n === chunk.length) this.pending.shift();
      else this.pending[0] = chunk.subarray(n);
    }
    Atomics.store(this.slots, CONSOLE.WRITTEN, written);
    if (this.pending.length === 0 && this.closing) Atomics.store(this.slots, CONSOLE.CLOSED, 1);
    Atomics.notify(this.slots, CONSOLE.WRITTEN);
    // The ring is full: try again as the program reads.
    clearTimeout(this.timer);
    if (this.pending.length > 0) this.timer = setTimeout(() => this.flush(), 20);
  }

  /** Wakes a read waiting for input (Stop). */
  wake() {
    clearTimeout(this.timer);
    Atomics.notify(this.slots, CONSOLE.WRITTEN);
  }
}

/** The runtime and the page's network, as events and promises. One per page: `soket` below. */
export class Soket extends EventTarget {
  constructor() {
    super();
    // How long loading took, in ms: compiling the wasm, instantiating it and building the interpreter in
    // the first worker, and `readyMs` since navigation start.
    this.timings = {};
    this.relay = { status: 'disconnected' };
    this.runtime = { state: 'loading' };
    this.load = { phase: 'download', received: 0, total: null };
    this.isolated = self.crossOriginIsolated;
    const cannot = missing();
    const onLoad = (detail) => {
      this.load = detail;
      this.emit('load', detail);
    };
    // The compiled wasm and the page's Python modules, fetched once for every worker.
    this.loaded = cannot
      ? Promise.reject(new Error(cannot))
      : Promise.all([compile(this.timings, onLoad), pageModules()]);
    this.listening = [];
    this.nextProgram = 1;
    // Program numbers → the names they were run as, for listeners().
    this.names = new Map();
    // The network view's timeline (at most NET_EVENTS, `dropped` before them) and socket table, and the
    // names of every program that ran: its events may come after it ended.
    this.netEvents = [];
    this.netSockets = [];
    this.dropped = 0;
    this.ranAs = new Map();

    // The network worker, and what it tells the page.
    this.net = new Worker(NET_WORKER_URL, { type: 'module' });
    let connected;
    const relayConnected = new Promise((resolve) => { connected = resolve; });
    this.net.onmessage = (event) => {
      const message = event.data;
      if (message.type === 'relay') {
        const { type, ...detail } = message;
        this.relay = detail;
        if (detail.status === 'connected') connected();
        this.emit('relay', detail);
      } else if (message.type === 'listeners') {
        this.listening = message.list;
        this.emit('listeners', { list: this.listeners() });
      } else if (message.type === 'net') {
        this.heard(message);
      }
    };
    this.net.onerror = (event) => console.error('network worker failed:', event.message ?? event);

    this.warm = new PythonWorker(this.loaded, this.timings);
    const runtimeReady = this.warm.ready.then(
      () => {
        this.timings.readyMs = performance.now();
        this.runtime = { state: 'ready' };
        onLoad({ phase: 'ready' });
        this.emit('runtime', this.runtime);
      },
      (error) => {
        this.runtime = { state: 'failed', error: String(error.message ?? error) };
        onLoad({ phase: 'failed', error: this.runtime.error });
        this.emit('runtime', this.runtime);
        console.error(error);
        throw error;
      },
    );
    /** Resolves once the runtime can run code and the relay is connected. */
    this.ready = Promise.all([runtimeReady, relayConnected]).then(() => undefined);
    this.ready.catch(() => {}); // reported through the `runtime` event
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** The network worker's report: new events (its clock made the page's) and the socket table. */
  heard({ events, sockets, dropped, origin }) {
    const shift = origin - performance.timeOrigin;
    const named = (item) => ({ ...item, program: this.ranAs.get(item.id) ?? String(item.id) });
    const fresh = JSON.parse(events).map((event) => named({ ...event, t: event.t + shift }));
    this.netSockets = JSON.parse(sockets).map(named);
    this.netEvents.push(...fresh);
    const over = this.netEvents.length - NET_EVENTS;
    if (over > 0) this.netEvents.splice(0, over);
    this.dropped += dropped + Math.max(over, 0);
    this.emit('net', { events: fresh, sockets: this.sockets(), dropped: this.dropped });
  }

  /** The network view's timeline, oldest first; see ARCHITECTURE.md ("The page's contract"). */
  events() {
    return this.netEvents.slice();
  }

  /** Every open socket of every running program, like `ss -tuna`. */
  sockets() {
    return this.netSockets.slice();
  }

  /** Every listening socket: [{ program, host, port, public }], program as the name it was run as. */
  listeners() {
    return this.listening.map(({ program, host, port, public: address }) => ({
      program: this.names.get(program) ?? program, host, port, public: address,
    }));
  }

  /** Starts a program; see the top of this file. */
  run(name, source, { stdin, onOutput, modules = [] } = {}) {
    const worker = this.warm;
    this.warm = new PythonWorker(this.loaded, this.timings);
    const id = this.nextProgram++;
    this.names.set(id, name);
    this.ranAs.set(id, name);
    const buffer = new SharedArrayBuffer(CHANNEL.SIZE);
    const line = new MessageChannel();
    const input = new ConsoleInput();
    if (stdin !== undefined) {
      input.write(stdin);
      input.close();
    }
    this.net.postMessage({ type: 'attach', program: id, port: line.port2, buffer }, [line.port2]);
    const stdout = new Tail(OUTPUT_LIMIT);
    const stderr = new Tail(OUTPUT_LIMIT);
    let finish;
    const done = new Promise((resolve) => { finish = resolve; });
    let ended = false;
    const end = (exitCode) => {
      if (ended) return;
      ended = true;
      input.close();
      input.wake();
      worker.terminate();
      this.net.postMessage({ type: 'stop', program: id });
      this.names.delete(id);
      const outcome = { exitCode, stdout: stdout.text(), stderr: stderr.text() };
      this.emit('exit', { id, name, ...outcome });
      finish(outcome);
    };
    // Set once stop() is called: pushes the termination back while the program is still printing.
    let stopping = null;
    const stop = () => {
      if (ended || stopping) return;
      // A program waiting in a socket call wakes with KeyboardInterrupt; give it a moment to end.
      const slots = new Int32Array(buffer);
      Atomics.store(slots, CHANNEL.INTERRUPT, 1);
      Atomics.notify(slots, CHANNEL.STATE);
      input.wake();
      const limit = performance.now() + STOP_LIMIT_MS;
      let timer;
      stopping = () => {
        clearTimeout(timer);
        const wait = Math.max(0, Math.min(STOP_GRACE_MS, limit - performance.now()));
        timer = setTimeout(() => end(EXIT.STOPPED), wait);
      };
      stopping();
    };
    worker.program = {
      hear: (message) => {
        if (ended) return;
        if (message.type === 'stdout' || message.type === 'stderr') {
          (message.type === 'stdout' ? stdout : stderr).add(message.text);
          onOutput?.(message.type, message.text);
          this.emit('output', { id, name, stream: message.type, text: message.text });
          stopping?.();
        } else if (message.type === 'exit') {
          end(message.exitCode);
        }
      },
    };
    this.emit('start', { id, name });
    worker.worker.postMessage(
      {
        type: 'run', name, source: String(source), port: line.port1, buffer, console: input.buffer, modules,
      },
      [line.port1],
    );
    worker.tellFailure();
    return {
      id,
      done,
      stop,
      write: (text) => { if (!ended) input.write(text); },
      closeStdin: () => input.close(),
    };
  }
}

export const soket = new Soket();
