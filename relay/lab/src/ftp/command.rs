//! The FTP server's commands (RFC 959, 2428, 3659), parsed once at the edge: the verb (with its `X...`
//! aliases of RFC 775) and whether it takes an argument; the session then dispatches on [`Command`].

/// One command, parsed once at the edge (its argument, if any, travels beside it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Command {
    User,
    Pass,
    Quit,
    Noop,
    Syst,
    Feat,
    Help,
    Opts,
    Pwd,
    Cwd,
    Type,
    Mode,
    Stru,
    Pasv,
    Epsv,
    Active,
    List,
    Nlst,
    Retr,
    Stor,
    Appe,
    Dele,
    Mkd,
    Rmd,
    Size,
    Mdtm,
    Abor,
    NotImplemented,
}

/// Whether a command takes an argument.
#[derive(PartialEq)]
enum Arg {
    No,
    Needed,
    Optional,
}

impl Command {
    /// The command on `line` and its argument, or the error reply.
    pub(super) fn parse(line: &str) -> Result<(Command, &str), &'static str> {
        use {Arg::*, Command::*};
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        let (command, takes) = match verb.to_ascii_uppercase().as_str() {
            "USER" => (User, Needed),
            "PASS" => (Pass, Optional),
            "QUIT" => (Quit, No),
            "NOOP" => (Noop, No),
            "SYST" => (Syst, No),
            "FEAT" => (Feat, No),
            "HELP" => (Help, Optional),
            "OPTS" => (Opts, Needed),
            "PWD" | "XPWD" => (Pwd, No),
            "CWD" | "XCWD" => (Cwd, Needed),
            "CDUP" | "XCUP" if arg.is_empty() => return Ok((Cwd, "..")),
            "TYPE" => (Type, Needed),
            "MODE" => (Mode, Needed),
            "STRU" => (Stru, Needed),
            "PASV" => (Pasv, No),
            "EPSV" => (Epsv, Optional),
            "PORT" | "EPRT" | "LPRT" => (Active, Optional),
            "LIST" => (List, Optional),
            "NLST" => (Nlst, Optional),
            "RETR" => (Retr, Needed),
            "STOR" => (Stor, Needed),
            "APPE" => (Appe, Needed),
            "DELE" => (Dele, Needed),
            "MKD" | "XMKD" => (Mkd, Needed),
            "RMD" | "XRMD" => (Rmd, Needed),
            "SIZE" => (Size, Needed),
            "MDTM" => (Mdtm, Needed),
            "ABOR" => (Abor, No),
            "REST" | "RNFR" | "RNTO" | "SITE" | "STAT" | "STOU" | "REIN" | "ACCT" | "SMNT"
            | "ALLO" | "AUTH" | "PBSZ" | "PROT" | "MLST" | "MLSD" => (NotImplemented, Optional),
            _ => return Err("500 Unknown command."),
        };
        match (takes, arg.is_empty()) {
            (Needed, true) => Err("501 Syntax error: this command needs an argument."),
            (No, false) => Err("501 Syntax error: this command takes no argument."),
            _ => Ok((command, arg)),
        }
    }

    /// Whether the command may come before a login.
    pub(super) fn before_login(self) -> bool {
        use Command::*;
        matches!(
            self,
            User | Pass | Quit | Noop | Syst | Feat | Help | Opts | NotImplemented
        )
    }
}
