//! The FTP server's file tree, one per session, in memory only: the fixed directories and the read-only
//! lesson files of `/pub`, the session's uploads and made directories, paths resolved as strings (`..`
//! stops at the root), and who may read or write where. Errors are the FTP replies the server sends.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{
    MAX_ENTRIES, MAX_FILE_BYTES, MAX_NAME, MAX_SESSION_BYTES, NOT_FOUND, TOO_BIG, TOO_MANY,
};

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
const BYTES: [u8; 256] = {
    let mut bytes = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        bytes[i] = i as u8;
        i += 1;
    }
    bytes
};

/// The read-only lesson files.
const PUB_FILES: [(&str, &[u8]); 3] = [
    ("/pub/README.txt", README.as_bytes()),
    ("/pub/bytes.bin", &BYTES),
    ("/pub/hello.txt", HELLO.as_bytes()),
];
/// The directories every session has, which nobody can remove.
const FIXED_DIRS: [&str; 5] = ["/", "/home", "/home/learner", "/incoming", "/pub"];
pub(super) const LEARNER_HOME: &str = "/home/learner";

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
pub(super) enum Node {
    Dir(SystemTime),
    File(Arc<[u8]>, SystemTime),
}

pub(super) type Nodes = BTreeMap<String, Node>;

impl Store {
    pub(super) fn nodes(&self) -> MutexGuard<'_, Nodes> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The file or directory at `path` (absolute, resolved), fixed or uploaded.
    pub(super) fn lookup(&self, path: &str) -> Option<Node> {
        lookup_in(&self.nodes(), path)
    }

    /// How many bytes an upload to `path` may hold, or the refusal when the session is full.
    pub(super) fn room(&self, path: &str, append: bool) -> Result<usize, &'static str> {
        room_in(&self.nodes(), path, append)
    }

    /// Stores an upload, checking again (under one lock) what may have changed while it was received.
    pub(super) fn put(&self, path: &str, bytes: Vec<u8>, append: bool) -> Result<(), &'static str> {
        let mut nodes = self.nodes();
        if bytes.len() > room_in(&nodes, path, append)? {
            return Err(TOO_BIG);
        }
        let data: Arc<[u8]> = match lookup_in(&nodes, path) {
            Some(Node::Dir(_)) => return Err("553 That is a directory."),
            Some(Node::File(data, _)) if append => [&data[..], &bytes].concat().into(),
            _ => bytes.into(),
        };
        if !matches!(lookup_in(&nodes, parent(path)), Some(Node::Dir(_))) {
            return Err("553 No such directory.");
        }
        nodes.insert(path.to_string(), Node::File(data, SystemTime::now()));
        Ok(())
    }

    pub(super) fn make_dir(&self, path: &str) -> Result<(), &'static str> {
        let mut nodes = self.nodes();
        if lookup_in(&nodes, path).is_some() {
            return Err("550 That name exists already.");
        }
        if !matches!(lookup_in(&nodes, parent(path)), Some(Node::Dir(_))) {
            return Err("550 No such directory.");
        }
        if nodes.len() >= MAX_ENTRIES {
            return Err(TOO_MANY);
        }
        nodes.insert(path.to_string(), Node::Dir(SystemTime::now()));
        Ok(())
    }

    /// Removes an uploaded file (`dir` false) or an empty made directory (`dir` true).
    pub(super) fn remove(&self, path: &str, dir: bool) -> Result<(), &'static str> {
        let mut nodes = self.nodes();
        match (nodes.get(path), dir) {
            (Some(Node::Dir(_)), true) if !children_in(&nodes, path).is_empty() => {
                return Err("550 The directory is not empty.")
            }
            (Some(Node::Dir(_)), true) | (Some(Node::File(..)), false) => {}
            (Some(_), true) => return Err("550 Not a directory."),
            (Some(_), false) => return Err("550 That is a directory: use RMD."),
            (None, _) => return Err(NOT_FOUND),
        }
        nodes.remove(path);
        Ok(())
    }
}

fn lookup_in(nodes: &Nodes, path: &str) -> Option<Node> {
    if FIXED_DIRS.contains(&path) {
        return Some(Node::Dir(fixed_time()));
    }
    match PUB_FILES.iter().find(|(p, _)| *p == path) {
        Some((_, data)) => Some(Node::File(Arc::from(*data), fixed_time())),
        None => nodes.get(path).cloned(),
    }
}

/// The entries of directory `dir`, by name.
pub(super) fn children_in(nodes: &Nodes, dir: &str) -> Vec<(String, Node)> {
    let fixed = FIXED_DIRS.into_iter().chain(PUB_FILES.map(|(p, _)| p));
    let mut found: Vec<(String, Node)> = fixed
        .chain(nodes.keys().map(String::as_str))
        .filter(|p| *p != "/" && parent(p) == dir)
        .filter_map(|p| Some((name(p).to_string(), lookup_in(nodes, p)?)))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

fn room_in(nodes: &Nodes, path: &str, append: bool) -> Result<usize, &'static str> {
    let existing = match nodes.get(path) {
        Some(Node::File(data, _)) => data.len(),
        _ if nodes.len() >= MAX_ENTRIES => return Err(TOO_MANY),
        _ => 0,
    };
    let others: usize = nodes
        .values()
        .map(|n| if let Node::File(d, _) = n { d.len() } else { 0 })
        .sum();
    let room = MAX_FILE_BYTES.min(MAX_SESSION_BYTES.saturating_sub(others - existing));
    Ok(if append {
        room.saturating_sub(existing)
    } else {
        room
    })
}

/// `arg` made absolute against `cwd`, with `.` and `..` applied as names only; `..` at the root stays there.
pub(super) fn resolve(cwd: &str, arg: &str) -> String {
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

pub(super) fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

pub(super) fn name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Why a new entry may not be called `name(path)`, if it may not.
pub(super) fn bad_name(path: &str) -> Option<&'static str> {
    let name = name(path);
    let bad = name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control);
    bad.then_some("553 File name not allowed.")
}

/// Whether `path` is `dir` or inside it.
pub(super) fn within(path: &str, dir: &str) -> bool {
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum User {
    Anonymous,
    Learner,
}

pub(super) fn can_read(user: User, path: &str) -> bool {
    user == User::Learner || !within(path, LEARNER_HOME)
}

/// Whether `user` may create, replace or remove the entry at `path` (never a fixed directory).
pub(super) fn can_write(user: User, path: &str) -> bool {
    let area = |dir: &str| within(path, dir) && path != dir;
    area("/incoming") || (user == User::Learner && area(LEARNER_HOME))
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
        assert!(!within("/home/learnerx", LEARNER_HOME));
    }
}
