//! The lab's Telnet server (RFC 854, 855) on port 23: option negotiation, then a login and a tiny shell.
//!
//! Negotiation: at connect the server offers `WILL SUPPRESS-GO-AHEAD`, as RFC 1123 3.2.2 asks of a server
//! that never sends GA (the `telnet` command then sends each key as typed, and echoes it itself). Around the
//! `Password:` prompt it offers `WILL ECHO` and takes it back with `WONT ECHO` after: a client that agrees
//! stops echoing locally, and since the server echoes nothing, the password stays hidden, as with a real
//! telnetd and login. The rest of the time the client echoes its own typing (the server never echoes), so
//! `telnetlib` scripts (which refuse every option) and the `telnet` command both behave. Every other option
//! is refused (`WONT` for a DO, `DONT` for a WILL), once: the state does not change, so by RFC 854's loop
//! rule a repeated request gets no second answer. Requests for a state already in effect are not answered.
//! Negotiation follows RFC 1143's Q method for the two options the server offers.
//!
//! Data: IAC sequences are removed (IAC IAC is a data byte 255), subnegotiations (`SB ... IAC SE`) are
//! skipped, AYT gets an answer, EC and EL (and BS, DEL) edit the line. A line ends at CR LF, CR NUL, a lone
//! CR, or a lone LF (what `telnetlib`'s `write(b"...\n")` sends). Output lines end with CR LF.
//!
//! Service: a banner, `login:` and `Password:` (account `learner` / `learner`; after
//! [`MAX_LOGIN_ATTEMPTS`] failures the connection closes), then a `lab$ ` prompt with the commands `help`,
//! `date`, `echo ...`, `whoami`, `hostname`, `fortune` (or `quote`), `quit` (or `exit`, `logout`). Anything
//! else gets `<cmd>: command not found`.
//!
//! Limits: input lines of [`MAX_INPUT_LINE`] bytes (longer ones are refused), subnegotiations of
//! [`MAX_SUBNEGOTIATION`] bytes (a longer one is not Telnet: the connection closes), the idle timeout.
//!
//! Left out on purpose: no other options (no NAWS, TERMINAL-TYPE, LINEMODE, BINARY), no uptime, no real
//! shell.

use std::io;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::clock::Utc;
use super::line::LineConn;
use super::Context;

/// Longest input line: commands here are short, and a terminal line is rarely longer.
pub const MAX_INPUT_LINE: usize = 512;
/// Longest subnegotiation: real ones (terminal type, window size) are a few dozen bytes.
pub const MAX_SUBNEGOTIATION: usize = 1024;
/// Failed logins before the server hangs up, as `login` does.
pub const MAX_LOGIN_ATTEMPTS: usize = 3;

const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const EL: u8 = 248;
const EC: u8 = 247;
const AYT: u8 = 246;
const SE: u8 = 240;
const ECHO: u8 = 1;
const SGA: u8 = 3;

const FORTUNES: [&str; 6] = [
    "A socket is just a file descriptor that learned to talk.",
    "TCP promises every byte, in order; it never promised when.",
    "recv() returning b'' is not an error: it is a goodbye.",
    "There are 10 kinds of packets: those that arrive and those that are retransmitted.",
    "Telnet sends your password in clear text. That is why we have SSH.",
    "Always close what you open, especially sockets.",
];

/// RFC 1143's state of one of the server's own options.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Q {
    No,
    Yes,
    /// WILL sent, no answer yet.
    WantYes,
    /// WILL sent, and since then the server changed its mind: send WONT once the client agrees.
    WantYesThenNo,
    /// WONT sent, no answer yet.
    WantNo,
}

/// What the byte parser found.
enum Input {
    Line(Vec<u8>),
    TooLong,
    Eof,
    TimedOut,
    /// A subnegotiation over [`MAX_SUBNEGOTIATION`].
    Broken,
}

#[derive(Clone, Copy)]
enum State {
    Data,
    /// After a CR that ended a line: a LF or NUL here belongs to it.
    Cr,
    Iac,
    /// IAC and WILL, WONT, DO or DONT: waiting for the option.
    Option(u8),
    Sub(usize),
    SubIac(usize),
}

/// Telnet's byte layer: turns the client's bytes into lines and answers negotiation.
struct Parser {
    state: State,
    line: Vec<u8>,
    too_long: bool,
    sga: Q,
    echo: Q,
    /// Whether the server wants ECHO now (while reading a password).
    want_echo: bool,
    /// Options already refused, for DO (index 0) and WILL (index 1): refused once, not again.
    refused: [[bool; 256]; 2],
    /// Bytes to send the client (negotiation, AYT answers).
    out: Vec<u8>,
}

impl Parser {
    fn new() -> Parser {
        let mut parser = Parser {
            state: State::Data,
            line: Vec::new(),
            too_long: false,
            sga: Q::No,
            echo: Q::No,
            want_echo: false,
            refused: [[false; 256]; 2],
            out: Vec::new(),
        };
        parser.sga = Q::WantYes;
        parser.out.extend([IAC, WILL, SGA]);
        parser
    }

    fn ours(&mut self, option: u8) -> Option<&mut Q> {
        match option {
            SGA => Some(&mut self.sga),
            ECHO => Some(&mut self.echo),
            _ => None,
        }
    }

    fn wanted(&self, option: u8) -> bool {
        option == SGA || (option == ECHO && self.want_echo)
    }

    /// Asks to echo (hiding what the client types) or takes that back.
    fn set_echo(&mut self, want: bool) {
        self.want_echo = want;
        let (state, send) = match (self.echo, want) {
            (Q::No, true) => (Q::WantYes, Some(WILL)),
            (Q::Yes, false) => (Q::WantNo, Some(WONT)),
            (Q::WantYes, false) => (Q::WantYesThenNo, None),
            (Q::WantYesThenNo, true) => (Q::WantYes, None),
            (state, _) => (state, None),
        };
        self.echo = state;
        if let Some(verb) = send {
            self.refused[0][ECHO as usize] = false;
            self.out.extend([IAC, verb, ECHO]);
        }
    }

    fn refuse(&mut self, verb: u8, option: u8) {
        let seen = &mut self.refused[usize::from(verb == DONT)][option as usize];
        if !*seen {
            *seen = true;
            self.out.extend([IAC, verb, option]);
        }
    }

    /// The client's DO, DONT, WILL or WONT.
    fn negotiate(&mut self, verb: u8, option: u8) {
        let wanted = self.wanted(option);
        match (verb, self.ours(option)) {
            (DO, None) => self.refuse(WONT, option),
            (DO, Some(q)) => match *q {
                Q::No if wanted => {
                    *q = Q::Yes;
                    self.out.extend([IAC, WILL, option]);
                }
                Q::No => self.refuse(WONT, option),
                Q::Yes => {}
                Q::WantYes => *q = Q::Yes,
                Q::WantYesThenNo => {
                    *q = Q::WantNo;
                    self.out.extend([IAC, WONT, option]);
                }
                // A DONT answered by DO: RFC 1143 takes it as no.
                Q::WantNo => *q = Q::No,
            },
            (DONT, Some(q)) => {
                let was = std::mem::replace(q, Q::No);
                if was == Q::Yes {
                    self.out.extend([IAC, WONT, option]);
                }
            }
            // The server takes none of the client's options.
            (WILL, _) => self.refuse(DONT, option),
            _ => {}
        }
    }

    /// Takes one byte; returns what it completed.
    fn feed(&mut self, byte: u8) -> Option<Input> {
        match self.state {
            State::Data => return self.data(byte),
            State::Cr => {
                self.state = State::Data;
                if byte != b'\n' && byte != 0 {
                    return self.data(byte);
                }
            }
            State::Iac => {
                self.state = State::Data;
                match byte {
                    IAC => self.push(IAC),
                    WILL | WONT | DO | DONT => self.state = State::Option(byte),
                    SB => self.state = State::Sub(0),
                    AYT => self
                        .out
                        .extend_from_slice(b"\r\n[lab: yes, still here]\r\n"),
                    EC => {
                        self.line.pop();
                    }
                    EL => self.line.clear(),
                    _ => {} // NOP, GA, DM, BRK, IP, AO, a stray SE: nothing to do.
                }
            }
            State::Option(verb) => {
                self.state = State::Data;
                self.negotiate(verb, byte);
            }
            State::Sub(n) if n >= MAX_SUBNEGOTIATION => return Some(Input::Broken),
            State::Sub(n) => {
                self.state = if byte == IAC {
                    State::SubIac(n)
                } else {
                    State::Sub(n + 1)
                }
            }
            State::SubIac(n) => match byte {
                SE => self.state = State::Data,
                IAC => self.state = State::Sub(n + 1),
                // An IAC that is not SE ends the subnegotiation too (as BSD telnetd does).
                _ => {
                    self.state = State::Iac;
                    return self.feed(byte);
                }
            },
        }
        None
    }

    fn data(&mut self, byte: u8) -> Option<Input> {
        match byte {
            IAC => self.state = State::Iac,
            b'\r' | b'\n' => {
                if byte == b'\r' {
                    self.state = State::Cr;
                }
                let line = std::mem::take(&mut self.line);
                if std::mem::take(&mut self.too_long) {
                    return Some(Input::TooLong);
                }
                return Some(Input::Line(line));
            }
            0 => {}
            8 | 127 => {
                self.line.pop();
            }
            _ => self.push(byte),
        }
        None
    }

    fn push(&mut self, byte: u8) {
        if self.line.len() < MAX_INPUT_LINE {
            self.line.push(byte);
        } else {
            self.too_long = true;
        }
    }
}

struct Session {
    conn: LineConn,
    parser: Parser,
    idle: Duration,
}

impl Session {
    /// Reads the next line (the whole line within the idle timeout), answering negotiation on the way.
    async fn read_line(&mut self) -> io::Result<Input> {
        let deadline = Instant::now() + self.idle;
        loop {
            let (reader, _) = self.conn.parts();
            let buf = match tokio::time::timeout_at(deadline, reader.fill_buf()).await {
                Err(_) => return Ok(Input::TimedOut),
                Ok(buf) => buf?,
            };
            if buf.is_empty() {
                return Ok(Input::Eof);
            }
            let mut used = 0;
            let mut found = None;
            for &byte in buf {
                used += 1;
                found = self.parser.feed(byte);
                if found.is_some() {
                    break;
                }
            }
            reader.consume(used);
            self.flush().await?;
            if let Some(input) = found {
                return Ok(input);
            }
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.parser.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.parser.out);
        self.conn.send(&out).await
    }

    /// Sends text as NVT data: a data byte 255 is doubled, `\n` becomes CR LF.
    async fn say(&mut self, text: &[u8]) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(text.len() + 8);
        for &b in text {
            match b {
                IAC => bytes.extend([IAC, IAC]),
                b'\n' => bytes.extend(b"\r\n"),
                _ => bytes.push(b),
            }
        }
        self.conn.send(&bytes).await
    }

    /// Reads a line for the service; `None` ends the connection (after a goodbye where one makes sense).
    async fn ask(&mut self, prompt: &str) -> io::Result<Option<Vec<u8>>> {
        self.say(prompt.as_bytes()).await?;
        loop {
            match self.read_line().await? {
                Input::Line(line) => return Ok(Some(line)),
                Input::TooLong => {
                    let text = format!("line too long (at most {MAX_INPUT_LINE} bytes)\n{prompt}");
                    self.say(text.as_bytes()).await?;
                }
                Input::Eof => return Ok(None),
                Input::TimedOut => {
                    let _ = self.say(b"\nIdle for too long, goodbye.\n").await;
                    return Ok(None);
                }
                Input::Broken => {
                    let text =
                        format!("\nSubnegotiation over {MAX_SUBNEGOTIATION} bytes, goodbye.\n");
                    let _ = self.say(text.as_bytes()).await;
                    return Ok(None);
                }
            }
        }
    }

    /// The login dialogue; whether it succeeded.
    async fn login(&mut self) -> io::Result<bool> {
        for _ in 0..MAX_LOGIN_ATTEMPTS {
            let Some(user) = self.ask("login: ").await? else {
                return Ok(false);
            };
            self.parser.set_echo(true);
            self.flush().await?;
            let password = self.ask("Password: ").await?;
            self.parser.set_echo(false);
            self.flush().await?;
            let Some(password) = password else {
                return Ok(false);
            };
            // The client did not echo the Enter either.
            self.say(b"\n").await?;
            if user.trim_ascii() == b"learner" && password == b"learner" {
                return Ok(true);
            }
            self.say(b"Login incorrect\n\n").await?;
        }
        self.say(b"Too many failed logins, goodbye.\n").await?;
        Ok(false)
    }

    async fn shell(&mut self) -> io::Result<()> {
        let mut fortune = Utc::now().time as usize;
        loop {
            let Some(line) = self.ask("lab$ ").await? else {
                return Ok(());
            };
            let line = line.trim_ascii();
            let (command, args) = match line.iter().position(|b| b.is_ascii_whitespace()) {
                Some(i) => (&line[..i], line[i..].trim_ascii_start()),
                None => (line, &b""[..]),
            };
            let reply: Vec<u8> = match command {
                b"" => continue,
                b"help" => HELP.as_bytes().to_vec(),
                b"date" => date().into_bytes(),
                b"echo" => [args, b"\n"].concat(),
                b"whoami" => b"learner\n".to_vec(),
                b"hostname" => b"telnet.lab\n".to_vec(),
                b"fortune" | b"quote" => {
                    fortune += 1;
                    format!("{}\n", FORTUNES[fortune % FORTUNES.len()]).into_bytes()
                }
                b"quit" | b"exit" | b"logout" => {
                    self.say(b"Goodbye!\n").await?;
                    return Ok(());
                }
                _ => [command, b": command not found\n"].concat(),
            };
            self.say(&reply).await?;
        }
    }
}

const BANNER: &str = "\nWelcome to telnet.lab, the Soket lab's Telnet server.\n\
Log in as learner, password learner. Type help once you are in.\n\n";

const HELP: &str = "Commands:
  help          this list
  date          the lab's date and time (UTC)
  echo TEXT     prints TEXT back
  whoami        who you are logged in as
  hostname      the name of this machine
  fortune       a saying about sockets (also: quote)
  quit          close the connection (also: exit, logout)
";

/// Like `date`: `Tue Sep  2 11:30:00 UTC 2025`.
fn date() -> String {
    format!("{}\n", Utc::now().date_u())
}

pub async fn serve(socket: TcpStream, context: Context) -> io::Result<()> {
    let mut session = Session {
        conn: LineConn::new(socket, context.idle_timeout),
        parser: Parser::new(),
        idle: context.idle_timeout,
    };
    session.flush().await?;
    session.say(BANNER.as_bytes()).await?;
    if session.login().await? {
        session
            .say(b"Hello, learner! Type help for the commands.\n")
            .await?;
        session.shell().await?;
    }
    Ok(())
}
