//! A fresh database per test, for the service's own tests and the black-box tests.
//!
//! SQLite in memory by default. With `TEST_DATABASE_URL`
//! (`postgres://postgres@127.0.0.1:5432/postgres`), a fresh PostgreSQL database per test,
//! cloned from a template that is migrated once (named after the migrations, so a new
//! migration makes a new template) and dropped when the test ends.
//!
//! [`fixtures`] (this crate's own tests only) builds the rows those tests need.

#[cfg(test)]
pub(crate) mod fixtures;

use std::sync::atomic::{AtomicBool, Ordering};

use crate::db::{self, Db, PoolSettings};
use prima_migration::MigratorTrait;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

/// A database that exists for one test.
pub struct TestDb {
    /// The pool the server uses.
    pub db: Db,
    /// The PostgreSQL database to drop afterwards.
    postgres: Option<(String, String)>,
}

static WARNED: AtomicBool = AtomicBool::new(false);

impl TestDb {
    /// SQLite in memory, or a PostgreSQL clone of the migrated template when
    /// `TEST_DATABASE_URL` is set.
    pub async fn new() -> TestDb {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(admin) if !admin.is_empty() => Self::postgres(admin).await,
            _ => {
                if !WARNED.swap(true, Ordering::Relaxed) {
                    eprintln!("TEST_DATABASE_URL not set: tests run on SQLite in memory");
                }
                let db = db::connect("sqlite::memory:", &PoolSettings::default())
                    .await
                    .expect("opening SQLite in memory");
                db::migrate(&db).await.expect("migrating SQLite");
                TestDb { db, postgres: None }
            }
        }
    }

    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// The URL of this PostgreSQL test database, for another process to connect to
    /// (`None` for SQLite in memory, which only this process can reach).
    pub fn url(&self) -> Option<String> {
        self.postgres
            .as_ref()
            .map(|(admin, name)| with_database(admin, name))
    }

    async fn postgres(admin: String) -> TestDb {
        let template = template_name();
        let server = Database::connect(&admin)
            .await
            .expect("connecting to TEST_DATABASE_URL");
        ensure_template(&server, &admin, &template).await;
        let name = format!("prima_test_{}", uuid::Uuid::new_v4().simple());
        let mut attempts = 0;
        loop {
            let sql = format!("CREATE DATABASE {name} TEMPLATE {template}");
            match server.execute_unprepared(&sql).await {
                Ok(_) => break,
                // Another test's clone may still hold the template for a moment.
                Err(err) if attempts < 50 && err.to_string().contains("being accessed") => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(err) => panic!("cloning the template database: {err}"),
            }
        }
        server.close().await.ok();
        let url = with_database(&admin, &name);
        let db = db::connect(
            &url,
            &PoolSettings {
                max_connections: 5,
                ..PoolSettings::default()
            },
        )
        .await
        .expect("connecting to the test database");
        TestDb {
            db,
            postgres: Some((admin, name)),
        }
    }
}

impl std::ops::Deref for TestDb {
    type Target = Db;

    fn deref(&self) -> &Db {
        &self.db
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime: do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a cleanup runtime");
            runtime.block_on(async move {
                if let Ok(server) = Database::connect(&admin).await {
                    let _ = server
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                    let _ = server.close().await;
                }
            });
        })
        .join();
    }
}

/// The template's name: one per set of migrations.
fn template_name() -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for migration in prima_migration::Migrator::migrations() {
        migration.name().hash(&mut hasher);
    }
    format!("prima_template_{:016x}", hasher.finish())
}

/// The admin URL pointed at another database.
fn with_database(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin, String::new()),
    };
    let base = match base.rfind('/') {
        Some(slash) if slash > base.find("://").map_or(0, |i| i + 2) => &base[..slash],
        _ => base,
    };
    format!("{base}/{name}{query}")
}

/// Creates the migrated template once across all test processes: built under another name
/// and renamed when complete, under an advisory lock, so no test ever clones half of it.
async fn ensure_template(server: &DatabaseConnection, admin: &str, template: &str) {
    let exists = |server: &DatabaseConnection| {
        let template = template.to_owned();
        let server = server.clone();
        async move {
            server
                .query_one_raw(sea_orm::Statement::from_string(
                    server.get_database_backend(),
                    format!("SELECT 1 AS one FROM pg_database WHERE datname = '{template}'"),
                ))
                .await
                .expect("looking for the template")
                .is_some()
        }
    };
    if exists(server).await {
        return;
    }
    // A session-level advisory lock serialises the builders; the lock dies with the session.
    let lock = Database::connect(admin)
        .await
        .expect("connecting for the template lock");
    lock.execute_unprepared("SELECT pg_advisory_lock(7206117)")
        .await
        .expect("taking the template lock");
    if !exists(server).await {
        let building = format!("{template}_building");
        server
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .await
            .expect("clearing a half-built template");
        server
            .execute_unprepared(&format!("CREATE DATABASE {building}"))
            .await
            .expect("creating the template");
        let conn = Database::connect(with_database(admin, &building))
            .await
            .expect("connecting to the template");
        prima_migration::Migrator::up(&conn, None)
            .await
            .expect("migrating the template");
        conn.close().await.expect("closing the template");
        server
            .execute_unprepared(&format!("ALTER DATABASE {building} RENAME TO {template}"))
            .await
            .expect("publishing the template");
    }
    lock.execute_unprepared("SELECT pg_advisory_unlock(7206117)")
        .await
        .expect("releasing the template lock");
    lock.close().await.ok();
}
