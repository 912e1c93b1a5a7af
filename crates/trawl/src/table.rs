//! Plain text tables for the client commands' listings.

/// A plain text table: columns padded to their widest cell, two spaces apart.
pub fn render(titles: &[&str], right: &[bool], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = titles
        .iter()
        .enumerate()
        .map(|(i, t)| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([t.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            let last = i + 1 == cells.len();
            if right[i] {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            } else {
                s.push_str(cell);
                if !last {
                    s.push_str(&" ".repeat(pad));
                }
            }
            if !last {
                s.push_str("  ");
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(titles.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// A listing's answer: printed whole as JSON with `--json` (then `None`), else the array under
/// `key` — `None` too, after saying `empty` on standard error, when it holds nothing.
pub fn listed<'a>(
    answer: &'a serde_json::Value,
    key: &str,
    json: bool,
    empty: &str,
) -> anyhow::Result<Option<&'a Vec<serde_json::Value>>> {
    use anyhow::Context;
    if json {
        println!("{}", serde_json::to_string_pretty(answer)?);
        return Ok(None);
    }
    let list = answer
        .get(key)
        .and_then(serde_json::Value::as_array)
        .with_context(|| format!("the answer has no {key:?} list"))?;
    if list.is_empty() {
        eprintln!("{empty}");
        return Ok(None);
    }
    Ok(Some(list))
}
