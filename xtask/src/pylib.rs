//! Python modules the page ships beside the runtime's frozen standard library: the wheels pinned (with
//! hashes) in `frontend/pylib/requirements.txt`, downloaded from PyPI with pip and unpacked into
//! `www/pylib/` (generated, not committed), with `www/pylib/index.json` naming each module, its file and
//! whether it is a package. `www/python-worker.js` reads the index and hands the sources to the runtime,
//! which imports them from there (`frontend/src/runtime.rs`).
//!
//! Skipped while `index.json` is newer than the requirements.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::tools;

fn requirements() -> PathBuf {
    tools::root()
        .join("frontend")
        .join("pylib")
        .join("requirements.txt")
}

pub fn build() -> Result<()> {
    let out = tools::root().join("www").join("pylib");
    let index = out.join("index.json");
    if tools::modified(&index)? > tools::modified(&requirements())? {
        println!("==> www/pylib is up to date");
        return Ok(());
    }
    let wheels = tools::target_dir().join("pylib-wheels");
    let _ = std::fs::remove_dir_all(&wheels);
    let mut download = Command::new("python3");
    download
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
        ])
        .args(["--require-hashes", "-r"])
        .arg(requirements())
        .arg("-d")
        .arg(&wheels);
    println!("==> {}", tools::describe(&download));
    tools::run(&mut download).context("downloading the page's Python modules from PyPI")?;

    let _ = std::fs::remove_dir_all(&out);
    let mut modules = Vec::new();
    for wheel in std::fs::read_dir(&wheels)? {
        let wheel = wheel?.path();
        if wheel.extension().is_some_and(|e| e == "whl") {
            let mut unzip = Command::new("python3");
            unzip.args(["-m", "zipfile", "-e"]).arg(&wheel).arg(&out);
            tools::run(&mut unzip).with_context(|| format!("unpacking {}", wheel.display()))?;
        }
    }
    // The wheels' metadata is not needed on the page; their licences stay beside the modules.
    for entry in std::fs::read_dir(&out)? {
        let path = entry?.path();
        let name = file_name(&path);
        if name.ends_with(".dist-info") {
            for file in ["METADATA", "WHEEL", "RECORD", "top_level.txt"] {
                let _ = std::fs::remove_file(path.join(file));
            }
            continue;
        }
        if path.join("__init__.py").is_file() {
            modules.push((name.clone(), format!("{name}/__init__.py"), true));
            for sub in std::fs::read_dir(&path)? {
                let sub = file_name(&sub?.path());
                if let Some(stem) = sub.strip_suffix(".py").filter(|s| *s != "__init__") {
                    modules.push((format!("{name}.{stem}"), format!("{name}/{sub}"), false));
                }
            }
        } else if let Some(stem) = name.strip_suffix(".py") {
            modules.push((stem.to_owned(), name.clone(), false));
        }
    }
    if modules.is_empty() {
        bail!(
            "no Python modules in the wheels of {}",
            requirements().display()
        );
    }
    modules.sort();
    let entries: Vec<String> = modules
        .iter()
        .map(|(module, file, package)| {
            format!("  {{\"module\": \"{module}\", \"file\": \"{file}\", \"package\": {package}}}")
        })
        .collect();
    std::fs::write(&index, format!("[\n{}\n]\n", entries.join(",\n")))?;
    println!(
        "==> www/pylib: {}",
        modules
            .iter()
            .map(|m| m.0.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
