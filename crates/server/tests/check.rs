//! `prima check` as an operator runs it: on a freshly seeded SQLite file it finds nothing and
//! exits 0; after a row is corrupted behind the API's back it names the row and exits 1.

use std::process::{Command, Output};

use prima_entity::{bookings, guest_venue_stats, guests, venues};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, Database, EntityTrait, QueryFilter, QueryOrder};

fn database_url(database: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", database.display())
}

fn prima(database: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prima"))
        .args(args)
        .env("DATABASE_URL", database_url(database))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Cents as the check prints money: `12.34`.
fn spent(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// A migrated SQLite file in a fresh directory, seeded with 200 demo bookings.
fn seeded_file(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("prima-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("prima.db");
    let migrated = prima(&db, &["migrate"]);
    assert!(migrated.status.success(), "{}", text(&migrated));
    let seeded = prima(&db, &["seed", "--bookings", "200"]);
    assert!(seeded.status.success(), "{}", text(&seeded));
    (dir, db)
}

fn text(output: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn check_passes_on_a_seeded_file_and_names_a_corrupted_guest() {
    let (dir, db) = seeded_file("check");

    let clean = prima(&db, &["check"]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    let stdout = String::from_utf8_lossy(&clean.stdout);
    assert_eq!(stdout.lines().count(), 1, "only the summary: {stdout}");
    assert!(
        stdout.starts_with("checked 200 bookings, ")
            && stdout.contains(" 50 guests, ")
            && stdout.trim_end().ends_with(": 0 discrepancies found"),
        "{stdout}"
    );

    // Corrupt one guest's total behind the API's back, and note a venue where that guest
    // never booked.
    let conn = Database::connect(database_url(&db)).await.unwrap();
    let guest = guests::Entity::find()
        .order_by_asc(guests::Column::Id)
        .one(&conn)
        .await
        .unwrap()
        .unwrap();
    guests::Entity::update_many()
        .col_expr(
            guests::Column::TotalSpent,
            Expr::col(guests::Column::TotalSpent).add(1_234),
        )
        .filter(guests::Column::Id.eq(guest.id))
        .exec(&conn)
        .await
        .unwrap();
    let booked_at: Vec<_> = bookings::Entity::find()
        .filter(bookings::Column::GuestId.eq(guest.id))
        .all(&conn)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.venue_id)
        .collect();
    let elsewhere = venues::Entity::find()
        .filter(venues::Column::Id.is_not_in(booked_at))
        .one(&conn)
        .await
        .unwrap()
        .expect("a venue the guest never booked at");
    conn.close().await.unwrap();

    let broken = prima(&db, &["check"]);
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken));
    let stdout = String::from_utf8_lossy(&broken.stdout);
    let lines: Vec<_> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(
        lines[0],
        format!(
            "guest_aggregate guest {}: total_spent: stored {}, recomputed {}",
            guest.id,
            spent(guest.total_spent + 1_234),
            spent(guest.total_spent)
        )
    );
    // The guest row no longer equals the sum of its per-venue rows either.
    assert_eq!(
        lines[1],
        format!(
            "guest_venue_sum guest {}: total_spent: guest row {}, sum over venues {}",
            guest.id,
            spent(guest.total_spent + 1_234),
            spent(guest.total_spent)
        )
    );
    assert!(lines[2].ends_with(": 2 discrepancies found"), "{stdout}");

    // Scoped to a venue where the guest never booked, the check passes again.
    let scoped = prima(&db, &["check", "--venue", &elsewhere.id.to_string()]);
    assert_eq!(scoped.status.code(), Some(0), "{}", text(&scoped));

    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn check_names_a_tampered_per_venue_guest_row() {
    let (dir, db) = seeded_file("check-guest-venue");
    let conn = Database::connect(database_url(&db)).await.unwrap();
    let row = guest_venue_stats::Entity::find()
        .order_by_asc(guest_venue_stats::Column::GuestId)
        .order_by_asc(guest_venue_stats::Column::VenueId)
        .one(&conn)
        .await
        .unwrap()
        .expect("the seed fills guest_venue_stats");
    guest_venue_stats::Entity::update_many()
        .col_expr(
            guest_venue_stats::Column::TotalSpent,
            Expr::col(guest_venue_stats::Column::TotalSpent).add(500),
        )
        .filter(guest_venue_stats::Column::GuestId.eq(row.guest_id))
        .filter(guest_venue_stats::Column::VenueId.eq(row.venue_id))
        .exec(&conn)
        .await
        .unwrap();
    let guest = guests::Entity::find_by_id(row.guest_id)
        .one(&conn)
        .await
        .unwrap()
        .unwrap();
    conn.close().await.unwrap();

    let broken = prima(&db, &["check"]);
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken));
    let stdout = String::from_utf8_lossy(&broken.stdout);
    let lines: Vec<_> = stdout.lines().collect();
    assert_eq!(
        lines[..2],
        [
            format!(
                "guest_venue_aggregate guest {}: venue {}: total_spent: stored {}, recomputed {}",
                row.guest_id,
                row.venue_id,
                spent(row.total_spent + 500),
                spent(row.total_spent)
            ),
            format!(
                "guest_venue_sum guest {}: total_spent: guest row {}, sum over venues {}",
                row.guest_id,
                spent(guest.total_spent),
                spent(guest.total_spent + 500)
            ),
        ],
        "{stdout}"
    );
    assert!(lines[2].ends_with(": 2 discrepancies found"), "{stdout}");

    // Scoped to the row's venue the check finds it too.
    let scoped = prima(&db, &["check", "--venue", &row.venue_id.to_string()]);
    assert_eq!(scoped.status.code(), Some(1), "{}", text(&scoped));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_help_documents_the_venue_option() {
    let output = Command::new(env!("CARGO_BIN_EXE_prima"))
        .args(["check", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(help.contains("--venue <VENUE>"), "{help}");
    assert!(help.contains("Check only this venue"), "{help}");
}
