//! Hand-built packets through [`trawl_decode::decode`] and the text formatter. Expected text was
//! checked against tcpdump 4.99.3 (`-nn -tt`) on the same bytes written to a pcap.

use trawl_decode::decoded::tcp_flags;
use trawl_decode::transport::tcp::TcpOption;
use trawl_decode::{
    App, Layer, Net, StopReason, TextFormatter, TextOptions, Transport, decode, linktype,
};

const DST: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const SRC: [u8; 6] = [0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb];

fn ether(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&DST);
    v.extend_from_slice(&SRC);
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn ipv4(proto: u8, frag: u16, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&0x1234u16.to_be_bytes());
    v.extend_from_slice(&frag.to_be_bytes());
    v.extend_from_slice(&[64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    v.extend_from_slice(payload);
    v
}

fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, 0x01, 0x23, 0x45];
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(&[next, 64]);
    let src: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
    let dst: std::net::Ipv6Addr = "2001:db8::2".parse().unwrap();
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    v.extend_from_slice(payload);
    v
}

fn tcp(flags: u8, seq: u32, ack: u32, options: &[u8], payload: &[u8]) -> Vec<u8> {
    let hlen = 20 + options.len();
    assert_eq!(hlen % 4, 0);
    let mut v = Vec::new();
    v.extend_from_slice(&40000u16.to_be_bytes());
    v.extend_from_slice(&80u16.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ack.to_be_bytes());
    v.push(((hlen / 4) as u8) << 4);
    v.push(flags);
    v.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    v.extend_from_slice(options);
    v.extend_from_slice(payload);
    v
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(payload);
    v
}

fn line(f: &mut TextFormatter, link_type: u32, data: &[u8]) -> String {
    let mut out = Vec::new();
    f.write_line(&mut out, 1, 2_000, link_type, data, data.len() as u32);
    String::from_utf8(out).unwrap()
}

fn text(link_type: u32, data: &[u8]) -> String {
    line(
        &mut TextFormatter::new(TextOptions::default()),
        link_type,
        data,
    )
}

#[test]
fn ethernet_ipv4_tcp_syn_with_options() {
    let opts = [
        2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ];
    let pkt = ether(0x0800, &ipv4(6, 0x4000, &tcp(0x02, 1000, 0, &opts, &[])));
    let d = decode(linktype::ETHERNET, &pkt);
    assert_eq!(d.link.src_mac.unwrap().0, SRC);
    let Net::Ipv4(ip) = d.net else {
        panic!("{:?}", d.net)
    };
    assert_eq!((ip.ttl, ip.id, ip.protocol), (64, 0x1234, 6));
    assert!(ip.fragment.dont_fragment && !ip.fragment.is_fragmented());
    let Transport::Tcp(t) = d.transport else {
        panic!()
    };
    assert_eq!((t.src_port, t.dst_port, t.seq), (40000, 80, 1000));
    assert!(t.has(tcp_flags::SYN) && !t.has(tcp_flags::ACK));
    let options: Vec<TcpOption> = t.option_iter().collect();
    assert_eq!(options[0], TcpOption::Mss(1460));
    assert_eq!(options[1], TcpOption::SackPermitted);
    assert_eq!(options[2], TcpOption::Timestamp { val: 1, ecr: 0 });
    assert_eq!(options[4], TcpOption::WindowScale(7));
    assert!(d.stop.is_complete());
    assert_eq!(
        text(linktype::ETHERNET, &pkt),
        "1.000002 IP 10.0.0.1.40000 > 10.0.0.2.80: Flags [S], seq 1000, win 65535, \
         options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0\n"
    );
}

/// The same IPv4/TCP packet seen from the other side: addresses and ports swapped.
fn reversed(mut pkt: Vec<u8>) -> Vec<u8> {
    let ip = 14;
    let (src, dst): (Vec<u8>, Vec<u8>) = (
        pkt[ip + 12..ip + 16].to_vec(),
        pkt[ip + 16..ip + 20].to_vec(),
    );
    pkt[ip + 12..ip + 16].copy_from_slice(&dst);
    pkt[ip + 16..ip + 20].copy_from_slice(&src);
    let t = ip + 20;
    let (sp, dp) = (pkt[t..t + 2].to_vec(), pkt[t + 2..t + 4].to_vec());
    pkt[t..t + 2].copy_from_slice(&dp);
    pkt[t + 2..t + 4].copy_from_slice(&sp);
    pkt
}

#[test]
fn relative_sequence_numbers_follow_tcpdump() {
    let mut f = TextFormatter::new(TextOptions::default());
    let syn = ether(0x0800, &ipv4(6, 0, &tcp(0x02, 1000, 0, &[], &[])));
    let synack = reversed(ether(0x0800, &ipv4(6, 0, &tcp(0x12, 5000, 1001, &[], &[]))));
    let ack = ether(
        0x0800,
        &ipv4(6, 0, &tcp(0x18, 1001, 5001, &[], b"GET / HTTP/1.1\r\n")),
    );
    let sack = reversed(ether(
        0x0800,
        &ipv4(
            6,
            0,
            &tcp(
                0x10,
                5001,
                1017,
                &[1, 1, 5, 10, 0, 0, 4, 0, 0, 0, 4, 16],
                &[],
            ),
        ),
    ));
    let lines: Vec<String> = [&syn, &synack, &ack, &sack]
        .iter()
        .map(|p| line(&mut f, 1, p))
        .collect();
    assert_eq!(
        lines[0],
        "1.000002 IP 10.0.0.1.40000 > 10.0.0.2.80: Flags [S], seq 1000, win 65535, length 0\n"
    );
    assert_eq!(
        lines[1],
        "1.000002 IP 10.0.0.2.80 > 10.0.0.1.40000: Flags [S.], seq 5000, ack 1001, win 65535, length 0\n"
    );
    assert_eq!(
        lines[2],
        "1.000002 IP 10.0.0.1.40000 > 10.0.0.2.80: Flags [P.], seq 1:17, ack 1, win 65535, length 16: HTTP: GET / HTTP/1.1\n"
    );
    assert_eq!(
        lines[3],
        "1.000002 IP 10.0.0.2.80 > 10.0.0.1.40000: Flags [.], ack 17, win 65535, options [nop,nop,sack 1 {24:40}], length 0\n"
    );
    let mut abs = TextFormatter::new(TextOptions {
        absolute_seq: true,
        ..Default::default()
    });
    assert!(line(&mut abs, 1, &ack).contains("seq 1001:1017, ack 5001,"));
}

#[test]
fn vlan_qinq_and_mpls_are_recorded() {
    let inner = ipv4(17, 0, &udp(1234, 9999, b"hi"));
    let mut tagged = vec![0x20, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x88, 0x47];
    tagged.extend_from_slice(&[0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x3f]); // labels 16, 32(S)
    tagged.extend_from_slice(&inner);
    let pkt = ether(0x88a8, &tagged);
    let d = decode(linktype::ETHERNET, &pkt);
    let vlans: Vec<u16> = d.link.vlans().iter().map(|t| t.vid).collect();
    assert_eq!(vlans, [10, 20]);
    assert_eq!(d.link.vlans()[0].pcp, 1);
    let labels: Vec<(u32, bool, u8)> = d
        .link
        .mpls()
        .iter()
        .map(|l| (l.label, l.bottom_of_stack, l.ttl))
        .collect();
    assert_eq!(labels, [(16, false, 64), (32, true, 63)]);
    assert!(matches!(d.transport, Transport::Udp(u) if u.dst_port == 9999 && u.payload == b"hi"));
    assert_eq!(
        text(linktype::ETHERNET, &pkt),
        "1.000002 MPLS (label 16, tc 0, ttl 64) (label 32, tc 0, [S], ttl 63) IP 10.0.0.1.1234 > 10.0.0.2.9999: UDP, length 2\n"
    );
}

#[test]
fn ipv4_fragments_only_first_has_transport() {
    let first = ipv4(17, 0x2000, &udp(1, 2, &[0; 16]));
    let d = decode(linktype::IPV4, &first);
    assert!(d.net.fragment().unwrap().more_fragments);
    assert!(matches!(d.transport, Transport::Udp(_)));
    let later = ipv4(17, 0x0003, &[0; 24]);
    let d = decode(linktype::RAW, &later);
    assert_eq!(d.net.fragment().unwrap().offset, 24);
    assert!(matches!(d.transport, Transport::None));
    assert_eq!(d.stop.reason, StopReason::Fragment);
    assert_eq!(
        text(linktype::RAW, &later),
        "1.000002 IP 10.0.0.1 > 10.0.0.2: ip-proto-17\n"
    );
}

#[test]
fn ipv6_extension_headers_and_fragment() {
    // hop-by-hop (8 bytes) -> fragment (first, more) -> UDP
    let mut ext = vec![44, 0, 1, 4, 0, 0, 0, 0];
    ext.extend_from_slice(&[17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]);
    ext.extend_from_slice(&udp(5000, 53, &[]));
    let pkt = ipv6(0, &ext);
    let d = decode(linktype::IPV6, &pkt);
    let Net::Ipv6(ip) = d.net else { panic!() };
    assert_eq!(ip.flow_label, 0x12345);
    let kinds: Vec<u8> = ip.ext_headers().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [0, 44]);
    assert_eq!(ip.protocol, 17);
    let frag = ip.fragment.unwrap();
    assert_eq!(
        (frag.offset, frag.more_fragments, frag.id),
        (0, true, 0xdeadbeef)
    );
    assert!(matches!(d.transport, Transport::Udp(u) if u.src_port == 5000));
}

#[test]
fn ipv6_stops_at_esp_and_no_next_header() {
    let esp = ipv6(50, &[0, 0, 1, 0, 0, 0, 0, 1]);
    assert_eq!(
        decode(linktype::IPV6, &esp).stop.reason,
        StopReason::Encrypted
    );
    let none = ipv6(59, &[]);
    assert_eq!(
        decode(linktype::IPV6, &none).stop.reason,
        StopReason::NoNextHeader
    );
}

#[test]
fn linux_cooked_and_loopback_and_raw() {
    let ip = ipv4(1, 0, &[8, 0, 0, 0, 0, 7, 0, 9]);
    let mut sll = vec![0, 4, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    let d = decode(linktype::LINUX_SLL, &sll);
    assert_eq!(d.link.sll.unwrap().packet_type, 4);
    assert_eq!(
        text(linktype::LINUX_SLL, &sll),
        "1.000002 IP 10.0.0.1 > 10.0.0.2: ICMP echo request, id 7, seq 9, length 8\n"
    );

    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 9, 0, 1, 4, 6, 1, 2, 3, 4, 5, 6, 0, 0,
    ];
    sll2.extend_from_slice(&ip);
    let d = decode(linktype::LINUX_SLL2, &sll2);
    assert_eq!(d.link.sll.unwrap().if_index, Some(9));
    assert!(
        text(linktype::LINUX_SLL2, &sll2)
            .starts_with("1.000002 ?     Out IP 10.0.0.1 > 10.0.0.2: ICMP echo")
    );

    for (lt, family) in [
        (linktype::NULL, 2u32.to_le_bytes()),
        (linktype::NULL, 2u32.to_be_bytes()),
        (linktype::LOOP, 2u32.to_be_bytes()),
    ] {
        let mut pkt = family.to_vec();
        pkt.extend_from_slice(&ip);
        assert!(
            matches!(decode(lt, &pkt).net, Net::Ipv4(_)),
            "link type {lt}"
        );
    }
    let mut v6 = 30u32.to_le_bytes().to_vec();
    v6.extend_from_slice(&ipv6(59, &[]));
    assert!(matches!(decode(linktype::NULL, &v6).net, Net::Ipv6(_)));
}

#[test]
fn frame_relay_q922_address() {
    // DLCI 301 = 0b0100101101: high 6 bits 010010 -> byte 0 = 0x48, low 4 bits 1101 -> 0xd0,
    // with FECN, DE and EA set in the second byte.
    let mut pkt = vec![0x48, 0xd0 | 0x08 | 0x02 | 0x01, 0x03, 0xcc];
    pkt.extend_from_slice(&ipv4(17, 0, &udp(1, 2, &[])));
    let d = decode(linktype::FRELAY, &pkt);
    let fr = d.link.frame_relay.unwrap();
    assert_eq!(
        (fr.dlci, fr.fecn, fr.becn, fr.de, fr.nlpid),
        (301, true, false, true, Some(0xcc))
    );
    assert!(matches!(d.transport, Transport::Udp(_)));
    // SNAP-encapsulated IPv6 after a pad byte.
    let mut snap = vec![0x48, 0xd1, 0x03, 0x00, 0x80, 0, 0, 0, 0x86, 0xdd];
    snap.extend_from_slice(&ipv6(59, &[]));
    assert!(matches!(decode(linktype::FRELAY, &snap).net, Net::Ipv6(_)));
}

#[test]
fn ppp_chdlc_pppoe() {
    let ip = ipv4(17, 0, &udp(1, 2, &[]));
    let mut ppp = vec![0xff, 0x03, 0x00, 0x21];
    ppp.extend_from_slice(&ip);
    assert!(matches!(decode(linktype::PPP, &ppp).net, Net::Ipv4(_)));
    let mut chdlc = vec![0x0f, 0x00, 0x08, 0x00];
    chdlc.extend_from_slice(&ip);
    assert!(matches!(decode(linktype::C_HDLC, &chdlc).net, Net::Ipv4(_)));
    assert!(matches!(
        decode(linktype::PPP_HDLC, &chdlc).net,
        Net::Ipv4(_)
    ));
    let mut pppoe = vec![0x11, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x21];
    pppoe.extend_from_slice(&ip);
    let framed = ether(0x8864, &pppoe);
    assert_eq!(
        decode(linktype::ETHERNET, &framed).link.pppoe_session,
        Some(0x2a)
    );
    assert!(
        text(linktype::ETHERNET, &ether(0x8864, &pppoe))
            // tcpdump: "PPPoE " + the code name (empty for session data) + " [ses 0x..]".
            .starts_with("1.000002 PPPoE  [ses 0x2a] IP 10.0.0.1.1 > 10.0.0.2.2:")
    );
}

#[test]
fn chdlc_slarp_is_not_rarp() {
    // Keepalive with uptime 0x0078f0a2 ms (tcpdump-4.99.3/HDLC.pcap, first packet).
    let pkt = [
        0x8f, 0x00, 0x80, 0x35, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 2, 0xff, 0xff, 0x00, 0x78, 0xf0,
        0xa2, 0, 0,
    ];
    let d = decode(linktype::C_HDLC, &pkt);
    assert!(matches!(d.net, Net::None));
    assert_eq!(
        d.link.slarp,
        Some(trawl_decode::Slarp::Keepalive {
            mine_seen: 5,
            your_seen: 2,
            reliability: 0xffff,
            uptime_ms: Some(0x0078_f0a2),
        })
    );
    assert!(text(linktype::C_HDLC, &pkt).contains(
        "SLARP (length: 20), keepalive: mineseen=0x00000005, yourseen=0x00000002, \
         reliability=0xffff, link uptime=0d2h12m5s"
    ));
    let reply = [
        0x8f, 0x00, 0x80, 0x35, 0, 0, 0, 1, 15, 0, 0, 1, 255, 255, 255, 252, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert!(
        text(linktype::C_HDLC, &reply)
            .contains("SLARP (length: 20), reply 15.0.0.1/255.255.255.252")
    );
}

#[test]
fn frame_relay_cisco_encapsulation_and_text() {
    // Q.922 address for DLCI 302, then an ethertype (Cisco), as in OSPFv3_NBMA_adjacencies.pcap.
    let mut pkt = vec![0x48, 0xe1, 0x86, 0xdd];
    pkt.extend_from_slice(&ipv6(59, &[]));
    let d = decode(linktype::FRELAY, &pkt);
    let fr = d.link.frame_relay.unwrap();
    assert_eq!(
        (fr.dlci, fr.cisco_ethertype, fr.nlpid),
        (302, Some(0x86dd), None)
    );
    assert_eq!(d.net.offset(), Some(4));
    assert!(text(linktype::FRELAY, &pkt).contains(" IP6 "));
    // An NLPID without a printer: tcpdump's Q.922 summary and a hex dump.
    let q933 = [0x48, 0xe1, 0x03, 0x08, 0x00, 0x03];
    assert!(
        text(linktype::FRELAY, &q933)
            .contains("Q.922, hdr-len 2, DLCI 302, Flags [none], NLPID Q.933 (0x08), length 6: ")
    );
}

#[test]
fn json_tcp_flag_names() {
    let mut seg = vec![0u8; 20];
    seg[12] = 0x50;
    seg[13] = 0x12; // SYN+ACK
    let pkt = ipv4(6, 0, &seg);
    let d = decode(linktype::RAW, &pkt);
    let v = trawl_decode::json::to_value(&d);
    assert_eq!(v["transport"]["flags"], 0x12);
    assert_eq!(v["transport"]["flag_names"], "S.");
}

fn dns_response() -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
    m.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
    // CNAME www.example.com -> web.example.com (pointer to "example.com" at offset 16)
    m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 6]);
    m.extend_from_slice(b"\x03web\xc0\x10");
    // A web.example.com (pointer to offset 45) -> 192.0.2.1
    m.extend_from_slice(&[0xc0, 45, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
    m
}

#[test]
fn dns_response_with_compression() {
    let pkt = ipv4(17, 0, &udp(53, 33333, &dns_response()));
    let d = decode(linktype::RAW, &pkt);
    let App::Dns(dns) = d.app else {
        panic!("{:?}", d.stop)
    };
    assert!(dns.is_response() && dns.recursion_available());
    let q = dns.questions().next().unwrap();
    assert_eq!(
        (q.name.to_string().as_str(), q.qtype),
        ("www.example.com.", 1)
    );
    let names: Vec<String> = dns.records().map(|r| r.name.to_string()).collect();
    assert_eq!(names, ["www.example.com.", "web.example.com."]);
    assert_eq!(
        text(linktype::RAW, &pkt),
        "1.000002 IP 10.0.0.1.53 > 10.0.0.2.33333: 4660 2/0/0 CNAME web.example.com., A 192.0.2.1 (67)\n"
    );
    let json = trawl_decode::json::to_value(&d);
    assert_eq!(json["app"]["records"][1]["data"], "192.0.2.1");
}

#[test]
fn dns_pointer_loops_are_refused() {
    // A question whose name points at itself, and one that points forward.
    for name in [[0xc0u8, 12], [0xc0, 40]] {
        let mut m = vec![0, 1, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&name);
        m.extend_from_slice(&[0, 1, 0, 1]);
        let pkt = ipv4(17, 0, &udp(3333, 53, &m));
        let App::Dns(dns) = decode(linktype::RAW, &pkt).app else {
            panic!()
        };
        let q = dns.questions().next().unwrap();
        assert!(q.name.labels().any(|l| l.is_err()));
        assert!(text(linktype::RAW, &pkt).ends_with("1+ A? <BAD PTR> [|domain]\n"));
    }
}

#[test]
fn arp_request_and_reply() {
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&SRC);
    arp.extend_from_slice(&[10, 0, 0, 1]);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&[10, 0, 0, 2]);
    let pkt = ether(0x0806, &arp);
    let Net::Arp(a) = decode(linktype::ETHERNET, &pkt).net else {
        panic!()
    };
    assert_eq!(a.operation, 1);
    assert_eq!(
        text(1, &pkt),
        "1.000002 ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28\n"
    );
}

#[test]
fn truncation_is_reported_with_offset() {
    let pkt = ether(0x0800, &ipv4(6, 0, &tcp(0x10, 1, 1, &[], &[])));
    let d = decode(linktype::ETHERNET, &pkt[..14 + 20 + 10]);
    assert_eq!(
        (d.stop.layer, d.stop.offset, d.stop.reason),
        (Layer::Tcp, 34, StopReason::Truncated)
    );
    assert!(matches!(d.net, Net::Ipv4(_)));
    let d = decode(linktype::ETHERNET, &pkt[..10]);
    assert_eq!(
        (d.stop.layer, d.stop.reason),
        (Layer::Link, StopReason::Truncated)
    );
    let s = text(linktype::ETHERNET, &pkt[..14 + 20 + 10]);
    // The wire length given is the captured length, shorter than the IP total length.
    assert_eq!(
        s,
        "1.000002 IP truncated-ip - 10 bytes missing! 10.0.0.1.40000 > 10.0.0.2.80:  [|tcp]\n"
    );
}

#[test]
fn nanosecond_timestamps() {
    let mut f = TextFormatter::new(TextOptions {
        precision: trawl_decode::TimestampPrecision::Nano,
        ..Default::default()
    });
    let mut out = Vec::new();
    f.write_line(
        &mut out,
        1_700_000_000,
        123_456_789,
        linktype::RAW,
        &ipv4(17, 0, &udp(1, 2, &[])),
        28,
    );
    assert!(out.starts_with(b"1700000000.123456789 IP "));
    let mut f = TextFormatter::default();
    out.clear();
    f.write_line(&mut out, 5, 999_999, linktype::RAW, &[], 0);
    assert!(out.starts_with(b"5.000999 "));
}

/// A small xorshift generator: deterministic fuzzing without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn never_panics_on_truncated_or_mutated_packets() {
    let seeds: Vec<(u32, Vec<u8>)> = vec![
        (
            1,
            ether(
                0x0800,
                &ipv4(
                    6,
                    0,
                    &tcp(
                        0x12,
                        1,
                        2,
                        &[2, 4, 5, 0xb4, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1],
                        b"GET / HTTP/1.0\r\n",
                    ),
                ),
            ),
        ),
        (
            1,
            ether(
                0x86dd,
                &ipv6(
                    0,
                    &[
                        44, 0, 1, 4, 0, 0, 0, 0, 17, 0, 0, 1, 0, 0, 0, 1, 0, 53, 0, 53, 0, 20, 0, 0,
                    ],
                ),
            ),
        ),
        (101, ipv4(17, 0, &udp(53, 53, &dns_response()))),
        (
            101,
            ipv4(
                6,
                0,
                &tcp(0x18, 1, 2, &[], &{
                    let m = dns_response();
                    let mut v = (m.len() as u16).to_be_bytes().to_vec();
                    v.extend_from_slice(&m);
                    v
                }),
            ),
        ),
        (
            229,
            ipv6(58, &[1, 4, 0, 0, 0, 0, 0, 0, 0x60, 0, 0, 0, 0, 8, 17, 64]),
        ),
        (0, {
            let mut v = 2u32.to_le_bytes().to_vec();
            v.extend_from_slice(&ipv4(
                1,
                0,
                &[
                    3, 3, 0, 0, 0, 0, 0, 0, 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 1, 1, 1, 1,
                    2, 2, 2, 2, 0, 1, 0, 2,
                ],
            ));
            v
        }),
        (
            107,
            vec![
                0x48, 0xd1, 0x03, 0x00, 0x80, 0, 0, 0, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2,
            ],
        ),
        (
            276,
            vec![
                0x88, 0x47, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x31, 0x40,
                0x60,
            ],
        ),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut f = TextFormatter::default();
    let mut out = Vec::new();
    for (lt, pkt) in &seeds {
        for cut in 0..=pkt.len() {
            let data = &pkt[..cut];
            let _ = decode(*lt, data);
            f.write_line(&mut out, 0, 0, *lt, data, pkt.len() as u32);
            f.write_line(&mut out, 0, 0, *lt, data, 0);
        }
        for _ in 0..3000 {
            let mut m = pkt.clone();
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() as usize) % m.len();
                m[i] = rng.next() as u8;
            }
            let lt = if rng.next().is_multiple_of(8) {
                [0, 1, 9, 50, 51, 101, 104, 107, 108, 113, 228, 229, 276]
                    [(rng.next() % 13) as usize]
            } else {
                *lt
            };
            let d = decode(lt, &m);
            let _ = trawl_decode::json::to_value(&d);
            f.write_line(&mut out, 0, 0, lt, &m, (rng.next() % 3000) as u32);
            out.clear();
        }
    }
}

#[test]
fn json_has_the_decoded_fields() {
    let inner = ipv4(6, 0x4000, &tcp(0x12, 7, 8, &[2, 4, 5, 0xb4], &[]));
    let mut tagged = vec![0x00, 0x0a, 0x08, 0x00];
    tagged.extend_from_slice(&inner);
    let pkt = ether(0x8100, &tagged);
    let v = trawl_decode::json::to_value(&decode(linktype::ETHERNET, &pkt));
    assert_eq!(v["link"]["src_mac"], "66:77:88:99:aa:bb");
    assert_eq!(v["link"]["vlans"][0]["vid"], 10);
    assert_eq!(v["net"]["proto"], "ipv4");
    assert_eq!(v["net"]["dst"], "10.0.0.2");
    assert_eq!(v["net"]["fragment"]["dont_fragment"], true);
    assert_eq!(v["transport"]["proto"], "tcp");
    assert_eq!(v["transport"]["options"][0]["value"], 1460);
    assert_eq!(v["stop"]["layer"], "tcp");
    assert_eq!(v["stop"]["reason"]["kind"], "complete");
}
