//! Commission rates and their assignments to promoters: reads scoped to the venues where
//! the caller holds financial reads (DOMAIN.md "Access", "Commissions").
//!
//! A rate belongs to a venue; an assignment has no venue of its own and is scoped through
//! its rate's venue (`commission_rates.venue_id`), in the same SQL statement.
//!
//! The commission of a booking is computed by the pure [`rules`], from the rows
//! [`commission_for_booking`] loads inside the caller's transaction. Writing rates and
//! assignments is [`rates`]; the calendar month of a venue (TIERED rungs, the promoters'
//! `month_*` fields) is [`month`].

pub mod month;
pub mod rates;
pub mod rules;

use std::collections::HashMap;

use prima_entity::enums::{BookingStatus, CommissionModel};
use prima_entity::{bookings, commission_assignments, commission_rates, promoters, venues};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, JoinType, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, RelationTrait,
};
use uuid::Uuid;

use crate::access::scope::financial_pages_by_venue;
use crate::access::{Actor, Capability};
use crate::error::{Error, Result};
use crate::paging::{self, KeyKind, PARENT, Page, PageArgs, PagesOrDenied, Sort};
use month::venue_month;

// Rates by id: `access::scope::financial_by_ids`.

const RATE_SORT: Sort = Sort {
    name: "commission_rates.effective_from.desc",
    keys: &[
        Sort::key("effective_from", KeyKind::Time, true),
        Sort::key("id", KeyKind::Uuid, true),
    ],
};

/// For each venue, a page of its commission rates, newest `effective_from` first (history
/// included unless `active_only`); FORBIDDEN for a venue where the caller lacks financial
/// reads.
#[tracing::instrument(skip_all, fields(venues = venue_ids.len()))]
pub async fn rate_pages_by_venue(
    db: &impl ConnectionTrait,
    actor: &Actor,
    venue_ids: &[Uuid],
    active_only: bool,
    page: &PageArgs,
    with_total: bool,
) -> Result<PagesOrDenied<commission_rates::Model>> {
    let mut select = commission_rates::Entity::find();
    if active_only {
        select = select.filter(commission_rates::Column::IsActive.eq(true));
    }
    financial_pages_by_venue(db, actor, venue_ids, select, &RATE_SORT, page, with_total).await
}

/// The commission assignments among `ids` that the caller may see: those whose rate
/// belongs to a venue where they hold financial reads, as in a promoter's list.
pub async fn assignments_by_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, commission_assignments::Model>> {
    let rows = crate::access::scope::children_by_ids::<
        commission_assignments::Entity,
        commission_rates::Entity,
    >(
        db,
        actor,
        Capability::ReadFinancial,
        (
            commission_assignments::Column::Id,
            commission_rates::Column::VenueId,
        ),
        ids,
    )
    .await?;
    Ok(rows.into_iter().map(|(row, _)| (row.id, row)).collect())
}

const ASSIGNMENT_SORT: Sort = Sort {
    name: "commission_assignments.effective_from.desc",
    keys: &[
        Sort::key("effective_from", KeyKind::Time, true),
        Sort::key("id", KeyKind::Uuid, true),
    ],
};

/// For each promoter, a page of their commission assignments, newest `effective_from`
/// first, only those whose rate belongs to a venue where the caller holds financial reads.
#[tracing::instrument(skip_all, fields(promoters = promoter_ids.len()))]
pub async fn assignment_pages_by_promoter(
    db: &impl ConnectionTrait,
    actor: &Actor,
    promoter_ids: &[Uuid],
    page: &PageArgs,
    with_total: bool,
) -> Result<HashMap<Uuid, Page<commission_assignments::Model>>> {
    let window = page.window(&ASSIGNMENT_SORT)?;
    let inner = commission_assignments::Entity::find()
        .join(
            JoinType::InnerJoin,
            commission_assignments::Relation::CommissionRates.def(),
        )
        .filter(commission_assignments::Column::PromoterId.is_in(promoter_ids.iter().copied()))
        .filter(
            actor
                .venues_where(Capability::ReadFinancial)
                .condition((commission_rates::Entity, commission_rates::Column::VenueId)),
        )
        .expr_as(
            Expr::col((
                commission_assignments::Entity,
                commission_assignments::Column::PromoterId,
            )),
            PARENT,
        )
        .into_query();
    let pages = paging::fetch_pages(
        db,
        inner,
        promoter_ids,
        &ASSIGNMENT_SORT,
        &window,
        with_total,
    )
    .await?;
    Ok(paging::pages_for(promoter_ids, pages, &window, with_total))
}

/// Loads what the [`rules`] need and computes the commission of a booking being confirmed,
/// inside the caller's transaction `db`. `Ok(None)` when the booking has no promoter.
///
/// - The assignment is the promoter's one in force at `booking_time`
///   (`effective_from <= booking_time < effective_to`, or `effective_to` null) whose rate
///   belongs to the booking's venue (a promoter's terms at another venue do not pay here);
///   newest `effective_from` first if several. Without one the commission is 0 with the
///   reason "no commission assignment in force", reported as a FLAT_RATE of 0 at the
///   promoter's tier (nothing was agreed) with no assignment or rate id.
/// - For TIERED only: the ladder is the venue's TIERED rows for the promoter's tier that
///   are active and in force at `booking_time`; the month count is the promoter's CONFIRMED
///   and COMPLETED bookings at the venue whose `booking_time` falls in the calendar month of
///   this booking's `booking_time` in the venue's time zone, excluding this booking, plus 1.
///   Other models need neither, so they are not queried.
#[tracing::instrument(skip_all, fields(booking = %booking.id))]
pub async fn commission_for_booking(
    db: &impl ConnectionTrait,
    booking: &bookings::Model,
    venue: &venues::Model,
) -> Result<Option<rules::Commission>> {
    commission_with(db, booking, venue, None).await
}

/// [`commission_for_booking`], with the booking's promoter row when the caller holds it
/// (the confirmation's counter `UPDATE` returned it, locked): then it is not read again.
pub async fn commission_with(
    db: &impl ConnectionTrait,
    booking: &bookings::Model,
    venue: &venues::Model,
    promoter: Option<&promoters::Model>,
) -> Result<Option<rules::Commission>> {
    let Some(promoter_id) = booking.promoter_id else {
        return Ok(None);
    };
    let read;
    let promoter = match promoter.filter(|p| p.id == promoter_id) {
        Some(promoter) => promoter,
        None => {
            read = promoters::Entity::find_by_id(promoter_id)
                .one(db)
                .await?
                .ok_or(Error::NotFound { what: "promoter" })?;
            &read
        }
    };
    let at = booking.booking_time;
    let found = commission_assignments::Entity::find()
        .find_also_related(commission_rates::Entity)
        .filter(commission_assignments::Column::PromoterId.eq(promoter_id))
        .filter(commission_rates::Column::VenueId.eq(venue.id))
        .filter(commission_assignments::Column::EffectiveFrom.lte(at))
        .filter(
            Condition::any()
                .add(commission_assignments::Column::EffectiveTo.is_null())
                .add(commission_assignments::Column::EffectiveTo.gt(at)),
        )
        .order_by_desc(commission_assignments::Column::EffectiveFrom)
        .order_by_desc(commission_assignments::Column::Id)
        .one(db)
        .await?;
    let Some((assignment, Some(rate))) = found else {
        return Ok(Some(rules::Commission {
            amount: 0,
            rate: 0,
            model: CommissionModel::FlatRate,
            tier: promoter.tier,
            assignment_id: None,
            rate_id: None,
            ineligible_reason: Some("no commission assignment in force".to_owned()),
        }));
    };

    let (ladder, month_bookings) = if assignment.model == CommissionModel::Tiered {
        let ladder = commission_rates::Entity::find()
            .filter(commission_rates::Column::VenueId.eq(venue.id))
            .filter(commission_rates::Column::Model.eq(CommissionModel::Tiered))
            .filter(commission_rates::Column::Tier.eq(promoter.tier))
            .filter(commission_rates::Column::IsActive.eq(true))
            .filter(commission_rates::Column::EffectiveFrom.lte(at))
            .filter(
                Condition::any()
                    .add(commission_rates::Column::EffectiveTo.is_null())
                    .add(commission_rates::Column::EffectiveTo.gt(at)),
            )
            .all(db)
            .await?;
        let others = month_bookings(db, booking, venue).await?;
        (ladder, others + 1)
    } else {
        (Vec::new(), 0)
    };

    Ok(Some(rules::compute(&rules::RuleInput {
        assignment: &assignment,
        rate: &rate,
        ladder: &ladder,
        promoter,
        diners: booking.diners,
        base_fee: booking.base_fee,
        month_bookings,
    })))
}

/// The promoter's CONFIRMED + COMPLETED bookings at the venue with `booking_time` in the
/// calendar month (venue time zone) of this booking's `booking_time`, not counting it.
pub(crate) async fn month_bookings(
    db: &impl ConnectionTrait,
    booking: &bookings::Model,
    venue: &venues::Model,
) -> Result<i64> {
    let (from, to) = venue_month(venue, booking.booking_time)?;
    let count = bookings::Entity::find()
        .filter(bookings::Column::PromoterId.eq(booking.promoter_id))
        .filter(bookings::Column::VenueId.eq(venue.id))
        .filter(
            bookings::Column::Status.is_in([BookingStatus::Confirmed, BookingStatus::Completed]),
        )
        .filter(bookings::Column::BookingTime.gte(from))
        .filter(bookings::Column::BookingTime.lt(to))
        .filter(bookings::Column::Id.ne(booking.id))
        .count(db)
        .await?;
    Ok(i64::try_from(count).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};
    use prima_entity::enums::{PromoterTier, UserRole};
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, IntoActiveModel};

    use super::*;
    use crate::access::Level;
    use crate::access::scope::financial_by_ids;
    use crate::testing::fixtures::*;

    #[tokio::test]
    async fn a_manager_of_venue_a_gets_no_rate_or_assignment_of_venue_b() {
        let db = db().await;
        let by = user(&db).await;
        let (a, b) = (venue(&db).await, venue(&db).await);
        let (ra, rb) = (rate(&db, a, by, true).await, rate(&db, b, by, true).await);
        let pa = promoter(&db, a, "Adams").await;
        // A promoter of A assigned a rate of B: the assignment is B's business.
        assignment(&db, pa, ra, by, t0()).await;
        assignment(&db, pa, rb, by, t0() + Duration::days(1)).await;
        let manager = actor(by, UserRole::Manager, &[(a, Level::Manager)]);

        let rates = financial_by_ids::<commission_rates::Entity>(&db.conn, &manager, &[ra, rb])
            .await
            .unwrap();
        assert_eq!(rates.keys().copied().collect::<Vec<_>>(), [ra]);

        let pages = rate_pages_by_venue(
            &db.conn,
            &manager,
            &[a, b],
            false,
            &PageArgs::default(),
            true,
        )
        .await
        .unwrap();
        assert_eq!(pages[&a].as_ref().unwrap().total_count, Some(1));
        assert!(pages[&b].is_err());

        let assignments =
            assignment_pages_by_promoter(&db.conn, &manager, &[pa], &PageArgs::default(), true)
                .await
                .unwrap();
        let page = &assignments[&pa];
        assert_eq!(page.total_count, Some(1));
        assert_eq!(page.edges[0].node.commission_rate_id, ra);
    }

    #[tokio::test]
    async fn a_coordinator_is_forbidden_a_venues_rates() {
        let db = db().await;
        let by = user(&db).await;
        let a = venue(&db).await;
        rate(&db, a, by, true).await;
        let coordinator = actor(by, UserRole::Coordinator, &[(a, Level::Coordinator)]);
        let pages = rate_pages_by_venue(
            &db.conn,
            &coordinator,
            &[a],
            false,
            &PageArgs::default(),
            false,
        )
        .await
        .unwrap();
        assert_eq!(pages[&a].as_ref().unwrap_err().code(), "FORBIDDEN");
    }

    #[tokio::test]
    async fn active_only_leaves_out_inactive_rates_and_assignments_come_newest_first() {
        let db = db().await;
        let by = user(&db).await;
        let a = venue(&db).await;
        let live = rate(&db, a, by, true).await;
        rate(&db, a, by, false).await;
        let admin = actor(by, UserRole::Admin, &[]);
        let pages = rate_pages_by_venue(&db.conn, &admin, &[a], true, &PageArgs::default(), true)
            .await
            .unwrap();
        let page = pages[&a].as_ref().unwrap();
        assert_eq!(page.total_count, Some(1));
        assert_eq!(page.edges[0].node.id, live);

        let p = promoter(&db, a, "Adams").await;
        let old = assignment(&db, p, live, by, t0()).await;
        let new = assignment(&db, p, live, by, t0() + Duration::days(30)).await;
        let pages =
            assignment_pages_by_promoter(&db.conn, &admin, &[p], &PageArgs::default(), false)
                .await
                .unwrap();
        let ids: Vec<Uuid> = pages[&p].edges.iter().map(|e| e.node.id).collect();
        assert_eq!(ids, [new, old]);
    }

    /// A booking of the venue brought by the promoter at `at` in `status`, base fee 100.00,
    /// made the day before.
    async fn booking_at(
        db: &crate::db::Db,
        venue: Uuid,
        promoter: Option<Uuid>,
        at: DateTime<Utc>,
        status: BookingStatus,
    ) -> bookings::Model {
        let id = booking(db, venue, promoter).await;
        let mut row = bookings::Entity::find_by_id(id)
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap()
            .into_active_model();
        row.booking_time = Set(at);
        row.created_at = Set(at - Duration::days(1));
        row.confirmed_at = Set(Some(at - Duration::days(1)));
        row.status = Set(status);
        row.update(&db.conn).await.unwrap()
    }

    async fn venue_row(db: &crate::db::Db, id: Uuid) -> venues::Model {
        venues::Entity::find_by_id(id)
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap()
    }

    async fn set_assignment(
        db: &crate::db::Db,
        id: Uuid,
        f: impl FnOnce(&mut commission_assignments::ActiveModel),
    ) {
        let mut row = commission_assignments::Entity::find_by_id(id)
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap()
            .into_active_model();
        f(&mut row);
        row.update(&db.conn).await.unwrap();
    }

    pub(super) fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[tokio::test]
    async fn the_assignment_in_force_at_booking_time_decides_the_commission() {
        let db = db().await;
        let by = user(&db).await;
        let v = venue(&db).await;
        let venue = venue_row(&db, v).await;
        let r = rate(&db, v, by, true).await;
        let p = promoter(&db, v, "Adams").await;
        let switch = t0() - Duration::days(10);
        let old = assignment(&db, p, r, by, t0() - Duration::days(60)).await;
        set_assignment(&db, old, |a| {
            a.effective_to = Set(Some(switch));
            a.rate = Set(500);
        })
        .await;
        let new = assignment(&db, p, r, by, switch).await;
        set_assignment(&db, new, |a| a.rate = Set(1_500)).await;

        // Booked under the new terms: 15 % of 100.00.
        let b = booking_at(
            &db,
            v,
            Some(p),
            t0() + Duration::days(3),
            BookingStatus::Confirmed,
        )
        .await;
        let c = commission_for_booking(&db.conn, &b, &venue)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.amount, c.rate, c.assignment_id),
            (1_500, 1_500, Some(new))
        );
        assert_eq!(c.rate_id, Some(r));
        assert_eq!(c.ineligible_reason, None);

        // A booking time under the closed terms: 5 %; the switch instant is the new terms'.
        let b = booking_at(
            &db,
            v,
            Some(p),
            switch - Duration::hours(1),
            BookingStatus::Confirmed,
        )
        .await;
        let c = commission_for_booking(&db.conn, &b, &venue)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((c.amount, c.assignment_id), (500, Some(old)));
        let b = booking_at(&db, v, Some(p), switch, BookingStatus::Confirmed).await;
        let c = commission_for_booking(&db.conn, &b, &venue)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.assignment_id, Some(new));

        // Before any assignment: nothing, and why.
        let b = booking_at(
            &db,
            v,
            Some(p),
            t0() - Duration::days(90),
            BookingStatus::Confirmed,
        )
        .await;
        let c = commission_for_booking(&db.conn, &b, &venue)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.amount, 0);
        assert_eq!(c.assignment_id, None);
        assert_eq!(
            c.ineligible_reason.as_deref(),
            Some("no commission assignment in force")
        );

        // No promoter: no commission at all.
        let b = booking_at(
            &db,
            v,
            None,
            t0() + Duration::days(3),
            BookingStatus::Confirmed,
        )
        .await;
        assert_eq!(
            commission_for_booking(&db.conn, &b, &venue).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn an_assignment_to_another_venues_rate_does_not_pay_here() {
        let db = db().await;
        let by = user(&db).await;
        let (a, b) = (venue(&db).await, venue(&db).await);
        let rb = rate(&db, b, by, true).await;
        let p = promoter(&db, a, "Adams").await;
        assignment(&db, p, rb, by, t0() - Duration::days(1)).await;
        let booking = booking_at(
            &db,
            a,
            Some(p),
            t0() + Duration::days(3),
            BookingStatus::Confirmed,
        )
        .await;
        let c = commission_for_booking(&db.conn, &booking, &venue_row(&db, a).await)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.amount, 0);
        assert_eq!(c.assignment_id, None);
    }

    #[tokio::test]
    async fn tiered_counts_the_month_in_the_venue_time_zone() {
        let db = db().await;
        let by = user(&db).await;
        // The fixture venue is in America/Chicago: UTC-6 in winter.
        let v = venue(&db).await;
        let at_venue = venue_row(&db, v).await;
        assert_eq!(at_venue.timezone, "America/Chicago");
        let p = promoter(&db, v, "Adams").await;
        // A ladder: 5 % from 0, 10 % from 4 bookings in the month.
        let mut ladder = Vec::new();
        for (min, value) in [(None, 500), (Some(4), 1_000)] {
            let id = Uuid::new_v4();
            commission_rates::Entity::insert(
                commission_rates::Model {
                    id,
                    venue_id: v,
                    tier: PromoterTier::Standard,
                    model: CommissionModel::Tiered,
                    value,
                    minimum_booking: 0,
                    maximum_payout: None,
                    min_monthly_bookings: min,
                    min_conversion_rate: None,
                    max_cancel_rate: None,
                    effective_from: t0() - Duration::days(365),
                    effective_to: None,
                    is_active: true,
                    created_by: by,
                    created_at: t0(),
                    updated_at: t0(),
                }
                .into_active_model(),
            )
            .exec_without_returning(&db.conn)
            .await
            .unwrap();
            ladder.push(id);
        }
        let a = assignment(&db, p, ladder[0], by, t0() - Duration::days(30)).await;
        set_assignment(&db, a, |a| a.model = Set(CommissionModel::Tiered)).await;

        // Local January 2026 (Chicago): three counted bookings, one of them 20:00 local on
        // the 31st, which is already February in UTC.
        for (at, status) in [
            ("2026-01-10T18:00:00Z", BookingStatus::Confirmed),
            ("2026-01-15T18:00:00Z", BookingStatus::Completed),
            ("2026-02-01T02:00:00Z", BookingStatus::Confirmed),
            // Not counted: cancelled, pending, no-show.
            ("2026-01-20T18:00:00Z", BookingStatus::Cancelled),
            ("2026-01-21T18:00:00Z", BookingStatus::Pending),
            ("2026-01-22T18:00:00Z", BookingStatus::NoShow),
            // Not counted: 23:30 on 31 December local (January in UTC) ...
            ("2026-01-01T05:30:00Z", BookingStatus::Confirmed),
            // ... and 00:30 on 1 February local.
            ("2026-02-01T06:30:00Z", BookingStatus::Confirmed),
        ] {
            booking_at(&db, v, Some(p), utc(at), status).await;
        }
        // Not counted: another promoter's booking, and the promoter's at another venue.
        let other = promoter(&db, v, "Baker").await;
        booking_at(
            &db,
            v,
            Some(other),
            utc("2026-01-12T18:00:00Z"),
            BookingStatus::Confirmed,
        )
        .await;
        let elsewhere = venue(&db).await;
        booking_at(
            &db,
            elsewhere,
            Some(p),
            utc("2026-01-12T18:00:00Z"),
            BookingStatus::Confirmed,
        )
        .await;

        // The booking being confirmed: 21:00 on 31 January local, 03:00 on 1 February UTC.
        // It is already CONFIRMED in its own transaction: it counts once, not twice.
        let b = booking_at(
            &db,
            v,
            Some(p),
            utc("2026-02-01T03:00:00Z"),
            BookingStatus::Confirmed,
        )
        .await;
        assert_eq!(month_bookings(&db.conn, &b, &at_venue).await.unwrap(), 3);
        let c = commission_for_booking(&db.conn, &b, &at_venue)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.model, CommissionModel::Tiered);
        assert_eq!(
            (c.rate, c.rate_id),
            (1_000, Some(ladder[1])),
            "3 + 1 = 4 reaches the second rung"
        );
        assert_eq!(c.amount, 1_000, "10 % of 100.00");

        // In February local time the promoter has one other booking: the first rung.
        let feb = booking_at(
            &db,
            v,
            Some(p),
            utc("2026-02-02T18:00:00Z"),
            BookingStatus::Pending,
        )
        .await;
        assert_eq!(month_bookings(&db.conn, &feb, &at_venue).await.unwrap(), 1);
        let c = commission_for_booking(&db.conn, &feb, &at_venue)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((c.rate, c.amount), (500, 500));
    }
}
