//! Promoter writes: `createPromoter`, `approvePromoter`, `suspendPromoter` and
//! `setPromoterTier`. Each resolver takes the caller and the database, makes one service
//! call (`prima_service::promoters::write`, where validation and permission checks live)
//! and converts.

use async_graphql::{Context, ID, InputObject, Json, Object, SimpleObject};
use prima_entity::enums::PromoterTier;

use super::Promoter;
use crate::context::{actor, deps};
use crate::error::{Result, parse_id};

/// A promoter to sign up at a venue (MANAGER or above there). They start PENDING_APPROVAL.
#[derive(InputObject)]
pub struct CreatePromoterInput {
    /// The promoter's primary venue.
    pub venue_id: ID,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email address.
    pub email: String,
    /// Phone number.
    pub phone: Option<String>,
    /// Job title.
    pub title: Option<String>,
    /// Company the promoter works for.
    pub company: Option<String>,
    /// Short biography.
    pub bio: Option<String>,
    /// Social media handles, a JSON object such as `{"instagram": "@pat"}`.
    pub social_media: Option<Json<serde_json::Value>>,
    /// Tier (default STANDARD).
    pub tier: Option<PromoterTier>,
}

/// The promoter signed up.
#[derive(SimpleObject)]
pub struct CreatePromoterPayload {
    /// The new promoter, PENDING_APPROVAL.
    pub promoter: Promoter,
}

/// A promoter to approve (PENDING_APPROVAL -> ACTIVE; MANAGER or above at their venue).
#[derive(InputObject)]
pub struct ApprovePromoterInput {
    /// The promoter.
    pub promoter_id: ID,
}

/// The promoter approved.
#[derive(SimpleObject)]
pub struct ApprovePromoterPayload {
    /// The promoter, now ACTIVE.
    pub promoter: Promoter,
}

/// A promoter to suspend (ACTIVE -> SUSPENDED; MANAGER or above at their venue).
#[derive(InputObject)]
pub struct SuspendPromoterInput {
    /// The promoter.
    pub promoter_id: ID,
}

/// The promoter suspended.
#[derive(SimpleObject)]
pub struct SuspendPromoterPayload {
    /// The promoter, now SUSPENDED.
    pub promoter: Promoter,
}

/// A promoter's new tier (MANAGER or above at their venue).
#[derive(InputObject)]
pub struct SetPromoterTierInput {
    /// The promoter.
    pub promoter_id: ID,
    /// The new tier.
    pub tier: PromoterTier,
}

/// The promoter with their new tier.
#[derive(SimpleObject)]
pub struct SetPromoterTierPayload {
    /// The promoter, as changed.
    pub promoter: Promoter,
}

/// Promoter mutations: signing promoters up, approving, suspending them and setting their tier.
#[derive(Default)]
pub struct PromoterMutation;

/// Promoter mutations: signing promoters up, approving, suspending them and setting their tier.
#[Object]
impl PromoterMutation {
    /// Signs up a promoter at a venue (MANAGER or above there); they earn nothing until
    /// approved.
    async fn create_promoter(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The promoter and their venue.")] input: CreatePromoterInput,
    ) -> Result<CreatePromoterPayload> {
        let actor = actor(ctx)?;
        let venue_id = parse_id("venueId", &input.venue_id)?;
        let promoter = prima_service::promoters::write::create_promoter(
            &deps(ctx).db.conn,
            actor,
            prima_service::promoters::write::NewPromoter {
                venue_id,
                first_name: input.first_name,
                last_name: input.last_name,
                email: input.email,
                phone: input.phone,
                title: input.title,
                company: input.company,
                bio: input.bio,
                social_media: input.social_media.map(|json| json.0),
                tier: input.tier,
            },
        )
        .await?;
        Ok(CreatePromoterPayload {
            promoter: Promoter(promoter),
        })
    }

    /// Approves a promoter (PENDING_APPROVAL -> ACTIVE; MANAGER or above at their venue).
    /// Any other starting status is a CONFLICT.
    async fn approve_promoter(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The promoter to approve.")] input: ApprovePromoterInput,
    ) -> Result<ApprovePromoterPayload> {
        let actor = actor(ctx)?;
        let id = parse_id("promoterId", &input.promoter_id)?;
        let promoter =
            prima_service::promoters::write::approve_promoter(&deps(ctx).db.conn, actor, id)
                .await?;
        Ok(ApprovePromoterPayload {
            promoter: Promoter(promoter),
        })
    }

    /// Suspends a promoter (ACTIVE -> SUSPENDED; MANAGER or above at their venue); they
    /// earn no commission while suspended. Any other starting status is a CONFLICT.
    async fn suspend_promoter(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The promoter to suspend.")] input: SuspendPromoterInput,
    ) -> Result<SuspendPromoterPayload> {
        let actor = actor(ctx)?;
        let id = parse_id("promoterId", &input.promoter_id)?;
        let promoter =
            prima_service::promoters::write::suspend_promoter(&deps(ctx).db.conn, actor, id)
                .await?;
        Ok(SuspendPromoterPayload {
            promoter: Promoter(promoter),
        })
    }

    /// Sets a promoter's tier (MANAGER or above at their venue). Their commission
    /// assignment keeps its rate: assign a rate of the new tier to change what they earn.
    async fn set_promoter_tier(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The promoter and their new tier.")] input: SetPromoterTierInput,
    ) -> Result<SetPromoterTierPayload> {
        let actor = actor(ctx)?;
        let id = parse_id("promoterId", &input.promoter_id)?;
        let promoter = prima_service::promoters::write::set_promoter_tier(
            &deps(ctx).db.conn,
            actor,
            id,
            input.tier,
        )
        .await?;
        Ok(SetPromoterTierPayload {
            promoter: Promoter(promoter),
        })
    }
}
