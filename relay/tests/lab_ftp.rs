//! The lab's FTP server, tested with clients nobody here wrote: CPython's `ftplib` and curl, plus raw
//! protocol lines for what those never send.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use soket_relay::lab::{Service, FTP_MAX_FILE_BYTES, FTP_MAX_SESSION_BYTES};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn lab_ftp() -> (common::TestRelay, SocketAddr) {
    let relay = common::start_lab(&["--lab-idle-timeout", "2"]).await;
    let addr = relay.lab(Service::Ftp);
    (relay, addr)
}

async fn python(script: &str, addr: SocketAddr, extra: &[&str]) -> common::PythonRun {
    let ip = addr.ip().to_string();
    let port = addr.port().to_string();
    let mut args = vec![ip.as_str(), port.as_str()];
    args.extend_from_slice(extra);
    common::python3(script, &args).await
}

const ANONYMOUS_READS: &str = r#"
import ftplib, hashlib, sys
ftp = ftplib.FTP()
print(ftp.connect(sys.argv[1], int(sys.argv[2]), timeout=10))
print(ftp.login())
print("pwd", ftp.pwd())
print("root", sorted(ftp.nlst()))
ftp.cwd("pub")
print("pwd", ftp.pwd())
print("pub", sorted(ftp.nlst()))
lines = []
ftp.dir(lines.append)
for line in lines: print("dir", line)
chunks = []
ftp.retrbinary("RETR bytes.bin", chunks.append)
data = b"".join(chunks)
print("bytes.bin", len(data), data == bytes(range(256)), hashlib.sha256(data).hexdigest() == hashlib.sha256(bytes(range(256))).hexdigest())
print("size", ftp.size("bytes.bin"))
print("mdtm", ftp.sendcmd("MDTM README.txt"))
text = []
ftp.retrlines("RETR hello.txt", text.append)
print("hello", text[0])
ftp.cwd("..")
ftp.cwd("..")
print("after cd .. twice", ftp.pwd())
ftp.cwd("/pub/../../../..")
print("after escape", ftp.pwd())
try:
    ftp.cwd("/home/learner")
except ftplib.error_perm as e:
    print("home closed", e)
try:
    ftp.retrbinary("RETR ../../../../etc/passwd", print)
except ftplib.error_perm as e:
    print("passwd", e)
print(ftp.quit())
"#;

#[tokio::test]
async fn ftplib_anonymous_lists_and_downloads_the_lesson_files() {
    let (_relay, addr) = lab_ftp().await;
    let out = python(ANONYMOUS_READS, addr, &[]).await;
    let stdout = out.assert_ok();
    assert!(stdout.starts_with("220 "), "{stdout}");
    assert!(stdout.contains("\n230 "), "{stdout}");
    assert!(stdout.contains("pwd /\n"), "{stdout}");
    assert!(
        stdout.contains("root ['home', 'incoming', 'pub']"),
        "{stdout}"
    );
    assert!(stdout.contains("pwd /pub\n"), "{stdout}");
    assert!(
        stdout.contains("pub ['README.txt', 'bytes.bin', 'hello.txt']"),
        "{stdout}"
    );
    assert!(
        stdout.contains("dir -r--r--r-- 1 ftp ftp      256 Jan  1  2025 bytes.bin"),
        "{stdout}"
    );
    assert!(stdout.contains("bytes.bin 256 True True"), "{stdout}");
    assert!(stdout.contains("size 256"), "{stdout}");
    assert!(stdout.contains("mdtm 213 20250101000000"), "{stdout}");
    assert!(stdout.contains("hello Hello from ftp.lab!"), "{stdout}");
    assert!(stdout.contains("after cd .. twice /\n"), "{stdout}");
    assert!(stdout.contains("after escape /\n"), "{stdout}");
    assert!(stdout.contains("home closed 550"), "{stdout}");
    assert!(stdout.contains("passwd 550"), "{stdout}");
    assert!(stdout.contains("221 Goodbye."), "{stdout}");
}

const LEARNER_UPLOADS: &str = r#"
import ftplib, hashlib, io, sys
host, port = sys.argv[1], int(sys.argv[2])
ftp = ftplib.FTP()
ftp.connect(host, port, timeout=10)
print(ftp.login("learner", "learner"))
print("pwd", ftp.pwd())
data = bytes((i * 7 + i // 256) % 256 for i in range(100_000))
print(ftp.storbinary("STOR notes.bin", io.BytesIO(data)))
print("size", ftp.size("notes.bin"))
back = io.BytesIO()
ftp.retrbinary("RETR notes.bin", back.write)
print("same", hashlib.sha256(back.getvalue()).digest() == hashlib.sha256(data).digest())
print(ftp.storbinary("APPE notes.bin", io.BytesIO(b"tail")))
print("appended", ftp.size("notes.bin"))
print(ftp.storlines("STOR poem.txt", io.BytesIO(b"one\ntwo\n")))
lines = []
ftp.retrlines("RETR poem.txt", lines.append)
print("poem", lines)
ftp.voidcmd("TYPE I")
print("poem bytes", ftp.size("poem.txt"))
print(ftp.mkd("drafts"))
print(ftp.storbinary("STOR drafts/a.txt", io.BytesIO(b"draft")))
print("drafts", ftp.nlst("drafts"))
try:
    ftp.rmd("drafts")
except ftplib.error_perm as e:
    print("rmd full", e)
print(ftp.delete("drafts/a.txt"))
print(ftp.rmd("drafts"))
print("home", sorted(ftp.nlst()))
try:
    ftp.storbinary("STOR /pub/mine.txt", io.BytesIO(b"x"))
except ftplib.error_perm as e:
    print("pub is read-only", e)
try:
    ftp.delete("/pub/README.txt")
except ftplib.error_perm as e:
    print("pub delete", e)
print(ftp.storbinary("STOR /incoming/shared.txt", io.BytesIO(b"for anonymous")))
ftp.quit()

anon = ftplib.FTP()
anon.connect(host, port, timeout=10)
anon.login("anonymous", "me@example.com")
got = []
anon.retrbinary("RETR /incoming/shared.txt", got.append)
print("anonymous reads", b"".join(got))
try:
    anon.storbinary("STOR /home/learner/x.txt", io.BytesIO(b"x"))
except ftplib.error_perm as e:
    print("anonymous home", e)
anon.quit()
"#;

#[tokio::test]
async fn ftplib_learner_uploads_and_reads_back() {
    let (_relay, addr) = lab_ftp().await;
    let out = python(LEARNER_UPLOADS, addr, &[]).await;
    let stdout = out.assert_ok();
    assert!(stdout.starts_with("230 "), "{stdout}");
    assert!(stdout.contains("pwd /home/learner\n"), "{stdout}");
    assert!(stdout.contains("226 Transfer complete."), "{stdout}");
    assert!(stdout.contains("size 100000"), "{stdout}");
    assert!(stdout.contains("same True"), "{stdout}");
    assert!(stdout.contains("appended 100004"), "{stdout}");
    assert!(stdout.contains("poem ['one', 'two']"), "{stdout}");
    assert!(stdout.contains("poem bytes 8"), "{stdout}");
    assert!(stdout.contains("/home/learner/drafts"), "{stdout}");
    assert!(stdout.contains("drafts ['a.txt']"), "{stdout}");
    assert!(stdout.contains("rmd full 550"), "{stdout}");
    assert!(
        stdout.contains("home ['notes.bin', 'poem.txt']"),
        "{stdout}"
    );
    assert!(stdout.contains("pub is read-only 550"), "{stdout}");
    assert!(stdout.contains("pub delete 550"), "{stdout}");
    assert!(
        stdout.contains("anonymous reads b'for anonymous'"),
        "{stdout}"
    );
    assert!(stdout.contains("anonymous home 550"), "{stdout}");
}

const ERRORS: &str = r#"
import ftplib, sys
host, port = sys.argv[1], int(sys.argv[2])
ftp = ftplib.FTP()
ftp.connect(host, port, timeout=10)
def attempt(label, f, *args):
    try:
        print(label, "ok", f(*args))
    except ftplib.all_errors as e:
        print(label, type(e).__name__, e)
attempt("before login", ftp.sendcmd, "PWD")
attempt("pass first", ftp.sendcmd, "PASS x")
attempt("wrong password", ftp.login, "learner", "wrong")
attempt("unknown user", ftp.login, "root", "root")
attempt("login", ftp.login, "learner", "learner")
attempt("bad command", ftp.sendcmd, "FROB")
attempt("no argument", ftp.sendcmd, "RETR")
attempt("type x", ftp.sendcmd, "TYPE X")
attempt("type e", ftp.sendcmd, "TYPE E")
attempt("mode b", ftp.sendcmd, "MODE B")
attempt("stru f", ftp.sendcmd, "STRU F")
attempt("port", ftp.sendcmd, "PORT 127,0,0,1,4,1")
attempt("eprt", ftp.sendcmd, "EPRT |1|127.0.0.1|1025|")
attempt("epsv 2", ftp.sendcmd, "EPSV 2")
attempt("retr no pasv", ftp.sendcmd, "RETR /pub/hello.txt")
attempt("missing", ftp.retrbinary, "RETR nothing.txt", print)
attempt("size missing", ftp.size, "nothing.txt")
attempt("size dir", ftp.size, "/pub")
attempt("cwd missing", ftp.cwd, "nowhere")
attempt("syst", ftp.sendcmd, "SYST")
attempt("feat", ftp.sendcmd, "FEAT")
attempt("rest", ftp.sendcmd, "REST 10")
attempt("noop", ftp.sendcmd, "NOOP")
"#;

#[tokio::test]
async fn ftplib_sees_the_right_error_replies() {
    let (_relay, addr) = lab_ftp().await;
    let out = python(ERRORS, addr, &[]).await;
    let stdout = out.assert_ok();
    for expected in [
        "before login error_perm 530",
        "pass first error_perm 503",
        "wrong password error_perm 530 Login incorrect.",
        "unknown user error_perm 530",
        "login ok 230",
        "bad command error_perm 500",
        "no argument error_perm 501",
        "type x error_perm 501",
        "type e error_perm 504",
        "mode b error_perm 504",
        "stru f ok 200",
        "port error_perm 502 Active mode is not available",
        "eprt error_perm 502",
        "epsv 2 error_perm 522",
        "retr no pasv error_temp 425",
        "missing error_perm 550",
        "size missing error_perm 550",
        "size dir error_perm 550",
        "cwd missing error_perm 550",
        "syst ok 215 UNIX Type: L8",
        "feat ok 211-Features:\n EPSV\n",
        "rest error_perm 502",
        "noop ok 200",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
}

const TOO_BIG: &str = r#"
import ftplib, io, sys
host, port, limit, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ftp = ftplib.FTP()
ftp.connect(host, port, timeout=10)
ftp.login("learner", "learner")
ftp.storbinary("STOR keep.bin", io.BytesIO(b"k" * 1000))
try:
    ftp.storbinary("STOR keep.bin", io.BytesIO(b"x" * (8 * limit)))
    print("over-size accepted")
except ftplib.error_perm as e:
    print("over-size", e)
print("kept", ftp.size("keep.bin"), sorted(ftp.nlst()))
ftp.delete("keep.bin")
print("exactly the limit", ftp.storbinary("STOR big0.bin", io.BytesIO(b"y" * limit)))
for i in range(1, total // limit):  # the session is full after these
    ftp.storbinary(f"STOR big{i}.bin", io.BytesIO(b"y" * limit))
try:
    ftp.storbinary("STOR more.bin", io.BytesIO(b"z" * 2000))
    print("session full accepted")
except ftplib.error_perm as e:
    print("session full", e)
print(ftp.delete("big0.bin"))
print("room again", ftp.storbinary("STOR more.bin", io.BytesIO(b"z" * 2000)))
ftp.quit()
"#;

#[tokio::test]
async fn an_upload_over_the_limit_gets_552_and_loses_nothing() {
    let (_relay, addr) = lab_ftp().await;
    let limit = FTP_MAX_FILE_BYTES.to_string();
    let total = FTP_MAX_SESSION_BYTES.to_string();
    let out = python(TOO_BIG, addr, &[&limit, &total]).await;
    let stdout = out.assert_ok();
    assert!(stdout.contains("over-size 552 "), "{stdout}");
    assert!(stdout.contains("kept 1000 ['keep.bin']"), "{stdout}");
    assert!(stdout.contains("exactly the limit 226"), "{stdout}");
    assert!(stdout.contains("session full 552"), "{stdout}");
    assert!(stdout.contains("room again 226"), "{stdout}");
}

const EPSV: &str = r#"
import ftplib, re, socket, sys
ftp = ftplib.FTP()
ftp.connect(sys.argv[1], int(sys.argv[2]), timeout=10)
ftp.login()
reply = ftp.sendcmd("EPSV")
print("epsv", reply, bool(re.fullmatch(r"229 .*\(\|\|\|\d+\|\)", reply)))
# ftplib speaks EPSV (and parses the 229 reply) when its address family is IPv6.
ftp.af = socket.AF_INET6
got = []
ftp.retrbinary("RETR /pub/bytes.bin", got.append)
print("over epsv", b"".join(got) == bytes(range(256)))
print(ftp.sendcmd("EPSV ALL"))
try:
    ftp.sendcmd("PASV")
except ftplib.error_perm as e:
    print("pasv after all", e)
print("still", len(ftp.nlst("/pub")))
"#;

#[tokio::test]
async fn epsv_works_for_ftplib() {
    let (_relay, addr) = lab_ftp().await;
    let out = python(EPSV, addr, &[]).await;
    let stdout = out.assert_ok();
    assert!(stdout.contains(") True\n"), "{stdout}");
    assert!(stdout.contains("over epsv True"), "{stdout}");
    assert!(stdout.contains("200 EPSV ALL"), "{stdout}");
    assert!(stdout.contains("pasv after all 503"), "{stdout}");
    assert!(stdout.contains("still 3"), "{stdout}");
}

async fn curl(args: &[&str]) -> (bool, String, String) {
    let mut command = tokio::process::Command::new("curl");
    command
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .kill_on_drop(true);
    let out = command.output().await.expect("curl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn curl_downloads_lists_and_uploads() {
    let (_relay, addr) = lab_ftp().await;
    let base = format!("ftp://{addr}");
    let (ok, out, err) = curl(&[&format!("{base}/pub/hello.txt")]).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("Hello from ftp.lab!\n"), "{out}");

    let (ok, out, err) = curl(&[&format!("{base}/pub/")]).await;
    assert!(ok, "{err}");
    // curl turns the CRLF line ends of a text-mode transfer into LF.
    let names: Vec<&str> = out.lines().filter_map(|l| l.rsplit(' ').next()).collect();
    assert_eq!(names, ["README.txt", "bytes.bin", "hello.txt"], "{out}");
    assert!(
        out.starts_with("-r--r--r-- 1 ftp ftp      921 Jan  1  2025 README.txt"),
        "{out}"
    );

    let (ok, out, err) = curl(&["--list-only", &format!("{base}/")]).await;
    assert!(ok, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["home", "incoming", "pub"]);

    let file = std::env::temp_dir().join(format!("lab_ftp_curl_{}.txt", std::process::id()));
    std::fs::write(&file, "sent by curl\n").expect("write temp file");
    let path = file.to_str().expect("utf-8 path");
    let (ok, _, err) = curl(&["-T", path, &format!("{base}/incoming/")]).await;
    let _ = std::fs::remove_file(&file);
    assert!(ok, "{err}");
    let name = file.file_name().and_then(|n| n.to_str()).expect("name");
    // An FTP URL's path is relative to the login directory (RFC 1738), learner's home: %2F starts at the
    // root.
    let (ok, out, err) = curl(&[
        "--user",
        "learner:learner",
        &format!("{base}/%2Fincoming/{name}"),
    ])
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, "sent by curl\n");

    let (ok, _, err) = curl(&["--user", "learner:nope", &format!("{base}/pub/")]).await;
    assert!(!ok);
    assert!(err.contains("530"), "{err}");
}

/// Reads one reply line from a raw control connection, within 5 s.
async fn reply(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line))
        .await
        .expect("a reply within 5 s")
        .expect("read a reply");
    line
}

async fn send(reader: &mut BufReader<TcpStream>, line: &str) {
    reader
        .get_mut()
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .expect("send a command");
}

#[tokio::test]
async fn a_quiet_client_is_disconnected_after_the_idle_timeout() {
    let (_relay, addr) = lab_ftp().await;
    let mut control = BufReader::new(TcpStream::connect(addr).await.expect("connect"));
    assert!(reply(&mut control).await.starts_with("220 "));
    let start = Instant::now();
    assert!(reply(&mut control).await.starts_with("421 "));
    assert_eq!(reply(&mut control).await, "", "closed after the 421");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_data_connection_nobody_opens_gets_425() {
    let (_relay, addr) = lab_ftp().await;
    let mut control = BufReader::new(TcpStream::connect(addr).await.expect("connect"));
    assert!(reply(&mut control).await.starts_with("220 "));
    send(&mut control, "USER anonymous").await;
    assert!(reply(&mut control).await.starts_with("331 "));
    send(&mut control, "PASS x").await;
    assert!(reply(&mut control).await.starts_with("230 "));
    send(&mut control, "PASV").await;
    let pasv = reply(&mut control).await;
    assert!(
        pasv.starts_with("227 Entering Passive Mode (127,0,0,1,"),
        "{pasv}"
    );
    let start = Instant::now();
    send(&mut control, "RETR /pub/hello.txt").await;
    assert!(reply(&mut control).await.starts_with("425 "));
    assert!(start.elapsed() >= Duration::from_millis(1500));
    // The control connection lives on.
    send(&mut control, "NOOP").await;
    assert!(reply(&mut control).await.starts_with("200 "));
}

#[tokio::test]
async fn raw_protocol_violations_get_their_replies() {
    let (_relay, addr) = lab_ftp().await;
    let mut control = BufReader::new(TcpStream::connect(addr).await.expect("connect"));
    assert!(reply(&mut control).await.starts_with("220 "));
    send(&mut control, &"A".repeat(10_000)).await;
    assert!(reply(&mut control).await.starts_with("500 "));
    send(&mut control, "").await;
    assert!(reply(&mut control).await.starts_with("500 "));
    send(&mut control, "user learner").await;
    assert!(reply(&mut control).await.starts_with("331 "));
    send(&mut control, "pass learner").await;
    assert!(reply(&mut control).await.starts_with("230 "));
    send(&mut control, "CWD ../../etc").await;
    assert!(reply(&mut control).await.starts_with("550 "));
    send(&mut control, "PWD").await;
    assert_eq!(
        reply(&mut control).await,
        "257 \"/home/learner\" is the current directory.\r\n"
    );
    send(&mut control, "QUIT").await;
    assert!(reply(&mut control).await.starts_with("221 "));
    assert_eq!(reply(&mut control).await, "", "closed after QUIT");
}

#[tokio::test]
async fn three_wrong_passwords_end_the_connection() {
    let (_relay, addr) = lab_ftp().await;
    let mut control = BufReader::new(TcpStream::connect(addr).await.expect("connect"));
    assert!(reply(&mut control).await.starts_with("220 "));
    for attempt in 1..=3 {
        send(&mut control, "USER learner").await;
        assert!(reply(&mut control).await.starts_with("331 "));
        send(&mut control, "PASS guess").await;
        let answer = reply(&mut control).await;
        let code = if attempt < 3 { "530 " } else { "421 " };
        assert!(answer.starts_with(code), "{attempt}: {answer}");
    }
    assert_eq!(reply(&mut control).await, "");
}

/// One reply line on a session's control connection (`pending` keeps what came after it).
async fn session_reply(conn: &mut soket_client::TcpConn, pending: &mut Vec<u8>) -> String {
    loop {
        if let Some(end) = pending.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = pending.drain(..end + 2).collect();
            return String::from_utf8_lossy(&line[..end]).into_owned();
        }
        let bytes = tokio::time::timeout(Duration::from_secs(5), conn.read())
            .await
            .expect("a reply within 5 s")
            .expect("read a reply")
            .expect("the server closed the control connection");
        pending.extend_from_slice(&bytes);
    }
}

/// Sends `command` on a session's control connection and returns the reply.
async fn session_command(
    conn: &mut soket_client::TcpConn,
    pending: &mut Vec<u8>,
    command: &str,
) -> String {
    conn.write_all(format!("{command}\r\n").as_bytes())
        .await
        .expect("send a command");
    session_reply(conn, pending).await
}

#[tokio::test]
async fn a_session_transfers_over_virtual_lab_data_ports_and_keeps_its_uploads_to_itself() {
    use soket_relay::lab::LAB_ADDR;
    let relay = common::start(&[]).await;
    let client = common::session(&relay).await;
    let mut control = client.connect_tcp("ftp.lab", 21).await.expect("ftp.lab:21");
    let mut pending = Vec::new();
    let c = &mut control;
    let p = &mut pending;
    assert!(session_reply(c, p).await.starts_with("220 "));
    assert!(session_command(c, p, "USER anonymous")
        .await
        .starts_with("331 "));
    assert!(session_command(c, p, "PASS me@lab")
        .await
        .starts_with("230 "));
    assert!(session_command(c, p, "TYPE I").await.starts_with("200 "));

    // PASV names the lab's address and a virtual port the session can dial.
    let pasv = session_command(c, p, "PASV").await;
    let numbers = pasv
        .strip_prefix("227 Entering Passive Mode (192,0,2,1,")
        .and_then(|rest| rest.strip_suffix(")."))
        .unwrap_or_else(|| panic!("{pasv}"));
    let (p1, p2) = numbers.split_once(',').expect("two port numbers");
    let port = p1.parse::<u16>().expect("p1") * 256 + p2.parse::<u16>().expect("p2");
    let mut data = client.connect_tcp("lab", port).await.expect("data port");
    assert_eq!(data.peer, SocketAddr::new(LAB_ADDR.into(), port));
    assert!(session_command(c, p, "RETR /pub/bytes.bin")
        .await
        .starts_with("150 "));
    let bytes = data.read_to_end().await.expect("the file");
    assert_eq!(bytes, (0..=255).collect::<Vec<u8>>());
    assert!(session_reply(c, p).await.starts_with("226 "));

    // EPSV, and an upload.
    let epsv = session_command(c, p, "EPSV").await;
    let port: u16 = epsv
        .strip_prefix("229 Entering Extended Passive Mode (|||")
        .and_then(|rest| rest.strip_suffix("|)"))
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("{epsv}"));
    let mut data = client
        .connect_tcp("192.0.2.1", port)
        .await
        .expect("data port");
    assert!(session_command(c, p, "STOR /incoming/mine.txt")
        .await
        .starts_with("150 "));
    data.write_all(b"mine").await.expect("upload");
    data.close().await.expect("close the data connection");
    assert!(session_reply(c, p).await.starts_with("226 "));
    assert_eq!(
        session_command(c, p, "SIZE /incoming/mine.txt").await,
        "213 4"
    );

    // Another session has a tree of its own.
    let other = common::session(&relay).await;
    let mut control = other.connect_tcp("ftp.lab", 21).await.expect("ftp.lab:21");
    let mut pending = Vec::new();
    let (c, p) = (&mut control, &mut pending);
    assert!(session_reply(c, p).await.starts_with("220 "));
    assert!(session_command(c, p, "USER anonymous")
        .await
        .starts_with("331 "));
    assert!(session_command(c, p, "PASS x").await.starts_with("230 "));
    let size = session_command(c, p, "SIZE /incoming/mine.txt").await;
    assert!(size.starts_with("550 "), "{size}");
}
