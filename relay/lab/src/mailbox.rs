//! The session's mail: one mailbox, filled by SMTP and read by POP3 and IMAP4.
//!
//! The lab has a single mailbox, the one of `learner@lab`, and it is a catch-all: SMTP delivers mail for
//! every `@lab` address into it (one copy per message, however many `@lab` recipients it names), so a
//! learner can write to `alice@lab` and still read the message as `learner`. It starts with a welcome
//! message, so POP3 and IMAP4 lessons work before anything was sent.
//!
//! POP3 and IMAP4 see the same messages: a message deleted by one is gone for the other. Flags (`\Seen`,
//! `\Deleted`, ...) are kept here, so they are shared too; `\Recent` is claimed by the first IMAP4 session
//! that sees a message.
//!
//! Messages are kept as text with CRLF line ends (what POP3 counts and IMAP4 sends). Everything is bounded:
//! [`MAX_MESSAGE`], [`MAX_MESSAGES`], [`MAX_BYTES`].

use std::sync::{Arc, Mutex, MutexGuard};

use super::clock::Utc;

/// The largest message accepted (SMTP advertises it as `SIZE`): enough for any exercise with a small
/// attachment, small enough that a session cannot use the relay as storage.
pub const MAX_MESSAGE: usize = 256 * 1024;
/// Most messages in the mailbox: a learner's loop that sends mail forever fills it quickly and gets a
/// "mailbox full" reply instead of growing the relay's memory.
pub const MAX_MESSAGES: usize = 100;
/// Most bytes in the mailbox, all messages together (a few full-size messages, or many small ones).
pub const MAX_BYTES: usize = 4 * 1024 * 1024;

/// The account of the mailbox, for POP3 and IMAP4.
pub const USER: &str = "learner";
pub const PASSWORD: &str = "learner";

/// Whether `name` names the mailbox's account (`learner`, or the whole address `learner@lab`).
pub fn is_user(name: &str) -> bool {
    name == USER || name.eq_ignore_ascii_case("learner@lab")
}

/// Whether `name` / `password` log in to the mailbox.
pub fn check_login(name: &str, password: &str) -> bool {
    is_user(name) && password == PASSWORD
}

/// Message flags (IMAP4's system flags), as bits.
pub type Flags = u8;
pub const SEEN: Flags = 1;
pub const ANSWERED: Flags = 2;
pub const FLAGGED: Flags = 4;
pub const DELETED: Flags = 8;
pub const DRAFT: Flags = 16;
/// Each flag with its IMAP4 name.
pub const FLAG_NAMES: [(Flags, &str); 5] = [
    (ANSWERED, "\\Answered"),
    (FLAGGED, "\\Flagged"),
    (DELETED, "\\Deleted"),
    (SEEN, "\\Seen"),
    (DRAFT, "\\Draft"),
];

/// One message.
#[derive(Clone)]
pub struct Message {
    /// Unique in this mailbox for its life, ascending (IMAP4 UID, POP3 UIDL).
    pub uid: u32,
    /// The whole message, CRLF line ends; shared so servers can send it without holding the lock.
    pub text: Arc<str>,
    pub flags: Flags,
    /// When it arrived, Unix seconds.
    pub arrived: u64,
    /// Not yet seen by any IMAP4 session (`\Recent`).
    pub recent: bool,
}

/// Why a message was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Larger than [`MAX_MESSAGE`] (SMTP 552).
    TooBig,
    /// The mailbox holds [`MAX_MESSAGES`] or [`MAX_BYTES`] already (SMTP 452).
    Full,
}

/// The messages of the mailbox.
pub struct Mailbox {
    pub messages: Vec<Message>,
    next_uid: u32,
    /// IMAP4's UIDVALIDITY: the mailbox's creation time, so a client that cached UIDs of another
    /// session's mailbox (which also started at UID 1) sees they are not valid here.
    pub uid_validity: u32,
}

impl Mailbox {
    /// The UID the next message will get.
    pub fn uid_next(&self) -> u32 {
        self.next_uid
    }

    /// Bytes of all messages together.
    pub fn bytes(&self) -> usize {
        self.messages.iter().map(|m| m.text.len()).sum()
    }

    /// Whether a message of `size` bytes would be taken now.
    pub fn room_for(&self, size: usize) -> Result<(), Refused> {
        if size > MAX_MESSAGE {
            return Err(Refused::TooBig);
        }
        if self.messages.len() >= MAX_MESSAGES || self.bytes() + size > MAX_BYTES {
            return Err(Refused::Full);
        }
        Ok(())
    }

    /// Adds a message (line ends made CRLF); returns its UID.
    pub fn deliver(&mut self, text: &str, flags: Flags) -> Result<u32, Refused> {
        let text = crlf(text);
        self.room_for(text.len())?;
        let uid = self.next_uid;
        self.next_uid += 1;
        self.messages.push(Message {
            uid,
            text: text.into(),
            flags,
            arrived: now(),
            recent: true,
        });
        Ok(uid)
    }

    pub fn get(&self, uid: u32) -> Option<&Message> {
        self.messages.iter().find(|m| m.uid == uid)
    }

    pub fn get_mut(&mut self, uid: u32) -> Option<&mut Message> {
        self.messages.iter_mut().find(|m| m.uid == uid)
    }

    /// Removes the messages with these UIDs (those already gone are ignored).
    pub fn remove(&mut self, uids: &[u32]) {
        self.messages.retain(|m| !uids.contains(&m.uid));
    }
}

/// What the mail servers keep per session: the mailbox behind a lock that is never held across an await.
pub struct Store {
    mailbox: Mutex<Mailbox>,
}

impl Default for Store {
    fn default() -> Store {
        let mut mailbox = Mailbox {
            messages: Vec::new(),
            next_uid: 1,
            uid_validity: (now() as u32).max(1),
        };
        let _ = mailbox.deliver(&welcome(), 0);
        Store {
            mailbox: Mutex::new(mailbox),
        }
    }
}

impl Store {
    pub fn lock(&self) -> MutexGuard<'_, Mailbox> {
        self.mailbox.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn welcome() -> String {
    format!(
        "From: Lab Postmaster <postmaster@lab>\r\n\
         To: learner@lab\r\n\
         Subject: Welcome to the lab mail\r\n\
         Date: {}\r\n\
         Message-ID: <welcome@lab>\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n\
         Hello, and welcome to the lab mail!\r\n\
         \r\n\
         This mailbox belongs to learner@lab (password: learner). Mail sent with\r\n\
         SMTP to any address @lab (port 25) lands here, and you can read it with\r\n\
         POP3 (port 110) or IMAP4 (port 143). Try:\r\n\
         \r\n\
         - smtplib: send yourself a message at learner@lab\r\n\
         - poplib: list, retrieve and delete messages\r\n\
         - imaplib: search, fetch and flag them\r\n\
         \r\n\
         Deleting this message is fine; the mailbox lives as long as your session.\r\n\
         \r\n\
         Happy hacking,\r\n\
         The lab\r\n",
        rfc5322_date(now())
    )
}

/// Unix seconds now.
pub fn now() -> u64 {
    super::clock::unix_now().max(0) as u64
}

/// `text` with every line ending in CRLF (a lone LF or CR becomes CRLF).
pub fn crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            c => out.push(c),
        }
    }
    out
}

/// The header of a message (its blank line included) and its body.
pub fn split(text: &str) -> (&str, &str) {
    if let Some(body) = text.strip_prefix("\r\n") {
        return ("\r\n", body);
    }
    match text.find("\r\n\r\n") {
        Some(i) => text.split_at(i + 4),
        None => (text, ""),
    }
}

/// The header fields of `header`, each with its continuation lines, CRLF included.
pub fn fields(header: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    for line in header.split_inclusive("\r\n") {
        let folded = line.starts_with([' ', '\t']);
        if !folded && pos > start {
            out.push(&header[start..pos]);
            start = pos;
        }
        pos += line.len();
    }
    if pos > start && header[start..pos].trim() != "" {
        out.push(&header[start..pos]);
    }
    out.retain(|f| f.contains(':'));
    out
}

/// The field's name (before the colon).
pub fn field_name(field: &str) -> &str {
    field.split(':').next().unwrap_or("").trim()
}

/// The unfolded value of the first header field `name` (any case), if there is one.
pub fn field(text: &str, name: &str) -> Option<String> {
    let (header, _) = split(text);
    fields(header).into_iter().find_map(|f| {
        let (n, value) = f.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.replace("\r\n", "").trim().to_string())
    })
}

/// A date as mail headers write it (RFC 5322), in UTC: `Tue, 01 Jul 2025 10:00:00 +0000`.
pub fn rfc5322_date(secs: u64) -> String {
    Utc::from_unix(secs as i64).rfc5322()
}

/// A date as IMAP4's INTERNALDATE writes it: `01-Jul-2025 10:00:00 +0000`.
pub fn imap_date(secs: u64) -> String {
    let t = Utc::from_unix(secs as i64);
    format!(
        "{:02}-{}-{} {} +0000",
        t.day,
        t.month_name(),
        t.year,
        t.clock()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(1751364000), "Tue, 01 Jul 2025 10:00:00 +0000");
        assert_eq!(imap_date(951782400), "29-Feb-2000 00:00:00 +0000");
    }

    #[test]
    fn header_fields() {
        let text = "Subject: a\r\n b\r\nFrom: x@lab\r\n\r\nbody\r\n";
        assert_eq!(field(text, "subject").as_deref(), Some("a b"));
        assert_eq!(split(text).1, "body\r\n");
        assert_eq!(fields(split(text).0).len(), 2);
    }

    #[test]
    fn limits() {
        let store = Store::default();
        let mut mailbox = store.lock();
        assert_eq!(mailbox.messages.len(), 1);
        assert_eq!(
            mailbox.deliver(&"x".repeat(MAX_MESSAGE + 1), 0),
            Err(Refused::TooBig)
        );
        while mailbox.messages.len() < MAX_MESSAGES {
            assert!(mailbox.deliver("Subject: hi\r\n\r\nhi\r\n", 0).is_ok());
        }
        assert_eq!(mailbox.deliver("x", 0), Err(Refused::Full));
    }
}
