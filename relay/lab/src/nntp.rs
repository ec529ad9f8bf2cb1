//! The lab's news server: NNTP (RFC 3977) on port 119, reading and posting, as CPython's `nntplib` uses it.
//!
//! Groups: `lab.general`, `lab.python` and `lab.announce` (read-only), each with a few built-in articles
//! shared by every session, followed by the articles this session posted ([`Store`]). An article's number in
//! a group never changes: built-in articles come first, posts are appended and never removed.
//!
//! Commands: CAPABILITIES, MODE READER, LIST [ACTIVE [wildmat] | NEWSGROUPS [wildmat] | OVERVIEW.FMT |
//! HEADERS], NEWGROUPS (always empty: the groups are older than any session), GROUP, LISTGROUP, ARTICLE,
//! HEAD, BODY, STAT (by number, by message-id, or the current article), NEXT, LAST, OVER and XOVER (a range
//! or a message-id), HDR and XHDR, DATE, HELP, POST, QUIT. No login is needed (no AUTHINFO) and posting is
//! allowed from the greeting on (200).
//!
//! POST: the article must have `Newsgroups`, `From` and `Subject` headers, name only existing groups that
//! accept posts, have a new message-id if it has one, and fit [`MAX_ARTICLE_BYTES`]; otherwise the reply is
//! 441. `Path`, `Date` and `Message-ID` are added when missing. The built-in articles go through the same
//! checks.
//!
//! Limits: lines of [`MAX_LINE`](super::line::MAX_LINE) bytes (a longer command gets 501), articles of
//! [`MAX_ARTICLE_BYTES`], [`MAX_POSTS`] posts per session, the idle timeout (400, then the connection
//! closes).
//!
//! Left out on purpose: AUTHINFO, STARTTLS, IHAVE and NEWNEWS (this is a reader's server, not a peer's),
//! COMPRESS, XPAT; articles are kept as text (bytes that are not UTF-8 are replaced).

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::net::TcpStream;

use super::clock::Utc;
use super::line::{Line, LineConn};
use super::{Context, LabState};

/// The largest article a client may post, headers included: plenty for exercises, and with
/// [`MAX_POSTS`] it bounds a session's news at 800 KiB.
pub const MAX_ARTICLE_BYTES: usize = 16 * 1024;
/// Most articles one session may post (a cross-post counts once).
pub const MAX_POSTS: usize = 50;
/// Longest message-id accepted (RFC 5536 3.1.3).
const MAX_MESSAGE_ID: usize = 250;

/// Name, description, and whether posting is allowed.
#[rustfmt::skip]
const GROUPS: [(&str, &str, bool); 3] = [
    ("lab.announce", "News about the Soket lab (read-only)", false),
    ("lab.general", "General chat for learners of the Soket course", true),
    ("lab.python", "Python socket programming: questions and tips", true),
];

/// The built-in articles, as a client would post them, separated by lines holding only `%`; numbered in
/// this order within each group.
const ARTICLES: &str = include_str!("nntp_articles.txt");

const CAPABILITIES: &str = "VERSION 2\nIMPLEMENTATION soket lab news server\nREADER\nPOST
LIST ACTIVE NEWSGROUPS OVERVIEW.FMT HEADERS\nOVER MSGID\nHDR";

/// The fields of an OVER line after the number (RFC 3977 8.4).
const OVERVIEW: &str = "Subject:\nFrom:\nDate:\nMessage-ID:\nReferences:\n:bytes\n:lines";

const HELP: &str = "\
This is news.lab, a small NNTP server (RFC 3977) for the Soket course.
Groups: lab.general, lab.python, lab.announce (read-only).
  CAPABILITIES                  what this server can do
  MODE READER                   accepted; always in reader mode
  LIST [ACTIVE [wildmat]]       groups with their last and first numbers
  LIST NEWSGROUPS [wildmat]     group descriptions
  LIST OVERVIEW.FMT             the fields of OVER
  NEWGROUPS yyyymmdd hhmmss     groups created since then (none)
  GROUP name                    select a group
  LISTGROUP [name [range]]      select a group and list its article numbers
  ARTICLE|HEAD|BODY|STAT [number|<message-id>]
  NEXT, LAST                    move to the next or previous article
  OVER|XOVER [range|<message-id>]         one summary line per article
  HDR|XHDR field [range|<message-id>]     one header of each article
  DATE                          the server's time (UTC)
  POST                          send an article (Newsgroups, From, Subject)
  QUIT                          say goodbye
Ranges: n, n-, n-m. Example: GROUP lab.general, then ARTICLE 1.";

/// An article: headers in order (unfolded) and the body with `\n` line ends.
struct Article {
    id: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Article {
    fn head_lines(&self) -> impl Iterator<Item = String> + '_ {
        self.headers.iter().map(|(n, v)| format!("{n}: {v}"))
    }

    /// A header or metadata item (`:bytes`, `:lines`) for OVER and HDR, on one line.
    fn field(&self, name: &str) -> String {
        let value = match name.to_ascii_lowercase().as_str() {
            ":bytes" => {
                let head: usize = self.head_lines().map(|l| l.len() + 2).sum();
                (head + 2 + self.body.lines().map(|l| l.len() + 2).sum::<usize>()).to_string()
            }
            ":lines" => self.body.lines().count().to_string(),
            _ => header(&self.headers, name).unwrap_or_default(),
        };
        value.replace(['\t', '\r', '\n'], " ")
    }
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    let found = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name));
    found.map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
}

/// The built-in articles of each group of [`GROUPS`], made once.
fn builtins() -> &'static [Vec<Arc<Article>>] {
    static BUILTINS: OnceLock<Vec<Vec<Arc<Article>>>> = OnceLock::new();
    BUILTINS.get_or_init(|| {
        let mut groups = vec![Vec::new(); GROUPS.len()];
        for text in ARTICLES.split("\n%\n") {
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            if let Ok((article, in_groups)) = parse(&lines) {
                let article = Arc::new(article);
                in_groups
                    .iter()
                    .for_each(|&g| groups[g].push(article.clone()));
            }
        }
        groups
    })
}

/// The articles a session posted.
#[derive(Default)]
pub struct Store {
    posts: Mutex<Posts>,
}

#[derive(Default)]
struct Posts {
    /// Group index in [`GROUPS`] → its posts in order (number = built-ins + index + 1).
    by_group: HashMap<usize, Vec<Arc<Article>>>,
    count: usize,
}

impl Store {
    fn posts(&self) -> std::sync::MutexGuard<'_, Posts> {
        self.posts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every article of a group, in number order (article `n` is at index `n - 1`).
    fn group(&self, group: usize) -> Vec<Arc<Article>> {
        let posts = self.posts();
        let mine = posts.by_group.get(&group).into_iter().flatten();
        builtins()[group].iter().chain(mine).cloned().collect()
    }

    fn by_id(&self, id: &str) -> Option<Arc<Article>> {
        let posts = self.posts();
        let mut all = builtins()
            .iter()
            .flatten()
            .chain(posts.by_group.values().flatten());
        all.find(|a| a.id == id).cloned()
    }

    /// Files a checked article in its groups, or says why not (the text of a 441 reply).
    fn add(&self, article: Article, groups: &[usize]) -> Result<(), String> {
        if self.by_id(&article.id).is_some() {
            return Err(format!("Duplicate message-id {}", article.id));
        }
        let mut posts = self.posts();
        if posts.count >= MAX_POSTS {
            return Err(format!(
                "Posting limit reached ({MAX_POSTS} articles per session)"
            ));
        }
        posts.count += 1;
        let article = Arc::new(article);
        for &g in groups {
            posts.by_group.entry(g).or_default().push(article.clone());
        }
        Ok(())
    }
}

/// Reads an article's lines (dot-stuffing already undone): checks the headers a post needs and adds the
/// ones the server adds. Returns the article and its groups, or what is wrong (for a 441 reply).
fn parse(lines: &[String]) -> Result<(Article, Vec<usize>), String> {
    let blank = lines
        .iter()
        .position(|l| l.is_empty())
        .unwrap_or(lines.len());
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in &lines[..blank] {
        if line.starts_with([' ', '\t']) {
            let (_, value) = headers
                .last_mut()
                .ok_or("Article starts with a continuation line")?;
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(format!("Not a header line: {line}"))?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("Bad header name: {name}"));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let newsgroups = header(&headers, "Newsgroups").ok_or("Missing Newsgroups header")?;
    header(&headers, "From").ok_or("Missing From header")?;
    header(&headers, "Subject").ok_or("Missing Subject header")?;
    let mut groups = Vec::new();
    for name in newsgroups
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let g = GROUPS.iter().position(|g| g.0 == name);
        let g = g.ok_or(format!("No such newsgroup: {name}"))?;
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let id = match header(&headers, "Message-ID") {
        Some(id) if is_message_id(&id) => id,
        Some(id) => return Err(format!("Bad Message-ID: {id}")),
        None => {
            // A counter shared by all sessions keeps the ids of posts in one second apart.
            static POSTED: AtomicU64 = AtomicU64::new(1);
            let n = POSTED.fetch_add(1, Ordering::Relaxed);
            let id = format!("<{}.{n}@news.lab>", super::clock::unix_now());
            headers.push(("Message-ID".into(), id.clone()));
            id
        }
    };
    if header(&headers, "Date").is_none() {
        headers.push(("Date".into(), Utc::now().rfc5322()));
    }
    if header(&headers, "Path").is_none() {
        headers.insert(0, ("Path".into(), "news.lab!not-for-mail".into()));
    }
    let body = lines.get(blank + 1..).unwrap_or_default().iter();
    let body = body.map(|l| format!("{l}\n")).collect();
    Ok((Article { id, headers, body }, groups))
}

/// Whether the session goes on after a command.
enum Flow {
    Continue,
    Close,
}

const IDLE: &str = "400 Idle for too long, closing connection";
const NO_GROUP: &str = "412 No newsgroup selected";
const NO_CURRENT: &str = "420 Current article number is invalid";

/// What a command gives: a whole reply, or an error reply line without its CRLF.
type Reply = Result<String, &'static str>;

struct Session {
    conn: LineConn,
    state: Arc<LabState>,
    /// The selected group (index in [`GROUPS`]).
    group: Option<usize>,
    /// The current article number in the selected group.
    current: Option<usize>,
}

/// Articles with their numbers in the selected group.
type Numbered = Vec<(usize, Arc<Article>)>;

/// Which article a command names.
enum Spec {
    Current,
    Number(usize),
    Id(String),
}

pub async fn serve(socket: TcpStream, context: Context) -> io::Result<()> {
    let mut session = Session {
        conn: LineConn::new(socket, context.idle_timeout),
        state: context.state,
        group: None,
        current: None,
    };
    let conn = &mut session.conn;
    conn.send_line("200 news.lab NNTP server ready, posting allowed")
        .await?;
    loop {
        let line = match session.conn.read_line().await? {
            Line::Text(line) => line,
            Line::TooLong => {
                session.conn.send_line("501 Line too long").await?;
                continue;
            }
            Line::Eof => return Ok(()),
            Line::TimedOut => {
                let _ = session.conn.send_line(IDLE).await;
                return Ok(());
            }
        };
        if let Flow::Close = session.command(&line).await? {
            return Ok(());
        }
    }
}

impl Session {
    async fn command(&mut self, line: &str) -> io::Result<Flow> {
        let mut words = line.split_whitespace();
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let args: Vec<&str> = words.collect();
        let reply = match (verb.as_str(), args.as_slice()) {
            ("CAPABILITIES", _) => Ok(multiline("101 Capability list:", CAPABILITIES.lines())),
            ("MODE", [mode]) if mode.eq_ignore_ascii_case("READER") => {
                Ok("200 Reader mode, posting allowed\r\n".into())
            }
            ("LIST", args) => list(&self.state.news, args),
            ("NEWGROUPS", [date, time] | [date, time, _]) if is_date(date, time) => {
                Ok(multiline("231 No new newsgroups", [""; 0]))
            }
            ("GROUP", [name]) => self.select(name, None),
            ("LISTGROUP", []) => match self.group {
                Some(g) => self.select(GROUPS[g].0, Some("1-")),
                None => Err(NO_GROUP),
            },
            ("LISTGROUP", [name]) => self.select(name, Some("1-")),
            ("LISTGROUP", [name, range]) => self.select(name, Some(range)),
            ("ARTICLE" | "HEAD" | "BODY" | "STAT", [] | [_]) => self.article(&verb, args.first()),
            ("NEXT", []) => self.step(1),
            ("LAST", []) => self.step(-1),
            ("OVER" | "XOVER", [] | [_]) => self.over(args.first().copied()),
            ("HDR" | "XHDR", [field] | [field, _]) => self.hdr(&verb, field, args.get(1).copied()),
            ("DATE", []) => Ok(format!("111 {}\r\n", Utc::now().compact())),
            ("HELP", []) => Ok(multiline("100 Help text follows", HELP.lines())),
            ("POST", []) => return self.post().await,
            ("QUIT", []) => {
                self.conn.send_line("205 Goodbye").await?;
                return Ok(Flow::Close);
            }
            (verb, _) if KNOWN.split(' ').any(|k| k == verb) => {
                Err("501 Syntax error in arguments")
            }
            _ => Err("500 Unknown command"),
        };
        let reply = reply.unwrap_or_else(|e| format!("{e}\r\n"));
        self.conn.send(reply.as_bytes()).await?;
        Ok(Flow::Continue)
    }

    /// GROUP, and LISTGROUP with a range of numbers to list.
    fn select(&mut self, name: &str, listing: Option<&str>) -> Reply {
        let g = GROUPS.iter().position(|g| g.0 == name);
        let g = g.ok_or("411 No such newsgroup")?;
        let range = match listing {
            Some(range) => Some(parse_range(range).ok_or("501 Syntax error in range")?),
            None => None,
        };
        let count = self.state.news.group(g).len();
        self.group = Some(g);
        self.current = (count > 0).then_some(1);
        let status = format!("211 {count} 1 {count} {name}");
        Ok(match range {
            None => format!("{status}\r\n"),
            Some((lo, hi)) => {
                let numbers = (lo.max(1)..=hi.min(count)).map(|n| n.to_string());
                multiline(&format!("{status} list follows"), numbers)
            }
        })
    }

    /// Finds the article a command names: in the selected group by number, or anywhere by message-id
    /// (numbered in the selected group if it is there, 0 if not).
    fn find(&mut self, spec: Spec) -> Result<(usize, Arc<Article>), &'static str> {
        if let Spec::Id(id) = spec {
            let article = self.state.news.by_id(&id);
            let article = article.ok_or("430 No article with that message-id")?;
            let number = self.group.and_then(|g| {
                let articles = self.state.news.group(g);
                articles.iter().position(|a| a.id == id).map(|i| i + 1)
            });
            return Ok((number.unwrap_or(0), article));
        }
        let g = self.group.ok_or(NO_GROUP)?;
        let number = match spec {
            Spec::Number(n) => n,
            _ => self.current.ok_or(NO_CURRENT)?,
        };
        let articles = self.state.news.group(g);
        let article = number.checked_sub(1).and_then(|i| articles.get(i));
        let article = article.ok_or("423 No article with that number")?.clone();
        self.current = Some(number);
        Ok((number, article))
    }

    fn article(&mut self, verb: &str, arg: Option<&&str>) -> Reply {
        let spec = match arg {
            None => Spec::Current,
            Some(id) if is_message_id(id) => Spec::Id(id.to_string()),
            Some(n) => Spec::Number(n.parse().map_err(|_| "501 Bad article number")?),
        };
        let (number, article) = self.find(spec)?;
        let id = &article.id;
        let head = article.head_lines();
        let body = article.body.lines().map(str::to_string);
        Ok(match verb {
            "ARTICLE" => {
                let all = head.chain([String::new()]).chain(body);
                multiline(&format!("220 {number} {id} Article follows"), all)
            }
            "HEAD" => multiline(&format!("221 {number} {id} Headers follow"), head),
            "BODY" => multiline(&format!("222 {number} {id} Body follows"), body),
            _ => format!("223 {number} {id} Article exists\r\n"),
        })
    }

    /// NEXT (+1) and LAST (-1).
    fn step(&mut self, by: isize) -> Reply {
        let g = self.group.ok_or(NO_GROUP)?;
        let current = self.current.ok_or(NO_CURRENT)?;
        let articles = self.state.news.group(g);
        let target = current
            .checked_add_signed(by)
            .filter(|&n| n >= 1 && n <= articles.len());
        match target {
            Some(n) => {
                self.current = Some(n);
                Ok(format!("223 {n} {} Article found\r\n", articles[n - 1].id))
            }
            None if by > 0 => Err("421 No next article in this group"),
            None => Err("422 No previous article in this group"),
        }
    }

    /// The articles a range, a message-id or nothing (the current article) names, for OVER and HDR.
    fn select_many(&mut self, arg: Option<&str>) -> Result<Numbered, &'static str> {
        let Some(range) = arg else {
            return Ok(vec![self.find(Spec::Current)?]);
        };
        if range.starts_with('<') {
            return Ok(vec![(0, self.find(Spec::Id(range.to_string()))?.1)]);
        }
        let (lo, hi) = parse_range(range).ok_or("501 Syntax error in range")?;
        let articles = self.state.news.group(self.group.ok_or(NO_GROUP)?);
        let found: Vec<_> = (lo.max(1)..=hi.min(articles.len()))
            .map(|n| (n, articles[n - 1].clone()))
            .collect();
        if found.is_empty() {
            return Err("423 No articles in that range");
        }
        Ok(found)
    }

    fn over(&mut self, arg: Option<&str>) -> Reply {
        let lines = self.select_many(arg)?.into_iter().map(|(n, a)| {
            let fields = OVERVIEW.lines().map(|f| a.field(f.trim_end_matches(':')));
            format!("{n}\t{}", fields.collect::<Vec<_>>().join("\t"))
        });
        Ok(multiline("224 Overview information follows", lines))
    }

    fn hdr(&mut self, verb: &str, field: &str, arg: Option<&str>) -> Reply {
        let articles = self.select_many(arg)?;
        let lines = articles
            .iter()
            .map(|(n, a)| format!("{n} {}", a.field(field)));
        let code = if verb == "HDR" { "225" } else { "221" };
        Ok(multiline(&format!("{code} Headers follow"), lines))
    }

    async fn post(&mut self) -> io::Result<Flow> {
        let conn = &mut self.conn;
        conn.send_line("340 Send article to be posted. End with <CR-LF>.<CR-LF>")
            .await?;
        let mut lines = Vec::new();
        let mut size = 0;
        let mut refused = None;
        loop {
            let line = match self.conn.read_line().await? {
                Line::Text(line) if line == "." => break,
                Line::Text(line) => line,
                Line::TooLong => {
                    refused.get_or_insert("Article has a line too long".to_string());
                    continue;
                }
                Line::Eof => return Ok(Flow::Close),
                Line::TimedOut => {
                    let _ = self.conn.send_line(IDLE).await;
                    return Ok(Flow::Close);
                }
            };
            size += line.len() + 2;
            if size > MAX_ARTICLE_BYTES {
                // Read on to the final dot, so the reply comes when the client expects it.
                refused.get_or_insert(format!(
                    "Article too big (at most {MAX_ARTICLE_BYTES} bytes)"
                ));
                continue;
            }
            let unstuffed = line.strip_prefix('.').map(str::to_string);
            lines.push(unstuffed.unwrap_or(line));
        }
        let reply = match refused.map_or_else(|| self.accept(&lines), Err) {
            Ok(id) => format!("240 Article received {id}"),
            Err(why) => format!("441 {why}"),
        };
        self.conn.send_line(&reply).await?;
        Ok(Flow::Continue)
    }

    /// Checks a posted article and stores it; returns its message-id.
    fn accept(&mut self, lines: &[String]) -> Result<String, String> {
        let (article, groups) = parse(lines)?;
        if let Some(&g) = groups.iter().find(|&&g| !GROUPS[g].2) {
            return Err(format!("{} is read-only", GROUPS[g].0));
        }
        let id = article.id.clone();
        self.state.news.add(article, &groups)?;
        Ok(id)
    }
}

/// The commands this server knows, for telling 501 (bad arguments) from 500 (unknown command).
const KNOWN: &str =
    "CAPABILITIES MODE LIST NEWGROUPS GROUP LISTGROUP ARTICLE HEAD BODY STAT NEXT LAST OVER \
XOVER HDR XHDR DATE HELP POST QUIT";

/// LIST and its keywords.
fn list(store: &Store, args: &[&str]) -> Reply {
    let keyword = args.first().map(|k| k.to_ascii_uppercase());
    let pattern = args.get(1).copied().unwrap_or("*");
    let groups = GROUPS.iter().enumerate();
    let matching = groups.filter(|(_, g)| wildmat(pattern, g.0));
    Ok(match (keyword.as_deref(), args.len()) {
        (None | Some("ACTIVE"), 0..=2) => {
            let lines = matching.map(|(i, (name, _, posting))| {
                let flag = if *posting { "y" } else { "n" };
                format!("{name} {} 1 {flag}", store.group(i).len())
            });
            multiline("215 List of newsgroups follows", lines)
        }
        (Some("NEWSGROUPS"), 1..=2) => {
            let lines = matching.map(|(_, (name, text, _))| format!("{name}\t{text}"));
            multiline("215 Descriptions follow", lines)
        }
        (Some("OVERVIEW.FMT"), 1) => multiline("215 Order of fields follows", OVERVIEW.lines()),
        (Some("HEADERS"), 1) => multiline("215 Headers and metadata items supported", [":"]),
        _ => return Err("501 Unknown LIST keyword or bad arguments"),
    })
}

/// A multi-line reply: status line, dot-stuffed lines, and the final dot.
fn multiline<S: AsRef<str>>(status: &str, lines: impl IntoIterator<Item = S>) -> String {
    let mut reply = format!("{status}\r\n");
    for line in lines {
        let line = line.as_ref();
        if line.starts_with('.') {
            reply.push('.');
        }
        reply.push_str(line);
        reply.push_str("\r\n");
    }
    reply.push_str(".\r\n");
    reply
}

/// `n`, `n-` or `n-m` (RFC 3977 8.3).
fn parse_range(range: &str) -> Option<(usize, usize)> {
    let number = |s: &str| -> Option<usize> {
        let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| s.parse().unwrap_or(usize::MAX))
    };
    match range.split_once('-') {
        None => number(range).map(|n| (n, n)),
        Some((lo, "")) => Some((number(lo)?, usize::MAX)),
        Some((lo, hi)) => Some((number(lo)?, number(hi)?)),
    }
}

fn is_message_id(id: &str) -> bool {
    let inner = id.strip_prefix('<').and_then(|s| s.strip_suffix('>'));
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !b"<>".contains(&b))
    };
    let parts = inner.and_then(|s| s.split_once('@'));
    id.len() <= MAX_MESSAGE_ID && parts.is_some_and(|(l, r)| ok(l) && ok(r))
}

/// NEWGROUPS' `yymmdd` or `yyyymmdd`, and `hhmmss`.
fn is_date(date: &str, time: &str) -> bool {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    digits(date) && digits(time) && matches!(date.len(), 6 | 8) && time.len() == 6
}

/// RFC 3977 4.2's wildmat: comma-separated patterns with `*` and `?`, `!` negates; the last match decides.
fn wildmat(pattern: &str, name: &str) -> bool {
    let mut matched = false;
    for part in pattern.split(',') {
        let negated = part.starts_with('!');
        if super::glob(
            part.trim_start_matches('!').as_bytes(),
            name.as_bytes(),
            Some(b'?'),
        ) {
            matched = !negated;
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_dates_and_patterns() {
        assert_eq!(
            builtins().iter().map(Vec::len).collect::<Vec<_>>(),
            [3, 3, 3]
        );
        assert!(wildmat("lab.*,!lab.announce", "lab.python"));
        assert!(!wildmat("lab.*,!lab.announce", "lab.announce"));
        assert!(
            super::super::glob(b"*a*b", b"xxaxxb", Some(b'?'))
                && !super::super::glob(b"a?", b"a", Some(b'?'))
        );
        assert_eq!(parse_range("3-"), Some((3, usize::MAX)));
        assert!(is_message_id("<a@b>") && !is_message_id("<a b@c>") && !is_message_id("a@b"));
    }
}
