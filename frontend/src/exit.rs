//! Exit statuses, as a shell on Linux reports them for `python3 prog.py`.
//!
//! - 0: the program ended normally, or by `sys.exit()` / `sys.exit(None)` / `sys.exit(0)`.
//! - 1: an uncaught exception (its traceback went to stderr), or `sys.exit("message")`.
//! - `n & 0xff`: `sys.exit(n)`; Linux keeps the low 8 bits of a status, so `sys.exit(256)` is 0 and
//!   `sys.exit(-1)` is 255.
//! - 130 ([`INTERRUPTED`]): `KeyboardInterrupt`; the page also reports it for a program it stopped.

/// 128 + SIGINT: what a shell shows for a program stopped by Ctrl-C.
pub const INTERRUPTED: u8 = 130;

/// The status the exit code `code` becomes: Linux keeps its low 8 bits (a negative code arrives here as
/// its two's complement, so -1 is 255).
pub fn status(code: u32) -> u8 {
    (code & 0xff) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_low_eight_bits() {
        assert_eq!(status(0), 0);
        assert_eq!(status(3), 3);
        assert_eq!(status(255), 255);
        assert_eq!(status(256), 0);
        assert_eq!(status(257), 1);
    }

    #[test]
    fn negative_codes_wrap_like_linux() {
        assert_eq!(status(-1i32 as u32), 255);
        assert_eq!(status(-2i32 as u32), 254);
    }
}
