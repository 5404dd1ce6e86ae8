//! The report's charts as inline SVG: the score as a ring, each framework's controls as a
//! stacked bar, the score's trend as a line, and discovery's findings as bars. Fixed sizes,
//! no script, every text escaped.

use std::fmt::Write;

use aim_api::reports::TrendPoint;
use aim_domain::compliance::Score;

pub const GREEN: &str = "#1a7f37";
pub const AMBER: &str = "#bf8700";
pub const RED: &str = "#cf222e";
const GREY: &str = "#d0d7de";
const INK: &str = "#1f2328";

/// The colour of a score: red under 50, amber under 80, green from 80.
pub fn colour(score: f64) -> &'static str {
    if score >= 80.0 {
        GREEN
    } else if score >= 50.0 {
        AMBER
    } else {
        RED
    }
}

/// The score (0 to 100) as a ring with the figure in the middle.
pub fn ring(score: f64) -> String {
    let r = 52.0;
    let circumference = 2.0 * std::f64::consts::PI * r;
    let filled = circumference * score.clamp(0.0, 100.0) / 100.0;
    format!(
        r#"<svg class="ring" viewBox="0 0 140 140" width="140" height="140" role="img" aria-label="posture score {score:.1} out of 100"><title>Posture score {score:.1} / 100</title><circle cx="70" cy="70" r="{r}" fill="none" stroke="{GREY}" stroke-width="14"/><circle cx="70" cy="70" r="{r}" fill="none" stroke="{c}" stroke-width="14" stroke-dasharray="{filled:.2} {circumference:.2}" transform="rotate(-90 70 70)"/><text x="70" y="68" text-anchor="middle" font-size="28" font-weight="700" fill="{INK}">{score:.0}</text><text x="70" y="90" text-anchor="middle" font-size="12" fill="{INK}">of 100</text></svg>"#,
        c = colour(score),
    )
}

/// One stacked bar per framework: met, partial, not met.
pub fn frameworks(scores: &[Score]) -> String {
    let (label_w, bar_w, row_h) = (160.0, 260.0, 30.0);
    let height = row_h * scores.len() as f64 + 10.0;
    let mut out = format!(
        r#"<svg class="bars" viewBox="0 0 {w} {height}" width="{w}" height="{height}" role="img" aria-label="controls met, partial and not met per framework"><title>Controls per framework</title>"#,
        w = label_w + bar_w + 60.0
    );
    for (i, s) in scores.iter().enumerate() {
        let y = i as f64 * row_h + 5.0;
        let total = f64::from(s.met + s.partial + s.not_met).max(1.0);
        let _ = write!(
            out,
            r#"<text x="0" y="{ty}" font-size="13" fill="{INK}">{name}</text>"#,
            ty = y + 15.0,
            name = escape(s.framework.short())
        );
        let mut x = label_w;
        for (n, c, what) in [
            (s.met, GREEN, "met"),
            (s.partial, AMBER, "partial"),
            (s.not_met, RED, "not met"),
        ] {
            let w = bar_w * f64::from(n) / total;
            if n > 0 {
                let _ = write!(
                    out,
                    r#"<rect x="{x:.1}" y="{y}" width="{w:.1}" height="20" fill="{c}"><title>{n} {what}</title></rect>"#
                );
            }
            x += w;
        }
        let _ = write!(
            out,
            r#"<text x="{tx}" y="{ty}" font-size="13" font-weight="600" fill="{INK}">{score:.0}</text>"#,
            tx = label_w + bar_w + 8.0,
            ty = y + 15.0,
            score = s.score
        );
    }
    out.push_str("</svg>");
    out
}

/// The score over the kept reports, oldest first, on a 0 to 100 axis.
pub fn trend(points: &[TrendPoint]) -> String {
    let (w, h, left, pad) = (320.0, 140.0, 30.0, 10.0);
    let inner_w = w - left - pad;
    let inner_h = h - 2.0 * pad;
    let x = |i: usize| {
        if points.len() <= 1 {
            left + inner_w / 2.0
        } else {
            left + inner_w * i as f64 / (points.len() - 1) as f64
        }
    };
    let y = |score: f64| pad + inner_h * (1.0 - score.clamp(0.0, 100.0) / 100.0);
    let mut out = format!(
        r#"<svg class="trend" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="posture score over the last {n} reports"><title>Score trend</title>"#,
        n = points.len()
    );
    for tick in [0.0, 50.0, 100.0] {
        let _ = write!(
            out,
            r#"<line x1="{left}" x2="{x2}" y1="{ty:.1}" y2="{ty:.1}" stroke="{GREY}"/><text x="{lx}" y="{ly:.1}" font-size="10" text-anchor="end" fill="{INK}">{tick:.0}</text>"#,
            x2 = w - pad,
            ty = y(tick),
            lx = left - 4.0,
            ly = y(tick) + 3.0
        );
    }
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.score)))
        .collect();
    if points.len() > 1 {
        let _ = write!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{INK}" stroke-width="2"/>"#,
            line.join(" ")
        );
    }
    for (i, p) in points.iter().enumerate() {
        let _ = write!(
            out,
            r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="4" fill="{c}"><title>{at}: {score:.1}</title></circle>"#,
            cx = x(i),
            cy = y(p.score),
            c = colour(p.score),
            at = p.at,
            score = p.score
        );
    }
    out.push_str("</svg>");
    out
}

/// One bar per finding kind with its count of accounts, longest first.
pub fn findings(counts: &[(String, u64)]) -> String {
    let (label_w, bar_w, row_h) = (190.0, 280.0, 22.0);
    let max = counts.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1) as f64;
    let height = row_h * counts.len() as f64 + 6.0;
    let mut out = format!(
        r#"<svg class="findings" viewBox="0 0 {w} {height}" width="{w}" height="{height}" role="img" aria-label="discovered accounts per finding"><title>Discovered accounts per finding</title>"#,
        w = label_w + bar_w + 70.0
    );
    for (i, (kind, n)) in counts.iter().enumerate() {
        let y = i as f64 * row_h + 3.0;
        let bw = (bar_w * *n as f64 / max).max(2.0);
        let _ = write!(
            out,
            r#"<text x="0" y="{ty}" font-size="12" fill="{INK}">{k}</text><rect x="{label_w}" y="{y}" width="{bw:.1}" height="15" fill="{RED}"/><text x="{tx:.1}" y="{ty}" font-size="12" fill="{INK}">{n}</text>"#,
            ty = y + 12.0,
            k = escape(kind),
            tx = label_w + bw + 6.0
        );
    }
    out.push_str("</svg>");
    out
}

/// `text` safe inside HTML or SVG text and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => {}
            c => out.push(c),
        }
    }
    out
}
