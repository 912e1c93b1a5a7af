//! `GET /api/v1/devices`: the status of an organisation's devices.
//!
//! Per device: what the catalogue keeps (name, host name, revoked, when last seen, totals of
//! packets, bytes and drops), whether it is `connected` — it made an authenticated request to
//! this server process in the last 30 s, as [`Metrics`](crate::metrics::Metrics) notes in
//! memory (so every device reads as not connected for a moment after a restart) — its link
//! types (those of its streams' segments and those it declared when it enrolled), and each of
//! its streams in each epoch. Then the totals over all devices.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use crate::api::{ApiError, AppState};
use crate::auth::Role;
use crate::catalogue::{self, Catalogue, DeviceId, DeviceSummary, Drops, OrgId, from_sql};

/// One stream of a device, in one epoch.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StreamStatus {
    pub name: String,
    /// The agent's epoch for the stream (a 64-bit unsigned number).
    pub epoch: u64,
    /// The last batch stored.
    pub last_seq: u64,
    pub packets: u64,
    pub bytes: u64,
    pub drops: Drops,
}

#[derive(Serialize)]
struct DeviceStatus {
    #[serde(flatten)]
    summary: DeviceSummary,
    /// `last_seen_ns` as RFC 3339 (UTC).
    last_seen: Option<String>,
    connected: bool,
    /// Its agent holds a command poll open, or had one answered in the last 30 s: a capture
    /// job can start there now.
    polling: bool,
    link_types: Vec<u32>,
    streams: Vec<StreamStatus>,
}

#[derive(Serialize, Default)]
struct Totals {
    devices: u64,
    connected: u64,
    packets: u64,
    bytes: u64,
    drops: Drops,
}

/// What the catalogue holds about an organisation's devices.
struct Listing {
    devices: Vec<DeviceSummary>,
    streams: Vec<(DeviceId, StreamStatus)>,
    link_types: Vec<(DeviceId, u32)>,
    interfaces: Vec<(DeviceId, String)>,
}

/// The catalogue's queries for the device status.
impl Catalogue {
    /// Every stream of the organisation's devices, by device, name and epoch.
    pub fn device_streams(&self, org: OrgId) -> catalogue::Result<Vec<(DeviceId, StreamStatus)>> {
        let mut stmt = self.conn.prepare(
            "SELECT device_id, name, epoch, last_seq, packets, bytes, kernel_drops,
                    interface_drops, spool_drops
             FROM streams WHERE org_id = ?1 ORDER BY device_id, name, id",
        )?;
        let rows = stmt.query_map([org], |r| {
            Ok((
                r.get(0)?,
                StreamStatus {
                    name: r.get(1)?,
                    epoch: from_sql(r.get(2)?),
                    last_seq: from_sql(r.get(3)?),
                    packets: from_sql(r.get(4)?),
                    bytes: from_sql(r.get(5)?),
                    drops: Drops::from_row(r, 6)?,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The link types of the organisation's segments, by device.
    fn segment_link_types(&self, org: OrgId) -> catalogue::Result<Vec<(DeviceId, u32)>> {
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT s.device_id, g.link_type FROM segments g
             JOIN streams s ON s.id = g.stream_id AND s.org_id = g.org_id
             WHERE g.org_id = ?1 AND g.link_type IS NOT NULL",
        )?;
        let rows = stmt.query_map([org], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The interfaces each device of the organisation declared when it enrolled (JSON).
    fn enrolled_interfaces(&self, org: OrgId) -> catalogue::Result<Vec<(DeviceId, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, interfaces FROM devices WHERE org_id = ?1")?;
        let rows = stmt.query_map([org], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn listing(&self, org: OrgId) -> catalogue::Result<Listing> {
        Ok(Listing {
            devices: self.devices(org)?,
            streams: self.device_streams(org)?,
            link_types: self.segment_link_types(org)?,
            interfaces: self.enrolled_interfaces(org)?,
        })
    }
}

/// The link types in an enrolment's `[{"name": …, "link_type": n}]`; nothing if it is not that.
fn declared_link_types(interfaces_json: &str) -> Vec<u32> {
    let Ok(serde_json::Value::Array(list)) = serde_json::from_str(interfaces_json) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|i| i.get("link_type")?.as_u64())
        .filter_map(|n| u32::try_from(n).ok())
        .collect()
}

/// `GET /api/v1/devices`.
pub(crate) async fn list(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Viewer).await?.org;
    let listing = st.db(move |c| c.listing(org)).await?;

    let mut link_types: BTreeMap<DeviceId, BTreeSet<u32>> = BTreeMap::new();
    for (device, lt) in listing.link_types {
        link_types.entry(device).or_default().insert(lt);
    }
    for (device, json) in &listing.interfaces {
        link_types
            .entry(*device)
            .or_default()
            .extend(declared_link_types(json));
    }
    let mut streams: BTreeMap<DeviceId, Vec<StreamStatus>> = BTreeMap::new();
    for (device, s) in listing.streams {
        streams.entry(device).or_default().push(s);
    }

    let mut totals = Totals::default();
    let mut devices = Vec::with_capacity(listing.devices.len());
    for summary in listing.devices {
        let id: DeviceId = summary.id.parse().unwrap_or_default();
        let connected = st.ingest.metrics.connected(id);
        totals.devices += 1;
        totals.connected += u64::from(connected);
        totals.packets += summary.packets;
        totals.bytes += summary.bytes;
        totals.drops.kernel += summary.drops.kernel;
        totals.drops.interface += summary.drops.interface;
        totals.drops.spool += summary.drops.spool;
        devices.push(DeviceStatus {
            last_seen: summary.last_seen_ns.map(rfc3339),
            connected,
            polling: st.hub.connected(id),
            link_types: link_types
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .collect(),
            streams: streams.remove(&id).unwrap_or_default(),
            summary,
        });
    }
    Ok(Json(json!({ "devices": devices, "totals": totals })).into_response())
}

/// A time in ns since 1970 as RFC 3339 in UTC, to the millisecond: `2024-05-06T07:08:09.123Z`.
pub(crate) fn rfc3339(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let millis = (ns % 1_000_000_000) / 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_date(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian (year, month, day) of a day number counted from 1970-01-01.
///
/// Counts in 400-year eras of 146 097 days, each starting on 1 March so that the leap day
/// falls at the end of a year: the day of the era gives the year of the era (less the days of
/// its leap years), the day of that year gives the month (five-month groups of 153 days), and
/// the months January and February belong to the next civil year.
fn civil_date(days_since_1970: i64) -> (i64, u32, u32) {
    // Days from 0000-03-01 to 1970-01-01.
    let days = days_since_1970 + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        let s = 1_000_000_000u64;
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(1_700_000_000 * s + 123_456_789),
            "2023-11-14T22:13:20.123Z"
        );
        // A leap day, the day after it, and the non-leap 2100.
        assert_eq!(rfc3339(951_782_400 * s), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(951_868_800 * s), "2000-03-01T00:00:00.000Z");
        assert_eq!(rfc3339(4_107_542_399 * s), "2100-02-28T23:59:59.000Z");
        assert_eq!(rfc3339(4_107_542_400 * s), "2100-03-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_735_689_599 * s), "2024-12-31T23:59:59.000Z");
    }

    #[test]
    fn every_day_follows_the_previous_one() {
        // 1970 to 2500: each day is the next day of the previous date.
        let mut prev = civil_date(0);
        assert_eq!(prev, (1970, 1, 1));
        for n in 1..194_000 {
            let next = civil_date(n);
            let (y, m, d) = prev;
            let expected = if next.2 == 1 {
                if m == 12 {
                    (y + 1, 1, 1)
                } else {
                    (y, m + 1, 1)
                }
            } else {
                (y, m, d + 1)
            };
            assert_eq!(next, expected, "day {n}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let month_len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            if next.2 == 1 {
                assert_eq!(d, month_len[m as usize - 1], "{prev:?} ends its month");
            }
            prev = next;
        }
    }

    #[test]
    fn declared_link_types_come_from_the_enrolment() {
        assert_eq!(
            declared_link_types(
                r#"[{"name":"eth0","link_type":1},{"name":"wg0","link_type":101}]"#
            ),
            vec![1, 101]
        );
        assert!(declared_link_types("not json").is_empty());
        assert!(declared_link_types(r#"{"link_type": 1}"#).is_empty());
    }
}
