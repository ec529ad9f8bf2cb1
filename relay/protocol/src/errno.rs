//! The error numbers that travel in `Failed` and `Closed`: Linux's values, so that the page raises the
//! exception CPython on Linux raises (111 becomes `ConnectionRefusedError`, and so on). Negative values are
//! `getaddrinfo` errors, which Python raises as `socket.gaierror`.
//!
//! [`Failure`] is the one error that carries them, on both ends: the relay answers an operation with it,
//! the page's network stack fails a call with it, and the native client returns it.

/// An operation failed as CPython on Linux would report it: an errno and the message of the exception.
///
/// The message is [`describe`]'s text unless there is more to say (a policy refusal names the
/// destination and the rule). Displayed as CPython prints an `OSError`: `[Errno 111] Connection refused`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("[Errno {errno}] {message}")]
pub struct Failure {
    pub errno: i32,
    pub message: String,
}

impl Failure {
    /// `errno` with Linux's own message for it.
    pub fn errno(errno: i32) -> Failure {
        Failure {
            errno,
            message: describe(errno).to_owned(),
        }
    }

    /// `errno` with a message of its own.
    pub fn with(errno: i32, message: impl Into<String>) -> Failure {
        Failure {
            errno,
            message: message.into(),
        }
    }

    /// An I/O error met on a real socket, as its errno and Linux's message.
    pub fn io(err: &std::io::Error) -> Failure {
        Failure::errno(from_io(err))
    }
}

/// Operation not permitted.
pub const EPERM: i32 = 1;
/// Bad file descriptor: a socket the program already closed.
pub const EBADF: i32 = 9;
/// Resource temporarily unavailable: a non-blocking call that would wait (`BlockingIOError`).
pub const EAGAIN: i32 = 11;
/// Permission denied: the relay's policy refuses this destination.
pub const EACCES: i32 = 13;
/// Invalid argument.
pub const EINVAL: i32 = 22;
/// Too many open files: the session's stream quota.
pub const EMFILE: i32 = 24;
/// Broken pipe: writing to a stream whose peer is gone.
pub const EPIPE: i32 = 32;
/// Destination address required (`send` on an unconnected UDP socket).
pub const EDESTADDRREQ: i32 = 89;
/// Message too long (a datagram over the limit).
pub const EMSGSIZE: i32 = 90;
/// Address already in use.
pub const EADDRINUSE: i32 = 98;
/// Cannot assign requested address.
pub const EADDRNOTAVAIL: i32 = 99;
/// Operation not supported (`listen` on a UDP socket).
pub const EOPNOTSUPP: i32 = 95;
/// Network is down: the page lost its connection to the relay.
pub const ENETDOWN: i32 = 100;
/// Network is unreachable.
pub const ENETUNREACH: i32 = 101;
/// Connection aborted.
pub const ECONNABORTED: i32 = 103;
/// Connection reset by peer.
pub const ECONNRESET: i32 = 104;
/// No buffer space available: the session's buffer or listener quota.
pub const ENOBUFS: i32 = 105;
/// Transport endpoint is already connected.
pub const EISCONN: i32 = 106;
/// Transport endpoint is not connected.
pub const ENOTCONN: i32 = 107;
/// Connection timed out.
pub const ETIMEDOUT: i32 = 110;
/// Connection refused.
pub const ECONNREFUSED: i32 = 111;
/// No route to host.
pub const EHOSTUNREACH: i32 = 113;
/// Operation already in progress (a second non-blocking `connect`).
pub const EALREADY: i32 = 114;
/// Operation now in progress (a non-blocking `connect` that has started).
pub const EINPROGRESS: i32 = 115;

/// `getaddrinfo`: name or service not known.
pub const EAI_NONAME: i32 = -2;
/// `getaddrinfo`: temporary failure in name resolution.
pub const EAI_AGAIN: i32 = -3;
/// `getaddrinfo`: address family for hostname not supported.
pub const EAI_FAMILY: i32 = -6;

/// Every errno above: its value, its name (`errno.errorcode`'s), and the text Linux's `strerror` (or
/// `gai_strerror`) gives for it, as CPython puts it in the exception.
const TABLE: &[(i32, &str, &str)] = &[
    (EPERM, "EPERM", "Operation not permitted"),
    (EBADF, "EBADF", "Bad file descriptor"),
    (EAGAIN, "EAGAIN", "Resource temporarily unavailable"),
    (EDESTADDRREQ, "EDESTADDRREQ", "Destination address required"),
    (EOPNOTSUPP, "EOPNOTSUPP", "Operation not supported"),
    (ENETDOWN, "ENETDOWN", "Network is down"),
    (
        EISCONN,
        "EISCONN",
        "Transport endpoint is already connected",
    ),
    (EALREADY, "EALREADY", "Operation already in progress"),
    (EINPROGRESS, "EINPROGRESS", "Operation now in progress"),
    (EACCES, "EACCES", "Permission denied"),
    (EINVAL, "EINVAL", "Invalid argument"),
    (EMFILE, "EMFILE", "Too many open files"),
    (EPIPE, "EPIPE", "Broken pipe"),
    (EMSGSIZE, "EMSGSIZE", "Message too long"),
    (EADDRINUSE, "EADDRINUSE", "Address already in use"),
    (
        EADDRNOTAVAIL,
        "EADDRNOTAVAIL",
        "Cannot assign requested address",
    ),
    (ENETUNREACH, "ENETUNREACH", "Network is unreachable"),
    (
        ECONNABORTED,
        "ECONNABORTED",
        "Software caused connection abort",
    ),
    (ECONNRESET, "ECONNRESET", "Connection reset by peer"),
    (ENOBUFS, "ENOBUFS", "No buffer space available"),
    (ENOTCONN, "ENOTCONN", "Transport endpoint is not connected"),
    (ETIMEDOUT, "ETIMEDOUT", "Connection timed out"),
    (ECONNREFUSED, "ECONNREFUSED", "Connection refused"),
    (EHOSTUNREACH, "EHOSTUNREACH", "No route to host"),
    (EAI_NONAME, "EAI_NONAME", "Name or service not known"),
    (
        EAI_AGAIN,
        "EAI_AGAIN",
        "Temporary failure in name resolution",
    ),
    (
        EAI_FAMILY,
        "EAI_FAMILY",
        "Address family for hostname not supported",
    ),
];

/// The text Linux's `strerror` (or `gai_strerror`) gives for `errno`, as CPython puts it in the exception.
pub fn describe(errno: i32) -> &'static str {
    TABLE
        .iter()
        .find(|(value, _, _)| *value == errno)
        .map_or("Unknown error", |(_, _, text)| text)
}

/// The errno's symbolic name (`ECONNREFUSED`), as Python's `errno.errorcode` has it; `None` for one this
/// table lacks.
pub fn name(errno: i32) -> Option<&'static str> {
    TABLE
        .iter()
        .find(|(value, _, _)| *value == errno)
        .map(|(_, name, _)| *name)
}

/// The errno for an I/O error the relay met on a real socket.
pub fn from_io(err: &std::io::Error) -> i32 {
    use std::io::ErrorKind::*;
    if let Some(code) = err.raw_os_error() {
        return code;
    }
    match err.kind() {
        ConnectionRefused => ECONNREFUSED,
        ConnectionReset => ECONNRESET,
        ConnectionAborted => ECONNABORTED,
        NotConnected => ENOTCONN,
        AddrInUse => EADDRINUSE,
        AddrNotAvailable => EADDRNOTAVAIL,
        BrokenPipe => EPIPE,
        TimedOut => ETIMEDOUT,
        PermissionDenied => EACCES,
        HostUnreachable => EHOSTUNREACH,
        NetworkUnreachable => ENETUNREACH,
        _ => EINVAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_reads_as_cpython_prints_an_oserror() {
        assert_eq!(
            Failure::errno(ECONNREFUSED).to_string(),
            "[Errno 111] Connection refused"
        );
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(Failure::io(&refused), Failure::errno(ECONNREFUSED));
    }

    #[test]
    fn every_errno_has_its_name_and_text() {
        assert_eq!(name(ECONNREFUSED), Some("ECONNREFUSED"));
        assert_eq!(name(EAI_NONAME), Some("EAI_NONAME"));
        assert_eq!(describe(EPIPE), "Broken pipe");
        assert_eq!((name(12345), describe(12345)), (None, "Unknown error"));
    }
}
