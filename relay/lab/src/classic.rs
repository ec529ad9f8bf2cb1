//! The classic small services, on TCP and UDP: echo (RFC 862, port 7), discard (RFC 863, 9), daytime
//! (RFC 867, 13), quote of the day (RFC 865, 17) and character generator (RFC 864, 19).
//!
//! They are the first servers a learner talks to: `nc lab 13` prints the time. On TCP, echo and discard
//! last until the client closes or goes quiet for the idle timeout; chargen streams its pattern until the
//! client closes or stops reading for that long, and at most [`CHARGEN_LIMIT`] bytes, so that a forgotten
//! client cannot pull from the lab forever. On UDP each datagram gets one answer (none for discard); the
//! answer goes only to the addresses the relay's sessions send from ([`UdpSenders`]), so the lab cannot be
//! used to reflect traffic at anyone else.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

use super::clock::{self, Utc};
use super::{Context, Service, UdpSenders};

/// Most bytes one chargen connection sends: plenty to watch a stream arrive, then it closes.
pub const CHARGEN_LIMIT: usize = 1024 * 1024;
/// The largest UDP answer (RFC 864: chargen answers with 0 to 512 characters).
const UDP_ANSWER: usize = 512;

const QUOTES: [&str; 6] = [
    "\"The network is the computer.\" - John Gage",
    "\"Be conservative in what you send, be liberal in what you accept.\" - Jon Postel, RFC 761",
    "\"There are two hard problems: naming, cache invalidation and off-by-one errors.\"",
    "\"A packet walks into a bar. The bartender says: 'Are you TCP or UDP?'\"",
    "\"Everything is a socket if you squint.\"",
    "\"The best way to learn a protocol is to speak it by hand.\"",
];

pub async fn serve_tcp(service: Service, socket: TcpStream, context: Context) -> io::Result<()> {
    let idle = context.idle_timeout;
    let (mut reader, mut writer) = socket.into_split();
    match service {
        Service::Echo | Service::Discard => {
            let mut buf = vec![0; 16 * 1024];
            loop {
                let n = match tokio::time::timeout(idle, reader.read(&mut buf)).await {
                    Ok(Ok(0)) | Err(_) => return Ok(()),
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => return Err(e),
                };
                if service == Service::Echo {
                    write_within(idle, &mut writer, &buf[..n]).await?;
                }
            }
        }
        Service::Chargen => {
            let mut sent = 0;
            let mut line = 0;
            while sent < CHARGEN_LIMIT {
                let mut chunk = Vec::with_capacity(74 * 64);
                for _ in 0..64 {
                    chunk.extend_from_slice(&chargen_line(line));
                    line += 1;
                }
                write_within(idle, &mut writer, &chunk).await?;
                sent += chunk.len();
            }
            Ok(())
        }
        Service::Daytime | Service::Qotd => {
            write_within(idle, &mut writer, &answer(service, &[])).await?;
            writer.shutdown().await
        }
        _ => Ok(()),
    }
}

async fn write_within(
    idle: std::time::Duration,
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
    bytes: &[u8],
) -> io::Result<()> {
    match tokio::time::timeout(idle, writer.write_all(bytes)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "client stopped reading",
        )),
    }
}

/// Answers datagrams from `senders` until `shutdown`.
pub async fn serve_udp(
    service: Service,
    socket: UdpSocket,
    senders: UdpSenders,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0; 65_536];
    loop {
        let (n, from) = tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(_) => continue, // an ICMP error from an earlier answer
            },
            _ = shutdown.cancelled() => return,
        };
        if service == Service::Discard || !senders.answers(from) {
            continue;
        }
        let _ = socket.send_to(&answer(service, &buf[..n]), from).await;
    }
}

/// The one-shot answer of a service to `request` (a datagram; empty for a TCP connection).
fn answer(service: Service, request: &[u8]) -> Vec<u8> {
    let now = clock::unix_now();
    match service {
        Service::Echo => request[..request.len().min(65_507)].to_vec(),
        // RFC 867 leaves the format free; this is what `date -u` prints.
        Service::Daytime => format!("{}\r\n", Utc::from_unix(now).date_u()).into_bytes(),
        Service::Qotd => {
            let quote = QUOTES[(now / 86_400) as usize % QUOTES.len()];
            format!("{quote}\r\n").into_bytes()
        }
        Service::Chargen => {
            let mut bytes = Vec::with_capacity(UDP_ANSWER);
            let mut line = 0;
            while bytes.len() + 74 <= UDP_ANSWER {
                bytes.extend_from_slice(&chargen_line(line));
                line += 1;
            }
            bytes
        }
        _ => Vec::new(),
    }
}

/// Line `n` of RFC 864's pattern: 72 printable characters starting one further each line, then CRLF.
fn chargen_line(n: usize) -> [u8; 74] {
    let mut line = [0u8; 74];
    for (i, byte) in line.iter_mut().take(72).enumerate() {
        *byte = b' ' + ((n + i) % 95) as u8;
    }
    line[72] = b'\r';
    line[73] = b'\n';
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chargen_lines_shift_by_one() {
        assert_eq!(&chargen_line(0)[..3], b" !\"");
        assert_eq!(&chargen_line(1)[..3], b"!\"#");
        assert_eq!(&chargen_line(0)[72..], b"\r\n");
    }
}
