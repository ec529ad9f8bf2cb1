//! Encoding and decoding of frames, as the table in the crate docs lays them out.
//!
//! Decoding is strict: a frame must be exactly as long as its fields say, every enum byte must be known,
//! every string valid UTF-8 and every length within the crate's limits. Payloads are slices of the frame
//! (`Bytes`), so decoding a `Data` frame copies nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, Bytes, BytesMut};

use crate::{
    Down, GoodbyeCode, StreamId, Transport, Up, MAX_ADDRS, MAX_FRAME, MAX_HOST, MAX_PAYLOAD,
};

/// Why a frame could not be decoded. Any of these ends the session that sent it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame has no bytes at all.
    #[error("empty frame")]
    Empty,
    /// The frame is longer than [`MAX_FRAME`].
    #[error("frame of {0} bytes is larger than the limit of {MAX_FRAME}")]
    TooLarge(usize),
    /// The tag byte names no message of this direction.
    #[error("unknown message tag 0x{0:02x}")]
    UnknownTag(u8),
    /// The frame ended before the field `field`.
    #[error("frame ends before its field `{0}`")]
    Truncated(&'static str),
    /// Bytes remain after the last field.
    #[error("{0} bytes after the last field")]
    TrailingBytes(usize),
    /// A field holds a value outside its range.
    #[error("field `{field}` is invalid: {why}")]
    Invalid {
        field: &'static str,
        why: &'static str,
    },
}

mod tag {
    pub const CONNECT: u8 = 0x01;
    pub const BIND: u8 = 0x02;
    pub const LISTEN: u8 = 0x03;
    pub const DATA_UP: u8 = 0x04;
    pub const CREDIT_UP: u8 = 0x05;
    pub const SHUTDOWN_UP: u8 = 0x06;
    pub const CLOSE: u8 = 0x07;
    pub const RESET: u8 = 0x08;
    pub const SEND_TO: u8 = 0x09;
    pub const RESOLVE: u8 = 0x0A;
    pub const PING: u8 = 0x0B;

    pub const WELCOME: u8 = 0x81;
    pub const CONNECTED: u8 = 0x82;
    pub const BOUND: u8 = 0x83;
    pub const LISTENING: u8 = 0x84;
    pub const INCOMING: u8 = 0x85;
    pub const DATA_DOWN: u8 = 0x86;
    pub const CREDIT_DOWN: u8 = 0x87;
    pub const SHUTDOWN_DOWN: u8 = 0x88;
    pub const CLOSED: u8 = 0x89;
    pub const DATAGRAM: u8 = 0x8A;
    pub const RESOLVED: u8 = 0x8B;
    pub const FAILED: u8 = 0x8C;
    pub const PONG: u8 = 0x8D;
    pub const GOODBYE: u8 = 0x8E;
}

pub(crate) const DOWN_DATA: u8 = tag::DATA_DOWN;

pub(crate) fn data_header(tag: u8, stream: StreamId) -> [u8; crate::DATA_HEADER_LEN] {
    let id = stream.0.to_be_bytes();
    [tag, id[0], id[1], id[2], id[3]]
}

/// Builds one frame. Strings longer than their limit are cut at a character boundary, so encoding never
/// fails and never produces a frame the other end must refuse.
struct Writer(BytesMut);

impl Writer {
    fn new(tag: u8, stream: StreamId, capacity: usize) -> Writer {
        let mut buf = BytesMut::with_capacity(5 + capacity);
        buf.put_u8(tag);
        buf.put_u32(stream.0);
        Writer(buf)
    }

    fn u16(&mut self, v: u16) -> &mut Self {
        self.0.put_u16(v);
        self
    }

    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.put_u32(v);
        self
    }

    fn i32(&mut self, v: i32) -> &mut Self {
        self.0.put_i32(v);
        self
    }

    fn str(&mut self, s: &str, limit: usize) -> &mut Self {
        let mut end = s.len().min(limit);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.0.put_u16(end as u16);
        self.0.put_slice(&s.as_bytes()[..end]);
        self
    }

    fn ip(&mut self, ip: IpAddr) -> &mut Self {
        match ip {
            IpAddr::V4(v4) => {
                self.0.put_u8(4);
                self.0.put_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                self.0.put_u8(6);
                self.0.put_slice(&v6.octets());
            }
        }
        self
    }

    fn addr(&mut self, addr: SocketAddr) -> &mut Self {
        self.ip(addr.ip()).u16(addr.port())
    }

    fn payload(&mut self, payload: &[u8]) -> &mut Self {
        debug_assert!(payload.len() <= MAX_PAYLOAD, "payload over MAX_PAYLOAD");
        self.0.put_slice(payload);
        self
    }

    fn finish(&mut self) -> Bytes {
        std::mem::take(&mut self.0).freeze()
    }
}

/// The longest message text a frame carries; longer ones are cut.
const MAX_MESSAGE: usize = 1024;

pub(crate) fn encode_up(msg: &Up) -> Bytes {
    match msg {
        Up::Connect { stream, host, port } => Writer::new(tag::CONNECT, *stream, 4 + host.len())
            .str(host, MAX_HOST)
            .u16(*port)
            .finish(),
        Up::Bind {
            stream,
            transport,
            host,
            port,
        } => {
            let t = match transport {
                Transport::Tcp => 1,
                Transport::Udp => 2,
            };
            let mut w = Writer::new(tag::BIND, *stream, 5 + host.len());
            w.0.put_u8(t);
            w.str(host, MAX_HOST).u16(*port).finish()
        }
        Up::Listen { stream, backlog } => {
            Writer::new(tag::LISTEN, *stream, 4).u32(*backlog).finish()
        }
        Up::Data { stream, payload } => Writer::new(tag::DATA_UP, *stream, payload.len())
            .payload(payload)
            .finish(),
        Up::Credit { stream, amount } => Writer::new(tag::CREDIT_UP, *stream, 4)
            .u32(*amount)
            .finish(),
        Up::Shutdown { stream } => Writer::new(tag::SHUTDOWN_UP, *stream, 0).finish(),
        Up::Close { stream } => Writer::new(tag::CLOSE, *stream, 0).finish(),
        Up::Reset { stream } => Writer::new(tag::RESET, *stream, 0).finish(),
        Up::SendTo {
            stream,
            host,
            port,
            payload,
        } => Writer::new(tag::SEND_TO, *stream, 4 + host.len() + payload.len())
            .str(host, MAX_HOST)
            .u16(*port)
            .payload(payload)
            .finish(),
        Up::Resolve { stream, host } => Writer::new(tag::RESOLVE, *stream, 2 + host.len())
            .str(host, MAX_HOST)
            .finish(),
        Up::Ping { stream } => Writer::new(tag::PING, *stream, 0).finish(),
    }
}

pub(crate) fn encode_down(msg: &Down) -> Bytes {
    match msg {
        Down::Welcome {
            hostname,
            public_host,
            window,
        } => Writer::new(
            tag::WELCOME,
            StreamId::SESSION,
            8 + hostname.len() + public_host.len(),
        )
        .str(hostname, MAX_HOST)
        .str(public_host, MAX_HOST)
        .u32(*window)
        .finish(),
        Down::Connected {
            stream,
            local,
            peer,
        } => Writer::new(tag::CONNECTED, *stream, 38)
            .addr(*local)
            .addr(*peer)
            .finish(),
        Down::Bound { stream, local } => Writer::new(tag::BOUND, *stream, 19).addr(*local).finish(),
        Down::Listening { stream, public } => {
            Writer::new(tag::LISTENING, *stream, 2 + public.len())
                .str(public, MAX_HOST)
                .finish()
        }
        Down::Incoming {
            stream,
            conn,
            local,
            peer,
        } => Writer::new(tag::INCOMING, *stream, 42)
            .u32(conn.0)
            .addr(*local)
            .addr(*peer)
            .finish(),
        Down::Data { stream, payload } => Writer::new(tag::DATA_DOWN, *stream, payload.len())
            .payload(payload)
            .finish(),
        Down::Credit { stream, amount } => Writer::new(tag::CREDIT_DOWN, *stream, 4)
            .u32(*amount)
            .finish(),
        Down::Shutdown { stream } => Writer::new(tag::SHUTDOWN_DOWN, *stream, 0).finish(),
        Down::Closed {
            stream,
            errno,
            message,
        } => Writer::new(tag::CLOSED, *stream, 6 + message.len())
            .i32(*errno)
            .str(message, MAX_MESSAGE)
            .finish(),
        Down::Datagram {
            stream,
            from,
            payload,
        } => Writer::new(tag::DATAGRAM, *stream, 19 + payload.len())
            .addr(*from)
            .payload(payload)
            .finish(),
        Down::Resolved { stream, addrs } => {
            let mut w = Writer::new(tag::RESOLVED, *stream, 1 + 17 * addrs.len());
            let addrs = &addrs[..addrs.len().min(MAX_ADDRS)];
            w.0.put_u8(addrs.len() as u8);
            for ip in addrs {
                w.ip(*ip);
            }
            w.finish()
        }
        Down::Failed {
            stream,
            errno,
            message,
        } => Writer::new(tag::FAILED, *stream, 6 + message.len())
            .i32(*errno)
            .str(message, MAX_MESSAGE)
            .finish(),
        Down::Pong { stream } => Writer::new(tag::PONG, *stream, 0).finish(),
        Down::Goodbye { code, message } => {
            Writer::new(tag::GOODBYE, StreamId::SESSION, 4 + message.len())
                .u16(code.to_u16())
                .str(message, MAX_MESSAGE)
                .finish()
        }
    }
}

/// Reads the fields of one frame in order.
struct Reader<'a> {
    frame: &'a Bytes,
    at: usize,
}

impl<'a> Reader<'a> {
    /// Checks the frame's size and reads its tag and stream.
    fn open(frame: &'a Bytes) -> Result<(Reader<'a>, u8, StreamId), DecodeError> {
        if frame.is_empty() {
            return Err(DecodeError::Empty);
        }
        if frame.len() > MAX_FRAME {
            return Err(DecodeError::TooLarge(frame.len()));
        }
        let mut r = Reader { frame, at: 0 };
        let tag = r.take(1, "tag")?[0];
        let stream = StreamId(r.u32("stream")?);
        Ok((r, tag, stream))
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.frame.len());
        let end = end.ok_or(DecodeError::Truncated(field))?;
        let bytes = &self.frame[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        Ok(self.u32(field)? as i32)
    }

    fn str(&mut self, field: &'static str, limit: usize) -> Result<String, DecodeError> {
        let len = self.u16(field)? as usize;
        if len > limit {
            return Err(DecodeError::Invalid {
                field,
                why: "longer than its limit",
            });
        }
        let bytes = self.take(len, field)?;
        let s = std::str::from_utf8(bytes).map_err(|_| DecodeError::Invalid {
            field,
            why: "not UTF-8",
        })?;
        Ok(s.to_owned())
    }

    fn ip(&mut self, field: &'static str) -> Result<IpAddr, DecodeError> {
        match self.u8(field)? {
            4 => {
                let b = self.take(4, field)?;
                Ok(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
            }
            6 => {
                let b = self.take(16, field)?;
                let mut octets = [0u8; 16];
                octets.copy_from_slice(b);
                Ok(IpAddr::V6(Ipv6Addr::from(octets)))
            }
            _ => Err(DecodeError::Invalid {
                field,
                why: "address family is neither 4 nor 6",
            }),
        }
    }

    fn addr(&mut self, field: &'static str) -> Result<SocketAddr, DecodeError> {
        let ip = self.ip(field)?;
        let port = self.u16(field)?;
        Ok(SocketAddr::new(ip, port))
    }

    /// Everything left in the frame.
    fn payload(&mut self) -> Result<Bytes, DecodeError> {
        let rest = self.frame.len() - self.at;
        if rest > MAX_PAYLOAD {
            return Err(DecodeError::Invalid {
                field: "payload",
                why: "larger than MAX_PAYLOAD",
            });
        }
        let payload = self.frame.slice(self.at..);
        self.at = self.frame.len();
        Ok(payload)
    }

    fn end(&self) -> Result<(), DecodeError> {
        match self.frame.len() - self.at {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// Session-level messages carry stream 0 and nothing else does.
fn stream_id(stream: StreamId) -> Result<StreamId, DecodeError> {
    if stream == StreamId::SESSION {
        return Err(DecodeError::Invalid {
            field: "stream",
            why: "stream 0 is the session",
        });
    }
    Ok(stream)
}

pub(crate) fn decode_up(frame: &Bytes) -> Result<Up, DecodeError> {
    let (mut r, tag, stream) = Reader::open(frame)?;
    let stream = stream_id(stream)?;
    let msg = match tag {
        tag::CONNECT => Up::Connect {
            stream,
            host: r.str("host", MAX_HOST)?,
            port: r.u16("port")?,
        },
        tag::BIND => {
            let transport = match r.u8("transport")? {
                1 => Transport::Tcp,
                2 => Transport::Udp,
                _ => {
                    return Err(DecodeError::Invalid {
                        field: "transport",
                        why: "neither 1 (tcp) nor 2 (udp)",
                    })
                }
            };
            Up::Bind {
                stream,
                transport,
                host: r.str("host", MAX_HOST)?,
                port: r.u16("port")?,
            }
        }
        tag::LISTEN => Up::Listen {
            stream,
            backlog: r.u32("backlog")?,
        },
        tag::DATA_UP => Up::Data {
            stream,
            payload: r.payload()?,
        },
        tag::CREDIT_UP => Up::Credit {
            stream,
            amount: r.u32("amount")?,
        },
        tag::SHUTDOWN_UP => Up::Shutdown { stream },
        tag::CLOSE => Up::Close { stream },
        tag::RESET => Up::Reset { stream },
        tag::SEND_TO => Up::SendTo {
            stream,
            host: r.str("host", MAX_HOST)?,
            port: r.u16("port")?,
            payload: r.payload()?,
        },
        tag::RESOLVE => Up::Resolve {
            stream,
            host: r.str("host", MAX_HOST)?,
        },
        tag::PING => Up::Ping { stream },
        other => return Err(DecodeError::UnknownTag(other)),
    };
    r.end()?;
    Ok(msg)
}

pub(crate) fn decode_down(frame: &Bytes) -> Result<Down, DecodeError> {
    let (mut r, tag, stream) = Reader::open(frame)?;
    let session = |stream: StreamId| {
        if stream == StreamId::SESSION {
            Ok(())
        } else {
            Err(DecodeError::Invalid {
                field: "stream",
                why: "session messages carry stream 0",
            })
        }
    };
    let msg = match tag {
        tag::WELCOME => {
            session(stream)?;
            Down::Welcome {
                hostname: r.str("hostname", MAX_HOST)?,
                public_host: r.str("public_host", MAX_HOST)?,
                window: r.u32("window")?,
            }
        }
        tag::GOODBYE => {
            session(stream)?;
            Down::Goodbye {
                code: GoodbyeCode::from_u16(r.u16("code")?),
                message: r.str("message", MAX_MESSAGE)?,
            }
        }
        _ => {
            let stream = stream_id(stream)?;
            match tag {
                tag::CONNECTED => Down::Connected {
                    stream,
                    local: r.addr("local")?,
                    peer: r.addr("peer")?,
                },
                tag::BOUND => Down::Bound {
                    stream,
                    local: r.addr("local")?,
                },
                tag::LISTENING => Down::Listening {
                    stream,
                    public: r.str("public", MAX_HOST)?,
                },
                tag::INCOMING => Down::Incoming {
                    stream,
                    conn: stream_id(StreamId(r.u32("conn")?))?,
                    local: r.addr("local")?,
                    peer: r.addr("peer")?,
                },
                tag::DATA_DOWN => Down::Data {
                    stream,
                    payload: r.payload()?,
                },
                tag::CREDIT_DOWN => Down::Credit {
                    stream,
                    amount: r.u32("amount")?,
                },
                tag::SHUTDOWN_DOWN => Down::Shutdown { stream },
                tag::CLOSED => Down::Closed {
                    stream,
                    errno: r.i32("errno")?,
                    message: r.str("message", MAX_MESSAGE)?,
                },
                tag::DATAGRAM => Down::Datagram {
                    stream,
                    from: r.addr("from")?,
                    payload: r.payload()?,
                },
                tag::RESOLVED => {
                    let count = r.u8("addrs")? as usize;
                    if count > MAX_ADDRS {
                        return Err(DecodeError::Invalid {
                            field: "addrs",
                            why: "more than MAX_ADDRS",
                        });
                    }
                    let addrs = (0..count)
                        .map(|_| r.ip("addrs"))
                        .collect::<Result<_, _>>()?;
                    Down::Resolved { stream, addrs }
                }
                tag::FAILED => Down::Failed {
                    stream,
                    errno: r.i32("errno")?,
                    message: r.str("message", MAX_MESSAGE)?,
                },
                tag::PONG => Down::Pong { stream },
                other => return Err(DecodeError::UnknownTag(other)),
            }
        }
    };
    r.end()?;
    Ok(msg)
}
