//! The page's JavaScript that comes from npm: the code editor (CodeMirror 6 with Python), whose sources,
//! `package.json` and `package-lock.json` live in `frontend/web/`, bundled by esbuild into `www/editor.js`
//! (generated, not committed). [`build`] installs the locked packages ([`install`]) and runs the bundle
//! step (`npm run build`). `wasm::build` calls it, so `serve` and `test` both get a current bundle. The
//! bench [`install`]s its own package the same way (Pyodide, in `relay/bench/browser/`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Result};

use crate::tools;

/// Where the editor's package lives.
fn dir() -> PathBuf {
    tools::root().join("frontend").join("web")
}

/// Installs the npm packages when the manifests changed, then bundles `www/editor.js` (and its `.br` and
/// `.gz`, which the relay serves to browsers that accept them).
pub fn build() -> Result<()> {
    let dir = dir();
    install(&dir)?;
    npm(&dir, &["run", "build"])?;
    crate::compress::beside(&tools::root().join("www").join("editor.js"))
}

/// Installs the locked packages of the npm package in `dir` (`npm ci`, skipped while `node_modules` is
/// newer than the manifests; `npm install` when there is no lock yet), installing npm first if need be.
pub fn install(dir: &Path) -> Result<()> {
    ensure_npm()?;
    let lock = dir.join("package-lock.json");
    let installed = dir.join("node_modules").join(".package-lock.json");
    let newest_manifest = tools::modified(&dir.join("package.json"))?.max(tools::modified(&lock)?);
    if !lock.exists() {
        npm(dir, &["install", "--no-audit", "--no-fund"])
    } else if tools::modified(&installed)? <= newest_manifest {
        npm(dir, &["ci", "--no-audit", "--no-fund"])
    } else {
        println!("==> npm ci: {} is up to date", installed.display());
        Ok(())
    }
}

fn npm(dir: &Path, args: &[&str]) -> Result<()> {
    let mut cmd = Command::new("npm");
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    let root = tools::root();
    let shown = dir.strip_prefix(&root).unwrap_or(dir);
    println!("==> (cd {} && {})", shown.display(), tools::describe(&cmd));
    tools::run(&mut cmd)
}

/// Makes sure npm (and with it Node.js) is installed, with apt-get when we are root.
fn ensure_npm() -> Result<()> {
    let present = || tools::succeeds(Command::new("npm").arg("--version"));
    if present() {
        return Ok(());
    }
    if !tools::is_root() {
        bail!(
            "the page's editor is bundled with npm, which is missing: install Node.js and npm \
             (`sudo apt-get install nodejs npm`, or https://nodejs.org)"
        );
    }
    println!("==> apt-get install -y nodejs npm");
    tools::run(
        Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null()),
    )?;
    tools::run(
        Command::new("apt-get")
            .args(["install", "-y", "nodejs", "npm"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null()),
    )?;
    if !present() {
        bail!("apt-get installed nodejs and npm, yet `npm --version` fails");
    }
    Ok(())
}
