//! Database connection, the one way a Jamaa service opens its own database.
//!
//! The URL picks the engine: `sqlite://path/file.db` (created if missing; the embedded default)
//! or `postgres://…` (production). Each service owns its database; no service reads another's.

use std::time::Duration;

use jamaa_settings::{DatabaseSettings, ExposeSecret};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr,
    TransactionTrait,
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

    let mut options = ConnectOptions::new(url.clone());
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
        migrate::<M>(&db, &url).await?;
    }
    Ok(db)
}

/// The PostgreSQL advisory lock that serialises migrations of replicas starting together.
const MIGRATION_LOCK_KEY: i64 = 0x6a61_6d61_615f_6d67; // "jamaa_mg"

/// Applies the pending migrations of `M`. On PostgreSQL, replicas starting at the same time take
/// turns under an advisory lock, held in a transaction on a connection of its own (so it cannot
/// starve the pool), and the later ones find nothing left to do.
async fn migrate<M: MigratorTrait>(db: &DatabaseConnection, url: &str) -> Result<(), DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        M::up(db, None).await?;
        tracing::info!("database migrations applied");
        return Ok(());
    }
    let mut options = ConnectOptions::new(url.to_string());
    options.max_connections(1).sqlx_logging(false);
    let lock_connection = Database::connect(options).await?;
    let lock = lock_connection.begin().await?;
    lock.execute_raw(sea_orm::Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [MIGRATION_LOCK_KEY.into()],
    ))
    .await?;
    let result = M::up(db, None).await;
    // Ending the transaction releases the lock, whatever the outcome.
    lock.rollback().await?;
    let _ = lock_connection.close().await;
    result?;
    tracing::info!("database migrations applied");
    Ok(())
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

/// Adds `column` to `table` in a migration (ALTER TABLE … ADD COLUMN, which SQLite and
/// PostgreSQL both take for a nullable column or one with a default).
pub async fn add_column(
    manager: &sea_orm_migration::SchemaManager<'_>,
    table: &str,
    column: &mut sea_orm_migration::prelude::ColumnDef,
) -> Result<(), DbErr> {
    use sea_orm_migration::prelude::Table;
    manager
        .alter_table(
            Table::alter()
                .table(table.to_string())
                .add_column(column.take())
                .to_owned(),
        )
        .await
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
