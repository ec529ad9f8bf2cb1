//! The page's build: its other parts first (course, npm bundle, Python modules), then its wasm —
//! `soket-frontend` and `soket-networker` built for wasm32 in release mode, wasm-bindgen's JavaScript glue
//! generated next to each in `www/pkg/` (`soket_frontend.js`, `soket_frontend_bg.wasm`, which
//! `www/python-worker.js` imports, and the same for the network worker), their sizes for the page's
//! progress bar (`www/pkg/sizes.json`) — then the wasm compressed ([`crate::compress`]). `serve` and `test` call [`build`] before they need the page.
//!
//! wasm-bindgen runs in-process through `wasm-bindgen-cli-support`, pinned in `xtask/Cargo.toml` to
//! exactly the `wasm-bindgen` version `frontend/Cargo.toml` pins: the glue and the crate must match.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::compress;
use crate::tools::{self, cargo, WASM_TARGET};

/// Every cargo command that compiles the frontend for wasm32 passes these. RustPython's ruff parser
/// crates are pinned to 0.16.5, which declares rust-version 1.96 but builds on our 1.95, except for one
/// `debug_assert_matches!` (stable from 1.96) under `cfg(debug_assertions)`: hence release, for clippy
/// too.
pub const FRONTEND_CARGO_FLAGS: [&str; 2] = ["--release", "--ignore-rust-version"];

/// The crates that become wasm modules of the page: each one's glue is `www/pkg/<lib name>.js`. Another
/// page worker is one more entry here.
const PAGE_CRATES: [&str; 2] = ["soket-frontend", "soket-networker"];

/// Builds the whole page, in three steps: its other parts ([`page`]), its wasm modules ([`modules`]), and
/// their compressed copies ([`crate::compress`]).
pub fn build() -> Result<()> {
    page()?;
    let modules = modules()?;
    sizes(&modules)?;
    for module in &modules {
        compress::beside(module)?;
    }
    Ok(())
}

/// Writes `www/pkg/sizes.json`, `{"<file>": bytes}` for every wasm module: the total of the page's
/// progress bar while the runtime downloads. The response cannot say it when the relay sends the `.br` or
/// `.gz` copy: its Content-Length is then the compressed size, and the stream yields the decoded bytes.
fn sizes(modules: &[PathBuf]) -> Result<()> {
    let mut sizes = serde_json::Map::new();
    for module in modules {
        let name = module
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let bytes = std::fs::metadata(module)
            .with_context(|| format!("reading {}", module.display()))?
            .len();
        sizes.insert(name.to_owned(), bytes.into());
    }
    let out = tools::root().join("www").join("pkg").join("sizes.json");
    std::fs::write(&out, serde_json::Value::Object(sizes).to_string())
        .with_context(|| format!("writing {}", out.display()))
}

/// What the page needs besides its wasm: the course (`www/course.json`, see [`crate::course`]; first,
/// since it is quick and a mistake in a lesson should stop the build early), the npm bundle
/// (`www/editor.js`, see [`crate::web`]) and the Python modules from PyPI (`www/pylib/`, see
/// [`crate::pylib`]).
fn page() -> Result<()> {
    crate::course::build()?;
    crate::web::build()?;
    crate::pylib::build()
}

/// Builds `www/pkg/`: the release wasm of every page crate, then each one's glue (skipped when the glue
/// is newer than the wasm). Returns the wasm files the page loads.
fn modules() -> Result<Vec<PathBuf>> {
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
    let mut modules = Vec::new();
    for krate in PAGE_CRATES {
        let name = krate.replace('-', "_");
        bindgen(&name, &out)?;
        modules.push(out.join(format!("{name}_bg.wasm")));
    }
    Ok(modules)
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
