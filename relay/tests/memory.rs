//! What a page's frames cost the relay in memory. A frame that changes nothing (a second `Shutdown`, an
//! empty `Data`) costs nothing, and a stream's queue holds the bytes the page sent, not a record per frame:
//! so a page that floods the relay with frames, while the stream's writer cannot write, grows nothing.
//!
//! The relay runs in this test process, so a counting allocator sees its memory. The tests take turns (a
//! lock), so each one measures only itself.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use soket_protocol::{Up, MAX_PAYLOAD};

/// The system allocator, counting the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call goes to `System` unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One test at a time: a test running beside another would count its allocations too.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How many frames each test sends.
const FRAMES: usize = 100_000;

/// What the relay may keep beyond the bytes it was sent: its buffers settling, a frame being read.
const SLACK: i64 = 512 * 1024;

/// A relay whose stream writer cannot write: at 1000 bytes a second, the first 64 KiB the page sends hold
/// the stream's writer for a minute, so whatever the page sends next waits in the stream's queue.
struct Stalled {
    bench: Bench,
    conn: soket_client::TcpConn,
    page: soket_client::Client,
}

struct Bench {
    relay: TestRelay,
    echo: std::net::SocketAddr,
    witness: soket_client::Client,
}

impl Stalled {
    async fn new() -> Stalled {
        let echo = echo_server("127.0.0.2").await;
        let allow = format!("127.0.0.2:{}", echo.port());
        let relay = start(&["--allow", &allow, "--session-rate", "1000"]).await;
        let witness = session(&relay).await;
        let page = session(&relay).await;
        let mut conn = page
            .connect_tcp("127.0.0.2", echo.port())
            .await
            .expect("connect to the echo server");
        conn.write_all(&[b'w'; MAX_PAYLOAD])
            .await
            .expect("the first 64 KiB");
        // Let the writer take them and start waiting on the rate.
        page.ping().await.expect("ping");
        tokio::time::sleep(Duration::from_millis(100)).await;
        Stalled {
            bench: Bench {
                relay,
                echo,
                witness,
            },
            conn,
            page,
        }
    }

    /// Sends `frame` `FRAMES` times, waits until the relay has handled them all (a ping is answered after
    /// every frame before it), and returns how much more memory the process holds than before.
    async fn growth_after(&self, frame: Bytes) -> i64 {
        let before = LIVE.load(Relaxed);
        for _ in 0..FRAMES {
            self.page.raw(frame.clone()).await.expect("send");
        }
        tokio::time::timeout(Duration::from_secs(60), self.page.ping())
            .await
            .expect("the session answers a ping after the flood")
            .expect("ping");
        LIVE.load(Relaxed) - before
    }

    /// The session still answers and a witness session is served; then the relay shuts down.
    async fn still_served(self) {
        let Stalled { bench, conn, page } = self;
        page.ping().await.expect("the flooded session answers");
        bench.witness.ping().await.expect("the witness answers");
        let mut echo = bench
            .witness
            .connect_tcp("127.0.0.2", bench.echo.port())
            .await
            .expect("the witness connects");
        echo.write_all(b"still here").await.expect("write");
        assert_eq!(echo.read_exact(10).await.expect("echo"), b"still here");
        drop((conn, page));
        bench.relay.shutdown().await.expect("shutdown");
    }
}

fn mib(bytes: i64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[tokio::test]
async fn a_hundred_thousand_shutdowns_of_one_stream_cost_the_relay_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stalled = Stalled::new().await;
    let shutdown = Up::Shutdown {
        stream: stalled.conn.stream,
    }
    .encode();
    let growth = stalled.growth_after(shutdown).await;
    assert!(
        growth < SLACK,
        "{FRAMES} Shutdown frames for one stream grew the relay by {:.1} MiB",
        mib(growth)
    );
    stalled.still_served().await;
}

#[tokio::test]
async fn a_hundred_thousand_empty_data_frames_cost_the_relay_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stalled = Stalled::new().await;
    let empty = Up::Data {
        stream: stalled.conn.stream,
        payload: Bytes::new(),
    }
    .encode();
    let growth = stalled.growth_after(empty).await;
    assert!(
        growth < SLACK,
        "{FRAMES} empty Data frames grew the relay by {:.1} MiB",
        mib(growth)
    );
    stalled.still_served().await;
}

#[tokio::test]
async fn one_byte_data_frames_cost_the_relay_their_bytes_not_a_record_each() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stalled = Stalled::new().await;
    // Within the window: 64 KiB of it is taken, and the default window is 256 KiB.
    assert!(stalled.page.welcome().window as usize >= MAX_PAYLOAD + FRAMES);
    let byte = Up::Data {
        stream: stalled.conn.stream,
        payload: Bytes::from_static(b"x"),
    }
    .encode();
    let growth = stalled.growth_after(byte).await;
    let bytes = FRAMES as i64;
    assert!(
        growth < 2 * bytes + SLACK,
        "{FRAMES} one-byte Data frames grew the relay by {:.1} MiB for {:.1} MiB of bytes",
        mib(growth),
        mib(bytes)
    );
    stalled.still_served().await;
}
