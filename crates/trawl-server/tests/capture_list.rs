//! The captures list a page at a time (`before`, `next`), its text search (`q`), and how long
//! a page takes among 10 000 captures.

#[path = "common/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{Harness, small_pcap, temp_dir};
use reqwest::StatusCode;
use serde_json::Value;
use trawl_server::Catalogue;
use trawl_server::captures::{CaptureKind, CaptureStats, NewCapture};

/// `GET /api/v1/captures?QUERY` with `token`: the answer.
async fn list(h: &Harness, token: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut url = reqwest::Url::parse(&h.url("/api/v1/captures")).unwrap();
    url.query_pairs_mut().extend_pairs(query);
    let resp = h.client.get(url).bearer_auth(token).send().await.unwrap();
    harness::json_of(resp).await
}

fn ids(answer: &Value) -> Vec<i64> {
    answer["captures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn pages_follow_the_cursor_and_q_searches_names_and_notes() {
    let h = Harness::start().await;
    let mut made = Vec::new();
    for (name, notes) in [
        ("gw-17 morning", ""),
        ("gw-17 noon", "DHCP storm"),
        ("core", "looks like a dhcp relay loop"),
        ("100% loss", ""),
        ("under_score", ""),
        ("plain", "nothing"),
        ("last", ""),
    ] {
        let id = h.upload(h.admin(), name, small_pcap(1)).await;
        if !notes.is_empty() {
            let resp = h
                .client
                .put(h.url(&format!("/api/v1/captures/{id}/notes")))
                .bearer_auth(h.admin())
                .body(notes)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
        }
        made.push(id);
    }
    made.reverse(); // newest first

    // Pages of 3: the cursor is the last id of a page, and the last page says there is no more.
    let (status, page) = list(&h, h.admin(), &[("limit", "3")]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids(&page), made[..3]);
    assert_eq!(page["count"], 3);
    assert_eq!(page["next"], made[2]);
    let next = made[2].to_string();
    let (_, page) = list(&h, h.admin(), &[("limit", "3"), ("before", &next)]).await;
    assert_eq!(ids(&page), made[3..6]);
    let next = page["next"].as_i64().unwrap().to_string();
    let (_, page) = list(&h, h.admin(), &[("limit", "3"), ("before", &next)]).await;
    assert_eq!(ids(&page), made[6..]);
    assert_eq!(page["next"], Value::Null);
    // A page that ends exactly at the last capture has no next either.
    let (_, page) = list(&h, h.admin(), &[("limit", "7")]).await;
    assert_eq!(ids(&page), made);
    assert_eq!(page["next"], Value::Null);

    // Text in the name or the notes, ASCII letters in either case; LIKE's wildcards are plain.
    let names = |page: &Value| -> Vec<String> {
        page["captures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for (q, expected) in [
        ("gw-17", vec!["gw-17 noon", "gw-17 morning"]),
        ("dhcp", vec!["core", "gw-17 noon"]),
        ("DHCP STORM", vec!["gw-17 noon"]),
        ("%", vec!["100% loss"]),
        ("_", vec!["under_score"]),
        ("o%s", vec![]),
        ("nothing at all", vec![]),
    ] {
        let (status, page) = list(&h, h.admin(), &[("q", q)]).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(names(&page), expected, "q={q}");
    }
    // With the cursor and other conditions.
    let before = made[1].to_string(); // "gw-17 noon" is made[5]
    let (_, page) = list(
        &h,
        h.admin(),
        &[("q", "gw"), ("before", &before), ("limit", "1")],
    )
    .await;
    assert_eq!(names(&page), ["gw-17 noon"]);
    assert_eq!(page["next"], made[5]);

    for (query, why) in [
        (vec![("before", "0")], "before"),
        (vec![("before", "x")], "before"),
        (vec![("before", "1"), ("before", "2")], "more than once"),
        (vec![("q", "a"), ("q", "b")], "more than once"),
    ] {
        let (status, answer) = list(&h, h.admin(), &query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer["detail"].as_str().unwrap().contains(why), "{answer}");
    }
    let long = "x".repeat(257);
    let (status, _) = list(&h, h.admin(), &[("q", &long)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// 10 000 captures in the catalogue (written directly: the upload path is measured elsewhere),
/// then pages of the list through the API, timed. The bounds are generous (a debug build on a
/// shared machine); the measured times go in the report of issue 6.
#[tokio::test]
async fn a_page_among_ten_thousand_captures_is_quick() {
    const N: usize = 10_000;
    let dir = temp_dir();
    let org = {
        let mut c = Catalogue::open(&dir.path().join("catalogue.db")).unwrap();
        let org = c.create_organisation("bulk").unwrap();
        let started = Instant::now();
        for i in 0..N {
            let mut tags = vec![format!("site-{}", i % 10)];
            if i % 100 == 0 {
                tags.push("rare".into());
            }
            let notes = if i % 7 == 0 {
                format!("needle {i}")
            } else {
                String::new()
            };
            let new = NewCapture {
                kind: CaptureKind::Upload,
                name: format!("capture {i}"),
                notes,
                tags,
                uploader: None,
                devices: vec![],
                window: None,
                filter: None,
                source: "pcap".into(),
                interfaces: vec![],
                stats: CaptureStats {
                    first_ns: Some(1_700_000_000_000_000_000 + i as u64 * 1_000_000_000),
                    last_ns: Some(1_700_000_000_000_000_000 + i as u64 * 1_000_000_000 + 1),
                    packets: 1,
                    ..CaptureStats::default()
                },
                dir: None,
                parts: vec![],
            };
            c.insert_capture(org.id, &new, |_| Ok(()), || {}).unwrap();
        }
        eprintln!("inserted {N} captures in {:?}", started.elapsed());
        org
    };
    let h = Harness::start_in(dir).await;
    let token = org.admin_token.clone();

    let (_, first) = list(&h, &token, &[("limit", "50")]).await;
    let newest = ids(&first)[0];
    let middle = (newest - N as i64 / 2).to_string();
    /// What is timed, its query, and how many captures the page has.
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, usize);
    let cases: Vec<Case> = vec![
        ("first page of 50", vec![("limit", "50")], 50),
        ("first page, default limit (1000)", vec![], 1000),
        (
            "a middle page of 50",
            vec![("limit", "50"), ("before", &middle)],
            50,
        ),
        (
            "tag=site-3, first page",
            vec![("limit", "50"), ("tag", "site-3")],
            50,
        ),
        (
            "tag=site-3, a middle page",
            vec![("limit", "50"), ("tag", "site-3"), ("before", &middle)],
            50,
        ),
        (
            "tag=rare (100 of 10 000)",
            vec![("limit", "50"), ("tag", "rare")],
            50,
        ),
        (
            "tag=rare, a middle page",
            vec![("limit", "50"), ("tag", "rare"), ("before", &middle)],
            50,
        ),
        ("q=needle", vec![("limit", "50"), ("q", "needle")], 50),
        (
            "q=needle, a middle page",
            vec![("limit", "50"), ("q", "needle"), ("before", &middle)],
            50,
        ),
        (
            "q matching nothing",
            vec![("limit", "50"), ("q", "absent")],
            0,
        ),
        (
            "tag=rare and q=needle",
            vec![("limit", "50"), ("tag", "rare"), ("q", "needle")],
            15,
        ),
    ];
    for (what, query, expected) in cases {
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            let (status, page) = list(&h, &token, &query).await;
            best = best.min(started.elapsed());
            assert_eq!(status, StatusCode::OK, "{what}: {page}");
            assert_eq!(ids(&page).len(), expected, "{what}");
        }
        eprintln!("{what}: {:.1} ms", best.as_secs_f64() * 1e3);
        assert!(best < Duration::from_secs(3), "{what}: {best:?}");
    }
}
