//! Lines of text protocols (SMTP, POP3, IMAP4, FTP, NNTP, Telnet, Gopher): read with a length limit and an
//! idle timeout, written whole.
//!
//! Every lab server reads its client through a [`LineConn`], so none of them can be made to buffer without
//! bound or wait forever on a client that went quiet.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// The longest line a lab server accepts, terminator included (SMTP's limit is 1000, RFC 5321 4.5.3.1.6;
/// IMAP4 and NNTP lines are shorter in practice).
pub const MAX_LINE: usize = 4096;

/// What reading a line gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line, without its CRLF or LF.
    Text(String),
    /// The line was longer than the limit; the rest of it, up to its end, was skipped.
    TooLong,
    /// The client closed its side.
    Eof,
    /// Nothing came for the idle timeout.
    TimedOut,
}

/// A client connection of a line-based server.
pub struct LineConn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    idle: Duration,
    max: usize,
}

impl LineConn {
    pub fn new(socket: TcpStream, idle: Duration) -> LineConn {
        let (read, write) = socket.into_split();
        LineConn {
            reader: BufReader::new(read),
            writer: write,
            idle,
            max: MAX_LINE,
        }
    }

    /// Changes the longest line accepted (for protocols with a smaller or larger limit).
    pub fn set_max_line(&mut self, max: usize) {
        self.max = max;
    }

    /// Reads one line. Bytes that are not UTF-8 are replaced (these protocols are ASCII).
    pub async fn read_line(&mut self) -> io::Result<Line> {
        match tokio::time::timeout(self.idle, self.read_line_inner()).await {
            Ok(result) => result,
            Err(_) => Ok(Line::TimedOut),
        }
    }

    async fn read_line_inner(&mut self) -> io::Result<Line> {
        let mut bytes = Vec::new();
        let limit = self.max as u64;
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut bytes)
            .await?;
        if n == 0 {
            return Ok(Line::Eof);
        }
        // Without its LF the line either hit the limit, or the client closed in the middle of it (then
        // what came is taken as the last line).
        if bytes.last() != Some(&b'\n') && n as u64 == limit {
            self.skip_line().await?;
            return Ok(Line::TooLong);
        }
        while matches!(bytes.last(), Some(b'\n' | b'\r')) {
            bytes.pop();
        }
        Ok(Line::Text(String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Discards input up to the next LF (bounded by the idle timeout of the caller).
    async fn skip_line(&mut self) -> io::Result<()> {
        loop {
            let buf = self.reader.fill_buf().await?;
            if buf.is_empty() {
                return Ok(());
            }
            if let Some(i) = buf.iter().position(|&b| b == b'\n') {
                self.reader.consume(i + 1);
                return Ok(());
            }
            let n = buf.len();
            self.reader.consume(n);
        }
    }

    /// Reads exactly `n` bytes (IMAP literals), within the idle timeout.
    pub async fn read_exact(&mut self, n: usize) -> io::Result<Option<Vec<u8>>> {
        let mut bytes = vec![0; n];
        match tokio::time::timeout(self.idle, self.reader.read_exact(&mut bytes)).await {
            Ok(Ok(_)) => Ok(Some(bytes)),
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Ok(Err(e)) => Err(e),
            Err(_) => Ok(None),
        }
    }

    /// Writes `line` and CRLF.
    pub async fn send_line(&mut self, line: &str) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.send(&bytes).await
    }

    /// Writes raw bytes, within the idle timeout (a client that stops reading cannot hold the server).
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match tokio::time::timeout(self.idle, self.writer.write_all(bytes)).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            )),
        }
    }

    /// The underlying halves, for servers that switch to raw bytes (Telnet's option negotiation).
    pub fn parts(&mut self) -> (&mut BufReader<OwnedReadHalf>, &mut OwnedWriteHalf) {
        (&mut self.reader, &mut self.writer)
    }
}
