//! Helpers for this crate's unit tests.

use jamaa_settings::DatabaseSettings;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::storage::Migrator;

/// A migrated SQLite database in a fresh temporary folder, removed on drop.
pub struct TempDatabase {
    dir: std::path::PathBuf,
    pub db: DatabaseConnection,
}

impl TempDatabase {
    pub async fn new() -> TempDatabase {
        let dir = std::env::temp_dir().join(format!("jamaa-notification-test-{}", Uuid::now_v7()));
        let settings = DatabaseSettings {
            url: format!("sqlite://{}/n.db", dir.display()).into(),
            max_connections: 1,
            migrate_on_start: true,
        };
        let db = jamaa_db::connect::<Migrator>(&settings)
            .await
            .expect("database");
        TempDatabase { dir, db }
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
