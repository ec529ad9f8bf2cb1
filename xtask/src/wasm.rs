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
/// is newer than the wasm). First the course (`www/course.json`, see [`crate::course`]: quick, and a
/// mistake in a lesson should stop the build early), the page's npm bundle (`www/editor.js`, see
/// [`crate::web`]) and its Python modules from PyPI (`www/pylib/`, see [`crate::pylib`]).
pub fn build() -> Result<()> {
    crate::course::build()?;
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
        compress(&out.join(format!("{name}_bg.wasm")))?;
    }
    Ok(())
}

/// Writes `path.br` and `path.gz` beside `path` (each unless it is newer already): the relay serves the
/// smallest one the browser accepts. Brotli ships the Python runtime in about 6 MB, gzip in 8.5, the wasm
/// itself is 22. The bench does the same to Pyodide's files.
pub fn compress(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let source = tools::modified(path)?;
    // The two take the machine's two cores: brotli's best levels are the slow part of a wasm build.
    std::thread::scope(|scope| {
        let brotli = scope.spawn(|| write_packed(path, "br", source, &bytes, brotli));
        let gzip = write_packed(path, "gz", source, &bytes, gzip);
        brotli
            .join()
            .map_err(|_| anyhow::anyhow!("brotli panicked"))??;
        gzip
    })
}

fn write_packed(
    path: &Path,
    extension: &str,
    source: SystemTime,
    bytes: &[u8],
    pack: fn(&[u8]) -> Result<Vec<u8>>,
) -> Result<()> {
    let mut packed = path.as_os_str().to_owned();
    packed.push(format!(".{extension}"));
    let packed = PathBuf::from(packed);
    if tools::modified(&packed)? > source {
        return Ok(());
    }
    let started = Instant::now();
    let compressed = pack(bytes)?;
    std::fs::write(&packed, &compressed)
        .with_context(|| format!("writing {}", packed.display()))?;
    println!(
        "==> {extension} {}: {} → {} bytes in {:.1} s",
        path.display(),
        bytes.len(),
        compressed.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut encoder, bytes)?;
    Ok(encoder.finish()?)
}

/// Quality 10 of 11 with the largest window: within 4% of 11's size in two thirds of its time.
fn brotli(bytes: &[u8]) -> Result<Vec<u8>> {
    let params = brotli::enc::BrotliEncoderParams {
        quality: 10,
        lgwin: 24,
        size_hint: bytes.len(),
        ..Default::default()
    };
    let mut out = Vec::new();
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params)?;
    Ok(out)
}

/// wasm-bindgen `--target web` on the release wasm of the library `name`, into `out`.
fn bindgen(name: &str, out: &Path) -> Result<()> {
    let input = tools::target_dir()
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{name}.wasm"));
    let glue = out.join(format!("{name}_bg.wasm"));
    if tools::modified(&glue)? > tools::modified(&input)? && out.join(format!("{name}.js")).exists()
    {
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
