//! The compliance report as one HTML page: no script, no outside resource (its Content
//! Security Policy allows inline styles and nothing else), charts as inline SVG, and every
//! name escaped (account names come from directories and clouds anyone may write to).

use std::fmt::Write;

use aim_api::reports::ComplianceReport;
use aim_domain::compliance::{Check, Framework, Status};

use super::chart::{self, escape};

const STYLE: &str = "
:root{--ink:#1f2328;--muted:#59636e;--line:#d0d7de;--met:#1a7f37;--partial:#9a6700;--not:#cf222e;--bg:#f6f8fa}
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--ink);background:#fff}
header,main,footer{max-width:1100px;margin:0 auto;padding:0 24px}header{padding-top:28px}
h1{font-size:28px;margin:0 0 4px}h2{font-size:21px;margin:36px 0 12px;border-bottom:1px solid var(--line);padding-bottom:6px}
.meta,.muted{color:var(--muted);font-size:13px}
.summary{display:flex;flex-wrap:wrap;gap:16px;margin-top:20px}.card{border:1px solid var(--line);border-radius:8px;padding:14px 16px;background:#fff}
.card h3{margin:0 0 8px;font-size:14px;color:var(--muted);font-weight:600}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px;margin-top:16px}
.fact{background:var(--bg);border-radius:6px;padding:10px 12px}.fact b{display:block;font-size:20px}
table{width:100%;border-collapse:collapse;margin-top:8px}th,td{text-align:left;vertical-align:top;border-top:1px solid var(--line);padding:10px 8px}
th{font-size:13px;color:var(--muted)}td.id{white-space:nowrap;font-weight:600;width:110px}
.badge{display:inline-block;border-radius:12px;padding:1px 10px;font-size:12px;font-weight:600;color:#fff;white-space:nowrap}
.met{background:var(--met)}.partial{background:var(--partial)}.not_met{background:var(--not)}.not_applicable{background:var(--muted)}
ul.checks{margin:0;padding-left:0;list-style:none}ul.checks li{margin:0 0 6px}
.dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:6px}
.names{margin-top:3px;font-size:13px}.names code{background:var(--bg);border:1px solid var(--line);border-radius:4px;padding:0 4px;margin:0 4px 3px 0;display:inline-block}
.attention li{margin-bottom:8px}footer{margin-top:40px;padding-bottom:40px;color:var(--muted);font-size:13px}
svg{max-width:100%;height:auto}td,.names code,.meta{overflow-wrap:anywhere}
@media (max-width:700px){header,main,footer{padding-left:12px;padding-right:12px}.card{width:100%}
table,tbody,tr,td{display:block}thead{display:none}tr{border-top:1px solid var(--line);padding:8px 0}td{border-top:none;padding:3px 0}td.id{width:auto}}
@media print{.card{break-inside:avoid}tr{break-inside:avoid}}
";

pub fn render(r: &ComplianceReport) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\"><title>aim compliance report · {at}</title><style>{STYLE}</style></head><body>",
        at = r.generated_at
    );
    let _ = write!(
        out,
        "<header><h1>Compliance report</h1><div class=\"meta\">Generated {} by {} · report <code>{}</code> · aim's live controls and findings against {} frameworks</div></header><main>",
        r.generated_at,
        escape(&r.generated_by),
        r.id,
        r.frameworks.len()
    );
    summary(&mut out, r);
    facts(&mut out, r);
    attention(&mut out, r);
    findings(&mut out, r);
    for f in Framework::ALL {
        framework(&mut out, r, *f);
    }
    out.push_str(
        "</main><footer>A control is <b>met</b> when every check under it is, <b>not met</b> when none is, and <b>partial</b> otherwise; a check aim can only partly answer (what an agent remembers, the code a tool runs) says so and counts as partial. Each control weighs the share of its checks met (partial counts half); a framework's score, and the posture score over all of them, is the mean over their controls, out of 100. Names are the first 25 of each count. Discovered accounts' findings count until they are fixed at the source: an acknowledged one still counts, and its name says until when it is acknowledged.</footer></body></html>",
    );
    out
}

fn summary(out: &mut String, r: &ComplianceReport) {
    let _ = write!(
        out,
        "<section class=\"summary\"><div class=\"card\"><h3>Posture score</h3>{}</div><div class=\"card\"><h3>{}</h3>{}</div><div class=\"card\"><h3>Controls per framework</h3>{}</div></section>",
        chart::ring(r.score),
        if r.trend.len() > 1 {
            format!("Trend over {} reports", r.trend.len())
        } else {
            "The first report: no trend yet".to_owned()
        },
        chart::trend(&r.trend),
        chart::frameworks(&r.frameworks)
    );
}

fn facts(out: &mut String, r: &ComplianceReport) {
    let p = &r.posture;
    let items = [
        ("live identities", p.registry.live.to_string()),
        ("AI agents", p.registry.agents.to_string()),
        ("active humans", p.humans.active.to_string()),
        ("discovered accounts", p.discovery.accounts.to_string()),
        (
            "machine identities per person",
            p.discovery
                .per_human
                .map_or("–".to_owned(), |v| format!("{v:.1}")),
        ),
        ("gateways connected", p.tools.gateways_connected.to_string()),
        ("policy version", p.decisions.policy_version.to_string()),
        ("behaviour mode", p.behaviour.mode.clone()),
        ("audit records", p.audit.events.to_string()),
    ];
    out.push_str("<section class=\"facts\">");
    for (label, value) in items {
        let _ = write!(
            out,
            "<div class=\"fact\"><b>{}</b><span class=\"muted\">{}</span></div>",
            escape(&value),
            label
        );
    }
    out.push_str("</section>");
}

fn badge(s: Status) -> String {
    format!(
        "<span class=\"badge {}\">{}</span>",
        s.as_str(),
        s.as_str().replace('_', " ")
    )
}

fn names(k: &Check) -> String {
    if k.names.is_empty() {
        return String::new();
    }
    let mut out = String::from("<div class=\"names\">");
    for n in &k.names {
        let _ = write!(out, "<code>{}</code>", escape(n));
    }
    let more = k.count.saturating_sub(k.names.len() as u64);
    if more > 0 {
        let _ = write!(out, "<span class=\"muted\">and {more} more</span>");
    }
    out.push_str("</div>");
    out
}

fn attention(out: &mut String, r: &ComplianceReport) {
    let failing = r.not_met();
    let _ = write!(
        out,
        "<section id=\"not-met\"><h2>Not met ({})</h2>",
        failing.len()
    );
    if failing.is_empty() {
        out.push_str("<p>Every control is met or partly met.</p>");
    }
    out.push_str("<ul class=\"attention\">");
    for c in failing {
        let _ = write!(
            out,
            "<li><b>{}</b> {} <span class=\"muted\">({})</span>",
            escape(&c.id),
            escape(&c.title),
            c.framework.title()
        );
        for k in c.checks.iter().filter(|k| k.status == Status::NotMet) {
            let _ = write!(
                out,
                "<div>{}: {}{}</div>",
                escape(&k.label),
                escape(&k.detail),
                names(k)
            );
        }
        out.push_str("</li>");
    }
    out.push_str("</ul></section>");
}

fn findings(out: &mut String, r: &ComplianceReport) {
    let mut counts: Vec<(String, u64)> = r
        .posture
        .discovery
        .findings
        .iter()
        .map(|(k, n)| (k.as_str().replace('_', " "), n.count))
        .filter(|(_, n)| *n > 0)
        .collect();
    if counts.is_empty() {
        return;
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let _ = write!(
        out,
        "<section id=\"findings\"><h2>Discovery findings</h2><p class=\"muted\">Accounts with each finding, of {} present in {}.</p><div class=\"card\">{}</div></section>",
        r.posture.discovery.accounts,
        escape(&r.posture.discovery.sources.join(", ")),
        chart::findings(&counts)
    );
}

fn framework(out: &mut String, r: &ComplianceReport, f: Framework) {
    let score = r.frameworks.iter().find(|s| s.framework == f);
    let _ = write!(
        out,
        "<section id=\"{}\"><h2>{} <span class=\"muted\">{}</span></h2><table><thead><tr><th>Control</th><th>Outcome</th><th>Evidence</th></tr></thead><tbody>",
        f.as_str(),
        f.title(),
        score.map_or(String::new(), |s| format!("score {:.1}", s.score))
    );
    for c in r.controls.iter().filter(|c| c.framework == f) {
        let _ = write!(
            out,
            "<tr><td class=\"id\">{}</td><td><div>{}</div><div style=\"margin-top:6px\">{}</div></td><td><ul class=\"checks\">",
            escape(&c.id),
            escape(&c.title),
            badge(c.status)
        );
        for k in &c.checks {
            let _ = write!(
                out,
                "<li><span class=\"dot {}\"></span><b>{}</b>: {}{}</li>",
                k.status.as_str(),
                escape(&k.label),
                escape(&k.detail),
                names(k)
            );
        }
        out.push_str("</ul></td></tr>");
    }
    out.push_str("</tbody></table></section>");
}
