//! The lab's FTP server (`ftp.lab`, port 21): RFC 959 on the control connection, passive data connections
//! (PASV, and EPSV of RFC 2428), a small file tree that lives only in memory.
//!
//! Accounts: `anonymous` (any password) and `learner` / `learner`. An unknown user is asked for a password
//! too and then refused with 530, as real servers do, so a client cannot probe for names; after
//! [`MAX_LOGIN_FAILURES`] wrong logins the connection is closed.
//!
//! The tree, one per session (a learner sees their own uploads, nobody else's):
//! - `/pub`, read-only lesson files for everyone: `README.txt`, `hello.txt`, and `bytes.bin` (the 256 byte
//!   values once each: a binary download that a text-mode transfer would visibly break).
//! - `/incoming`, where everyone, anonymous too, may upload, read back, delete and make directories. On a
//!   public server anonymous uploads invite abuse; here the tree belongs to one learner's session, and
//!   "upload a file, then list and fetch it back" is the first exercise, so anonymous may do it.
//! - `/home/learner`, the home (and first directory) of `learner`, closed to anonymous.
//!
//! Commands: USER PASS QUIT NOOP SYST FEAT HELP OPTS (UTF8 ON), PWD CWD CDUP, TYPE (A, I), MODE S, STRU F,
//! PASV EPSV, LIST NLST, RETR STOR APPE, DELE MKD RMD, SIZE MDTM, ABOR (nothing to abort: transfers are
//! not interrupted). Names are UTF-8.
//!
//! Deliberate omissions:
//! - Active mode (PORT, EPRT) is refused with 502 and a hint to use passive mode. A learner's client runs in
//!   the browser, behind the relay: there is no address the lab could dial it back on. CPython's ftplib and
//!   curl use passive mode by default.
//! - REST, RNFR/RNTO, SITE, STAT, STOU, REIN, ACCT, MLST/MLSD and TLS (AUTH) are not implemented (502).
//! - Whoever connects to a data port first gets the transfer: the port is a loopback port of the relay host
//!   (reached from a session only through that session's virtual port), so the peer is not checked.
//!
//! A transfer command takes the data port opened by the last PASV or EPSV (one transfer per port), waits up
//! to the idle timeout for the client to connect (425 if it does not), then replies 150, transfers, and
//! replies 226. Nothing a client sends reaches the host's file system: paths are resolved as strings, and
//! `..` stops at the root. Uploads are bounded ([`MAX_FILE_BYTES`], [`MAX_SESSION_BYTES`],
//! [`MAX_ENTRIES`]); an upload over the limit gets 552 and changes nothing.
//!
//! This file holds the control connection's session and the data transfers; `ftp/command.rs` parses the
//! commands, `ftp/store.rs` is the file tree.

mod command;
mod store;

use std::io;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::clock::{self, Utc};
use super::line::{Line, LineConn};
use super::{Context, DataPort};
use command::Command;
pub use store::Store;
use store::{
    bad_name, can_read, can_write, children_in, name, parent, resolve, Node, User, LEARNER_HOME,
};

/// The largest file one upload may make: lesson exercises move text files and small images, and a session
/// should not hold much of the relay's memory.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// All uploaded files of one session together.
pub const MAX_SESSION_BYTES: usize = 4 * 1024 * 1024;
/// Uploaded files and made directories of one session together (bounds listings and lookups too).
pub const MAX_ENTRIES: usize = 64;
/// The longest name of one file or directory, as most file systems.
pub const MAX_NAME: usize = 255;
/// How much of an over-size upload is read and thrown away before the data connection is cut. Reading
/// the rest lets the client finish sending and read our 552 (closing at once would make its send fail
/// with a reset instead), but a client that sends without end must not keep the server busy.
const MAX_DISCARD: usize = 8 * 1024 * 1024;
/// Wrong logins before the server hangs up.
pub const MAX_LOGIN_FAILURES: u32 = 3;

const NOT_FOUND: &str = "550 No such file or directory.";
const DENIED: &str = "550 Permission denied.";
const TOO_BIG: &str = "552 Exceeded storage allocation: the file or the session is full.";
const TOO_MANY: &str = "552 Exceeded storage allocation: too many files, delete some first.";
const HELP: &str = "214-Commands (RFC 959, 2428, 3659):\r
 USER PASS QUIT NOOP SYST FEAT HELP OPTS PWD CWD CDUP TYPE MODE STRU\r
 PASV EPSV LIST NLST RETR STOR APPE DELE MKD RMD SIZE MDTM ABOR\r
214 Active mode (PORT, EPRT) is not available: use passive mode.";
const FEATURES: &str = "211-Features:\r\n EPSV\r\n MDTM\r\n PASV\r\n SIZE\r\n UTF8\r\n211 End";

/// A path in a 257 reply: quoted, with quotes inside doubled (RFC 959, appendix II).
fn quoted(path: &str) -> String {
    format!("\"{}\"", path.replace('"', "\"\""))
}

/// Serves one control connection.
pub async fn serve(socket: TcpStream, context: Context) -> io::Result<()> {
    let mut session = Session {
        conn: LineConn::new(socket, context.idle_timeout),
        context,
        user: None,
        asked: None,
        failures: 0,
        cwd: "/".to_string(),
        binary: false,
        passive: None,
        epsv_all: false,
    };
    let greeting = "220 ftp.lab ready. Log in as anonymous (any password) or learner/learner.";
    session.conn.send_line(greeting).await?;
    loop {
        let reply = match session.conn.read_line().await? {
            Line::Text(line) => match Command::parse(line.trim_end()) {
                Ok((command, _)) if session.user.is_none() && !command.before_login() => {
                    "530 Please log in with USER and PASS.".to_string()
                }
                Ok((command, arg)) => session.run(command, arg).await?,
                Err(refusal) => refusal.to_string(),
            },
            Line::TooLong => "500 Command line too long.".to_string(),
            Line::Eof => return Ok(()),
            Line::TimedOut => "421 Timeout: closing the control connection.".to_string(),
        };
        session.conn.send_line(&reply).await?;
        // 221 answers QUIT; 421 is how the server ends a connection (RFC 959, 4.2).
        if reply.starts_with("221 ") || reply.starts_with("421 ") {
            return Ok(());
        }
    }
}

/// One control connection's state.
struct Session {
    conn: LineConn,
    context: Context,
    user: Option<User>,
    /// The name given by USER, waiting for PASS.
    asked: Option<String>,
    failures: u32,
    cwd: String,
    /// TYPE I (bytes as they are) rather than TYPE A (lines end in CRLF on the wire).
    binary: bool,
    /// The data port of the last PASV or EPSV, until a transfer command takes it. Holding it keeps the
    /// port open, so a client may connect before or after it sends the command.
    passive: Option<DataPort>,
    /// After `EPSV ALL` (RFC 2428) the client promised to use only EPSV.
    epsv_all: bool,
}

/// What a transfer command will do once the data connection is open.
enum Transfer {
    Send {
        bytes: Vec<u8>,
        opening: String,
    },
    Receive {
        path: String,
        append: bool,
        room: usize,
    },
}

impl Session {
    /// Runs one command; returns its final reply.
    async fn run(&mut self, command: Command, arg: &str) -> io::Result<String> {
        let user = self.user.unwrap_or(User::Anonymous);
        let path = resolve(&self.cwd, arg);
        let state = self.context.state.clone();
        let store = &state.ftp;
        let reply: &str = match command {
            Command::User => {
                (self.user, self.cwd) = (None, "/".to_string());
                self.asked = Some(arg.to_string());
                "331 Please send your password (anonymous: any password will do)."
            }
            Command::Pass => match self.asked.take() {
                Some(name) => return Ok(self.log_in(&name, arg)),
                None => "503 Log in with USER first.",
            },
            Command::Quit => "221 Goodbye.",
            Command::Noop => "200 NOOP ok.",
            Command::Syst => "215 UNIX Type: L8",
            Command::Feat => FEATURES,
            Command::Help => HELP,
            Command::Opts if arg.eq_ignore_ascii_case("UTF8 ON") => "200 Always in UTF8 mode.",
            Command::Opts => "501 Unknown option.",
            Command::Pwd => {
                return Ok(format!(
                    "257 {} is the current directory.",
                    quoted(&self.cwd)
                ))
            }
            Command::Cwd => match self.readable(&path) {
                Some(Node::Dir(_)) => {
                    self.cwd = path;
                    "250 Directory successfully changed."
                }
                _ => "550 Failed to change directory.",
            },
            Command::Type => {
                let kind = arg.to_ascii_uppercase().replace(' ', "");
                match kind.as_str() {
                    "A" | "AN" => {
                        self.binary = false;
                        "200 Switching to ASCII mode."
                    }
                    "I" | "L8" => {
                        self.binary = true;
                        "200 Switching to Binary mode."
                    }
                    _ if kind.starts_with(['A', 'E', 'L']) => {
                        "504 Only TYPE A and TYPE I are supported."
                    }
                    _ => "501 Unknown TYPE.",
                }
            }
            Command::Mode => match arg.to_ascii_uppercase().as_str() {
                "S" => "200 Mode set to S.",
                "B" | "C" => "504 Only MODE S (stream) is supported.",
                _ => "501 Unknown MODE.",
            },
            Command::Stru => match arg.to_ascii_uppercase().as_str() {
                "F" => "200 Structure set to F.",
                "R" | "P" => "504 Only STRU F (file) is supported.",
                _ => "501 Unknown STRU.",
            },
            Command::Pasv | Command::Epsv => return self.open_passive(command, arg).await,
            Command::Active => {
                "502 Active mode is not available in the lab: use passive mode (PASV or EPSV)."
            }
            Command::List | Command::Nlst | Command::Retr | Command::Stor | Command::Appe => {
                return self.transfer(command, arg).await;
            }
            Command::Dele | Command::Rmd => {
                let removed = match can_write(user, &path) {
                    true => store.remove(&path, command == Command::Rmd),
                    false if store.lookup(&path).is_some() => Err(DENIED),
                    false => Err(NOT_FOUND),
                };
                let done = if command == Command::Rmd {
                    "250 Directory removed."
                } else {
                    "250 File deleted."
                };
                removed.map_or_else(|refusal| refusal, |()| done)
            }
            Command::Mkd => {
                let made = match bad_name(&path) {
                    Some(refusal) => Err(refusal),
                    None if !can_write(user, &path) => Err(DENIED),
                    None => store.make_dir(&path),
                };
                match made {
                    Ok(()) => return Ok(format!("257 {} created.", quoted(&path))),
                    Err(refusal) => refusal,
                }
            }
            Command::Size | Command::Mdtm => match self.readable(&path) {
                Some(Node::File(data, modified)) => {
                    return Ok(match command {
                        Command::Size if self.binary => format!("213 {}", data.len()),
                        Command::Size => format!("213 {}", to_ascii(&data).len()),
                        _ => format!("213 {}", timestamp(modified)),
                    });
                }
                Some(Node::Dir(_)) => "550 Not a plain file.",
                None => NOT_FOUND,
            },
            Command::Abor => "225 No transfer to abort.",
            Command::NotImplemented => "502 Command not implemented.",
        };
        Ok(reply.to_string())
    }

    fn log_in(&mut self, name: &str, password: &str) -> String {
        let user = match (name, password) {
            ("anonymous" | "ftp", _) => User::Anonymous,
            ("learner", "learner") => User::Learner,
            _ => {
                self.failures += 1;
                let reply = match self.failures >= MAX_LOGIN_FAILURES {
                    true => "421 Too many failed logins: goodbye.",
                    false => "530 Login incorrect.",
                };
                return reply.to_string();
            }
        };
        self.user = Some(user);
        let reply = match user {
            User::Learner => {
                self.cwd = LEARNER_HOME.to_string();
                "230 Welcome, learner: your home is /home/learner."
            }
            User::Anonymous => "230 Welcome, anonymous: see /pub, and upload to /incoming.",
        };
        reply.to_string()
    }

    /// The entry at `path` if it exists and the user may read it.
    fn readable(&self, path: &str) -> Option<Node> {
        let user = self.user.unwrap_or(User::Anonymous);
        can_read(user, path).then(|| self.context.state.ftp.lookup(path))?
    }

    async fn open_passive(&mut self, command: Command, arg: &str) -> io::Result<String> {
        let extended = command == Command::Epsv;
        if extended && arg.eq_ignore_ascii_case("ALL") {
            self.epsv_all = true;
            return Ok("200 EPSV ALL ok.".to_string());
        }
        let refusal = match arg {
            "" | "1" => None,
            _ if !extended => Some("501 Syntax error."),
            _ if arg.parse::<u8>().is_ok() => Some("522 Network protocol not supported, use (1)"),
            _ => Some("501 Syntax error in EPSV."),
        };
        let refusal =
            refusal
                .or((!extended && self.epsv_all)
                    .then_some("503 After EPSV ALL only EPSV may be used."));
        if let Some(refusal) = refusal {
            return Ok(refusal.to_string());
        }
        // The old port closes first, so a client that repeats PASV never holds two.
        self.passive = None;
        let port = match self.context.data_port().await {
            Ok(port) => port,
            Err(e) => {
                tracing::debug!(error = %e, "ftp data port refused");
                return Ok("425 Cannot open a data port now, try again later.".to_string());
            }
        };
        let addr = port.advertised;
        self.passive = Some(port);
        Ok(match (extended, addr.ip()) {
            (true, _) => format!("229 Entering Extended Passive Mode (|||{}|)", addr.port()),
            (false, IpAddr::V4(ip)) => {
                let [a, b, c, d] = ip.octets();
                let (p1, p2) = (addr.port() >> 8, addr.port() & 0xff);
                format!("227 Entering Passive Mode ({a},{b},{c},{d},{p1},{p2}).")
            }
            (false, IpAddr::V6(_)) => "522 PASV is IPv4 only: use EPSV.".to_string(),
        })
    }

    /// LIST, NLST, RETR, STOR, APPE: checks the command, waits for the client on the data port (425
    /// if it does not come), replies 150, transfers, and returns the final reply.
    async fn transfer(&mut self, command: Command, arg: &str) -> io::Result<String> {
        let Some(port) = self.passive.take() else {
            return Ok("425 Use PASV or EPSV first.".to_string());
        };
        let checked = match command {
            Command::Stor | Command::Appe => self.check_upload(arg, command == Command::Appe),
            Command::Retr => self.check_download(arg),
            _ => self.check_listing(command, arg),
        };
        let transfer = match checked {
            Ok(transfer) => transfer,
            Err(refusal) => return Ok(refusal.to_string()),
        };
        let idle = self.context.idle_timeout;
        let Ok(Ok((mut data, _))) = tokio::time::timeout(idle, port.listener.accept()).await else {
            return Ok("425 Failed to establish the data connection.".to_string());
        };
        drop(port);
        let (path, append, room) = match transfer {
            Transfer::Send { bytes, opening } => {
                self.conn.send_line(&opening).await?;
                return Ok(send_data(data, &bytes, idle).await.to_string());
            }
            Transfer::Receive { path, append, room } => (path, append, room),
        };
        self.conn.send_line("150 Ok to send data.").await?;
        let mut bytes = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let mut discarded = 0;
        loop {
            let n = match tokio::time::timeout(idle, data.read(&mut chunk)).await {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => n,
                _ => return Ok(ABORTED.to_string()),
            };
            if discarded == 0 && bytes.len() + n <= room {
                bytes.extend_from_slice(&chunk[..n]);
            } else {
                discarded += n;
                if discarded > MAX_DISCARD {
                    break;
                }
            }
        }
        if discarded > 0 {
            return Ok(TOO_BIG.to_string());
        }
        if !self.binary {
            bytes = from_ascii(&bytes);
        }
        let stored = self.context.state.ftp.put(&path, bytes, append);
        Ok(stored
            .map_or_else(|refusal| refusal, |()| "226 Transfer complete.")
            .to_string())
    }

    fn check_listing(&self, command: Command, arg: &str) -> Result<Transfer, &'static str> {
        // Clients send `ls` options (`LIST -la`); every listing here is the long one anyway.
        let target = arg
            .split_whitespace()
            .filter(|w| !w.starts_with('-'))
            .collect::<Vec<_>>()
            .join(" ");
        let path = resolve(&self.cwd, &target);
        let entries = match self.readable(&path) {
            Some(Node::Dir(_)) => children_in(&self.context.state.ftp.nodes(), &path),
            Some(file) => vec![(name(&path).to_string(), file)],
            None => return Err(NOT_FOUND),
        };
        let user = self.user.unwrap_or(User::Anonymous);
        let now = SystemTime::now();
        let mut text = String::new();
        for (entry, node) in &entries {
            match command {
                Command::Nlst => text += entry,
                _ => text += &ls_line(entry, node, can_write(user, &resolve(&path, entry)), now),
            }
            text += "\r\n";
        }
        let opening = "150 Here comes the directory listing.".to_string();
        Ok(Transfer::Send {
            bytes: text.into_bytes(),
            opening,
        })
    }

    fn check_download(&self, arg: &str) -> Result<Transfer, &'static str> {
        let path = resolve(&self.cwd, arg);
        let data = match self.readable(&path) {
            Some(Node::File(data, _)) => data,
            Some(Node::Dir(_)) => return Err("550 Not a plain file."),
            None => return Err("550 Failed to open file: no such file."),
        };
        let bytes = if self.binary {
            data.to_vec()
        } else {
            to_ascii(&data)
        };
        let mode = if self.binary { "BINARY" } else { "ASCII" };
        let (name, size) = (name(&path), bytes.len());
        let opening = format!("150 Opening {mode} mode data connection for {name} ({size} bytes).");
        Ok(Transfer::Send { bytes, opening })
    }

    fn check_upload(&self, arg: &str, append: bool) -> Result<Transfer, &'static str> {
        let user = self.user.unwrap_or(User::Anonymous);
        let path = resolve(&self.cwd, arg);
        let store = &self.context.state.ftp;
        if let Some(refusal) = bad_name(&path) {
            return Err(refusal);
        }
        if !can_write(user, &path) {
            return Err(DENIED);
        }
        match (store.lookup(parent(&path)), store.lookup(&path)) {
            (Some(Node::Dir(_)), Some(Node::Dir(_))) => Err("553 That is a directory."),
            (Some(Node::Dir(_)), _) => {
                let room = store.room(&path, append)?;
                Ok(Transfer::Receive { path, append, room })
            }
            _ => Err("553 No such directory."),
        }
    }
}

const ABORTED: &str = "426 Connection closed; transfer aborted.";

/// Sends `bytes` on the data connection and closes it; returns the final reply.
async fn send_data(mut data: TcpStream, bytes: &[u8], idle: Duration) -> &'static str {
    for chunk in bytes.chunks(64 * 1024) {
        if !matches!(
            tokio::time::timeout(idle, data.write_all(chunk)).await,
            Ok(Ok(()))
        ) {
            return ABORTED;
        }
    }
    match tokio::time::timeout(idle, data.shutdown()).await {
        Ok(Ok(())) => "226 Transfer complete.",
        _ => ABORTED,
    }
}

/// One line of LIST, as `ls -l` prints it (what clients and people expect to parse).
fn ls_line(entry: &str, node: &Node, writable: bool, now: SystemTime) -> String {
    let (mode, size, modified) = match (node, writable) {
        (Node::Dir(modified), true) => ("drwxrwxr-x", 0, *modified),
        (Node::Dir(modified), false) => ("dr-xr-xr-x", 0, *modified),
        (Node::File(data, modified), true) => ("-rw-rw-r--", data.len(), *modified),
        (Node::File(data, modified), false) => ("-r--r--r--", data.len(), *modified),
    };
    let date = ls_date(modified, now);
    format!("{mode} 1 ftp ftp {size:>8} {date} {entry}")
}

/// Text in TYPE A on the wire: every line ends in CRLF.
fn to_ascii(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 32);
    let mut previous = 0;
    for &byte in data {
        if byte == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(byte);
        previous = byte;
    }
    out
}

/// Text received in TYPE A, stored with LF line ends.
fn from_ascii(data: &[u8]) -> Vec<u8> {
    let crlf = |i: usize| data[i] == b'\r' && data.get(i + 1) == Some(&b'\n');
    (0..data.len())
        .filter(|&i| !crlf(i))
        .map(|i| data[i])
        .collect()
}

/// MDTM's form (RFC 3659): YYYYMMDDHHMMSS, UTC.
fn timestamp(time: SystemTime) -> String {
    Utc::from_unix(clock::unix(time)).compact()
}

/// `ls -l`'s date: the time of day for the last half year, else the year.
fn ls_date(time: SystemTime, now: SystemTime) -> String {
    let t = Utc::from_unix(clock::unix(time));
    let (month, d, y, h, mi) = (t.month_name(), t.day, t.year, t.hour(), t.minute());
    match now
        .duration_since(time)
        .is_ok_and(|age| age.as_secs() < 180 * 86400)
    {
        true => format!("{month} {d:>2} {h:02}:{mi:02}"),
        false => format!("{month} {d:>2}  {y}"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn mdtm_writes_utc_as_yyyymmddhhmmss() {
        let leap_day = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661);
        assert_eq!(timestamp(leap_day), "20000229010101");
    }
}
