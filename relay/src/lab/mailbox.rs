//! The session's mailbox (to be written): mail SMTP accepted, read by POP3 and IMAP4.

/// What the mail servers keep per session.
#[derive(Default)]
pub struct Store {}
