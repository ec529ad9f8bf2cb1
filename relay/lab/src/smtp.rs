//! The lab's SMTP server (RFC 5321) on port 25: it takes mail for `@lab` addresses into the session's
//! mailbox ([`super::mailbox`]), where POP3 and IMAP4 read it.
//!
//! Commands: `EHLO`/`HELO`, `MAIL FROM:<...>` (parameters `SIZE=` and `BODY=7BIT|8BITMIME`),
//! `RCPT TO:<...>`, `DATA` (dot-unstuffed), `RSET`, `NOOP`, `VRFY` (always 252), `HELP`, `QUIT`, and
//! `AUTH PLAIN` / `AUTH LOGIN` (`learner` / `learner`). EHLO advertises `SIZE`, `8BITMIME`, `PIPELINING`
//! (replies go out in order, one per command, so pipelined commands just work) and `AUTH PLAIN LOGIN`.
//!
//! Recipients: any `@lab` address (domain in any case) and the bare `<postmaster>`; everything else is
//! refused with 550 "relaying denied" — the lab sends nothing to the internet. Every accepted message goes,
//! once, into the lab's one mailbox (see the mailbox module), with `Return-Path:` and `Received:` added.
//! Authentication is offered for lessons about it but not required.
//!
//! Limits: a message of at most [`mailbox::MAX_MESSAGE`] (552), a mailbox that is full (452), at most
//! [`MAX_RECIPIENTS`] per message (452), lines of at most [`super::line::MAX_LINE`] (500), and the idle
//! timeout (421, then the connection closes).
//!
//! Deliberately missing: STARTTLS, EXPN, SMTPUTF8, CHUNKING, ENHANCEDSTATUSCODES (replies carry enhanced
//! codes in their text all the same), and relaying. Bytes that are not UTF-8 are stored replaced.

use std::io;

use tokio::net::TcpStream;

use super::line::{Line, LineConn};
use super::mailbox::{self, Refused};
use super::Context;

/// Most recipients of one message: RFC 5321 4.5.3.1.8's minimum, plenty for any lesson.
pub const MAX_RECIPIENTS: usize = 100;

/// Most failed AUTH attempts before the server hangs up, so a password loop cannot go on forever.
const MAX_AUTH_FAILURES: usize = 3;

const HELP: &str = "214 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY AUTH HELP QUIT";

/// Where the client is in the conversation.
#[derive(Default)]
struct Session {
    /// The name the client gave with HELO/EHLO; `None` before it greeted.
    helo: Option<String>,
    esmtp: bool,
    authenticated: bool,
    auth_failures: usize,
    /// The reverse path of the mail transaction under way.
    from: Option<String>,
    recipients: Vec<String>,
}

impl Session {
    fn reset(&mut self) {
        self.from = None;
        self.recipients.clear();
    }
}

pub async fn serve(socket: TcpStream, context: Context) -> io::Result<()> {
    let mut conn = LineConn::new(socket, context.idle_timeout);
    conn.send_line("220 lab ESMTP Soket lab mail server ready")
        .await?;
    let mut session = Session::default();
    loop {
        let line = match conn.read_line().await? {
            Line::Text(line) => line,
            Line::TooLong => {
                conn.send_line("500 5.5.2 Line too long").await?;
                continue;
            }
            Line::Eof => return Ok(()),
            Line::TimedOut => {
                return conn
                    .send_line("421 4.4.2 lab Idle for too long, closing connection")
                    .await;
            }
        };
        let (verb, arg) = match line.split_once(' ') {
            Some((verb, arg)) => (verb.to_ascii_uppercase(), arg.trim()),
            None => (line.trim().to_ascii_uppercase(), ""),
        };
        let reply = match verb.as_str() {
            // The name goes into the Received: header: no control characters.
            "EHLO" | "HELO" if arg.is_empty() || arg.contains(char::is_control) => {
                "501 5.5.4 Syntax: EHLO hostname".to_string()
            }
            "EHLO" => {
                session.reset();
                session.helo = Some(arg.to_string());
                session.esmtp = true;
                format!(
                    "250-lab greets {arg}\r\n250-SIZE {}\r\n250-8BITMIME\r\n250-PIPELINING\r\n\
                     250-AUTH PLAIN LOGIN\r\n250 HELP",
                    mailbox::MAX_MESSAGE
                )
            }
            "HELO" => {
                session.reset();
                session.helo = Some(arg.to_string());
                session.esmtp = false;
                format!("250 lab greets {arg}")
            }
            "MAIL" => mail(&mut session, &context, arg),
            "RCPT" => rcpt(&mut session, &context, arg),
            "DATA" if !arg.is_empty() => "501 5.5.4 DATA takes no argument".into(),
            "DATA" if session.from.is_none() => "503 5.5.1 Need MAIL first".into(),
            "DATA" if session.recipients.is_empty() => "503 5.5.1 Need RCPT first".into(),
            "DATA" => {
                conn.send_line("354 End data with <CR><LF>.<CR><LF>")
                    .await?;
                let reply = data(&mut conn, &session, &context).await?;
                session.reset();
                reply
            }
            "RSET" if !arg.is_empty() => "501 5.5.4 RSET takes no argument".into(),
            "RSET" => {
                session.reset();
                "250 2.0.0 OK".into()
            }
            "NOOP" => "250 2.0.0 OK".into(),
            "VRFY" if arg.is_empty() => "501 5.5.4 Syntax: VRFY address".into(),
            "VRFY" => {
                "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery".into()
            }
            "HELP" => HELP.into(),
            "AUTH" => {
                let reply = auth(&mut conn, &mut session, arg).await?;
                if session.auth_failures >= MAX_AUTH_FAILURES {
                    conn.send_line(&reply).await?;
                    return conn
                        .send_line("421 4.7.0 lab Too many failed attempts, closing")
                        .await;
                }
                reply
            }
            "QUIT" => return conn.send_line("221 2.0.0 lab Bye").await,
            "EXPN" | "STARTTLS" | "TURN" | "ETRN" | "BDAT" => {
                "502 5.5.1 Command not implemented".into()
            }
            _ => "500 5.5.2 Command not recognized".into(),
        };
        conn.send_line(&reply).await?;
    }
}

/// `MAIL FROM:<path> [SIZE=n] [BODY=...]`.
fn mail(session: &mut Session, context: &Context, arg: &str) -> String {
    if session.helo.is_none() {
        return "503 5.5.1 Send HELO/EHLO first".into();
    }
    if session.from.is_some() {
        return "503 5.5.1 Sender already specified".into();
    }
    let Some((path, params)) = path_after(arg, "FROM:") else {
        return "501 5.5.4 Syntax: MAIL FROM:<address>".into();
    };
    for param in params.split_whitespace() {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match key.to_ascii_uppercase().as_str() {
            _ if !session.esmtp => return "555 5.5.4 Parameters need EHLO".into(),
            "SIZE" => {
                let Ok(size) = value.parse::<usize>() else {
                    return "501 5.5.4 Bad SIZE value".into();
                };
                match context.state.mail.lock().room_for(size) {
                    Err(Refused::TooBig) => {
                        return "552 5.3.4 Message size exceeds fixed maximum message size".into()
                    }
                    Err(Refused::Full) => return "452 4.3.1 Insufficient system storage".into(),
                    Ok(()) => {}
                }
            }
            "BODY" if ["7BIT", "8BITMIME"].contains(&value.to_ascii_uppercase().as_str()) => {}
            _ => return format!("555 5.5.4 Parameter not recognized: {key}"),
        }
    }
    session.from = Some(path.to_string());
    "250 2.1.0 OK".into()
}

/// `RCPT TO:<path>`: only `@lab` and postmaster.
fn rcpt(session: &mut Session, context: &Context, arg: &str) -> String {
    if session.from.is_none() {
        return "503 5.5.1 Need MAIL first".into();
    }
    let Some((path, params)) = path_after(arg, "TO:") else {
        return "501 5.5.4 Syntax: RCPT TO:<address>".into();
    };
    if !params.is_empty() {
        return "555 5.5.4 RCPT parameters not recognized".into();
    }
    let local = match path.rsplit_once('@') {
        Some((local, domain)) if domain.eq_ignore_ascii_case("lab") => !local.is_empty(),
        None => path.eq_ignore_ascii_case("postmaster"),
        _ => false,
    };
    if !local {
        return format!("550 5.7.1 <{path}>: Relaying denied, the lab only takes mail for @lab");
    }
    if session.recipients.len() >= MAX_RECIPIENTS {
        return "452 4.5.3 Too many recipients".into();
    }
    if context.state.mail.lock().room_for(0).is_err() {
        return "452 4.2.2 Mailbox full".into();
    }
    session.recipients.push(path.to_string());
    "250 2.1.5 OK".into()
}

/// The address in `<...>` after `keyword` (any case) and the parameters after it.
fn path_after<'a>(arg: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start().strip_prefix('<')?;
    let (path, params) = rest.split_once('>')?;
    // A source route (`@a,@b:user@lab`) is allowed and ignored (RFC 5321 4.1.2).
    let path = path.rsplit_once(':').map_or(path, |(_, p)| p);
    let bad = |c: char| c.is_whitespace() || c.is_control() || "<>()".contains(c);
    if path.contains(bad) || path.len() > 256 {
        return None;
    }
    Some((path, params.trim()))
}

/// Reads the message after 354, up to the lone `.`, and delivers it.
async fn data(conn: &mut LineConn, session: &Session, context: &Context) -> io::Result<String> {
    let mut text = String::new();
    let mut too_big = false;
    let mut too_long = false;
    loop {
        let line = match conn.read_line().await? {
            Line::Text(line) => line,
            Line::TooLong => {
                too_long = true;
                continue;
            }
            Line::Eof => return Err(io::ErrorKind::UnexpectedEof.into()),
            Line::TimedOut => {
                conn.send_line("421 4.4.2 lab Idle for too long, closing connection")
                    .await?;
                return Err(io::ErrorKind::TimedOut.into());
            }
        };
        if line == "." {
            break;
        }
        let line = line.strip_prefix('.').unwrap_or(&line);
        // Keep reading to the end of the data, but stop storing once over the limit.
        if text.len() + line.len() + 2 > mailbox::MAX_MESSAGE {
            too_big = true;
        }
        if !too_big {
            text.push_str(line);
            text.push_str("\r\n");
        }
    }
    if too_long {
        return Ok("500 5.5.2 Line too long".into());
    }
    if too_big {
        return Ok("552 5.3.4 Message size exceeds fixed maximum message size".into());
    }
    let helo = session.helo.as_deref().unwrap_or("unknown");
    let with = if session.esmtp { "ESMTP" } else { "SMTP" };
    let auth = if session.authenticated { "A" } else { "" };
    let from = session.from.as_deref().unwrap_or("");
    let mut mailbox = context.state.mail.lock();
    let id = mailbox.uid_next();
    let date = mailbox::rfc5322_date(mailbox::now());
    let for_whom = match session.recipients.as_slice() {
        [one] => format!("\r\n\tfor <{one}>"),
        _ => String::new(),
    };
    let header = format!(
        "Return-Path: <{from}>\r\nReceived: from {helo} by lab (Soket lab SMTP) with {with}{auth} id {id}{for_whom};\r\n\t{date}\r\n"
    );
    Ok(match mailbox.deliver(&(header + &text), 0) {
        Ok(uid) => format!("250 2.0.0 OK: queued as {uid}"),
        Err(Refused::TooBig) => "552 5.3.4 Message size exceeds fixed maximum message size".into(),
        Err(Refused::Full) => "452 4.2.2 Mailbox full".into(),
    })
}

/// `AUTH PLAIN [initial]` or `AUTH LOGIN [user]` (RFC 4954, 4616).
async fn auth(conn: &mut LineConn, session: &mut Session, arg: &str) -> io::Result<String> {
    if session.helo.is_none() || !session.esmtp {
        return Ok("503 5.5.1 Send EHLO first".into());
    }
    if session.authenticated {
        return Ok("503 5.5.1 Already authenticated".into());
    }
    if session.from.is_some() {
        return Ok("503 5.5.1 AUTH not allowed during a mail transaction".into());
    }
    let (mechanism, initial) = arg.split_once(' ').unwrap_or((arg, ""));
    let (user, password) = match mechanism.to_ascii_uppercase().as_str() {
        "PLAIN" => {
            let response = match initial {
                "" => match challenge(conn, "").await? {
                    Some(response) => response,
                    None => return Ok("501 5.7.0 Authentication cancelled".into()),
                },
                "=" => String::new(),
                initial => initial.to_string(),
            };
            let Some(decoded) = base64_decode(&response) else {
                return Ok("501 5.5.2 Cannot decode response".into());
            };
            let mut parts = decoded.split(|&b| b == 0);
            let (Some(_authzid), Some(user), Some(password), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Ok("501 5.5.2 Malformed PLAIN response".into());
            };
            (user.to_vec(), password.to_vec())
        }
        "LOGIN" => {
            let user = match initial {
                "" => challenge(conn, "VXNlcm5hbWU6").await?,
                initial => Some(initial.to_string()),
            };
            let Some(user) = user.as_deref().and_then(base64_decode) else {
                return Ok("501 5.5.2 Cannot decode response".into());
            };
            let password = challenge(conn, "UGFzc3dvcmQ6").await?;
            let Some(password) = password.as_deref().and_then(base64_decode) else {
                return Ok("501 5.5.2 Cannot decode response".into());
            };
            (user, password)
        }
        _ => return Ok("504 5.5.4 Unrecognized authentication mechanism".into()),
    };
    let user = String::from_utf8_lossy(&user);
    let password = String::from_utf8_lossy(&password);
    if mailbox::check_login(&user, &password) {
        session.authenticated = true;
        Ok("235 2.7.0 Authentication successful".into())
    } else {
        session.auth_failures += 1;
        Ok("535 5.7.8 Authentication credentials invalid".into())
    }
}

/// Sends a 334 challenge and reads the answer; `None` if the client cancels with `*`.
async fn challenge(conn: &mut LineConn, text: &str) -> io::Result<Option<String>> {
    conn.send_line(&format!("334 {text}")).await?;
    match conn.read_line().await? {
        Line::Text(line) if line.trim() == "*" => Ok(None),
        Line::Text(line) => Ok(Some(line.trim().to_string())),
        Line::TooLong => Ok(Some("!".into())),
        Line::Eof => Err(io::ErrorKind::UnexpectedEof.into()),
        Line::TimedOut => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// Decodes standard base64 (padding optional); `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0);
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = bits << 6 | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64() {
        assert_eq!(
            base64_decode("AGxlYXJuZXIAbGVhcm5lcg==").as_deref(),
            Some(&b"\0learner\0learner"[..])
        );
        assert_eq!(
            base64_decode("bGVhcm5lcg").as_deref(),
            Some(&b"learner"[..])
        );
        assert_eq!(base64_decode("a b"), None);
    }

    #[test]
    fn paths() {
        assert_eq!(
            path_after("FROM:<a@b> SIZE=5", "FROM:"),
            Some(("a@b", "SIZE=5"))
        );
        assert_eq!(path_after("to: <x@lab>", "TO:"), Some(("x@lab", "")));
        assert_eq!(path_after("TO:<@r:x@lab>", "TO:"), Some(("x@lab", "")));
        assert_eq!(path_after("FROM:a@b", "FROM:"), None);
        assert_eq!(path_after("FROM:<>", "FROM:"), Some(("", "")));
    }
}
