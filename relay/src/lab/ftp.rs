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
//! PASV EPSV, LIST NLST MLSD, RETR STOR APPE, DELE MKD RMD, SIZE MDTM, ABOR (nothing to abort: transfers are
//! not interrupted). Names are UTF-8.
//!
//! Deliberate omissions:
//! - Active mode (PORT, EPRT) is refused with 502 and a hint to use passive mode. A learner's client runs in
//!   the browser, behind the relay: there is no address the lab could dial it back on. CPython's ftplib and
//!   curl use passive mode by default.
//! - REST, RNFR/RNTO, SITE, STAT, STOU, REIN, ACCT and TLS (AUTH) are not implemented (502).
//!
//! A transfer command takes the data port opened by the last PASV or EPSV (one transfer per port), waits up
//! to the idle timeout for the client to connect (425 if it does not), then replies 150, transfers, and
//! replies 226. Nothing a client sends reaches the host's file system: paths are resolved as strings, and
//! `..` stops at the root. Uploads are bounded ([`MAX_FILE_BYTES`], [`MAX_SESSION_BYTES`],
//! [`MAX_ENTRIES`]); an upload over the limit gets 552 and changes nothing.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::line::{Line, LineConn};
use super::{Context, DataPort};

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

const README: &str = "\
Welcome to ftp.lab, the FTP server of your lab network.

Everything here belongs to your session: what you upload is seen by you
alone and is gone when the session ends.

Accounts
  anonymous  any password  reads /pub, reads and writes /incoming
  learner    learner       also reads and writes /home/learner

Files in /pub
  README.txt   this file
  hello.txt    a few lines of text: ftp.retrlines('RETR hello.txt')
  bytes.bin    the 256 byte values 0 to 255, once each: fetch it in binary
               mode (retrbinary) and check that all 256 bytes arrived

Try it in Python
  from ftplib import FTP
  ftp = FTP('ftp.lab')
  ftp.login()                          # anonymous
  ftp.cwd('/pub')
  ftp.dir()                            # LIST over a data connection
  with open('bytes.bin', 'wb') as f:
      ftp.retrbinary('RETR bytes.bin', f.write)
  ftp.quit()

Limits: 1 MiB per file, 4 MiB and 64 files per session.
";

const HELLO: &str = "\
Hello from ftp.lab!
FTP is one of the oldest protocols of the internet: its first version is
RFC 114 (1971), and the one in use today is RFC 959 (1985).
It uses two connections. Commands and replies travel on the control
connection (port 21); every file and every listing travels on a new data
connection, which the server opens for it when the client asks (PASV).
";

/// The 256 byte values in order.
static BYTES: [u8; 256] = {
    let mut bytes = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        bytes[i] = i as u8;
        i += 1;
    }
    bytes
};

/// The read-only lesson files.
fn pub_file(path: &str) -> Option<&'static [u8]> {
    match path {
        "/pub/README.txt" => Some(README.as_bytes()),
        "/pub/hello.txt" => Some(HELLO.as_bytes()),
        "/pub/bytes.bin" => Some(&BYTES),
        _ => None,
    }
}

const PUB_FILES: [&str; 3] = ["/pub/README.txt", "/pub/bytes.bin", "/pub/hello.txt"];
/// The directories every session has, which nobody can remove.
const FIXED_DIRS: [&str; 5] = ["/", "/home", "/home/learner", "/incoming", "/pub"];
const LEARNER_HOME: &str = "/home/learner";

/// When the lesson files were written (2025-01-01), so listings do not change from run to run.
fn fixed_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_735_689_600)
}

/// What this server keeps per session: uploaded files and made directories, by absolute path.
#[derive(Default)]
pub struct Store {
    nodes: Mutex<BTreeMap<String, Node>>,
}

#[derive(Clone)]
enum Node {
    Dir {
        modified: SystemTime,
    },
    File {
        data: Arc<[u8]>,
        modified: SystemTime,
    },
}

impl Node {
    fn modified(&self) -> SystemTime {
        match self {
            Node::Dir { modified } | Node::File { modified, .. } => *modified,
        }
    }
}

impl Store {
    fn nodes(&self) -> MutexGuard<'_, BTreeMap<String, Node>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The file or directory at `path` (absolute, resolved), fixed or uploaded.
    fn lookup(&self, path: &str) -> Option<Node> {
        lookup_in(&self.nodes(), path)
    }

    fn is_dir(&self, path: &str) -> bool {
        matches!(self.lookup(path), Some(Node::Dir { .. }))
    }

    /// The entries of directory `dir`, by name.
    fn children(&self, dir: &str) -> Vec<(String, Node)> {
        children_in(&self.nodes(), dir)
    }

    /// How many bytes the upload to `path` may hold, or the refusal when the session is full.
    fn room(&self, path: &str, append: bool) -> Result<usize, &'static str> {
        room_in(&self.nodes(), path, append)
    }

    /// Stores an upload, checking again (under one lock) what may have changed while it was received.
    fn put(&self, path: &str, bytes: Vec<u8>, append: bool) -> Result<(), &'static str> {
        let mut nodes = self.nodes();
        if bytes.len() > room_in(&nodes, path, append)? {
            return Err(TOO_BIG);
        }
        let data: Arc<[u8]> = match lookup_in(&nodes, path) {
            Some(Node::Dir { .. }) => return Err("553 That is a directory."),
            Some(Node::File { data, .. }) if append => [&data[..], &bytes].concat().into(),
            _ => bytes.into(),
        };
        if !matches!(lookup_in(&nodes, parent(path)), Some(Node::Dir { .. })) {
            return Err("553 No such directory.");
        }
        let modified = SystemTime::now();
        nodes.insert(path.to_string(), Node::File { data, modified });
        Ok(())
    }

    fn make_dir(&self, path: &str) -> Result<(), &'static str> {
        let mut nodes = self.nodes();
        if lookup_in(&nodes, path).is_some() {
            return Err("550 That name exists already.");
        }
        if !matches!(lookup_in(&nodes, parent(path)), Some(Node::Dir { .. })) {
            return Err("550 No such directory.");
        }
        if nodes.len() >= MAX_ENTRIES {
            return Err(TOO_MANY);
        }
        let modified = SystemTime::now();
        nodes.insert(path.to_string(), Node::Dir { modified });
        Ok(())
    }

    /// Removes an uploaded file (`dir` false) or an empty made directory (`dir` true).
    fn remove(&self, path: &str, dir: bool) -> Result<(), &'static str> {
        let mut nodes = self.nodes();
        match nodes.get(path) {
            Some(Node::Dir { .. }) if dir && !children_in(&nodes, path).is_empty() => {
                return Err("550 The directory is not empty.")
            }
            Some(Node::Dir { .. }) if dir => {}
            Some(Node::File { .. }) if !dir => {}
            Some(_) if dir => return Err("550 Not a directory."),
            Some(_) => return Err("550 That is a directory: use RMD."),
            None => return Err(NOT_FOUND),
        }
        nodes.remove(path);
        Ok(())
    }
}

fn lookup_in(nodes: &BTreeMap<String, Node>, path: &str) -> Option<Node> {
    if FIXED_DIRS.contains(&path) {
        let modified = fixed_time();
        return Some(Node::Dir { modified });
    }
    if let Some(data) = pub_file(path) {
        let (data, modified) = (Arc::from(data), fixed_time());
        return Some(Node::File { data, modified });
    }
    nodes.get(path).cloned()
}

fn children_in(nodes: &BTreeMap<String, Node>, dir: &str) -> Vec<(String, Node)> {
    let fixed = FIXED_DIRS.iter().chain(PUB_FILES.iter()).copied();
    let mut found: Vec<(String, Node)> = fixed
        .chain(nodes.keys().map(String::as_str))
        .filter(|p| *p != "/" && parent(p) == dir)
        .filter_map(|p| Some((name(p).to_string(), lookup_in(nodes, p)?)))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

fn room_in(
    nodes: &BTreeMap<String, Node>,
    path: &str,
    append: bool,
) -> Result<usize, &'static str> {
    let existing = match nodes.get(path) {
        Some(Node::File { data, .. }) => data.len(),
        _ if nodes.len() >= MAX_ENTRIES => return Err(TOO_MANY),
        _ => 0,
    };
    let others = total(nodes) - existing;
    let room = MAX_FILE_BYTES.min(MAX_SESSION_BYTES.saturating_sub(others));
    Ok(if append {
        room.saturating_sub(existing)
    } else {
        room
    })
}

fn total(nodes: &BTreeMap<String, Node>) -> usize {
    nodes
        .values()
        .map(|n| match n {
            Node::File { data, .. } => data.len(),
            Node::Dir { .. } => 0,
        })
        .sum()
}

const NOT_FOUND: &str = "550 No such file or directory.";
const DENIED: &str = "550 Permission denied.";
const TOO_BIG: &str = "552 Exceeded storage allocation: the file or the session is full.";
const TOO_MANY: &str = "552 Exceeded storage allocation: too many files, delete some first.";

/// `arg` made absolute against `cwd`, with `.` and `..` applied as names only; `..` at the root stays there.
fn resolve(cwd: &str, arg: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let start = if arg.starts_with('/') { "" } else { cwd };
    for part in start.split('/').chain(arg.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    format!("/{}", parts.join("/"))
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Whether `path` is `dir` or inside it.
fn within(path: &str, dir: &str) -> bool {
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum User {
    Anonymous,
    Learner,
}

fn can_read(user: User, path: &str) -> bool {
    user == User::Learner || !within(path, LEARNER_HOME)
}

/// Whether `user` may create, replace or remove the entry at `path` (never a fixed directory).
fn can_write(user: User, path: &str) -> bool {
    let area = |dir: &str| within(path, dir) && path != dir;
    area("/incoming") || (user == User::Learner && area(LEARNER_HOME))
}

/// One command, parsed once at the edge.
enum Command {
    User(String),
    Pass(String),
    Quit,
    Noop,
    Syst,
    Feat,
    Help,
    Opts(String),
    Pwd,
    Cwd(String),
    Cdup,
    Type(String),
    Mode(String),
    Stru(String),
    Pasv,
    Epsv(String),
    Active,
    List(String),
    Nlst(String),
    Mlsd(String),
    Retr(String),
    Stor(String),
    Appe(String),
    Dele(String),
    Mkd(String),
    Rmd(String),
    Size(String),
    Mdtm(String),
    Abor,
    NotImplemented,
}

impl Command {
    /// The command on `line`, or the error reply.
    fn parse(line: &str) -> Result<Command, &'static str> {
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        let arg = arg.to_string();
        let needs = |make: fn(String) -> Command| {
            if arg.is_empty() {
                Err("501 Syntax error: this command needs an argument.")
            } else {
                Ok(make(arg.clone()))
            }
        };
        let none = |command: Command| {
            if arg.is_empty() {
                Ok(command)
            } else {
                Err("501 Syntax error: this command takes no argument.")
            }
        };
        match verb.to_ascii_uppercase().as_str() {
            "USER" => needs(Command::User),
            "PASS" => Ok(Command::Pass(arg)),
            "QUIT" => none(Command::Quit),
            "NOOP" => none(Command::Noop),
            "SYST" => none(Command::Syst),
            "FEAT" => none(Command::Feat),
            "HELP" => Ok(Command::Help),
            "OPTS" => needs(Command::Opts),
            "PWD" | "XPWD" => none(Command::Pwd),
            "CWD" | "XCWD" => needs(Command::Cwd),
            "CDUP" | "XCUP" => none(Command::Cdup),
            "TYPE" => needs(Command::Type),
            "MODE" => needs(Command::Mode),
            "STRU" => needs(Command::Stru),
            "PASV" => none(Command::Pasv),
            "EPSV" => Ok(Command::Epsv(arg)),
            "PORT" | "EPRT" | "LPRT" => Ok(Command::Active),
            "LIST" => Ok(Command::List(arg)),
            "NLST" => Ok(Command::Nlst(arg)),
            "MLSD" => Ok(Command::Mlsd(arg)),
            "RETR" => needs(Command::Retr),
            "STOR" => needs(Command::Stor),
            "APPE" => needs(Command::Appe),
            "DELE" => needs(Command::Dele),
            "MKD" | "XMKD" => needs(Command::Mkd),
            "RMD" | "XRMD" => needs(Command::Rmd),
            "SIZE" => needs(Command::Size),
            "MDTM" => needs(Command::Mdtm),
            "ABOR" => none(Command::Abor),
            "REST" | "RNFR" | "RNTO" | "SITE" | "STAT" | "STOU" | "REIN" | "ACCT" | "SMNT"
            | "ALLO" | "AUTH" | "PBSZ" | "PROT" | "MLST" => Ok(Command::NotImplemented),
            _ => Err("500 Unknown command."),
        }
    }

    /// Whether the command may come before a login.
    fn before_login(&self) -> bool {
        matches!(
            self,
            Command::User(_)
                | Command::Pass(_)
                | Command::Quit
                | Command::Noop
                | Command::Syst
                | Command::Feat
                | Command::Help
                | Command::Opts(_)
                | Command::NotImplemented
        )
    }
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
    session
        .reply("220 ftp.lab ready. Log in as anonymous (any password) or learner/learner.")
        .await?;
    loop {
        let line = match session.conn.read_line().await? {
            Line::Text(line) => line,
            Line::TooLong => {
                session.reply("500 Command line too long.").await?;
                continue;
            }
            Line::Eof => return Ok(()),
            Line::TimedOut => {
                return session
                    .reply("421 Timeout: closing the control connection.")
                    .await;
            }
        };
        let command = match Command::parse(line.trim_end()) {
            Ok(command) => command,
            Err(reply) => {
                session.reply(reply).await?;
                continue;
            }
        };
        if session.user.is_none() && !command.before_login() {
            session
                .reply("530 Please log in with USER and PASS.")
                .await?;
            continue;
        }
        if !session.run(command).await? {
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

impl Session {
    async fn reply(&mut self, line: &str) -> io::Result<()> {
        self.conn.send_line(line).await
    }

    /// Runs one command; false when the connection should close.
    async fn run(&mut self, command: Command) -> io::Result<bool> {
        let user = self.user.unwrap_or(User::Anonymous);
        match command {
            Command::User(name) => {
                self.user = None;
                self.cwd = "/".to_string();
                let reply = if name == "anonymous" || name == "ftp" {
                    "331 Anonymous login: send any password (your e-mail address, by custom)."
                } else {
                    "331 Please send the password."
                };
                self.asked = Some(name);
                self.reply(reply).await?;
            }
            Command::Pass(password) => {
                let Some(name) = self.asked.take() else {
                    self.reply("503 Log in with USER first.").await?;
                    return Ok(true);
                };
                let user = match (name.as_str(), password.as_str()) {
                    ("anonymous" | "ftp", _) => Some(User::Anonymous),
                    ("learner", "learner") => Some(User::Learner),
                    _ => None,
                };
                let Some(user) = user else {
                    self.failures += 1;
                    if self.failures >= MAX_LOGIN_FAILURES {
                        self.reply("421 Too many failed logins: goodbye.").await?;
                        return Ok(false);
                    }
                    self.reply("530 Login incorrect.").await?;
                    return Ok(true);
                };
                self.user = Some(user);
                if user == User::Learner {
                    self.cwd = LEARNER_HOME.to_string();
                    self.reply("230 Welcome, learner: your home is /home/learner.")
                        .await?;
                } else {
                    self.reply("230 Welcome, anonymous: see /pub, and upload to /incoming.")
                        .await?;
                }
            }
            Command::Quit => {
                self.reply("221 Goodbye.").await?;
                return Ok(false);
            }
            Command::Noop => self.reply("200 NOOP ok.").await?,
            Command::Syst => self.reply("215 UNIX Type: L8").await?,
            Command::Feat => {
                for line in [
                    "211-Features:",
                    " EPSV",
                    " MDTM",
                    " MLST type*;size*;modify*;",
                    " PASV",
                    " SIZE",
                    " UTF8",
                    "211 End",
                ] {
                    self.reply(line).await?;
                }
            }
            Command::Help => {
                self.reply("214-Commands (RFC 959, 2428, 3659):").await?;
                self.reply(" USER PASS QUIT NOOP SYST FEAT HELP OPTS PWD CWD CDUP TYPE MODE STRU")
                    .await?;
                self.reply(" PASV EPSV LIST NLST MLSD RETR STOR APPE DELE MKD RMD SIZE MDTM ABOR")
                    .await?;
                self.reply("214 Active mode (PORT, EPRT) is not available: use passive mode.")
                    .await?;
            }
            Command::Opts(option) => {
                if option.eq_ignore_ascii_case("UTF8 ON") {
                    self.reply("200 Always in UTF8 mode.").await?;
                } else {
                    self.reply("501 Unknown option.").await?;
                }
            }
            Command::Pwd => {
                let reply = format!(
                    "257 \"{}\" is the current directory.",
                    self.cwd.replace('"', "\"\"")
                );
                self.reply(&reply).await?;
            }
            Command::Cwd(dir) => self.change_dir(&dir).await?,
            Command::Cdup => self.change_dir("..").await?,
            Command::Type(kind) => {
                let words: Vec<String> = kind
                    .split_whitespace()
                    .map(|w| w.to_ascii_uppercase())
                    .collect();
                let words: Vec<&str> = words.iter().map(String::as_str).collect();
                let reply = match words[..] {
                    ["A"] | ["A", "N"] => {
                        self.binary = false;
                        "200 Switching to ASCII mode."
                    }
                    ["I"] | ["L", "8"] => {
                        self.binary = true;
                        "200 Switching to Binary mode."
                    }
                    ["E"] | ["E", _] | ["A", _] | ["L", _] => {
                        "504 Only TYPE A and TYPE I are supported."
                    }
                    _ => "501 Unknown TYPE.",
                };
                self.reply(reply).await?;
            }
            Command::Mode(mode) => {
                let reply = match mode.to_ascii_uppercase().as_str() {
                    "S" => "200 Mode set to S.",
                    "B" | "C" => "504 Only MODE S (stream) is supported.",
                    _ => "501 Unknown MODE.",
                };
                self.reply(reply).await?;
            }
            Command::Stru(stru) => {
                let reply = match stru.to_ascii_uppercase().as_str() {
                    "F" => "200 Structure set to F.",
                    "R" | "P" => "504 Only STRU F (file) is supported.",
                    _ => "501 Unknown STRU.",
                };
                self.reply(reply).await?;
            }
            Command::Pasv if self.epsv_all => {
                self.reply("503 After EPSV ALL only EPSV may be used.")
                    .await?
            }
            Command::Pasv | Command::Epsv(_) => self.open_passive(command).await?,
            Command::Active => {
                self.reply(
                    "502 Active mode is not available in the lab: use passive mode (PASV or EPSV).",
                )
                .await?
            }
            Command::List(arg) => self.list(&arg, Listing::Long).await?,
            Command::Nlst(arg) => self.list(&arg, Listing::Names).await?,
            Command::Mlsd(arg) => self.list(&arg, Listing::Facts).await?,
            Command::Retr(arg) => self.retrieve(&arg).await?,
            Command::Stor(arg) => self.store(&arg, false).await?,
            Command::Appe(arg) => self.store(&arg, true).await?,
            Command::Dele(ref arg) | Command::Rmd(ref arg) => {
                let dir = matches!(command, Command::Rmd(_));
                let path = resolve(&self.cwd, &arg);
                let result = match can_write(user, &path) {
                    true => self.context.state.ftp.remove(&path, dir),
                    false if self.context.state.ftp.lookup(&path).is_some() => Err(DENIED),
                    false => Err(NOT_FOUND),
                };
                let ok = if dir {
                    "250 Directory removed."
                } else {
                    "250 File deleted."
                };
                self.reply(result.map_or_else(|e| e, |_| ok)).await?;
            }
            Command::Mkd(arg) => {
                let path = resolve(&self.cwd, &arg);
                let result = match bad_name(&path) {
                    Some(refusal) => Err(refusal),
                    None if !can_write(user, &path) => Err(DENIED),
                    None => self.context.state.ftp.make_dir(&path),
                };
                let reply = match result {
                    Ok(()) => format!("257 \"{}\" created.", path.replace('"', "\"\"")),
                    Err(refusal) => refusal.to_string(),
                };
                self.reply(&reply).await?;
            }
            Command::Size(ref arg) | Command::Mdtm(ref arg) => {
                let path = resolve(&self.cwd, &arg);
                let reply = match self.readable(&path) {
                    Some(Node::File { data, modified }) => match command {
                        Command::Size(_) if self.binary => format!("213 {}", data.len()),
                        Command::Size(_) => format!("213 {}", to_ascii(&data).len()),
                        _ => format!("213 {}", timestamp(modified)),
                    },
                    Some(Node::Dir { .. }) => "550 Not a plain file.".to_string(),
                    None => NOT_FOUND.to_string(),
                };
                self.reply(&reply).await?;
            }
            Command::Abor => self.reply("225 No transfer to abort.").await?,
            Command::NotImplemented => self.reply("502 Command not implemented.").await?,
        }
        Ok(true)
    }

    /// The entry at `path` if it exists and the user may read it.
    fn readable(&self, path: &str) -> Option<Node> {
        let user = self.user.unwrap_or(User::Anonymous);
        can_read(user, path).then(|| self.context.state.ftp.lookup(path))?
    }

    async fn change_dir(&mut self, arg: &str) -> io::Result<()> {
        let path = resolve(&self.cwd, arg);
        match self.readable(&path) {
            Some(Node::Dir { .. }) => {
                self.cwd = path;
                self.reply("250 Directory successfully changed.").await
            }
            _ => self.reply("550 Failed to change directory.").await,
        }
    }

    async fn open_passive(&mut self, command: Command) -> io::Result<()> {
        let extended = match &command {
            Command::Epsv(arg) if arg.eq_ignore_ascii_case("ALL") => {
                self.epsv_all = true;
                return self.reply("200 EPSV ALL ok.").await;
            }
            Command::Epsv(arg) if arg.is_empty() || arg == "1" => true,
            Command::Epsv(arg) if arg.parse::<u8>().is_ok() => {
                return self
                    .reply("522 Network protocol not supported, use (1)")
                    .await;
            }
            Command::Epsv(_) => return self.reply("501 Syntax error in EPSV.").await,
            _ => false,
        };
        // The old port closes first, so a client that repeats PASV never holds two.
        self.passive = None;
        let port = match self.context.data_port().await {
            Ok(port) => port,
            Err(e) => {
                tracing::debug!(error = %e, "ftp data port refused");
                return self
                    .reply("425 Cannot open a data port now, try again later.")
                    .await;
            }
        };
        let addr = port.advertised;
        let reply = match (extended, addr.ip()) {
            (true, _) => format!("229 Entering Extended Passive Mode (|||{}|)", addr.port()),
            (false, std::net::IpAddr::V4(ip)) => {
                let [a, b, c, d] = ip.octets();
                let (p1, p2) = (addr.port() >> 8, addr.port() & 0xff);
                format!("227 Entering Passive Mode ({a},{b},{c},{d},{p1},{p2}).")
            }
            (false, _) => return self.reply("522 PASV is IPv4 only: use EPSV.").await,
        };
        self.passive = Some(port);
        self.reply(&reply).await
    }

    /// Takes the data port for a transfer and waits for the client's connection, replying 425 without.
    async fn take_data_port(&mut self) -> io::Result<Option<DataPort>> {
        let port = self.passive.take();
        if port.is_none() {
            self.reply("425 Use PASV or EPSV first.").await?;
        }
        Ok(port)
    }

    async fn connect_data(
        &mut self,
        port: DataPort,
        opening: &str,
    ) -> io::Result<Option<TcpStream>> {
        let idle = self.context.idle_timeout;
        match tokio::time::timeout(idle, port.listener.accept()).await {
            Ok(Ok((socket, _))) => {
                self.reply(opening).await?;
                Ok(Some(socket))
            }
            _ => {
                self.reply("425 Failed to establish the data connection.")
                    .await?;
                Ok(None)
            }
        }
    }

    /// Sends `bytes` on the data connection and closes it, then replies 226 (or 426).
    async fn send_data(&mut self, mut data: TcpStream, bytes: &[u8]) -> io::Result<()> {
        let idle = self.context.idle_timeout;
        let mut sent = true;
        for chunk in bytes.chunks(64 * 1024) {
            if !matches!(
                tokio::time::timeout(idle, data.write_all(chunk)).await,
                Ok(Ok(()))
            ) {
                sent = false;
                break;
            }
        }
        if sent {
            sent = matches!(
                tokio::time::timeout(idle, data.shutdown()).await,
                Ok(Ok(()))
            );
        }
        drop(data);
        match sent {
            true => self.reply("226 Transfer complete.").await,
            false => self.reply("426 Connection closed; transfer aborted.").await,
        }
    }

    async fn list(&mut self, arg: &str, listing: Listing) -> io::Result<()> {
        let Some(port) = self.take_data_port().await? else {
            return Ok(());
        };
        // Clients send `ls` options (`LIST -la`); every listing here is the long one anyway.
        let target = arg
            .split_whitespace()
            .filter(|w| !w.starts_with('-'))
            .collect::<Vec<_>>()
            .join(" ");
        let path = resolve(&self.cwd, &target);
        let entries = match self.readable(&path) {
            Some(Node::Dir { .. }) => self.context.state.ftp.children(&path),
            Some(file) if listing != Listing::Facts => vec![(name(&path).to_string(), file)],
            Some(_) => return self.reply("501 MLSD lists directories only.").await,
            None => return self.reply(NOT_FOUND).await,
        };
        let user = self.user.unwrap_or(User::Anonymous);
        let now = SystemTime::now();
        let mut text = String::new();
        for (entry, node) in &entries {
            let writable = can_write(user, &resolve(&path, entry));
            text += &listing.line(entry, node, writable, now);
            text += "\r\n";
        }
        let Some(data) = self
            .connect_data(port, "150 Here comes the directory listing.")
            .await?
        else {
            return Ok(());
        };
        self.send_data(data, text.as_bytes()).await
    }

    async fn retrieve(&mut self, arg: &str) -> io::Result<()> {
        let Some(port) = self.take_data_port().await? else {
            return Ok(());
        };
        let path = resolve(&self.cwd, arg);
        let data = match self.readable(&path) {
            Some(Node::File { data, .. }) => data,
            Some(Node::Dir { .. }) => return self.reply("550 Not a plain file.").await,
            None => return self.reply("550 Failed to open file: no such file.").await,
        };
        let bytes = if self.binary {
            data.to_vec()
        } else {
            to_ascii(&data)
        };
        let mode = if self.binary { "BINARY" } else { "ASCII" };
        let opening = format!(
            "150 Opening {mode} mode data connection for {} ({} bytes).",
            name(&path),
            bytes.len()
        );
        let Some(socket) = self.connect_data(port, &opening).await? else {
            return Ok(());
        };
        self.send_data(socket, &bytes).await
    }

    async fn store(&mut self, arg: &str, append: bool) -> io::Result<()> {
        let Some(port) = self.take_data_port().await? else {
            return Ok(());
        };
        let user = self.user.unwrap_or(User::Anonymous);
        let path = resolve(&self.cwd, arg);
        let store = &self.context.state.ftp;
        let checked = if let Some(refusal) = bad_name(&path) {
            Err(refusal)
        } else if !can_write(user, &path) {
            Err(DENIED)
        } else if !store.is_dir(parent(&path)) {
            Err("553 No such directory.")
        } else if store.is_dir(&path) {
            Err("553 That is a directory.")
        } else {
            store.room(&path, append)
        };
        let room = match checked {
            Ok(room) => room,
            Err(refusal) => return self.reply(refusal).await,
        };
        let Some(mut data) = self.connect_data(port, "150 Ok to send data.").await? else {
            return Ok(());
        };
        let idle = self.context.idle_timeout;
        let mut bytes = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let mut discarded = 0;
        loop {
            let n = match tokio::time::timeout(idle, data.read(&mut chunk)).await {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => n,
                _ => return self.reply("426 Connection closed; transfer aborted.").await,
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
        drop(data);
        if discarded > 0 {
            return self.reply(TOO_BIG).await;
        }
        if !self.binary {
            bytes = from_ascii(&bytes);
        }
        let reply = match self.context.state.ftp.put(&path, bytes, append) {
            Ok(()) => "226 Transfer complete.",
            Err(refusal) => refusal,
        };
        self.reply(reply).await
    }
}

/// Why a new entry at `path` may not be made, if it may not.
fn bad_name(path: &str) -> Option<&'static str> {
    let name = name(path);
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Some("553 File name not allowed.");
    }
    None
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Listing {
    /// LIST: as `ls -l`.
    Long,
    /// NLST: names only.
    Names,
    /// MLSD (RFC 3659): facts a program can parse.
    Facts,
}

impl Listing {
    fn line(self, entry: &str, node: &Node, writable: bool, now: SystemTime) -> String {
        let (kind, size) = match node {
            Node::Dir { .. } => ("d", 0),
            Node::File { data, .. } => ("-", data.len()),
        };
        match self {
            Listing::Names => entry.to_string(),
            Listing::Facts => {
                let kind = if kind == "d" { "dir" } else { "file" };
                let modified = timestamp(node.modified());
                format!("type={kind};size={size};modify={modified}; {entry}")
            }
            Listing::Long => {
                let mode = match (kind, writable) {
                    ("d", true) => "drwxrwxr-x",
                    ("d", false) => "dr-xr-xr-x",
                    (_, true) => "-rw-rw-r--",
                    (_, false) => "-r--r--r--",
                };
                let date = ls_date(node.modified(), now);
                format!("{mode} 1 ftp ftp {size:>8} {date} {entry}")
            }
        }
    }
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
    let mut out = Vec::with_capacity(data.len());
    for (i, &byte) in data.iter().enumerate() {
        if !(byte == b'\r' && data.get(i + 1) == Some(&b'\n')) {
            out.push(byte);
        }
    }
    out
}

/// UTC date and time of `time`: year, month, day, hour, minute, second (Howard Hinnant's civil_from_days).
fn civil(time: SystemTime) -> (i64, u64, u64, u64, u64, u64) {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = ((secs / 86400) as i64, secs % 86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rest / 3600, rest / 60 % 60, rest % 60)
}

/// MDTM and MLSD's form (RFC 3659): YYYYMMDDHHMMSS, UTC.
fn timestamp(time: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(time);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

/// `ls -l`'s date: the time of day for the last half year, else the year.
fn ls_date(time: SystemTime, now: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, _) = civil(time);
    let month = MONTHS[(mo as usize + 11) % 12];
    let recent = now
        .duration_since(time)
        .is_ok_and(|age| age.as_secs() < 180 * 86400);
    match recent {
        true => format!("{month} {d:>2} {h:02}:{mi:02}"),
        false => format!("{month} {d:>2}  {y}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_in_memory_and_stop_at_the_root() {
        assert_eq!(resolve("/", ".."), "/");
        assert_eq!(resolve("/pub", "../../../etc/passwd"), "/etc/passwd");
        assert_eq!(resolve("/home/learner", "a/./b/../c"), "/home/learner/a/c");
        assert_eq!(resolve("/pub", "/incoming//x"), "/incoming/x");
        assert_eq!(parent("/pub/x"), "/pub");
        assert_eq!(parent("/pub"), "/");
        assert!(within("/home/learner/x", LEARNER_HOME));
        assert!(!within("/home/learnerx", LEARNER_HOME));
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(timestamp(fixed_time()), "20250101000000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661);
        assert_eq!(timestamp(leap), "20000229010101");
    }

    #[test]
    fn text_mode_converts_line_ends() {
        assert_eq!(to_ascii(b"a\nb\r\nc"), b"a\r\nb\r\nc");
        assert_eq!(from_ascii(b"a\r\nb\rc\r\n"), b"a\nb\rc\n");
    }
}
