//! Per-packet annotations (issue 6): set, listed, checked, kept apart per organisation, and
//! carried into the capture's pcapng download as packet comments that tshark shows.

#[path = "common/harness.rs"]
mod harness;

use harness::{Harness, json_of, small_pcap};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn put_comment(h: &Harness, capture: i64, packet: &str, body: Value) -> (StatusCode, Value) {
    h.send_json(
        Method::PUT,
        &format!("/api/v1/captures/{capture}/annotations/{packet}"),
        h.admin(),
        body,
    )
    .await
}

async fn delete_comment(h: &Harness, capture: i64, packet: u64) -> StatusCode {
    h.client
        .delete(h.url(&format!("/api/v1/captures/{capture}/annotations/{packet}")))
        .bearer_auth(h.admin())
        .send()
        .await
        .unwrap()
        .status()
}

/// The download of `capture` (optionally filtered), through tshark: `(frame number, comment)`
/// of each packet that carries a comment.
async fn commented_frames(h: &Harness, capture: i64, filter: Option<&str>) -> Vec<(u64, String)> {
    let mut url =
        reqwest::Url::parse(&h.url(&format!("/api/v1/captures/{capture}/pcapng"))).unwrap();
    if let Some(f) = filter {
        url.query_pairs_mut().append_pair("filter", f);
    }
    let resp = h
        .client
        .get(url)
        .bearer_auth(h.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.bytes().await.unwrap();
    let file = h.dir.path().join(format!("download-{capture}.pcapng"));
    std::fs::write(&file, &bytes).unwrap();
    let out = std::process::Command::new("tshark")
        .args(["-r"])
        .arg(&file)
        .args(["-Y", "frame.comment", "-T", "fields", "-e", "frame.number"])
        .args(["-e", "frame.comment"])
        .output()
        .expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (n, comment) = line.split_once('\t').unwrap();
            (n.parse().unwrap(), comment.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn annotations_come_back_as_packet_comments_in_the_download() {
    let h = Harness::start().await;
    let capture = h.upload(h.admin(), "five.pcap", small_pcap(5)).await;

    let (status, first) = put_comment(&h, capture, "1", json!({"comment": "the first one"})).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["packet"], 1);
    assert_eq!(first["comment"], "the first one");
    assert_eq!(first["author"], "admin");
    assert!(first["time"].as_str().unwrap().ends_with('Z'), "{first}");
    let (status, _) = put_comment(&h, capture, "3", json!({"comment": "retransmitted? ✓"})).await;
    assert_eq!(status, StatusCode::OK);

    let (status, list) = h
        .get_json(
            &format!("/api/v1/captures/{capture}/annotations"),
            h.admin(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let packets: Vec<_> = list["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["packet"].as_u64().unwrap(),
                a["comment"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(packets, [(1, "the first one"), (3, "retransmitted? ✓")]);

    assert_eq!(
        commented_frames(&h, capture, None).await,
        [
            (1, "the first one".to_owned()),
            (3, "retransmitted? ✓".to_owned())
        ]
    );
    // A filtered download keeps each comment on its packet: annotations name packets by their
    // number in the full download, whatever a filter leaves out. Packet 3 carries "packet 2".
    assert_eq!(
        commented_frames(&h, capture, Some("udp[15] = 0x32")).await,
        [(1, "retransmitted? ✓".to_owned())]
    );
    assert_eq!(
        commented_frames(&h, capture, Some("udp[15] = 0x31")).await,
        []
    );

    // Replaced, then removed.
    let (status, _) = put_comment(&h, capture, "3", json!({"comment": "third"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(delete_comment(&h, capture, 1).await, StatusCode::NO_CONTENT);
    assert_eq!(delete_comment(&h, capture, 1).await, StatusCode::NOT_FOUND);
    assert_eq!(
        commented_frames(&h, capture, None).await,
        [(3, "third".to_owned())]
    );
}

#[tokio::test]
async fn annotations_are_checked() {
    let h = Harness::start().await;
    let capture = h.upload(h.admin(), "three.pcap", small_pcap(3)).await;
    for packet in ["0", "4", "-1", "x", "99999999999999999999"] {
        let (status, body) = put_comment(&h, capture, packet, json!({"comment": "c"})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "packet {packet}: {body}");
        assert_eq!(body["error"], "not_found");
    }
    let too_long = "é".repeat(32 * 1024 + 1);
    for (body, why) in [
        (json!({"comment": too_long}), "at most 65536 bytes"),
        (json!({"comment": ""}), "empty"),
        (json!({"comment": 5}), "JSON"),
        (json!({"comment": "a", "author": "me"}), "unknown field"),
        (json!({}), "missing field"),
    ] {
        let (status, answer) = put_comment(&h, capture, "1", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains(why),
            "{why}: {answer}"
        );
    }
    // Exactly 64 KiB is allowed.
    let (status, _) = put_comment(&h, capture, "1", json!({"comment": "x".repeat(65536)})).await;
    assert_eq!(status, StatusCode::OK);
    // Not UTF-8.
    let resp = h
        .client
        .put(h.url(&format!("/api/v1/captures/{capture}/annotations/2")))
        .bearer_auth(h.admin())
        .header("content-type", "application/json")
        .body(b"{\"comment\": \"\xff\"}".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // No such capture; no credential.
    let (status, _) = put_comment(&h, 999_999, "1", json!({"comment": "c"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let resp = h
        .client
        .get(h.url(&format!("/api/v1/captures/{capture}/annotations")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn another_organisations_capture_is_not_found_and_deleting_a_capture_removes_its_annotations()
{
    let h = Harness::start().await;
    let other = h.server.create_organisation("beta").await.unwrap();
    let capture = h.upload(h.admin(), "three.pcap", small_pcap(3)).await;
    let (status, _) = put_comment(&h, capture, "2", json!({"comment": "mine"})).await;
    assert_eq!(status, StatusCode::OK);

    let path = format!("/api/v1/captures/{capture}/annotations");
    let (status, body) = h.get_json(&path, &other.admin_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = h
        .send_json(
            Method::PUT,
            &format!("{path}/2"),
            &other.admin_token,
            json!({"comment": "theirs"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let resp = h
        .client
        .delete(h.url(&format!("{path}/2")))
        .bearer_auth(&other.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let (_, list) = h.get_json(&path, h.admin()).await;
    assert_eq!(list["annotations"][0]["comment"], "mine");

    let resp = h
        .client
        .delete(h.url(&format!("/api/v1/captures/{capture}")))
        .bearer_auth(h.admin())
        .send()
        .await
        .unwrap();
    let (status, _) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h.get_json(&path, h.admin()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
