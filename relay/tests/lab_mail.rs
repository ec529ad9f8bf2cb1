//! The lab's mail: SMTP, POP3 and IMAP4 over one mailbox, spoken to by CPython's smtplib, poplib and
//! imaplib, and by raw sockets for sequence errors, literals, over-long lines and idle timeouts.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use soket_relay::lab::Service;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Runs `script` against a fresh relay; the script gets the host and the SMTP, POP3 and IMAP4 ports.
async fn run(script: &str) -> String {
    let relay = common::start_lab(&["--lab-idle-timeout", "5"]).await;
    let ports =
        [Service::Smtp, Service::Pop3, Service::Imap].map(|s| relay.lab(s).port().to_string());
    let host = relay.lab(Service::Smtp).ip().to_string();
    let out = common::python3(script, &[&host, &ports[0], &ports[1], &ports[2]]).await;
    out.assert_ok().to_string()
}

const PRELUDE: &str = r#"
import sys, smtplib, poplib, imaplib
from email.message import EmailMessage
host, smtp_port, pop_port, imap_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def pop():
    p = poplib.POP3(host, pop_port, timeout=10)
    p.user("learner")
    p.pass_("learner")
    return p
"#;

const SMTP_SENDS: &str = r#"
with smtplib.SMTP(host, smtp_port, timeout=10) as s:
    code, banner = s.ehlo("client.example")
    print("ehlo", code, sorted(s.esmtp_features), s.esmtp_features["size"], s.esmtp_features["auth"])
    print("login", s.login("learner", "learner"))
    print("refused", s.sendmail("me@example.com", ["learner@lab"],
        "Subject: plain\r\n\r\nfirst line\r\n.hidden dot line\r\n..two dots\r\n"))
    m = EmailMessage()
    m["From"] = "Ada <ada@example.com>"
    m["To"] = "alice@LAB, learner@lab"
    m["Subject"] = "Grüße from send_message"
    m.set_content("Hällo, wörld\n")
    print("send_message", s.send_message(m))
    print("partly", s.sendmail("me@example.com", ["learner@lab", "bob@example.com"], "Subject: partly\r\n\r\nx\r\n"))
    print("noop", s.noop())
    print("vrfy", s.verify("learner@lab"))
with smtplib.SMTP(host, smtp_port, timeout=10) as s:
    s.ehlo()
    s.user, s.password = "learner", "learner"
    print("auth login", s.auth("LOGIN", s.auth_login, initial_response_ok=False))
p = pop()
count, size = p.stat()
print("count", count)
for i in range(2, count + 1):
    resp, lines, octets = p.retr(i)
    print("message", i, lines)
p.quit()
"#;

#[tokio::test]
async fn smtplib_sends_and_poplib_reads() {
    let out = run(&format!("{PRELUDE}{SMTP_SENDS}")).await;
    assert!(
        out.contains(
            "ehlo 250 ['8bitmime', 'auth', 'help', 'pipelining', 'size'] 262144  PLAIN LOGIN"
        ),
        "{out}"
    );
    assert!(out.contains("login (235,"), "{out}");
    assert!(out.contains("refused {}"), "{out}");
    assert!(out.contains("send_message {}"), "{out}");
    assert!(
        out.contains("partly {'bob@example.com': (550, b'5.7.1 <bob@example.com>: Relaying denied"),
        "{out}"
    );
    assert!(out.contains("noop (250,"), "{out}");
    assert!(out.contains("vrfy (252,"), "{out}");
    assert!(out.contains("auth login (235,"), "{out}");
    // Welcome, plain, send_message (two @lab recipients, one copy), partly.
    assert!(out.contains("count 4"), "{out}");
    // Dot-unstuffed by SMTP, stuffed again by POP3, unstuffed by poplib: the lines as they were sent.
    assert!(
        out.contains("b'first line', b'.hidden dot line', b'..two dots'"),
        "{out}"
    );
    assert!(out.contains("b'Return-Path: <me@example.com>', b'Received: from client.example by lab (Soket lab SMTP) with ESMTPA id 2'"), "{out}");
    assert!(out.contains("b'\\tfor <learner@lab>;'"), "{out}");
    // send_message's UTF-8 body went as 8BITMIME and comes back byte for byte.
    assert!(out.contains("b'H\\xc3\\xa4llo, w\\xc3\\xb6rld'"), "{out}");
}

const SMTP_REFUSES: &str = r#"
with smtplib.SMTP(host, smtp_port, timeout=10) as s:
    try:
        s.sendmail("me@example.com", ["someone@example.com"], "Subject: out\r\n\r\nx\r\n")
    except smtplib.SMTPRecipientsRefused as e:
        print("refused", e.recipients)
    big = "Subject: big\r\n\r\n" + ("x" * 70 + "\r\n") * 4000
    try:
        s.sendmail("me@example.com", ["learner@lab"], big)
    except smtplib.SMTPSenderRefused as e:
        print("sender refused", e.smtp_code, e.smtp_error)
    s.rset()
    s.mail("me@example.com")
    s.rcpt("learner@lab")
    print("data reply", s.data(big))
    # Without SIZE the server learns the size only from the data itself.
    del s.esmtp_features["size"]
    try:
        s.sendmail("me@example.com", ["learner@lab"], big)
    except smtplib.SMTPDataError as e:
        print("data error", e.smtp_code, e.smtp_error)
    try:
        s.login("learner", "nope")
    except smtplib.SMTPAuthenticationError as e:
        print("bad login", e.smtp_code)
    sent = 0
    try:
        while sent < 200:
            s.sendmail("me@example.com", ["learner@lab"], "Subject: again\r\n\r\nx\r\n")
            sent += 1
    except smtplib.SMTPRecipientsRefused as e:
        print("full after", sent, e.recipients)
    s.ehlo()
    try:
        s.sendmail("me@example.com", ["learner@lab"], "Subject: again\r\n\r\nx\r\n")
    except smtplib.SMTPSenderRefused as e:
        print("full with SIZE", e.smtp_code, e.smtp_error)
"#;

#[tokio::test]
async fn smtplib_sees_refusals_and_limits() {
    let out = run(&format!("{PRELUDE}{SMTP_REFUSES}")).await;
    assert!(
        out.contains(
            "refused {'someone@example.com': (550, b'5.7.1 <someone@example.com>: Relaying denied"
        ),
        "{out}"
    );
    assert!(
        out.contains("sender refused 552 b'5.3.4 Message size exceeds fixed maximum message size'"),
        "{out}"
    );
    assert!(
        out.contains("data reply (552, b'5.3.4 Message size exceeds"),
        "{out}"
    );
    assert!(
        out.contains("full with SIZE 452 b'4.3.1 Insufficient system storage'"),
        "{out}"
    );
    assert!(
        out.contains("data error 552 b'5.3.4 Message size exceeds"),
        "{out}"
    );
    assert!(out.contains("bad login 535"), "{out}");
    // The welcome message and 99 more fill the mailbox of 100.
    assert!(
        out.contains("full after 99 {'learner@lab': (452, b'4.2.2 Mailbox full')}"),
        "{out}"
    );
}

const POPLIB: &str = r#"
p = poplib.POP3(host, pop_port, timeout=10)
print("welcome", p.getwelcome())
print("capa", sorted(p.capa()))
print("user", p.user("learner"))
print("pass", p.pass_("learner"))
print("stat", p.stat())
print("list", p.list())
print("uidl", p.uidl())
resp, lines, octets = p.retr(1)
print("retr", resp, octets, lines[:3])
resp, lines, octets = p.top(1, 1)
print("top", lines[-3:])
print("dele", p.dele(1))
try:
    p.retr(1)
except poplib.error_proto as e:
    print("deleted", e)
print("rset", p.rset())
print("stat after rset", p.stat())
print("dele again", p.dele(1))
print("quit", p.quit())
p = pop()
print("stat new", p.stat())
try:
    p.retr(1)
except poplib.error_proto as e:
    print("gone", e)
p.quit()
p = poplib.POP3(host, pop_port, timeout=10)
p.user("learner")
try:
    p.pass_("wrong")
except poplib.error_proto as e:
    print("bad pass", e)
try:
    p.user("root")
except poplib.error_proto as e:
    print("bad user", e)
p.quit()
"#;

#[tokio::test]
async fn poplib_lists_retrieves_and_deletes() {
    let out = run(&format!("{PRELUDE}{POPLIB}")).await;
    assert!(
        out.contains("welcome b'+OK lab POP3 server ready'"),
        "{out}"
    );
    assert!(
        out.contains("capa ['IMPLEMENTATION', 'TOP', 'UIDL', 'USER']"),
        "{out}"
    );
    assert!(
        out.contains("pass b\"+OK learner's maildrop has 1 messages ("),
        "{out}"
    );
    assert!(out.contains("stat (1, "), "{out}");
    assert!(out.contains("list (b'+OK 1 messages"), "{out}");
    assert!(
        out.contains("uidl (b'+OK 1 messages") && out.contains("[b'1 1']"),
        "{out}"
    );
    assert!(out.contains("retr b'+OK") && out.contains("[b'From: Lab Postmaster <postmaster@lab>', b'To: learner@lab', b'Subject: Welcome to the lab mail']"), "{out}");
    assert!(out.contains("top [b'Content-Type: text/plain; charset=us-ascii', b'', b'Hello, and welcome to the lab mail!']"), "{out}");
    assert!(
        out.contains("deleted b'-ERR message already deleted'"),
        "{out}"
    );
    assert!(out.contains("stat after rset (1,"), "{out}");
    assert!(
        out.contains("quit b'+OK lab POP3 server signing off (0 messages left)'"),
        "{out}"
    );
    assert!(out.contains("stat new (0, 0)"), "{out}");
    assert!(out.contains("gone b'-ERR no such message'"), "{out}");
    assert!(out.contains("bad pass b'-ERR invalid password'"), "{out}");
    assert!(
        out.contains("bad user b'-ERR no such mailbox here"),
        "{out}"
    );
    // The octets of RETR are those LIST announced.
    let size = out
        .split("stat (1, ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or("?");
    assert!(out.contains(&format!("retr b'+OK {size} octets'")), "{out}");
}

const IMAPLIB: &str = r#"
m = imaplib.IMAP4(host, imap_port, timeout=10)
print("caps", m.capabilities)
try:
    m.login("learner", "wrong")
except imaplib.IMAP4.error as e:
    print("bad login", e)
print("login", m.login("learner", "learner"))
print("list", m.list())
print("status", m.status("INBOX", "(MESSAGES UNSEEN)"))
print("select", m.select("INBOX"))
print("responses", m.response("FLAGS"), m.response("RECENT"), m.response("UIDNEXT"), m.response("PERMANENTFLAGS"))
print("append", m.append("INBOX", "(\\Flagged)", None, b"From: Bob <bob@lab>\r\nSubject: appended\r\n\r\nhi there\r\n"))
print("search all", m.search(None, "ALL"))
print("search unseen", m.search(None, "UNSEEN"))
print("search from", m.search(None, "FROM", '"postmaster"'))
print("search subject", m.search(None, "SUBJECT", "APPENDED"))
print("search not", m.search(None, "NOT", "FLAGGED"))
print("search body", m.search(None, "BODY", '"hi there"'))
typ, data = m.fetch("1", "(BODY.PEEK[HEADER])")
print("peek", data[0][0], b"Subject: Welcome to the lab mail" in data[0][1])
print("flags after peek", m.fetch("1", "(FLAGS)"))
typ, data = m.fetch("1", "(RFC822)")
print("rfc822", data[0][0], b"Hello, and welcome" in data[0][1], data[1])
print("fields", m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
print("text", m.fetch("2", "(BODY[TEXT])"))
print("uid fetch", m.uid("FETCH", "2:*", "(FLAGS RFC822.SIZE)"))
print("uid search", m.uid("SEARCH", "SEEN"))
print("store", m.store("1", "+FLAGS", "\\Deleted"))
print("expunge", m.expunge())
print("search all", m.search(None, "ALL"))
try:
    m.xatom("FROBNICATE")
except imaplib.IMAP4.error as e:
    print("bad command", e)
try:
    m.fetch("9", "(FLAGS)")
except imaplib.IMAP4.error as e:
    print("bad set", e)
try:
    m.store("1", "+FLAGS", "custom")
except imaplib.IMAP4.error as e:
    print("keyword", e)
print("select other", m.select("Archive"))
print("examine", m.select("INBOX", readonly=True))
print("read-only store", m.store("1", "+FLAGS", "\\Seen"))
print("close", m.close())
print("logout", m.logout())
"#;

#[tokio::test]
async fn imaplib_selects_searches_fetches_and_expunges() {
    let out = run(&format!("{PRELUDE}{IMAPLIB}")).await;
    let expect = [
        "caps ('IMAP4REV1', 'UNSELECT')",
        "bad login b'[AUTHENTICATIONFAILED] Invalid credentials",
        "login ('OK', [b'[CAPABILITY IMAP4rev1 UNSELECT] LOGIN completed'])",
        "list ('OK', [b'(\\\\HasNoChildren) \"/\" INBOX'])",
        "status ('OK', [b'INBOX (MESSAGES 1 UNSEEN 1)'])",
        "select ('OK', [b'1'])",
        "responses ('FLAGS', [b'(\\\\Answered \\\\Flagged \\\\Deleted \\\\Seen \\\\Draft)']) ('RECENT', [b'1']) ('UIDNEXT', [b'2']) ('PERMANENTFLAGS', [b'(\\\\Answered \\\\Flagged \\\\Deleted \\\\Seen \\\\Draft)'])",
        "append ('OK', [b'APPEND completed'])",
        "search all ('OK', [b'1 2'])",
        "search unseen ('OK', [b'1 2'])",
        "search from ('OK', [b'1'])",
        "search subject ('OK', [b'2'])",
        "search not ('OK', [b'1'])",
        "search body ('OK', [b'2'])",
        "peek b'1 (BODY[HEADER] {",
        "}' True",
        "flags after peek ('OK', [b'1 (FLAGS (\\\\Recent))'])",
        "rfc822 b'1 (RFC822 {",
        "True b' FLAGS (\\\\Seen \\\\Recent))'",
        "(b'1 (BODY[HEADER.FIELDS (SUBJECT)] {36}', b'Subject: Welcome to the lab mail\\r\\n\\r\\n'), b')', (b'2 (BODY[HEADER.FIELDS (SUBJECT)] {21}', b'Subject: appended\\r\\n\\r\\n')",
        "text ('OK', [(b'2 (BODY[TEXT] {10}', b'hi there\\r\\n'), b' FLAGS (\\\\Flagged \\\\Seen \\\\Recent))'])",
        "uid fetch ('OK', [b'2 (UID 2 FLAGS (\\\\Flagged \\\\Seen \\\\Recent) RFC822.SIZE 52)'])",
        "uid search ('OK', [b'1 2'])",
        "store ('OK', [b'1 (FLAGS (\\\\Deleted \\\\Seen \\\\Recent))'])",
        "expunge ('OK', [b'1'])",
        "search all ('OK', [b'1'])",
        "bad command FROBNICATE command error: BAD [b'Unknown command']",
        "bad set FETCH command error: BAD [b'Invalid message set 9']",
        "keyword STORE command error: BAD [b'Unknown flag CUSTOM",
        "select other ('NO', [b'[NONEXISTENT] No such mailbox; the lab has only INBOX'])",
        "examine ('OK', [b'1'])",
        "read-only store ('NO', [b'[READ-ONLY] Mailbox is read-only'])",
        "close ('OK', [b'CLOSE completed'])",
        "logout ('BYE', [b'lab IMAP4rev1 server logging out'])",
    ];
    for line in expect {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
}

const LESSON: &str = r#"
with smtplib.SMTP(host, smtp_port, timeout=10) as s:
    s.sendmail("teacher@example.com", ["learner@lab"],
        "From: teacher@example.com\r\nTo: learner@lab\r\nSubject: Homework 1\r\n\r\nPlease reply by Friday.\r\n")
p = pop()
count, _ = p.stat()
for i in range(1, count + 1):
    if b"Subject: Homework 1" in p.retr(i)[1]:
        print("pop found", i, "of", count)
p.quit()
m = imaplib.IMAP4(host, imap_port, timeout=10)
m.login("learner", "learner")
m.select("INBOX")
typ, data = m.search(None, "SUBJECT", '"Homework 1"')
print("imap found", data)
typ, data = m.fetch(data[0], "(BODY.PEEK[TEXT] FLAGS)")
print("imap text", data[0][1], data[1])
# POP3 deletes the welcome message while IMAP4 has the mailbox selected.
p = pop()
p.dele(1)
p.quit()
m.noop()
print("imap told", m.response("EXPUNGE"))
m.store("1", "+FLAGS", "\\Deleted")
m.expunge()
m.logout()
p = pop()
print("pop after imap", p.stat())
with smtplib.SMTP(host, smtp_port, timeout=10) as s:
    s.sendmail("teacher@example.com", ["anyone@lab"], "Subject: Homework 2\r\n\r\nx\r\n")
m = imaplib.IMAP4(host, imap_port, timeout=10)
m.login("learner", "learner")
m.select("INBOX")
print("imap new", m.search(None, "NEW"), m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0][1])
"#;

#[tokio::test]
async fn lesson_flow_smtp_then_pop3_and_imap4() {
    let out = run(&format!("{PRELUDE}{LESSON}")).await;
    let expect = [
        "pop found 2 of 2",
        "imap found [b'2']",
        "imap text b'Please reply by Friday.\\r\\n' b' FLAGS (\\\\Seen \\\\Recent))'",
        "imap told ('EXPUNGE', [b'1'])",
        "pop after imap (0, 0)",
        "imap new ('OK', [b'1']) b'Subject: Homework 2\\r\\n\\r\\n'",
    ];
    for line in expect {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
}

/// A raw client: lines without their CRLF, each within 5 s.
struct Raw {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        let (read, writer) = TcpStream::connect(addr)
            .await
            .expect("connect")
            .into_split();
        Raw {
            reader: BufReader::new(read),
            writer,
        }
    }

    /// The next line, or `"<eof>"`.
    async fn line(&mut self) -> String {
        let mut line = String::new();
        let read = self.reader.read_line(&mut line);
        let n = tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("a reply within 5 s")
            .expect("read");
        if n == 0 {
            return "<eof>".into();
        }
        line.trim_end_matches(['\r', '\n']).to_string()
    }

    async fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).await.expect("write");
    }

    async fn ask(&mut self, command: &str) -> String {
        self.send(&format!("{command}\r\n")).await;
        self.line().await
    }

    /// Lines up to and including the first that starts with `prefix`.
    async fn until(&mut self, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            let done = line.starts_with(prefix) || line == "<eof>";
            lines.push(line);
            if done {
                return lines;
            }
        }
    }
}

#[tokio::test]
async fn smtp_sequence_errors_pipelining_and_long_lines() {
    let relay = common::start_lab(&["--lab-idle-timeout", "5"]).await;
    let mut c = Raw::connect(relay.lab(Service::Smtp)).await;
    assert!(c.line().await.starts_with("220 lab ESMTP"));
    let long = "X".repeat(5000);
    let steps = [
        (
            "MAIL FROM:<a@example.com>",
            "503 5.5.1 Send HELO/EHLO first",
        ),
        ("HELO", "501 "),
        ("HELO client", "250 lab greets client"),
        ("MAIL FROM:<a@example.com> SIZE=10", "555 "),
        ("RCPT TO:<learner@lab>", "503 5.5.1 Need MAIL first"),
        ("DATA", "503 5.5.1 Need MAIL first"),
        ("MAIL FROM:a@example.com", "501 "),
        ("MAIL FROM:<a@example.com>", "250 "),
        (
            "MAIL FROM:<a@example.com>",
            "503 5.5.1 Sender already specified",
        ),
        ("DATA", "503 5.5.1 Need RCPT first"),
        ("RCPT TO:<x@lab.example.com>", "550 5.7.1"),
        ("RCPT TO:<Learner@LAB>", "250 "),
        ("RCPT TO:<postmaster>", "250 "),
        ("VRFY learner", "252 "),
        ("EXPN staff", "502 "),
        ("AUTH PLAIN", "503 5.5.1 Send EHLO first"),
        ("FROBNICATE", "500 5.5.2 Command not recognized"),
        (long.as_str(), "500 5.5.2 Line too long"),
        ("RSET", "250 "),
        ("DATA", "503 5.5.1 Need MAIL first"),
        ("NOOP", "250 "),
    ];
    for (command, reply) in steps {
        let got = c.ask(command).await;
        assert!(
            got.starts_with(reply),
            "{command:.20} → {got}, expected {reply}"
        );
    }
    c.send("EHLO client\r\n").await;
    assert_eq!(
        c.until("250 ").await.last().map(String::as_str),
        Some("250 HELP")
    );
    assert!(c.ask("AUTH CRAM-MD5").await.starts_with("504 "));
    assert!(c.ask("AUTH PLAIN !!!").await.starts_with("501 "));
    // Pipelined: all commands at once, the replies in order.
    c.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<nobody@example.net>\r\nRCPT TO:<learner@lab>\r\nDATA\r\n").await;
    for reply in ["250 ", "550 ", "250 ", "354 "] {
        let got = c.line().await;
        assert!(got.starts_with(reply), "{got}, expected {reply}");
    }
    c.send("Subject: raw\r\n\r\n..dot\r\n.\r\n").await;
    assert!(c.line().await.starts_with("250 2.0.0 OK: queued as 2"));
    assert!(c.ask("QUIT").await.starts_with("221 "));
    assert_eq!(c.line().await, "<eof>");

    let mut p = Raw::connect(relay.lab(Service::Pop3)).await;
    p.line().await;
    p.ask("USER learner").await;
    assert!(p.ask("PASS learner").await.starts_with("+OK"));
    p.send("RETR 2\r\n").await;
    let lines = p.until(".").await;
    assert!(
        lines.iter().any(|l| l == "..dot"),
        "stuffed again by POP3: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l == "\tfor <learner@lab>;"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn pop3_errors_in_each_state() {
    let relay = common::start_lab(&["--lab-idle-timeout", "5"]).await;
    let mut c = Raw::connect(relay.lab(Service::Pop3)).await;
    assert_eq!(c.line().await, "+OK lab POP3 server ready");
    let long = "USER ".repeat(100);
    let steps = [
        ("STAT", "-ERR log in first"),
        ("PASS learner", "-ERR send USER first"),
        ("FROB", "-ERR unknown command"),
        (long.as_str(), "-ERR line too long"),
        ("USER learner", "+OK"),
        ("PASS learner", "+OK learner's maildrop has 1 messages"),
        ("USER learner", "-ERR already logged in"),
        ("RETR 2", "-ERR no such message"),
        ("RETR x", "-ERR no such message"),
        ("TOP 1", "-ERR wrong arguments"),
        ("TOP 1 x", "-ERR invalid number of lines"),
        ("LIST 1", "+OK 1 "),
        ("UIDL 1", "+OK 1 1"),
        ("DELE 1", "+OK message 1 deleted"),
        ("DELE 1", "-ERR message already deleted"),
        ("LIST 1", "-ERR message already deleted"),
        ("STAT", "+OK 0 0"),
        ("NOOP", "+OK"),
    ];
    for (command, reply) in steps {
        let got = c.ask(command).await;
        assert!(
            got.starts_with(reply),
            "{command:.20} → {got}, expected {reply}"
        );
    }
    // Dropping the connection without QUIT deletes nothing (RFC 1939: no UPDATE state).
    drop(c);
    let mut c = Raw::connect(relay.lab(Service::Pop3)).await;
    c.line().await;
    c.ask("USER learner").await;
    assert!(c.ask("PASS learner").await.contains("has 1 messages"));
    // Three wrong passwords and the server hangs up.
    let mut c = Raw::connect(relay.lab(Service::Pop3)).await;
    c.line().await;
    for _ in 0..3 {
        c.ask("USER learner").await;
        assert!(c
            .ask("PASS nope")
            .await
            .starts_with("-ERR invalid password"));
    }
    assert_eq!(c.line().await, "<eof>");
}

/// Sends an IMAP4 command and reads up to its tagged reply (or a continuation, or an untagged BAD); asserts
/// that one of the lines starts with `expected`, and returns them.
async fn imap(c: &mut Raw, command: &str, expected: &str) -> Vec<String> {
    c.send(&format!("{command}\r\n")).await;
    let tag = format!("{} ", command.split(' ').next().unwrap_or(""));
    let mut lines = Vec::new();
    loop {
        let line = c.line().await;
        let tagged =
            line.starts_with(&tag) || (!expected.starts_with("* ") && line.starts_with(expected));
        let end = tagged || line.starts_with("+ ") || line.starts_with("* BAD") || line == "<eof>";
        lines.push(line);
        if end {
            break;
        }
    }
    assert!(
        lines.iter().any(|l| l.starts_with(expected)),
        "{command:.20} → {lines:?}, expected {expected}"
    );
    lines
}

#[tokio::test]
async fn imap_literals_states_and_bad_input() {
    let relay = common::start_lab(&["--lab-idle-timeout", "5"]).await;
    let mut c = Raw::connect(relay.lab(Service::Imap)).await;
    assert!(c.line().await.starts_with("* OK [CAPABILITY IMAP4rev1"));
    let long = format!("a6 {}", "X".repeat(5000));
    let steps = [
        ("a1 SELECT INBOX", "a1 BAD Log in first"),
        ("a1 FROBNICATE", "a1 BAD Unknown command"),
        ("a2 LOGIN learner", "a2 BAD Expected 2 arguments"),
        ("+ NOOP", "* BAD Expected a tag and a command"),
        ("a3", "* BAD Expected a tag and a command"),
        ("a4 LOGIN \"learner", "a4 BAD Bad quoted string"),
        ("a5 NOOP (", "a5 BAD Missing )"),
        (long.as_str(), "* BAD Line too long"),
        ("a7 APPEND INBOX {999999}", "a7 BAD Literal too big"),
        ("a8 LOGIN {7}", "+ Ready for literal data"),
        ("learner {7}", "+ Ready for literal data"),
        (
            "learner",
            "a8 OK [CAPABILITY IMAP4rev1 UNSELECT] LOGIN completed",
        ),
        ("a9 LOGIN learner learner", "a9 BAD Already logged in"),
        ("b1 FETCH 1 (FLAGS)", "b1 BAD No mailbox selected"),
        ("b2 CREATE Archive", "b2 NO "),
        ("b3 LIST \"\" \"\"", "* LIST (\\Noselect) \"/\" \"\""),
        ("b4 EXAMINE inbox", "* OK [PERMANENTFLAGS ()] Flags kept"),
        ("b5 FETCH 1 (BODY[TEXT])", "b5 OK FETCH completed"),
        // Read-only: fetching the body did not set \Seen.
        ("b6 FETCH 1 FLAGS", "* 1 FETCH (FLAGS (\\Recent))"),
        (
            "b7 FETCH 1 (BODYSTRUCTURE)",
            "b7 BAD Unknown or unsupported FETCH item BODYSTRUCTURE",
        ),
        (
            "b8 SEARCH BEFORE 1-Jan-2020",
            "b8 BAD Unknown or unsupported search key BEFORE",
        ),
        ("b9 SEARCH CHARSET KOI8-R ALL", "b9 NO [BADCHARSET"),
        (
            "c1 UID COPY 1 INBOX",
            "c1 BAD Unknown or unsupported command UID COPY",
        ),
        ("c2 EXPUNGE", "c2 NO [READ-ONLY]"),
        ("c3 UNSELECT", "c3 OK"),
        ("c4 FETCH 1 FLAGS", "c4 BAD No mailbox selected"),
        ("c5 LOGOUT", "* BYE"),
    ];
    for (command, expected) in steps {
        let lines = imap(&mut c, command, expected).await;
        if command.starts_with("b4") {
            assert_eq!(
                lines.last().map(String::as_str),
                Some("b4 OK [READ-ONLY] EXAMINE completed")
            );
        }
    }
    assert_eq!(c.line().await, "<eof>");
}

#[tokio::test]
async fn quiet_clients_are_dropped_after_the_idle_timeout() {
    let relay = common::start_lab(&["--lab-idle-timeout", "2"]).await;
    let mut waits = Vec::new();
    for service in [Service::Smtp, Service::Pop3, Service::Imap] {
        let addr = relay.lab(service);
        waits.push(tokio::spawn(async move {
            let mut socket = TcpStream::connect(addr).await.expect("connect");
            let start = Instant::now();
            let mut seen = Vec::new();
            let read = socket.read_to_end(&mut seen);
            tokio::time::timeout(Duration::from_secs(10), read)
                .await
                .expect("closed within 10 s")
                .expect("read");
            (start.elapsed(), String::from_utf8_lossy(&seen).into_owned())
        }));
    }
    let mut results = Vec::new();
    for wait in waits {
        results.push(wait.await.expect("task"));
    }
    for (elapsed, _) in &results {
        assert!(
            *elapsed >= Duration::from_millis(1800) && *elapsed < Duration::from_secs(6),
            "{elapsed:?}"
        );
    }
    assert!(
        results[0]
            .1
            .ends_with("421 4.4.2 lab Idle for too long, closing connection\r\n"),
        "{}",
        results[0].1
    );
    assert_eq!(
        results[1].1, "+OK lab POP3 server ready\r\n",
        "POP3 closes without a word"
    );
    assert!(
        results[2]
            .1
            .ends_with("* BYE Autologout; idle for too long\r\n"),
        "{}",
        results[2].1
    );
}
