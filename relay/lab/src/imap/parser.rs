//! The IMAP4 server's command syntax (RFC 3501 section 9): reading a command with the literals it
//! announces, its arguments (atoms, quoted strings, `{n}` literals, parenthesised lists), sequence sets
//! and flag lists.

use std::io;

use super::{FLAGS, MAX_COMMAND, MAX_DEPTH};
use crate::line::{Line, LineConn};
use crate::mailbox::{self, Flags};

/// One parsed argument.
#[derive(Debug, PartialEq)]
pub(super) enum Value {
    Atom(String),
    /// A quoted string or a literal.
    Str(String),
    List(Vec<Value>),
}

impl Value {
    /// An atom or a string (IMAP's `astring`).
    pub(super) fn text(&self) -> Result<&str, String> {
        match self {
            Value::Atom(s) | Value::Str(s) => Ok(s),
            Value::List(_) => Err("Expected a string, not a list".into()),
        }
    }

    pub(super) fn atom(&self) -> Result<String, String> {
        match self {
            Value::Atom(s) => Ok(s.to_ascii_uppercase()),
            _ => Err("Expected an atom".into()),
        }
    }
}

/// Parses arguments in wire form (each literal inline after its `{n}` CRLF) up to the end (depth 0) or
/// the closing parenthesis. An atom's `[...]` may hold spaces (`BODY[HEADER.FIELDS (FROM)]`).
pub(super) fn parse(bytes: &[u8], pos: &mut usize, depth: usize) -> Result<Vec<Value>, String> {
    let mut values = Vec::new();
    loop {
        while bytes.get(*pos) == Some(&b' ') {
            *pos += 1;
        }
        let start = *pos;
        let value = match bytes.get(start) {
            None if depth == 0 => return Ok(values),
            None => return Err("Missing )".into()),
            Some(b')') if depth > 0 => {
                *pos += 1;
                return Ok(values);
            }
            Some(b'(') if depth < MAX_DEPTH => {
                *pos += 1;
                Value::List(parse(bytes, pos, depth + 1)?)
            }
            Some(b'"') => {
                let mut text = Vec::new();
                *pos += 1;
                loop {
                    match bytes.get(*pos) {
                        Some(b'"') => break,
                        Some(b'\\') if matches!(bytes.get(*pos + 1), Some(b'"' | b'\\')) => {
                            *pos += 1;
                            text.push(bytes[*pos]);
                        }
                        Some(b'\\' | b'\r' | b'\n') | None => {
                            return Err("Bad quoted string".into())
                        }
                        Some(&c) => text.push(c),
                    }
                    *pos += 1;
                }
                *pos += 1;
                Value::Str(String::from_utf8_lossy(&text).into_owned())
            }
            Some(b'{') => {
                let close = bytes[start..].iter().position(|&b| b == b'}');
                let n = close.and_then(|c| std::str::from_utf8(&bytes[start + 1..start + c]).ok());
                let n: usize = n.and_then(|n| n.parse().ok()).ok_or("Bad literal")?;
                let from = start + close.unwrap_or(0) + 3;
                if bytes.get(from - 2..from) != Some(b"\r\n") || bytes.len() < from + n {
                    return Err("Bad literal".into());
                }
                *pos = from + n;
                Value::Str(String::from_utf8_lossy(&bytes[from..from + n]).into_owned())
            }
            Some(_) => {
                let mut brackets = false;
                while let Some(&c) = bytes.get(*pos) {
                    match c {
                        b'[' | b']' => brackets = c == b'[',
                        b' ' | b'(' | b')' if !brackets => break,
                        b'(' | b')' | b' ' => {}
                        b'"' | b'{' | 0..=31 | 127.. => return Err("Bad character in atom".into()),
                        _ => {}
                    }
                    *pos += 1;
                }
                if brackets || *pos == start {
                    return Err("Bad atom".into());
                }
                Value::Atom(String::from_utf8_lossy(&bytes[start..*pos]).into_owned())
            }
        };
        values.push(value);
    }
}

/// What reading a command gave.
pub(super) enum Input {
    Command(Vec<u8>),
    /// A literal would make the command longer than [`MAX_COMMAND`]; the command so far, for its tag.
    TooBig(Vec<u8>),
    TooLong,
    Closed,
    TimedOut,
}

/// Reads a command line and the literals it announces, answering each `{n}` with a continuation.
pub(super) async fn read_command(conn: &mut LineConn) -> io::Result<Input> {
    let mut command = Vec::new();
    loop {
        let line = match conn.read_line().await? {
            Line::Text(line) => line,
            Line::TooLong => return Ok(Input::TooLong),
            Line::Eof => return Ok(Input::Closed),
            Line::TimedOut => return Ok(Input::TimedOut),
        };
        command.extend_from_slice(line.as_bytes());
        let size = line.strip_suffix('}').and_then(|l| l.rsplit_once('{'));
        let Some(size) = size.and_then(|(_, n)| n.parse::<usize>().ok()) else {
            return Ok(Input::Command(command));
        };
        if command.len() + size > MAX_COMMAND {
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

/// The indices (into `uids`) named by a sequence set like `1,3:5,7:*`, ascending. Message numbers past
/// the end are an error when `strict` (FETCH, STORE); UIDs that do not exist are simply not there.
pub(super) fn sequence(
    set: &str,
    uid: bool,
    uids: &[u32],
    strict: bool,
) -> Result<Vec<usize>, String> {
    let largest = match uid {
        true => uids.last().copied().unwrap_or(0),
        false => uids.len() as u32,
    };
    let number = |s: &str| match s.parse::<u32>() {
        _ if s == "*" => Ok(largest),
        Ok(n) if n >= 1 && (uid || !strict || n <= largest) => Ok(n),
        _ => Err(format!("Invalid message set {set}")),
    };
    let mut found = vec![false; uids.len()];
    for part in set.split(',') {
        let (a, b) = part.split_once(':').unwrap_or((part, part));
        let (a, b) = (number(a)?, number(b)?);
        for (i, &id) in uids.iter().enumerate() {
            let n = if uid { id } else { i as u32 + 1 };
            found[i] |= a.min(b) <= n && n <= a.max(b);
        }
    }
    Ok((0..uids.len()).filter(|&i| found[i]).collect())
}

/// Flags from a list of atoms; `\Recent` is ignored (no client may set it).
pub(super) fn parse_flags(values: &[Value]) -> Result<Flags, String> {
    let mut flags = 0;
    for name in values.iter().map(Value::atom) {
        let name = name?;
        let known = mailbox::FLAG_NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(&name));
        match known {
            Some((bit, _)) => flags |= bit,
            None if name == "\\RECENT" => {}
            None => return Err(format!("Unknown flag {name}; the lab keeps only {FLAGS}")),
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Vec<Value>, String> {
        parse(text.as_bytes(), &mut 0, 0)
    }

    #[test]
    fn parses_arguments() {
        use Value::*;
        let fetch = "FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])";
        let items = vec![
            Atom("FLAGS".into()),
            Atom("BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]".into()),
        ];
        let expected = vec![Atom("FETCH".into()), Atom("1:*".into()), List(items)];
        assert_eq!(parsed(fetch), Ok(expected));
        let login = "LOGIN {7}\r\nlearner \"a \\\"b\\\\\"";
        let expected = vec![
            Atom("LOGIN".into()),
            Str("learner".into()),
            Str("a \"b\\".into()),
        ];
        assert_eq!(parsed(login), Ok(expected));
        for bad in [
            "LOGIN \"open",
            "LOGIN {9}\r\nshort",
            "X ((((((((((1))))))))))",
            "X (a",
            "X a)",
        ] {
            assert!(parsed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sequence_sets() {
        let uids = [3, 5, 9];
        assert_eq!(sequence("1", false, &uids, true), Ok(vec![0]));
        assert_eq!(sequence("2:*", false, &uids, true), Ok(vec![1, 2]));
        assert_eq!(sequence("*:1", false, &uids, true), Ok(vec![0, 1, 2]));
        assert_eq!(sequence("4:7", true, &uids, true), Ok(vec![1]));
        assert_eq!(sequence("10:*", true, &uids, true), Ok(vec![2]));
        for bad in ["4", "0", "a", "1:", ""] {
            assert!(sequence(bad, false, &uids, true).is_err(), "{bad}");
        }
    }
}
