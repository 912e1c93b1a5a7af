//! Uploads and captures end to end, against a real server in this process over HTTP: every
//! capture of the shared corpus that tshark reads goes up and comes back with the same packets
//! (compared with what tshark read from the original file, tests/formats/READERS.tsv, and with
//! trawl's own reading of it: times, lengths, bytes, interfaces and their link types, comments);
//! broken ones are refused, saying what and where, with nothing stored; the encodings and
//! credentials an upload may come with; tags, notes and search; saved windows; organisations kept
//! apart. (curl, tcpdump and the memory bound are in crates/trawl/tests/uploads.rs.)

mod common;
#[path = "common/harness.rs"]
mod harness;

use common::corpus;
use harness::{Harness, json_of, temp_dir};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use reqwest::StatusCode;
use serde_json::{Value, json};
use trawl_pcap::CaptureReader;
use trawl_server::{Config, Server, Tls};
use trawl_store::Timestamp;
use trawl_wire::{BatchBuilder, Drops};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One packet as compared: time (modulo 2^32 s, as make_golden.py), lengths and bytes, and what
/// only pcapng keeps (interface, its link type, comments).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pkt {
    ns: u128,
    caplen: usize,
    wirelen: u32,
    data: Vec<u8>,
    interface: u32,
    link_type: u32,
    comments: Vec<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Every packet of a capture as trawl reads it, or the reader's error. `whole`: records kept
/// whole beyond the snapshot length, as the server stores a file and as tshark reads it; else
/// cut to it, as libpcap reads it.
fn read_packets(r: impl std::io::Read + Send + 'static, whole: bool) -> Result<Vec<Pkt>, String> {
    let mut reader =
        CaptureReader::from_maybe_compressed(Box::new(r)).map_err(|e| e.to_string())?;
    reader.keep_whole_records(whole);
    let mut out = Vec::new();
    while reader.advance().map_err(|e| e.to_string())? {
        let p = reader.current().unwrap();
        out.push(Pkt {
            ns: (p.ts.secs as u128 * 1_000_000_000 + p.ts.nanos as u128)
                % ((1u128 << 32) * 1_000_000_000),
            caplen: p.data.len(),
            wirelen: p.orig_len,
            data: p.data.to_vec(),
            interface: p.interface,
            link_type: p.link_type,
            comments: p.comments().map(str::to_owned).collect(),
        });
    }
    Ok(out)
}

fn packets_of(r: impl std::io::Read + Send + 'static) -> Result<Vec<Pkt>, String> {
    read_packets(r, true)
}

/// The digest make_golden.py computes from tshark's frames: MD5 over a line per packet.
fn tshark_digest(packets: &[Pkt]) -> String {
    let mut lines = Md5::new();
    for p in packets {
        let md5 = hex(&Md5::digest(&p.data));
        lines.update(format!("{} {} {} {md5}\n", p.ns, p.caplen, p.wirelen).as_bytes());
    }
    hex(&lines.finalize())[..16].to_string()
}

/// What a reference tool made of a corpus file: read without error, packets, digest.
#[derive(Clone, Debug)]
struct Reading {
    ok: bool,
    packets: usize,
    digest: String,
}

/// What tshark and libpcap made of each corpus file (tests/formats/READERS.tsv).
fn readings() -> BTreeMap<String, BTreeMap<String, Reading>> {
    let golden = std::fs::read_to_string(repo().join("tests/formats/READERS.tsv")).unwrap();
    let mut out: BTreeMap<String, BTreeMap<String, Reading>> = BTreeMap::new();
    for l in golden.lines().skip(1) {
        let f: Vec<&str> = l.split('\t').collect();
        out.entry(f[0].to_owned()).or_default().insert(
            f[1].to_owned(),
            Reading {
                ok: f[2] == "ok",
                packets: f[3].parse().unwrap(),
                digest: f[4].to_owned(),
            },
        );
    }
    out
}

/// How one corpus file's round trip went.
enum RoundTrip {
    /// Came back as tshark read the original.
    AsTshark(usize),
    /// Came back as trawl read the original, which is how libpcap reads it, not tshark (a
    /// fuzzed file's fraction of a second beyond one second: libpcap and trawl add it).
    AsLibpcap(usize),
}

async fn round_trip(
    h: &Harness,
    corpus: &Path,
    rel: &str,
    tools: &BTreeMap<String, Reading>,
) -> Result<RoundTrip, String> {
    let bytes = std::fs::read(corpus.join(rel)).unwrap();
    let copy = bytes.clone();
    let (original, digest) = tokio::task::spawn_blocking(move || {
        packets_of(std::io::Cursor::new(copy)).map(|p| {
            let d = tshark_digest(&p);
            (p, d)
        })
    })
    .await
    .unwrap()
    .map_err(|e| format!("{rel}: trawl cannot read the original: {e}"))?;
    let same = |tool: &str, digest: &str| {
        tools
            .get(tool)
            .is_some_and(|r| r.ok && r.packets == original.len() && r.digest == digest)
    };
    let as_tshark = same("tshark", &digest);
    // Read as libpcap reads (records cut to the snapshot length), it must be libpcap's reading:
    // then it differs from tshark's only in how a damaged time is read.
    let as_libpcap = || {
        let copy = std::fs::read(corpus.join(rel)).unwrap();
        read_packets(std::io::Cursor::new(copy), false)
            .is_ok_and(|p| same("libpcap", &tshark_digest(&p)))
    };
    if !as_tshark && !as_libpcap() {
        return Err(format!(
            "{rel}: trawl reads the original neither as tshark nor as libpcap: {tools:?}"
        ));
    }
    let (status, answer) = h
        .upload_as(h.admin(), &[("name", rel), ("tag", "corpus")], bytes)
        .await;
    if status != StatusCode::CREATED {
        return Err(format!("{rel}: upload answered {status}: {answer}"));
    }
    if answer["packets"] != json!(original.len()) {
        return Err(format!(
            "{rel}: the upload counted {} packets, the file has {}",
            answer["packets"],
            original.len()
        ));
    }
    let (status, back) = h
        .get_bytes(answer["url"].as_str().unwrap(), h.admin())
        .await;
    if status != StatusCode::OK {
        return Err(format!("{rel}: download answered {status}"));
    }
    let back = tokio::task::spawn_blocking(move || packets_of(std::io::Cursor::new(back)))
        .await
        .unwrap()
        .map_err(|e| format!("{rel}: the download is not readable: {e}"))?;
    if back != original {
        let at = back
            .iter()
            .zip(&original)
            .position(|(a, b)| a != b)
            .unwrap_or(back.len().min(original.len()));
        return Err(format!(
            "{rel}: {} packets came back for {}; first difference at packet {}: {:?} vs {:?}",
            back.len(),
            original.len(),
            at + 1,
            back.get(at),
            original.get(at)
        ));
    }
    Ok(if as_tshark {
        RoundTrip::AsTshark(back.len())
    } else {
        RoundTrip::AsLibpcap(back.len())
    })
}

/// Every corpus capture tshark reads: uploaded raw (compressed ones as they are), downloaded,
/// and compared packet by packet — time to the nanosecond, lengths, bytes, interface and its
/// link type, comments — with trawl's reading of the original, which must itself be tshark's
/// (READERS.tsv: count and digest of times, lengths and MD5s) or, for fuzzed files whose times
/// tshark misprints, libpcap's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_capture_tshark_reads_round_trips_through_upload_and_download() {
    let h = std::sync::Arc::new(Harness::start().await);
    let corpus = std::sync::Arc::new(corpus());
    let readings = readings();
    let files: Vec<(String, BTreeMap<String, Reading>)> = readings
        .into_iter()
        .filter(|(_, tools)| tools.get("tshark").is_some_and(|r| r.ok))
        .collect();
    assert!(files.len() > 1800, "READERS.tsv lists too few files");
    let queue = std::sync::Arc::new(std::sync::Mutex::new(files));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (h, corpus, queue) = (h.clone(), corpus.clone(), queue.clone());
        workers.spawn(async move {
            let mut results = Vec::new();
            loop {
                let next = queue.lock().unwrap().pop();
                let Some((rel, tools)) = next else { break };
                let r = round_trip(&h, &corpus, &rel, &tools).await;
                results.push((rel, r));
            }
            results
        });
    }
    let (mut as_tshark, mut like_libpcap, mut packets, mut failures) =
        (0, Vec::new(), 0, Vec::new());
    while let Some(done) = workers.join_next().await {
        for (rel, r) in done.unwrap() {
            match r {
                Ok(RoundTrip::AsTshark(n)) => {
                    as_tshark += 1;
                    packets += n;
                }
                Ok(RoundTrip::AsLibpcap(n)) => {
                    like_libpcap.push(rel);
                    packets += n;
                }
                Err(e) => failures.push(e),
            }
        }
    }
    eprintln!(
        "{} captures ({packets} packets) came back whole: {as_tshark} as tshark reads the \
         original, {} as libpcap does",
        as_tshark + like_libpcap.len(),
        like_libpcap.len()
    );
    failures.sort();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(as_tshark > 1650, "{as_tshark}");
}

/// What tshark shows of each packet of a capture: time, lengths, MD5, interface (its number in
/// its section), encapsulation, comments.
fn tshark_frames(path: &Path) -> Vec<String> {
    let out = std::process::Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args(["-o", "frame.generate_md5_hash:TRUE", "-T", "fields"])
        .args([
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.len",
            "-e",
            "frame.cap_len",
        ])
        .args(["-e", "frame.md5_hash", "-e", "frame.interface_id"])
        .args(["-e", "frame.encap_type", "-e", "frame.comment"])
        .output()
        .expect("tshark (install it: scripts/deps.sh)");
    assert!(
        out.status.success(),
        "tshark -r {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        // pcapng custom blocks are listed as records with no encapsulation: not packets.
        .filter(|l| l.split('\t').nth(5).is_some_and(|e| !e.is_empty()))
        .map(str::to_owned)
        .collect()
}

/// Files whose round trip tshark itself checks: many interfaces of different link types, several
/// sections of different byte orders with interfaces described after packets, simple packet
/// blocks, comments, nanosecond and microsecond times, a time before 1970 written as a huge
/// unsigned one, a record longer than its snapshot length, a wire length below the captured one.
const TSHARK_CHECKED: &[&str] = &[
    "wireshark-4.0.17/many_interfaces.pcapng.1",
    "pcapng-test-generator/output_le/difficult/test202.pcapng",
    "pcapng-test-generator/output_be/difficult/test202.pcapng",
    "pcapng-test-generator/output_le/advanced/test100.pcapng",
    "pcapplusplus/Tests/Pcap++Test/PcapExamples/pcapng-example.pcapng",
    "wireshark-4.0.17/dhcp-nanosecond.pcap",
    "wireshark-4.0.17/dhcp.pcapng",
    "libpcap-filter/savefiles/slip-compressed_sl_print-oobr.pcap",
    "tcpdump-master/rsvp-rsvp_obj_print-oobr.pcap",
    "wireshark-4.0.17/netperfmeter.pcapng.gz",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_are_what_tshark_saw_in_the_originals() {
    let h = Harness::start().await;
    let corpus = corpus();
    for rel in TSHARK_CHECKED {
        let path = corpus.join(rel);
        let (status, answer) = h
            .upload_as(h.admin(), &[], std::fs::read(&path).unwrap())
            .await;
        assert_eq!(status, StatusCode::CREATED, "{rel}: {answer}");
        let (status, back) = h
            .get_bytes(answer["url"].as_str().unwrap(), h.admin())
            .await;
        assert_eq!(status, StatusCode::OK);
        let file = h.dir.path().join("download.pcapng");
        std::fs::write(&file, back).unwrap();
        // A simple packet block has no time (tshark shows none): it comes back as an enhanced
        // packet block with time 0. A pcap file's packets show no interface: they come back on
        // interface 0.
        let want: Vec<String> = tshark_frames(&path)
            .into_iter()
            .map(|f| {
                let mut fields: Vec<&str> = f.split('\t').collect();
                if fields[0].is_empty() {
                    fields[0] = "0.000000000";
                }
                if fields[4].is_empty() {
                    fields[4] = "0";
                }
                fields.join("\t")
            })
            .collect();
        let got = tshark_frames(&file);
        assert_eq!(want.len(), got.len(), "{rel}: packets");
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_eq!(w, g, "{rel}: packet {}", i + 1);
        }
        let interfaces = answer["interfaces"].as_array().unwrap().len();
        if rel.contains("many_interfaces") {
            assert_eq!(interfaces, 11, "{answer}");
            let link_types: std::collections::BTreeSet<u64> = answer["interfaces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["link_type"].as_u64().unwrap())
                .collect();
            assert!(link_types.len() > 1, "{answer}");
        }
    }
}

/// Expects `400` with error `kind`, an offset, and a detail naming it; returns the answer.
fn expect_refused(rel: &str, status: StatusCode, answer: &Value, kind: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{rel}: {answer}");
    assert_eq!(answer["error"], kind, "{rel}: {answer}");
    let detail = answer["detail"].as_str().unwrap();
    assert!(detail.contains("nothing was stored"), "{rel}: {detail}");
    if kind != "bad_encoding" {
        let offset = answer["offset"].as_u64().expect("an offset");
        assert!(
            detail.contains(&format!("byte offset {offset}")),
            "{rel}: {detail}"
        );
    }
}

/// The error trawl's reader gives for `bytes`: (offset, packets before it).
fn reader_error(bytes: &[u8]) -> (u64, u64) {
    let mut r = match CaptureReader::from_maybe_compressed(Box::new(std::io::Cursor::new(
        bytes.to_vec(),
    ))) {
        Ok(r) => r,
        Err(e) => return (e.offset, 0),
    };
    r.keep_whole_records(true);
    let mut n = 0;
    loop {
        match r.advance() {
            Ok(true) => n += 1,
            Ok(false) => panic!("the reader finds nothing wrong"),
            Err(e) => return (e.offset, n),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_captures_are_refused_saying_what_and_where_and_nothing_is_stored() {
    let h = Harness::start().await;
    let corpus = corpus();

    // The corpus files tshark refuses because they are malformed (not those of link types it
    // lacks a dissector for, which are well-formed captures tcpdump reads).
    let mut malformed: Vec<String> = readings()
        .into_iter()
        .filter(|(_, t)| t.values().all(|r| !r.ok))
        .map(|(rel, _)| rel)
        .collect();
    malformed.push("libpcap-filter/invalid/linktype-reserved-field-not-zero.pcap".into());
    assert!(malformed.len() >= 6, "{malformed:?}");
    for rel in &malformed {
        let (status, answer) = h
            .upload_as(h.admin(), &[], std::fs::read(corpus.join(rel)).unwrap())
            .await;
        let kind = answer["error"].as_str().unwrap_or("").to_owned();
        assert!(
            kind == "not_a_capture" || kind == "bad_capture",
            "{rel}: {answer}"
        );
        expect_refused(rel, status, &answer, &kind);
    }

    let dhcp = std::fs::read(corpus.join("wireshark-4.0.17/dhcp.pcap")).unwrap();
    let dhcp_ng = std::fs::read(corpus.join("wireshark-4.0.17/dhcp.pcapng")).unwrap();
    // The third record of dhcp.pcap starts at 24 + (16 + 314) + (16 + 342) = 712: cut inside it.
    let truncated = dhcp[..712 + 100].to_vec();
    // A block whose trailing length disagrees with its leading one.
    let mut bad_block = dhcp_ng.clone();
    let last = bad_block.len() - 1;
    bad_block[last] ^= 0x40;
    // An enhanced packet block of an interface the section never described.
    let mut bad_interface = dhcp_ng.clone();
    let epb = bad_interface
        .windows(4)
        .position(|w| w == [6, 0, 0, 0])
        .unwrap();
    bad_interface[epb + 8] = 7;
    let mut gz_cut = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz_cut.write_all(&dhcp).unwrap();
    let gz_cut = gz_cut.finish().unwrap();
    let gz_cut = gz_cut[..gz_cut.len() / 2].to_vec();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage",
            b"this is not a capture, but a letter".to_vec(),
            "not_a_capture",
        ),
        ("empty", Vec::new(), "not_a_capture"),
        (
            "html",
            b"<html><body>502 Bad Gateway</body></html>".to_vec(),
            "not_a_capture",
        ),
        ("truncated record", truncated, "bad_capture"),
        ("bad block", bad_block, "bad_capture"),
        ("unknown interface", bad_interface, "bad_capture"),
        ("gzip cut short", gz_cut, "bad_encoding"),
    ];
    for (what, body, kind) in cases {
        let expected = (kind != "bad_encoding").then(|| reader_error(&body));
        let (status, answer) = h.upload_as(h.admin(), &[("tag", "x")], body).await;
        expect_refused(what, status, &answer, kind);
        if let Some((offset, packets)) = expected {
            assert_eq!(answer["offset"], json!(offset), "{what}: {answer}");
            assert_eq!(answer["packets_read"], json!(packets), "{what}: {answer}");
        }
    }
    // The truncated record: what was wrong and where, in words.
    let (_, answer) = h.upload_as(h.admin(), &[], dhcp[..812].to_vec()).await;
    let detail = answer["detail"].as_str().unwrap();
    assert!(
        detail.contains("after 2 good packets") && detail.contains("byte offset 712"),
        "{detail}"
    );

    // A Content-Encoding the body does not have.
    let resp = h
        .client
        .put(h.url("/api/v1/captures"))
        .bearer_auth(h.admin())
        .header("content-encoding", "gzip")
        .body(dhcp.clone())
        .send()
        .await
        .unwrap();
    let (status, answer) = json_of(resp).await;
    expect_refused("gzip that is not", status, &answer, "bad_encoding");
    // One the server does not know.
    let resp = h
        .client
        .put(h.url("/api/v1/captures"))
        .bearer_auth(h.admin())
        .header("content-encoding", "br")
        .body(dhcp.clone())
        .send()
        .await
        .unwrap();
    let (status, answer) = json_of(resp).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{answer}");

    // Nothing of any of them was kept: no capture, no file.
    let (_, list) = h.get_json("/api/v1/captures", h.admin()).await;
    assert_eq!(list["count"], 0, "{list}");
    assert_eq!(h.capture_files(), Vec::<String>::new());
}

/// A multipart/form-data body, as `curl -F` sends it: text fields, then the file, then more.
fn multipart(
    boundary: &str,
    before: &[(&str, &str)],
    file: &[u8],
    after: &[(&str, &str)],
) -> Vec<u8> {
    let mut body = Vec::new();
    let field = |body: &mut Vec<u8>, name: &str, value: &str| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    for (n, v) in before {
        field(&mut body, n, v);
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"gw-17 noon.pcap\"\r\nContent-Type: application/vnd.tcpdump.pcap\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(b"\r\n");
    for (n, v) in after {
        field(&mut body, n, v);
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encodings_multipart_and_credentials_an_upload_may_come_with() {
    let h = Harness::start().await;
    let corpus = corpus();
    let dhcp = std::fs::read(corpus.join("wireshark-4.0.17/dhcp.pcap")).unwrap();
    let expected = packets_of(std::io::Cursor::new(dhcp.clone())).unwrap();
    let check = |what: &str, status: StatusCode, answer: &Value| {
        assert_eq!(status, StatusCode::CREATED, "{what}: {answer}");
        assert_eq!(answer["packets"], json!(expected.len()), "{what}: {answer}");
    };
    let put = |encoding: Option<&str>, body: Vec<u8>| {
        let mut req = h
            .client
            .put(h.url("/api/v1/captures"))
            .bearer_auth(h.admin())
            .body(body);
        if let Some(e) = encoding {
            req = req.header("content-encoding", e);
        }
        req.send()
    };

    // Content-Encoding gzip and zstd.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&dhcp).unwrap();
    let gz = gz.finish().unwrap();
    let (status, answer) = json_of(put(Some("gzip"), gz.clone()).await.unwrap()).await;
    check("Content-Encoding: gzip", status, &answer);
    assert_eq!(answer["source"], "pcap, gzip (Content-Encoding)");
    let zst = zstd::encode_all(&dhcp[..], 3).unwrap();
    let (status, answer) = json_of(put(Some("zstd"), zst.clone()).await.unwrap()).await;
    check("Content-Encoding: zstd", status, &answer);
    // Compressed files as they are, recognised by their magic bytes.
    let (status, answer) = json_of(put(None, gz).await.unwrap()).await;
    check("a .pcap.gz", status, &answer);
    assert_eq!(answer["source"], "pcap, gzip");
    let (status, answer) = json_of(put(None, zst).await.unwrap()).await;
    check("a .pcap.zst", status, &answer);
    let (status, answer) = h
        .upload_as(
            h.admin(),
            &[],
            std::fs::read(corpus.join("wireshark-4.0.17/icmp.pcapng.gz")).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["source"], "pcapng, gzip");

    // Multipart, CloudShark style: fields before and after the file.
    let boundary = "----trawl-test-boundary";
    let body = multipart(
        boundary,
        &[("additional_tags", "site-7,vendor")],
        &dhcp,
        &[("comments", "DHCP storm at noon"), ("tag", "urgent")],
    );
    let resp = h
        .client
        .post(h.url("/api/v1/captures"))
        .bearer_auth(h.admin())
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, answer) = json_of(resp).await;
    check("multipart", status, &answer);
    assert_eq!(answer["name"], "gw-17 noon.pcap", "{answer}");
    assert_eq!(answer["filename"], "gw-17 noon.pcap", "{answer}");
    assert_eq!(answer["notes"], "DHCP storm at noon", "{answer}");
    assert_eq!(
        answer["tags"],
        json!(["site-7", "urgent", "vendor"]),
        "{answer}"
    );
    // Without a file part.
    let resp = h
        .client
        .post(h.url("/api/v1/captures"))
        .bearer_auth(h.admin())
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"tags\"\r\n\r\na\r\n--{boundary}--\r\n"
        ))
        .send()
        .await
        .unwrap();
    let (status, answer) = json_of(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().contains("no file"),
        "{answer}"
    );

    // HTTP Basic, the token as the password (a TR-069 FileTarget's user name and password), on
    // the alias that takes a file name in its path.
    let resp = h
        .client
        .put(h.url("/api/v1/upload/cpe-0012AB-diag.pcap"))
        .basic_auth("cpe", Some(h.admin()))
        .body(dhcp.clone())
        .send()
        .await
        .unwrap();
    let (status, answer) = json_of(resp).await;
    check("Basic, /api/v1/upload/NAME", status, &answer);
    assert_eq!(answer["name"], "cpe-0012AB-diag.pcap");
    let url = answer["url"].as_str().unwrap();
    assert!(
        url.starts_with(&h.server.url()) && url.ends_with("/pcapng"),
        "{url}"
    );

    // No credential, or a wrong one: 401 with a challenge; nothing stored.
    let before = h.capture_files();
    for auth in [None, Some(("cpe", "wrong")), Some(("cpe", ""))] {
        let mut req = h.client.put(h.url("/api/v1/upload")).body(dhcp.clone());
        if let Some((u, p)) = auth {
            req = req.basic_auth(u, Some(p));
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Basic realm="), "{challenge}");
    }
    assert_eq!(h.capture_files(), before);
    let (_, list) = h.get_json("/api/v1/captures", h.admin()).await;
    assert_eq!(list["count"], 7, "{list}");
}

/// Batches of `packets` (time, data) for stream `eth0` of a device, sent in order.
async fn stream(h: &Harness, credential: &str, packets: &[(Timestamp, Vec<u8>)]) {
    for (seq, chunk) in packets.chunks(10).enumerate() {
        let mut b = BatchBuilder::new("eth0", 1, 262_144);
        for (ts, data) in chunk {
            b.push(*ts, data.len() as u32, data);
        }
        let seq = seq as u64 + 1;
        let resp = h
            .client
            .post(h.url("/api/v1/streams/eth0/batches"))
            .bearer_auth(credential)
            .header("content-type", "application/x-trawl-batch")
            .body(b.finish(1, seq, seq - 1, Drops::default()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
}

/// The ids of a capture list, in order.
fn ids(list: &Value) -> Vec<i64> {
    list["captures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_notes_and_search_by_tag_device_time_and_kind() {
    let h = Harness::start().await;
    let corpus = corpus();
    let (gw_a, cred_a) = h.enrol(h.admin(), "gw-a").await;
    let (_, cred_b) = h.enrol(h.admin(), "gw-b").await;
    // dhcp.pcap is 2004-12-05 19:16:24.317–.388, http.pcap 2002-12-31, arp.pcap 2013-09-18.
    let dhcp = std::fs::read(corpus.join("wireshark-4.0.17/dhcp.pcap")).unwrap();
    let http = std::fs::read(corpus.join("wireshark-4.0.17/http.pcap")).unwrap();
    let arp = std::fs::read(corpus.join("wireshark-4.0.17/arp.pcap")).unwrap();

    // Uploads by two devices (their credentials, Basic) and by the admin.
    let by = |cred: &str, query: &[(&str, &str)], body: Vec<u8>| {
        h.client
            .post(h.url_with("/api/v1/captures", query))
            .basic_auth("cpe", Some(cred))
            .body(body)
            .send()
    };
    let (status, x) = json_of(
        by(
            &cred_a,
            &[("tags", "site-1,incident"), ("name", "x")],
            dhcp.clone(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{x}");
    assert_eq!(x["uploaded_by"]["device"]["name"], "gw-a", "{x}");
    assert_eq!(x["devices"][0]["id"], gw_a.to_string(), "{x}");
    let (_, y) = h
        .upload_as(h.admin(), &[("tag", "site-2"), ("name", "y")], http)
        .await;
    assert_eq!(y["uploaded_by"], "admin", "{y}");
    let (_, z) = json_of(by(&cred_b, &[("name", "z")], arp).await.unwrap()).await;
    let (x, y, z) = (
        x["id"].as_i64().unwrap(),
        y["id"].as_i64().unwrap(),
        z["id"].as_i64().unwrap(),
    );

    let search = |query: &[(&str, &str)]| {
        let url = h.url_with("/api/v1/captures", query);
        let token = h.admin().to_owned();
        let client = h.client.clone();
        async move {
            let resp = client.get(url).bearer_auth(token).send().await.unwrap();
            let (status, v) = json_of(resp).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            ids(&v)
        }
    };
    assert_eq!(search(&[]).await, [z, y, x], "newest first");
    assert_eq!(search(&[("tag", "incident")]).await, [x]);
    assert_eq!(search(&[("tag", "site-1"), ("tag", "incident")]).await, [x]);
    assert_eq!(
        search(&[("tags", "site-1,site-2")]).await,
        Vec::<i64>::new()
    );
    assert_eq!(search(&[("device", "gw-a")]).await, [x]);
    assert_eq!(search(&[("device", &gw_a.to_string())]).await, [x]);
    assert_eq!(search(&[("device", "gw-b")]).await, [z]);
    assert_eq!(search(&[("kind", "upload")]).await, [z, y, x]);
    assert_eq!(search(&[("kind", "window")]).await, Vec::<i64>::new());
    assert_eq!(
        search(&[
            ("from", "2004-12-05T19:16:24.3Z"),
            ("to", "2004-12-05T19:16:25Z")
        ])
        .await,
        [x]
    );
    // From the last packet of x on (included), to the first (excluded).
    assert_eq!(
        search(&[
            ("from", "2004-12-05T19:16:24.387798Z"),
            ("to", "2005-01-01T00:00:00Z")
        ])
        .await,
        [x]
    );
    assert_eq!(
        search(&[
            ("from", "2004-12-05T19:16:24.387799Z"),
            ("to", "2005-01-01T00:00:00Z")
        ])
        .await,
        Vec::<i64>::new()
    );
    assert_eq!(search(&[("to", "2004-12-05T19:16:24.317453Z")]).await, [y]);
    assert_eq!(search(&[("from", "2010-01-01T00:00:00Z")]).await, [z]);
    assert_eq!(
        search(&[("device", "gw-a"), ("from", "2010-01-01T00:00:00Z")]).await,
        Vec::<i64>::new()
    );
    let (status, err) = h
        .get_json("/api/v1/captures?device=nobody", h.admin())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    for bad in [
        "kind=jobs",
        "from=yesterday",
        "colour=red",
        "tag=a%20b",
        "limit=0",
    ] {
        let (status, err) = h
            .get_json(&format!("/api/v1/captures?{bad}"), h.admin())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {err}");
    }

    // Tags: add (kept once), remove, and the search follows.
    let post = reqwest::Method::POST;
    let (status, v) = h
        .send_json(
            post.clone(),
            &format!("/api/v1/captures/{y}/tags"),
            h.admin(),
            json!({"tags": ["incident", "vendor-acme", "incident"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["tags"], json!(["incident", "site-2", "vendor-acme"]));
    assert_eq!(search(&[("tag", "incident")]).await, [y, x]);
    let (status, v) = h
        .send_json(
            post.clone(),
            &format!("/api/v1/captures/{y}/tags"),
            h.admin(),
            json!({"tags": ["no spaces please"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let resp = h
        .client
        .delete(h.url(&format!("/api/v1/captures/{x}/tags/incident")))
        .bearer_auth(h.admin())
        .send()
        .await
        .unwrap();
    let (status, v) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["tags"], json!(["site-1"]));
    assert_eq!(search(&[("tag", "incident")]).await, [y]);
    let resp = h
        .client
        .delete(h.url(&format!("/api/v1/captures/{x}/tags/incident")))
        .bearer_auth(h.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "a tag it no longer has"
    );

    // Notes: as text, or as JSON.
    let resp = h
        .client
        .put(h.url(&format!("/api/v1/captures/{z}/notes")))
        .bearer_auth(h.admin())
        .body("ARP storm; see ticket 4711")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, shown) = h
        .get_json(&format!("/api/v1/captures/{z}"), h.admin())
        .await;
    assert_eq!(shown["notes"], "ARP storm; see ticket 4711", "{shown}");
    let (status, _) = h
        .send_json(
            reqwest::Method::PUT,
            &format!("/api/v1/captures/{z}/notes"),
            h.admin(),
            json!({"notes": "resolved"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, shown) = h
        .get_json(&format!("/api/v1/captures/{z}"), h.admin())
        .await;
    assert_eq!(shown["notes"], "resolved");
    assert_eq!(shown["name"], "z");
    assert_eq!(shown["uploaded_by"]["device"]["name"], "gw-b");

    // Delete: gone from the catalogue and the disk.
    let files = h.capture_files();
    assert!(
        files.iter().any(|f| f.ends_with("p0.pcapng.zst")),
        "{files:?}"
    );
    let resp = h
        .client
        .delete(h.url(&format!("/api/v1/captures/{x}")))
        .bearer_auth(h.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, _) = h
        .get_json(&format!("/api/v1/captures/{x}"), h.admin())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(search(&[]).await, [z, y]);
    assert_eq!(
        h.capture_files().len(),
        files.len() - 2,
        "its segment and index"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_window_holds_what_packets_gives_and_outlives_its_segments() {
    let h = Harness::start().await;
    let (_, cred) = h.enrol(h.admin(), "gw-w").await;
    // 60 packets, one every 100 ms from 2024-03-01T12:00:00Z, TCP to port 80 or 443 in turn.
    let base = 1_709_294_400u64;
    let packets: Vec<(Timestamp, Vec<u8>)> = (0..60u32)
        .map(|i| {
            let port: u16 = if i % 2 == 0 { 80 } else { 443 };
            let mut frame = vec![0u8; 12];
            frame.extend_from_slice(&[0x08, 0x00]); // IPv4
            frame.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0]);
            frame.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
            frame.extend_from_slice(&40000u16.to_be_bytes());
            frame.extend_from_slice(&port.to_be_bytes());
            frame.extend_from_slice(&i.to_be_bytes());
            frame.extend_from_slice(&[0; 12]);
            (
                Timestamp::new(base + u64::from(i) / 10, (i % 10) * 100_000_000),
                frame,
            )
        })
        .collect();
    stream(&h, &cred, &packets).await;

    let (from, to, filter) = (
        "2024-03-01T12:00:01Z",
        "2024-03-01T12:00:04.5Z",
        "tcp port 80",
    );
    let mut url = reqwest::Url::parse(&h.url("/api/v1/packets")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("device", "gw-w"),
        ("from", from),
        ("to", to),
        ("filter", filter),
    ]);
    let (status, expected) = h.get_bytes(url.as_str(), h.admin()).await;
    assert_eq!(status, StatusCode::OK);
    let expected = packets_of(std::io::Cursor::new(expected)).unwrap();
    assert_eq!(
        expected.len(),
        18,
        "35 packets in the window, half of them port 80"
    );

    let window = json!({"devices": ["gw-w"], "from": from, "to": to, "filter": filter,
        "name": "noon, port 80", "tags": ["incident"], "notes": "for the vendor"});
    let (status, saved) = h
        .send_json(
            reqwest::Method::POST,
            "/api/v1/captures",
            h.admin(),
            window.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{saved}");
    assert_eq!(saved["kind"], "window");
    assert_eq!(saved["packets"], 18);
    assert_eq!(saved["window"]["filter"], filter);
    assert_eq!(
        saved["window"]["from_ns"],
        json!(1_709_294_401_000_000_000u64)
    );
    assert_eq!(saved["devices"][0]["name"], "gw-w");
    assert_eq!(saved["tags"], json!(["incident"]));
    let id = saved["id"].as_i64().unwrap();
    let (_, back) = h.get_bytes(saved["url"].as_str().unwrap(), h.admin()).await;
    let back = packets_of(std::io::Cursor::new(back)).unwrap();
    assert_eq!(back, expected);
    // Filtered again on download.
    let (_, port80_syn) = h
        .get_bytes(
            &format!(
                "{}?filter=tcp%5Btcpflags%5D%20%3D%200",
                saved["url"].as_str().unwrap()
            ),
            h.admin(),
        )
        .await;
    assert_eq!(
        packets_of(std::io::Cursor::new(port80_syn)).unwrap().len(),
        18
    );
    let (status, err) = h
        .get_json(
            &format!("/api/v1/captures/{id}/pcapng?filter=tcp%20port%20eighty"),
            h.admin(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"], "bad_filter");

    // Found by device and kind.
    let (_, list) = h
        .get_json("/api/v1/captures?device=gw-w&kind=window", h.admin())
        .await;
    assert_eq!(ids(&list), [id]);

    // The device's segments go (retention would do this); the saved window stays.
    std::fs::remove_dir_all(h.dir.path().join("segments")).unwrap();
    let (_, again) = h.get_bytes(saved["url"].as_str().unwrap(), h.admin()).await;
    assert_eq!(packets_of(std::io::Cursor::new(again)).unwrap(), expected);

    // Mistakes are answered before anything is stored.
    let post = |body: Value, token: String| {
        let h = &h;
        async move {
            h.send_json(reqwest::Method::POST, "/api/v1/captures", &token, body)
                .await
        }
    };
    let admin = h.admin().to_owned();
    let (status, e) = post(
        json!({"devices": ["nobody"], "from": from, "to": to}),
        admin.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{e}");
    let (status, e) = post(
        json!({"devices": ["gw-w"], "from": to, "to": from}),
        admin.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    let (status, e) = post(
        json!({"devices": ["gw-w"], "from": from, "to": to, "filter": "port eighty"}),
        admin.clone(),
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_filter"))
    );
    let (status, e) = post(
        json!({"devices": ["gw-w"], "from": from, "to": to, "colour": 1}),
        admin,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    let (status, e) = post(window, cred).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a device cannot save windows: {e}"
    );
    let (_, list) = h.get_json("/api/v1/captures", h.admin()).await;
    assert_eq!(list["count"], 1, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organisations_capture_is_not_found_and_no_credential_is_401() {
    let h = Harness::start().await;
    let other = h.server.create_organisation("other").await.unwrap();
    let dhcp = std::fs::read(corpus().join("wireshark-4.0.17/dhcp.pcap")).unwrap();
    let (_, answer) = h
        .upload_as(h.admin(), &[("tag", "mine")], dhcp.clone())
        .await;
    let id = answer["id"].as_i64().unwrap();
    let mine = format!("/api/v1/captures/{id}");

    use reqwest::Method;
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, mine.clone(), None),
        (Method::GET, format!("{mine}/pcapng"), None),
        (
            Method::POST,
            format!("{mine}/tags"),
            Some(json!({"tags": ["theirs"]})),
        ),
        (Method::DELETE, format!("{mine}/tags/mine"), None),
        (
            Method::PUT,
            format!("{mine}/notes"),
            Some(json!({"notes": "theirs"})),
        ),
        (Method::DELETE, mine.clone(), None),
    ];
    for (method, path, body) in &routes {
        // Another organisation: exactly as a capture that does not exist.
        let mut req = h
            .client
            .request(method.clone(), h.url(path))
            .bearer_auth(&other.admin_token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let (status, v) = json_of(req.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {v}");
        assert_eq!(v["detail"], format!("no capture {id}"), "{method} {path}");
        // No credential.
        let mut req = h.client.request(method.clone(), h.url(path));
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    let (status, list) = h.get_json("/api/v1/captures", &other.admin_token).await;
    assert_eq!((status, list["count"].as_u64()), (StatusCode::OK, Some(0)));
    let (status, list) = h
        .get_json("/api/v1/captures?tag=mine", &other.admin_token)
        .await;
    assert_eq!((status, list["count"].as_u64()), (StatusCode::OK, Some(0)));
    let resp = h
        .client
        .get(h.url("/api/v1/captures"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // A device's credential uploads but does not read.
    let (_, cred) = h.enrol(h.admin(), "gw").await;
    let (status, _) = h.get_json(&mine, &cred).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Still there, unchanged, for its own organisation.
    let (status, shown) = h.get_json(&mine, h.admin()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["tags"], json!(["mine"]));
    assert_eq!(shown["notes"], "");
}

/// A synthetic pcap of `n` Ethernet packets of 500 bytes.
fn synthetic_pcap(n: u32) -> Vec<u8> {
    let mut w =
        trawl_pcap::PcapWriter::new(Vec::new(), 1, 65535, trawl_pcap::TsPrecision::Micro).unwrap();
    for i in 0..n {
        let mut data = vec![0u8; 500];
        data[..4].copy_from_slice(&i.to_be_bytes());
        w.write(Timestamp::new(1_700_000_000 + u64::from(i), 0), 500, &data)
            .unwrap();
    }
    w.finish().unwrap()
}

/// Sends `PUT /api/v1/captures` by hand, chunked, a chunk at a time with `between` run after
/// each; returns the connection (to read the answer from, or drop).
fn chunked_put(
    addr: SocketAddr,
    token: &str,
    chunks: &[&[u8]],
    mut between: impl FnMut(usize),
) -> std::net::TcpStream {
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "PUT /api/v1/captures?name=live HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    for (i, c) in chunks.iter().enumerate() {
        write!(conn, "{:x}\r\n", c.len()).unwrap();
        conn.write_all(c).unwrap();
        conn.write_all(b"\r\n").unwrap();
        conn.flush().unwrap();
        between(i);
    }
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_upload_is_stored_as_it_arrives_and_one_cut_off_leaves_nothing() {
    let h = Harness::start().await;
    let pcap = synthetic_pcap(3000); // 1.5 MB
    let addr = h.server.addr();
    let token = h.admin().to_owned();
    let staging = h.dir.path().join("captures/.staging");

    // While it arrives, its packets are already compressed into a segment in staging.
    let seen = staging.clone();
    let (token2, pcap_len, pcap2) = (token.clone(), pcap.len(), pcap.clone());
    let answer = tokio::task::spawn_blocking(move || {
        let chunks: Vec<&[u8]> = pcap2.chunks(64 << 10).collect();
        let mut stored_while_sending = 0u64;
        let mut conn = chunked_put(addr, &token2, &chunks, |i| {
            if i == chunks.len() - 2 {
                std::thread::sleep(std::time::Duration::from_millis(300));
                for d in std::fs::read_dir(&seen).unwrap().flatten() {
                    stored_while_sending +=
                        std::fs::metadata(d.path().join("p0.pcapng.zst")).map_or(0, |m| m.len());
                }
            }
        });
        conn.write_all(b"0\r\n\r\n").unwrap();
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut conn, &mut answer).unwrap();
        (stored_while_sending, answer)
    });
    let (stored_while_sending, answer) = answer.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.contains("\"packets\":3000"), "{answer}");
    assert!(
        stored_while_sending > 0 && stored_while_sending < pcap_len as u64,
        "the segment held {stored_while_sending} bytes before the body ended"
    );

    // A client that goes away mid-upload (at a record boundary, even): nothing is stored.
    let cut = 24 + 1000 * 516;
    let token2 = token.clone();
    let pcap2 = pcap.clone();
    tokio::task::spawn_blocking(move || {
        let conn = chunked_put(addr, &token2, &[&pcap2[..cut]], |_| {});
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(conn);
    })
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_dir(&staging).unwrap().count() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the staging directory stays"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (_, list) = h.get_json("/api/v1/captures", &token).await;
    assert_eq!(list["count"], 1, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_removes_unfinished_and_unrecorded_capture_directories() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = temp_dir();
    let mut config = Config::new(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)));
    config.tls = Tls::Plain;
    let server = Server::start(config.clone()).await.unwrap();
    let org = server.create_organisation("acme").await.unwrap();
    let client = reqwest::Client::new();
    let dhcp = std::fs::read(corpus().join("wireshark-4.0.17/dhcp.pcap")).unwrap();
    let resp = client
        .put(format!("{}/api/v1/captures", server.url()))
        .bearer_auth(&org.admin_token)
        .body(dhcp)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let answer: Value = resp.json().await.unwrap();
    server.shutdown().await.unwrap();

    // What a crash mid-upload, or between moving a capture into place and recording it, leaves.
    let captures = dir.path().join("captures");
    std::fs::create_dir_all(captures.join(".staging/0123abcd")).unwrap();
    std::fs::write(captures.join(".staging/0123abcd/p0.pcapng.zst"), b"half").unwrap();
    std::fs::create_dir_all(captures.join(format!("org-{}/feedface", org.id))).unwrap();
    let server = Server::start(config).await.unwrap();
    assert!(!captures.join(".staging/0123abcd").exists());
    assert!(!captures.join(format!("org-{}/feedface", org.id)).exists());
    let resp = client
        .get(format!(
            "{}/api/v1/captures/{}/pcapng",
            server.url(),
            answer["id"]
        ))
        .bearer_auth(&org.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let back = resp.bytes().await.unwrap().to_vec();
    assert_eq!(packets_of(std::io::Cursor::new(back)).unwrap().len(), 4);
    server.shutdown().await.unwrap();
}
