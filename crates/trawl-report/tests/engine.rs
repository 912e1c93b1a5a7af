//! The report engine on hand-made frames: periods, circuits, sessions across periods,
//! applications, quiet seconds, top lists.

use trawl_report::{Apps, Options, PeriodReport, Profile, Report, SessionSpec};

const NS: u64 = 1_000_000_000;
/// 2023-11-14 22:15:00 UTC: the start of a 15-minute period.
const P0: u64 = 1_700_000_100;

fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
    let mut ip = vec![0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    ip.extend_from_slice(l4);
    ip
}

fn tcp(sport: u16, dport: u16, seq: u32, flags: u8, len: usize) -> Vec<u8> {
    let mut t = vec![0u8; 20 + len];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t
}

/// Ethernet, optionally with one VLAN tag.
fn eth(vlan: Option<u16>, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    if let Some(v) = vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn fr(dlci: u16, fecn: bool, becn: bool, de: bool, ip: &[u8]) -> Vec<u8> {
    let a0 = ((dlci >> 4) as u8) << 2;
    let a1 = ((dlci & 0xf) as u8) << 4
        | u8::from(fecn) << 3
        | u8::from(becn) << 2
        | u8::from(de) << 1
        | 1;
    let mut f = vec![a0, a1, 0x03, 0xcc];
    f.extend_from_slice(ip);
    f
}

const C: [u8; 4] = [10, 0, 0, 1];
const SRV: [u8; 4] = [192, 0, 2, 80];

fn run(options: Options, packets: &[(u64, u32, u32, Vec<u8>)]) -> Vec<PeriodReport> {
    let mut r = Report::new(options);
    r.name_line(0, "wan-out");
    for (ts, line, link_type, frame) in packets {
        r.add(*ts, *line, &trawl_decode::decode(*link_type, frame));
    }
    r.finish()
}

#[test]
fn periods_are_aligned_and_sessions_counted_per_period() {
    let apps = Apps::from_toml(
        "[[app]]\nname = \"Web\"\nservers = [\"192.0.2.0/24\"]\nports = [80]\n",
        "apps.toml",
    )
    .unwrap();
    let seg = |seq, flags, len| {
        eth(
            None,
            0x0800,
            &ipv4(6, C, SRV, &tcp(40000, 80, seq, flags, len)),
        )
    };
    let packets = vec![
        // A session that begins (SYN) in one period and goes on in the next.
        ((P0 + 10) * NS, 0, 1, seg(100, 0x02, 0)),
        ((P0 + 11) * NS, 0, 1, seg(101, 0x18, 100)),
        ((P0 + 900 + 5) * NS, 0, 1, seg(201, 0x18, 100)),
        // Resent in the second period: a retransmission.
        ((P0 + 900 + 6) * NS, 0, 1, seg(201, 0x18, 100)),
        // An ARP frame: not IP, an application row of its own.
        ((P0 + 900 + 7) * NS, 0, 1, eth(None, 0x0806, &[0; 28])),
    ];
    let reports = run(
        Options {
            apps,
            ..Options::default()
        },
        &packets,
    );
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].start % 900, 0);
    assert_eq!((reports[0].start, reports[1].start), (P0, P0 + 900));
    assert_eq!(reports[0].start_utc, "2023-11-14T22:15:00Z");

    let first = &reports[0].lines[0];
    assert_eq!(first.name, "wan-out");
    let web = &first.applications[0];
    assert_eq!(web.label, "Web TCP");
    assert_eq!((web.new_sessions, web.total_sessions), (Some(1), Some(1)));
    assert_eq!(first.tcp_syns, 1);

    let second = &reports[1].lines[0];
    let web = second
        .applications
        .iter()
        .find(|a| a.label == "Web TCP")
        .unwrap();
    assert_eq!((web.new_sessions, web.total_sessions), (Some(0), Some(1)));
    assert_eq!(web.packets, 2);
    let arp = second
        .applications
        .iter()
        .find(|a| a.label == "ARP")
        .unwrap();
    assert_eq!((arp.packets, arp.new_sessions), (1, None));
    assert_eq!(second.tcp_retransmissions, 1);
    assert_eq!(second.retransmission_destinations[0].address, "192.0.2.80");
    assert_eq!(second.top_destinations[0].address, "192.0.2.80");
    assert_eq!(second.top_destinations[0].port, 80);
    assert_eq!(second.top_destinations[0].name.as_deref(), Some("Web"));
    assert_eq!(second.top_sources[0].address, "10.0.0.1");
}

#[test]
fn circuits_protocols_and_frame_relay_bits() {
    let ip = ipv4(17, C, SRV, &[0u8; 8 + 12]);
    let t = P0 * NS;
    let packets = vec![
        (t, 0, 107, fr(460, true, false, false, &ip)),
        (t + 1, 0, 107, fr(460, false, true, true, &ip)),
        (t + 2, 0, 107, fr(490, false, false, true, &ip)),
        // Another line: Ethernet, tagged and untagged.
        (t + 3, 1, 1, eth(Some(100), 0x0800, &ip)),
        (t + 4, 1, 1, eth(None, 0x0800, &ip)),
        (t + 5, 1, 1, eth(None, 0x8137, &[0xff; 30])),
    ];
    let apps = Apps::from_toml("[circuits]\n\"dlci 460\" = \"London\"\n", "a.toml").unwrap();
    let reports = run(
        Options {
            apps,
            ..Options::default()
        },
        &packets,
    );
    let lines = &reports[0].lines;
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1].name, "line 1");
    let c: Vec<(&str, u64, u64, u64, u64)> = lines[0]
        .circuits
        .iter()
        .map(|c| (c.circuit.as_str(), c.packets, c.fecn, c.becn, c.de))
        .collect();
    assert_eq!(c, [("dlci 460", 2, 1, 1, 1), ("dlci 490", 1, 0, 0, 1)]);
    assert_eq!(lines[0].circuits[0].name.as_deref(), Some("London"));
    let share: f64 = lines[0].circuits.iter().map(|c| c.share).sum();
    assert!((share - 100.0).abs() < 1e-9);
    let p = &lines[0].circuits[0].protocols[0];
    assert_eq!((p.code.as_str(), p.name.as_str()), ("0800 11", "IP UDP"));

    let c: Vec<&str> = lines[1]
        .circuits
        .iter()
        .map(|c| c.circuit.as_str())
        .collect();
    assert_eq!(c, ["untagged", "vlan 100"]);
    let untagged = &lines[1].circuits[0];
    let codes: Vec<(&str, &str)> = untagged
        .protocols
        .iter()
        .map(|p| (p.code.as_str(), p.name.as_str()))
        .collect();
    assert!(codes.contains(&("8137", "IPX")), "{codes:?}");
    assert!(
        lines[1]
            .applications
            .iter()
            .any(|a| a.label == "Unknown UDP")
    );
    assert!(lines[1].applications.iter().any(|a| a.label == "IPX"));
}

#[test]
fn quiet_seconds_are_zero_seconds_within_the_lines_span() {
    let ip = ipv4(17, C, SRV, &[0u8; 8 + 100]);
    let frame = eth(None, 0x0800, &ip);
    // Line 0: seconds 0, 1, 4 of the period (2 and 3 silent); line 1 keeps going to second 9.
    let mut packets = vec![];
    for s in [0u64, 1, 1, 4] {
        packets.push(((P0 + s) * NS, 0, 1, frame.clone()));
    }
    for s in 0..10u64 {
        packets.push(((P0 + s) * NS + 5, 1, 1, frame.clone()));
    }
    packets.sort_by_key(|p| p.0);
    let reports = run(
        Options {
            top: 3,
            ..Options::default()
        },
        &packets,
    );
    let l = &reports[0].lines[0];
    assert_eq!((l.observed.first, l.observed.last), (P0, P0 + 4));
    let n = frame.len() as u64;
    assert_eq!(l.per_second, [n, 2 * n, 0, 0, n]);
    let quiet: Vec<(u64, u64)> = l.quietest.iter().map(|s| (s.time - P0, s.bytes)).collect();
    assert_eq!(quiet, [(2, 0), (3, 0), (0, n)]);
    let busy: Vec<(u64, u64)> = l.busiest.iter().map(|s| (s.time - P0, s.bytes)).collect();
    assert_eq!(busy, [(1, 2 * n), (0, n), (4, n)]);
    assert_eq!(l.busiest[0].kbps, (2 * n * 8) as f64 / 1000.0);
    // The busier line is observed for all ten seconds.
    assert_eq!(reports[0].lines[1].per_second.len(), 10);
}

#[test]
fn renderers_draw_every_section() {
    let seg = |seq, flags, len| {
        eth(
            None,
            0x0800,
            &ipv4(6, C, SRV, &tcp(40000, 80, seq, flags, len)),
        )
    };
    let packets = vec![
        (P0 * NS, 0, 1, seg(1, 0x02, 0)),
        ((P0 + 1) * NS, 0, 1, seg(2, 0x18, 1400)),
        ((P0 + 2) * NS, 0, 1, seg(2, 0x18, 1400)),
    ];
    let reports = run(Options::default(), &packets);
    let text = trawl_report::render::report_text(&reports);
    for section in [
        "Circuit summary (wan-out)",
        "Protocol counts (wan-out)",
        "Line busiest seconds",
        "Circuit quietest seconds",
        "Top sources",
        "Top destinations",
        "Application summary",
        "TCP SYNs (connection requests): 1",
        "Total TCP retransmissions: 1",
        "Top retransmission destinations",
        "1,454",
    ] {
        assert!(text.contains(section), "text lacks {section}:\n{text}");
    }
    let html = trawl_report::render::report_html(&reports);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("http"));
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    assert_eq!(
        html.matches("<table>").count(),
        html.matches("</table>").count()
    );
    let json = serde_json::to_value(&reports).unwrap();
    assert_eq!(json[0]["lines"][0]["tcp_syns"], 1);
}

#[test]
fn profile_counts_each_way_and_by_size() {
    let spec = SessionSpec::parse("tcp 10.0.0.1:40000 192.0.2.80:80").unwrap();
    let mut p = Profile::new(spec);
    let there = eth(
        None,
        0x0800,
        &ipv4(6, C, SRV, &tcp(40000, 80, 1, 0x18, 100)),
    );
    let back = eth(
        None,
        0x0800,
        &ipv4(6, SRV, C, &tcp(80, 40000, 1, 0x18, 1400)),
    );
    let other = eth(
        None,
        0x0800,
        &ipv4(6, C, SRV, &tcp(40001, 80, 1, 0x18, 100)),
    );
    assert!(p.add(P0 * NS, &trawl_decode::decode(1, &there)));
    assert!(p.add(P0 * NS + 1, &trawl_decode::decode(1, &back)));
    assert!(p.add((P0 + 2) * NS, &trawl_decode::decode(1, &back)));
    assert!(!p.add((P0 + 2) * NS, &trawl_decode::decode(1, &other)));
    let r = p.finish();
    assert_eq!((r.a_to_b.packets, r.b_to_a.packets), (1, 2));
    assert_eq!(r.per_second.a_to_b_bytes, [154, 0, 0]);
    assert_eq!(r.per_second.b_to_a_bytes, [1454, 0, 1454]);
    assert_eq!(r.b_to_a.max_second, Some(P0));
    let bin = r.b_to_a.sizes.iter().find(|b| b.packets > 0).unwrap();
    assert_eq!((bin.from, bin.to, bin.packets), (1408, Some(1471), 2));
    assert!(trawl_report::render::profile_text(&r).contains("10.0.0.1:40000 → 192.0.2.80:80"));
}
