//! `soket-relay`: serves the playground and tunnels its sockets. `soket-relay --help` lists the flags; none
//! is needed for localhost use.

use anyhow::Context;
use clap::Parser;
use soket_relay::{capacity, Config, Relay};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = Config::parse();
    check_capacity(&config)?;
    let listener = TcpListener::bind((config.listen, config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.listen, config.port))?;
    let addr = listener.local_addr()?;
    if !config.www.join("index.html").is_file() {
        tracing::warn!(www = %config.www.display(), "no index.html in the www directory (see --www)");
    }
    let relay = Relay::new(config);
    // What the operator's --allow rules open (the policy the relay enforces, with the host addresses it
    // read), so a rule broader than meant shows in the log at once.
    for line in relay.policy().describe() {
        if line.warning {
            tracing::warn!("{line}");
        } else {
            tracing::info!("{line}");
        }
    }
    println!("Soket relay serving http://{addr}/");
    relay.serve(listener, shutdown_signal()).await?;
    Ok(())
}

/// Refuses a configuration the host cannot hold even for one session, raises the open-file limit as far
/// as the configuration needs, and warns of what is promised beyond the host.
fn check_capacity(config: &Config) -> anyhow::Result<()> {
    let limit = capacity::nofile().context("cannot read the open-file limit")?;
    let verdict = capacity::check(config, limit).map_err(|why| anyhow::anyhow!(why))?;
    if let Some(soft) = verdict.raise_to {
        match capacity::raise_nofile(soft) {
            Ok(()) => tracing::info!(from = limit.0, to = soft, "open-file limit raised"),
            Err(e) => tracing::warn!(error = %e, "the open-file limit could not be raised"),
        }
    }
    for warning in verdict.warnings {
        tracing::warn!("{warning}");
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
