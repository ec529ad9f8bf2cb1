//! Running commands, and making sure the tools they need are there: the wasm32 target, Chromium, the
//! clients the tests run (`nc`, `curl`, `python3`).
//!
//! Commands run from the workspace root with inherited stdio unless a caller captures them; a command that
//! fails becomes an error naming it.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};

/// The target the frontend compiles to.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The workspace root: the parent of the xtask crate. `cargo run` tells us where that crate is; the path
/// it was compiled from is the fallback when the binary runs on its own.
pub fn root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Where cargo puts build outputs: `CARGO_TARGET_DIR` if set, else `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root().join(dir),
        None => root().join("target"),
    }
}

/// `cargo` from the toolchain that runs xtask (the `CARGO` variable cargo sets), run from the root.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// `cargo +nightly`: goes through the rustup proxy on `PATH`, since `CARGO` names one toolchain's cargo.
pub fn nightly_cargo() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg("+nightly")
        .env_remove("CARGO")
        .env_remove("RUSTUP_TOOLCHAIN")
        .current_dir(root());
    cmd
}

/// The command as a person would type it: `cargo test --workspace`.
pub fn describe(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program())
        .file_name()
        .unwrap_or(cmd.get_program());
    std::iter::once(program)
        .chain(cmd.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` with inherited stdio; fails unless it exits successfully.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{}`", describe(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(cmd));
    }
    Ok(())
}

/// True if `cmd` starts and exits successfully; its output is discarded.
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `cmd`, streaming its stdout through to ours as it comes and handing every complete line to
/// `on_line` as well; stderr is inherited. Fails unless it exits successfully.
pub fn run_streaming(cmd: &mut Command, mut on_line: impl FnMut(&str)) -> Result<()> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{}`", describe(cmd)))?;
    let mut pipe = child.stdout.take().expect("stdout is piped");
    let mut out = io::stdout();
    let mut chunk = [0u8; 8192];
    let mut line = Vec::new();
    loop {
        let n = match pipe.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading the output of a test run"),
        };
        // Pass bytes on at once, so a slow test's `test name ... ` shows before its verdict does.
        out.write_all(&chunk[..n])?;
        out.flush()?;
        for &byte in &chunk[..n] {
            if byte == b'\n' {
                on_line(&String::from_utf8_lossy(&line));
                line.clear();
            } else {
                line.push(byte);
            }
        }
    }
    if !line.is_empty() {
        on_line(&String::from_utf8_lossy(&line));
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(cmd));
    }
    Ok(())
}

/// Makes sure the standard library for [`WASM_TARGET`] is installed, adding it with rustup if not.
pub fn ensure_wasm_target() -> Result<()> {
    let rustup_present = succeeds(Command::new("rustup").arg("--version"));
    if !rustup_present {
        if wasm_std_in_sysroot() {
            return Ok(());
        }
        bail!(
            "the {WASM_TARGET} target is not installed and rustup is missing. Install rustup \
             (https://rustup.rs: `curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh`), \
             then run `rustup target add {WASM_TARGET}`, or install your distribution's Rust standard \
             library for {WASM_TARGET} (Debian: `apt-get install libstd-rust-dev-wasm32`)"
        );
    }
    let output = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(root())
        .output()
        .context("could not run `rustup target list --installed`")?;
    let installed = String::from_utf8_lossy(&output.stdout);
    if output.status.success() && installed.lines().any(|l| l.trim() == WASM_TARGET) {
        return Ok(());
    }
    println!("==> rustup target add {WASM_TARGET}");
    run(Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .current_dir(root()))
}

/// True if the active rustc's sysroot holds a standard library for [`WASM_TARGET`] (toolchains without
/// rustup, such as a distribution's).
fn wasm_std_in_sysroot() -> bool {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(output) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&output.stdout);
    Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(WASM_TARGET)
        .is_dir()
}

/// A program the tests run, and the Debian package that brings it.
pub struct Program {
    /// A path (`/usr/bin/chromium`) or a name looked up on `PATH` (`nc`).
    pub command: &'static str,
    pub package: &'static str,
}

/// The browser and its WebDriver that the end-to-end tests drive.
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const BROWSER: &[Program] = &[
    Program {
        command: CHROMIUM,
        package: "chromium",
    },
    Program {
        command: CHROMEDRIVER,
        package: "chromium-driver",
    },
];

/// What the relay's tests run besides themselves: CPython's own protocol clients, and a terminal's
/// `nc` (the OpenBSD one: the tests pass `-N`) and `curl`.
pub const TEST_CLIENTS: &[Program] = &[
    Program {
        command: "python3",
        package: "python3",
    },
    Program {
        command: "nc",
        package: "netcat-openbsd",
    },
    Program {
        command: "curl",
        package: "curl",
    },
];

/// Makes sure Chromium and chromedriver are installed, with apt-get when we are root.
pub fn ensure_chromium() -> Result<()> {
    ensure_programs(BROWSER)
}

/// Makes sure every program is there, installing the missing ones' packages with apt-get when we are
/// root; otherwise fails with the command that would install them.
pub fn ensure_programs(programs: &[Program]) -> Result<()> {
    let missing: Vec<&Program> = programs.iter().filter(|p| !installed(p.command)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|p| p.package).collect();
    let commands: Vec<&str> = missing.iter().map(|p| p.command).collect();
    if !is_root() {
        bail!(
            "the tests need {}: install the Debian packages {} (`sudo apt-get install {}`)",
            commands.join(", "),
            packages.join(", "),
            packages.join(" ")
        );
    }
    println!("==> apt-get install -y {}", packages.join(" "));
    run(Command::new("apt-get")
        .arg("update")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null()))?;
    run(Command::new("apt-get")
        .args(["install", "-y"])
        .args(&packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null()))?;
    if let Some(still) = missing.iter().find(|p| !installed(p.command)) {
        bail!(
            "apt-get installed {}, yet {} is missing",
            still.package,
            still.command
        );
    }
    Ok(())
}

/// Whether `command` (a path, or a name on `PATH`) names an existing file.
fn installed(command: &str) -> bool {
    if command.contains('/') {
        return Path::new(command).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(command).is_file()))
}

/// True if we run as root (uid 0).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// When `path` was last written, or the epoch if it does not exist.
pub fn modified(path: &Path) -> Result<SystemTime> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(meta.modified()?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SystemTime::UNIX_EPOCH),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_is_found_by_path_or_on_path() {
        assert!(installed("sh"), "sh is on every PATH");
        assert!(installed("/bin/sh"));
        assert!(!installed("soket-no-such-program"));
        assert!(!installed("/soket/no/such/program"));
    }
}
