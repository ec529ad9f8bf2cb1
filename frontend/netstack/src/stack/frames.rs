//! What the relay's frames do to the socket table: answers to the stack's operations, bytes and credit,
//! incoming connections, closes, and the relay going away.

use super::*;

impl Stack {
    /// The relay is gone: every call that needs it fails from now on, and so does every open stream.
    pub fn relay_lost(&mut self, why: &str) {
        let message = format!(
            "{} (the connection to the relay was lost: {why})",
            describe(ENETDOWN)
        );
        self.lost = Some(message.clone());
        for socket in self.sockets.values_mut() {
            if socket.stream.is_some() {
                if matches!(socket.pending, Some(Pending::Waiting)) {
                    socket.pending = Some(Pending::Done(Err(Failure::with(ENETDOWN, &message))));
                }
                socket.state = State::Gone;
                socket.error = Some(Failure::with(ENETDOWN, &message));
            }
        }
        for answer in self.resolutions.values_mut() {
            answer.get_or_insert_with(|| Err(Failure::errno(errno::EAI_AGAIN)));
        }
        for answer in self.round_trips.values_mut() {
            answer.get_or_insert_with(|| Err(Failure::with(ENETDOWN, &message)));
        }
        self.by_stream.clear();
        self.peer_lookups.clear();
        self.frames.clear();
    }

    /// The UDP socket whose connected peer the lookup `stream` is for, if it still waits for it (not
    /// closed, nor connected elsewhere since).
    fn peer_lookup(&mut self, stream: StreamId) -> Option<&mut Socket> {
        let fd = self.peer_lookups.remove(&stream)?;
        let socket = self.sockets.get_mut(&fd)?;
        (socket.connected == Some(Connected::Resolving(stream))).then_some(socket)
    }

    /// A frame from the relay. Afterwards, calls waiting on any socket may be able to go on.
    pub fn handle(&mut self, down: Down) -> Result<(), Violation> {
        match down {
            Down::Welcome {
                hostname,
                public_host,
                window,
            } => {
                self.hostname = hostname;
                self.public_host = public_host;
                self.window = window;
            }
            Down::Goodbye { message, .. } => self.relay_lost(&message),
            Down::Pong { stream } => {
                if let Some(answer) = self.round_trips.get_mut(&stream) {
                    *answer = Some(Ok(()));
                }
            }
            Down::Resolved { stream, addrs } => {
                if let Some(answer) = self.resolutions.get_mut(&stream) {
                    *answer = Some(Ok(addrs));
                } else if let Some(socket) = self.peer_lookup(stream) {
                    let port = socket.default_peer.as_ref().map_or(0, |(_, port)| *port);
                    socket.peer_found(Some(Connected::Peer { addrs, port }));
                }
            }
            Down::Connected {
                stream,
                local,
                peer,
            } => {
                let window = self.window;
                if let Some(socket) = self.socket_of(stream)? {
                    socket.state = State::Connected;
                    socket.local = Some(local);
                    socket.peer = Some(peer);
                    socket.send_credit = window;
                    socket.pending = Some(Pending::Done(Ok(())));
                }
            }
            Down::Bound { stream, local } => {
                if let Some(socket) = self.socket_of(stream)? {
                    socket.local = Some(local);
                    if socket.state == State::Binding {
                        socket.state = State::Bound;
                        if matches!(socket.pending, Some(Pending::Waiting)) {
                            socket.pending = Some(Pending::Done(Ok(())));
                        }
                    }
                }
            }
            Down::Listening { stream, public } => {
                if let Some(socket) = self.socket_of(stream)? {
                    socket.state = State::Listening;
                    socket.public = Some(public);
                    socket.pending = Some(Pending::Done(Ok(())));
                }
            }
            Down::Incoming {
                stream,
                conn,
                local,
                peer,
            } => self.incoming(stream, conn, local, peer)?,
            Down::Data { stream, payload } => {
                let window = self.window as usize;
                let Some(socket) = self.socket_of(stream)? else {
                    return Ok(());
                };
                if socket.received_len + payload.len() + socket.uncredited as usize > window {
                    return Err(Violation(format!(
                        "the relay sent stream {stream} more than its window"
                    )));
                }
                socket.received_len += payload.len();
                socket.received.push_back(payload);
            }
            Down::Credit { stream, amount } => {
                if let Some(socket) = self.socket_of(stream)? {
                    socket.send_credit = socket.send_credit.saturating_add(amount);
                }
            }
            Down::Shutdown { stream } => {
                if let Some(socket) = self.socket_of(stream)? {
                    socket.eof = true;
                }
            }
            Down::Closed {
                stream,
                errno,
                message,
            } => {
                if let Some(socket) = self.socket_of(stream)? {
                    socket.state = State::Gone;
                    if errno == 0 {
                        socket.eof = true;
                    } else {
                        socket.error = Some(Failure::with(errno, message));
                    }
                }
            }
            Down::Datagram {
                stream,
                from,
                payload,
            } => {
                if let Some(socket) = self.socket_of(stream)? {
                    socket.deliver(from, payload);
                }
            }
            Down::Failed {
                stream,
                errno,
                message,
            } => self.failed(stream, Failure::with(errno, message))?,
        }
        Ok(())
    }

    /// The socket a frame is for: `None` if the page closed it meanwhile (its frames are dropped).
    fn socket_of(&mut self, stream: StreamId) -> Result<Option<&mut Socket>, Violation> {
        match self.by_stream.get(&stream) {
            Some(fd) => Ok(self.sockets.get_mut(fd)),
            None if stream.0 < self.next_stream || stream.is_relay() => Ok(None),
            None => Err(Violation(format!(
                "the relay sent a frame for stream {stream}, which the page never opened"
            ))),
        }
    }

    fn incoming(
        &mut self,
        listener: StreamId,
        conn: StreamId,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Result<(), Violation> {
        let window = self.window;
        let owner = match self.socket_of(listener)? {
            Some(socket) if socket.state == State::Listening => socket.owner,
            _ => {
                // The listener is gone: refuse the connection the relay already accepted.
                self.frames.push_back(Up::Reset { stream: conn });
                return Ok(());
            }
        };
        let fd = self.socket(owner, Transport::Tcp);
        if let Some(socket) = self.sockets.get_mut(&fd) {
            socket.stream = Some(conn);
            socket.state = State::Connected;
            socket.local = Some(local);
            socket.peer = Some(peer);
            socket.send_credit = window;
        }
        self.by_stream.insert(conn, fd);
        if let Some(listener) = self.socket_of(listener)? {
            listener.accepts.push_back(fd);
        }
        Ok(())
    }

    fn failed(&mut self, stream: StreamId, failure: Failure) -> Result<(), Violation> {
        if let Some(answer) = self.resolutions.get_mut(&stream) {
            *answer = Some(Err(failure));
            return Ok(());
        }
        if let Some(socket) = self.peer_lookup(stream) {
            socket.peer_found(None);
            return Ok(());
        }
        let Some(fd) = self.by_stream.get(&stream).copied() else {
            return self.socket_of(stream).map(drop);
        };
        let Some(socket) = self.sockets.get_mut(&fd) else {
            return Ok(());
        };
        if matches!(socket.pending, Some(Pending::Waiting)) {
            // The operation failed: the relay keeps the id as closed, so free it and start afresh.
            socket.pending = Some(Pending::Done(Err(failure)));
            self.release_stream(fd);
        } else {
            // A failure nobody waits for (a refused sendto): raised by the socket's next call.
            socket.error = Some(failure);
        }
        Ok(())
    }
}
