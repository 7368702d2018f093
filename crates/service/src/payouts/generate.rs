//! Payout generation (DOMAIN.md "Payouts"): what a promoter has earned and not yet been paid
//! at a venue for a period becomes one DRAFT payout, exactly once.
//!
//! - **What a payout takes.** Every CONFIRMED PROMOTER_COMMISSION, INCENTIVE_PAYOUT and
//!   ADJUSTMENT transaction of the promoter at the venue created in `[periodFrom,
//!   periodTo)` and in no live payout, plus the *carried balance*: the promoter's unpaid
//!   transactions created before `periodFrom`, when together they are negative (clawbacks
//!   larger than what was earned with them: DOMAIN.md's "negative balance carries
//!   forward"). Unpaid transactions from before the period that add up to something
//!   positive stay where they are: they belong to their own period's payout.
//! - **A negative total creates nothing.** The transactions stay unpaid and are the next
//!   period's carried balance; the answer says how much was carried
//!   ([`Outcome::CarriedNegative`]). Nothing to take is [`Outcome::Nothing`].
//! - **Exactly once.** Generating again for the same promoter, venue and period returns the
//!   payout that exists unless it FAILED ([`Outcome::Existing`]); a period overlapping
//!   another live payout of the promoter is a CONFLICT. Of concurrent first generations,
//!   one inserts (the partial unique index `uq_payouts_live_period`) and the others, whose
//!   inserts fail on it, roll back and answer with the winner's payout.
//! - **The claim decides.** The payout's transactions are claimed with one conditional
//!   `UPDATE transactions SET payout_id = .. WHERE payout_id IS NULL AND ..`, and its
//!   amounts and items are made afterwards, in the same transaction, from the rows that now
//!   point at it (`WHERE payout_id = ..`), so a transaction is counted by the payout that
//!   claimed it and by no other; the partial unique index `uq_payout_items_live_transaction`
//!   holds the same rule in the database.
//! - **Periods must have ended** (`periodTo` not after now): a payout generated while its
//!   period runs would leave the rest of the period's earnings to no payout.
//! - Statements per promoter: a handful, none growing with the number of bookings
//!   (bench/README.md "Payout generation").

use chrono::{DateTime, TimeDelta, Utc};
use prima_entity::enums::{PayoutMethod, PayoutStatus, TransactionStatus, TransactionType};
use prima_entity::{payout_items, payouts, promoters, transactions, venues};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::{Change, PayoutAction};
use crate::access::{Actor, Capability, not_found_as};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::idempotency::{self, Key, Seen};
use crate::tail::Tail;
use crate::validate::money_units;

/// The longest period one payout may cover.
pub const MAX_PERIOD: TimeDelta = TimeDelta::days(366);

/// The types of transaction a payout pays.
pub const PAYABLE: [TransactionType; 3] = [
    TransactionType::PromoterCommission,
    TransactionType::IncentivePayout,
    TransactionType::Adjustment,
];

/// The most promoters one venue-wide run pays (its answer lists each): a larger venue
/// generates promoter by promoter (`generatePayout`).
pub const MAX_PROMOTERS_PER_RUN: u64 = 1000;

/// A payout to generate.
#[derive(Debug, Clone)]
pub struct Request {
    /// The venue that pays.
    pub venue_id: Uuid,
    /// One of its promoters.
    pub promoter_id: Uuid,
    /// Start of the period (inclusive).
    pub period_from: DateTime<Utc>,
    /// End of the period (exclusive); not after now.
    pub period_to: DateTime<Utc>,
    /// When it is to be paid; not before `period_to` (default: now).
    pub scheduled_for: Option<DateTime<Utc>>,
    /// How it is paid (default BANK_TRANSFER).
    pub method: Option<PayoutMethod>,
    /// Fees deducted from it, in the venue's currency (default 0).
    pub fees: Option<Decimal>,
    /// Stripe-style idempotency key (DOMAIN.md "Idempotency").
    pub idempotency_key: Option<String>,
}

/// What a generation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// A new DRAFT payout.
    Created,
    /// The payout this promoter, venue and period already had.
    Existing,
    /// The unpaid transactions came to less than zero: no payout; the balance is carried
    /// into the next period's.
    CarriedNegative,
    /// Nothing unpaid in the period.
    Nothing,
}

/// The answer for one promoter.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The promoter.
    pub promoter_id: Uuid,
    /// What happened.
    pub outcome: Outcome,
    /// The payout, when there is one (created or existing).
    pub payout: Option<payouts::Model>,
    /// What the promoter's transactions came to, cents: the payout's amount before fees, or
    /// the negative balance carried (0 for nothing).
    pub balance: i64,
    /// The venue's currency.
    pub currency: String,
}

/// Generates the payout of one promoter at one venue for a period (ADMIN or OWNER at the
/// venue); see the module documentation for what it takes and when it creates nothing.
pub async fn generate_payout(db: &Db, actor: &Actor, request: Request) -> Result<Generated> {
    generate_payout_at(db, actor, request, crate::time::now()).await
}

/// [`generate_payout`] at a given instant.
#[tracing::instrument(skip_all, fields(venue = %request.venue_id, promoter = %request.promoter_id))]
pub async fn generate_payout_at(
    db: &Db,
    actor: &Actor,
    request: Request,
    now: DateTime<Utc>,
) -> Result<Generated> {
    let plan = Plan::checked(&request, now)?;
    let key = request
        .idempotency_key
        .as_deref()
        .map(|key| Key::new(key, "generatePayout", &fingerprint(&request, &plan)))
        .transpose()?;
    let venue = venue_for(db, actor, request.venue_id).await?;
    let promoter = promoters::Entity::find_by_id(request.promoter_id)
        .one(&db.conn)
        .await?
        .filter(|p| p.venue_id == venue.id)
        .ok_or_else(not_a_promoter)?;
    if let Some(key) = &key
        && let Seen::Replay(id) = idempotency::lookup(&db.conn, actor.user_id, key, now).await?
    {
        return replay(db, id, &venue).await;
    }
    let generated = one(db, actor, &plan, &venue, promoter.id, key.as_ref(), now).await?;
    Ok(generated)
}

/// The venue, which the caller must administer (payouts are money out: DOMAIN.md "Access").
pub(super) async fn venue_for(db: &Db, actor: &Actor, venue_id: Uuid) -> Result<venues::Model> {
    actor
        .require(venue_id, Capability::Administer)
        .map_err(not_found_as("venue"))?;
    venues::Entity::find_by_id(venue_id)
        .one(&db.conn)
        .await?
        .ok_or(Error::NotFound { what: "venue" })
}

fn not_a_promoter() -> Error {
    Error::invalid("promoterId", "`promoterId` is not a promoter of this venue")
}

/// A checked request's period and terms.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub scheduled_for: DateTime<Utc>,
    pub method: PayoutMethod,
    pub fees: i64,
}

impl Plan {
    /// Checks a period: it ends after it starts, covers at most [`MAX_PERIOD`] and has
    /// ended; a payment date not before its end; fees in whole cents.
    pub(super) fn period(
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        scheduled_for: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Plan> {
        if to <= from {
            return Err(Error::invalid(
                "periodTo",
                "`periodTo` must be after `periodFrom` (the period is [periodFrom, periodTo))",
            ));
        }
        if to - from > MAX_PERIOD {
            return Err(Error::invalid(
                "periodTo",
                format!("a payout covers at most {} days", MAX_PERIOD.num_days()),
            ));
        }
        if to > now {
            return Err(Error::invalid(
                "periodTo",
                "`periodTo` is in the future: a period is paid out once it has ended",
            ));
        }
        let scheduled_for = scheduled_for.unwrap_or(now);
        if scheduled_for < to {
            return Err(Error::invalid(
                "scheduledFor",
                "`scheduledFor` must not be before `periodTo`",
            ));
        }
        Ok(Plan {
            from,
            to,
            scheduled_for,
            method: PayoutMethod::BankTransfer,
            fees: 0,
        })
    }

    fn checked(request: &Request, now: DateTime<Utc>) -> Result<Plan> {
        let mut plan = Plan::period(
            request.period_from,
            request.period_to,
            request.scheduled_for,
            now,
        )?;
        plan.method = request.method.unwrap_or(PayoutMethod::BankTransfer);
        plan.fees = request
            .fees
            .map(|fees| money_units("fees", fees, 9_999_999_999))
            .transpose()?
            .unwrap_or(0);
        Ok(plan)
    }
}

/// What an idempotency key fingerprints: the request as it will be carried out.
fn fingerprint(request: &Request, plan: &Plan) -> serde_json::Value {
    json!({
        "venueId": request.venue_id,
        "promoterId": request.promoter_id,
        "periodFrom": plan.from,
        "periodTo": plan.to,
        "scheduledFor": request.scheduled_for,
        "method": plan.method,
        "fees": plan.fees,
    })
}

/// The answer to a retry with a used key: the payout it created, as it is now.
async fn replay(db: &Db, id: Uuid, venue: &venues::Model) -> Result<Generated> {
    let payout = payouts::Entity::find_by_id(id)
        .one(&db.conn)
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("an idempotency key's payout is gone")))?;
    Ok(Generated {
        promoter_id: payout.promoter_id.unwrap_or_default(),
        outcome: Outcome::Existing,
        balance: payout.amount + payout.fees_amount,
        payout: Some(payout),
        currency: venue.currency.clone(),
    })
}

/// Sums of a promoter's unpaid transactions before and in a period.
#[derive(Debug, Default, FromQueryResult)]
struct Unpaid {
    before: i64,
    before_count: i64,
    within: i64,
    within_count: i64,
}

/// Generates for one promoter (already checked to be the venue's), retried on transient
/// failures; a lost race for the period answers with the winner's payout.
pub(super) async fn one(
    db: &Db,
    actor: &Actor,
    plan: &Plan,
    venue: &venues::Model,
    promoter: Uuid,
    key: Option<&Key>,
    now: DateTime<Utc>,
) -> Result<Generated> {
    let answer = |outcome, payout: Option<payouts::Model>, balance| Generated {
        promoter_id: promoter,
        outcome,
        payout,
        balance,
        currency: venue.currency.clone(),
    };
    let attempt = crate::db::retry_transient("generatePayout", || async move {
        write(db, actor, plan, venue, promoter, key, now).await
    })
    .await;
    match attempt? {
        Written::Done(outcome, payout, balance) => Ok(answer(outcome, payout.map(|p| *p), balance)),
        Written::Lost => {
            let txn = db.conn.begin().await?;
            let found = overlapping(&txn, venue.id, promoter, plan).await?;
            txn.commit().await?;
            match found.into_iter().find(|p| same_period(p, plan)) {
                Some(p) => {
                    let balance = p.amount + p.fees_amount;
                    Ok(answer(Outcome::Existing, Some(p), balance))
                }
                None => Err(Error::Conflict(
                    "another payout of this promoter was generated meanwhile; try again".into(),
                )),
            }
        }
    }
}

/// How a generation's transaction ended.
enum Written {
    /// `(outcome, payout, balance)`.
    Done(Outcome, Option<Box<payouts::Model>>, i64),
    /// A concurrent generation inserted the period's payout first (and this one rolled back).
    Lost,
}

fn same_period(payout: &payouts::Model, plan: &Plan) -> bool {
    payout.period_from == plan.from && payout.period_to == plan.to
}

/// The live payouts (not FAILED) of the promoter at the venue whose periods overlap the
/// plan's.
async fn overlapping(
    txn: &impl ConnectionTrait,
    venue: Uuid,
    promoter: Uuid,
    plan: &Plan,
) -> Result<Vec<payouts::Model>> {
    Ok(payouts::Entity::find()
        .filter(payouts::Column::VenueId.eq(venue))
        .filter(payouts::Column::PromoterId.eq(promoter))
        .filter(payouts::Column::Status.ne(PayoutStatus::Failed))
        .filter(payouts::Column::PeriodFrom.lt(plan.to))
        .filter(payouts::Column::PeriodTo.gt(plan.from))
        .order_by_asc(payouts::Column::PeriodFrom)
        .all(txn)
        .await?)
}

/// The promoter's earned, unpaid, payable transactions at the venue created before `to`.
/// The conditions of the partial index (`idx_transactions_unsettled`) are written as
/// literals: neither database proves that a bound parameter meets an index's predicate.
fn unpaid_of(venue: Uuid, promoter: Uuid, to: DateTime<Utc>) -> sea_orm::Condition {
    debug_assert_eq!(TransactionStatus::Confirmed.to_string(), "CONFIRMED");
    sea_orm::Condition::all()
        .add(transactions::Column::VenueId.eq(venue))
        .add(transactions::Column::PromoterId.eq(promoter))
        .add(Expr::cust(r#""transactions"."status" = 'CONFIRMED'"#))
        .add(transactions::Column::PayoutId.is_null())
        .add(Expr::cust(
            r#""transactions"."type" IN ('PROMOTER_COMMISSION', 'INCENTIVE_PAYOUT', 'ADJUSTMENT')"#,
        ))
        .add(transactions::Column::CreatedAt.lt(to))
}

/// Whether the promoter has an unpaid negative transaction (a clawback, a correction)
/// created before `from`: only then can a negative balance be carried into the period
/// (one probe of `idx_transactions_unsettled_negative`, which holds the unsettled ones:
/// the row says whether it is unpaid).
async fn owes_before(
    txn: &impl ConnectionTrait,
    venue: Uuid,
    promoter: Uuid,
    from: DateTime<Utc>,
) -> Result<bool> {
    let found: Option<Uuid> = transactions::Entity::find()
        .select_only()
        .column(transactions::Column::Id)
        .filter(transactions::Column::VenueId.eq(venue))
        .filter(transactions::Column::PromoterId.eq(promoter))
        .filter(Expr::cust(r#""transactions"."status" = 'CONFIRMED'"#))
        .filter(transactions::Column::PayoutId.is_null())
        .filter(Expr::cust(r#""transactions"."amount" < 0"#))
        .filter(transactions::Column::CreatedAt.lt(from))
        .into_tuple()
        .one(txn)
        .await?;
    Ok(found.is_some())
}

/// The sums and counts of the unpaid transactions in the period and, when a negative
/// balance may be carried ([`owes_before`]), before it: two statements at most, each
/// reading only the promoter's unsettled rows (what is owed and what sits in payouts not
/// yet completed; never the paid history).
async fn unpaid(
    txn: &impl ConnectionTrait,
    venue: Uuid,
    promoter: Uuid,
    plan: &Plan,
) -> Result<Unpaid> {
    let mut condition = unpaid_of(venue, promoter, plan.to);
    if !owes_before(txn, venue, promoter, plan.from).await? {
        condition = condition.add(transactions::Column::CreatedAt.gte(plan.from));
    }
    let before = transactions::Column::CreatedAt.lt(plan.from);
    let amount = Expr::col(transactions::Column::Amount);
    let sum_if = super::balance::sum_if;
    let found = transactions::Entity::find()
        .select_only()
        .expr_as(sum_if(before.clone(), amount.clone()), "before")
        .expr_as(sum_if(before.clone(), Expr::val(1)), "before_count")
        .expr_as(sum_if(before.clone().not(), amount), "within")
        .expr_as(sum_if(before.not(), Expr::val(1)), "within_count")
        .filter(condition)
        .into_model::<Unpaid>()
        .one(txn)
        .await?;
    Ok(found.unwrap_or_default())
}

/// The generation's transaction: [`decide`], then [`create`] when there is a payout to make.
async fn write(
    db: &Db,
    actor: &Actor,
    plan: &Plan,
    venue: &venues::Model,
    promoter: Uuid,
    key: Option<&Key>,
    now: DateTime<Utc>,
) -> Result<Written> {
    let txn = db.conn.begin().await?;
    let carried = match decide(&txn, plan, venue.id, promoter).await? {
        Decided::Answer(written) => return Ok(written),
        Decided::Take { carried } => carried,
    };
    let id = Uuid::new_v4();
    let row = new_model(id, actor, plan, venue, promoter, now);
    let inserted = payouts::Entity::insert(sea_orm::IntoActiveModel::into_active_model(row))
        .exec_without_returning(&txn)
        .await;
    if let Err(err) = inserted {
        if matches!(
            err.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        ) {
            return Ok(Written::Lost);
        }
        return Err(err.into());
    }
    let totals = claim(&txn, id, venue.id, promoter, plan, carried, now).await?;
    if totals.total() < 0 {
        // What was unpaid changed between the sums and the claim: carry what is there now.
        txn.rollback().await?;
        return Ok(Written::Done(
            Outcome::CarriedNegative,
            None,
            totals.total(),
        ));
    }
    let payout = create(&txn, actor, plan, venue, (id, promoter), totals, key, now).await?;
    txn.commit().await?;
    db.relay.ring();
    Ok(Written::Done(
        Outcome::Created,
        Some(Box::new(payout)),
        totals.total(),
    ))
}

/// What the reads of a generation decided.
enum Decided {
    /// The answer, with nothing to write: the period's payout exists, or nothing (or a
    /// negative balance) is unpaid.
    Answer(Written),
    /// A payout is to be made of the period's unpaid transactions, and of the earlier ones
    /// too when `carried` (their negative balance).
    Take { carried: bool },
}

/// The period's payouts, the sums, then the payouts again: a concurrent generation that
/// committed after the sums were read (taking what they counted) is seen by the second read,
/// so its payout is the answer, never "nothing" (PostgreSQL reads each statement afresh). A
/// payout already there answers at once (a repeated run costs one read). A live payout of
/// another, overlapping period is a CONFLICT.
async fn decide(
    txn: &DatabaseTransaction,
    plan: &Plan,
    venue: Uuid,
    promoter: Uuid,
) -> Result<Decided> {
    let existing = |found: &[payouts::Model]| {
        found.iter().find(|p| same_period(p, plan)).map(|p| {
            let balance = p.amount + p.fees_amount;
            Decided::Answer(Written::Done(
                Outcome::Existing,
                Some(Box::new(p.clone())),
                balance,
            ))
        })
    };
    if let Some(answer) = existing(&overlapping(txn, venue, promoter, plan).await?) {
        return Ok(answer);
    }
    let sums = unpaid(txn, venue, promoter, plan).await?;
    let found = overlapping(txn, venue, promoter, plan).await?;
    if let Some(answer) = existing(&found) {
        return Ok(answer);
    }
    if let Some(other) = found.first() {
        return Err(Error::Conflict(format!(
            "this period overlaps payout {} of the promoter for [{}, {}), which is {}",
            other.id, other.period_from, other.period_to, other.status
        )));
    }
    let carried = sums.before < 0;
    let (count, total) = if carried {
        (
            sums.before_count + sums.within_count,
            sums.before + sums.within,
        )
    } else {
        (sums.within_count, sums.within)
    };
    Ok(match (count, total) {
        (0, _) => Decided::Answer(Written::Done(Outcome::Nothing, None, 0)),
        (_, total) if total < 0 => {
            Decided::Answer(Written::Done(Outcome::CarriedNegative, None, total))
        }
        _ => Decided::Take { carried },
    })
}

/// The rest of a new payout's transaction once its transactions are claimed: the fees
/// checked against what it pays, its items, totals, idempotency key, audit row and event.
#[allow(clippy::too_many_arguments)]
async fn create(
    txn: &DatabaseTransaction,
    actor: &Actor,
    plan: &Plan,
    venue: &venues::Model,
    (id, promoter): (Uuid, Uuid),
    totals: Totals,
    key: Option<&Key>,
    now: DateTime<Utc>,
) -> Result<payouts::Model> {
    if totals.total() < plan.fees {
        return Err(Error::invalid(
            "fees",
            format!(
                "`fees` ({}) exceed what the payout pays ({} {})",
                crate::money::cents(plan.fees),
                crate::money::cents(totals.total()),
                venue.currency
            ),
        ));
    }
    let payout = totals.apply(new_model(id, actor, plan, venue, promoter, now), plan.fees);
    let mut tail = Tail::new();
    tail.update(totals.update(id, plan.fees));
    if let Some(key) = key {
        idempotency::record(txn, actor.user_id, key, id, now).await?;
    }
    let change = Change {
        actor,
        action: PayoutAction::Generated,
        from: None,
        reason: None,
        now,
    };
    change.record(&mut tail, &payout);
    tail.send(txn).await?;
    Ok(payout)
}

/// Claims the unpaid transactions of the period (and, when `carried`, those before it) for
/// payout `id`, makes an item of each, and answers the sums by type of what it claimed: the
/// claim is the one statement that decides what the payout pays, and nothing of the rows
/// travels to the server (a busy promoter's month is thousands of them).
///
/// On PostgreSQL all of it is one statement, `WITH claimed AS (UPDATE transactions SET
/// payout_id = .. WHERE payout_id IS NULL AND .. RETURNING id, amount, type), items AS
/// (INSERT INTO payout_items .. SELECT .. FROM claimed) SELECT type, SUM(amount) FROM
/// claimed GROUP BY type`, which reads the claimed rows once. SQLite has no data-modifying
/// `WITH` (and one writer at a time): the items first, made from the unpaid rows, then the
/// claim of the rows they name, then the sums of the items, in the same transaction.
/// Neither looks a transaction up by `payout_id` (no index has it: migration 13).
async fn claim(
    txn: &DatabaseTransaction,
    id: Uuid,
    venue: Uuid,
    promoter: Uuid,
    plan: &Plan,
    carried: bool,
    now: DateTime<Utc>,
) -> Result<Totals> {
    use sea_orm::sea_query::{Alias, CommonTableExpression, Query, WithClause};
    let mut condition = unpaid_of(venue, promoter, plan.to);
    if !carried {
        condition = condition.add(transactions::Column::CreatedAt.gte(plan.from));
    }
    let backend = txn.get_database_backend();
    if backend != sea_orm::DbBackend::Postgres {
        let source = Query::select()
            .from(transactions::Entity)
            .cond_where(condition)
            .to_owned();
        let made = txn.execute(&items(backend, id, source, now)?).await?;
        let named = Query::select()
            .column(payout_items::Column::TransactionId)
            .from(payout_items::Entity)
            .and_where(payout_items::Column::PayoutId.eq(id))
            .to_owned();
        let claimed = transactions::Entity::update_many()
            .col_expr(transactions::Column::PayoutId, Expr::value(id))
            .col_expr(transactions::Column::UpdatedAt, Expr::value(now))
            .filter(transactions::Column::Id.in_subquery(named))
            .filter(transactions::Column::PayoutId.is_null())
            .exec(txn)
            .await?;
        if claimed.rows_affected != made.rows_affected() {
            return Err(Error::Conflict(
                "the promoter's unpaid transactions changed during the generation: try again"
                    .into(),
            ));
        }
        return Totals::read(txn, &Totals::sums(payout_items::Entity, Some(id))).await;
    }
    let claimed = Alias::new("claimed");
    let mut update = transactions::Entity::update_many()
        .col_expr(transactions::Column::PayoutId, Expr::value(id))
        .col_expr(transactions::Column::UpdatedAt, Expr::value(now))
        .filter(condition)
        .into_query();
    update.returning(Query::returning().columns([
        transactions::Column::Id,
        transactions::Column::Amount,
        transactions::Column::Type,
    ]));
    let source = Query::select().from(claimed.clone()).to_owned();
    let with = WithClause::new()
        .cte(
            CommonTableExpression::new()
                .query(update)
                .table_name(claimed.clone())
                .to_owned(),
        )
        .cte(
            CommonTableExpression::new()
                .query(items(backend, id, source, now)?)
                .table_name(Alias::new("items"))
                .to_owned(),
        )
        .to_owned();
    Totals::read(txn, &Totals::sums(claimed, None).with(with)).await
}

/// `INSERT INTO payout_items .. SELECT .. FROM <source>`: an item of payout `payout` for
/// each transaction `source` selects (its `id`, `amount` and `type` columns), with a copy
/// of its amount and type, made in the database. Item ids: `gen_random_uuid()` on
/// PostgreSQL, 16 random bytes on SQLite.
fn items(
    backend: sea_orm::DbBackend,
    payout: Uuid,
    mut source: sea_orm::sea_query::SelectStatement,
    now: DateTime<Utc>,
) -> Result<sea_orm::sea_query::InsertStatement> {
    use sea_orm::sea_query::Query;
    let random_id = match backend {
        sea_orm::DbBackend::Postgres => Expr::cust("gen_random_uuid()"),
        _ => Expr::cust("randomblob(16)"),
    };
    let rows = source
        .expr(random_id)
        .expr(Expr::val(payout))
        .column(transactions::Column::Id)
        .column(transactions::Column::Amount)
        .column(transactions::Column::Type)
        .expr(Expr::val(now))
        .to_owned();
    Query::insert()
        .into_table(payout_items::Entity)
        .columns([
            payout_items::Column::Id,
            payout_items::Column::PayoutId,
            payout_items::Column::TransactionId,
            payout_items::Column::Amount,
            payout_items::Column::Type,
            payout_items::Column::CreatedAt,
        ])
        .select_from(rows)
        .map_err(Error::internal)
        .map(|insert| insert.to_owned())
}

/// A payout's sums by type, cents.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    commissions: i64,
    incentives: i64,
    adjustments: i64,
}

impl Totals {
    /// `SELECT type, SUM(amount) FROM <from> [WHERE payout_id = ..] GROUP BY type`: the
    /// sums by type of the rows of `from` (transactions or items: the columns have the same
    /// names), of payout `payout` when given.
    fn sums(
        from: impl sea_orm::sea_query::IntoIden,
        payout: Option<Uuid>,
    ) -> sea_orm::sea_query::SelectStatement {
        use sea_orm::sea_query::Alias;
        let mut select = sea_orm::sea_query::Query::select();
        select
            .column(Alias::new("type"))
            .expr_as(
                super::balance::big_sum(Expr::col(Alias::new("amount"))),
                Alias::new("amount"),
            )
            .from(from)
            .group_by_col(Alias::new("type"));
        if let Some(payout) = payout {
            select.and_where(Expr::col(Alias::new("payout_id")).eq(payout));
        }
        select
    }

    /// Runs a statement of [`Totals::sums`] (or one ending in it) and adds up its rows.
    async fn read(
        txn: &impl ConnectionTrait,
        statement: &impl sea_orm::StatementBuilder,
    ) -> Result<Totals> {
        let mut totals = Totals::default();
        for row in txn.query_all(statement).await? {
            let amount: i64 = row.try_get("", "amount")?;
            match row.try_get::<TransactionType>("", "type")? {
                TransactionType::PromoterCommission => totals.commissions += amount,
                TransactionType::IncentivePayout => totals.incentives += amount,
                _ => totals.adjustments += amount,
            }
        }
        Ok(totals)
    }

    fn total(&self) -> i64 {
        self.commissions + self.incentives + self.adjustments
    }

    fn apply(&self, mut payout: payouts::Model, fees: i64) -> payouts::Model {
        payout.commissions_amount = self.commissions;
        payout.incentives_amount = self.incentives;
        payout.adjustments_amount = self.adjustments;
        payout.fees_amount = fees;
        payout.amount = self.total() - fees;
        payout
    }

    fn update(&self, id: Uuid, fees: i64) -> sea_orm::sea_query::UpdateStatement {
        payouts::Entity::update_many()
            .col_expr(
                payouts::Column::CommissionsAmount,
                Expr::value(self.commissions),
            )
            .col_expr(
                payouts::Column::IncentivesAmount,
                Expr::value(self.incentives),
            )
            .col_expr(
                payouts::Column::AdjustmentsAmount,
                Expr::value(self.adjustments),
            )
            .col_expr(payouts::Column::FeesAmount, Expr::value(fees))
            .col_expr(payouts::Column::Amount, Expr::value(self.total() - fees))
            .filter(payouts::Column::Id.eq(id))
            .into_query()
    }
}

/// The new payout as committed, before its amounts are known (all zero).
fn new_model(
    id: Uuid,
    actor: &Actor,
    plan: &Plan,
    venue: &venues::Model,
    promoter: Uuid,
    now: DateTime<Utc>,
) -> payouts::Model {
    payouts::Model {
        id,
        venue_id: venue.id,
        promoter_id: Some(promoter),
        amount: 0,
        currency: venue.currency.clone(),
        period_from: plan.from,
        period_to: plan.to,
        status: PayoutStatus::Draft,
        scheduled_for: plan.scheduled_for,
        processed_at: None,
        commissions_amount: 0,
        incentives_amount: 0,
        adjustments_amount: 0,
        fees_amount: 0,
        method: plan.method,
        reference: None,
        approved_by: None,
        approved_at: None,
        created_at: now,
        updated_at: now,
        created_by: Some(actor.user_id),
        submitted_by: None,
    }
}

/// A venue-wide generation: one answer per promoter of the venue.
#[derive(Debug, Clone)]
pub struct VenueRun {
    /// Each promoter's answer, by last name then id.
    pub results: Vec<Generated>,
}

/// Generates the payouts of every promoter of the venue for a period (ADMIN or OWNER), each
/// in its own transaction with [`generate_payout`]'s rules and no fees ([`RUN_CONCURRENCY`]
/// at a time on PostgreSQL); the answers come in the promoters' order. Idempotent as a
/// whole: running it again answers EXISTING for every payout it made and makes only what
/// is missing (after a crash half-way, say).
pub async fn generate_venue_payouts(
    db: &Db,
    actor: &Actor,
    venue_id: Uuid,
    period: (DateTime<Utc>, DateTime<Utc>),
    scheduled_for: Option<DateTime<Utc>>,
) -> Result<VenueRun> {
    generate_venue_payouts_at(
        db,
        actor,
        venue_id,
        period,
        scheduled_for,
        crate::time::now(),
    )
    .await
}

/// [`generate_venue_payouts`] at a given instant.
#[tracing::instrument(skip_all, fields(venue = %venue_id))]
pub async fn generate_venue_payouts_at(
    db: &Db,
    actor: &Actor,
    venue_id: Uuid,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    scheduled_for: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<VenueRun> {
    let plan = Plan::period(from, to, scheduled_for, now)?;
    let venue = venue_for(db, actor, venue_id).await?;
    let promoters: Vec<(Uuid,)> = promoters::Entity::find()
        .select_only()
        .column(promoters::Column::Id)
        .filter(promoters::Column::VenueId.eq(venue.id))
        .order_by_asc(promoters::Column::LastName)
        .order_by_asc(promoters::Column::Id)
        .limit(MAX_PROMOTERS_PER_RUN + 1)
        .into_tuple()
        .all(&db.conn)
        .await?;
    if promoters.len() as u64 > MAX_PROMOTERS_PER_RUN {
        return Err(Error::invalid(
            "venueId",
            format!(
                "this venue has more than {MAX_PROMOTERS_PER_RUN} promoters: generate their payouts one by one (generatePayout)"
            ),
        ));
    }
    use futures::{StreamExt, TryStreamExt};
    let (plan, venue) = (&plan, &venue);
    let results = futures::stream::iter(promoters)
        .map(|(promoter,)| one(db, actor, plan, venue, promoter, None, now))
        .buffered(run_concurrency(db))
        .try_collect()
        .await?;
    Ok(VenueRun { results })
}

/// How many promoters of a venue run are generated at once: each is its own transaction
/// touching only its promoter's rows, so PostgreSQL runs them side by side (most of the
/// cost is index upkeep of the claimed ledger rows, bench/README.md); SQLite has one
/// writer, and a second would only wait.
fn run_concurrency(db: &Db) -> usize {
    match db.backend() {
        sea_orm::DbBackend::Postgres => RUN_CONCURRENCY,
        _ => 1,
    }
}

/// Promoters generated at once by a venue run on PostgreSQL.
pub const RUN_CONCURRENCY: usize = 4;
