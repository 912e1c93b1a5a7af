//! UTC dates and times from Unix seconds, without a time-zone database (reports are in UTC, as
//! the paper's were in GMT).

/// `(year, month, day)` of a day counted from 1970-01-01 (Howard Hinnant's civil-from-days).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `2000-02-10 11:00:00`
pub fn date_time(secs: u64) -> String {
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02} {}", clock(secs))
}

/// `11:00:00`
pub fn clock(secs: u64) -> String {
    let s = secs % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `2000-02-10T11:00:00Z`
pub fn rfc3339(secs: u64) -> String {
    date_time(secs).replace(' ', "T") + "Z"
}

/// `2000-02-10T11:00:00.123456789Z`, from nanoseconds since 1970.
pub fn rfc3339_ns(ns: u64) -> String {
    // Written digit by digit: flow records carry two of these each, and `format!` made them
    // a tenth of `trawl flows`' instructions.
    let (secs, nanos) = (ns / 1_000_000_000, ns % 1_000_000_000);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    let mut out = Vec::with_capacity(30);
    if (0..10_000).contains(&y) {
        push_digits(&mut out, y as u64, 4);
    } else {
        out.extend_from_slice(y.to_string().as_bytes());
    }
    out.push(b'-');
    push_digits(&mut out, u64::from(m), 2);
    out.push(b'-');
    push_digits(&mut out, u64::from(d), 2);
    out.push(b'T');
    push_digits(&mut out, s / 3600, 2);
    out.push(b':');
    push_digits(&mut out, s / 60 % 60, 2);
    out.push(b':');
    push_digits(&mut out, s % 60, 2);
    out.push(b'.');
    push_digits(&mut out, nanos, 9);
    out.push(b'Z');
    String::from_utf8(out).expect("ASCII digits and separators")
}

/// `value` in exactly `width` decimal digits (zero-padded; `value` must fit).
fn push_digits(out: &mut Vec<u8>, mut value: u64, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for slot in out[start..].iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// A duration in nanoseconds: `15s`, `100ms`, `1.5m`, `2h`, `250us`, `10ns` (a bare number is
/// seconds), exact to the nanosecond.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let scale: u128 = match unit {
        "" | "s" => 1_000_000_000,
        "ms" => 1_000_000,
        "us" | "µs" => 1_000,
        "ns" => 1,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => {
            return Err(format!(
                "bad duration {s:?}: unknown unit {unit:?} (use ns, us, ms, s, m or h)"
            ));
        }
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if (int.is_empty() && frac.is_empty())
        || frac.len() > 9
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return Err(format!("bad duration {s:?}: e.g. 15s, 100ms, 30m"));
    }
    let secs: u128 = if int.is_empty() {
        0
    } else {
        int.parse()
            .map_err(|_| format!("duration {s:?} is too long"))?
    };
    let nanos: u128 = format!("{frac:0<9}").parse().expect("nine digits");
    let ns = secs * scale + nanos * scale / 1_000_000_000;
    u64::try_from(ns).map_err(|_| format!("duration {s:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date_time(0), "1970-01-01 00:00:00");
        assert_eq!(date_time(950_180_400), "2000-02-10 11:00:00");
        assert_eq!(rfc3339(1_709_294_400), "2024-03-01T12:00:00Z");
        assert_eq!(date_time(951_782_399), "2000-02-28 23:59:59");
        assert_eq!(date_time(951_868_800), "2000-03-01 00:00:00");
        assert_eq!(
            rfc3339_ns(1_709_294_400_000_000_007),
            "2024-03-01T12:00:00.000000007Z"
        );
    }

    #[test]
    fn nanosecond_times_agree_with_the_date_and_clock() {
        // The digit-by-digit form against `date_time`, over the whole range a u64 of
        // nanoseconds reaches (to 2554), with a spread of sub-second parts.
        let mut ns: u64 = 0;
        while ns < u64::MAX - 3_999_999_999_999_937 {
            let (secs, nanos) = (ns / 1_000_000_000, ns % 1_000_000_000);
            let expected = format!("{}.{nanos:09}Z", date_time(secs).replace(' ', "T"));
            assert_eq!(rfc3339_ns(ns), expected, "{ns}");
            ns += 3_999_999_999_999_937;
        }
        assert_eq!(rfc3339_ns(u64::MAX), "2554-07-21T23:34:33.709551615Z");
    }
}
