//! A small `strftime` over UTC for the `strftime_now` template function.
//!
//! Templates such as Llama 3.x and Granite print today's date with it. Python formats the
//! local time with the C library's `strftime`; here the clock is read in UTC (no time-zone
//! database is needed on device), with the C locale's names. Conversions follow glibc,
//! including its `%-d` style flag that drops padding; an unknown directive is copied as is.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

const WEEKDAYS: [&str; 7] =
    ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A broken-down UTC time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UtcTime {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Monday .. 6 = Sunday
    pub weekday: u32,
    /// 1..=366
    pub day_of_year: u32,
}

impl UtcTime {
    pub(crate) fn from_system_time(t: SystemTime) -> Self {
        let secs = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
        };
        Self::from_unix_seconds(secs)
    }

    pub(crate) fn from_unix_seconds(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let in_day = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        // 1970-01-01 was a Thursday (index 3 counting from Monday).
        let weekday = (days + 3).rem_euclid(7) as u32;
        let day_of_year = (days - days_from_civil(year, 1, 1) + 1) as u32;
        Self {
            year,
            month,
            day,
            hour: in_day / 3600,
            minute: in_day / 60 % 60,
            second: in_day % 60,
            weekday,
            day_of_year,
        }
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Formats `t` with C `strftime` directives.
pub(crate) fn strftime(format: &str, t: &UtcTime) -> String {
    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let unpadded = chars.peek() == Some(&'-');
        if unpadded {
            chars.next();
        }
        let Some(directive) = chars.next() else {
            out.push('%');
            if unpadded {
                out.push('-');
            }
            break;
        };
        let num = |out: &mut String, value: i64, width: usize| {
            let _ = if unpadded { write!(out, "{value}") } else { write!(out, "{value:0width$}") };
        };
        let hour12 = if t.hour.is_multiple_of(12) { 12 } else { t.hour % 12 };
        let weekday_name = WEEKDAYS[t.weekday as usize % 7];
        let month_name = MONTHS[(t.month as usize + 11) % 12];
        match directive {
            'a' => out.push_str(&weekday_name[..3]),
            'A' => out.push_str(weekday_name),
            'b' | 'h' => out.push_str(&month_name[..3]),
            'B' => out.push_str(month_name),
            'd' => num(&mut out, t.day.into(), 2),
            'e' => {
                let _ =
                    if unpadded { write!(out, "{}", t.day) } else { write!(out, "{:2}", t.day) };
            }
            'm' => num(&mut out, t.month.into(), 2),
            'y' => num(&mut out, t.year.rem_euclid(100), 2),
            'Y' => {
                let _ = write!(out, "{}", t.year);
            }
            'H' => num(&mut out, t.hour.into(), 2),
            'I' => num(&mut out, hour12.into(), 2),
            'M' => num(&mut out, t.minute.into(), 2),
            'S' => num(&mut out, t.second.into(), 2),
            'p' => out.push_str(if t.hour < 12 { "AM" } else { "PM" }),
            'j' => num(&mut out, t.day_of_year.into(), 3),
            'u' => num(&mut out, (t.weekday + 1).into(), 1),
            'w' => num(&mut out, ((t.weekday + 1) % 7).into(), 1),
            'Z' => out.push_str("UTC"),
            'z' => out.push_str("+0000"),
            'F' => out.push_str(&strftime("%Y-%m-%d", t)),
            'T' | 'X' => out.push_str(&strftime("%H:%M:%S", t)),
            'D' | 'x' => out.push_str(&strftime("%m/%d/%y", t)),
            'R' => out.push_str(&strftime("%H:%M", t)),
            'c' => out.push_str(&strftime("%a %b %e %H:%M:%S %Y", t)),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            '%' => out.push('%'),
            other => {
                out.push('%');
                if unpadded {
                    out.push('-');
                }
                out.push(other);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        for days in [-800_000, -1, 0, 59, 365, 10_957, 11_016, 19_723, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn formats_like_glibc() {
        // 2024-07-26 14:05:09 UTC, a Friday, day 208 of a leap year. Expected strings are
        // Python's datetime(2024, 7, 26, 14, 5, 9).strftime(...) on glibc.
        let t = UtcTime::from_unix_seconds(1_722_002_709);
        assert_eq!(strftime("%d %b %Y", &t), "26 Jul 2024");
        assert_eq!(strftime("%B %d, %Y", &t), "July 26, 2024");
        assert_eq!(strftime("%A %a %H:%M:%S %I %p", &t), "Friday Fri 14:05:09 02 PM");
        assert_eq!(strftime("%j %u %w %y %-m/%-d %e", &t), "208 5 5 24 7/26 26");
        assert_eq!(
            strftime("%F %T %c %% %Q", &t),
            "2024-07-26 14:05:09 Fri Jul 26 14:05:09 2024 % %Q"
        );
        let new_year = UtcTime::from_unix_seconds(1_704_067_200);
        assert_eq!(strftime("%Y-%m-%d %j %a %e|%-d", &new_year), "2024-01-01 001 Mon  1|1");
    }
}
