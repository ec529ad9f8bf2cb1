//! The lab's NNTP server, spoken to by CPython's `nntplib` and by raw sockets.

mod common;

use std::time::{Duration, Instant};

use soket_relay::lab::Service;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn run(script: &str) -> String {
    let relay = common::start_lab(&["--lab-idle-timeout", "5"]).await;
    let addr = relay.lab(Service::Nntp);
    let out = common::python3(script, &[&addr.ip().to_string(), &addr.port().to_string()]).await;
    out.assert_ok().to_string()
}

const READ: &str = r#"
import sys, nntplib
s = nntplib.NNTP(sys.argv[1], int(sys.argv[2]))
print("welcome", s.getwelcome())
print("caps", sorted(s.getcapabilities()))
resp, groups = s.list()
for g in groups:
    print("list", g.group, g.last, g.first, g.flag)
resp, descriptions = s.descriptions("lab.*")
print("descriptions", sorted(descriptions.items()))
resp, count, first, last, name = s.group("lab.general")
print("group", count, first, last, name)
resp, overviews = s.over((first, None))
for number, over in overviews:
    print("over", number, over["subject"], "|", over["message-id"], "|", over["references"], "|", over[":lines"])
resp, info = s.article(1)
print("article", info.number, info.message_id, b"\n".join(info.lines).decode())
resp, info = s.head("<re-what-is-a-socket@news.lab>")
print("head", info.number, [l.decode() for l in info.lines])
resp, info = s.body("<tip-sendall@news.lab>")
print("body", info.number, info.lines[0].decode())
print("stat", s.stat()[1:])
print("next", s.next()[1:])
print("last", s.last()[1:])
resp, count, first, last, name = s.group("lab.python")
resp, info = s.body(1)
print("dotline", [l.decode() for l in info.lines if l.startswith(b".")])
resp, headers = s.xhdr("subject", "1-2")
print("xhdr", headers)
print("date", s.date()[1].year > 2000)
print("help", s.help()[1][0])
print("quit", s.quit())
"#;

#[tokio::test]
async fn nntplib_lists_groups_and_reads_articles() {
    let out = run(READ).await;
    assert!(out.contains("welcome 200 "), "{out}");
    assert!(
        out.contains("'OVER'") && out.contains("'POST'") && out.contains("'READER'"),
        "{out}"
    );
    assert!(out.contains("list lab.announce 3 1 n"), "{out}");
    assert!(out.contains("list lab.general 3 1 y"), "{out}");
    assert!(out.contains("list lab.python 3 1 y"), "{out}");
    assert!(
        out.contains("('lab.python', 'Python socket programming: questions and tips')"),
        "{out}"
    );
    assert!(out.contains("group 3 1 3 lab.general"), "{out}");
    assert!(
        out.contains("over 1 Welcome to news.lab! | <welcome@news.lab> |  | 5"),
        "{out}"
    );
    assert!(
        out.contains("over 3 Re: What is a socket? | <re-what-is-a-socket@news.lab> | <what-is-a-socket@news.lab> |"),
        "{out}"
    );
    assert!(
        out.contains("article 1 <welcome@news.lab> Path: news.lab!not-for-mail"),
        "{out}"
    );
    assert!(out.contains("\n\nWelcome! This is"), "{out}");
    assert!(
        out.contains("head 3 ["),
        "the article is in the selected group: {out}"
    );
    assert!(
        out.contains("'References: <what-is-a-socket@news.lab>'"),
        "{out}"
    );
    assert!(
        out.contains("body 0 socket.send() returns"),
        "not in the selected group: {out}"
    );
    assert!(out.contains("stat (1, '<welcome@news.lab>')"), "{out}");
    assert!(
        out.contains("next (2, '<what-is-a-socket@news.lab>')"),
        "{out}"
    );
    assert!(out.contains("last (1, '<welcome@news.lab>')"), "{out}");
    assert!(
        out.contains("dotline ['.']"),
        "a lone dot in a body survives: {out}"
    );
    assert!(
        out.contains(
            "xhdr [('1', 'A tour of nntplib'), ('2', 'Tip: send() may send less than you asked')]"
        ),
        "{out}"
    );
    assert!(out.contains("date True"), "{out}");
    assert!(out.contains("help This is news.lab"), "{out}");
    assert!(out.contains("quit 205"), "{out}");
}

const POST: &str = r#"
import sys, nntplib
host, port = sys.argv[1], int(sys.argv[2])
s = nntplib.NNTP(host, port)
article = b"""From: Learner <learner@lab>
Newsgroups: lab.python, lab.general
Subject: My first post

Hello from nntplib!
.leading dot
"""
print("post", s.post(article))
resp, count, first, last, name = s.group("lab.python")
print("python", count, first, last)
resp, info = s.article(last)
lines = [l.decode() for l in info.lines]
print("id", info.message_id)
print("lines", lines)
s.quit()

# Another connection of the same session sees it, in both groups, by number and by message-id.
s = nntplib.NNTP(host, port)
resp, count, first, last, name = s.group("lab.general")
print("general", count, last)
resp, info = s.head(info.message_id)
print("found", info.number, [l.decode() for l in info.lines if l.startswith(b"Subject")])
print("listed", [(g.group, g.last) for g in s.list()[1]])
resp, overviews = s.over((last, last))
print("over", overviews[0][1]["subject"])

def refused(data):
    try:
        s.post(data)
    except nntplib.NNTPTemporaryError as e:
        return str(e)
    return "accepted"

print("no-newsgroups", refused(b"From: a@lab\nSubject: x\n\nbody\n"))
print("no-from", refused(b"Newsgroups: lab.general\nSubject: x\n\nbody\n"))
print("no-group", refused(b"From: a@lab\nNewsgroups: lab.nothing\nSubject: x\n\nbody\n"))
print("readonly", refused(b"From: a@lab\nNewsgroups: lab.announce\nSubject: x\n\nbody\n"))
print("bad-header", refused(b"From: a@lab\nNewsgroups: lab.general\nSubject x\n\nbody\n"))
print("too-big", refused(b"From: a@lab\nNewsgroups: lab.general\nSubject: big\n\n" + (b"x" * 1000 + b"\n") * 20))
print("dup", refused(b"From: a@lab\nNewsgroups: lab.general\nSubject: x\nMessage-ID: <welcome@news.lab>\n\nb\n"))
print("still", s.group("lab.general")[1])
"#;

#[tokio::test]
async fn nntplib_posts_an_article_and_finds_it() {
    let out = run(POST).await;
    assert!(out.contains("post 240 "), "{out}");
    assert!(out.contains("python 4 1 4"), "{out}");
    assert!(
        out.contains("'From: Learner <learner@lab>'") && out.contains("'Subject: My first post'"),
        "{out}"
    );
    assert!(
        out.contains("'Path: news.lab!not-for-mail'"),
        "Path added: {out}"
    );
    assert!(out.contains("'Date: "), "Date added: {out}");
    assert!(
        out.contains("'Message-ID: <") && out.contains("@news.lab>', 'Date: "),
        "Message-ID added: {out}"
    );
    assert!(
        out.contains("'Hello from nntplib!', '.leading dot'"),
        "dot-stuffing undone: {out}"
    );
    assert!(out.contains("general 4 4"), "cross-posted: {out}");
    assert!(out.contains("found 4 ['Subject: My first post']"), "{out}");
    assert!(
        out.contains("('lab.general', '4')") && out.contains("('lab.announce', '3')"),
        "{out}"
    );
    assert!(out.contains("over My first post"), "{out}");
    assert!(
        out.contains("no-newsgroups 441 Missing Newsgroups"),
        "{out}"
    );
    assert!(out.contains("no-from 441 Missing From"), "{out}");
    assert!(
        out.contains("no-group 441 No such newsgroup: lab.nothing"),
        "{out}"
    );
    assert!(
        out.contains("readonly 441 lab.announce is read-only"),
        "{out}"
    );
    assert!(out.contains("bad-header 441 Not a header line"), "{out}");
    assert!(out.contains("too-big 441 Article too big"), "{out}");
    assert!(out.contains("dup 441 Duplicate message-id"), "{out}");
    assert!(
        out.contains("still 4"),
        "refused posts are not stored: {out}"
    );
}

const ERRORS: &str = r#"
import sys, nntplib
s = nntplib.NNTP(sys.argv[1], int(sys.argv[2]))
def attempt(name, call):
    try:
        print(name, "ok", call())
    except nntplib.NNTPError as e:
        print(name, type(e).__name__, e)
attempt("no-group", lambda: s.group("alt.nothing"))
attempt("unselected", lambda: s.article(1))
attempt("unselected-next", lambda: s.next())
attempt("no-id", lambda: s.article("<nothing@lab>"))
attempt("bad-command", lambda: s._shortcmd("FROBNICATE"))
attempt("bad-args", lambda: s._shortcmd("GROUP"))
attempt("bad-number", lambda: s._shortcmd("STAT x1"))
attempt("bad-list", lambda: s._shortcmd("LIST NOTHING"))
s.group("lab.announce")
attempt("no-number", lambda: s.article(99))
attempt("no-next", lambda: (s.stat(3), s.next()))
attempt("no-last", lambda: (s.stat(1), s.last()))
attempt("no-range", lambda: s.over((50, 60)))
attempt("too-long", lambda: s._shortcmd("HELP " + "x" * 5000))
attempt("after", lambda: s.stat(1))
"#;

#[tokio::test]
async fn nntplib_gets_the_error_replies() {
    let out = run(ERRORS).await;
    for expected in [
        "no-group NNTPTemporaryError 411",
        "unselected NNTPTemporaryError 412",
        "unselected-next NNTPTemporaryError 412",
        "no-id NNTPTemporaryError 430",
        "bad-command NNTPPermanentError 500",
        "bad-args NNTPPermanentError 501",
        "bad-number NNTPPermanentError 501",
        "bad-list NNTPPermanentError 501",
        "no-number NNTPTemporaryError 423",
        "no-next NNTPTemporaryError 421",
        "no-last NNTPTemporaryError 422",
        "no-range NNTPTemporaryError 423",
        "too-long NNTPPermanentError 501",
        "after ok ('223 1 <lab-open@news.lab>",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

const LIMIT: &str = r#"
import sys, nntplib
s = nntplib.NNTP(sys.argv[1], int(sys.argv[2]))
for i in range(60):
    try:
        s.post(b"From: a@lab\nNewsgroups: lab.general\nSubject: post %d\n\nbody\n" % i)
    except nntplib.NNTPTemporaryError as e:
        print("refused", i, e)
        break
print("count", s.group("lab.general")[1])
"#;

#[tokio::test]
async fn posts_per_session_are_bounded() {
    let out = run(LIMIT).await;
    assert!(
        out.contains("refused 50 441 Posting limit reached"),
        "{out}"
    );
    assert!(out.contains("count 53"), "{out}");
}

async fn next(read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, line: &mut String) -> String {
    line.clear();
    read.read_line(line).await.expect("read");
    line.clone()
}

#[tokio::test]
async fn raw_post_unstuffs_and_a_quiet_client_is_dropped() {
    let relay = common::start_lab(&["--lab-idle-timeout", "2"]).await;
    let socket = TcpStream::connect(relay.lab(Service::Nntp))
        .await
        .expect("connect");
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    let mut line = String::new();
    assert!(next(&mut read, &mut line).await.starts_with("200 "));
    let post = "POST\r\nNewsgroups: lab.general\r\nFrom: raw@lab\r\nSubject: raw\r\nMessage-ID: <raw@lab>\r\n\r\n..\r\n...two\r\n.\r\n";
    write.write_all(post.as_bytes()).await.expect("write");
    assert!(next(&mut read, &mut line).await.starts_with("340 "));
    assert_eq!(
        next(&mut read, &mut line).await,
        "240 Article received <raw@lab>\r\n"
    );
    write.write_all(b"BODY <raw@lab>\r\n").await.expect("write");
    let mut got = Vec::new();
    loop {
        let l = next(&mut read, &mut line).await;
        if l == ".\r\n" || l.is_empty() {
            break;
        }
        got.push(l);
    }
    assert_eq!(
        got,
        ["222 0 <raw@lab> Body follows\r\n", "..\r\n", "...two\r\n"]
    );

    let start = Instant::now();
    let last = next(&mut read, &mut line).await;
    assert!(last.starts_with("400 "), "{last:?}");
    assert_eq!(next(&mut read, &mut line).await, "", "closed after the 400");
    let waited = start.elapsed();
    assert!(
        waited > Duration::from_millis(1500) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}
