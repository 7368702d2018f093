//! The `prima` binary as an operator runs it.

use std::process::Command;

fn prima(database: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_prima"));
    command
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", database.display()),
        )
        .env("RUST_LOG", "warn");
    command
}

fn temp_db(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("prima-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("prima.db")
}

#[test]
fn export_schema_prints_the_committed_schema_graphql() {
    let output = Command::new(env!("CARGO_BIN_EXE_prima"))
        .arg("export-schema")
        .output()
        .unwrap();
    assert!(output.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema.graphql"))
            .unwrap();
    assert!(
        String::from_utf8(output.stdout).unwrap() == committed,
        "schema.graphql differs from `prima export-schema`"
    );
}

#[test]
fn serve_help_documents_every_setting_with_its_environment_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_prima"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for setting in [
        "DATABASE_URL",
        "REDIS_URL",
        "PRIMA_BIND",
        "PRIMA_TOKEN_SECRET",
        "PRIMA_MAX_DEPTH",
        "PRIMA_MAX_COST",
        "PRIMA_MAX_BODY_BYTES",
        "PRIMA_MAX_DOCUMENT_BYTES",
        "PRIMA_MAX_TOKENS",
        "PRIMA_MAX_INPUT_DEPTH",
        "PRIMA_MAX_STRING_LENGTH",
        "PRIMA_MAX_LIST_ITEMS",
        "PRIMA_MAX_ROOT_FIELDS",
        "PRIMA_MAX_ALIASES",
        "PRIMA_WS_INIT_TIMEOUT_MS",
        "PRIMA_WS_MAX_SUBSCRIPTIONS_PER_SOCKET",
        "PRIMA_WS_MAX_SUBSCRIPTIONS_PER_USER",
        "PRIMA_WS_MAX_MESSAGE_BYTES",
        "PRIMA_WS_KEEPALIVE_MS",
        "PRIMA_INTROSPECTION",
        "PRIMA_OUTBOX_RETENTION_HOURS",
        "PRIMA_SUBSCRIPTION_RECHECK_MS",
        "PRIMA_EVENTS_CHANNEL",
        "PRIMA_CORS_ORIGINS",
        "PRIMA_LOG_FORMAT",
        "PRIMA_TRUSTED_DOCUMENTS",
    ] {
        assert!(
            help.contains(setting),
            "`prima serve --help` does not mention {setting}"
        );
    }
}

#[test]
fn migrate_seed_and_create_user_work_on_a_fresh_sqlite_file() {
    let db = temp_db("ops");
    let _ = std::fs::remove_file(&db);
    assert!(prima(&db).arg("migrate").status().unwrap().success());
    let seeded = prima(&db)
        .args(["seed", "--bookings", "120"])
        .output()
        .unwrap();
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    assert!(String::from_utf8_lossy(&seeded.stdout).contains("bookings: 120"));
    // The load is checkpointed: no write-ahead log is left behind.
    let wal = db.with_file_name("prima.db-wal");
    let left = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(left, 0, "{} holds {left} bytes", wal.display());
    // Seeding twice refuses rather than duplicating the portfolio.
    assert_eq!(
        prima(&db)
            .args(["seed", "--bookings", "10"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2),
        "an error exits 2 (1 is kept for `prima check` finding discrepancies)"
    );

    let created = prima(&db)
        .args([
            "create-user",
            "--email",
            "ops@example.com",
            "--password",
            "a-long-password",
            "--first-name",
            "Olga",
            "--last-name",
            "Ops",
            "--role",
            "admin",
        ])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let again = prima(&db)
        .args([
            "create-user",
            "--email",
            "OPS@example.com",
            "--password",
            "a-long-password",
            "--first-name",
            "Olga",
            "--last-name",
            "Ops",
        ])
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "a taken email is refused, whatever its case"
    );
    let short = prima(&db)
        .args([
            "create-user",
            "--email",
            "new@example.com",
            "--password",
            "short",
            "--first-name",
            "N",
            "--last-name",
            "N",
        ])
        .output()
        .unwrap();
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 8"));
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

#[test]
fn logs_are_json_by_setting_and_never_coloured_off_a_terminal() {
    let db = temp_db("logs");
    let _ = std::fs::remove_file(&db);
    let json = prima(&db)
        .env("RUST_LOG", "info")
        .env("PRIMA_LOG_FORMAT", "json")
        .args(["seed", "--bookings", "20"])
        .output()
        .unwrap();
    assert!(json.status.success());
    let lines: Vec<String> = String::from_utf8_lossy(&json.stderr)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect();
    assert!(!lines.is_empty(), "seeding logs at info");
    for line in &lines {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("not a JSON line ({err}): {line}"));
        assert!(
            value["level"].is_string() && value["timestamp"].is_string(),
            "{line}"
        );
    }
    let text = prima(&db)
        .env("RUST_LOG", "info")
        .args(["seed", "--bookings", "20"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&text.stderr);
    assert!(
        !stderr.contains('\u{1b}'),
        "no ANSI escapes into a pipe: {stderr:?}"
    );
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

#[test]
fn an_unreachable_postgresql_is_said_once_with_its_cause() {
    // Port 1 on the loopback: nothing listens, every connect is refused at once.
    let output = Command::new(env!("CARGO_BIN_EXE_prima"))
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/prima")
        .env("RUST_LOG", "off")
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .count();
    assert_eq!(lines, 1, "one line: {stderr}");
    assert_eq!(
        stderr.matches("connecting to").count(),
        1,
        "said once: {stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("connection refused"),
        "the root cause, not only a pool timeout: {stderr}"
    );
    assert!(!stderr.contains("pool timed out"), "{stderr}");
}

#[test]
fn every_flag_of_serve_is_in_the_readmes_configuration_table() {
    let output = Command::new(env!("CARGO_BIN_EXE_prima"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let table: Vec<&str> = readme
        .lines()
        .filter(|line| line.starts_with("| `--"))
        .collect();
    let mut flags = 0;
    for word in help.split_whitespace() {
        let Some(flag) = word.strip_prefix("--") else {
            continue;
        };
        let flag: String = flag
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '-')
            .collect();
        if flag.is_empty() || flag == "help" || flag == "version" {
            continue;
        }
        flags += 1;
        let row = format!("| `--{flag}` |");
        assert!(
            table.iter().any(|line| line.starts_with(&row)),
            "README.md's configuration table has no row for --{flag}"
        );
    }
    assert!(flags > 40, "{flags} flags found in `prima serve --help`");
}
