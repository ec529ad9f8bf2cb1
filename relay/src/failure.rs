//! An operation's failure as the page will raise it: an errno and the message Python shows with it.

use soket_protocol::errno::{self, describe};
use soket_protocol::{Down, StreamId};

use crate::policy::Refusal;

/// An operation's failure as the page will raise it.
#[derive(Debug)]
pub struct Failure {
    pub errno: i32,
    pub message: String,
}

impl Failure {
    pub fn errno(errno: i32) -> Failure {
        Failure {
            errno,
            message: describe(errno).to_owned(),
        }
    }

    pub fn with(errno: i32, message: impl Into<String>) -> Failure {
        Failure {
            errno,
            message: message.into(),
        }
    }

    pub fn io(err: &std::io::Error) -> Failure {
        Failure::errno(errno::from_io(err))
    }

    /// The `Failed` frame that answers `stream`'s operation with this failure.
    pub fn answer(self, stream: StreamId) -> Down {
        Down::Failed {
            stream,
            errno: self.errno,
            message: self.message,
        }
    }
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Failure {
        Failure::with(errno::EACCES, refusal.to_string())
    }
}
