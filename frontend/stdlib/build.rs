//! Compiles RustPython's `Lib/` into one frozen library, `$OUT_DIR/stdlib.frozen`, which `lib.rs`
//! includes: the modules below are left out, and the rest is compiled as `python -OO` would (optimize
//! level 2: no docstrings, no `assert`), since a docstring shipped to every learner's browser is read by
//! nobody (`help()` needs `pydoc`, which is left out too).

use std::path::Path;

use rustpython_compiler::{compile, CompileOpts, Mode};
use rustpython_compiler_core::frozen::{FrozenCodeObject, FrozenLib, FrozenModule};

/// Modules and packages left out, with why. A program importing one gets `ModuleNotFoundError`.
const LEFT_OUT: &[(&str, &str)] = &[
    // No windows, no graphics in a worker.
    ("tkinter", "GUI"),
    ("turtle", "GUI"),
    ("turtledemo", "GUI"),
    ("idlelib", "GUI"),
    // The interactive interpreter and its help: the page has its own console.
    ("_pyrepl", "REPL"),
    ("pydoc", "help()"),
    ("pydoc_data", "help()"),
    ("antigravity", "opens a web browser"),
    // Processes, threads and native libraries a browser worker does not have.
    ("multiprocessing", "processes"),
    ("ctypes", "native libraries"),
    ("sqlite3", "native library"),
    ("dbm", "native library"),
    ("curses", "terminal library"),
    ("venv", "environments"),
    ("ensurepip", "installing packages"),
    // Tools for source trees and other platforms.
    ("compileall", "tool"),
    ("py_compile", "tool"),
    ("zipapp", "tool"),
    ("modulefinder", "tool"),
    ("pyclbr", "tool"),
    ("tabnanny", "tool"),
    ("_android_support", "platform"),
    ("_ios_support", "platform"),
    ("_apple_support", "platform"),
    ("_aix_support", "platform"),
    ("_osx_support", "platform"),
    ("__hello__", "demo of freezing"),
    ("__phello__", "demo of freezing"),
];

/// `python -OO`.
const OPTIMIZE: u8 = 2;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("stdlib.frozen");
    let mut modules = Vec::new();
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        let lib = Path::new(rustpython_pylib::LIB_PATH);
        println!("cargo::rerun-if-changed={}", lib.display());
        collect(lib, "", &mut modules);
    }
    modules.sort_by(|a, b| a.0.cmp(&b.0));
    let frozen = FrozenLib::encode(modules.iter().map(|(name, code, package)| {
        let module = FrozenModule {
            code: FrozenCodeObject { bytes: &code[..] },
            package: *package,
        };
        (name.as_str(), module)
    }));
    std::fs::write(&out, &frozen.bytes).expect("writing the frozen library");
}

/// Compiles every module under `dir` (whose dotted name is `parent`) into `modules`.
fn collect(dir: &Path, parent: &str, modules: &mut Vec<(String, Vec<u8>, bool)>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let dotted = |stem: &str| {
            if parent.is_empty() {
                stem.to_owned()
            } else {
                format!("{parent}.{stem}")
            }
        };
        if path.is_dir() {
            let package = dotted(name);
            if !left_out(&package) {
                collect(&path, &package, modules);
            }
            continue;
        }
        let Some(stem) = name.strip_suffix(".py") else {
            continue;
        };
        let package = stem == "__init__";
        let module = if package {
            parent.to_owned()
        } else {
            dotted(stem)
        };
        if module.is_empty() || left_out(&module) {
            continue;
        }
        let source = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        // No column ranges either: they only place the carets under a traceback's source line, and frozen
        // modules show no source lines.
        let opts = CompileOpts {
            optimize: OPTIMIZE,
            debug_ranges: false,
            ..CompileOpts::default()
        };
        match compile(&source, Mode::Exec, &module, opts) {
            Ok(code) => modules.push((module, FrozenCodeObject::encode(&code).bytes, package)),
            // A few of upstream's test fixtures are deliberately invalid; so is nothing a program imports.
            Err(e) => println!("cargo::warning=left out {module}: {e}"),
        }
    }
}

fn left_out(module: &str) -> bool {
    LEFT_OUT
        .iter()
        .any(|(name, _)| module == *name || module.starts_with(&format!("{name}.")))
}
