//! The lab's clock: UTC only (the lab has no time zones), broken down for the date formats its protocols
//! write — mail and news headers, IMAP's INTERNALDATE, FTP's listings and MDTM, daytime, HTTP's JSON.
//! Howard Hinnant's `civil_from_days` is the twenty lines that spare a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

pub const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    unix(SystemTime::now())
}

/// Seconds since the Unix epoch at `time` (0 before it).
pub fn unix(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A moment in UTC, broken down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    /// 1 to 12.
    pub month: usize,
    /// 1 to 31.
    pub day: i64,
    /// Seconds since midnight.
    pub time: i64,
    /// 0 is Sunday.
    pub weekday: usize,
}

impl Utc {
    pub fn now() -> Utc {
        Utc::from_unix(unix_now())
    }

    pub fn from_unix(secs: i64) -> Utc {
        let days = secs.div_euclid(86_400);
        let z = days + 719_468;
        let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Utc {
            year: yoe + era * 400 + i64::from(month <= 2),
            month: month as usize,
            day: doy - (153 * mp + 2) / 5 + 1,
            time: secs.rem_euclid(86_400),
            weekday: (days + 4).rem_euclid(7) as usize,
        }
    }

    pub fn hour(&self) -> i64 {
        self.time / 3600
    }

    pub fn minute(&self) -> i64 {
        self.time / 60 % 60
    }

    pub fn second(&self) -> i64 {
        self.time % 60
    }

    pub fn weekday_name(&self) -> &'static str {
        WEEKDAYS[self.weekday]
    }

    pub fn month_name(&self) -> &'static str {
        MONTHS[self.month - 1]
    }

    /// `hh:mm:ss`.
    pub fn clock(&self) -> String {
        format!(
            "{:02}:{:02}:{:02}",
            self.hour(),
            self.minute(),
            self.second()
        )
    }

    /// `yyyymmddhhmmss`: NNTP's DATE, FTP's MDTM (RFC 3659).
    pub fn compact(&self) -> String {
        let (y, m, d) = (self.year, self.month, self.day);
        format!("{y:04}{m:02}{d:02}{}", self.clock().replace(':', ""))
    }

    /// `Tue, 02 Sep 2025 11:30:00 +0000`: Date headers of mail and news (RFC 5322).
    pub fn rfc5322(&self) -> String {
        let (weekday, month) = (self.weekday_name(), self.month_name());
        let (day, year, clock) = (self.day, self.year, self.clock());
        format!("{weekday}, {day:02} {month} {year} {clock} +0000")
    }

    /// What `date -u` prints: `Tue Sep  2 11:30:00 UTC 2025` (daytime, Telnet's `date`).
    pub fn date_u(&self) -> String {
        let (weekday, month) = (self.weekday_name(), self.month_name());
        let (day, clock, year) = (self.day, self.clock(), self.year);
        format!("{weekday} {month} {day:>2} {clock} UTC {year}")
    }

    /// `2024-03-01T12:00:00Z`.
    pub fn iso8601(&self) -> String {
        let (y, m, d) = (self.year, self.month, self.day);
        format!("{y:04}-{m:02}-{d:02}T{}Z", self.clock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_every_format() {
        assert_eq!(
            Utc::from_unix(0).rfc5322(),
            "Thu, 01 Jan 1970 00:00:00 +0000"
        );
        assert_eq!(
            Utc::from_unix(951_825_600).rfc5322(),
            "Tue, 29 Feb 2000 12:00:00 +0000"
        );
        assert_eq!(Utc::from_unix(1_756_805_400).compact(), "20250902093000");
        assert_eq!(
            Utc::from_unix(1_709_294_645).iso8601(),
            "2024-03-01T12:04:05Z"
        );
        assert_eq!(
            Utc::from_unix(1_795_560_189).date_u(),
            "Tue Nov 24 22:43:09 UTC 2026"
        );
        assert_eq!(Utc::from_unix(0).date_u(), "Thu Jan  1 00:00:00 UTC 1970");
        assert_eq!(Utc::from_unix(-1).iso8601(), "1969-12-31T23:59:59Z");
    }
}
