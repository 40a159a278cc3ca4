//! Results: `benches/results/<name>.{md,json}`, and the generated sections of `BENCHMARKS.md`
//! (between `<!-- BEGIN <name> -->` and `<!-- END <name> -->`).

use std::fmt::Write as _;
use std::path::PathBuf;

/// `benches/results`.
pub fn results_dir() -> PathBuf {
    crate::repo_root().join("benches/results")
}

/// A markdown table.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}|", vec!["---"; header.len()].join("|"));
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out
}

/// Milliseconds with a sensible number of digits.
pub fn ms(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A ratio like `3.1×`.
pub fn ratio(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else {
        format!("{v:.2}×")
    }
}

/// Writes `<name>.md` and `<name>.json` and replaces the `<name>` section of `BENCHMARKS.md`.
pub fn publish(name: &str, markdown: &str, json: &serde_json::Value) -> anyhow::Result<()> {
    let dir = results_dir();
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("{name}.md")), markdown)?;
    std::fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(json)? + "\n",
    )?;
    splice(name, markdown)?;
    eprintln!("wrote benches/results/{name}.md and .json; updated BENCHMARKS.md section {name}");
    Ok(())
}

/// Replaces the text between the markers of `name` in `BENCHMARKS.md` (when both markers exist).
pub fn splice(name: &str, markdown: &str) -> anyhow::Result<()> {
    let path = crate::repo_root().join("BENCHMARKS.md");
    let Ok(doc) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let (begin, end) = (format!("<!-- BEGIN {name} -->"), format!("<!-- END {name} -->"));
    let (Some(b), Some(e)) = (doc.find(&begin), doc.find(&end)) else {
        eprintln!("BENCHMARKS.md has no {begin} … {end} markers; left as is");
        return Ok(());
    };
    if e < b {
        anyhow::bail!("BENCHMARKS.md: {end} before {begin}");
    }
    let out = format!(
        "{}{begin}\n{}{}",
        &doc[..b],
        markdown.trim_end().to_owned() + "\n",
        &doc[e..]
    );
    std::fs::write(&path, out)?;
    Ok(())
}
