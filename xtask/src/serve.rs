//! `cargo xtask serve`: builds the frontend for wasm32 and the relay in release mode, then runs the relay in
//! the foreground, serving `www/` and the tunnel on one port until it is stopped (Ctrl-C).

use anyhow::{bail, Context, Result};

use crate::tools::{self, cargo};

pub fn run(port: u16) -> Result<()> {
    crate::wasm::build()?;
    build(cargo().args(["build", "--release", "-p", "soket-relay"]))?;

    let relay = tools::target_dir()
        .join("release")
        .join(format!("soket-relay{}", std::env::consts::EXE_SUFFIX));
    let www = tools::root().join("www");
    let mut cmd = std::process::Command::new(&relay);
    cmd.arg("--port")
        .arg(port.to_string())
        .arg("--www")
        .arg(&www);
    println!("==> {}", tools::describe(&cmd));
    // The relay prints the address it serves; it runs until interrupted.
    let status = cmd
        .status()
        .with_context(|| format!("could not start {}", relay.display()))?;
    if !status.success() {
        bail!("soket-relay exited ({status})");
    }
    Ok(())
}

fn build(cmd: &mut std::process::Command) -> Result<()> {
    println!("==> {}", tools::describe(cmd));
    tools::run(cmd)
}
