//! The interpreter and the one program it runs: what the worker calls.
//!
//! ```js
//! const runtime = new Runtime(write, onPanic); // the interpreter, built once while the page loads
//! runtime.prepare();                           // optional, while waiting: pre-imports `traceback`
//! runtime.attachNetwork(port, buffer);        // its line to the network worker
//! runtime.attachConsole(consoleBuffer);        // its stdin: what the page writes into the ring
//! const status = runtime.run('server.py', source); // runs to the end; consumes the runtime
//! ```
//!
//! [`Runtime::new`] builds RustPython with upstream's native modules and frozen standard library, then
//! ours on top (a later module of the same name wins): `posix` and `_soket_stdio`. It then changes two
//! modules the interpreter imported while starting: the clocks of `time`, and `_thread`.
//! [`Runtime::run`] runs one program as `python3 -u NAME` would: as `__main__`, with `sys.argv ==
//! [NAME]`; an uncaught exception prints CPython's traceback (source lines included) to stderr; the
//! status follows [`crate::exit`]. Then the interpreter finalizes (`atexit` handlers run), so a runtime
//! runs one program: the page starts a fresh worker for the next.

use js_sys::Function;
use rustpython_vm::{
    builtins::PyBaseExceptionRef, compiler::Mode, scope::Scope, AsObject, Interpreter, PyObjectRef,
    PyResult, Settings, VirtualMachine,
};
use wasm_bindgen::prelude::*;

use crate::{exit, net, panic, posix, pymodules, stdio, threads, time};

/// Python set up once per interpreter, before any program: what `site` would add that a program may
/// use (`exit`, `quit`, `help`; importing all of `site` costs startup time for nothing else here), and
/// tracebacks formatted by the `traceback` module, as CPython's are, with the program's source lines.
const SETUP: &str = r#"
import sys, builtins, _sitebuiltins

# A browser: the standard library then knows there are no processes to start (`subprocess`).
sys.platform = 'emscripten'

builtins.exit = _sitebuiltins.Quitter('exit', 'Ctrl-D (i.e. EOF)')
builtins.quit = _sitebuiltins.Quitter('quit', 'Ctrl-D (i.e. EOF)')
builtins.help = _sitebuiltins._Helper()

def _get_clock_info(name):
    """`time.get_clock_info`, which `asyncio` reads: the clocks here are `performance.now()` (5 µs in a
    cross-origin isolated page), for wall time added to the page's time origin."""
    import types
    if name in ('monotonic', 'perf_counter', 'process_time', 'thread_time'):
        return types.SimpleNamespace(implementation='performance.now()', monotonic=True,
                                     adjustable=False, resolution=5e-06)
    if name == 'time':
        return types.SimpleNamespace(implementation='performance.timeOrigin + performance.now()',
                                     monotonic=False, adjustable=True, resolution=5e-06)
    raise ValueError('unknown clock')

import time as _time
_time.get_clock_info = _get_clock_info
del _time

class _AfterImport:
    """Adapts a standard module to a browser worker when it is first imported: finds it with the
    other finders, then runs our patch after its code."""
    patches = {}

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        patch = cls.patches.pop(fullname, None)
        if patch is None:
            return None
        import importlib.util
        spec = importlib.util.find_spec(fullname)
        if spec is None:
            return None
        spec.loader = _PatchingLoader(spec.loader, patch)
        return spec

class _PatchingLoader:
    """A module's own loader, then the patch."""
    def __init__(self, loader, patch):
        self._loader = loader
        self._patch = patch
    def create_module(self, spec):
        return self._loader.create_module(spec)
    def exec_module(self, module):
        self._loader.exec_module(module)
        self._patch(module)
    def __getattr__(self, name):
        return getattr(self._loader, name)

def _asyncio_without_threads(base_events):
    """asyncio's default executor is a thread pool (for name lookups); here it runs the call at
    once instead: a lookup is one round trip to the relay."""
    threaded = base_events.BaseEventLoop.run_in_executor
    def run_in_executor(self, executor, func, *args):
        if executor is not None:
            return threaded(self, executor, func, *args)
        future = self.create_future()
        try:
            future.set_result(func(*args))
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            future.set_exception(exc)
        return future
    base_events.BaseEventLoop.run_in_executor = run_in_executor

_AfterImport.patches['asyncio.base_events'] = _asyncio_without_threads
sys.meta_path.insert(0, _AfterImport)

class _SourceLoader:
    """`__main__.__loader__`: `linecache` asks it for the program's source (for `traceback`,
    `warnings`), since there is no file to read."""
    def __init__(self, name, source):
        self.name = name
        self.source = source
    def get_source(self, fullname):
        return self.source

class _PageModules:
    """Modules the page ships as source beside the frozen standard library (`www/pylib/`, from PyPI:
    telnetlib and nntplib, which left the standard library in 3.13). Looked up after it."""
    sources = {}

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        entry = cls.sources.get(fullname)
        if entry is None:
            return None
        import importlib.util
        return importlib.util.spec_from_loader(fullname, cls, origin=entry[1], is_package=entry[2])

    @classmethod
    def create_module(cls, spec):
        return None

    @classmethod
    def exec_module(cls, module):
        source, origin, _ = cls.sources[module.__spec__.name]
        module.__file__ = origin  # for `inspect` and tracebacks, which then ask get_source
        exec(compile(source, origin, 'exec'), module.__dict__)

    @classmethod
    def get_source(cls, fullname):
        return cls.sources[fullname][0]

sys.meta_path.append(_PageModules)

def _excepthook(exc_type, exc, tb, _fallback=sys.excepthook):
    """CPython's traceback format (upstream's hook prints no source lines on this target)."""
    try:
        import traceback
        traceback.print_exception(exc_type, exc, tb, file=sys.stderr)
    except BaseException:
        _fallback(exc_type, exc, tb)

sys.excepthook = _excepthook
"#;

/// A Python interpreter ready to run one program.
#[wasm_bindgen]
pub struct Runtime {
    interp: Interpreter,
    /// `_SourceLoader` from [`SETUP`]: the program's `__loader__` is one.
    loader: PyObjectRef,
    /// `_PageModules.sources` from [`SETUP`]: module name → (source, origin, is a package).
    page_modules: PyObjectRef,
}

#[wasm_bindgen]
impl Runtime {
    /// Builds the interpreter. `write(fd, bytes)` receives the program's output (fd 1 or 2, a
    /// `Uint8Array`) as it is written; `on_panic(message)` hears of a Rust panic, after which the
    /// instance is dead.
    #[wasm_bindgen(constructor)]
    pub fn new(write: Function, on_panic: Function) -> Result<Runtime, JsError> {
        panic::install(on_panic);
        stdio::set_writer(write);

        let mut settings = Settings::default();
        settings.allow_external_library = false;
        settings.import_site = false;
        settings.user_site_directory = false;
        settings.install_signal_handlers = false;
        settings.buffered_stdio = false;
        settings.write_bytecode = false;

        let builder = Interpreter::builder(settings);
        let upstream = rustpython_stdlib::stdlib_module_defs(&builder.ctx);
        let ours = [
            posix::module_def(&builder.ctx),
            pymodules::signal_module_def(&builder.ctx),
            pymodules::errno_module_def(&builder.ctx),
            stdio::module_def(&builder.ctx),
            net::soketnet_module_def(&builder.ctx),
            pymodules::socket_module_def(&builder.ctx),
            pymodules::select_module_def(&builder.ctx),
        ];
        let interp = builder
            .add_native_modules(&upstream)
            .add_frozen_modules(soket_stdlib::STDLIB)
            .add_native_modules(&ours)
            .build();
        let (loader, page_modules) = interp.enter(|vm| {
            let setup = || {
                time::install(vm)?;
                threads::install(vm)?;
                let scope = vm.new_scope_with_builtins();
                run_source(vm, SETUP, "<soket setup>", scope.clone())?;
                let modules = scope.globals.get_item("_PageModules", vm)?;
                Ok((
                    scope.globals.get_item("_SourceLoader", vm)?,
                    modules.get_attr("sources", vm)?,
                ))
            };
            setup().map_err(|e| failure(vm, "the Python runtime failed to start", &e))
        })?;
        Ok(Runtime {
            interp,
            loader,
            page_modules,
        })
    }

    /// Gives the program its line to the page's network worker: `port` rings it, `buffer` (laid out as
    /// `soket_netstack::channel` says) carries the calls. Without it, socket calls raise `OSError`.
    #[wasm_bindgen(js_name = attachNetwork)]
    pub fn attach_network(&self, port: web_sys::MessagePort, buffer: js_sys::SharedArrayBuffer) {
        net::attach(port, buffer);
    }

    /// Gives the program its console input: `buffer` is the ring `www/soket.js` writes what the learner
    /// types into (laid out as `stdio.rs` says). Without it, stdin is empty.
    #[wasm_bindgen(js_name = attachConsole)]
    pub fn attach_console(&self, buffer: js_sys::SharedArrayBuffer) {
        stdio::attach_console(buffer);
    }

    /// Makes `source` importable as `module` (a package if `package`), as the file `origin` shows in
    /// tracebacks: the page's modules from `www/pylib/`.
    #[wasm_bindgen(js_name = addModule)]
    pub fn add_module(
        &self,
        module: &str,
        origin: &str,
        source: &str,
        package: bool,
    ) -> Result<(), JsError> {
        self.interp.enter(|vm| {
            let entry = vm.new_tuple((source, origin, package));
            self.page_modules
                .set_item(module, entry.into(), vm)
                .map_err(|e| failure(vm, "adding a module failed", &e))
        })
    }

    /// Imports what printing a traceback needs (`traceback`, `linecache`, `tokenize`, ...: about 0.2 s),
    /// so a crashing program reports at once. The worker calls it while it waits for a program.
    pub fn prepare(&self) -> Result<(), JsError> {
        self.interp.enter(|vm| {
            vm.import("traceback", 0)
                .map(drop)
                .map_err(|e| failure(vm, "preparing the runtime failed", &e))
        })
    }

    /// Runs `source` as the program `filename` and returns its exit status. The runtime is spent
    /// afterwards.
    pub fn run(self, filename: &str, source: &str) -> u8 {
        let result = self.interp.enter(|vm| {
            stdio::install(vm)?;
            let argv = vm.ctx.new_list(vec![vm.new_pyobj(filename)]);
            vm.sys_module.set_attr("argv", argv, vm)?;
            let scope = vm.new_scope_with_main()?;
            let loader = self.loader.call((filename, source), vm)?;
            scope
                .globals
                .set_item("__file__", vm.new_pyobj(filename), vm)?;
            scope.globals.set_item("__loader__", loader, vm)?;
            run_source(vm, source, filename, scope)
        });
        let (code, status) = match result {
            Ok(()) => (None, None),
            Err(exc) => interrupted(&self.interp, exc),
        };
        let finalized = self.interp.finalize(code);
        // The traceback (or the last prints) may still be held.
        stdio::flush();
        status.unwrap_or_else(|| exit::status(finalized))
    }
}

/// Compiles and runs `source` in `scope`; a syntax error is raised as the `SyntaxError` CPython gives.
fn run_source(vm: &VirtualMachine, source: &str, filename: &str, scope: Scope) -> PyResult<()> {
    let code = vm
        .compile(source, Mode::Exec, filename)
        .map_err(|e| e.into_pyexception(vm, Some(source)))?;
    vm.run_code_obj(code, scope)?;
    Ok(())
}

/// A JavaScript error saying `what`, with the Python exception's traceback.
fn failure(vm: &VirtualMachine, what: &str, exc: &PyBaseExceptionRef) -> JsError {
    let mut traceback = String::new();
    let _ = vm.write_exception(&mut traceback, exc);
    JsError::new(&format!("{what}:\n{traceback}"))
}

/// Splits off `KeyboardInterrupt`, which upstream reports as 1 on this target: its traceback is
/// printed here and the status is [`exit::INTERRUPTED`]. Any other exception goes on to `finalize`.
fn interrupted(
    interp: &Interpreter,
    exc: PyBaseExceptionRef,
) -> (Option<PyBaseExceptionRef>, Option<u8>) {
    interp.enter(|vm| {
        if exc.fast_isinstance(vm.ctx.exceptions.keyboard_interrupt) {
            vm.print_exception(&exc);
            (None, Some(exit::INTERRUPTED))
        } else {
            (Some(exc), None)
        }
    })
}
