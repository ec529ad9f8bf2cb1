//! The lab network from the page: for each protocol of the course, CPython's own client module, running
//! in the browser's Python, talks to the relay's lab server through the page's one WebSocket — the path a
//! learner's program takes. The servers themselves are tested natively in `relay/tests/lab_*.rs`.

use anyhow::{ensure, Result};
use soket_e2e::Page;

/// Runs `source` in a fresh page and returns its stdout, failing with both streams unless it exits 0.
async fn run_in_page(source: &str) -> Result<String> {
    let page = Page::open().await?;
    let mut stdout = String::new();
    page.check(async |page| {
        let out = page.run("client.py", source).await?;
        ensure!(out.exit_code == 0 && out.stderr.is_empty(), "{out}");
        stdout = out.stdout;
        Ok(())
    })
    .await?;
    Ok(stdout)
}

#[tokio::test]
async fn the_small_services_answer_over_tcp_and_udp() -> Result<()> {
    let out = run_in_page(
        "import socket
with socket.create_connection(('lab', 7)) as s:
    s.sendall(b'echo me')
    print(s.recv(100))
with socket.create_connection(('lab', 13)) as s:
    print('UTC' in s.recv(100).decode())
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
u.sendto(b'datagram', ('lab', 7))
print(u.recvfrom(100))
",
    )
    .await?;
    ensure!(
        out == "b'echo me'\nTrue\n(b'datagram', ('192.0.2.1', 7))\n",
        "{out:?}"
    );
    Ok(())
}

#[tokio::test]
async fn urllib_http_client_and_xmlrpc_client_reach_www_lab() -> Result<()> {
    let out = run_in_page(
        "import http.client, json, urllib.request, urllib.error, xmlrpc.client
with urllib.request.urlopen('http://www.lab/api/quotes/1') as r:
    print(r.status, r.headers['Content-Type'], 'text' in json.load(r) or 'quote' in str(r))
c = http.client.HTTPConnection('www.lab', 80, timeout=10)
c.request('GET', '/hello.txt')
r = c.getresponse()
print(r.status, len(r.read()) > 0)
try:
    urllib.request.urlopen('http://www.lab/status/404')
except urllib.error.HTTPError as e:
    print('HTTPError', e.code)
lab = xmlrpc.client.ServerProxy('http://www.lab/RPC2')
print(lab.add(2, 3), lab.echo({'a': [1, 2.5, True]}))
try:
    lab.nope()
except xmlrpc.client.Fault as f:
    print('Fault', f.faultCode)
",
    )
    .await?;
    ensure!(
        out == "200 application/json True\n200 True\nHTTPError 404\n\
                5 {'a': [1, 2.5, True]}\nFault -32601\n",
        "{out:?}"
    );
    Ok(())
}

#[tokio::test]
async fn ftplib_lists_retrieves_and_stores_in_passive_mode() -> Result<()> {
    let out = run_in_page(
        "import ftplib, hashlib, io
ftp = ftplib.FTP('ftp.lab', timeout=10)
print(ftp.login())
print(sorted(ftp.nlst('/pub')))
data = bytearray()
ftp.retrbinary('RETR /pub/bytes.bin', data.extend)
print(len(data), bytes(data) == bytes(range(256)))
ftp.quit()
ftp = ftplib.FTP('ftp.lab', 'learner', 'learner', timeout=10)
blob = bytes(range(256)) * 400
print(ftp.storbinary('STOR notes.bin', io.BytesIO(blob)))
back = bytearray()
ftp.retrbinary('RETR notes.bin', back.extend)
print(hashlib.sha256(back).hexdigest() == hashlib.sha256(blob).hexdigest())
ftp.af = __import__('socket').AF_INET6  # ftplib then asks for EPSV
print(ftp.size('notes.bin'))
try:
    ftp.retrbinary('RETR missing.txt', print)
except ftplib.error_perm as e:
    print('error_perm', str(e)[:3])
ftp.quit()
",
    )
    .await?;
    let lines: Vec<&str> = out.lines().collect();
    ensure!(
        lines.len() == 7
            && lines[0].starts_with("230")
            && lines[1].contains("bytes.bin")
            && lines[2] == "256 True"
            && lines[3].starts_with("226")
            && lines[4] == "True"
            && lines[5] == "102400"
            && lines[6] == "error_perm 550",
        "{out:?}"
    );
    Ok(())
}

#[tokio::test]
async fn smtplib_sends_to_the_sessions_mailbox_and_poplib_fetches_it() -> Result<()> {
    let out = run_in_page(
        "import poplib, smtplib
from email.message import EmailMessage
box = poplib.POP3('mail.lab', timeout=10)
box.user('learner'); box.pass_('learner')
before = box.stat()[0]
box.quit()
m = EmailMessage()
m['From'] = 'me@lab'; m['To'] = 'learner@lab'; m['Subject'] = 'from the browser'
m.set_content('Hello from the page.')
with smtplib.SMTP('mail.lab', timeout=10) as s:
    print(s.send_message(m))
    try:
        s.sendmail('me@lab', ['someone@example.com'], 'x')
    except smtplib.SMTPRecipientsRefused as e:
        print('refused', list(e.recipients.values())[0][0])
box = poplib.POP3('mail.lab', timeout=10)
box.user('learner'); box.pass_('learner')
count = box.stat()[0]
print(count - before)
lines = box.retr(count)[1]
print(b'Subject: from the browser' in lines, b'Hello from the page.' in lines)
box.quit()
",
    )
    .await?;
    ensure!(out == "{}\nrefused 550\n1\nTrue True\n", "{out:?}");
    Ok(())
}

#[tokio::test]
async fn imaplib_reads_flags_and_expunges_the_welcome_message() -> Result<()> {
    let out = run_in_page(
        "import imaplib
m = imaplib.IMAP4('mail.lab')
print(m.login('learner', 'learner')[0])
typ, data = m.select('INBOX')
print(typ, int(data[0]) >= 1)
typ, data = m.search(None, 'UNSEEN')
first = data[0].split()[0]
typ, data = m.fetch(first, '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
print(data[0][1].decode().strip().startswith('Subject:'))
print(m.store(first, '+FLAGS', '\\\\Deleted')[0], m.expunge()[0])
try:
    m.fetch('1', '(BOGUS)')
except imaplib.IMAP4.error as e:
    print('error')
m.logout()
",
    )
    .await?;
    ensure!(out == "OK\nOK True\nTrue\nOK OK\nerror\n", "{out:?}");
    Ok(())
}

#[tokio::test]
async fn nntplib_reads_a_group_and_posts_to_it() -> Result<()> {
    let out = run_in_page(
        "import nntplib, io
with nntplib.NNTP('news.lab') as s:
    print(s.getwelcome()[:3])
    resp, count, first, last, name = s.group('lab.general')
    print(name, count >= 1)
    resp, overviews = s.over((first, last))
    print(len(overviews) == count)
    resp, info = s.article(first)
    print(any(l.startswith(b'Subject:') for l in info.lines))
    post = b'From: me@lab\\r\\nNewsgroups: lab.general\\r\\nSubject: hi from the page\\r\\n\\r\\nHello.\\r\\n'
    print(s.post(io.BytesIO(post))[:3])
    resp, count2, first, last, name = s.group('lab.general')
    print(count2 - count, s.head(last)[1].lines[0:0] == [])
",
    )
    .await?;
    ensure!(
        out == "200\nlab.general True\nTrue\nTrue\n240\n1 True\n",
        "{out:?}"
    );
    Ok(())
}

#[tokio::test]
async fn telnetlib_logs_in_and_runs_a_command() -> Result<()> {
    let out = run_in_page(
        "import telnetlib
t = telnetlib.Telnet('telnet.lab', 23, 10)
t.read_until(b'login: ', 5)
t.write(b'learner\\n')
t.read_until(b'Password: ', 5)
t.write(b'learner\\n')
t.read_until(b'lab$ ', 5)
t.write(b'echo hello from the page\\n')
print(t.read_until(b'lab$ ', 5).decode().splitlines()[-2])
t.write(b'quit\\n')
t.read_all()
print('closed')
",
    )
    .await?;
    ensure!(out == "hello from the page\nclosed\n", "{out:?}");
    Ok(())
}

#[tokio::test]
async fn a_gopher_menu_and_file_arrive_over_a_raw_socket() -> Result<()> {
    let out = run_in_page(
        "import socket
def fetch(selector):
    with socket.create_connection(('gopher.lab', 70)) as s:
        s.sendall(selector.encode() + b'\\r\\n')
        data = b''
        while chunk := s.recv(4096):
            data += chunk
    return data.decode()
menu = fetch('')
items = [l.split('\\t') for l in menu.split('\\r\\n') if l and l != '.']
print(any(i[0] == '0Hello' and i[1] == '/hello.txt' and i[2:] == ['gopher.lab', '70'] for i in items))
print(menu.endswith('\\r\\n.\\r\\n'), fetch('/hello.txt').endswith('\\r\\n.\\r\\n'))
print(fetch('/no/such/thing')[0])
",
    )
    .await?;
    ensure!(out == "True\nTrue True\n3\n", "{out:?}");
    Ok(())
}
