//! The lab's Gopher server (`gopher.lab`, port 70), RFC 1436.
//!
//! One request per connection: the client sends a selector and CRLF, the server answers with a menu or a text
//! file and closes. A menu is lines of `type display TAB selector TAB host TAB port CRLF` and a line with a
//! single `.`; a text file is its lines, each ending in CRLF, a line starting with `.` sent with one more `.`
//! (dot-stuffing), and the same `.` line at the end.
//!
//! Content: the root menu (empty selector, or `/`) with an `i` info line, a few text files and the submenu
//! `/protocols`. Menus give the host as `gopher.lab` port 70, as a session sees it. An unknown selector gets
//! a menu with one type-3 (error) item.
//!
//! Limits: a selector of at most [`MAX_SELECTOR`] characters (a longer one gets a type-3 error); a client
//! that sends nothing for the idle timeout is closed on. Whatever follows a TAB (a Gopher+ `+`, a search
//! string) is ignored. Deliberately omitted: Gopher+, search (type 7) and binary items.

use std::io;

use tokio::net::TcpStream;

use super::line::{Line, LineConn};
use super::Context;

/// The longest selector: RFC 1436 says selectors should be no longer than 255 characters.
pub const MAX_SELECTOR: usize = 255;

/// The host and port menus point at: the lab as a session names it.
const HOST: &str = "gopher.lab";
const PORT: u16 = 70;

/// One line of a menu: its type (`0` text, `1` menu, `i` info), what a client shows, and the selector.
struct Item(char, &'static str, &'static str);

enum Document {
    Menu(&'static [Item]),
    Text(&'static str),
}

const ROOT: &[Item] = &[
    Item(
        'i',
        "Welcome to the lab's Gopher server: menus and text, as in 1991.",
        "",
    ),
    Item('0', "About this server", "/about.txt"),
    Item('0', "How Gopher works", "/gopher.txt"),
    Item('0', "Hello", "/hello.txt"),
    Item('1', "The protocols of the course", "/protocols"),
];

const PROTOCOLS: &[Item] = &[
    Item('i', "One page on each protocol.", ""),
    Item('0', "Gopher (port 70)", "/protocols/gopher.txt"),
    Item('0', "HTTP (port 80)", "/protocols/http.txt"),
    Item('0', "SMTP (port 25)", "/protocols/smtp.txt"),
    Item('1', "Back to the main menu", ""),
];

const ABOUT: &str = "\
This is the Soket lab's Gopher server.

It speaks RFC 1436 and nothing more: send a selector and CRLF, read the
answer until the server closes the connection. The empty selector is the
main menu. Try it with

    printf '/hello.txt\\r\\n' | nc gopher.lab 70
";

const GOPHER: &str = "\
How Gopher works

1. Connect to port 70.
2. Send a selector (a string from a menu) and CRLF. The empty selector
   asks for the main menu.
3. Read until the server closes. A menu has one item per line:
   a type character and a name, then selector, host and port, separated
   by TAB. Type 0 is a text file, 1 a menu, 3 an error, i information.
4. A menu and a text file end with a line holding a single dot.
.A line of text starting with a dot, like this one, is sent with two dots,
so it cannot be mistaken for the end. Your client removes the extra dot.
";

const HELLO: &str = "Hello from the lab's Gopher server!\n";

const PROTOCOL_GOPHER: &str = "\
Gopher (RFC 1436, 1993): a menu of documents, each fetched with its own
connection. It came from the University of Minnesota, and the web
overtook it within a few years.
";

const PROTOCOL_HTTP: &str = "\
HTTP: a request line (GET /path HTTP/1.1), headers, a blank line, and
perhaps a body; the answer is a status line, headers, a blank line and a
body. The lab's web server is http://www.lab/.
";

const PROTOCOL_SMTP: &str = "\
SMTP (RFC 5321): the client says HELO, MAIL FROM, RCPT TO and DATA; the
server answers each with a three-digit code. The lab takes mail for any
@lab address on mail.lab port 25.
";

fn lookup(selector: &str) -> Option<Document> {
    Some(match selector {
        "" | "/" => Document::Menu(ROOT),
        "/protocols" | "/protocols/" => Document::Menu(PROTOCOLS),
        "/about.txt" => Document::Text(ABOUT),
        "/gopher.txt" => Document::Text(GOPHER),
        "/hello.txt" => Document::Text(HELLO),
        "/protocols/gopher.txt" => Document::Text(PROTOCOL_GOPHER),
        "/protocols/http.txt" => Document::Text(PROTOCOL_HTTP),
        "/protocols/smtp.txt" => Document::Text(PROTOCOL_SMTP),
        _ => return None,
    })
}

/// Answers one selector, then closes.
pub async fn serve(socket: TcpStream, context: Context) -> io::Result<()> {
    let mut conn = LineConn::new(socket, context.idle_timeout);
    // One more byte than a selector and CRLF, so that a line just over the limit is read whole and refused.
    conn.set_max_line(MAX_SELECTOR + 3);
    let line = match conn.read_line().await? {
        Line::Text(line) => line,
        Line::TooLong => {
            return conn
                .send(error_menu("the selector is too long").as_bytes())
                .await
        }
        Line::Eof | Line::TimedOut => return Ok(()),
    };
    let selector = line.split('\t').next().unwrap_or_default();
    let reply = if selector.len() > MAX_SELECTOR {
        error_menu("the selector is too long")
    } else {
        match lookup(selector) {
            Some(Document::Menu(items)) => menu(items),
            Some(Document::Text(text)) => text_file(text),
            None => error_menu(&format!("there is no {selector:?} here")),
        }
    };
    conn.send(reply.as_bytes()).await
}

fn menu_line(kind: char, display: &str, selector: &str) -> String {
    // A TAB or line break in a display string would break the line into fields that are not there.
    let display: String = display
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("{kind}{display}\t{selector}\t{HOST}\t{PORT}\r\n")
}

fn menu(items: &[Item]) -> String {
    let mut out: String = items
        .iter()
        .map(|Item(kind, display, selector)| menu_line(*kind, display, selector))
        .collect();
    out.push_str(".\r\n");
    out
}

fn error_menu(message: &str) -> String {
    menu_line('3', message, "") + ".\r\n"
}

fn text_file(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_dot_stuffed() {
        assert_eq!(text_file("a\n.b\n..c\n"), "a\r\n..b\r\n...c\r\n.\r\n");
    }

    #[test]
    fn every_menu_item_resolves() {
        for items in [ROOT, PROTOCOLS] {
            for Item(kind, _, selector) in items {
                assert!(*kind == 'i' || lookup(selector).is_some(), "{selector}");
            }
        }
    }
}
