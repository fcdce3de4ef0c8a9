//! Wall-clock formatting without a date library: HTTP dates, Swift's
//! access-log datetime, and the ISO form used by the file log.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A UTC instant broken down into calendar fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micros: u32,
    /// 0 = Monday.
    pub weekday: u32,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

impl Utc {
    /// Break down a system time (times before 1970 clamp to the epoch).
    pub fn from_system(t: SystemTime) -> Utc {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Utc::from_unix(d.as_secs() as i64, d.subsec_micros())
    }

    /// Break down seconds since the epoch.
    pub fn from_unix(secs: i64, micros: u32) -> Utc {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        // Civil-from-days (proleptic Gregorian), after Howard Hinnant's algorithm.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
            micros,
            // 1970-01-01 was a Thursday (3 with Monday = 0).
            weekday: (days + 3).rem_euclid(7) as u32,
        }
    }

    /// RFC 7231 IMF-fixdate: `Wed, 25 Nov 2026 06:54:36 GMT`.
    pub fn http_date(&self) -> String {
        // Piece by piece, as `access_log_datetime`.
        let mut s = String::with_capacity(32);
        s.push_str(DAYS[self.weekday as usize % 7]);
        s.push_str(", ");
        push_2_digits(&mut s, self.day);
        s.push(' ');
        s.push_str(MONTHS[(self.month as usize + 11) % 12]);
        s.push(' ');
        let _ = write!(s, "{}", self.year);
        s.push(' ');
        push_2_digits(&mut s, self.hour);
        s.push(':');
        push_2_digits(&mut s, self.minute);
        s.push(':');
        push_2_digits(&mut s, self.second);
        s.push_str(" GMT");
        s
    }

    /// Swift's access-log `end_time.datetime`: `25/Nov/2026/06/54/36`.
    pub fn access_log_datetime(&self) -> String {
        // Written piece by piece: once per access-log line, and `format!`
        // with padding costs several times more.
        let mut s = String::with_capacity(24);
        push_2_digits(&mut s, self.day);
        s.push('/');
        s.push_str(MONTHS[(self.month as usize + 11) % 12]);
        s.push('/');
        let _ = write!(s, "{}", self.year);
        for n in [self.hour, self.minute, self.second] {
            s.push('/');
            push_2_digits(&mut s, n);
        }
        s
    }

    /// `2026-11-25T06:54:36.123456Z`.
    pub fn iso8601(&self) -> String {
        format!(
            "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.micros
        )
    }
}

/// `{:02}` of `n`.
fn push_2_digits(s: &mut String, n: u32) {
    if n >= 100 {
        let _ = write!(s, "{n}");
        return;
    }
    s.push(char::from(b'0' + (n / 10) as u8));
    s.push(char::from(b'0' + (n % 10) as u8));
}

/// Seconds since the epoch as a float, as Python's `time.time()`.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_format_like_python() {
        // python3 -c 'import time; print(time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(1795590876)))'
        let t = Utc::from_unix(1_795_590_876, 0);
        assert_eq!(t.http_date(), "Wed, 25 Nov 2026 07:14:36 GMT");
        assert_eq!(t.access_log_datetime(), "25/Nov/2026/07/14/36");
        for secs in (-100_000_000_000i64..300_000_000_000).step_by(7_777_777_777) {
            let u = Utc::from_unix(secs, 0);
            let want = format!(
                "{:02}/{}/{}/{:02}/{:02}/{:02}",
                u.day,
                MONTHS[(u.month as usize + 11) % 12],
                u.year,
                u.hour,
                u.minute,
                u.second
            );
            assert_eq!(u.access_log_datetime(), want);
            let want = format!(
                "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
                DAYS[u.weekday as usize % 7],
                u.day,
                MONTHS[(u.month as usize + 11) % 12],
                u.year,
                u.hour,
                u.minute,
                u.second
            );
            assert_eq!(u.http_date(), want);
        }
        assert_eq!(
            Utc::from_unix(0, 0).http_date(),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(
            Utc::from_unix(951_782_400, 5).iso8601(),
            "2000-02-29T00:00:00.000005Z"
        );
    }
}
