//! The compliance report as Markdown: the score and its trend, each framework's table, then
//! every control with its checks and the names behind the ones that fail. Names come from
//! outside (directory and cloud account names), so every one is escaped: none can become a
//! link, an image or a table cell of its own.

use std::fmt::Write;

use aim_api::reports::ComplianceReport;
use aim_domain::compliance::{Check, Control, Framework, Status};

/// A status as a reader scans for it.
pub fn mark(s: Status) -> &'static str {
    match s {
        Status::Met => "✅ met",
        Status::Partial => "🟡 partial",
        Status::NotMet => "❌ not met",
        Status::NotApplicable => "➖ not applicable",
    }
}

/// `text` with every character that could start Markdown inside a line backslash-escaped
/// (emphasis, code, links and images, HTML, table cells, entities), and line breaks turned
/// to spaces: nothing in it can format, link or break out of its line.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The names a check gives, and how many more it counted.
pub fn names(c: &Check) -> Option<String> {
    if c.names.is_empty() {
        return None;
    }
    let listed: Vec<String> = c.names.iter().map(|n| escape(n)).collect();
    let more = c.count.saturating_sub(c.names.len() as u64);
    Some(if more > 0 {
        format!("{} and {more} more", listed.join(", "))
    } else {
        listed.join(", ")
    })
}

pub fn render(r: &ComplianceReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# aim compliance report\n");
    let _ = writeln!(
        out,
        "Generated {} by {} · report `{}`\n",
        r.generated_at,
        escape(&r.generated_by),
        r.id
    );
    let trend: Vec<String> = r.trend.iter().map(|t| format!("{:.1}", t.score)).collect();
    let trend = if trend.len() > 1 {
        format!(
            "trend over the last {} reports: {}",
            trend.len(),
            trend.join(" → ")
        )
    } else {
        "the first report: no trend yet".to_owned()
    };
    let _ = writeln!(out, "**Posture score: {:.1} / 100** — {trend}\n", r.score);
    let _ = writeln!(out, "| Framework | Score | Met | Partial | Not met |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for f in &r.frameworks {
        let _ = writeln!(
            out,
            "| {} | {:.1} | {} | {} | {} |",
            f.framework.title(),
            f.score,
            f.met,
            f.partial,
            f.not_met
        );
    }
    attention(&mut out, r);
    for f in Framework::ALL {
        framework(
            &mut out,
            *f,
            r.controls.iter().filter(|c| c.framework == *f),
        );
    }
    out
}

/// The controls not met, first: what to fix, with the names.
fn attention(out: &mut String, r: &ComplianceReport) {
    let failing = r.not_met();
    let _ = writeln!(out, "\n## Not met ({})\n", failing.len());
    if failing.is_empty() {
        let _ = writeln!(out, "Every control is met or partly met.");
    }
    for c in failing {
        let _ = writeln!(out, "- **{} {}**", escape(&c.id), escape(&c.title));
        for k in c.checks.iter().filter(|k| k.status == Status::NotMet) {
            let _ = write!(out, "  - {}: {}", escape(&k.label), escape(&k.detail));
            if let Some(n) = names(k) {
                let _ = write!(out, " — {n}");
            }
            let _ = writeln!(out);
        }
    }
}

fn framework<'a>(out: &mut String, f: Framework, controls: impl Iterator<Item = &'a Control>) {
    let _ = writeln!(out, "\n## {}\n", f.title());
    for c in controls {
        let _ = writeln!(
            out,
            "### {} {} — {}\n",
            escape(&c.id),
            escape(&c.title),
            mark(c.status)
        );
        for k in &c.checks {
            let _ = write!(
                out,
                "- {} {}: {}",
                mark(k.status),
                escape(&k.label),
                escape(&k.detail)
            );
            if let Some(n) = names(k) {
                let _ = write!(out, "  \n  {n}");
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(out);
    }
}
