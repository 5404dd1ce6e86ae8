//! `aim report`: compliance reports, rendered by aim as Markdown, HTML or JSON, and the
//! trend of their scores.

use aim_api::reports::ReportFormat;
use aim_client::Client;
use aim_domain::ids::ReportId;
use anyhow::Context;

use crate::args::{Format, ReportCommand, ReportFormatArg, ReportOut};
use crate::exit::Local;
use crate::output::{Table, emit};

pub async fn run(client: &Client, format: Format, cmd: ReportCommand) -> anyhow::Result<()> {
    match cmd {
        ReportCommand::Compliance(args) => {
            let body = client.compliance_report_as(wire(args.out.format)).await?;
            write(&args.out, &body)
        }
        ReportCommand::Show { id, out } => {
            let id: ReportId = id
                .parse()
                .map_err(|_| Local::Invalid(format!("`{id}` is not a report id (a UUID)")))?;
            let body = client.kept_report_as(id, wire(out.format)).await?;
            write(&out, &body)
        }
        ReportCommand::List { limit } => {
            let list = client.compliance_reports(Some(limit)).await?;
            emit(format, &list, |l| {
                let mut t = Table::new(&["ID", "GENERATED", "BY", "SCORE", "BY FRAMEWORK"]);
                for r in &l.items {
                    let frameworks: Vec<String> = r
                        .frameworks
                        .iter()
                        .map(|f| format!("{} {:.0}", f.framework, f.score))
                        .collect();
                    t.row(vec![
                        r.id.to_string(),
                        r.generated_at.to_string(),
                        r.generated_by.clone(),
                        format!("{:.1}", r.score),
                        frameworks.join(", "),
                    ]);
                }
                t.print();
            })
        }
    }
}

fn wire(f: ReportFormatArg) -> ReportFormat {
    match f {
        ReportFormatArg::Md => ReportFormat::Md,
        ReportFormatArg::Html => ReportFormat::Html,
        ReportFormatArg::Json => ReportFormat::Json,
    }
}

fn write(out: &ReportOut, body: &str) -> anyhow::Result<()> {
    match &out.out {
        Some(path) => {
            std::fs::write(path, body)
                .with_context(|| format!("writing the report to {}", path.display()))?;
            eprintln!("report written to {}", path.display());
            Ok(())
        }
        None => crate::commands::write_stdout(body.as_bytes()),
    }
}
