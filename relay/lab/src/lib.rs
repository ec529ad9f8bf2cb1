//! The lab network: real servers for every protocol of the course, run by the relay on loopback ports of
//! its host. A crate of its own, so that the relay and the servers meet only at the small API below; the
//! relay (`soket-relay`) re-exports it as its `lab` module. It needs nothing of the relay: no policy, no
//! session, no frame of the protocol.
//!
//! Inside a session the lab is one machine, `lab` (aliases `www.lab`, `ftp.lab`, `mail.lab`, `news.lab`,
//! `telnet.lab`, `gopher.lab`) at [`LAB_ADDR`], with each service on its standard port ([`Service`]). No
//! name of it resolves outside a session, and it needs no internet.
//!
//! Each service really listens on a real loopback port of the relay host, so its server is ordinary tokio
//! code on a `TcpStream`, and a session's connection to `lab:25` is a real loopback connection the session
//! dials like any other. Which session a connection comes from is known because the session binds its
//! dialling socket first and registers the local address ([`Lab::dial`]); the accept loop claims it and
//! hands the server that session's [`LabState`] (its mailbox, its uploaded files, its posts). A connection
//! nobody registered is some other process on the relay host: it is closed, unless the operator passed
//! `--lab-local-clients` (tests and teachers on the relay host), in which case all such clients share one
//! state.
//!
//! FTP's passive data ports are virtual lab ports too (`Context::data_port`): the server listens on a real
//! loopback port and the session's connection to `lab:P` is routed there ([`Lab::tcp_target`]).
//!
//! Everything is bounded: connections at once (1024 over all sessions), an idle timeout per connection
//! (`--lab-idle-timeout`), line lengths (`line`), and the sizes each server documents.
//!
//! # API
//! What the relay and its tests use, and nothing more:
//! - [`LAB_ADDR`], [`HOSTS`], [`is_lab_name`]: how a session recognises the lab in a destination.
//! - [`Service`]: one per standard port ([`Service::from_port`]).
//! - [`LabState`]: what one session keeps in the lab, created empty (`Default`) and dropped with the
//!   session; only the servers see inside it.
//! - [`Lab`]: the servers of one relay. [`Lab::new`] (with [`Lab::sending_from`] for a relay whose
//!   sessions are bound to another address than `127.0.0.1`), then [`Lab::start`] (every listener is bound when it
//!   returns; [`Lab::started`] tells whoever did not make that call); for a session
//!   [`Lab::tcp_target`], [`Lab::dial`], [`Lab::udp_addr`], [`Lab::udp_visible`]; [`Lab::tcp_addr`] and
//!   [`Lab::unclaimed`] for tests and local clients.
//! - [`FTP_MAX_FILE_BYTES`], [`FTP_MAX_SESSION_BYTES`]: limits the relay's tests push against.
//!
//! # Layout
//! - This file: the frame — the lab's names and address, [`Service`], [`Lab`] (a listener per service,
//!   the accept loops, the registry of dialled connections), `Context` (what a server gets per
//!   connection, and FTP's data ports), `serve` (the dispatch to each server).
//! - `line`: the line reader every text protocol uses; `clock`: the UTC dates they write; `mailbox`: the
//!   mail SMTP delivers and POP3 and IMAP4 read.
//! - One module per server: `classic` (echo, discard, daytime, qotd, chargen; TCP and UDP), `http` (with
//!   `http::xmlrpc`), `ftp` (with `ftp::command` and `ftp::store`, the file tree), `smtp`, `pop3`, `imap`
//!   (with `imap::parser`, `imap::fetch`, `imap::search`), `nntp`, `telnet`, `gopher`.

mod line;

mod classic;
mod clock;
mod ftp;
mod gopher;
mod http;
mod imap;
mod mailbox;
mod nntp;
mod pop3;
mod smtp;
mod telnet;

/// The FTP server's upload limits: a file, and all of one session's files together.
pub use ftp::{MAX_FILE_BYTES as FTP_MAX_FILE_BYTES, MAX_SESSION_BYTES as FTP_MAX_SESSION_BYTES};

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

/// The lab machine's address inside a session: TEST-NET-1 (RFC 5737), which is never a real host, so it
/// cannot shadow one.
pub const LAB_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// The names of the lab machine.
pub const HOSTS: [&str; 7] = [
    "lab",
    "www.lab",
    "ftp.lab",
    "mail.lab",
    "news.lab",
    "telnet.lab",
    "gopher.lab",
];

/// Most lab connections at once, over all sessions.
const MAX_CONNECTIONS: usize = 1024;

/// Whether `host` (lowercase, no trailing dot) names the lab machine.
pub fn is_lab_name(host: &str) -> bool {
    HOSTS.contains(&host)
}

/// Whether `text` matches `pattern`, where `*` matches any run of bytes and `one` (if given) any single
/// byte. Without recursion or backtracking blow-up: a pattern of a thousand stars costs no more than one.
pub(crate) fn glob(pattern: &[u8], text: &[u8], one: Option<u8>) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it currently stands for.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len()
            && (Some(pattern[p]) == one || pattern[p] == text[t])
            && pattern[p] != b'*'
        {
            (p, t) = (p + 1, t + 1);
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            star = Some((sp, st + 1));
            (p, t) = (sp + 1, st + 1);
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// One lab service, on its standard port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    Echo,
    Discard,
    Daytime,
    Qotd,
    Chargen,
    Ftp,
    Telnet,
    Smtp,
    Gopher,
    Http,
    Pop3,
    Nntp,
    Imap,
}

impl Service {
    pub const ALL: [Service; 13] = [
        Service::Echo,
        Service::Discard,
        Service::Daytime,
        Service::Qotd,
        Service::Chargen,
        Service::Ftp,
        Service::Telnet,
        Service::Smtp,
        Service::Gopher,
        Service::Http,
        Service::Pop3,
        Service::Nntp,
        Service::Imap,
    ];

    pub fn port(self) -> u16 {
        match self {
            Service::Echo => 7,
            Service::Discard => 9,
            Service::Daytime => 13,
            Service::Qotd => 17,
            Service::Chargen => 19,
            Service::Ftp => 21,
            Service::Telnet => 23,
            Service::Smtp => 25,
            Service::Gopher => 70,
            Service::Http => 80,
            Service::Pop3 => 110,
            Service::Nntp => 119,
            Service::Imap => 143,
        }
    }

    pub fn from_port(port: u16) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.port() == port)
    }

    pub fn name(self) -> &'static str {
        match self {
            Service::Echo => "echo",
            Service::Discard => "discard",
            Service::Daytime => "daytime",
            Service::Qotd => "qotd",
            Service::Chargen => "chargen",
            Service::Ftp => "ftp",
            Service::Telnet => "telnet",
            Service::Smtp => "smtp",
            Service::Gopher => "gopher",
            Service::Http => "http",
            Service::Pop3 => "pop3",
            Service::Nntp => "nntp",
            Service::Imap => "imap",
        }
    }

    /// The small services answer on UDP as well.
    pub fn has_udp(self) -> bool {
        matches!(
            self,
            Service::Echo | Service::Discard | Service::Daytime | Service::Qotd | Service::Chargen
        )
    }
}

/// What the lab keeps for one session: dropped with the session (and its last lab connection).
#[derive(Default)]
pub struct LabState {
    /// Mail for `@lab` addresses, sent by SMTP and read by POP3 and IMAP4.
    pub(crate) mail: mailbox::Store,
    /// Files uploaded over FTP.
    pub(crate) ftp: ftp::Store,
    /// Articles posted over NNTP.
    pub(crate) news: nntp::Store,
    /// Virtual lab port → real loopback address of an open FTP data port.
    data_ports: Mutex<HashMap<u16, SocketAddr>>,
}

impl LabState {
    fn data_ports(&self) -> std::sync::MutexGuard<'_, HashMap<u16, SocketAddr>> {
        self.data_ports.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a lab server gets with each connection.
pub(crate) struct Context {
    /// The state of the session the client belongs to.
    pub(crate) state: Arc<LabState>,
    /// How long the server waits for the client before it gives up on it.
    pub(crate) idle_timeout: Duration,
    /// Whether the client is in a session (virtual lab addresses) or a process on the relay host.
    in_session: bool,
}

/// The first virtual port of FTP data ports, as Linux's ephemeral range.
const DATA_PORT_FIRST: u16 = 32768;
/// Most data ports one session may have open at once.
const MAX_DATA_PORTS: usize = 8;

impl Context {
    /// Opens a data port (FTP passive mode): a real loopback listener, and the address the client must
    /// connect to — a virtual `lab` port for a session, the real address for a client on the relay host.
    /// The port closes when the returned [`DataPort`] is dropped.
    pub(crate) async fn data_port(&self) -> io::Result<DataPort> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let real = listener.local_addr()?;
        if !self.in_session {
            return Ok(DataPort {
                listener,
                advertised: real,
                registered: None,
            });
        }
        let mut ports = self.state.data_ports();
        if ports.len() >= MAX_DATA_PORTS {
            return Err(io::Error::other("too many data ports open"));
        }
        let port = (DATA_PORT_FIRST..=u16::MAX)
            .find(|p| !ports.contains_key(p))
            .ok_or_else(|| io::Error::other("no free data port"))?;
        ports.insert(port, real);
        Ok(DataPort {
            listener,
            advertised: SocketAddr::new(IpAddr::V4(LAB_ADDR), port),
            registered: Some((Arc::downgrade(&self.state), port)),
        })
    }
}

/// An open data port; closing it (dropping) frees its virtual port.
pub(crate) struct DataPort {
    pub(crate) listener: TcpListener,
    /// The address to tell the client (in a PASV or EPSV reply).
    pub(crate) advertised: SocketAddr,
    registered: Option<(Weak<LabState>, u16)>,
}

impl Drop for DataPort {
    fn drop(&mut self) {
        if let Some((state, port)) = self.registered.take() {
            if let Some(state) = state.upgrade() {
                state.data_ports().remove(&port);
            }
        }
    }
}

/// The lab servers of one relay.
pub struct Lab {
    idle_timeout: Duration,
    /// State shared by clients on the relay host, if the operator lets them in.
    local_clients: Option<Arc<LabState>>,
    /// Real address of each service's TCP and UDP listener: set once, by [`Lab::start`], when every
    /// listener is bound.
    addrs: OnceLock<HashMap<Service, (SocketAddr, Option<SocketAddr>)>>,
    /// Wakes [`Lab::started`] callers when `addrs` is set.
    started: Notify,
    /// Local address of a session's dialling socket → the state of that session, until accepted.
    expected: Mutex<HashMap<SocketAddr, Arc<LabState>>>,
    /// One permit per lab connection, over all sessions: a connection over the limit is closed at once.
    connections: Arc<Semaphore>,
    /// Whom lab UDP answers.
    udp_senders: UdpSenders,
}

/// The sources lab UDP answers: the addresses the relay's sessions send lab datagrams from (their sockets
/// are bound to `--bind-ip`), and loopback where that is where they come from or where the operator lets
/// the relay host's own processes in. Nobody else gets an answer, so the lab cannot be made to reflect
/// traffic at a third party.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UdpSenders {
    /// The one non-loopback address answered, if any.
    bind: Option<IpAddr>,
    /// Whether every loopback address is answered.
    loopback: bool,
}

impl UdpSenders {
    /// Every loopback address: where sessions bound to `127.0.0.1` or the wildcard send from.
    const LOOPBACK: UdpSenders = UdpSenders {
        bind: None,
        loopback: true,
    };

    /// Sessions whose sockets are bound to `bind_ip`; `local_clients` adds loopback.
    fn of(bind_ip: IpAddr, local_clients: bool) -> UdpSenders {
        let ip = bind_ip.to_canonical();
        if ip.is_unspecified() {
            // A socket bound to the wildcard sends to the lab's loopback address from loopback.
            return UdpSenders::LOOPBACK;
        }
        UdpSenders {
            bind: Some(ip),
            loopback: local_clients,
        }
    }

    /// Whether a datagram from `from` gets an answer.
    pub(crate) fn answers(self, from: SocketAddr) -> bool {
        let ip = from.ip().to_canonical();
        Some(ip) == self.bind || (self.loopback && ip.is_loopback())
    }
}

impl Lab {
    /// The lab of a relay, not listening yet: servers give up on a client quiet for `idle_timeout`;
    /// `local_clients` lets processes on the relay host in (`--lab-local-clients`).
    pub fn new(idle_timeout: Duration, local_clients: bool) -> Lab {
        Lab {
            idle_timeout,
            local_clients: local_clients.then(Arc::default),
            addrs: OnceLock::new(),
            started: Notify::new(),
            expected: Mutex::default(),
            connections: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            udp_senders: UdpSenders::LOOPBACK,
        }
    }

    /// The same lab for a relay whose sessions' sockets are bound to `bind_ip` (its `--bind-ip`): lab UDP
    /// answers datagrams from that address only (from all of loopback if it is the wildcard or if local
    /// clients are let in). Without this call the lab answers all of loopback, where sessions bound to the
    /// default `127.0.0.1` send from.
    pub fn sending_from(mut self, bind_ip: IpAddr) -> Lab {
        self.udp_senders = UdpSenders::of(bind_ip, self.local_clients.is_some());
        self
    }

    /// Binds every service on loopback, then serves until `shutdown`. When it returns `Ok`, every listener
    /// is bound and accepting: [`Lab::tcp_addr`] and [`Lab::udp_addr`] answer and a session can dial. All or
    /// nothing: if a bind fails, nothing is served. A lab starts once; a second call is an error.
    pub async fn start(self: &Arc<Lab>, shutdown: CancellationToken) -> io::Result<()> {
        let already = || io::Error::new(io::ErrorKind::AlreadyExists, "the lab is already started");
        if self.addrs.get().is_some() {
            return Err(already());
        }
        let mut bound = Vec::new();
        let mut addrs = HashMap::new();
        for service in Service::ALL {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
            let udp = if service.has_udp() {
                Some(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?)
            } else {
                None
            };
            let tcp = listener.local_addr()?;
            let udp_addr = udp.as_ref().map(UdpSocket::local_addr).transpose()?;
            addrs.insert(service, (tcp, udp_addr));
            bound.push((service, listener, tcp, udp, udp_addr));
        }
        self.addrs.set(addrs).map_err(|_| already())?;
        for (service, listener, tcp, udp, udp_addr) in bound {
            if let Some(socket) = udp {
                let senders = self.udp_senders;
                tokio::spawn(classic::serve_udp(
                    service,
                    socket,
                    senders,
                    shutdown.clone(),
                ));
            }
            tokio::spawn(accept_loop(
                self.clone(),
                service,
                listener,
                shutdown.clone(),
            ));
            if self.local_clients.is_some() {
                tracing::info!(service = service.name(), %tcp, udp = ?udp_addr, "lab service open to local clients");
            } else {
                tracing::debug!(service = service.name(), %tcp, udp = ?udp_addr, "lab service listening");
            }
        }
        self.started.notify_waiters();
        Ok(())
    }

    /// Resolves once [`Lab::start`] has bound every listener (at once if it has): for code that did not
    /// make that call itself, such as a test that spawns the relay's `serve` and then asks for the lab's
    /// ports. A connection made from then on is accepted.
    pub async fn started(&self) {
        let notified = self.started.notified();
        tokio::pin!(notified);
        // Registered before the check, so a `start` finishing in between still wakes us.
        notified.as_mut().enable();
        if self.addrs.get().is_none() {
            notified.await;
        }
    }

    /// The real address of a service's TCP listener (for tests and `--lab-local-clients`).
    pub fn tcp_addr(&self, service: Service) -> Option<SocketAddr> {
        self.addrs.get()?.get(&service).map(|(tcp, _)| *tcp)
    }

    /// The real address of a service's UDP socket.
    pub fn udp_addr(&self, service: Service) -> Option<SocketAddr> {
        self.addrs.get()?.get(&service).and_then(|(_, udp)| *udp)
    }

    /// The virtual lab address behind a real UDP address, for datagrams the lab sends a session.
    pub fn udp_visible(&self, real: SocketAddr) -> Option<SocketAddr> {
        let addrs = self.addrs.get()?;
        addrs.iter().find_map(|(service, (_, udp))| {
            (*udp == Some(real)).then(|| SocketAddr::new(IpAddr::V4(LAB_ADDR), service.port()))
        })
    }

    /// Where a session's TCP connection to `lab:port` goes: a service, or an open FTP data port.
    pub fn tcp_target(&self, state: &LabState, port: u16) -> Option<SocketAddr> {
        match Service::from_port(port) {
            Some(service) => self.tcp_addr(service),
            None => state.data_ports().get(&port).copied(),
        }
    }

    /// Dials `real` (a lab address from [`Lab::tcp_target`]) on behalf of a session. For a service, the
    /// dialling socket's address is registered first, so that its accept loop knows the session's state,
    /// and unregistered again if the dial fails or is dropped before it completes; an FTP data port is the
    /// session's own already and accepts without asking.
    pub async fn dial(&self, state: Arc<LabState>, real: SocketAddr) -> io::Result<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        socket.bind((Ipv4Addr::LOCALHOST, 0).into())?;
        if !self.is_service(real) {
            return socket.connect(real).await;
        }
        let local = socket.local_addr()?;
        // Pinned here rather than moved into the `.await`, so that it is declared (and owns the socket)
        // before the registration: a dial dropped half-way drops the registration first, while the socket
        // still holds the port, so no other dial can have bound that port and registered under it.
        let mut connect = std::pin::pin!(socket.connect(real));
        let registration = Registration::new(self, local, state);
        let stream = connect.as_mut().await?;
        registration.hand_over();
        Ok(stream)
    }

    /// Dialled connections no accept loop has claimed yet: zero whenever the lab is quiet.
    pub fn unclaimed(&self) -> usize {
        self.expected().len()
    }

    fn is_service(&self, real: SocketAddr) -> bool {
        self.addrs
            .get()
            .is_some_and(|addrs| addrs.values().any(|(tcp, _)| *tcp == real))
    }

    fn expected(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Arc<LabState>>> {
        self.expected.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The context of an accepted connection, or `None` for a stranger.
    fn claim(&self, peer: SocketAddr) -> Option<Context> {
        let (state, in_session) = match self.expected().remove(&peer) {
            Some(state) => (state, true),
            None => (self.local_clients.clone()?, false),
        };
        Some(Context {
            state,
            idle_timeout: self.idle_timeout,
            in_session,
        })
    }
}

/// A dialling socket's entry in [`Lab::expected`], removed when dropped unless the dial completed and
/// handed it to the accept loop: a dial that failed, or was cancelled (its future dropped, as by `select!`
/// or a timeout), leaves nothing behind that a later connection from the same local port could claim.
struct Registration<'a> {
    lab: &'a Lab,
    local: SocketAddr,
    /// Whether the entry is still this guard's to remove.
    armed: bool,
}

impl<'a> Registration<'a> {
    fn new(lab: &'a Lab, local: SocketAddr, state: Arc<LabState>) -> Registration<'a> {
        lab.expected().insert(local, state);
        Registration {
            lab,
            local,
            armed: true,
        }
    }

    /// The connection is made: the entry is the accept loop's to claim now.
    fn hand_over(mut self) {
        self.armed = false;
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.lab.expected().remove(&self.local);
        }
    }
}

async fn accept_loop(
    lab: Arc<Lab>,
    service: Service,
    listener: TcpListener,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => return,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "lab accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(context) = lab.claim(peer) else {
            tracing::debug!(%peer, service = service.name(), "lab connection from outside any session closed");
            continue;
        };
        // Over the limit: close at once, as a server with a full queue would reset.
        let Ok(permit) = lab.connections.clone().try_acquire_owned() else {
            continue;
        };
        let _ = socket.set_nodelay(true);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = serve(service, socket, context).await {
                tracing::debug!(service = service.name(), error = %e, "lab connection ended");
            }
        });
    }
}

/// Serves one connection of `service`.
async fn serve(service: Service, socket: TcpStream, context: Context) -> io::Result<()> {
    match service {
        Service::Echo | Service::Discard | Service::Daytime | Service::Qotd | Service::Chargen => {
            classic::serve_tcp(service, socket, context).await
        }
        Service::Ftp => ftp::serve(socket, context).await,
        Service::Telnet => telnet::serve(socket, context).await,
        Service::Smtp => smtp::serve(socket, context).await,
        Service::Gopher => gopher::serve(socket, context).await,
        Service::Http => http::serve(socket, context).await,
        Service::Pop3 => pop3::serve(socket, context).await,
        Service::Nntp => nntp::serve(socket, context).await,
        Service::Imap => imap::serve(socket, context).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::Poll;

    #[tokio::test]
    async fn every_service_is_bound_when_start_returns_and_started_waits_for_it() {
        let lab = Arc::new(Lab::new(Duration::from_secs(5), false));
        assert_eq!(lab.tcp_addr(Service::Echo), None);
        let waiter = tokio::spawn({
            let lab = lab.clone();
            async move { lab.started().await }
        });
        let shutdown = CancellationToken::new();
        lab.start(shutdown.clone()).await.expect("the lab starts");
        for service in Service::ALL {
            let tcp = lab.tcp_addr(service).expect("a TCP listener");
            TcpStream::connect(tcp).await.expect("it accepts");
            assert_eq!(lab.udp_addr(service).is_some(), service.has_udp());
        }
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("started() resolves once the lab is started")
            .expect("the waiter ran");
        lab.started().await;
        let again = lab
            .start(shutdown.clone())
            .await
            .expect_err("a second start");
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_dial_dropped_before_it_completes_leaves_no_registration_behind() {
        let lab = Arc::new(Lab::new(Duration::from_secs(5), false));
        let shutdown = CancellationToken::new();
        lab.start(shutdown.clone()).await.expect("the lab starts");
        let real = lab.tcp_addr(Service::Smtp).expect("started");
        let state = Arc::new(LabState::default());
        {
            let mut dial = std::pin::pin!(lab.dial(state.clone(), real));
            // One poll: the socket is bound and registered, and the connect waits for the reactor (on
            // this single-threaded runtime nothing else runs in between, the accept loop included).
            let polled = std::future::poll_fn(|cx| Poll::Ready(dial.as_mut().poll(cx))).await;
            assert!(polled.is_pending(), "the dial finished in one poll");
            assert_eq!(lab.unclaimed(), 1, "registered while the dial is under way");
        }
        // Dropped, as `select!` or a timeout drops the loser: its local port may go to the next dial, so
        // nothing of this session may stay registered under it.
        assert_eq!(
            lab.unclaimed(),
            0,
            "a cancelled dial left its registration behind"
        );
        assert_eq!(
            Arc::strong_count(&state),
            1,
            "the lab still holds the state"
        );
        shutdown.cancel();
    }

    #[test]
    fn lab_udp_answers_the_address_the_sessions_send_from() {
        let at = |s: &str| s.parse::<SocketAddr>().expect("an address");
        // Sessions bound to a LAN address send to the lab's loopback port from that address.
        let lan = UdpSenders::of("10.1.2.3".parse().unwrap(), false);
        assert!(lan.answers(at("10.1.2.3:40000")));
        assert!(lan.answers(at("[::ffff:10.1.2.3]:40000")));
        assert!(!lan.answers(at("10.1.2.4:40000")));
        assert!(!lan.answers(at("127.0.0.1:40000")), "no local clients");
        let lan_and_local = UdpSenders::of("10.1.2.3".parse().unwrap(), true);
        assert!(lan_and_local.answers(at("127.0.0.1:40000")));
        assert!(lan_and_local.answers(at("10.1.2.3:40000")));
        // Bound to the wildcard, they send from loopback.
        for bind in ["0.0.0.0", "::"] {
            let senders = UdpSenders::of(bind.parse().unwrap(), false);
            assert!(senders.answers(at("127.0.0.1:40000")), "{bind}");
            assert!(senders.answers(at("[::ffff:127.0.0.1]:40000")), "{bind}");
            assert!(!senders.answers(at("10.1.2.3:40000")), "{bind}");
        }
        // Bound to one loopback address, from that one.
        let own = UdpSenders::of("127.0.0.2".parse().unwrap(), false);
        assert!(own.answers(at("127.0.0.2:40000")));
        assert!(!own.answers(at("127.0.0.3:40000")));
    }

    #[tokio::test]
    async fn lab_udp_answers_only_its_senders() {
        // Both sources are loopback, so that the test runs on any machine; with `127.0.0.2` as the
        // relay's bind address, 127.0.0.3 is a stranger.
        let lab =
            Lab::new(Duration::from_secs(5), false).sending_from("127.0.0.2".parse().unwrap());
        let lab = Arc::new(lab);
        let shutdown = CancellationToken::new();
        lab.start(shutdown.clone()).await.expect("the lab starts");
        let echo = lab.udp_addr(Service::Echo).expect("started");
        let mut buf = [0u8; 64];

        let stranger = UdpSocket::bind("127.0.0.3:0").await.expect("bind");
        stranger.send_to(b"stranger", echo).await.expect("send");
        let answer =
            tokio::time::timeout(Duration::from_millis(300), stranger.recv_from(&mut buf)).await;
        assert!(answer.is_err(), "a stranger got an answer: {answer:?}");

        let session = UdpSocket::bind("127.0.0.2:0").await.expect("bind");
        session.send_to(b"session", echo).await.expect("send");
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), session.recv_from(&mut buf))
            .await
            .expect("an answer within 5 s")
            .expect("recv");
        assert_eq!((&buf[..n], from), (&b"session"[..], echo));
        shutdown.cancel();
    }

    #[test]
    fn glob_matches_stars_and_single_bytes() {
        assert!(glob(b"*", b"INBOX", None));
        assert!(glob(b"IN*", b"INBOX", None));
        assert!(glob(b"lab.*", b"lab.python", Some(b'?')));
        assert!(glob(b"*a*b", b"xxaxxb", Some(b'?')));
        assert!(glob(b"l?b.*", b"lab.x", Some(b'?')));
        assert!(!glob(b"l?b", b"lab", None));
        assert!(!glob(b"a?", b"a", Some(b'?')));
        assert!(!glob(b"OUT*", b"INBOX", None));
    }

    #[test]
    fn glob_is_quick_on_a_pathological_pattern() {
        let mut pattern = b"*a".repeat(2000);
        pattern.push(b'b');
        let text = b"a".repeat(4000);
        // At most pattern × text steps; the recursive matcher this replaced would not finish here.
        assert!(!glob(&pattern, &text, None));
    }
}
