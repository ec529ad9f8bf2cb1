//! The lab's IMAP4rev1 server (RFC 3501) on port 143: the session's mailbox ([`super::mailbox`]) as the
//! one folder `INBOX`, the same messages POP3 sees.
//!
//! Account: `LOGIN learner learner` (atoms, quoted strings or `{n}` literals; `learner@lab` works too);
//! after [`MAX_LOGIN_FAILURES`] failures the server says BYE.
//!
//! Commands: `CAPABILITY`, `NOOP`, `LOGOUT`; `LOGIN`; `SELECT`, `EXAMINE`, `LIST`, `LSUB`, `STATUS`,
//! `APPEND` (its date is ignored), and (refused with NO: there is only INBOX) `CREATE`, `DELETE`,
//! `RENAME`, `SUBSCRIBE`, `UNSUBSCRIBE`; with INBOX selected `CHECK`, `CLOSE`, `UNSELECT` (RFC 3691),
//! `EXPUNGE`, `SEARCH`, `FETCH`, `STORE`, `UID SEARCH`, `UID FETCH`, `UID STORE`.
//! - FETCH items: `FLAGS`, `UID`, `INTERNALDATE`, `RFC822`, `RFC822.SIZE`, `RFC822.HEADER`, `RFC822.TEXT`,
//!   `BODY[]`, `BODY[HEADER]`, `BODY[TEXT]`, `BODY[HEADER.FIELDS (..)]`, each also as `BODY.PEEK[..]`, and
//!   the macro `FAST`.
//! - SEARCH keys: `ALL`, `ANSWERED`, `DELETED`, `DRAFT`, `FLAGGED`, `SEEN`, `RECENT`, `NEW`, `OLD`, the
//!   `UN` forms of the flag keys, `FROM`, `TO`, `CC`, `SUBJECT`, `BODY`, `TEXT` (substrings, any case),
//!   `UID` set, message sets, `NOT`.
//! - Flags: the five system flags; `\Recent` is per session. Keywords are refused (PERMANENTFLAGS does not
//!   offer them).
//!
//! Other sessions' changes (mail from SMTP, deletions by POP3) are reported as EXISTS / EXPUNGE at the end
//! of commands, never during FETCH, STORE or SEARCH (RFC 3501 7.4.1). Wrong state or bad syntax: BAD.
//!
//! Limits: command lines of [`super::line::MAX_LINE`] octets, literals that add up to [`MAX_COMMAND`] (an
//! APPENDed message), the idle timeout (`* BYE`, then the connection closes). Deliberately missing:
//! STARTTLS, AUTHENTICATE, IDLE, COPY, ENVELOPE, BODYSTRUCTURE, MIME part sections, partial fetches, date
//! and OR search keys, keywords, other folders.
//!
//! This file holds the session and the commands; `imap/parser.rs` reads and parses a command's syntax,
//! `imap/fetch.rs` answers FETCH, `imap/search.rs` builds SEARCH's tests.

mod fetch;
mod parser;
mod search;

use std::io;

use tokio::net::TcpStream;

use super::line::LineConn;
use super::mailbox::{self, Mailbox, Message, Refused};
use super::Context;
use fetch::{fetch, fetch_item, flag_list, Item};
use parser::{parse, parse_flags, read_command, sequence, Input, Value};
use search::search_key;

/// The longest command with its literals: room for an APPENDed message of the largest size.
pub const MAX_COMMAND: usize = mailbox::MAX_MESSAGE + 1024;

/// Failed LOGINs before the server hangs up.
pub const MAX_LOGIN_FAILURES: usize = 3;

/// How deep parenthesised lists may nest, so a client cannot make the parser recurse deep.
const MAX_DEPTH: usize = 8;

const CAPABILITY: &str = "IMAP4rev1 UNSELECT";
const FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/// The mailbox a session has selected.
struct Selected {
    read_only: bool,
    /// The UID of each message number (number = index + 1), as this session was told.
    uids: Vec<u32>,
    /// The messages that are `\Recent` for this session.
    recent: Vec<u32>,
}

struct Session {
    context: Context,
    logged_in: bool,
    failures: usize,
    selected: Option<Selected>,
}

/// The tagged status: `Ok("OK ..")` or `Ok("NO ..")`; `Err(why)` is sent as BAD.
type Status = Result<String, String>;

pub async fn serve(socket: TcpStream, context: Context) -> io::Result<()> {
    let mut conn = LineConn::new(socket, context.idle_timeout);
    let greeting = format!("* OK [CAPABILITY {CAPABILITY}] lab IMAP4rev1 server ready");
    conn.send_line(&greeting).await?;
    let mut session = Session {
        context,
        logged_in: false,
        failures: 0,
        selected: None,
    };
    loop {
        let command = match read_command(&mut conn).await? {
            Input::Command(command) => command,
            Input::TooBig(command) => {
                let command = String::from_utf8_lossy(&command);
                let tag = command.split(' ').next().unwrap_or("*");
                conn.send_line(&format!("{tag} BAD Literal too big"))
                    .await?;
                continue;
            }
            Input::TooLong => {
                conn.send_line("* BAD Line too long").await?;
                continue;
            }
            Input::Closed => return Ok(()),
            Input::TimedOut => return conn.send_line("* BYE Autologout; idle for too long").await,
        };
        let space = command
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or(command.len());
        let tag = String::from_utf8_lossy(&command[..space]).into_owned();
        let bad_tag = |b: u8| b"(){%*\"\\+".contains(&b) || b <= b' ' || b > 126;
        if tag.is_empty() || tag.bytes().any(bad_tag) || space == command.len() {
            conn.send_line("* BAD Expected a tag and a command").await?;
            continue;
        }
        let mut out = String::new();
        let status = parse(&command[space + 1..], &mut 0, 0).and_then(|mut args| {
            let verb = args.first().ok_or("Missing command")?.atom()?;
            args.remove(0);
            session.run(&mut out, &verb, args)
        });
        let status = status.unwrap_or_else(|why| format!("BAD {why}"));
        out += &format!("{tag} {status}\r\n");
        conn.send(out.as_bytes()).await?;
        if out.starts_with("* BYE") {
            return Ok(());
        }
    }
}

fn arity(args: &[Value], n: usize) -> Result<(), String> {
    match args.len() == n {
        true => Ok(()),
        false => Err(format!("Expected {n} arguments")),
    }
}

fn is_inbox(name: &Value) -> Result<bool, String> {
    Ok(name.text()?.eq_ignore_ascii_case("INBOX"))
}

const NO_SUCH_MAILBOX: &str = "NO [NONEXISTENT] No such mailbox; the lab has only INBOX";

impl Session {
    fn run(&mut self, out: &mut String, verb: &str, args: Vec<Value>) -> Status {
        let any = matches!(verb, "CAPABILITY" | "NOOP" | "LOGOUT");
        let unauthenticated = matches!(verb, "LOGIN" | "AUTHENTICATE" | "STARTTLS");
        let selected = matches!(
            verb,
            "CHECK" | "CLOSE" | "UNSELECT" | "EXPUNGE" | "SEARCH" | "FETCH" | "STORE" | "UID"
        );
        let authenticated = matches!(
            verb,
            "SELECT"
                | "EXAMINE"
                | "CREATE"
                | "DELETE"
                | "RENAME"
                | "SUBSCRIBE"
                | "UNSUBSCRIBE"
                | "LIST"
                | "LSUB"
                | "STATUS"
                | "APPEND"
        );
        if !(any || unauthenticated || authenticated || selected) {
            return Err("Unknown command".into());
        } else if !any && !unauthenticated && !self.logged_in {
            return Err("Log in first".into());
        } else if unauthenticated && self.logged_in {
            return Err("Already logged in".into());
        } else if selected && self.selected.is_none() {
            return Err("No mailbox selected".into());
        }
        let no_args = arity(&args, 0);
        let status = match verb {
            "CAPABILITY" => no_args.map(|()| {
                *out += &format!("* CAPABILITY {CAPABILITY}\r\n");
                "OK CAPABILITY completed".into()
            }),
            "NOOP" | "CHECK" => no_args.map(|()| format!("OK {verb} completed")),
            "LOGOUT" => no_args.map(|()| {
                *out += "* BYE lab IMAP4rev1 server logging out\r\n";
                "OK LOGOUT completed".into()
            }),
            "LOGIN" => self.login(out, &args),
            "AUTHENTICATE" => Ok("NO AUTHENTICATE is not supported, use LOGIN".into()),
            "STARTTLS" => Err("STARTTLS is not supported in the lab".into()),
            "SELECT" | "EXAMINE" => self.select(out, verb == "EXAMINE", &args),
            "CREATE" | "DELETE" | "RENAME" | "SUBSCRIBE" | "UNSUBSCRIBE" => {
                Ok(format!("NO The lab has only INBOX; {verb} is not allowed"))
            }
            "LIST" | "LSUB" => list(out, verb, &args),
            "STATUS" => self.status(out, &args),
            "APPEND" => self.append(&args),
            "CLOSE" | "UNSELECT" => no_args.map(|()| {
                let selected = self.selected.take();
                if let Some(selected) = selected.filter(|s| verb == "CLOSE" && !s.read_only) {
                    let mut mailbox = self.context.state.mail.lock();
                    let gone = deleted(&mailbox, &selected.uids);
                    mailbox.remove(&gone);
                }
                format!("OK {verb} completed")
            }),
            "EXPUNGE" => no_args.and_then(|()| self.expunge(out)),
            "SEARCH" | "FETCH" | "STORE" => self.message_command(out, verb, &args, false),
            "UID" => match args.split_first() {
                Some((sub, rest)) => match sub.atom()?.as_str() {
                    sub @ ("SEARCH" | "FETCH" | "STORE") => {
                        self.message_command(out, sub, rest, true)
                    }
                    sub => Err(format!("Unknown or unsupported command UID {sub}")),
                },
                None => Err("UID needs a command".into()),
            },
            _ => Err("Unknown command".into()),
        };
        // FETCH, STORE and SEARCH must not renumber messages under the client (RFC 3501 7.4.1).
        self.sync(out, !matches!(verb, "FETCH" | "STORE" | "SEARCH"));
        status
    }

    fn login(&mut self, out: &mut String, args: &[Value]) -> Status {
        arity(args, 2)?;
        if mailbox::check_login(args[0].text()?, args[1].text()?) {
            self.logged_in = true;
            return Ok(format!("OK [CAPABILITY {CAPABILITY}] LOGIN completed"));
        }
        self.failures += 1;
        if self.failures >= MAX_LOGIN_FAILURES {
            *out += "* BYE Too many failed logins\r\n";
        }
        Ok("NO [AUTHENTICATIONFAILED] Invalid credentials (try learner / learner)".into())
    }

    fn select(&mut self, out: &mut String, read_only: bool, args: &[Value]) -> Status {
        arity(args, 1)?;
        // Even a failed SELECT leaves no mailbox selected (RFC 3501 6.3.1).
        self.selected = None;
        if !is_inbox(&args[0])? {
            return Ok(NO_SUCH_MAILBOX.into());
        }
        let mut mailbox = self.context.state.mail.lock();
        let uids: Vec<u32> = mailbox.messages.iter().map(|m| m.uid).collect();
        let mut recent = Vec::new();
        for message in mailbox.messages.iter_mut().filter(|m| m.recent) {
            // EXAMINE changes nothing, not even whether a message is new.
            message.recent = read_only;
            recent.push(message.uid);
        }
        *out += &format!("* FLAGS ({FLAGS})\r\n* {} EXISTS\r\n", uids.len());
        *out += &format!("* {} RECENT\r\n", recent.len());
        if let Some(i) = mailbox
            .messages
            .iter()
            .position(|m| m.flags & mailbox::SEEN == 0)
        {
            *out += &format!("* OK [UNSEEN {}] First unseen message\r\n", i + 1);
        }
        *out += &format!("* OK [UIDVALIDITY {}] UIDs valid\r\n", mailbox.uid_validity);
        *out += &format!(
            "* OK [UIDNEXT {}] Predicted next UID\r\n",
            mailbox.uid_next()
        );
        let (permanent, mode) = match read_only {
            true => ("", "READ-ONLY"),
            false => (FLAGS, "READ-WRITE"),
        };
        *out += &format!("* OK [PERMANENTFLAGS ({permanent})] Flags kept\r\n");
        self.selected = Some(Selected {
            read_only,
            uids,
            recent,
        });
        Ok(format!(
            "OK [{mode}] {} completed",
            ["SELECT", "EXAMINE"][read_only as usize]
        ))
    }

    fn status(&mut self, out: &mut String, args: &[Value]) -> Status {
        arity(args, 2)?;
        let Value::List(items) = &args[1] else {
            return Err("STATUS needs a list of items".into());
        };
        if !is_inbox(&args[0])? {
            return Ok(NO_SUCH_MAILBOX.into());
        }
        let mailbox = self.context.state.mail.lock();
        let count =
            |test: fn(&Message) -> bool| mailbox.messages.iter().filter(|m| test(m)).count();
        let mut answer = Vec::new();
        for item in items {
            let item = item.atom()?;
            let value = match item.as_str() {
                "MESSAGES" => mailbox.messages.len(),
                "RECENT" => count(|m| m.recent),
                "UIDNEXT" => mailbox.uid_next() as usize,
                "UIDVALIDITY" => mailbox.uid_validity as usize,
                "UNSEEN" => count(|m| m.flags & mailbox::SEEN == 0),
                _ => return Err(format!("Unknown STATUS item {item}")),
            };
            answer.push(format!("{item} {value}"));
        }
        *out += &format!("* STATUS INBOX ({})\r\n", answer.join(" "));
        Ok("OK STATUS completed".into())
    }

    /// `APPEND mailbox [(flags)] [date] message`.
    fn append(&mut self, args: &[Value]) -> Status {
        let syntax = || "Syntax: APPEND mailbox [(flags)] [date] {size}".to_string();
        let [name, middle @ .., Value::Str(message)] = args else {
            return Err(syntax());
        };
        let mut flags = 0;
        for value in middle {
            match value {
                Value::List(list) => flags = parse_flags(list)?,
                Value::Str(_) => {}
                Value::Atom(_) => return Err(syntax()),
            }
        }
        if !is_inbox(name)? {
            return Ok("NO [TRYCREATE] No such mailbox; the lab has only INBOX".into());
        }
        Ok(
            match self.context.state.mail.lock().deliver(message, flags) {
                Ok(_) => "OK APPEND completed".into(),
                Err(Refused::TooBig) => "NO [TOOBIG] Message too large".into(),
                Err(Refused::Full) => "NO [OVERQUOTA] Mailbox full".into(),
            },
        )
    }

    fn expunge(&mut self, out: &mut String) -> Status {
        self.sync(out, true);
        let Some(selected) = &mut self.selected else {
            return Err("No mailbox selected".into());
        };
        if selected.read_only {
            return Ok("NO [READ-ONLY] Mailbox is read-only".into());
        }
        let mut mailbox = self.context.state.mail.lock();
        let gone = deleted(&mailbox, &selected.uids);
        mailbox.remove(&gone);
        for i in (0..selected.uids.len()).rev() {
            if gone.contains(&selected.uids[i]) {
                *out += &format!("* {} EXPUNGE\r\n", i + 1);
                selected.uids.remove(i);
            }
        }
        Ok("OK EXPUNGE completed".into())
    }

    /// Tells the client of other sessions' changes: new messages always, removed ones if `expunge`.
    fn sync(&mut self, out: &mut String, expunge: bool) {
        let Some(selected) = &mut self.selected else {
            return;
        };
        let mut mailbox = self.context.state.mail.lock();
        for i in (0..selected.uids.len()).rev() {
            if expunge && mailbox.get(selected.uids[i]).is_none() {
                *out += &format!("* {} EXPUNGE\r\n", i + 1);
                selected.uids.remove(i);
            }
        }
        let (last, before) = (
            selected.uids.last().copied().unwrap_or(0),
            selected.uids.len(),
        );
        for message in mailbox.messages.iter_mut().filter(|m| m.uid > last) {
            selected.uids.push(message.uid);
            if message.recent {
                message.recent = selected.read_only;
                selected.recent.push(message.uid);
            }
        }
        if selected.uids.len() > before {
            *out += &format!("* {} EXISTS\r\n", selected.uids.len());
            *out += &format!("* {} RECENT\r\n", selected.recent.len());
        }
    }

    /// SEARCH, FETCH and STORE, by message number or (`uid`) by UID.
    fn message_command(
        &mut self,
        out: &mut String,
        verb: &str,
        args: &[Value],
        uid: bool,
    ) -> Status {
        let Some(selected) = &self.selected else {
            return Err("No mailbox selected".into());
        };
        let mut mailbox = self.context.state.mail.lock();
        let done = format!("OK {}{verb} completed", if uid { "UID " } else { "" });
        if verb == "SEARCH" {
            let mut args = args.iter().peekable();
            if args
                .next_if(|a| a.atom().is_ok_and(|a| a == "CHARSET"))
                .is_some()
            {
                let charset = args.next().ok_or("CHARSET needs a name")?.text()?;
                if !["US-ASCII", "UTF-8"].contains(&charset.to_ascii_uppercase().as_str()) {
                    return Ok("NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset".into());
                }
            }
            let mut tests = Vec::new();
            while args.peek().is_some() {
                tests.push(search_key(&mut args, selected, 0)?);
            }
            if tests.is_empty() {
                return Err("SEARCH needs a search key".into());
            }
            *out += "* SEARCH";
            for (i, &id) in selected.uids.iter().enumerate() {
                let Some(message) = mailbox.get(id) else {
                    continue;
                };
                let recent = selected.recent.contains(&id);
                if tests.iter().all(|test| test(message, recent)) {
                    *out += &format!(" {}", if uid { id as usize } else { i + 1 });
                }
            }
            *out += "\r\n";
            return Ok(done);
        }
        let (Some(set), rest) = (args.first(), args.get(1..).unwrap_or_default()) else {
            return Err(format!("{verb} needs a message set"));
        };
        let indices = sequence(set.text()?, uid, &selected.uids, true)?;
        if verb == "FETCH" {
            arity(rest, 1)?;
            let mut items = match &rest[0] {
                Value::List(list) => list.iter().map(fetch_item).collect::<Result<Vec<_>, _>>()?,
                Value::Atom(a) if a.eq_ignore_ascii_case("FAST") => {
                    vec![Item::Flags, Item::Date, Item::Size]
                }
                item => vec![fetch_item(item)?],
            };
            if uid && !items.contains(&Item::Uid) {
                items.insert(0, Item::Uid);
            }
            for i in indices {
                fetch(out, &mut mailbox, selected, i, &items);
            }
            return Ok(done);
        }
        let [what, values @ ..] = rest else {
            return Err("Syntax: STORE set +FLAGS (flags)".into());
        };
        let what = what.atom()?;
        let mode = what.trim_end_matches(".SILENT");
        let flags = match values {
            [Value::List(list)] => parse_flags(list)?,
            [] => return Err("STORE needs flags".into()),
            atoms => parse_flags(atoms)?,
        };
        if !["FLAGS", "+FLAGS", "-FLAGS"].contains(&mode) {
            return Err(format!("Unknown STORE item {what}"));
        }
        if selected.read_only {
            return Ok("NO [READ-ONLY] Mailbox is read-only".into());
        }
        for i in indices {
            let id = selected.uids[i];
            let Some(message) = mailbox.get_mut(id) else {
                continue;
            };
            message.flags = match mode {
                "FLAGS" => flags,
                "+FLAGS" => message.flags | flags,
                _ => message.flags & !flags,
            };
            if !what.ends_with(".SILENT") {
                let uid = if uid {
                    format!("UID {id} ")
                } else {
                    String::new()
                };
                let flags = flag_list(message.flags, selected.recent.contains(&id));
                *out += &format!("* {} FETCH ({uid}FLAGS ({flags}))\r\n", i + 1);
            }
        }
        Ok(done)
    }
}

/// UIDs of the messages in `uids` that are marked `\Deleted`.
fn deleted(mailbox: &Mailbox, uids: &[u32]) -> Vec<u32> {
    let marked = |uid: &&u32| {
        mailbox
            .get(**uid)
            .is_some_and(|m| m.flags & mailbox::DELETED != 0)
    };
    uids.iter().filter(marked).copied().collect()
}

/// `LIST reference pattern` / `LSUB`: INBOX is the only mailbox, and always subscribed.
fn list(out: &mut String, verb: &str, args: &[Value]) -> Status {
    arity(args, 2)?;
    let pattern = format!("{}{}", args[0].text()?, args[1].text()?).to_ascii_uppercase();
    if args[1].text()?.is_empty() {
        if verb == "LIST" {
            *out += "* LIST (\\Noselect) \"/\" \"\"\r\n";
        }
    } else if matches_pattern(b"INBOX", pattern.as_bytes()) {
        *out += &format!("* {verb} (\\HasNoChildren) \"/\" INBOX\r\n");
    }
    Ok(format!("OK {verb} completed"))
}

/// LIST's wildcards: `*` matches anything, and so does `%` here, which may not cross the hierarchy
/// delimiter `/`: the lab's mailbox names have none.
fn matches_pattern(name: &[u8], pattern: &[u8]) -> bool {
    let pattern: Vec<u8> = pattern
        .iter()
        .map(|&b| if b == b'%' { b'*' } else { b })
        .collect();
    super::glob(&pattern, name, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_patterns() {
        assert!(matches_pattern(b"INBOX", b"*"));
        assert!(matches_pattern(b"INBOX", b"IN%"));
        assert!(!matches_pattern(b"INBOX", b"OUT*"));
    }
}
