//! The relay binary at start-up checks that its limits add up: it refuses what cannot work for one
//! session, raises its open-file limit as far as it needs, and says what it promises beyond the host.

mod common;

use std::process::Stdio;

use tokio::process::Command;

/// The relay binary with this shell `ulimit` before it, and these flags after `--port 0`.
fn relay(ulimit: &str, flags: &[&str]) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit {ulimit} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_soket-relay"))
        .args([
            "--listen",
            "127.0.0.1",
            "--port",
            "0",
            "--www",
            "/nonexistent",
        ])
        .args(flags)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// The lines the relay printed until it said it serves, then stops it.
async fn until_serving(mut command: Command) -> Vec<String> {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .expect("relay starts");
    let (seen, _) = common::until_serving(&mut child).await;
    let _ = child.kill().await;
    seen
}

#[tokio::test]
async fn a_limit_too_small_for_one_session_is_refused_with_the_numbers() {
    let output = relay("-n 300", &[]).output().await.expect("relay runs");
    assert!(!output.status.success(), "the relay started anyway");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("the open-file limit is 300"), "{said}");
    assert!(said.contains("ulimit -n"), "{said}");
}

#[tokio::test]
async fn a_soft_limit_below_what_the_relay_needs_is_raised() {
    let small = [
        "--max-sessions",
        "10",
        "--max-connections",
        "100",
        "--max-sessions-per-ip",
        "4",
    ];
    let lines = until_serving(relay("-Sn 300", &small)).await;
    let raised = lines
        .iter()
        .find(|l| l.contains("open-file limit raised"))
        .unwrap_or_else(|| panic!("not raised:\n{}", lines.join("\n")));
    // 100 connections + 10 sessions × 32 streams × 2 + 128 = 868.
    assert!(
        raised.contains("from=300") && raised.contains("to=868"),
        "{raised}"
    );
}

#[tokio::test]
async fn ports_promised_beyond_the_range_and_one_client_taking_them_all_are_said() {
    let lines = until_serving(relay(
        "-Sn 4096",
        &[
            "--port-range",
            "40000-40999",
            "--max-sessions",
            "20",
            "--max-listeners",
            "60",
            "--max-sessions-per-ip",
            "2",
            "--max-connections",
            "100",
        ],
    ))
    .await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("WARN") && l.contains("1200 ports, but --port-range has 1000")),
        "{}",
        lines.join("\n")
    );
    let output = relay(
        "-Sn 4096",
        &[
            "--port-range",
            "40000-40099",
            "--max-sessions-per-ip",
            "13",
            "--max-connections",
            "100",
            "--max-sessions",
            "10",
        ],
    )
    .output()
    .await
    .expect("relay runs");
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("one client may hold every port"), "{said}");
}
