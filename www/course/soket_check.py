"""soket_check: what an exercise's check script uses to look at the learner's programs and give a verdict.

The page runs a check script as a Python program of its own, in the learner's session, after the
learner's programs (www/lessons/README.md says in which order). It hands this module what happened to
them in `_soket_results` (a module the page writes: `DATA`, a JSON text), and reads the verdict back from
the one line `_verdict()` prints, which starts with VERDICT_MARK.
"""

import json
import re
import socket

import _soket_results

# The line of the check's output that carries the verdict: the page looks for it, the learner never
# sees it.
VERDICT_MARK = "\x1esoket-verdict "

_data = json.loads(_soket_results.DATA)
lang = _data.get("lang", "en")


class Program:
    """What happened to one of the learner's programs (or the check's setup)."""

    def __init__(self, name, record):
        self.name = name
        self.role = record.get("role", "client")
        self.stdout = record.get("stdout", "")
        self.stderr = record.get("stderr", "")
        # None while it still runs (a server, or the setup's stand-in server).
        self.exit_code = record.get("exit_code")
        self.timed_out = bool(record.get("timed_out"))
        self.ports = list(record.get("ports", []))
        self.port = self.ports[0] if self.ports else None

    def __repr__(self):
        return "<program {} exit_code={} ports={}>".format(self.name, self.exit_code, self.ports)


_programs = {name: Program(name, rec) for name, rec in _data.get("programs", {}).items()}
setup = Program("setup", _data["setup"]) if _data.get("setup") else None


class _Verdict(Exception):
    def __init__(self, passed, text):
        super().__init__(text)
        self.passed = passed
        self.text = text


_last_passed = None


def _say(en, id):
    """The sentence in the learner's language (English when there is no Indonesian)."""
    if lang == "id" and id:
        return id
    return en


def program(name):
    """What happened to the exercise's program `name` (`server.py`, ...)."""
    try:
        return _programs[name]
    except KeyError:
        raise KeyError("the exercise has no program {!r}; it has {}".format(name, sorted(_programs)))


def fail(en, id=None):
    """Ends the check: failed, with this sentence."""
    raise _Verdict(False, _say(en, id))


def passed(en, id=None):
    """Records the sentence of a passing verdict; the check goes on (a later fail() still fails it)."""
    global _last_passed
    _last_passed = _say(en, id)


# The line that names the exception, at the end of a traceback (`ConnectionRefusedError: [Errno 111]
# Connection refused`, `ftplib.error_perm: 550 No such file`); the last part of the name tells it apart
# from the traceback's other unindented lines.
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::\s?(.*))?$")
_EXCEPTION_NAME = re.compile(r"(Error|Exception|Exit|Interrupt|Fault|Refused|error|error_\w+|timeout|gaierror|herror)$")

# (exception name, a regex on its message or None, English, Indonesian). The first match wins.
_EXPLANATIONS = [
    ("SyntaxError", r"Missing parentheses in call to 'print'",
     "This is Python 2 code: in Python 3, print is a function, so write print('...') with parentheses.",
     "Ini kode Python 2: di Python 3, print adalah fungsi, jadi tulis print('...') dengan tanda kurung."),
    ("TypeError", r"bytes-like object is required, not 'str'",
     "You gave a socket a str, but sockets send bytes: write b'...' or call .encode() on the text.",
     "Anda memberi soket sebuah str, padahal soket mengirim bytes: tulis b'...' atau panggil .encode() pada teksnya."),
    ("TypeError", r"can't concat str to bytes|can only concatenate str \(not \"bytes\"\)",
     "You mixed bytes (what recv() returns) and str: turn bytes into text with .decode() first.",
     "Anda mencampur bytes (hasil recv()) dan str: ubah bytes menjadi teks dengan .decode() dulu."),
    ("AttributeError", r"'str' object has no attribute 'decode'",
     "You called .decode() on a str: it is already text; only bytes need .decode().",
     "Anda memanggil .decode() pada str: itu sudah teks; hanya bytes yang perlu .decode()."),
    ("ConnectionRefusedError", None,
     "Nothing was listening where your program connected: is the server running, on the same host and port?",
     "Tidak ada yang mendengarkan di alamat yang dihubungi program Anda: apakah servernya berjalan, di host dan port yang sama?"),
    ("ConnectionResetError", None,
     "The other side dropped the connection (a reset): it may have crashed or closed without reading.",
     "Pihak lain memutus koneksi (reset): mungkin ia berhenti atau menutup tanpa membaca."),
    ("BrokenPipeError", None,
     "Your program wrote to a connection the other side had already closed.",
     "Program Anda menulis ke koneksi yang sudah ditutup oleh pihak lain."),
    ("OSError", r"Errno 98|in use",
     "That port is already in use: another program (perhaps your server from an earlier run) listens on it. Stop it, or choose another port.",
     "Port itu sudah dipakai: program lain (mungkin server Anda dari percobaan sebelumnya) mendengarkan di sana. Hentikan, atau pilih port lain."),
    ("PermissionError", None,
     "The relay refused that destination: only your own machine (localhost) and the lab hosts are reachable.",
     "Relay menolak tujuan itu: hanya mesin Anda sendiri (localhost) dan host lab yang bisa dihubungi."),
    ("gaierror", r"allow list",
     "The relay does not look that name up: only your own machine (localhost) and the lab hosts are reachable here.",
     "Relay tidak mencari nama itu: di sini hanya mesin Anda sendiri (localhost) dan host lab yang bisa dihubungi."),
    ("gaierror", None,
     "That host name could not be found: check its spelling (the lab's names are lab, www.lab, mail.lab, ...).",
     "Nama host itu tidak ditemukan: periksa ejaannya (nama-nama lab: lab, www.lab, mail.lab, ...)."),
    ("TimeoutError", None,
     "Your program waited too long for an answer that never came.",
     "Program Anda menunggu jawaban terlalu lama, dan jawabannya tidak pernah datang."),
    ("timeout", None,
     "Your program waited too long for an answer that never came.",
     "Program Anda menunggu jawaban terlalu lama, dan jawabannya tidak pernah datang."),
    ("NameError", None,
     "Python does not know a name your program uses ({message}): a typo, or a missing import?",
     "Python tidak mengenal sebuah nama di program Anda ({message}): salah ketik, atau lupa import?"),
    ("IndentationError", None,
     "The indentation (the spaces at the start of a line) is not consistent: {message}.",
     "Indentasi (spasi di awal baris) tidak konsisten: {message}."),
    ("SyntaxError", None,
     "Python could not read your program: {message}. Look at the line the traceback points to.",
     "Python tidak bisa membaca program Anda: {message}. Lihat baris yang ditunjuk traceback."),
    ("HTTPError", None,
     "The web server answered with an error ({message}): is the path right?",
     "Server web menjawab dengan galat ({message}): apakah path-nya benar?"),
    ("URLError", None,
     "urllib could not reach the server ({message}): check the URL's host name.",
     "urllib tidak bisa menghubungi server ({message}): periksa nama host di URL."),
    ("Fault", None,
     "The XML-RPC server answered with a fault: {message}. Check the method's name and its arguments.",
     "Server XML-RPC menjawab dengan fault: {message}. Periksa nama method dan argumennya."),
    ("error_perm", None,
     "The FTP server refused a command: {message}. (A 5xx reply: a wrong name, password, file or folder?)",
     "Server FTP menolak sebuah perintah: {message}. (Balasan 5xx: nama, sandi, berkas atau folder yang salah?)"),
    ("error_proto", None,
     "The server answered with an error: {message}.",
     "Server menjawab dengan galat: {message}."),
    ("SMTPRecipientsRefused", None,
     "The mail server refused every recipient: {message}. The lab takes mail for @lab addresses.",
     "Server surat menolak semua penerima: {message}. Lab menerima surat untuk alamat @lab."),
    ("SMTPSenderRefused", None,
     "The mail server refused the sender: {message}.",
     "Server surat menolak pengirimnya: {message}."),
    ("EOFError", None,
     "The other side closed the connection while your program was still reading.",
     "Pihak lain menutup koneksi saat program Anda masih membaca."),
    ("error", None,
     "The server answered with an error: {message}.",
     "Server menjawab dengan galat: {message}."),
    ("KeyboardInterrupt", None,
     "Your program was stopped while it was still waiting: does it wait for something that never comes?",
     "Program Anda dihentikan saat masih menunggu: apakah ia menunggu sesuatu yang tidak pernah datang?"),
]


def explain(stderr):
    """A beginner's sentence for the last exception in `stderr` (a traceback), or None."""
    for line in reversed((stderr or "").strip().splitlines()):
        match = _EXCEPTION_LINE.match(line)
        if not match or not _EXCEPTION_NAME.search(match.group(1)):
            continue
        name = match.group(1).rsplit(".", 1)[-1]
        message = match.group(2) or ""
        for kind, pattern, en, id in _EXPLANATIONS:
            if kind == name and (pattern is None or re.search(pattern, message)):
                return _say(en, id).format(message=message)
        return _say(
            "Your program stopped with an error: {}: {}".format(name, message),
            "Program Anda berhenti karena galat: {}: {}".format(name, message),
        )
    return None


def require_ok(name):
    """Fails, in beginner words, if the program crashed, or if a client did not end by itself."""
    prog = program(name)
    why = explain(prog.stderr)
    if prog.timed_out:
        fail(
            en="{} was still running when the check's time was up, so it was stopped. Does it wait for "
            "something that never comes, or loop forever?".format(name),
            id="{} masih berjalan saat waktu pemeriksaan habis, jadi dihentikan. Apakah ia menunggu sesuatu "
            "yang tidak pernah datang, atau berulang tanpa henti?".format(name),
        )
    if why and (prog.exit_code not in (None, 0) or "Traceback" in prog.stderr):
        fail(en="{}: {}".format(name, why), id="{}: {}".format(name, why))
    if prog.exit_code not in (None, 0):
        fail(
            en="{} ended with exit status {}.".format(name, prog.exit_code),
            id="{} berakhir dengan status {}.".format(name, prog.exit_code),
        )
    return prog


def connect(port, host="localhost", timeout=5):
    """A socket connected to the learner's server at host:port, or a failed verdict saying why not."""
    if port is None:
        fail(
            en="Your server is not listening on any port. Did it call bind() and listen()?",
            id="Server Anda tidak mendengarkan di port mana pun. Apakah ia memanggil bind() dan listen()?",
        )
    try:
        return socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        fail(
            en="Nothing was listening on port {} any more: did your server stop or close its socket?".format(port),
            id="Tidak ada lagi yang mendengarkan di port {}: apakah server Anda berhenti atau menutup soketnya?".format(port),
        )
    except OSError as error:
        fail(
            en="The check could not connect to your server on port {}: {}".format(port, error),
            id="Pemeriksa tidak bisa terhubung ke server Anda di port {}: {}".format(port, error),
        )


def recv_all(conn, timeout=5, limit=16 * 1024 * 1024):
    """Every byte from `conn` until the peer closes it; a failed verdict if it stays open past `timeout`."""
    conn.settimeout(timeout)
    chunks = []
    size = 0
    while size < limit:
        try:
            chunk = conn.recv(65536)
        except socket.timeout:
            fail(
                en="The connection stayed open for {} s without closing. Did your program close() it when it was done?".format(timeout),
                id="Koneksi tetap terbuka selama {} detik tanpa ditutup. Apakah program Anda memanggil close() setelah selesai?".format(timeout),
            )
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _verdict(passed_, text):
    print(VERDICT_MARK + json.dumps({"passed": passed_, "text": text}), flush=True)


def _first_trouble():
    """Fails for what no exercise wants: a server that never listened, a client that crashed or hung."""
    for prog in _programs.values():
        require_ok(prog.name)
        # A server that ended by itself (a UDP server never listens, so a missing port is no fault).
        if prog.role == "server" and prog.exit_code is not None:
            fail(
                en="{} ended, but a server should keep running and wait for clients (in accept() or recvfrom()).".format(prog.name),
                id="{} berhenti, padahal server harus terus berjalan dan menunggu klien (di accept() atau recvfrom()).".format(prog.name),
            )


def _run(source):
    """Runs a check script and prints its verdict line: what the page's driver program calls."""
    try:
        _first_trouble()
        exec(compile(source, "check.py", "exec"), {"__name__": "__main__"})
    except _Verdict as verdict:
        _verdict(verdict.passed, verdict.text)
        return
    _verdict(True, _last_passed or _say("everything the check tried worked.", "semua yang dicoba pemeriksa berhasil."))
