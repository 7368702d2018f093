//! Incentive programmes: stored progress against the bookings, and finalised programmes'
//! counters and rewards against their participants (DOMAIN.md "Incentives").

use prima_entity::enums::{IncentiveStatus, IncentiveType};
use prima_entity::{incentive_progress, incentives};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter};
use uuid::Uuid;

use super::{Discrepancy, Params, fetch};
use crate::error::Result;
use crate::incentives::facts;

/// Every participant of every ACTIVE programme holds the value a recomputation from the
/// period's bookings gives ([`crate::incentives::facts`]), and a CONVERSION_RATE row its
/// completed and closed counts (other rows keep 0). Three statements per programme (there
/// are few running at once), none per participant.
pub async fn progress_matches_bookings(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
) -> Result<Vec<Discrepancy>> {
    let mut programs =
        incentives::Entity::find().filter(incentives::Column::Status.eq(IncentiveStatus::Active));
    if let Some(venue) = venue {
        programs = programs.filter(incentives::Column::VenueId.eq(venue));
    }
    let mut found = Vec::new();
    for program in programs.all(db).await? {
        let expected = facts::of_participants(db, &program).await?;
        let rows = incentive_progress::Entity::find()
            .filter(incentive_progress::Column::IncentiveId.eq(program.id))
            .all(db)
            .await?;
        let conversion = program.r#type == IncentiveType::ConversionRate;
        for row in rows {
            let f = expected.get(&row.promoter_id).copied().unwrap_or_default();
            let want = (
                f.value(program.r#type),
                if conversion { f.completed } else { 0 },
                if conversion { f.closed } else { 0 },
            );
            let have = (
                row.current_value,
                row.completed_bookings,
                row.closed_bookings,
            );
            if have != want {
                found.push(Discrepancy {
                    kind: "incentive_progress",
                    entity: "incentive_progress",
                    id: row.id,
                    message: format!(
                        "{} of programme {}: (value, completed, closed) stored {have:?}, \
                         the period's bookings give {want:?}",
                        program.r#type, program.id
                    ),
                });
            }
        }
    }
    Ok(found)
}

#[derive(Debug, FromQueryResult)]
struct CounterRow {
    id: Uuid,
    status: String,
    participant_count: i32,
    winner_count: i32,
    total_payout: i64,
    participants: i64,
    achieved: i64,
    undecided: i64,
    rewards: i64,
    ledger: i64,
    unmatched: i64,
}

/// A programme's counters agree with its participants: `participant_count` is its rows and
/// `winner_count` its ACHIEVED ones (ACTIVE, PAUSED and COMPLETED programmes). A COMPLETED
/// one has no row left IN_PROGRESS, its `total_payout` is the sum of the rows'
/// `reward_earned`, and its INCENTIVE_PAYOUT ledger rows add up to it, one per rewarded
/// winner with that winner's amount (none paid twice, none missing).
pub async fn finalised_counters_match(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
) -> Result<Vec<Discrepancy>> {
    let params = Params::new(db.get_database_backend(), venue);
    let sql = format!(
        "SELECT * FROM (SELECT i.id, i.status, i.participant_count, i.winner_count, i.total_payout, \
           (SELECT COUNT(*) FROM incentive_progress p WHERE p.incentive_id = i.id) AS participants, \
           (SELECT COUNT(*) FROM incentive_progress p WHERE p.incentive_id = i.id \
              AND p.status = 'ACHIEVED') AS achieved, \
           (SELECT COUNT(*) FROM incentive_progress p WHERE p.incentive_id = i.id \
              AND p.status = 'IN_PROGRESS') AS undecided, \
           (SELECT CAST(COALESCE(SUM(p.reward_earned), 0) AS BIGINT) FROM incentive_progress p \
              WHERE p.incentive_id = i.id) AS rewards, \
           (SELECT CAST(COALESCE(SUM(t.amount), 0) AS BIGINT) FROM transactions t \
              WHERE t.incentive_id = i.id AND t.\"type\" = 'INCENTIVE_PAYOUT') AS ledger, \
           (SELECT COUNT(*) FROM incentive_progress p WHERE p.incentive_id = i.id \
              AND COALESCE(p.reward_earned, 0) > 0 AND 1 <> (SELECT COUNT(*) FROM transactions t \
                WHERE t.incentive_id = i.id AND t.\"type\" = 'INCENTIVE_PAYOUT' \
                  AND t.promoter_id = p.promoter_id AND t.amount = p.reward_earned)) AS unmatched \
         FROM incentives i WHERE {scope} AND i.status IN ('ACTIVE', 'PAUSED', 'COMPLETED')) c \
         WHERE c.participant_count <> c.participants OR c.winner_count <> c.achieved \
           OR (c.status = 'COMPLETED' AND (c.undecided > 0 OR c.total_payout <> c.rewards \
             OR c.ledger <> c.total_payout OR c.unmatched > 0)) \
         ORDER BY c.id",
        scope = params.venue_is("i.venue_id"),
    );
    let rows: Vec<CounterRow> = fetch(db, params, sql).await?;
    Ok(rows
        .into_iter()
        .map(|r| Discrepancy {
            kind: "incentive_counters",
            entity: "incentive",
            id: r.id,
            message: format!(
                "{}: participants {} (rows {}), winners {} (ACHIEVED {}), undecided {}, \
                 total payout {} (rewards {}, ledger {}), winners without exactly one \
                 matching reward {}",
                r.status,
                r.participant_count,
                r.participants,
                r.winner_count,
                r.achieved,
                r.undecided,
                crate::money::cents(r.total_payout),
                crate::money::cents(r.rewards),
                crate::money::cents(r.ledger),
                r.unmatched
            ),
        })
        .collect())
}
