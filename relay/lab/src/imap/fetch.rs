//! The IMAP4 server's FETCH: the items a client may ask for, and the `* n FETCH (...)` answer for one
//! message (which sets `\Seen` when it reads the message, unless the mailbox is read-only).

use super::parser::Value;
use super::Selected;
use crate::mailbox::{self, Flags, Mailbox};

pub(super) fn flag_list(flags: Flags, recent: bool) -> String {
    let names = mailbox::FLAG_NAMES
        .iter()
        .filter(|(bit, _)| flags & bit != 0);
    let mut names: Vec<&str> = names.map(|(_, name)| *name).collect();
    if recent {
        names.push("\\Recent");
    }
    names.join(" ")
}

/// One FETCH item.
#[derive(Debug, PartialEq)]
pub(super) enum Item {
    Flags,
    Uid,
    Date,
    Size,
    /// RFC822 and BODY[..] items: the name to answer with, the part, and whether it sets `\Seen`.
    Part(String, Part, bool),
}

#[derive(Debug, PartialEq)]
pub(super) enum Part {
    All,
    Header,
    Text,
    Fields(Vec<String>),
}

pub(super) fn fetch_item(value: &Value) -> Result<Item, String> {
    let name = value.atom()?;
    let part = |name: &str, part, seen| Ok(Item::Part(name.to_string(), part, seen));
    let section = match name.as_str() {
        "FLAGS" => return Ok(Item::Flags),
        "UID" => return Ok(Item::Uid),
        "INTERNALDATE" => return Ok(Item::Date),
        "RFC822.SIZE" => return Ok(Item::Size),
        "RFC822" => return part("RFC822", Part::All, true),
        "RFC822.HEADER" => return part("RFC822.HEADER", Part::Header, false),
        "RFC822.TEXT" => return part("RFC822.TEXT", Part::Text, true),
        _ => name
            .strip_prefix("BODY[")
            .or(name.strip_prefix("BODY.PEEK[")),
    };
    let seen = name.starts_with("BODY[");
    let Some(section) = section.and_then(|s| s.strip_suffix(']')) else {
        return Err(format!("Unknown or unsupported FETCH item {name}"));
    };
    let answer = format!("BODY[{section}]");
    match section {
        "" => part(&answer, Part::All, seen),
        "HEADER" => part(&answer, Part::Header, seen),
        "TEXT" => part(&answer, Part::Text, seen),
        _ => {
            let names = section
                .strip_prefix("HEADER.FIELDS (")
                .and_then(|s| s.strip_suffix(')'));
            let names: Vec<String> = names
                .ok_or(format!("Unsupported section [{section}]"))?
                .split_whitespace()
                .map(|n| n.trim_matches('"').to_string())
                .collect();
            part(&answer, Part::Fields(names), seen)
        }
    }
}

/// Writes one `* n FETCH (...)` for the message at `index`; a message gone meanwhile is skipped.
pub(super) fn fetch(
    out: &mut String,
    mailbox: &mut Mailbox,
    selected: &Selected,
    index: usize,
    items: &[Item],
) {
    let uid = selected.uids[index];
    let Some(message) = mailbox.get_mut(uid) else {
        return;
    };
    let mut items: Vec<&Item> = items.iter().collect();
    let reads = items.iter().any(|i| matches!(i, Item::Part(_, _, true)));
    if reads && !selected.read_only && message.flags & mailbox::SEEN == 0 {
        message.flags |= mailbox::SEEN;
        // The client learns of the flag it did not set itself (RFC 3501 6.4.5).
        if !items.contains(&&Item::Flags) {
            items.push(&Item::Flags);
        }
    }
    let text = &message.text;
    let (header, body) = mailbox::split(text);
    let mut answers = Vec::new();
    for item in items {
        answers.push(match item {
            Item::Flags => {
                let flags = flag_list(message.flags, selected.recent.contains(&uid));
                format!("FLAGS ({flags})")
            }
            Item::Uid => format!("UID {uid}"),
            Item::Date => format!("INTERNALDATE \"{}\"", mailbox::imap_date(message.arrived)),
            Item::Size => format!("RFC822.SIZE {}", text.len()),
            Item::Part(name, part, _) => {
                let content = match part {
                    Part::All => text.to_string(),
                    Part::Header => header.to_string(),
                    Part::Text => body.to_string(),
                    Part::Fields(names) => {
                        let name = |f: &&str| mailbox::field_name(f).to_ascii_uppercase();
                        let fields = mailbox::fields(header).into_iter();
                        let fields = fields.filter(|f| names.contains(&name(f)));
                        fields.collect::<String>() + "\r\n"
                    }
                };
                format!("{name} {{{}}}\r\n{content}", content.len())
            }
        });
    }
    *out += &format!("* {} FETCH ({})\r\n", index + 1, answers.join(" "));
}
