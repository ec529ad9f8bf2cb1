//! `soket-relay`: serves the playground and tunnels its sockets. `soket-relay --help` lists the flags; none
//! is needed for localhost use.

use anyhow::Context;
use clap::Parser;
use soket_relay::{Config, Relay};
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
    let listener = TcpListener::bind((config.listen, config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.listen, config.port))?;
    let addr = listener.local_addr()?;
    if !config.www.join("index.html").is_file() {
        tracing::warn!(www = %config.www.display(), "no index.html in the www directory (see --www)");
    }
    println!("Soket relay serving http://{addr}/");
    Relay::new(config)
        .serve(listener, shutdown_signal())
        .await?;
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
