//! The lab's POP3 server (RFC 1939, with CAPA from RFC 2449) on port 110, over the session's mailbox
//! ([`super::mailbox`]).
//!
//! Account: `learner` (or `learner@lab`), password `learner`, with `USER` / `PASS`; after
//! [`MAX_LOGIN_FAILURES`] wrong passwords the server hangs up.
//!
//! Commands: `CAPA`, `USER`, `PASS`, `QUIT` in the AUTHORIZATION state; `STAT`, `LIST [n]`, `UIDL [n]`,
//! `RETR n` (byte-stuffed), `TOP n m`, `DELE n`, `NOOP`, `RSET`, `CAPA`, `QUIT` in the TRANSACTION state.
//! `DELE` only marks; the marked messages are removed at `QUIT` (the UPDATE state), and not at all if the
//! connection drops. `RETR` marks a message `\Seen` for IMAP4.
//!
//! The list of messages is fixed at login, as with the maildrop lock of RFC 1939: mail that arrives
//! later shows at the next login. A message that IMAP4 expunged meanwhile answers `-ERR`.
//!
//! Limits: command lines of [`MAX_COMMAND`] octets (RFC 2449), the idle timeout (the connection closes
//! without a reply and nothing is deleted, RFC 1939 section 3). Deliberately missing: APOP, AUTH, STLS.

use std::io;

use tokio::net::TcpStream;

use super::line::{Line, LineConn};
use super::mailbox;
use super::Context;

/// The longest command line, CRLF included (RFC 2449 section 4).
pub const MAX_COMMAND: usize = 255;

/// Wrong passwords before the server closes the connection.
pub const MAX_LOGIN_FAILURES: usize = 3;

const CAPA: &str =
    "+OK Capability list follows\r\nUSER\r\nTOP\r\nUIDL\r\nIMPLEMENTATION Soket-lab\r\n.";

/// A message as the session sees it: fixed at login.
struct Entry {
    uid: u32,
    size: usize,
    deleted: bool,
}

pub async fn serve(socket: TcpStream, context: Context) -> io::Result<()> {
    let mut conn = LineConn::new(socket, context.idle_timeout);
    conn.set_max_line(MAX_COMMAND);
    conn.send_line("+OK lab POP3 server ready").await?;
    let mut user: Option<String> = None;
    let mut failures = 0;
    // AUTHORIZATION state.
    let mut entries = loop {
        let Some((verb, args)) = command(&mut conn).await? else {
            return Ok(());
        };
        match (verb.as_str(), args.as_slice()) {
            ("CAPA", []) => conn.send_line(CAPA).await?,
            ("USER", [name]) if mailbox::is_user(name) => {
                user = Some(name.clone());
                conn.send_line(&format!("+OK hello {name}, now send PASS"))
                    .await?;
            }
            ("USER", [_]) => {
                user = None;
                conn.send_line("-ERR no such mailbox here, only learner")
                    .await?;
            }
            ("PASS", _) if user.is_none() => conn.send_line("-ERR send USER first").await?,
            ("PASS", [..]) => {
                // The password is the rest of the line: it may contain spaces (RFC 1939 section 7).
                let password = args.join(" ");
                if mailbox::check_login(user.as_deref().unwrap_or(""), &password) {
                    break login(&context);
                }
                user = None;
                failures += 1;
                if failures >= MAX_LOGIN_FAILURES {
                    return conn
                        .send_line("-ERR invalid password, too many failures, bye")
                        .await;
                }
                conn.send_line("-ERR invalid password").await?;
            }
            ("QUIT", []) => return conn.send_line("+OK lab POP3 server signing off").await,
            ("CAPA" | "USER" | "QUIT", _) => conn.send_line("-ERR wrong arguments").await?,
            ("STAT" | "LIST" | "UIDL" | "RETR" | "TOP" | "DELE" | "NOOP" | "RSET", _) => {
                conn.send_line("-ERR log in first (USER, PASS)").await?
            }
            _ => conn.send_line("-ERR unknown command").await?,
        }
    };
    let (count, size) = totals(&entries);
    conn.send_line(&format!(
        "+OK learner's maildrop has {count} messages ({size} octets)"
    ))
    .await?;
    // TRANSACTION state.
    loop {
        let Some((verb, args)) = command(&mut conn).await? else {
            return Ok(());
        };
        let reply = match (verb.as_str(), args.as_slice()) {
            ("STAT", []) => {
                let (count, size) = totals(&entries);
                format!("+OK {count} {size}")
            }
            ("LIST" | "UIDL", []) => {
                let (count, size) = totals(&entries);
                let mut reply = format!("+OK {count} messages ({size} octets)");
                for (i, entry) in entries.iter().enumerate().filter(|(_, e)| !e.deleted) {
                    reply += &format!("\r\n{} {}", i + 1, list_value(&verb, entry));
                }
                reply + "\r\n."
            }
            ("LIST" | "UIDL", [n]) => match find(&entries, n) {
                Ok(i) => format!("+OK {} {}", i + 1, list_value(&verb, &entries[i])),
                Err(e) => e.into(),
            },
            ("RETR", [n]) => match find(&entries, n) {
                Ok(i) => match text(&context, entries[i].uid, true) {
                    Some(text) => {
                        let mut reply = format!("+OK {} octets\r\n", text.len());
                        stuff(&mut reply, &text, usize::MAX);
                        reply + "."
                    }
                    None => "-ERR message was removed by another client".into(),
                },
                Err(e) => e.into(),
            },
            ("TOP", [n, lines]) => match (find(&entries, n), lines.parse::<usize>()) {
                (Ok(i), Ok(lines)) => match text(&context, entries[i].uid, false) {
                    Some(text) => {
                        let (header, body) = mailbox::split(&text);
                        let mut reply = String::from("+OK top of message follows\r\n");
                        stuff(&mut reply, header, usize::MAX);
                        stuff(&mut reply, body, lines);
                        reply + "."
                    }
                    None => "-ERR message was removed by another client".into(),
                },
                (Err(e), _) => e.into(),
                (_, Err(_)) => "-ERR invalid number of lines".into(),
            },
            ("DELE", [n]) => match find(&entries, n) {
                Ok(i) => {
                    entries[i].deleted = true;
                    format!("+OK message {} deleted", i + 1)
                }
                Err(e) => e.into(),
            },
            ("NOOP", []) => "+OK".into(),
            ("RSET", []) => {
                entries.iter_mut().for_each(|e| e.deleted = false);
                let (count, size) = totals(&entries);
                format!("+OK maildrop has {count} messages ({size} octets)")
            }
            ("CAPA", []) => CAPA.into(),
            ("QUIT", []) => {
                // UPDATE state.
                let gone: Vec<u32> = entries
                    .iter()
                    .filter(|e| e.deleted)
                    .map(|e| e.uid)
                    .collect();
                let left = {
                    let mut mailbox = context.state.mail.lock();
                    mailbox.remove(&gone);
                    mailbox.messages.len()
                };
                return conn
                    .send_line(&format!(
                        "+OK lab POP3 server signing off ({left} messages left)"
                    ))
                    .await;
            }
            ("USER" | "PASS", _) => "-ERR already logged in".into(),
            (
                "STAT" | "LIST" | "UIDL" | "RETR" | "TOP" | "DELE" | "NOOP" | "RSET" | "CAPA"
                | "QUIT",
                _,
            ) => "-ERR wrong arguments".into(),
            _ => "-ERR unknown command".into(),
        };
        conn.send_line(&reply).await?;
    }
}

/// Reads one command: its keyword in capitals and its arguments; `None` when the connection is over.
async fn command(conn: &mut LineConn) -> io::Result<Option<(String, Vec<String>)>> {
    loop {
        match conn.read_line().await? {
            Line::Text(line) => {
                let mut words = line.split(' ').filter(|w| !w.is_empty()).map(String::from);
                let Some(verb) = words.next() else {
                    conn.send_line("-ERR empty command").await?;
                    continue;
                };
                return Ok(Some((verb.to_ascii_uppercase(), words.collect())));
            }
            Line::TooLong => conn.send_line("-ERR line too long").await?,
            // RFC 1939: an expired autologout timer closes the connection without a response.
            Line::Eof | Line::TimedOut => return Ok(None),
        }
    }
}

/// The session's view of the mailbox, taken at login.
fn login(context: &Context) -> Vec<Entry> {
    let mailbox = context.state.mail.lock();
    mailbox
        .messages
        .iter()
        .map(|m| Entry {
            uid: m.uid,
            size: m.text.len(),
            deleted: false,
        })
        .collect()
}

fn totals(entries: &[Entry]) -> (usize, usize) {
    let live = entries.iter().filter(|e| !e.deleted);
    (live.clone().count(), live.map(|e| e.size).sum())
}

/// The index of message number `n`, or the `-ERR` reply.
fn find(entries: &[Entry], n: &str) -> Result<usize, &'static str> {
    let i = n
        .parse::<usize>()
        .ok()
        .filter(|&n| n >= 1 && n <= entries.len())
        .ok_or("-ERR no such message")?
        - 1;
    if entries[i].deleted {
        return Err("-ERR message already deleted");
    }
    Ok(i)
}

/// What LIST (size) or UIDL (unique id) says of a message.
fn list_value(verb: &str, entry: &Entry) -> String {
    if verb == "LIST" {
        entry.size.to_string()
    } else {
        entry.uid.to_string()
    }
}

/// The text of a message, if it is still there; `seen` marks it `\Seen`.
fn text(context: &Context, uid: u32, seen: bool) -> Option<std::sync::Arc<str>> {
    let mut mailbox = context.state.mail.lock();
    let message = mailbox.get_mut(uid)?;
    if seen {
        message.flags |= mailbox::SEEN;
    }
    Some(message.text.clone())
}

/// Appends at most `lines` lines of `text`, each CRLF-terminated, with a `.` doubled at a line start.
fn stuff(out: &mut String, text: &str, lines: usize) {
    for line in text.split_inclusive("\r\n").take(lines) {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        if !line.ends_with("\r\n") {
            out.push_str("\r\n");
        }
    }
}
