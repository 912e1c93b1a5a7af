//! The HTML form: one self-contained file with inline CSS and inline SVG charts.

use super::svg::{Series, bar_chart, line_chart};
use super::text::{circuit_label, heading, line_tables, profile_tables, totals};
use super::{escape, thousands};
use crate::model::*;
use trawl_flow::time;

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px;color:#1d2327;background:#f6f7f8}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:18px;margin:28px 0 4px;border-top:1px solid #c9ced3;padding-top:16px}
p.sub{margin:0 0 12px;color:#50575e}
section.line{background:#fff;border:1px solid #dcdfe3;border-radius:6px;padding:12px 18px;margin:18px 0}
table{border-collapse:collapse;margin:12px 0;font-size:13px}
caption{text-align:left;font-weight:600;padding:4px 0}
th,td{padding:2px 10px;border-bottom:1px solid #eceef0;text-align:left;white-space:nowrap}
th{background:#eef1f4}
.n{text-align:right;font-variant-numeric:tabular-nums}
.grid{stroke:#e3e6e9;stroke-width:1}
.tick,.axisline{stroke:#6b7280;stroke-width:1}
.axis{font-size:11px;fill:#50575e}
.title{font-size:13px;font-weight:600;fill:#1d2327}
.legend{font-size:11px;fill:#1d2327}
svg.chart{display:block;margin:10px 0;max-width:100%;height:auto;border:1px solid #eceef0}
.tables{display:flex;flex-wrap:wrap;gap:0 28px;align-items:flex-start}
";

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

fn kbps(bytes: &[u64]) -> Vec<f64> {
    bytes.iter().map(|&b| b as f64 * 8.0 / 1000.0).collect()
}

/// Every period and line of a report as one HTML page: per line, the per-second bandwidth of
/// the line and of each circuit, the busiest seconds as bars, then the tables of the text form.
pub fn report_html(periods: &[PeriodReport]) -> String {
    let mut body = String::from("<h1>Traffic report</h1>\n");
    if periods.is_empty() {
        body.push_str("<p>No packets.</p>\n");
    }
    for p in periods {
        body.push_str(&format!(
            "<h2>{} - {} UTC</h2>\n",
            escape(&time::date_time(p.start)),
            escape(&time::clock(p.end))
        ));
        for l in &p.lines {
            let (title, sub) = heading(p, l);
            body.push_str(&format!(
                "<section class=\"line\">\n<h1>{}</h1>\n<p class=\"sub\">{}</p>\n",
                escape(&title),
                escape(&sub)
            ));
            let mut series = vec![Series {
                name: "line".into(),
                values: kbps(&l.per_second),
            }];
            if l.circuits.len() > 1 || l.circuits.iter().any(|c| c.circuit != "untagged") {
                series.extend(l.circuits.iter().map(|c| Series {
                    name: circuit_label(c),
                    values: kbps(&c.per_second),
                }));
            }
            body.push_str(&line_chart(
                &format!("Bandwidth per second, {}", l.name),
                l.observed.first,
                &series,
                "kbit/s",
            ));
            body.push('\n');
            let labels: Vec<String> = l.busiest.iter().map(|s| time::clock(s.time)).collect();
            body.push_str(&bar_chart(
                &format!("Busiest seconds, {}", l.name),
                &labels,
                &[Series {
                    name: "kbit/s".into(),
                    values: l.busiest.iter().map(|s| s.kbps).collect(),
                }],
                "kbit/s",
            ));
            body.push_str("\n<div class=\"tables\">\n");
            let tables = line_tables(l);
            let (before, after) = tables.split_at(tables.len() - 1);
            for t in before {
                t.html(&mut body);
            }
            body.push_str("</div>\n");
            for s in totals(l) {
                body.push_str(&format!("<p>{}</p>\n", escape(&s)));
            }
            for t in after {
                t.html(&mut body);
            }
            body.push_str("</section>\n");
        }
    }
    document("trawl report", &body)
}

/// A session profile as one HTML page: bandwidth per second each way, the packet-size
/// distribution each way, and the totals.
pub fn profile_html(p: &ProfileReport) -> String {
    let mut body = format!("<h1>Session profile: {}</h1>\n", escape(&p.session));
    let Some(o) = p.observed else {
        body.push_str("<p>No packets of this session.</p>\n");
        return document("trawl profile", &body);
    };
    body.push_str(&format!(
        "<p class=\"sub\">{} - {} UTC ({:.3} s); {} packets, {} bytes</p>\n",
        escape(&time::date_time(o.first)),
        escape(&time::date_time(o.last + 1)),
        p.duration_secs,
        thousands(p.a_to_b.packets + p.b_to_a.packets),
        thousands(p.a_to_b.bytes + p.b_to_a.bytes)
    ));
    let ab = format!("{} → {}", p.a, p.b);
    let ba = format!("{} → {}", p.b, p.a);
    body.push_str(&line_chart(
        "Bandwidth per second",
        o.first,
        &[
            Series {
                name: ab.clone(),
                values: kbps(&p.per_second.a_to_b_bytes),
            },
            Series {
                name: ba.clone(),
                values: kbps(&p.per_second.b_to_a_bytes),
            },
        ],
        "kbit/s",
    ));
    body.push('\n');
    // The bins up to the largest packet seen.
    let used = p
        .a_to_b
        .sizes
        .iter()
        .zip(&p.b_to_a.sizes)
        .rposition(|(x, y)| x.packets + y.packets > 0)
        .map_or(1, |i| i + 1);
    let labels: Vec<String> = p.a_to_b.sizes[..used]
        .iter()
        .map(|b| b.from.to_string())
        .collect();
    let counts = |d: &DirectionProfile| d.sizes[..used].iter().map(|b| b.packets as f64).collect();
    body.push_str(&bar_chart(
        "Packet sizes (bytes on the wire, bins from)",
        &labels,
        &[
            Series {
                name: ab,
                values: counts(&p.a_to_b),
            },
            Series {
                name: ba,
                values: counts(&p.b_to_a),
            },
        ],
        "packets",
    ));
    body.push_str("\n<div class=\"tables\">\n");
    for t in profile_tables(p) {
        t.html(&mut body);
    }
    body.push_str("</div>\n");
    document("trawl profile", &body)
}
