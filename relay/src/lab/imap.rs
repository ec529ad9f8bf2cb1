//! The lab's IMAP4rev1 server (RFC 3501) on port 143: the session's mailbox ([`super::mailbox`]) as the
//! one folder `INBOX`, the same messages POP3 sees.
//!
//! Account: `LOGIN learner learner` (atoms, quoted strings or `{n}` literals; `learner@lab` works too);
//! after [`MAX_LOGIN_FAILURES`] failures the server says BYE.
//!
//! Commands: `CAPABILITY`, `NOOP`, `LOGOUT`; `LOGIN`; `SELECT`, `EXAMINE`, `LIST`, `LSUB`, `STATUS`,
//! `APPEND`, and (refused with NO, there is only INBOX) `CREATE`, `DELETE`, `RENAME`, `SUBSCRIBE`,
//! `UNSUBSCRIBE`; in a selected mailbox `CHECK`, `CLOSE`, `UNSELECT` (RFC 3691), `EXPUNGE`, `SEARCH`,
//! `FETCH`, `STORE`, `COPY` (to INBOX) and their `UID` forms.
//! - FETCH items: `FLAGS`, `UID`, `INTERNALDATE`, `RFC822`, `RFC822.SIZE`, `RFC822.HEADER`, `RFC822.TEXT`,
//!   `ENVELOPE`, `BODY[]`, `BODY[HEADER]`, `BODY[TEXT]`, `BODY[HEADER.FIELDS (..)]`,
//!   `BODY[HEADER.FIELDS.NOT (..)]`, each also as `BODY.PEEK[..]` and with a `<offset.count>` partial, and
//!   the macros `ALL` and `FAST`.
//! - SEARCH keys: `ALL`, `ANSWERED`, `DELETED`, `DRAFT`, `FLAGGED`, `NEW`, `OLD`, `RECENT`, `SEEN`, their
//!   `UN` forms, `FROM`, `TO`, `CC`, `BCC`, `SUBJECT`, `HEADER`, `BODY`, `TEXT`, `LARGER`, `SMALLER`,
//!   `KEYWORD`, `UNKEYWORD`, `UID`, sequence sets, `NOT`, `OR` and parenthesised lists.
//! - Flags: the five system flags; keywords are refused (PERMANENTFLAGS does not offer them).
//!
//! Other sessions' changes (mail from SMTP, deletions by POP3) are reported as EXISTS / EXPUNGE at the end
//! of commands, never during FETCH, STORE or SEARCH (RFC 3501 7.4.1).
//!
//! Limits: command lines of [`super::line::MAX_LINE`] octets, literals up to [`MAX_LITERAL`] (an APPENDed
//! message), the idle timeout (`* BYE`, then the connection closes). Deliberately missing: STARTTLS,
//! AUTHENTICATE, IDLE, date search keys, BODYSTRUCTURE and MIME part sections, keywords, other folders.

use std::io;

use tokio::net::TcpStream;

use super::line::{Line, LineConn};
use super::mailbox::{self, Flags, Mailbox, Refused};
use super::Context;

/// The largest literal taken: a message to APPEND, plus room for its command.
pub const MAX_LITERAL: usize = mailbox::MAX_MESSAGE + 1024;

/// Failed LOGINs before the server hangs up.
pub const MAX_LOGIN_FAILURES: usize = 3;

/// How deep parenthesised lists may nest (SEARCH's, FETCH's), so a client cannot recurse the parser deep.
const MAX_DEPTH: usize = 8;

const CAPABILITY: &str = "IMAP4rev1 UNSELECT";
const FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/// One parsed argument.
#[derive(Debug, PartialEq)]
enum Value {
    Atom(String),
    /// A quoted string or a literal.
    Str(String),
    List(Vec<Value>),
}

impl Value {
    /// An atom or a string, as IMAP's `astring`.
    fn text(&self) -> Result<&str, String> {
        match self {
            Value::Atom(s) | Value::Str(s) => Ok(s),
            Value::List(_) => Err("Expected a string, not a list".into()),
        }
    }

    fn atom(&self) -> Result<String, String> {
        match self {
            Value::Atom(s) => Ok(s.to_ascii_uppercase()),
            _ => Err("Expected an atom".into()),
        }
    }
}

/// The arguments of a command, in wire form (literals inline after their `{n}` CRLF).
struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Values up to the end (depth 0) or the closing parenthesis.
    fn values(&mut self, depth: usize) -> Result<Vec<Value>, String> {
        let mut values = Vec::new();
        loop {
            while self.peek() == Some(b' ') {
                self.pos += 1;
            }
            match self.peek() {
                None if depth == 0 => return Ok(values),
                None => return Err("Missing )".into()),
                Some(b')') if depth > 0 => {
                    self.pos += 1;
                    return Ok(values);
                }
                Some(b')') => return Err("Unexpected )".into()),
                Some(b'(') if depth >= MAX_DEPTH => return Err("Lists nested too deep".into()),
                Some(b'(') => {
                    self.pos += 1;
                    values.push(Value::List(self.values(depth + 1)?));
                }
                Some(b'"') => values.push(self.quoted()?),
                Some(b'{') => values.push(self.literal()?),
                Some(_) => values.push(self.atom()?),
            }
        }
    }

    fn quoted(&mut self) -> Result<Value, String> {
        let mut text = Vec::new();
        self.pos += 1;
        loop {
            match self.peek() {
                Some(b'"') => break,
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => text.push(c),
                        _ => return Err("Bad escape in quoted string".into()),
                    }
                }
                Some(b'\r' | b'\n') | None => return Err("Unterminated quoted string".into()),
                Some(c) => text.push(c),
            }
            self.pos += 1;
        }
        self.pos += 1;
        Ok(Value::Str(String::from_utf8_lossy(&text).into_owned()))
    }

    fn literal(&mut self) -> Result<Value, String> {
        let rest = &self.bytes[self.pos + 1..];
        let close = rest.iter().position(|&b| b == b'}').ok_or("Bad literal")?;
        let n: usize = std::str::from_utf8(&rest[..close])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("Bad literal size")?;
        let start = self.pos + 1 + close + 1;
        if self.bytes.get(start..start + 2) != Some(b"\r\n") {
            return Err("Bad literal".into());
        }
        let text = self
            .bytes
            .get(start + 2..start + 2 + n)
            .ok_or("Short literal")?;
        self.pos = start + 2 + n;
        Ok(Value::Str(String::from_utf8_lossy(text).into_owned()))
    }

    /// An atom; a `[...]` inside it may hold spaces and parentheses (`BODY[HEADER.FIELDS (FROM)]`).
    fn atom(&mut self) -> Result<Value, String> {
        let start = self.pos;
        let mut in_brackets = false;
        while let Some(c) = self.peek() {
            match c {
                b'[' => in_brackets = true,
                b']' => in_brackets = false,
                b' ' | b'(' | b')' if !in_brackets => break,
                b'"' | b'{' | b'\r' | b'\n' | 0..=31 | 127.. if !in_brackets => {
                    return Err("Bad character in atom".into())
                }
                _ => {}
            }
            self.pos += 1;
        }
        if in_brackets {
            return Err("Missing ]".into());
        }
        Ok(Value::Atom(
            String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned(),
        ))
    }
}

/// What reading a command gave.
enum Input {
    Command(Vec<u8>),
    /// A literal over [`MAX_LITERAL`] was announced; the command so far (for its tag).
    TooBig(Vec<u8>),
    TooLong,
    Closed,
    TimedOut,
}

/// Reads a command line and the literals it announces, answering each `{n}` with a continuation.
async fn read_command(conn: &mut LineConn) -> io::Result<Input> {
    let mut command = Vec::new();
    loop {
        let line = match conn.read_line().await? {
            Line::Text(line) => line,
            Line::TooLong => return Ok(Input::TooLong),
            Line::Eof => return Ok(Input::Closed),
            Line::TimedOut => return Ok(Input::TimedOut),
        };
        command.extend_from_slice(line.as_bytes());
        let size = line
            .strip_suffix('}')
            .and_then(|l| l.rsplit_once('{'))
            .and_then(|(_, n)| n.parse::<usize>().ok());
        let Some(size) = size else {
            return Ok(Input::Command(command));
        };
        if command.len() + size > MAX_LITERAL {
            return Ok(Input::TooBig(command));
        }
        conn.send_line("+ Ready for literal data").await?;
        let Some(bytes) = conn.read_exact(size).await? else {
            return Ok(Input::Closed);
        };
        command.extend_from_slice(b"\r\n");
        command.extend_from_slice(&bytes);
    }
}

/// The mailbox a session has selected.
struct Selected {
    read_only: bool,
    /// UID of each message number (number = index + 1), as this session was told.
    uids: Vec<u32>,
    /// Messages that are `\Recent` for this session.
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
    conn.send_line(&format!(
        "* OK [CAPABILITY {CAPABILITY}] lab IMAP4rev1 server ready, log in as learner / learner"
    ))
    .await?;
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
                let tag = String::from_utf8_lossy(&command);
                let tag = tag.split(' ').next().unwrap_or("*");
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
        let mut out = Vec::new();
        let Some(space) = command.iter().position(|&b| b == b' ') else {
            conn.send_line("* BAD Expected a tag and a command").await?;
            continue;
        };
        let tag = String::from_utf8_lossy(&command[..space]).into_owned();
        if tag.is_empty()
            || tag
                .bytes()
                .any(|b| b"(){%*\"\\+".contains(&b) || b <= b' ' || b > 126)
        {
            conn.send_line("* BAD Invalid tag").await?;
            continue;
        }
        let mut parser = Parser {
            bytes: &command[space + 1..],
            pos: 0,
        };
        let status = match parser.values(0) {
            Ok(args) if args.is_empty() => Err("Missing command".into()),
            Ok(mut args) => match args.remove(0).atom() {
                Ok(verb) => session.run(&mut out, &verb, args),
                Err(_) => Err("Command must be an atom".into()),
            },
            Err(why) => Err(why),
        };
        let status = match status {
            Ok(status) => status,
            Err(why) => format!("BAD {why}"),
        };
        out.extend_from_slice(format!("{tag} {status}\r\n").as_bytes());
        let bye = out.starts_with(b"* BYE");
        conn.send(&out).await?;
        if bye {
            return Ok(());
        }
    }
}

fn put(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
}

fn arity(args: &[Value], n: usize) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!("Expected {n} arguments"))
    }
}

fn is_inbox(name: &str) -> bool {
    name.eq_ignore_ascii_case("INBOX")
}

impl Session {
    fn run(&mut self, out: &mut Vec<u8>, verb: &str, args: Vec<Value>) -> Status {
        let any = matches!(verb, "CAPABILITY" | "NOOP" | "LOGOUT");
        let unauthenticated = matches!(verb, "LOGIN" | "AUTHENTICATE" | "STARTTLS");
        let selected = matches!(
            verb,
            "CHECK"
                | "CLOSE"
                | "UNSELECT"
                | "EXPUNGE"
                | "SEARCH"
                | "FETCH"
                | "STORE"
                | "COPY"
                | "UID"
        );
        if !any && !unauthenticated && !self.logged_in {
            return Err("Log in first".into());
        }
        if unauthenticated && self.logged_in {
            return Err("Already logged in".into());
        }
        if selected && self.selected.is_none() {
            return Err("No mailbox selected".into());
        }
        let status = match verb {
            "CAPABILITY" => arity(&args, 0).map(|()| {
                put(out, &format!("* CAPABILITY {CAPABILITY}\r\n"));
                "OK CAPABILITY completed".into()
            }),
            "NOOP" | "CHECK" => arity(&args, 0).map(|()| format!("OK {verb} completed")),
            "LOGOUT" => arity(&args, 0).map(|()| {
                put(out, "* BYE lab IMAP4rev1 server logging out\r\n");
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
            "CLOSE" | "UNSELECT" => arity(&args, 0).map(|()| {
                if let Some(selected) = self.selected.take() {
                    if verb == "CLOSE" && !selected.read_only {
                        let mut mailbox = self.context.state.mail.lock();
                        let gone = deleted(&mailbox, &selected.uids);
                        mailbox.remove(&gone);
                    }
                }
                format!("OK {verb} completed")
            }),
            "EXPUNGE" => arity(&args, 0).and_then(|()| self.expunge(out)),
            "SEARCH" | "FETCH" | "STORE" | "COPY" => self.message_command(out, verb, &args, false),
            "UID" => match args.split_first() {
                Some((sub, rest)) => match sub.atom()?.as_str() {
                    sub @ ("SEARCH" | "FETCH" | "STORE" | "COPY") => {
                        self.message_command(out, sub, rest, true)
                    }
                    _ => Err("Unknown UID command".into()),
                },
                None => Err("UID needs a command".into()),
            },
            _ => Err("Unknown command".into()),
        };
        // FETCH, STORE and SEARCH must not renumber messages under the client (RFC 3501 7.4.1).
        self.sync(out, !matches!(verb, "FETCH" | "STORE" | "SEARCH"));
        status
    }

    fn login(&mut self, out: &mut Vec<u8>, args: &[Value]) -> Status {
        arity(args, 2)?;
        if mailbox::check_login(args[0].text()?, args[1].text()?) {
            self.logged_in = true;
            return Ok(format!("OK [CAPABILITY {CAPABILITY}] LOGIN completed"));
        }
        self.failures += 1;
        if self.failures >= MAX_LOGIN_FAILURES {
            put(out, "* BYE Too many failed logins\r\n");
        }
        Ok("NO [AUTHENTICATIONFAILED] Invalid credentials (try learner / learner)".into())
    }

    fn select(&mut self, out: &mut Vec<u8>, read_only: bool, args: &[Value]) -> Status {
        arity(args, 1)?;
        // A failed SELECT still leaves the previous mailbox (RFC 3501 6.3.1).
        self.selected = None;
        if !is_inbox(args[0].text()?) {
            return Ok("NO [NONEXISTENT] No such mailbox; the lab has only INBOX".into());
        }
        let mut mailbox = self.context.state.mail.lock();
        let uids: Vec<u32> = mailbox.messages.iter().map(|m| m.uid).collect();
        let mut recent = Vec::new();
        for message in mailbox.messages.iter_mut().filter(|m| m.recent) {
            // EXAMINE changes nothing, not even who has seen a message as new.
            message.recent = read_only;
            recent.push(message.uid);
        }
        put(out, &format!("* FLAGS ({FLAGS})\r\n"));
        put(
            out,
            &format!("* {} EXISTS\r\n* {} RECENT\r\n", uids.len(), recent.len()),
        );
        if let Some(i) = mailbox
            .messages
            .iter()
            .position(|m| m.flags & mailbox::SEEN == 0)
        {
            put(
                out,
                &format!("* OK [UNSEEN {}] First unseen message\r\n", i + 1),
            );
        }
        put(
            out,
            &format!("* OK [UIDVALIDITY {}] UIDs valid\r\n", mailbox.uid_validity),
        );
        put(
            out,
            &format!(
                "* OK [UIDNEXT {}] Predicted next UID\r\n",
                mailbox.uid_next()
            ),
        );
        let permanent = if read_only { "" } else { FLAGS };
        put(
            out,
            &format!("* OK [PERMANENTFLAGS ({permanent})] Limited\r\n"),
        );
        drop(mailbox);
        self.selected = Some(Selected {
            read_only,
            uids,
            recent,
        });
        let (mode, verb) = match read_only {
            true => ("READ-ONLY", "EXAMINE"),
            false => ("READ-WRITE", "SELECT"),
        };
        Ok(format!("OK [{mode}] {verb} completed"))
    }

    fn status(&mut self, out: &mut Vec<u8>, args: &[Value]) -> Status {
        arity(args, 2)?;
        let Value::List(items) = &args[1] else {
            return Err("STATUS needs a list of items".into());
        };
        if !is_inbox(args[0].text()?) {
            return Ok("NO [NONEXISTENT] No such mailbox; the lab has only INBOX".into());
        }
        let mailbox = self.context.state.mail.lock();
        let mut answer = Vec::new();
        for item in items {
            let item = item.atom()?;
            let value = match item.as_str() {
                "MESSAGES" => mailbox.messages.len() as u32,
                "RECENT" => mailbox.messages.iter().filter(|m| m.recent).count() as u32,
                "UIDNEXT" => mailbox.uid_next(),
                "UIDVALIDITY" => mailbox.uid_validity,
                "UNSEEN" => mailbox
                    .messages
                    .iter()
                    .filter(|m| m.flags & mailbox::SEEN == 0)
                    .count() as u32,
                _ => return Err(format!("Unknown STATUS item {item}")),
            };
            answer.push(format!("{item} {value}"));
        }
        put(out, &format!("* STATUS INBOX ({})\r\n", answer.join(" ")));
        Ok("OK STATUS completed".into())
    }

    /// `APPEND mailbox [(flags)] [date] message`; the date is ignored (the message arrives now).
    fn append(&mut self, args: &[Value]) -> Status {
        let (Some(name), Some(Value::Str(message)), true) =
            (args.first(), args.last(), args.len() >= 2)
        else {
            return Err("Syntax: APPEND mailbox [(flags)] [date] {size}".into());
        };
        let mut flags = 0;
        for middle in &args[1..args.len() - 1] {
            match middle {
                Value::List(list) => flags = parse_flags(list)?,
                Value::Str(_) => {}
                Value::Atom(_) => {
                    return Err("Syntax: APPEND mailbox [(flags)] [date] {size}".into())
                }
            }
        }
        if !is_inbox(name.text()?) {
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

    fn expunge(&mut self, out: &mut Vec<u8>) -> Status {
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
                put(out, &format!("* {} EXPUNGE\r\n", i + 1));
                selected.uids.remove(i);
            }
        }
        Ok("OK EXPUNGE completed".into())
    }

    /// Tells the client about other sessions' changes: new messages always, removed ones if `expunge`.
    fn sync(&mut self, out: &mut Vec<u8>, expunge: bool) {
        let Some(selected) = &mut self.selected else {
            return;
        };
        let mut mailbox = self.context.state.mail.lock();
        if expunge {
            for i in (0..selected.uids.len()).rev() {
                if mailbox.get(selected.uids[i]).is_none() {
                    put(out, &format!("* {} EXPUNGE\r\n", i + 1));
                    selected.uids.remove(i);
                }
            }
        }
        let last = selected.uids.last().copied().unwrap_or(0);
        let before = selected.uids.len();
        for message in mailbox.messages.iter_mut().filter(|m| m.uid > last) {
            selected.uids.push(message.uid);
            if message.recent {
                message.recent = selected.read_only;
                selected.recent.push(message.uid);
            }
        }
        if selected.uids.len() > before {
            put(out, &format!("* {} EXISTS\r\n", selected.uids.len()));
            put(out, &format!("* {} RECENT\r\n", selected.recent.len()));
        }
    }

    /// SEARCH, FETCH, STORE, COPY, by message number or (`uid`) by UID.
    fn message_command(
        &mut self,
        out: &mut Vec<u8>,
        verb: &str,
        args: &[Value],
        uid: bool,
    ) -> Status {
        let Some(selected) = &self.selected else {
            return Err("No mailbox selected".into());
        };
        let mut mailbox = self.context.state.mail.lock();
        let prefix = if uid { "UID " } else { "" };
        if verb == "SEARCH" {
            let mut args = args.iter().peekable();
            if let Some(Value::Atom(a)) = args.peek() {
                if a.eq_ignore_ascii_case("CHARSET") {
                    args.next();
                    let charset = args.next().ok_or("CHARSET needs a name")?.text()?;
                    if !["US-ASCII", "UTF-8"]
                        .iter()
                        .any(|c| c.eq_ignore_ascii_case(charset))
                    {
                        return Ok("NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset".into());
                    }
                }
            }
            let mut keys = Vec::new();
            while args.peek().is_some() {
                keys.push(search_key(&mut args, selected, &mailbox, 0)?);
            }
            if keys.is_empty() {
                return Err("SEARCH needs a search key".into());
            }
            let key = Key::And(keys);
            put(out, "* SEARCH");
            for (i, &id) in selected.uids.iter().enumerate() {
                let Some(message) = mailbox.get(id) else {
                    continue;
                };
                if key.matches(message, selected) {
                    put(out, &format!(" {}", if uid { id } else { i as u32 + 1 }));
                }
            }
            put(out, "\r\n");
            return Ok(format!("OK {prefix}SEARCH completed"));
        }
        let (Some(set), Some(rest)) = (args.first(), args.get(1..)) else {
            return Err(format!("{verb} needs a message set"));
        };
        let indices = sequence(set.text()?, uid, &selected.uids, true)?;
        match verb {
            "FETCH" => {
                arity(rest, 1)?;
                let mut items = match &rest[0] {
                    Value::List(list) => list
                        .iter()
                        .map(|v| fetch_item(&v.atom()?))
                        .collect::<Result<Vec<_>, _>>()?,
                    Value::Atom(a) => match a.to_ascii_uppercase().as_str() {
                        "ALL" => vec![Item::Flags, Item::Date, Item::Size, Item::Envelope],
                        "FAST" => vec![Item::Flags, Item::Date, Item::Size],
                        "FULL" => {
                            return Err("FULL needs BODY, which the lab does not support".into())
                        }
                        a => vec![fetch_item(a)?],
                    },
                    Value::Str(_) => return Err("Bad FETCH items".into()),
                };
                if uid && !items.contains(&Item::Uid) {
                    items.insert(0, Item::Uid);
                }
                for i in indices {
                    fetch(out, &mut mailbox, selected, i, &items);
                }
                Ok(format!("OK {prefix}FETCH completed"))
            }
            "STORE" => {
                let (Some(what), Some(values)) = (rest.first(), rest.get(1..)) else {
                    return Err("Syntax: STORE set +FLAGS (flags)".into());
                };
                let what = what.atom()?;
                let silent = what.ends_with(".SILENT");
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
                    if !silent {
                        let uid_item = if uid {
                            format!("UID {id} ")
                        } else {
                            String::new()
                        };
                        let flags = flag_list(message.flags, selected.recent.contains(&id));
                        put(
                            out,
                            &format!("* {} FETCH ({uid_item}FLAGS ({flags}))\r\n", i + 1),
                        );
                    }
                }
                Ok(format!("OK {prefix}STORE completed"))
            }
            _ => {
                arity(rest, 1)?;
                if !is_inbox(rest[0].text()?) {
                    return Ok("NO [TRYCREATE] No such mailbox; the lab has only INBOX".into());
                }
                let copies: Vec<_> = indices
                    .iter()
                    .filter_map(|&i| mailbox.get(selected.uids[i]))
                    .map(|m| (m.text.clone(), m.flags))
                    .collect();
                let size: usize = copies.iter().map(|(text, _)| text.len()).sum();
                if mailbox.messages.len() + copies.len() > mailbox::MAX_MESSAGES
                    || mailbox.bytes() + size > mailbox::MAX_BYTES
                {
                    return Ok("NO [OVERQUOTA] Mailbox full".into());
                }
                for (text, flags) in copies {
                    let _ = mailbox.deliver(&text, flags);
                }
                Ok(format!("OK {prefix}COPY completed"))
            }
        }
    }
}

/// UIDs of the messages in `uids` that are marked `\Deleted`.
fn deleted(mailbox: &Mailbox, uids: &[u32]) -> Vec<u32> {
    let marked = |&uid: &u32| {
        mailbox
            .get(uid)
            .is_some_and(|m| m.flags & mailbox::DELETED != 0)
    };
    uids.iter().copied().filter(marked).collect()
}

/// `LIST reference pattern` / `LSUB`: INBOX is the only mailbox, and always subscribed.
fn list(out: &mut Vec<u8>, verb: &str, args: &[Value]) -> Status {
    arity(args, 2)?;
    let pattern = format!("{}{}", args[0].text()?, args[1].text()?);
    if args[1].text()?.is_empty() {
        if verb == "LIST" {
            put(out, "* LIST (\\Noselect) \"/\" \"\"\r\n");
        }
    } else if matches_pattern(b"INBOX", pattern.to_ascii_uppercase().as_bytes()) {
        put(out, &format!("* {verb} (\\HasNoChildren) \"/\" INBOX\r\n"));
    }
    Ok(format!("OK {verb} completed"))
}

/// LIST's wildcards: `*` matches anything, `%` anything but the hierarchy delimiter `/`.
fn matches_pattern(name: &[u8], pattern: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((&w @ (b'*' | b'%'), rest)) => (0..=name.len())
            .take_while(|&i| w == b'*' || !name[..i].contains(&b'/'))
            .any(|i| matches_pattern(&name[i..], rest)),
        Some((&c, rest)) => name.first() == Some(&c) && matches_pattern(&name[1..], rest),
    }
}

/// The indices (into `uids`) named by a sequence set like `1,3:5,7:*`, ascending. Message numbers past
/// the end are an error when `strict` (FETCH, STORE); UIDs that do not exist are simply not there.
fn sequence(set: &str, uid: bool, uids: &[u32], strict: bool) -> Result<Vec<usize>, String> {
    let largest = if uid {
        uids.last().copied().unwrap_or(0)
    } else {
        uids.len() as u32
    };
    let number = |s: &str| -> Result<u32, String> {
        if s == "*" {
            return Ok(largest);
        }
        match s.parse::<u32>() {
            Ok(n) if n >= 1 && (uid || !strict || n <= largest) => Ok(n),
            _ => Err(format!("Invalid message number or set: {set}")),
        }
    };
    let mut found = vec![false; uids.len()];
    for part in set.split(',') {
        let (a, b) = part.split_once(':').unwrap_or((part, part));
        let (a, b) = (number(a)?, number(b)?);
        let (low, high) = (a.min(b), a.max(b));
        for (i, &id) in uids.iter().enumerate() {
            let n = if uid { id } else { i as u32 + 1 };
            found[i] |= n >= low && n <= high;
        }
    }
    Ok((0..uids.len()).filter(|&i| found[i]).collect())
}

/// Flags from a list of atoms; `\Recent` is ignored (no client may set it).
fn parse_flags(values: &[Value]) -> Result<Flags, String> {
    let mut flags = 0;
    for value in values {
        let name = value.atom()?;
        if name == "\\RECENT" {
            continue;
        }
        let Some((bit, _)) = mailbox::FLAG_NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(&name))
        else {
            return Err(format!("Unknown flag {name}; the lab keeps only {FLAGS}"));
        };
        flags |= bit;
    }
    Ok(flags)
}

fn flag_list(flags: Flags, recent: bool) -> String {
    let mut names: Vec<&str> = mailbox::FLAG_NAMES
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    if recent {
        names.push("\\Recent");
    }
    names.join(" ")
}

/// One FETCH item.
#[derive(Debug, PartialEq)]
enum Item {
    Flags,
    Uid,
    Date,
    Size,
    Envelope,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    Body {
        peek: bool,
        section: Section,
        partial: Option<(usize, usize)>,
    },
}

#[derive(Debug, PartialEq)]
enum Section {
    All,
    Header,
    Text,
    Fields { not: bool, names: Vec<String> },
}

fn fetch_item(name: &str) -> Result<Item, String> {
    let name = name.to_ascii_uppercase();
    Ok(match name.as_str() {
        "FLAGS" => Item::Flags,
        "UID" => Item::Uid,
        "INTERNALDATE" => Item::Date,
        "RFC822.SIZE" => Item::Size,
        "ENVELOPE" => Item::Envelope,
        "RFC822" => Item::Rfc822,
        "RFC822.HEADER" => Item::Rfc822Header,
        "RFC822.TEXT" => Item::Rfc822Text,
        _ => {
            let (peek, rest) = match (name.strip_prefix("BODY.PEEK["), name.strip_prefix("BODY[")) {
                (Some(rest), _) => (true, rest),
                (None, Some(rest)) => (false, rest),
                _ => return Err(format!("Unknown or unsupported FETCH item {name}")),
            };
            let (section, partial) = rest.split_once(']').ok_or("Missing ]")?;
            let partial = match partial {
                "" => None,
                p => {
                    let (offset, count) = p
                        .strip_prefix('<')
                        .and_then(|p| p.strip_suffix('>'))
                        .and_then(|p| p.split_once('.'))
                        .ok_or("Bad partial, expected <offset.count>")?;
                    let parse = |n: &str| n.parse::<usize>().map_err(|_| "Bad partial number");
                    Some((parse(offset)?, parse(count)?))
                }
            };
            let section = match section.split_once(' ') {
                None if section.is_empty() => Section::All,
                None if section == "HEADER" => Section::Header,
                None if section == "TEXT" => Section::Text,
                Some((kind @ ("HEADER.FIELDS" | "HEADER.FIELDS.NOT"), names)) => {
                    let names = names
                        .trim()
                        .strip_prefix('(')
                        .and_then(|n| n.strip_suffix(')'))
                        .ok_or("Header field names must be a list")?;
                    let names: Vec<String> = names
                        .split_whitespace()
                        .map(|n| n.trim_matches('"').to_string())
                        .collect();
                    if names.is_empty() {
                        return Err("Empty header field list".into());
                    }
                    Section::Fields {
                        not: kind.ends_with(".NOT"),
                        names,
                    }
                }
                _ => return Err(format!("Unsupported section [{section}]")),
            };
            Item::Body {
                peek,
                section,
                partial,
            }
        }
    })
}

/// Writes one `* n FETCH (...)` for the message at `index`; a message gone meanwhile is skipped.
fn fetch(
    out: &mut Vec<u8>,
    mailbox: &mut Mailbox,
    selected: &Selected,
    index: usize,
    items: &[Item],
) {
    let uid = selected.uids[index];
    let Some(message) = mailbox.get_mut(uid) else {
        return;
    };
    let text = message.text.clone();
    let (header, body) = mailbox::split(&text);
    let reads = |item: &Item| {
        matches!(
            item,
            Item::Rfc822 | Item::Rfc822Text | Item::Body { peek: false, .. }
        )
    };
    let mut items: Vec<&Item> = items.iter().collect();
    if !selected.read_only && items.iter().any(|i| reads(i)) && message.flags & mailbox::SEEN == 0 {
        message.flags |= mailbox::SEEN;
        // The client learns of the flag it did not set itself (RFC 3501 6.4.5).
        if !items.contains(&&Item::Flags) {
            items.push(&Item::Flags);
        }
    }
    let recent = selected.recent.contains(&uid);
    put(out, &format!("* {} FETCH (", index + 1));
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            put(out, " ");
        }
        match item {
            Item::Flags => put(
                out,
                &format!("FLAGS ({})", flag_list(message.flags, recent)),
            ),
            Item::Uid => put(out, &format!("UID {uid}")),
            Item::Date => put(
                out,
                &format!("INTERNALDATE \"{}\"", mailbox::imap_date(message.arrived)),
            ),
            Item::Size => put(out, &format!("RFC822.SIZE {}", text.len())),
            Item::Envelope => {
                put(out, "ENVELOPE ");
                envelope(out, &text);
            }
            Item::Rfc822 => literal(out, "RFC822", text.as_bytes()),
            Item::Rfc822Header => literal(out, "RFC822.HEADER", header.as_bytes()),
            Item::Rfc822Text => literal(out, "RFC822.TEXT", body.as_bytes()),
            Item::Body {
                section, partial, ..
            } => {
                let (name, content) = match section {
                    Section::All => (String::new(), text.to_string()),
                    Section::Header => ("HEADER".into(), header.to_string()),
                    Section::Text => ("TEXT".into(), body.to_string()),
                    Section::Fields { not, names } => {
                        let wanted = |f: &&str| {
                            names
                                .iter()
                                .any(|n| n.eq_ignore_ascii_case(mailbox::field_name(f)))
                                != *not
                        };
                        let kind = if *not {
                            "HEADER.FIELDS.NOT"
                        } else {
                            "HEADER.FIELDS"
                        };
                        let picked: String =
                            mailbox::fields(header).into_iter().filter(wanted).collect();
                        (format!("{kind} ({})", names.join(" ")), picked + "\r\n")
                    }
                };
                let bytes = content.as_bytes();
                match partial {
                    None => literal(out, &format!("BODY[{name}]"), bytes),
                    Some((offset, count)) => {
                        let start = (*offset).min(bytes.len());
                        let end = start.saturating_add(*count).min(bytes.len());
                        literal(out, &format!("BODY[{name}]<{offset}>"), &bytes[start..end]);
                    }
                }
            }
        }
    }
    put(out, ")\r\n");
}

fn literal(out: &mut Vec<u8>, name: &str, bytes: &[u8]) {
    put(out, &format!("{name} {{{}}}\r\n", bytes.len()));
    out.extend_from_slice(bytes);
}

/// An nstring: NIL, a quoted string, or a literal when the text has line ends, quotes or 8-bit bytes.
fn string(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => put(out, "NIL"),
        Some(t)
            if t.bytes()
                .all(|b| (b' '..127).contains(&b) && b != b'"' && b != b'\\') =>
        {
            put(out, &format!("\"{t}\""))
        }
        Some(t) => {
            put(out, &format!("{{{}}}\r\n", t.len()));
            put(out, t);
        }
    }
}

/// ENVELOPE: date, subject, from, sender, reply-to, to, cc, bcc, in-reply-to, message-id.
fn envelope(out: &mut Vec<u8>, text: &str) {
    let get = |name: &str| mailbox::field(text, name);
    put(out, "(");
    string(out, get("Date").as_deref());
    put(out, " ");
    string(out, get("Subject").as_deref());
    let from = get("From");
    for name in ["From", "Sender", "Reply-To", "To", "Cc", "Bcc"] {
        put(out, " ");
        // Sender and Reply-To default to From (RFC 3501 7.4.2).
        let value = get(name).or_else(|| {
            matches!(name, "Sender" | "Reply-To")
                .then(|| from.clone())
                .flatten()
        });
        addresses(out, value.as_deref());
    }
    put(out, " ");
    string(out, get("In-Reply-To").as_deref());
    put(out, " ");
    string(out, get("Message-ID").as_deref());
    put(out, ")");
}

/// An address list as `((name NIL mailbox host) ...)`; group syntax is not understood.
fn addresses(out: &mut Vec<u8>, value: Option<&str>) {
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut start) = (0, false, 0);
    let value = value.unwrap_or("");
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    let parts: Vec<&str> = parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        return put(out, "NIL");
    }
    put(out, "(");
    for part in parts {
        let (name, address) = match part.rsplit_once('<') {
            Some((name, address)) => (name.trim().trim_matches('"'), address.trim_end_matches('>')),
            None => ("", part),
        };
        let (local, host) = address.rsplit_once('@').unwrap_or((address, ""));
        put(out, "(");
        string(out, (!name.is_empty()).then_some(name));
        put(out, " NIL ");
        string(out, Some(local));
        put(out, " ");
        string(out, (!host.is_empty()).then_some(host));
        put(out, ")");
    }
    put(out, ")");
}

/// A SEARCH key.
enum Key {
    All,
    /// Has (`true`) or lacks (`false`) the flags.
    Flag(Flags, bool),
    Recent(bool),
    /// `NEW`: recent and not seen.
    New,
    Header(String, String),
    Body(String),
    Text(String),
    Larger(usize),
    Smaller(usize),
    Uids(Vec<u32>),
    Not(Box<Key>),
    Or(Box<Key>, Box<Key>),
    And(Vec<Key>),
}

fn search_key<'a>(
    args: &mut impl Iterator<Item = &'a Value>,
    selected: &Selected,
    mailbox: &Mailbox,
    depth: usize,
) -> Result<Key, String> {
    if depth > MAX_DEPTH {
        return Err("Search keys nested too deep".into());
    }
    let mut next = |what: &str| args.next().ok_or(format!("{what} needs an argument"));
    let key = match next("SEARCH")? {
        Value::List(list) => {
            let mut inner = list.iter();
            let mut keys = Vec::new();
            while let Some(key) = search_key_peek(&mut inner, selected, mailbox, depth)? {
                keys.push(key);
            }
            return Ok(Key::And(keys));
        }
        Value::Str(_) => return Err("Expected a search key".into()),
        Value::Atom(atom) => atom.to_ascii_uppercase(),
    };
    let uids_of =
        |indices: Vec<usize>| Key::Uids(indices.iter().map(|&i| selected.uids[i]).collect());
    let flag = |name: &str| {
        mailbox::FLAG_NAMES
            .iter()
            .find(|(_, n)| n[1..].eq_ignore_ascii_case(name))
            .map(|(b, _)| *b)
    };
    Ok(match key.as_str() {
        "ALL" => Key::All,
        "NEW" => Key::New,
        "OLD" => Key::Recent(false),
        "RECENT" => Key::Recent(true),
        "ANSWERED" | "DELETED" | "DRAFT" | "FLAGGED" | "SEEN" => {
            Key::Flag(flag(key.as_str()).unwrap_or(0), true)
        }
        k @ ("UNANSWERED" | "UNDELETED" | "UNDRAFT" | "UNFLAGGED" | "UNSEEN") => {
            Key::Flag(flag(&k[2..]).unwrap_or(0), false)
        }
        "FROM" | "TO" | "CC" | "BCC" | "SUBJECT" => {
            Key::Header(key.clone(), next(&key)?.text()?.to_lowercase())
        }
        "HEADER" => {
            let name = next(&key)?.text()?.to_string();
            Key::Header(name, next(&key)?.text()?.to_lowercase())
        }
        "BODY" => Key::Body(next(&key)?.text()?.to_lowercase()),
        "TEXT" => Key::Text(next(&key)?.text()?.to_lowercase()),
        "LARGER" | "SMALLER" => {
            let n = next(&key)?
                .text()?
                .parse()
                .map_err(|_| format!("{key} needs a number"))?;
            if key == "LARGER" {
                Key::Larger(n)
            } else {
                Key::Smaller(n)
            }
        }
        "KEYWORD" | "UNKEYWORD" => {
            next(&key)?;
            // No message has keywords in the lab.
            if key == "KEYWORD" {
                Key::Not(Box::new(Key::All))
            } else {
                Key::All
            }
        }
        "UID" => uids_of(sequence(next(&key)?.text()?, true, &selected.uids, false)?),
        "NOT" => Key::Not(Box::new(search_key(args, selected, mailbox, depth + 1)?)),
        "OR" => {
            let a = search_key(args, selected, mailbox, depth + 1)?;
            Key::Or(
                Box::new(a),
                Box::new(search_key(args, selected, mailbox, depth + 1)?),
            )
        }
        k if k.starts_with(|c: char| c.is_ascii_digit() || c == '*') => {
            uids_of(sequence(k, false, &selected.uids, false)?)
        }
        k => return Err(format!("Unknown or unsupported search key {k}")),
    })
}

/// The next key of a parenthesised list, or `None` at its end.
fn search_key_peek<'a>(
    args: &mut std::slice::Iter<'a, Value>,
    selected: &Selected,
    mailbox: &Mailbox,
    depth: usize,
) -> Result<Option<Key>, String> {
    if args.len() == 0 {
        return Ok(None);
    }
    search_key(args, selected, mailbox, depth + 1).map(Some)
}

impl Key {
    fn matches(&self, message: &mailbox::Message, selected: &Selected) -> bool {
        let recent = selected.recent.contains(&message.uid);
        match self {
            Key::All => true,
            Key::Flag(flags, has) => (message.flags & flags != 0) == *has,
            Key::Recent(want) => recent == *want,
            Key::New => recent && message.flags & mailbox::SEEN == 0,
            Key::Header(name, needle) => mailbox::field(&message.text, name)
                .is_some_and(|value| value.to_lowercase().contains(needle.as_str())),
            Key::Body(needle) => mailbox::split(&message.text)
                .1
                .to_lowercase()
                .contains(needle.as_str()),
            Key::Text(needle) => message.text.to_lowercase().contains(needle.as_str()),
            Key::Larger(n) => message.text.len() > *n,
            Key::Smaller(n) => message.text.len() < *n,
            Key::Uids(uids) => uids.contains(&message.uid),
            Key::Not(key) => !key.matches(message, selected),
            Key::Or(a, b) => a.matches(message, selected) || b.matches(message, selected),
            Key::And(keys) => keys.iter().all(|k| k.matches(message, selected)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Value>, String> {
        Parser {
            bytes: text.as_bytes(),
            pos: 0,
        }
        .values(0)
    }

    #[test]
    fn parses_arguments() {
        use Value::*;
        assert_eq!(
            parse("FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]<0.10>)"),
            Ok(vec![
                Atom("FETCH".into()),
                Atom("1:*".into()),
                List(vec![
                    Atom("FLAGS".into()),
                    Atom("BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]<0.10>".into())
                ]),
            ])
        );
        assert_eq!(
            parse("LOGIN {7}\r\nlearner \"a \\\"b\\\\\""),
            Ok(vec![
                Atom("LOGIN".into()),
                Str("learner".into()),
                Str("a \"b\\".into())
            ])
        );
        assert!(parse("LOGIN \"open").is_err());
        assert!(parse("LOGIN {9}\r\nshort").is_err());
        assert!(parse("X ((((((((((1))))))))))").is_err());
    }

    #[test]
    fn sequence_sets() {
        let uids = [3, 5, 9];
        assert_eq!(sequence("1", false, &uids, true), Ok(vec![0]));
        assert_eq!(sequence("2:*", false, &uids, true), Ok(vec![1, 2]));
        assert_eq!(sequence("*:1", false, &uids, true), Ok(vec![0, 1, 2]));
        assert!(sequence("4", false, &uids, true).is_err());
        assert_eq!(sequence("4:7", true, &uids, true), Ok(vec![1]));
        assert_eq!(sequence("10:*", true, &uids, true), Ok(vec![2]));
        assert!(sequence("0", false, &uids, true).is_err());
        assert!(sequence("a", true, &uids, true).is_err());
    }

    #[test]
    fn list_patterns() {
        assert!(matches_pattern(b"INBOX", b"*"));
        assert!(matches_pattern(b"INBOX", b"%"));
        assert!(matches_pattern(b"INBOX", b"IN%"));
        assert!(!matches_pattern(b"INBOX", b"OUT*"));
    }
}
