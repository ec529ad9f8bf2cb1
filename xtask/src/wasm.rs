//! The page's wasm: `soket-frontend` built for wasm32 in release mode, then wasm-bindgen's JavaScript
//! glue generated next to it in `www/pkg/` (`soket_frontend.js`, `soket_frontend_bg.wasm`), which
//! `www/python-worker.js` imports. `serve` and `test` call [`build`] before they need the page.
//!
//! wasm-bindgen runs in-process through `wasm-bindgen-cli-support`, pinned in `xtask/Cargo.toml` to
//! exactly the `wasm-bindgen` version `frontend/Cargo.toml` pins: the glue and the crate must match.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};

use crate::tools::{self, cargo, WASM_TARGET};

/// Every cargo command that compiles the frontend for wasm32 passes these. RustPython's ruff parser
/// crates are pinned to 0.16.5, which declares rust-version 1.96 but builds on our 1.95, except for one
/// `debug_assert_matches!` (stable from 1.96) under `cfg(debug_assertions)`: hence release, for clippy
/// too.
pub const FRONTEND_CARGO_FLAGS: [&str; 2] = ["--release", "--ignore-rust-version"];

/// The crates that become wasm modules of the page: each one's glue is `www/pkg/<lib name>.js`. Another
/// page worker is one more entry here.
const PAGE_CRATES: [&str; 2] = ["soket-frontend", "soket-networker"];

/// Builds `www/pkg/`: the release wasm of every page crate, then each one's glue (skipped when the glue
/// is newer than the wasm). First the page's npm bundle (`www/editor.js`, see [`crate::web`]) and its
/// Python modules from PyPI (`www/pylib/`, see [`crate::pylib`]).
pub fn build() -> Result<()> {
    crate::web::build()?;
    crate::pylib::build()?;
    tools::ensure_wasm_target()?;
    let mut build = cargo();
    build.arg("build");
    for krate in PAGE_CRATES {
        build.args(["-p", krate]);
    }
    build
        .args(["--target", WASM_TARGET])
        .args(FRONTEND_CARGO_FLAGS);
    println!("==> {}", tools::describe(&build));
    tools::run(&mut build)?;
    let out = tools::root().join("www").join("pkg");
    for krate in PAGE_CRATES {
        let name = krate.replace('-', "_");
        bindgen(&name, &out)?;
        gzip(&out.join(format!("{name}_bg.wasm")))?;
    }
    Ok(())
}

/// Writes `path.gz` beside `path` (unless it is newer already): the relay serves it to browsers that
/// accept gzip, which ships the Python runtime in 12 MB instead of 28. The bench does the same to
/// Pyodide's files.
pub fn gzip(path: &Path) -> Result<()> {
    let mut packed = path.as_os_str().to_owned();
    packed.push(".gz");
    let packed = PathBuf::from(packed);
    if modified(&packed)? > modified(path)? {
        return Ok(());
    }
    let started = Instant::now();
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut encoder, &bytes)?;
    let compressed = encoder.finish()?;
    std::fs::write(&packed, &compressed)
        .with_context(|| format!("writing {}", packed.display()))?;
    println!(
        "==> gzip {}: {} → {} bytes in {:.1} s",
        path.display(),
        bytes.len(),
        compressed.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// wasm-bindgen `--target web` on the release wasm of the library `name`, into `out`.
fn bindgen(name: &str, out: &Path) -> Result<()> {
    let input = tools::target_dir()
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{name}.wasm"));
    let glue = out.join(format!("{name}_bg.wasm"));
    if modified(&glue)? > modified(&input)? && out.join(format!("{name}.js")).exists() {
        println!("==> wasm-bindgen: {} is up to date", glue.display());
        return Ok(());
    }
    println!(
        "==> wasm-bindgen --target web --out-dir {} {}",
        out.display(),
        input.display()
    );
    let started = Instant::now();
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&input)
        .web(true)?
        .typescript(false)
        // Function names only make a wasm stack trace readable (a panic's message and place survive
        // without them), and they are 2 MB of the runtime: not shipped.
        .remove_name_section(true)
        .remove_producers_section(true)
        .generate(out)
        .with_context(|| format!("wasm-bindgen on {}", input.display()))?;
    println!("    done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// When `path` was last written, or the epoch if it does not exist.
fn modified(path: &Path) -> Result<SystemTime> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(meta.modified()?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SystemTime::UNIX_EPOCH),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}
