//! The SQLite database holds the registry and every credential hash: its files are the
//! owner's alone, whether aim made them or found them.

use aim_store::AuditStore;
use aim_store::sqlite::SqliteStore;

use crate::fixtures::event;

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_readable_by_their_owner_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("aim.db");
    let files = |db: &std::path::Path| {
        ["", "-wal", "-shm"].map(|s| std::path::PathBuf::from(format!("{}{s}", db.display())))
    };
    let store = SqliteStore::open(&db).await.unwrap();
    store
        .append_event(&event("human.created", "x"))
        .await
        .unwrap();
    for f in files(&db) {
        assert!(f.exists(), "{}", f.display());
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    drop(store);
    // A database left world-readable (an older aim, a copy) is made private on open.
    for f in files(&db).iter().filter(|f| f.exists()) {
        // The WAL files may go as the closed store's connections finish.
        let _ = std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644));
    }
    assert_eq!(mode(&db), 0o644);
    let store = SqliteStore::open(&db).await.unwrap();
    store
        .append_event(&event("human.created", "y"))
        .await
        .unwrap();
    for f in files(&db) {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
}
