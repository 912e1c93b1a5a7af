//! The text form: the paper's Figure 2, one block per period and line.

use super::{Table, pct, thousands, thousands_f1};
use crate::model::*;
use trawl_flow::time;

/// A circuit as shown: `dlci 460 London`.
pub(crate) fn circuit_label(c: &CircuitReport) -> String {
    match &c.name {
        Some(n) => format!("{} {n}", c.circuit),
        None => c.circuit.clone(),
    }
}

/// The heading of one line in one period.
pub(crate) fn heading(p: &PeriodReport, l: &LineReport) -> (String, String) {
    let title = format!("Traffic summary: {}", l.name);
    let sub = format!(
        "Period {} - {} UTC; observed {} - {}; {} packets, {} bytes",
        time::date_time(p.start),
        time::date_time(p.end),
        time::clock(l.observed.first),
        time::clock(l.observed.last + 1),
        thousands(l.packets),
        thousands(l.bytes)
    );
    (title, sub)
}

fn seconds_table(title: String, rows: &[SecondRow]) -> Table {
    let mut t = Table::new(title, &[("Time", false), ("Bytes", true), ("kbit/s", true)]);
    for s in rows {
        t.row(vec![
            time::clock(s.time),
            thousands(s.bytes),
            thousands_f1(s.kbps),
        ]);
    }
    t
}

fn circuit_seconds_table(title: String, l: &LineReport, busiest: bool) -> Table {
    let mut t = Table::new(
        title,
        &[
            ("Circuit", false),
            ("Time", false),
            ("Bytes", true),
            ("kbit/s", true),
        ],
    );
    for c in &l.circuits {
        let rows = if busiest { &c.busiest } else { &c.quietest };
        for (i, s) in rows.iter().enumerate() {
            t.row(vec![
                if i == 0 {
                    circuit_label(c)
                } else {
                    String::new()
                },
                time::clock(s.time),
                thousands(s.bytes),
                thousands_f1(s.kbps),
            ]);
        }
    }
    t
}

fn endpoints_table(title: String, rows: &[EndpointRow]) -> Table {
    let mut t = Table::new(
        title,
        &[
            ("#", true),
            ("Protocol", false),
            ("Address", false),
            ("Port", true),
            ("Bytes", true),
            ("% of line", true),
            ("Name", false),
        ],
    );
    for (i, e) in rows.iter().enumerate() {
        t.row(vec![
            (i + 1).to_string(),
            e.protocol.clone(),
            e.address.clone(),
            e.port.to_string(),
            thousands(e.bytes),
            format!("{:.1}", e.share),
            e.name.clone().unwrap_or_default(),
        ]);
    }
    t
}

/// The tables of one line in one period, in the paper's order. `with` names the line in each
/// title: `(Out-Bound from Philadelphia)` in the paper.
pub(crate) fn line_tables(l: &LineReport) -> Vec<Table> {
    let with = format!("({})", l.name);
    let mut tables = Vec::new();

    let mut t = Table::new(
        format!("Circuit summary {with}"),
        &[
            ("Circuit", false),
            ("Packets", true),
            ("Bytes", true),
            ("%", true),
            ("FECNs", true),
            ("%", true),
            ("BECNs", true),
            ("%", true),
            ("DEs", true),
            ("%", true),
            ("Retrans DE", true),
            ("Retrans no DE", true),
        ],
    );
    let of = |n: u64, d: u64| {
        pct(if d == 0 {
            0.0
        } else {
            n as f64 * 100.0 / d as f64
        })
    };
    for c in &l.circuits {
        t.row(vec![
            circuit_label(c),
            thousands(c.packets),
            thousands(c.bytes),
            pct(c.share),
            thousands(c.fecn),
            of(c.fecn, c.packets),
            thousands(c.becn),
            of(c.becn, c.packets),
            thousands(c.de),
            of(c.de, c.packets),
            thousands(c.retransmissions_de),
            thousands(c.retransmissions_no_de),
        ]);
    }
    let sum = |f: fn(&CircuitReport) -> u64| l.circuits.iter().map(f).sum::<u64>();
    let (fecn, becn, de) = (sum(|c| c.fecn), sum(|c| c.becn), sum(|c| c.de));
    t.row(vec![
        "All".into(),
        thousands(l.packets),
        thousands(l.bytes),
        pct(100.0),
        thousands(fecn),
        of(fecn, l.packets),
        thousands(becn),
        of(becn, l.packets),
        thousands(de),
        of(de, l.packets),
        thousands(sum(|c| c.retransmissions_de)),
        thousands(sum(|c| c.retransmissions_no_de)),
    ]);
    tables.push(t);

    let mut t = Table::new(
        format!("Protocol counts {with}"),
        &[
            ("Circuit", false),
            ("Code", false),
            ("Protocol", false),
            ("Packets", true),
            ("Bytes", true),
            ("% of circuit", true),
            ("TCP retransmits", true),
            ("%", true),
        ],
    );
    for c in &l.circuits {
        for (i, p) in c.protocols.iter().enumerate() {
            let tcp = p.ip_protocol == Some(6);
            t.row(vec![
                if i == 0 {
                    circuit_label(c)
                } else {
                    String::new()
                },
                p.code.clone(),
                p.name.clone(),
                thousands(p.packets),
                thousands(p.bytes),
                pct(p.share),
                if tcp {
                    thousands(p.retransmissions)
                } else {
                    String::new()
                },
                if tcp {
                    of(p.retransmissions, p.packets)
                } else {
                    String::new()
                },
            ]);
        }
    }
    tables.push(t);

    tables.push(seconds_table(
        format!("Line busiest seconds {with}"),
        &l.busiest,
    ));
    tables.push(circuit_seconds_table(
        format!("Circuit busiest seconds {with}"),
        l,
        true,
    ));
    tables.push(seconds_table(
        format!("Line quietest seconds {with}"),
        &l.quietest,
    ));
    tables.push(circuit_seconds_table(
        format!("Circuit quietest seconds {with}"),
        l,
        false,
    ));
    tables.push(endpoints_table(
        format!("Top sources {with}"),
        &l.top_sources,
    ));
    tables.push(endpoints_table(
        format!("Top destinations {with}"),
        &l.top_destinations,
    ));

    let mut t = Table::new(
        format!("Application summary (all circuits, {})", l.name),
        &[
            ("Application", false),
            ("New TCP sessions", true),
            ("Total TCP sessions", true),
            ("Packets", true),
            ("Bytes", true),
        ],
    );
    for a in &l.applications {
        t.row(vec![
            a.label.clone(),
            a.new_sessions.map(thousands).unwrap_or_default(),
            a.total_sessions.map(thousands).unwrap_or_default(),
            thousands(a.packets),
            thousands(a.bytes),
        ]);
    }
    tables.push(t);

    let mut t = Table::new(
        format!("Top retransmission destinations {with}"),
        &[("Address", false), ("Retransmissions", true)],
    );
    for r in &l.retransmission_destinations {
        t.row(vec![r.address.clone(), thousands(r.count)]);
    }
    tables.push(t);
    tables
}

/// The closing counts of a line: SYNs and retransmissions.
pub(crate) fn totals(l: &LineReport) -> [String; 2] {
    [
        format!("TCP SYNs (connection requests): {}", thousands(l.tcp_syns)),
        format!(
            "Total TCP retransmissions: {}",
            thousands(l.tcp_retransmissions)
        ),
    ]
}

/// Every period and line of a report as text.
pub fn report_text(periods: &[PeriodReport]) -> String {
    let mut out = String::new();
    if periods.is_empty() {
        out.push_str("No packets.\n");
    }
    for p in periods {
        for l in &p.lines {
            let (title, sub) = heading(p, l);
            out.push_str(&format!("{title}\n{sub}\n\n"));
            let tables = line_tables(l);
            // The application table, then the SYN and retransmission counts (as the paper
            // closes its report), then where retransmissions went.
            let (before, after) = tables.split_at(tables.len() - 1);
            for t in before {
                t.text(&mut out);
            }
            for s in totals(l) {
                out.push_str(&s);
                out.push('\n');
            }
            out.push('\n');
            for t in after {
                t.text(&mut out);
            }
        }
    }
    out
}

/// The profile tables: totals each way and the packet-size distribution.
pub(crate) fn profile_tables(p: &ProfileReport) -> Vec<Table> {
    let ab = format!("{} → {}", p.a, p.b);
    let ba = format!("{} → {}", p.b, p.a);
    let mut t = Table::new(
        "Totals",
        &[
            ("Direction", false),
            ("Packets", true),
            ("Bytes", true),
            ("Max kbit/s", true),
            ("At", false),
        ],
    );
    for (name, d) in [(&ab, &p.a_to_b), (&ba, &p.b_to_a)] {
        t.row(vec![
            name.clone(),
            thousands(d.packets),
            thousands(d.bytes),
            thousands_f1(d.max_kbps),
            d.max_second.map(time::date_time).unwrap_or_default(),
        ]);
    }
    let mut sizes = Table::new(
        "Packet sizes (bytes on the wire)",
        &[("Size", false), ("→", true), ("←", true)],
    );
    for (x, y) in p.a_to_b.sizes.iter().zip(&p.b_to_a.sizes) {
        if x.packets == 0 && y.packets == 0 {
            continue;
        }
        let range = match x.to {
            Some(to) => format!("{}-{}", x.from, to),
            None => format!("{}+", x.from),
        };
        sizes.row(vec![range, thousands(x.packets), thousands(y.packets)]);
    }
    vec![t, sizes]
}

/// A profile as text: totals, sizes, then the per-second bandwidth each way (seconds with no
/// packet either way are left out).
pub fn profile_text(p: &ProfileReport) -> String {
    let mut out = format!("Session profile: {}\n", p.session);
    match p.observed {
        None => {
            out.push_str("No packets of this session.\n");
            return out;
        }
        Some(o) => out.push_str(&format!(
            "{} - {} UTC ({:.3} s); → is {} to {}\n\n",
            time::date_time(o.first),
            time::date_time(o.last + 1),
            p.duration_secs,
            p.a,
            p.b
        )),
    }
    for t in profile_tables(p) {
        t.text(&mut out);
    }
    let mut t = Table::new(
        "Per second",
        &[
            ("Time", false),
            ("→ bytes", true),
            ("→ kbit/s", true),
            ("← bytes", true),
            ("← kbit/s", true),
        ],
    );
    let first = p.observed.map_or(0, |o| o.first);
    let s = &p.per_second;
    for i in 0..s.a_to_b_bytes.len() {
        if s.a_to_b_packets[i] == 0 && s.b_to_a_packets[i] == 0 {
            continue;
        }
        t.row(vec![
            time::date_time(first + i as u64),
            thousands(s.a_to_b_bytes[i]),
            thousands_f1(s.a_to_b_bytes[i] as f64 * 8.0 / 1000.0),
            thousands(s.b_to_a_bytes[i]),
            thousands_f1(s.b_to_a_bytes[i] as f64 * 8.0 / 1000.0),
        ]);
    }
    t.text(&mut out);
    out
}
