//! `cargo xtask bench`: builds `soket-bench` and `soket-relay` in release mode, makes sure websocat (the
//! WebSocket→TCP relay we compare against) is installed, and runs the bench, which prints a markdown table
//! and writes it to `BENCHMARKS.md` at the root. Loopback only; it takes a few minutes and stops by itself.
//! A missed target is reported, not failed: only a broken run exits non-zero.

use std::path::PathBuf;
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

pub fn run() -> Result<()> {
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
    let websocat = ensure_websocat()?;

    let release = tools::target_dir().join("release");
    let exe = |name: &str| release.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let root = tools::root();
    let mut bench = Command::new(exe("soket-bench"));
    bench
        .arg("--relay")
        .arg(exe("soket-relay"))
        .arg("--websocat")
        .arg(&websocat)
        .arg("--www")
        .arg(root.join("www"))
        .arg("--out")
        .arg(root.join("BENCHMARKS.md"))
        .args(["--command", "cargo xtask bench"])
        .current_dir(&root);
    println!("==> soket-bench (writes BENCHMARKS.md)");
    tools::run(&mut bench)
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
