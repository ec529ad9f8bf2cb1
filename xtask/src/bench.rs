//! `cargo xtask bench [--browser-only]`: builds `soket-bench` and `soket-relay` in release mode, makes sure
//! what the bench compares against is installed, and runs the bench, which prints markdown tables and
//! writes them to `BENCHMARKS.md` at the root. Loopback only; it takes a few minutes and stops by itself.
//! A missed target is reported, not failed: only a broken run exits non-zero.
//!
//! The relay part needs websocat (the WebSocket→TCP relay we compare against). The browser part needs the
//! page built (`www/pkg/`, as `cargo xtask build` makes it), Chromium and chromedriver, Pyodide (the npm
//! package pinned in `relay/bench/browser/`, installed with `npm ci` and its files compressed as the build
//! compresses Soket's wasm) and `python3`. `--browser-only` measures the browser part alone; the bench keeps
//! the page's relay part as it was.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Result};

use crate::tools::{self, cargo};

/// How to install websocat, in order: the version the anchors in DESIGN.md were measured with (1.14.1 is
/// also the newest 1.x; 2.x and later are a different program) with its own lock file, then the newest
/// 1.x with freshly resolved dependencies, should the locked ones stop building.
const WEBSOCAT_INSTALLS: &[&[&str]] = &[
    &["install", "websocat", "--locked", "--version", "1.14.1"],
    &["install", "websocat", "--version", "^1"],
];

/// Where the browser part's npm package (Pyodide) and pages live.
const BROWSER_DIR: &str = "relay/bench/browser";

/// The files of the Pyodide package its page loads, compressed (`.br`, `.gz`) beside themselves like Soket's wasm (the same
/// list as `PYODIDE_COMPRESSED` in `relay/bench/src/browser.rs`, which checks they are there).
const PYODIDE_COMPRESSED: [&str; 5] = [
    "pyodide.mjs",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
];

pub fn run(browser_only: bool) -> Result<()> {
    let root = tools::root();
    // First what may install things, so the bench itself runs on a quiet machine.
    let websocat = if browser_only {
        None
    } else {
        Some(ensure_websocat()?)
    };
    prepare_browser(&root)?;
    let mut build = cargo();
    build.args([
        "build",
        "--release",
        "-p",
        "soket-relay",
        "-p",
        "soket-bench",
    ]);
    println!("==> {}", tools::describe(&build));
    tools::run(&mut build)?;

    let release = tools::target_dir().join("release");
    let exe = |name: &str| release.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let mut bench = Command::new(exe("soket-bench"));
    bench
        .arg("--relay")
        .arg(exe("soket-relay"))
        .arg("--www")
        .arg(root.join("www"))
        .arg("--pyodide")
        .arg(root.join(BROWSER_DIR))
        .arg("--out")
        .arg(root.join("BENCHMARKS.md"))
        .current_dir(&root);
    match &websocat {
        Some(websocat) => {
            bench
                .arg("--websocat")
                .arg(websocat)
                .args(["--command", "cargo xtask bench"]);
        }
        None => {
            bench.args([
                "--only",
                "browser",
                "--command",
                "cargo xtask bench --browser-only",
            ]);
        }
    }
    println!("==> soket-bench (writes BENCHMARKS.md)");
    tools::run(&mut bench)
}

/// The browser part's needs: the page's wasm and bundle, Chromium, Pyodide installed and compressed, python3.
fn prepare_browser(root: &Path) -> Result<()> {
    crate::wasm::build()?;
    tools::ensure_chromium()?;
    let dir = root.join(BROWSER_DIR);
    crate::web::install(&dir)?;
    let package = dir.join("node_modules").join("pyodide");
    for file in PYODIDE_COMPRESSED {
        crate::compress::beside(&package.join(file))?;
    }
    if !tools::succeeds(Command::new("python3").arg("--version")) {
        bail!(
            "the browser part compares the page's Python with native CPython: install python3 \
             (`sudo apt-get install python3`)"
        );
    }
    Ok(())
}

/// The websocat binary: on `PATH`, in `~/.cargo/bin`, or installed there now with `cargo install`.
fn ensure_websocat() -> Result<PathBuf> {
    if let Some(found) = find_websocat() {
        return Ok(found);
    }
    for args in WEBSOCAT_INSTALLS {
        let mut install = cargo();
        install.args(*args);
        println!("==> {}", tools::describe(&install));
        let started = Instant::now();
        match tools::run(&mut install) {
            Ok(()) => {
                println!(
                    "websocat installed in {:.0} s",
                    started.elapsed().as_secs_f64()
                );
                if let Some(found) = find_websocat() {
                    return Ok(found);
                }
                bail!("`cargo install websocat` succeeded but no websocat is on PATH or in ~/.cargo/bin");
            }
            Err(e) => eprintln!("{e:#}"),
        }
    }
    bail!("could not install websocat 1.x with `cargo install`")
}

fn find_websocat() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("websocat"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
        let p = home.join("bin").join("websocat");
        p.is_file().then_some(p)
    })
}
