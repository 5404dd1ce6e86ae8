//! Discovered accounts as tests compare them.

use std::collections::BTreeMap;

use aim_client::Client;

/// The findings of each present account of `source`, by account name, as `kind` or
/// `kind@credential`, in the order aim gives them.
pub async fn findings_by_name(client: &Client, source: &str) -> BTreeMap<String, Vec<String>> {
    let page = client
        .discovered_accounts(&vec![
            ("source", source.to_owned()),
            ("presence", "present".to_owned()),
            ("limit", "1000".to_owned()),
        ])
        .await
        .expect("list discovered accounts");
    page.items
        .into_iter()
        .map(|a| {
            let f = a
                .findings
                .iter()
                .map(|f| match &f.credential {
                    Some(c) => format!("{}@{c}", f.kind),
                    None => f.kind.to_string(),
                })
                .collect();
            (a.name, f)
        })
        .collect()
}
