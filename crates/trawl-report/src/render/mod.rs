//! Reports and profiles as text and as HTML (JSON is their `serde` form).
//!
//! The text is a set of aligned tables in the order of the paper's Figure 2, numbers with
//! thousands separators. The HTML is one self-contained file: inline CSS, inline SVG charts
//! drawn here (`svg`), and no reference to anything outside it, so it opens on a machine with
//! no network.

mod html;
mod svg;
mod text;

pub use html::{profile_html, report_html};
pub use text::{profile_text, report_text};

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1234.56` → `1,234.6` (one decimal).
pub fn thousands_f1(x: f64) -> String {
    let tenths = (x * 10.0).round().max(0.0) as u64;
    format!("{}.{}", thousands(tenths / 10), tenths % 10)
}

fn pct(x: f64) -> String {
    format!("{x:.1}%")
}

/// Text for HTML: `&`, `<`, `>`, `"` and `'` escaped.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A table: a title, column headers (right-aligned or not) and rows of cells.
pub(crate) struct Table {
    title: String,
    head: Vec<(&'static str, bool)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Columns as `(header, right-aligned)`.
    pub(crate) fn new(title: impl Into<String>, head: &[(&'static str, bool)]) -> Table {
        Table {
            title: title.into(),
            head: head.to_vec(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.head.len());
        self.rows.push(cells);
    }

    /// The title, then the header and rows in aligned columns, two spaces apart.
    pub(crate) fn text(&self, out: &mut String) {
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| r[i].chars().count())
                .chain([self.head[i].0.chars().count()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.head.len()).map(width).collect();
        out.push_str(&self.title);
        out.push('\n');
        let head: Vec<String> = self.head.iter().map(|h| h.0.to_string()).collect();
        for cells in std::iter::once(&head).chain(&self.rows) {
            let mut line = String::from(" ");
            for (i, c) in cells.iter().enumerate() {
                let pad = widths[i] - c.chars().count();
                line.push(' ');
                if self.head[i].1 {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
                line.push(' ');
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        if self.rows.is_empty() {
            out.push_str("  (none)\n");
        }
        out.push('\n');
    }

    /// An HTML `<table>` with a caption.
    pub(crate) fn html(&self, out: &mut String) {
        out.push_str("<table>\n<caption>");
        out.push_str(&escape(&self.title));
        out.push_str("</caption>\n<thead><tr>");
        for (h, right) in &self.head {
            out.push_str(if *right { "<th class=\"n\">" } else { "<th>" });
            out.push_str(&escape(h));
            out.push_str("</th>");
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for r in &self.rows {
            out.push_str("<tr>");
            for (c, (_, right)) in r.iter().zip(&self.head) {
                out.push_str(if *right { "<td class=\"n\">" } else { "<td>" });
                out.push_str(&escape(c));
                out.push_str("</td>");
            }
            out.push_str("</tr>\n");
        }
        if self.rows.is_empty() {
            out.push_str(&format!(
                "<tr><td colspan=\"{}\">(none)</td></tr>\n",
                self.head.len()
            ));
        }
        out.push_str("</tbody>\n</table>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(41_100_173), "41,100,173");
        assert_eq!(thousands_f1(1004.104), "1,004.1");
        assert_eq!(thousands_f1(0.04), "0.0");
    }
}
