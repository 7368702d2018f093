//! Booking writes: making and editing bookings and moving them through their lifecycle
//! (DOMAIN.md "Booking lifecycle"). Each mutation is
//! `verbNoun(input: VerbNounInput!): VerbNounPayload!` and its payload holds the booking as
//! changed. Each resolver takes the caller and the database, makes one service call (the
//! `create`, `edit`, `transition` and `refund` modules of `prima_service::bookings`, where
//! validation, permission checks, pricing, the ledger and the history live) and converts.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use prima_entity::enums::{BookingSource, BookingType};
use prima_service::bookings::{create, edit, refund, transition};
use rust_decimal::Decimal;

use super::Booking;
use crate::context::{actor, client_info, deps};
use crate::error::{Result, parse_id};
use crate::ledger::Transaction;
use crate::scalars::Money;

/// A booking to make (COORDINATOR or above at the venue).
#[derive(InputObject)]
pub struct CreateBookingInput {
    /// The venue; it must be ACTIVE and have pricing in force.
    pub venue_id: ID,
    /// The guest; a BLOCKED guest cannot book.
    pub guest_id: ID,
    /// The promoter who brought the booking: one of the venue's, ACTIVE.
    pub promoter_id: Option<ID>,
    /// PRIME or NON_PRIME: which price list applies.
    pub r#type: BookingType,
    /// Party size: 1 to 50, and within the venue's party limits.
    pub diners: i32,
    /// When the guests arrive; in the future.
    pub booking_time: DateTime<Utc>,
    /// Planned length of the visit in minutes, 15 to 1440 (default 120).
    pub duration_minutes: Option<i32>,
    /// The guest's requests, at most 2000 characters.
    pub special_requests: Option<String>,
    /// Staff notes, at most 2000 characters.
    pub notes: Option<String>,
    /// Where the booking came from (default PROMOTER with a promoter, DIRECT without).
    /// PROMOTER needs a `promoterId`.
    pub source: Option<BookingSource>,
    /// Makes retries safe, as Stripe's idempotency keys do: 1 to 255 characters of your
    /// choosing, e.g. a UUID per booking attempt. A retry with the same key and the same
    /// input returns the booking the first request made (as it is now) and writes nothing;
    /// the same key with other input is a CONFLICT. Keys are yours alone and kept 24 hours.
    pub idempotency_key: Option<String>,
}

/// The booking made.
#[derive(SimpleObject)]
pub struct CreateBookingPayload {
    /// The new booking: CONFIRMED when the venue auto-confirms, PENDING otherwise.
    pub booking: Booking,
}

/// Changes to a booking's details (COORDINATOR or above at its venue): only the fields
/// given change.
#[derive(InputObject)]
pub struct UpdateBookingInput {
    /// The booking to change.
    pub booking_id: ID,
    /// New arrival time, in the future.
    pub booking_time: Option<DateTime<Utc>>,
    /// New party size: 1 to 50, and within the party limits of the booking's pricing.
    pub diners: Option<i32>,
    /// New length of the visit in minutes, 15 to 1440.
    pub duration_minutes: Option<i32>,
    /// New staff notes; an empty text clears them.
    pub notes: Option<String>,
    /// New special requests; an empty text clears them.
    pub special_requests: Option<String>,
}

/// The booking changed.
#[derive(SimpleObject)]
pub struct UpdateBookingPayload {
    /// The booking, as changed.
    pub booking: Booking,
}

/// A PENDING booking to confirm (MANAGER or above at its venue).
#[derive(InputObject)]
pub struct ConfirmBookingInput {
    /// The booking.
    pub booking_id: ID,
}

/// The booking confirmed.
#[derive(SimpleObject)]
pub struct ConfirmBookingPayload {
    /// The booking, now CONFIRMED, with its commission and ledger entries.
    pub booking: Booking,
}

/// A PENDING or CONFIRMED booking to cancel before its time (COORDINATOR or above at its
/// venue).
#[derive(InputObject)]
pub struct CancelBookingInput {
    /// The booking.
    pub booking_id: ID,
    /// Why it is cancelled, 1 to 2000 characters; kept in the booking's history.
    pub reason: String,
}

/// The booking cancelled.
#[derive(SimpleObject)]
pub struct CancelBookingPayload {
    /// The booking, now CANCELLED.
    pub booking: Booking,
}

/// A CONFIRMED booking to complete, at or after its time (COORDINATOR or above at its
/// venue).
#[derive(InputObject)]
pub struct CompleteBookingInput {
    /// The booking.
    pub booking_id: ID,
}

/// The booking completed.
#[derive(SimpleObject)]
pub struct CompleteBookingPayload {
    /// The booking, now COMPLETED.
    pub booking: Booking,
}

/// A CONFIRMED booking whose guests did not come, at or after its time (COORDINATOR or
/// above at its venue).
#[derive(InputObject)]
pub struct MarkNoShowInput {
    /// The booking.
    pub booking_id: ID,
    /// Why, if you want it in the booking's history; at most 2000 characters.
    pub reason: Option<String>,
}

/// The booking marked as a no-show.
#[derive(SimpleObject)]
pub struct MarkNoShowPayload {
    /// The booking, now NO_SHOW.
    pub booking: Booking,
}

/// A refund of a COMPLETED booking (venue ADMIN or OWNER).
#[derive(InputObject)]
pub struct RefundBookingInput {
    /// The booking.
    pub booking_id: ID,
    /// How much to refund, in the venue's currency (whole cents, more than 0); everything
    /// that can still be refunded when left out.
    pub amount: Option<Decimal>,
    /// Why; required, at most 2000 characters.
    pub reason: String,
}

/// The refund made.
#[derive(SimpleObject)]
pub struct RefundBookingPayload {
    /// The booking (still COMPLETED).
    pub booking: Booking,
    /// The REFUND transaction, of the negative amount.
    pub refund: Transaction,
    /// The ADJUSTMENT clawing back the promoter's commission in proportion (negative), when
    /// the booking paid one.
    pub clawback: Option<Transaction>,
    /// What can still be refunded after this refund.
    pub refundable: Money,
}

/// Booking mutations: making, editing and moving bookings through their lifecycle.
#[derive(Default)]
pub struct BookingMutation;

/// Booking mutations: making, editing and moving bookings through their lifecycle.
#[Object]
impl BookingMutation {
    /// Makes a booking (COORDINATOR or above at the venue), priced with the venue's pricing
    /// in force now; the price is locked into the booking. It starts CONFIRMED (with its
    /// ledger entries and commission) when the venue auto-confirms bookings and does not
    /// require approval, PENDING otherwise. Bad input is BAD_USER_INPUT naming the field
    /// and writes nothing.
    async fn create_booking(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The booking, and an optional idempotency key.")]
        input: CreateBookingInput,
    ) -> Result<CreateBookingPayload> {
        let actor = actor(ctx)?;
        let venue_id = parse_id("venueId", &input.venue_id)?;
        let guest_id = parse_id("guestId", &input.guest_id)?;
        let promoter_id = input
            .promoter_id
            .map(|id| parse_id("promoterId", &id))
            .transpose()?;
        let booking = create::create_booking(
            &deps(ctx).db,
            actor,
            create::NewBooking {
                venue_id,
                guest_id,
                promoter_id,
                booking_type: input.r#type,
                diners: input.diners,
                booking_time: input.booking_time,
                duration_minutes: input.duration_minutes,
                special_requests: input.special_requests,
                notes: input.notes,
                source: input.source,
                client: client_info(ctx),
            },
            input.idempotency_key.as_deref(),
        )
        .await?;
        Ok(CreateBookingPayload {
            booking: Booking(booking),
        })
    }

    /// Changes a PENDING or CONFIRMED booking's time, party size, duration, notes or special
    /// requests (COORDINATOR or above at its venue); any other status is a CONFLICT. While
    /// the booking is PENDING a new time or party size re-prices it with the pricing that
    /// was in force when it was made (later pricing changes never touch it); once it is
    /// CONFIRMED its price and commission are kept. Every change is recorded in the
    /// booking's history.
    async fn update_booking(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The booking and the fields to change.")] input: UpdateBookingInput,
    ) -> Result<UpdateBookingPayload> {
        let actor = actor(ctx)?;
        let id = parse_id("bookingId", &input.booking_id)?;
        let booking = edit::update_booking(
            &deps(ctx).db,
            actor,
            id,
            edit::BookingChanges {
                booking_time: input.booking_time,
                diners: input.diners,
                duration_minutes: input.duration_minutes,
                notes: input.notes,
                special_requests: input.special_requests,
            },
        )
        .await?;
        Ok(UpdateBookingPayload {
            booking: Booking(booking),
        })
    }

    /// Confirms a PENDING booking (MANAGER or above at its venue; FORBIDDEN to a
    /// COORDINATOR). Its fees, and its promoter's commission when one is due, go on the
    /// ledger as PENDING transactions. Any other starting status is a CONFLICT.
    async fn confirm_booking(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The booking to confirm.")] input: ConfirmBookingInput,
    ) -> Result<ConfirmBookingPayload> {
        let actor = actor(ctx)?;
        let id = parse_id("bookingId", &input.booking_id)?;
        let booking = transition::confirm_booking(&deps(ctx).db, actor, id).await?;
        Ok(ConfirmBookingPayload {
            booking: Booking(booking),
        })
    }

    /// Cancels a PENDING or CONFIRMED booking before its time (COORDINATOR or above at its
    /// venue), with a reason; its PENDING transactions are cancelled. After the booking's
    /// time, or from any other status, it is a CONFLICT.
    async fn cancel_booking(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The booking to cancel and why.")] input: CancelBookingInput,
    ) -> Result<CancelBookingPayload> {
        let actor = actor(ctx)?;
        let id = parse_id("bookingId", &input.booking_id)?;
        let booking = transition::cancel_booking(&deps(ctx).db, actor, id, input.reason).await?;
        Ok(CancelBookingPayload {
            booking: Booking(booking),
        })
    }

    /// Completes a CONFIRMED booking at or after its time (COORDINATOR or above at its
    /// venue): its transactions are earned (CONFIRMED). Before the booking's time, or from
    /// any other status, it is a CONFLICT.
    async fn complete_booking(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The booking to complete.")] input: CompleteBookingInput,
    ) -> Result<CompleteBookingPayload> {
        let actor = actor(ctx)?;
        let id = parse_id("bookingId", &input.booking_id)?;
        let booking = transition::complete_booking(&deps(ctx).db, actor, id).await?;
        Ok(CompleteBookingPayload {
            booking: Booking(booking),
        })
    }

    /// Marks a CONFIRMED booking as a no-show at or after its time (COORDINATOR or above at
    /// its venue): the venue keeps its fees (CONFIRMED), the promoter's commission is
    /// cancelled. Before the booking's time, or from any other status, it is a CONFLICT.
    async fn mark_no_show(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The booking and, optionally, why.")] input: MarkNoShowInput,
    ) -> Result<MarkNoShowPayload> {
        let actor = actor(ctx)?;
        let id = parse_id("bookingId", &input.booking_id)?;
        let booking = transition::mark_no_show(&deps(ctx).db, actor, id, input.reason).await?;
        Ok(MarkNoShowPayload {
            booking: Booking(booking),
        })
    }

    /// Refunds a COMPLETED booking in full or in part (ADMIN or OWNER at its venue), with a
    /// reason. The ledger gains a REFUND of the negative amount and, when the booking paid a
    /// commission, an ADJUSTMENT clawing it back in proportion (pointing at the commission it
    /// reverses; the promoter's next payout deducts it). Refunds together never exceed what
    /// was charged (BAD_USER_INPUT on `amount`); the booking stays COMPLETED.
    async fn refund_booking(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The booking, the amount and why.")] input: RefundBookingInput,
    ) -> Result<RefundBookingPayload> {
        let actor = actor(ctx)?;
        let id = parse_id("bookingId", &input.booking_id)?;
        let refund =
            refund::refund_booking(&deps(ctx).db, actor, id, input.amount, input.reason).await?;
        Ok(RefundBookingPayload {
            refundable: Money::cents(refund.refundable, &refund.refund.currency),
            booking: Booking(refund.booking),
            refund: Transaction(refund.refund),
            clawback: refund.clawback.map(Transaction),
        })
    }
}
