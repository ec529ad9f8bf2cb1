// One Python program's worker (a module worker, started by soket.js).
//
// Messages in:  {type: 'start', module, modules}  the compiled WebAssembly.Module of
//                                       pkg/soket_frontend_bg.wasm, and the page's Python modules
//                                       (www/pylib/: [{module, file, package, source}])
//               {type: 'run', name, source, port, buffer, console, modules}  port and buffer: the
//                                                    program's line to the network worker (net-worker.js);
//                                                    console: the ring its stdin reads (soket.js writes
//                                                    it); modules: more Python modules, as in 'start'
// Messages out: {type: 'ready', instantiateMs, interpreterMs}  the runtime can run a program
//               {type: 'failed', message}                       it never will
//               {type: 'stdout' | 'stderr', text}              output, as the program writes it
//               {type: 'exit', exitCode}                        the program ended; the worker is spent
//
// The worker builds the interpreter as soon as it has the module, so a program starts at once when the
// learner presses Run. A worker runs one program: Runtime.run consumes the runtime. The program runs
// synchronously here; while it runs (or sleeps in Atomics.wait) its output still reaches the page,
// because postMessage does not wait for this worker to yield.

import init, { Runtime, layout } from './pkg/soket_frontend.js';
import { CHANNEL, CONSOLE, EXIT } from './layout.js';

// How long a ready worker waits for a program before it prepares for tracebacks.
const PREPARE_AFTER_MS = 500;

// One decoder per stream: a UTF-8 character may be split across two writes.
const decoders = { 1: new TextDecoder(), 2: new TextDecoder() };
let panicMessage = null;
// Whether a program has started (the runtime is then spent).
let started = false;

function write(fd, bytes) {
  const text = decoders[fd].decode(bytes, { stream: true });
  if (text) postMessage({ type: fd === 2 ? 'stderr' : 'stdout', text });
}

function flush() {
  for (const fd of [1, 2]) {
    const text = decoders[fd].decode();
    if (text) postMessage({ type: fd === 2 ? 'stderr' : 'stdout', text });
  }
}

function onPanic(message) {
  panicMessage = message;
}

let resolveRuntime;
const runtime = new Promise((resolve) => { resolveRuntime = resolve; });

async function start(module, modules) {
  try {
    const t0 = performance.now();
    await init({ module_or_path: module });
    const t1 = performance.now();
    checkLayout();
    const rt = new Runtime(write, onPanic);
    for (const m of modules) rt.addModule(m.module, `pylib/${m.file}`, m.source, m.package);
    const t2 = performance.now();
    resolveRuntime(rt);
    postMessage({ type: 'ready', instantiateMs: t1 - t0, interpreterMs: t2 - t1 });
    // If no program comes at once, import what a traceback needs (~0.2 s) while waiting for one. Not
    // at once: a program sent right away (a test, an embedding page) should not wait for it.
    setTimeout(() => {
      if (started) return;
      try {
        rt.prepare();
      } catch (error) {
        console.warn(error); // a traceback will be slower, nothing worse
      }
    }, PREPARE_AFTER_MS);
  } catch (error) {
    const message = panicMessage ?? String(error);
    resolveRuntime(null);
    postMessage({ type: 'failed', message });
  }
}

/** Throws unless layout.js, which the page builds the shared buffers by, agrees with the runtime. */
function checkLayout() {
  const theirs = layout();
  for (const [table, ours] of [['CHANNEL', CHANNEL], ['CONSOLE', CONSOLE]]) {
    for (const [key, value] of Object.entries(theirs[table])) {
      if (ours[key] !== value) {
        throw new Error(`www/layout.js says ${table}.${key} is ${ours[key]}, the runtime ${value}`);
      }
    }
  }
}

async function run({ name, source, port, buffer, console: input, modules = [] }) {
  const rt = await runtime;
  if (rt === null) {
    postMessage({ type: 'stderr', text: 'The Python runtime failed to start.\n' });
    postMessage({ type: 'exit', exitCode: EXIT.CRASHED });
    return;
  }
  started = true;
  let exitCode;
  try {
    if (port && buffer) rt.attachNetwork(port, buffer);
    if (input) rt.attachConsole(input);
    for (const m of modules) rt.addModule(m.module, m.file, m.source, m.package ?? false);
    exitCode = rt.run(name, source);
  } catch (error) {
    flush();
    const why = panicMessage ?? String(error);
    postMessage({ type: 'stderr', text: `\nFatal error in the Python runtime: ${why}\n` });
    exitCode = EXIT.CRASHED;
  }
  flush();
  postMessage({ type: 'exit', exitCode });
}

self.onmessage = (event) => {
  const message = event.data;
  if (message.type === 'start') start(message.module, message.modules ?? []);
  else if (message.type === 'run') run(message);
};
