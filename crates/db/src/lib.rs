//! Database connection, the one way a Jamaa service opens its own database.
//!
//! The URL picks the engine: `sqlite://path/file.db` (created if missing; the embedded default)
//! or `postgres://…` (production). Each service owns its database; no service reads another's.

use std::time::Duration;

use jamaa_settings::{DatabaseSettings, ExposeSecret};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr,
};
use sea_orm_migration::MigratorTrait;

pub use sea_orm;
pub use sea_orm_migration;

/// Opens the database named by `settings.url` and, when `settings.migrate_on_start`, applies the
/// pending migrations of `M`.
pub async fn connect<M: MigratorTrait>(
    settings: &DatabaseSettings,
) -> Result<DatabaseConnection, DbErr> {
    let url = settings.url.expose_secret();
    let sqlite = url.starts_with("sqlite:");
    let url = if sqlite {
        prepare_sqlite_url(url)?
    } else {
        url.to_string()
    };

    let mut options = ConnectOptions::new(url);
    options
        // SQLite allows one writer at a time; one pooled connection avoids "database is locked"
        // when two transactions would upgrade from read to write together.
        .max_connections(if sqlite { 1 } else { settings.max_connections })
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    let db = Database::connect(options).await?;
    if db.get_database_backend() == DatabaseBackend::Sqlite {
        db.execute_unprepared("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")
            .await?;
    }
    if settings.migrate_on_start {
        M::up(&db, None).await?;
        tracing::info!("database migrations applied");
    }
    Ok(db)
}

/// Adds `mode=rwc` (create if missing) and creates the file's folder.
fn prepare_sqlite_url(url: &str) -> Result<String, DbErr> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if !path.is_empty()
        && !path.starts_with(':')
        && let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|error| {
            DbErr::Custom(format!("cannot create {}: {error}", parent.display()))
        })?;
    }
    Ok(if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_missing_files() {
        let dir = std::env::temp_dir().join(format!("jamaa-db-test-{}", std::process::id()));
        let url = format!("sqlite://{}/nested/x.db", dir.display());
        let prepared = prepare_sqlite_url(&url).expect("prepared");
        assert!(prepared.ends_with("?mode=rwc"));
        assert!(dir.join("nested").is_dir());
        let _ = std::fs::remove_dir_all(dir);
    }
}
