//! The IMAP4 server's SEARCH keys, each parsed once into a test a message either passes or not.

use super::parser::{sequence, Value};
use super::{Selected, MAX_DEPTH};
use crate::mailbox::{self, Message};

/// A parsed SEARCH key: does a message (and is it `\Recent` here) match.
pub(super) type Test = Box<dyn Fn(&Message, bool) -> bool>;

pub(super) fn search_key<'a>(
    args: &mut impl Iterator<Item = &'a Value>,
    selected: &Selected,
    depth: usize,
) -> Result<Test, String> {
    let key = args.next().ok_or("Missing search key")?.atom()?;
    let mut text = || -> Result<String, String> {
        let value = args.next().ok_or(format!("{key} needs an argument"))?;
        Ok(value.text()?.to_lowercase())
    };
    let set = |set: &str, uid| -> Result<Test, String> {
        let indices = sequence(set, uid, &selected.uids, false)?;
        let uids: Vec<u32> = indices.into_iter().map(|i| selected.uids[i]).collect();
        Ok(test(move |m, _| uids.contains(&m.uid)))
    };
    let flag = key.strip_prefix("UN").unwrap_or(&key);
    let flag = mailbox::FLAG_NAMES
        .iter()
        .find(|(_, n)| n[1..].eq_ignore_ascii_case(flag));
    if let Some(&(bit, _)) = flag {
        let want = !key.starts_with("UN");
        return Ok(test(move |m, _| (m.flags & bit != 0) == want));
    }
    Ok(match key.as_str() {
        "ALL" => test(|_, _| true),
        "RECENT" => test(|_, recent| recent),
        "OLD" => test(|_, recent| !recent),
        "NEW" => test(|m, recent| recent && m.flags & mailbox::SEEN == 0),
        "FROM" | "TO" | "CC" | "SUBJECT" => {
            let (needle, name) = (text()?, key.clone());
            test(move |m, _| {
                let value = mailbox::field(&m.text, &name).unwrap_or_default();
                value.to_lowercase().contains(&needle)
            })
        }
        "BODY" | "TEXT" => {
            let (needle, whole) = (text()?, key == "TEXT");
            test(move |m, _| {
                let text = if whole {
                    &m.text[..]
                } else {
                    mailbox::split(&m.text).1
                };
                text.to_lowercase().contains(&needle)
            })
        }
        "UID" => set(&text()?, true)?,
        "NOT" if depth < MAX_DEPTH => {
            let inner = search_key(args, selected, depth + 1)?;
            test(move |m, recent| !inner(m, recent))
        }
        k if k.starts_with(|c: char| c.is_ascii_digit() || c == '*') => set(k, false)?,
        k => return Err(format!("Unknown or unsupported search key {k}")),
    })
}

fn test(f: impl Fn(&Message, bool) -> bool + 'static) -> Test {
    Box::new(f)
}
