//! Who may see and do what (DOMAIN.md "Access").
//!
//! Policy: a global ADMIN sees and does everything. Everyone else acts only on venues where
//! they hold an unrevoked `user_venue_access` row, with that row's role
//! (OWNER > ADMIN > MANAGER > COORDINATOR); a global VIEWER is read-only on its venues.
//! Visibility is expressed as sets of venue ids that every query puts into its SQL
//! ([`Actor::venues_where`]), never as a filter after loading. A venue outside the caller's
//! set is indistinguishable from one that does not exist ([`Error::NotFound`]); a visible
//! venue whose role is too low for the action gives [`Error::Forbidden`].
//!
//! This file holds the actor, its levels and capabilities, and the field-level rules
//! (financial values, masked contact data); [`scope`] turns a capability into the venue
//! set every query puts into its SQL, and [`grants`] grants and revokes venue roles.

pub mod grants;
pub mod scope;

use std::collections::HashMap;
use std::sync::Arc;

use prima_entity::enums::{UserRole, VenueRole};
use uuid::Uuid;

use crate::error::{Error, Result};
use scope::Scope;

/// A user's effective power at one venue, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Global VIEWER: reads venues, guests (masked) and bookings.
    Viewer,
    /// Reads venues, guests (masked) and bookings; creates and edits bookings.
    Coordinator,
    /// Also promoters, incentives, commission assignments and financial reads.
    Manager,
    /// Also pricing, commission rates, venue settings, payout approval, access grants.
    Admin,
    /// The venue's owner: everything an admin can do.
    Owner,
}

impl Level {
    /// The role's name, as audit and history rows record it (`OWNER`, `ADMIN`, `MANAGER`,
    /// `COORDINATOR`, `VIEWER`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Owner => "OWNER",
            Level::Admin => "ADMIN",
            Level::Manager => "MANAGER",
            Level::Coordinator => "COORDINATOR",
            Level::Viewer => "VIEWER",
        }
    }

    /// The level a venue access row grants, capped for a read-only global VIEWER.
    pub fn of(global: UserRole, row: VenueRole) -> Level {
        if global == UserRole::Viewer {
            return Level::Viewer;
        }
        match row {
            VenueRole::Owner => Level::Owner,
            VenueRole::Admin => Level::Admin,
            VenueRole::Manager => Level::Manager,
            VenueRole::Coordinator => Level::Coordinator,
        }
    }
}

/// What a caller wants to do at a venue; each needs a minimum [`Level`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Venues, their pricing, guests and bookings.
    Read,
    /// Guests' last name, email and phone unmasked.
    ReadContact,
    /// Promoters, commission rates and assignments, incentives, transactions, payouts.
    ReadFinancial,
    /// Create and edit bookings and guests.
    WriteBookings,
    /// Confirm bookings; manage promoters, incentives, commission assignments.
    Manage,
    /// Pricing, commission rates, venue settings, payout approval, access grants.
    Administer,
}

impl Capability {
    /// The least level that holds this capability.
    pub fn min_level(self) -> Level {
        match self {
            Capability::Read => Level::Viewer,
            Capability::WriteBookings => Level::Coordinator,
            Capability::ReadContact | Capability::ReadFinancial | Capability::Manage => {
                Level::Manager
            }
            Capability::Administer => Level::Admin,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Capability::Read => "read this venue",
            Capability::ReadContact => "see guest contact data",
            Capability::ReadFinancial => "see promoters and financial data (MANAGER or above)",
            Capability::WriteBookings => "change bookings (COORDINATOR or above)",
            Capability::Manage => "manage this venue's operations (MANAGER or above)",
            Capability::Administer => "administer this venue (ADMIN or OWNER)",
        }
    }
}

/// The authenticated caller of a request, loaded fresh on every request (so suspension and
/// revoked access take effect on the next one).
#[derive(Debug, Clone)]
pub struct Actor {
    /// The user's id.
    pub user_id: Uuid,
    /// "First Last", recorded in audit rows.
    pub name: String,
    /// The user's global role.
    pub role: UserRole,
    /// The level held at each venue with an unrevoked access row.
    pub venues: Arc<HashMap<Uuid, Level>>,
}

impl Actor {
    /// Whether the caller is a global ADMIN.
    pub fn is_admin(&self) -> bool {
        self.role == UserRole::Admin
    }

    /// The caller's level at a venue, if any.
    pub fn level_at(&self, venue_id: Uuid) -> Option<Level> {
        if self.is_admin() {
            return Some(Level::Owner);
        }
        self.venues.get(&venue_id).copied()
    }

    /// Whether the caller holds the capability at the venue.
    pub fn can(&self, venue_id: Uuid, capability: Capability) -> bool {
        self.level_at(venue_id)
            .is_some_and(|level| level >= capability.min_level())
    }

    /// Checks a capability at a venue: NOT_FOUND when the venue is invisible to the
    /// caller, FORBIDDEN when it is visible but the role is too low.
    pub fn require(&self, venue_id: Uuid, capability: Capability) -> Result<()> {
        match self.level_at(venue_id) {
            None => Err(Error::NotFound { what: "venue" }),
            Some(level) if level >= capability.min_level() => Ok(()),
            Some(_) => Err(Error::Forbidden(format!(
                "your role does not allow you to {}",
                capability.describe()
            ))),
        }
    }

    /// The venues where the caller holds the capability, for SQL.
    pub fn venues_where(&self, capability: Capability) -> Scope {
        if self.is_admin() {
            return Scope::All;
        }
        let min = capability.min_level();
        let mut ids: Vec<Uuid> = self
            .venues
            .iter()
            .filter(|(_, level)| **level >= min)
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        Scope::Venues(ids.into())
    }
}

/// Turns the "venue not found" of [`Actor::require`](crate::access::Actor::require) into
/// "`what` not found" when the caller asked for an object of a venue they cannot see.
pub(crate) fn not_found_as(what: &'static str) -> impl Fn(Error) -> Error {
    move |err| match err {
        Error::NotFound { .. } => Error::NotFound { what },
        other => other,
    }
}

/// One financial value of an object at `venue_id`, for a caller with financial reads
/// there (DOMAIN.md "Access": MANAGER and above); FORBIDDEN below, NOT_FOUND when the venue
/// is invisible.
///
/// The field-level rule for money: every amount that concerns promoters, commissions,
/// payouts and incentives (a booking's `promoter_commission`, a promoter's revenue figures,
/// a rate's value and limits, a payout's amounts, a programme's reward and payout) needs
/// financial reads at the venue of the object that carries it, even where the object
/// itself is readable with less (a booking is readable by a COORDINATOR and a VIEWER, its
/// commission is not). The amounts a booking is sold for (its fees, the venue's pricing, a
/// quote) and a guest's figures are readable wherever the object is. Objects that are
/// financial as a whole (promoters, payouts, programmes, the ledger) are only ever loaded
/// for a caller with financial reads at their venue; their amounts go through this check
/// as well, so that an object reached by a path that forgot the rule still gives nothing.
pub fn financial<T>(actor: &Actor, venue_id: Uuid, value: T) -> Result<T> {
    actor.require(venue_id, Capability::ReadFinancial)?;
    Ok(value)
}

/// Masks a name for roles that may not see contact data: `Johnson` -> `J***`.
pub fn mask_name(name: &str) -> String {
    match name.chars().next() {
        Some(first) => format!("{first}***"),
        None => String::new(),
    }
}

/// Masks an email for roles that may not see contact data: `jane@example.com` ->
/// `j***@example.com`.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => format!("{}@{domain}", mask_name(local)),
        None => mask_name(email),
    }
}

/// Masks a phone number, keeping the last two digits: `+1 555 0100` -> `***00`.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(2)..].iter().collect();
    format!("***{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(role: UserRole, venues: &[(Uuid, Level)]) -> Actor {
        Actor {
            user_id: Uuid::new_v4(),
            name: "Test User".into(),
            role,
            venues: Arc::new(venues.iter().copied().collect()),
        }
    }

    #[test]
    fn a_global_admin_holds_every_capability_everywhere() {
        let admin = actor(UserRole::Admin, &[]);
        let venue = Uuid::new_v4();
        assert!(admin.can(venue, Capability::Administer));
        assert_eq!(admin.venues_where(Capability::Read), Scope::All);
    }

    #[test]
    fn a_venue_without_access_is_not_found_rather_than_forbidden() {
        let user = actor(UserRole::Manager, &[]);
        let err = user.require(Uuid::new_v4(), Capability::Read).unwrap_err();
        assert_eq!(err.code(), "NOT_FOUND");
    }

    #[test]
    fn a_coordinator_reads_bookings_but_not_financials() {
        let venue = Uuid::new_v4();
        let user = actor(UserRole::Coordinator, &[(venue, Level::Coordinator)]);
        assert!(user.require(venue, Capability::Read).is_ok());
        assert!(user.require(venue, Capability::WriteBookings).is_ok());
        assert_eq!(
            user.require(venue, Capability::ReadFinancial)
                .unwrap_err()
                .code(),
            "FORBIDDEN"
        );
        assert!(!user.can(venue, Capability::ReadContact));
    }

    #[test]
    fn a_financial_value_needs_financial_reads_at_its_venue() {
        let (venue, other) = (Uuid::new_v4(), Uuid::new_v4());
        let code = |actor: &Actor, venue| financial(actor, venue, 500).map_err(|e| e.code());
        let manager = actor(UserRole::Manager, &[(venue, Level::Manager)]);
        assert_eq!(code(&manager, venue), Ok(500));
        assert_eq!(code(&manager, other), Err("NOT_FOUND"));
        for (role, level) in [
            (UserRole::Coordinator, Level::Coordinator),
            (UserRole::Viewer, Level::Viewer),
        ] {
            assert_eq!(
                code(&actor(role, &[(venue, level)]), venue),
                Err("FORBIDDEN")
            );
        }
        assert_eq!(code(&actor(UserRole::Admin, &[]), other), Ok(500));
    }

    #[test]
    fn a_global_viewer_is_read_only_whatever_its_venue_row_says() {
        assert_eq!(Level::of(UserRole::Viewer, VenueRole::Owner), Level::Viewer);
        let venue = Uuid::new_v4();
        let viewer = actor(UserRole::Viewer, &[(venue, Level::Viewer)]);
        assert!(viewer.can(venue, Capability::Read));
        assert!(!viewer.can(venue, Capability::WriteBookings));
    }

    #[test]
    fn the_scope_lists_only_venues_with_enough_level() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let user = actor(
            UserRole::Manager,
            &[(a, Level::Owner), (b, Level::Coordinator)],
        );
        let Scope::Venues(ids) = user.venues_where(Capability::ReadFinancial) else {
            panic!("a non-admin never gets every venue");
        };
        assert_eq!(&*ids, &[a]);
        assert!(user.venues_where(Capability::Read).contains(b));
    }

    #[test]
    fn contact_data_is_masked_as_the_domain_says() {
        assert_eq!(mask_name("Johnson"), "J***");
        assert_eq!(mask_email("jane@example.com"), "j***@example.com");
        assert_eq!(mask_phone("+1 555 0100"), "***00");
        assert_eq!(mask_name(""), "");
    }
}
