//! Times given on the command line: `--from`/`--to`.
//!
//! Accepted forms: seconds since the epoch (`1700000000.25`); a UTC date and time
//! (`2024-03-01T12:00:00Z`, `2024-03-01 12:00:00.5`, with an optional `+hh:mm` offset); and an offset
//! from the first packet of the input (`+90s`, `+1.5m`, `+2h`, `+500ms`).

use anyhow::{Result, anyhow, bail};
use trawl_pcap::Timestamp;

/// A time bound, absolute or relative to the first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSpec {
    Absolute(Timestamp),
    /// Nanoseconds after the first packet.
    AfterStart(u64),
}

impl TimeSpec {
    pub fn resolve(self, first: Timestamp) -> Timestamp {
        match self {
            TimeSpec::Absolute(t) => t,
            TimeSpec::AfterStart(ns) => {
                let total = first.nanos as u64 + ns;
                Timestamp::new(
                    first.secs.saturating_add(total / 1_000_000_000),
                    (total % 1_000_000_000) as u32,
                )
            }
        }
    }
}

pub fn parse(s: &str) -> Result<TimeSpec> {
    let s = s.trim();
    if let Some(rel) = s.strip_prefix('+') {
        return Ok(TimeSpec::AfterStart(parse_duration(rel)?));
    }
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Ok(TimeSpec::Absolute(parse_seconds(s)?));
    }
    parse_datetime(s).map(TimeSpec::Absolute).map_err(|e| {
        anyhow!(
            "bad time '{s}': {e}; use seconds since the epoch (1700000000.5), a UTC date \
             (2024-03-01T12:00:00Z) or an offset from the first packet (+90s)"
        )
    })
}

/// `10s`, `1.5m`, `2h`, `500ms`, `250us`, `10ns`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<u64> {
    trawl_flow::time::parse_duration(s).map_err(anyhow::Error::msg)
}

/// `123.456` as a timestamp, exact to the nanosecond.
fn parse_seconds(s: &str) -> Result<Timestamp> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        bail!("no digits");
    }
    if frac.len() > 9 || !frac.chars().all(|c| c.is_ascii_digit()) {
        bail!("bad fraction '{frac}'");
    }
    let secs: u64 = if int.is_empty() { 0 } else { int.parse()? };
    let nanos: u32 = format!("{frac:0<9}").parse()?;
    Ok(Timestamp::new(secs, nanos))
}

fn parse_datetime(s: &str) -> Result<Timestamp> {
    let (date, rest) = s.split_at(s.find(['T', ' ']).unwrap_or(s.len()));
    let rest = rest.get(1..).unwrap_or("");
    let d: Vec<&str> = date.split('-').collect();
    let [y, mo, da] = d[..] else {
        bail!("the date is not YYYY-MM-DD")
    };
    let (y, mo, da): (i64, u32, u32) = (y.parse()?, mo.parse()?, da.parse()?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) {
        bail!("month or day out of range");
    }
    // Split off a zone: Z, +hh:mm or -hh:mm.
    let (clock, offset_secs) = if let Some(c) = rest.strip_suffix('Z') {
        (c, 0i64)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (c, z) = rest.split_at(i);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (h, m) = z[1..].split_once(':').unwrap_or((&z[1..], "0"));
        (
            c,
            sign * (h.parse::<i64>()? * 3600 + m.parse::<i64>()? * 60),
        )
    } else {
        (rest, 0)
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms.split(':').filter(|p| !p.is_empty());
    let h: i64 = parts.next().map(str::parse).transpose()?.unwrap_or(0);
    let mi: i64 = parts.next().map(str::parse).transpose()?.unwrap_or(0);
    let se: i64 = parts.next().map(str::parse).transpose()?.unwrap_or(0);
    if h > 23 || mi > 59 || se > 60 {
        bail!("time of day out of range");
    }
    let secs = days_from_civil(y, mo, da) * 86400 + h * 3600 + mi * 60 + se - offset_secs;
    if secs < 0 {
        bail!("before 1970");
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        parse_seconds(&format!("0.{frac}"))?.nanos
    };
    Ok(Timestamp::new(secs as u64, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// `2024-03-01 12:00:00.123456789` (UTC), as capinfos shows times.
pub fn format_utc(t: Timestamp, decimals: usize) -> String {
    let days = (t.secs / 86400) as i64;
    let rem = t.secs % 86400;
    let (y, m, d) = trawl_flow::time::civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if decimals > 0 {
        let frac = format!("{:09}", t.nanos);
        s.push('.');
        s.push_str(&frac[..decimals.min(9)]);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(
            parse("1700000000.25").unwrap(),
            TimeSpec::Absolute(Timestamp::new(1_700_000_000, 250_000_000))
        );
        // date -u -d 2024-03-01T12:00:00Z +%s == 1709294400
        assert_eq!(
            parse("2024-03-01T12:00:00Z").unwrap(),
            TimeSpec::Absolute(Timestamp::new(1_709_294_400, 0))
        );
        assert_eq!(
            parse("2024-03-01 13:00:00.5+01:00").unwrap(),
            TimeSpec::Absolute(Timestamp::new(1_709_294_400, 500_000_000))
        );
        assert_eq!(
            parse("+1.5m").unwrap(),
            TimeSpec::AfterStart(90_000_000_000)
        );
        assert_eq!(parse("+500ms").unwrap(), TimeSpec::AfterStart(500_000_000));
        assert!(parse("yesterday").is_err());
        assert!(parse("2024-13-01").is_err());
    }

    #[test]
    fn civil_round_trip() {
        for days in [-1000, 0, 19_000, 50_000] {
            let (y, m, d) = trawl_flow::time::civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(
            format_utc(Timestamp::new(1_102_274_184, 317_453_000), 6),
            "2004-12-05 19:16:24.317453"
        );
    }
}
