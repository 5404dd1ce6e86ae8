//! Every importer against input it cannot trust: arbitrary bytes, and its own fixture cut
//! short or with bytes changed. Nothing may panic; a file that is read must give accounts
//! aim accepts or errors that say where.

use proptest::prelude::*;

use crate::ReadError;
use crate::csv_map::{Mapping, Rows};
use aim_domain::discovery::{Account, AccountKind};
use aim_domain::time::Timestamp;

const FIXTURES: [&str; 5] = [
    include_str!("../tests/fixtures/credential_report.csv"),
    include_str!("../tests/fixtures/authorization_details.json"),
    include_str!("../tests/fixtures/kubernetes.json"),
    include_str!("../tests/fixtures/saas_bots.csv"),
    include_str!("../tests/fixtures/credential_report_2014.csv"),
];
const MAPPING: &str = include_str!("../tests/fixtures/saas_bots.mapping");

/// Every account read is one aim would take, or an error says where it failed.
fn drain(accounts: impl Iterator<Item = Result<Account, ReadError>>) -> Result<(), TestCaseError> {
    for a in accounts.take(10_000) {
        match a {
            Ok(a) => {
                // What aim refuses is refused with a reason, never a panic.
                let _ = a.checked();
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
    Ok(())
}

/// Each reader over `bytes`.
fn read_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    let at = Timestamp::from_millis(1_772_355_600_000);
    if let Ok(r) = crate::credential_report::open(std::io::Cursor::new(bytes.to_vec())) {
        drain(r)?;
    }
    if let Ok(r) = crate::aws_authorization::read(bytes, at) {
        drain(r)?;
    }
    if let Ok(r) = crate::kubernetes::read(bytes) {
        drain(r)?;
    }
    let mapping = Mapping::parse_lines(MAPPING, AccountKind::Bot)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    if let Ok(r) = Rows::new(bytes, &mapping) {
        drain(r)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        read_all(&bytes)?;
    }

    #[test]
    fn a_fixture_cut_short_or_altered_never_panics(
        which in 0..FIXTURES.len(),
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
    ) {
        let mut bytes = FIXTURES[which].as_bytes().to_vec();
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        read_all(&bytes)?;
    }
}
