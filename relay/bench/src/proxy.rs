//! A loopback TCP proxy that counts the bytes a server sends to the browser: the browser part's measure of
//! what a cold load ships.
//!
//! The page's own Performance API sees only what its main thread fetched; a worker's fetches (the network
//! worker's wasm, the Python worker's glue) are in the worker's timeline. Counting at the server sees
//! everything the browser received, status lines and headers included, from every thread. The proxy is
//! plain TCP, so the browser's `Host` (and the WebSocket's `Origin`) name the proxy and the relay admits
//! the page as its own.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Connections the proxy carries at once; a browser opens six per origin, plus its WebSocket.
const MAX_CONNECTIONS: usize = 64;

pub struct CountingProxy {
    pub addr: SocketAddr,
    /// Bytes from the server to the browser since the last [`CountingProxy::reset`].
    down: Arc<AtomicU64>,
    /// The accept loop; it owns every connection's task, so aborting it (on drop) ends them all.
    accept: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    /// Listens on `127.0.0.1`, port 0, and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<CountingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind the counting proxy")?;
        let addr = listener.local_addr()?;
        let down = Arc::new(AtomicU64::new(0));
        let counter = down.clone();
        let accept = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                // Reap finished connections, so the set holds only live ones.
                while connections.try_join_next().is_some() {}
                let Ok((browser, _)) = listener.accept().await else {
                    // Out of descriptors, say: wait rather than spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                if connections.len() >= MAX_CONNECTIONS {
                    // Dropped: the browser sees a reset, and the bench's load fails visibly.
                    continue;
                }
                connections.spawn(forward(browser, upstream, counter.clone()));
            }
        });
        Ok(CountingProxy { addr, down, accept })
    }

    pub fn reset(&self) {
        self.down.store(0, Ordering::Relaxed);
    }

    /// The count once no byte has arrived for `quiet` (or after `within` at most): what arrives after the
    /// page says it is ready (the editor's bundle, say) still belongs to its load.
    pub async fn settled(&self, quiet: Duration, within: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + within;
        let mut last = self.down.load(Ordering::Relaxed);
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(quiet).await;
            let now = self.down.load(Ordering::Relaxed);
            if now == last {
                break;
            }
            last = now;
        }
        last
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Carries one connection both ways until either side closes, counting the upstream's bytes.
async fn forward(browser: TcpStream, upstream: SocketAddr, down: Arc<AtomicU64>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = browser.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut browser_rx, mut browser_tx) = browser.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut browser_rx, &mut server_tx).await;
        let _ = server_tx.shutdown().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match server_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    down.fetch_add(n as u64, Ordering::Relaxed);
                    if browser_tx.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = browser_tx.shutdown().await;
    };
    tokio::join!(up, downstream);
}
