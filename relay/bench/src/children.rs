//! The programs under test, each in a process of its own: the release `soket-relay` and websocat.
//!
//! A [`Child`] kills its process when dropped, so that no relay or websocat outlives the bench, whichever
//! way it ends.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long a program may take to start serving.
const STARTUP: Duration = Duration::from_secs(15);

/// A process started by the bench; killed (by its own id) when dropped.
pub struct Child {
    name: String,
    child: std::process::Child,
}

impl Child {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's resident set size, in KiB (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> Result<u64> {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no VmRSS in {path}"))
    }

    /// Fails if the process has already exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early ({status})", self.name);
        }
        Ok(())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `soket-relay` serving on `127.0.0.1`, port 0.
pub struct Relay {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Relay {
    /// The WebSocket URL of its tunnel.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

/// Starts `binary` with `--port 0` and `flags`, and waits for the line that says where it serves:
/// `Soket relay serving http://ADDR/`. Logs go to our stderr at `warn`, so per-session lines stay out.
pub fn relay(binary: &Path, www: &Path, flags: &[String]) -> Result<Relay> {
    let mut cmd = Command::new(binary);
    cmd.args(["--port", "0", "--listen", "127.0.0.1", "--www"])
        .arg(www)
        .args(flags)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("start {}", binary.display()))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let child = Child {
        name: "soket-relay".into(),
        child,
    };
    let (tx, rx) = mpsc::channel();
    // Reads the relay's stdout to its end, so that the relay never blocks on a full pipe.
    thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent {
                if let Some(rest) = line.strip_prefix("Soket relay serving http://") {
                    sent = true;
                    let _ = tx.send(rest.trim_end_matches('/').to_string());
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(STARTUP)
        .context("the relay did not print `Soket relay serving http://ADDR/` in time")?;
    let addr: SocketAddr = addr
        .parse()
        .with_context(|| format!("the relay's address {addr:?}"))?;
    Ok(Relay { child, addr })
}

/// A websocat relaying WebSocket binary messages on `127.0.0.1:port` to TCP `target`.
pub struct Websocat {
    pub child: Child,
    pub port: u16,
}

impl Websocat {
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }
}

/// Starts `websocat --binary -E -q ws-l:127.0.0.1:PORT tcp:TARGET` on a free port and waits until it
/// accepts connections. (A probe connection reaches no target: websocat dials it after the handshake.)
pub fn websocat(binary: &Path, target: SocketAddr) -> Result<Websocat> {
    let port = free_port()?;
    let child = Command::new(binary)
        .args(["--binary", "-E", "-q"])
        .arg(format!("ws-l:127.0.0.1:{port}"))
        .arg(format!("tcp:{target}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("start {}", binary.display()))?;
    let mut child = Child {
        name: "websocat".into(),
        child,
    };
    let deadline = Instant::now() + STARTUP;
    loop {
        child.check_alive()?;
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(Websocat { child, port });
        }
        if Instant::now() >= deadline {
            bail!("websocat did not listen on 127.0.0.1:{port} within {STARTUP:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A port that was free on 127.0.0.1 a moment ago.
fn free_port() -> Result<u16> {
    let probe = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(probe.local_addr()?.port())
}

/// `websocat` on `PATH`, else `~/.cargo/bin/websocat`.
pub fn find_websocat() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("websocat"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("HOME")?;
        let p = PathBuf::from(home).join(".cargo/bin/websocat");
        p.is_file().then_some(p)
    })
}
