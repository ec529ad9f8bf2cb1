//! Whether the relay's limits add up on this host, checked once at start-up: the ports its sessions may
//! hold against the port range, and the file descriptors its connections and streams may take against
//! `RLIMIT_NOFILE` (whose soft limit it raises as far as it needs and may).
//!
//! A configuration that cannot work even for one session is refused with the numbers; one that promises
//! more than the host has, to all sessions at once, starts with a warning that says who will see which
//! error, so an operator learns it from the log and not from a learner.

use crate::Config;

/// File descriptors the relay uses besides connections and streams: its listeners, the lab's, logs,
/// the runtime's own.
const FDS_BESIDE: u64 = 128;

/// What the relay may take of the host, as configured.
#[derive(Debug, PartialEq, Eq)]
pub struct Needs {
    /// Every HTTP connection, and every stream of every session holding two descriptors (a stream to the
    /// lab or to a session's own listener is both ends of a connection on this host).
    pub fds: u64,
    /// What one full session needs beside every HTTP connection.
    pub fds_one_session: u64,
    /// Ports every session together may hold.
    pub ports: u64,
    /// Ports one client may hold: its sessions, each with its listeners.
    pub ports_one_client: u64,
    /// The size of the port range.
    pub range: u64,
}

impl Needs {
    pub fn of(config: &Config) -> Needs {
        let streams = 2 * config.max_streams as u64;
        let (first, last) = config.port_range;
        Needs {
            fds: config.max_connections as u64 + config.max_sessions as u64 * streams + FDS_BESIDE,
            fds_one_session: config.max_connections as u64 + streams + FDS_BESIDE,
            ports: config.max_sessions as u64 * config.max_listeners as u64,
            ports_one_client: config.max_sessions_per_ip as u64 * config.max_listeners as u64,
            range: u64::from(last - first) + 1,
        }
    }
}

/// What start-up does about the limits.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// The soft open-file limit to set, when it is below what the relay needs and the hard one allows more.
    pub raise_to: Option<u64>,
    pub warnings: Vec<String>,
}

/// The verdict on `config` with the open-file limit `(soft, hard)`, or why the relay cannot start.
pub fn check(config: &Config, (soft, hard): (u64, u64)) -> Result<Verdict, String> {
    let needs = Needs::of(config);
    let mut verdict = Verdict::default();
    if config.max_listeners as u64 > needs.range {
        return Err(format!(
            "--max-listeners {} is more ports than --port-range holds ({}): widen the range or lower it",
            config.max_listeners, needs.range
        ));
    }
    if needs.ports > needs.range {
        verdict.warnings.push(format!(
            "{} sessions × {} listeners = {} ports, but --port-range has {}: they are handed out first come, \
             and once all are taken a learner's bind() or listen() fails with EADDRINUSE",
            config.max_sessions, config.max_listeners, needs.ports, needs.range
        ));
    }
    if needs.ports_one_client >= needs.range {
        return Err(format!(
            "one client may hold every port: --max-sessions-per-ip {} × --max-listeners {} = {} ≥ the range's {}; \
             lower one of them or widen --port-range",
            config.max_sessions_per_ip, config.max_listeners, needs.ports_one_client, needs.range
        ));
    }
    let usable = if soft < needs.fds {
        let target = needs.fds.min(hard);
        if target > soft {
            verdict.raise_to = Some(target);
        }
        target.max(soft)
    } else {
        soft
    };
    if usable < needs.fds_one_session {
        return Err(format!(
            "the open-file limit is {usable} (hard limit {hard}), but --max-connections {} and one session's \
             {} streams need {}: raise it (ulimit -n, or LimitNOFILE= in a systemd unit) or lower those",
            config.max_connections, config.max_streams, needs.fds_one_session
        ));
    }
    if usable < needs.fds {
        let fit =
            (usable - config.max_connections as u64 - FDS_BESIDE) / (2 * config.max_streams as u64);
        verdict.warnings.push(format!(
            "the open-file limit is {usable} (hard limit {hard}), but {} connections and {} sessions × {} \
             streams may need {}: about {fit} full sessions fit, after which new sockets fail with EMFILE; \
             raise the limit (ulimit -n, LimitNOFILE=) or lower --max-sessions to {fit}",
            config.max_connections, config.max_sessions, config.max_streams, needs.fds
        ));
    }
    Ok(verdict)
}

/// The process's open-file limit, (soft, hard).
pub fn nofile() -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we own and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

/// Sets the soft open-file limit (the hard one unchanged).
pub fn raise_nofile(soft: u64) -> std::io::Result<()> {
    let (_, hard) = nofile()?;
    let limit = libc::rlimit {
        rlim_cur: libc::rlim_t::try_from(soft).unwrap_or(libc::RLIM_INFINITY),
        rlim_max: libc::rlim_t::try_from(hard).unwrap_or(libc::RLIM_INFINITY),
    };
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(flags: &[&str]) -> Config {
        Config::with_flags(flags)
    }

    #[test]
    fn the_defaults_fit_a_host_with_a_large_open_file_limit() {
        let defaults = config(&[]);
        let needs = Needs::of(&defaults);
        assert_eq!(needs.fds, 4096 + 1000 * 64 + FDS_BESIDE);
        assert_eq!((needs.ports, needs.range), (8000, 9000));
        let verdict = check(&defaults, (1024, 1 << 20)).expect("starts");
        assert_eq!(verdict.raise_to, Some(needs.fds));
        assert_eq!(verdict.warnings, Vec::<String>::new());
    }

    #[test]
    fn ports_promised_beyond_the_range_are_a_warning() {
        let narrow = config(&["--port-range", "40000-40999"]);
        let verdict = check(&narrow, (1 << 20, 1 << 20)).expect("starts");
        // The ports are shared first come: said, not refused.
        assert_eq!(verdict.warnings.len(), 1, "{:?}", verdict.warnings);
        assert!(verdict.warnings[0].contains("8000 ports, but --port-range has 1000"));
        assert!(verdict.warnings[0].contains("EADDRINUSE"));
    }

    #[test]
    fn a_limit_that_cannot_be_raised_far_enough_is_a_warning_with_what_fits() {
        let verdict = check(&config(&[]), (1024, 20_000)).expect("starts");
        assert_eq!(verdict.raise_to, Some(20_000));
        let fds = verdict
            .warnings
            .iter()
            .find(|w| w.contains("open-file"))
            .expect("said");
        // (20000 - 4096 - 128) / 64 = 246 sessions.
        assert!(fds.contains("about 246 full sessions fit"), "{fds}");
        assert!(fds.contains("EMFILE"), "{fds}");
    }

    #[test]
    fn what_cannot_work_for_one_session_or_gives_one_client_every_port_is_refused() {
        let why = check(&config(&[]), (1024, 1024)).unwrap_err();
        assert!(why.contains("open-file limit is 1024"), "{why}");
        let why = check(
            &config(&["--port-range", "40000-40003", "--max-listeners", "5"]),
            (1 << 20, 1 << 20),
        )
        .unwrap_err();
        assert!(why.contains("--max-listeners 5"), "{why}");
        let narrow = |per_ip: &'static str| {
            config(&[
                "--port-range",
                "40000-40999",
                "--max-sessions-per-ip",
                per_ip,
            ])
        };
        let why = check(&narrow("125"), (1 << 20, 1 << 20)).unwrap_err();
        assert!(why.contains("one client may hold every port"), "{why}");
        assert!(check(&narrow("124"), (1 << 20, 1 << 20)).is_ok());
    }

    #[test]
    fn a_small_relay_on_a_small_limit_needs_nothing_raised() {
        let small = config(&[
            "--max-sessions",
            "10",
            "--max-connections",
            "100",
            "--max-sessions-per-ip",
            "4",
        ]);
        let verdict = check(&small, (1024, 1024)).expect("starts");
        assert_eq!(verdict, Verdict::default());
    }
}
