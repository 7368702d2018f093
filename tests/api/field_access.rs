//! Access, field by field, generated from the schema itself (DOMAIN.md "Access", "Promoter
//! and guest metrics"; issue 8, defects 5 and 6).
//!
//! The walker reads the schema by introspection and builds one query that selects every
//! field of every object type reachable from `Query`: each type is expanded in full once,
//! at the shallowest place a role with the least access can reach it, and elsewhere by
//! its `id` (and `venue { id }`), connections by their nodes' ids. Then, on the demo
//! portfolio, for each role (venue OWNER, venue ADMIN, MANAGER, COORDINATOR, global VIEWER):
//!
//! 1. **Level**: the query rooted at one of the role's venues, as the role and as a
//!    reference user who holds OWNER on exactly the role's venues. Every field the role's
//!    level reaches answers as it does for the reference (contact fields masked below
//!    MANAGER); every field above it answers nothing (null or absent, FORBIDDEN or
//!    NOT_FOUND).
//! 2. **A venue it cannot see gives nothing**: the same query rooted at a venue the role
//!    cannot see, and every lookup by id of an object of that venue, answer NOT_FOUND and
//!    nothing else; no answer of the role ever holds a venue outside its own.
//! 3. **Nothing of that venue shows through**: bookings are made, completed, cancelled and
//!    missed at that venue for a guest the role sees, and the role's answer must not change
//!    by one byte (a guest's figures once counted every venue).
//!
//! The level a field needs comes from one place, [`need`]: a field returning one of the
//! [`FINANCIAL_TYPES`] (or a connection of them) needs financial reads, and so does every
//! field of type `Money` or `Decimal` unless [`READABLE_AMOUNTS`] lists it with the reason;
//! everything else is readable at the venue. A field added later falls under that rule by
//! itself, and the test fails naming `Type.field` when a field is neither reached by the
//! walker (with data behind it) nor listed in [`EXCUSED`], and when a field that gates
//! access was never seen refused below its level and given at it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use chrono::{Duration, Utc};
use prima_entity::enums::{BookingType, UserRole, VenueRole};
use prima_service::bookings::create::{self, NewBooking};
use prima_service::bookings::transition::{self, Transition};
use prima_tests::{PASSWORD, TestApp, error_codes};
use serde_json::{Value, json};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// The policy: what each field needs
// ---------------------------------------------------------------------------------------

/// A role's power at a venue, from least to most (DOMAIN.md "Access").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Level {
    Viewer,
    Coordinator,
    Manager,
    Admin,
    Owner,
}

/// Financial reads: MANAGER and above.
const FINANCIAL: Level = Level::Manager;
/// Reading the venue: every role.
const READ: Level = Level::Viewer;

/// Object types that are financial data as a whole (DOMAIN.md "Access": MANAGER and above
/// read promoters, incentives, commission assignments and financial data): a field that
/// returns one of them, or a connection of them, needs financial reads.
const FINANCIAL_TYPES: &[&str] = &[
    "Promoter",
    "CommissionRate",
    "CommissionAssignment",
    "Transaction",
    "Payout",
    "PayoutItem",
    "PayoutHold",
    "PayoutAuditEntry",
    "Incentive",
    "IncentiveProgress",
];

/// Fields of type `Money` or `Decimal` that are readable wherever their object is, and why.
/// Every other amount needs financial reads.
const READABLE_AMOUNTS: &[(&str, &str, &str)] = &[
    (
        "Booking",
        "baseFee",
        "COORDINATOR quotes and makes bookings: the price is theirs to tell the guest",
    ),
    ("Booking", "platformFee", "part of the booking's price"),
    ("Booking", "totalFee", "what the guest pays"),
    (
        "BookingQuote",
        "listPrice",
        "a quote is the price of a booking",
    ),
    (
        "BookingQuote",
        "baseFee",
        "a quote is the price of a booking",
    ),
    (
        "BookingQuote",
        "platformFeeRate",
        "a quote is the price of a booking",
    ),
    (
        "BookingQuote",
        "platformFee",
        "a quote is the price of a booking",
    ),
    (
        "BookingQuote",
        "totalFee",
        "a quote is the price of a booking",
    ),
    ("AppliedDiscount", "rate", "the discount a quote applies"),
    ("VenuePricing", "nonPrimePerDiner", "the venue's price list"),
    (
        "VenuePricing",
        "nonPrimePlatformFeePercent",
        "the venue's price list",
    ),
    ("VenuePricing", "primeBaseFor2", "the venue's price list"),
    (
        "VenuePricing",
        "primeAdditionalPerPerson",
        "the venue's price list",
    ),
    (
        "VenuePricing",
        "primePlatformFeePercent",
        "the venue's price list",
    ),
    (
        "VenuePricing",
        "minimumBookingAmount",
        "the venue's price list",
    ),
    (
        "VenuePricing",
        "earlyBirdDiscountPercent",
        "the venue's price list",
    ),
    (
        "VenuePricing",
        "repeatCustomerDiscountPercent",
        "the venue's price list",
    ),
    (
        "VenuePricing",
        "groupDiscountPercent",
        "the venue's price list",
    ),
    (
        "Venue",
        "primeRatio",
        "a planning figure of the venue's settings",
    ),
    (
        "Venue",
        "averageBookingValue",
        "a planning figure of the venue's settings",
    ),
    ("Coordinates", "latitude", "a place, not an amount"),
    ("Coordinates", "longitude", "a place, not an amount"),
    (
        "Guest",
        "totalSpent",
        "guests are read at the venue; the figure covers the caller's venues only",
    ),
    (
        "Guest",
        "averagePartySize",
        "guests are read at the venue; the figure covers the caller's venues only",
    ),
];

/// Fields shown masked below MANAGER (DOMAIN.md "Access": contact data), rather than not
/// at all.
const MASKED: &[(&str, &str)] = &[
    ("Guest", "lastName"),
    ("Guest", "email"),
    ("Guest", "phone"),
    ("Guest", "contactMasked"),
];

/// Fields the walker does not reach, and why that is fine. A type name with field `*`
/// excuses every field of the type.
const EXCUSED: &[(&str, &str, &str)] = &[
    (
        "Incentive",
        "standing",
        "takes a participant's promoter id, a value of the data the walker cannot name; it is \
         a field of Incentive (financial reads at its venue, walked here) and reads the row \
         through the same venue scope as the leaderboard (service test \
         the_leaderboard_ranks_ties_alike_and_skips_the_next_rank, tests/api/incentives.rs)",
    ),
    (
        "IncentiveStanding",
        "*",
        "only reached through Incentive.standing (above); its progress is an \
         IncentiveProgress, walked here through the leaderboard",
    ),
    (
        "Query",
        "node",
        "Relay's refetch: it returns, through the same loaders and access rules, the objects \
         this walker covers from their own roots; tests/api/node.rs checks that a hidden \
         one is null",
    ),
    (
        "Query",
        "nodes",
        "Relay's refetch of many ids: as `node`, covered by tests/api/node.rs",
    ),
    (
        "Mutation",
        "*",
        "operations, not data: each checks its own capability (tests/api/admin.rs, \
         bookings.rs); their payloads hold objects this walker covers",
    ),
    (
        "Subscription",
        "*",
        "operations, not data: access is checked per event (tests/api/realtime.rs); events \
         hold objects this walker covers",
    ),
    (
        "RefundBookingPayload",
        "refundable",
        "only `refundBooking` returns it, which needs ADMIN or OWNER",
    ),
    (
        "GeneratePayoutPayload",
        "balance",
        "only `generatePayout` returns it, which needs ADMIN or OWNER (tests/api/payouts.rs)",
    ),
    (
        "PayoutGeneration",
        "balance",
        "only `generateVenuePayouts` returns it, which needs ADMIN or OWNER",
    ),
];

/// How the walker fills the arguments it cannot guess: the query's variables are `$venue`
/// (the venue under test) and `$future` (a booking time 30 days out).
const ARGUMENTS: &[(&str, &str, &str)] = &[
    ("Query", "venue", "(id: $venue)"),
    (
        "Query",
        "quoteBooking",
        "(input: {venueId: $venue, type: PRIME, diners: 4, bookingTime: $future})",
    ),
];

/// Fields whose subtree is the caller's own (their user and roles): compared for presence,
/// not against the reference user.
const SELF_ROOTS: &[(&str, &str)] = &[("Query", "me")];

/// Rows per connection: enough for every kind of object to turn up, few enough that the
/// query stays cheap.
const PAGE: usize = 5;

/// What a field needs, from [`FINANCIAL_TYPES`] and [`READABLE_AMOUNTS`]. The fields of a
/// `Money` value need what the field that returns it needs.
fn need(schema: &Schema, owner: &str, field: &FieldDef) -> Level {
    if owner == "Money" {
        return READ;
    }
    let element = schema.element(&field.ty);
    if FINANCIAL_TYPES.contains(&element.as_str()) {
        return FINANCIAL;
    }
    let amount = matches!(field.ty.as_str(), "Money" | "Decimal");
    let readable = READABLE_AMOUNTS
        .iter()
        .any(|(t, f, _)| *t == owner && *f == field.name);
    if amount && !readable { FINANCIAL } else { READ }
}

// ---------------------------------------------------------------------------------------
// The schema, by introspection
// ---------------------------------------------------------------------------------------

const INTROSPECTION: &str = r#"{ __schema {
  queryType { name } mutationType { name } subscriptionType { name }
  types { kind name fields { name
    args { name defaultValue type { ...Ref } }
    type { ...Ref } } } } }
fragment Ref on __Type { kind name ofType { kind name ofType { kind name ofType {
  kind name ofType { kind name ofType { kind name } } } } } }"#;

struct FieldDef {
    name: String,
    /// The named type, lists and non-null unwrapped.
    ty: String,
    args: Vec<ArgDef>,
}

struct ArgDef {
    name: String,
    required: bool,
}

struct Schema {
    kinds: HashMap<String, String>,
    objects: BTreeMap<String, Vec<FieldDef>>,
    query: String,
    operations: Vec<String>,
}

fn named(ty: &Value) -> String {
    let mut ty = ty;
    while !ty["ofType"].is_null() {
        ty = &ty["ofType"];
    }
    ty["name"].as_str().expect("a named type").to_owned()
}

impl Schema {
    fn parse(data: &Value) -> Schema {
        let schema = &data["__schema"];
        let mut kinds = HashMap::new();
        let mut objects = BTreeMap::new();
        for ty in schema["types"].as_array().expect("types") {
            let name = ty["name"].as_str().unwrap().to_owned();
            let kind = ty["kind"].as_str().unwrap().to_owned();
            if kind == "OBJECT" && !name.starts_with("__") {
                let fields = ty["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| FieldDef {
                        name: f["name"].as_str().unwrap().to_owned(),
                        ty: named(&f["type"]),
                        args: f["args"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|a| ArgDef {
                                name: a["name"].as_str().unwrap().to_owned(),
                                required: a["type"]["kind"] == "NON_NULL"
                                    && a["defaultValue"].is_null(),
                            })
                            .collect(),
                    })
                    .collect();
                objects.insert(name.clone(), fields);
            }
            kinds.insert(name, kind);
        }
        let operations = ["mutationType", "subscriptionType"]
            .iter()
            .filter_map(|key| schema[key]["name"].as_str().map(str::to_owned))
            .collect();
        Schema {
            kinds,
            objects,
            query: schema["queryType"]["name"].as_str().unwrap().to_owned(),
            operations,
        }
    }

    fn kind(&self, ty: &str) -> &str {
        self.kinds.get(ty).map_or("?", String::as_str)
    }

    fn field(&self, ty: &str, name: &str) -> Option<&FieldDef> {
        self.objects.get(ty)?.iter().find(|f| f.name == name)
    }

    /// What a list of `ty` holds: a connection's node type, or `ty` itself.
    fn element(&self, ty: &str) -> String {
        match self.field(ty, "nodes") {
            Some(nodes) if self.field(ty, "edges").is_some() => nodes.ty.clone(),
            _ => ty.to_owned(),
        }
    }

    /// An object whose fields are all scalars or enums: selected in full wherever it occurs.
    fn leaf_like(&self, ty: &str) -> bool {
        self.objects.get(ty).is_some_and(|fields| {
            fields
                .iter()
                .all(|f| self.kind(&f.ty) != "OBJECT" && f.args.iter().all(|a| !a.required))
        })
    }

    /// The object types reachable from `Query`.
    fn reachable_from_query(&self) -> BTreeSet<String> {
        let mut seen = BTreeSet::from([self.query.clone()]);
        let mut todo = vec![self.query.clone()];
        while let Some(ty) = todo.pop() {
            for field in self.objects.get(&ty).into_iter().flatten() {
                if self.kind(&field.ty) == "OBJECT" && seen.insert(field.ty.clone()) {
                    todo.push(field.ty.clone());
                }
            }
        }
        seen
    }
}

// ---------------------------------------------------------------------------------------
// The selection tree
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Select {
    /// A scalar or enum.
    Leaf,
    /// Every field of the type.
    Expand,
    /// The type is expanded elsewhere: its id (and venue id), or its nodes' ids.
    Short,
}

struct Site {
    owner: String,
    field: String,
    args: String,
    ty: String,
    /// What the path to this field needs.
    level: Level,
    /// Whether the field needs more than its parent (it decides access).
    gate: bool,
    depth: usize,
    self_scoped: bool,
    /// A root looked up by id (`booking(id:)`...), walked by [`Tree::lookup_query`].
    lookup: bool,
    select: Select,
    children: Vec<usize>,
}

impl Site {
    fn key(&self) -> (String, String) {
        (self.owner.clone(), self.field.clone())
    }
    fn name(&self) -> String {
        format!("{}.{}", self.owner, self.field)
    }
}

struct Tree {
    sites: Vec<Site>,
    roots: Vec<usize>,
    /// Fields with required arguments the walker cannot fill.
    unwalkable: BTreeSet<(String, String)>,
}

impl Tree {
    fn build(schema: &Schema) -> Tree {
        let mut tree = Tree {
            sites: Vec::new(),
            roots: Vec::new(),
            unwalkable: BTreeSet::new(),
        };
        let mut heap = BinaryHeap::new();
        let mut expanded = BTreeSet::new();
        let query = schema.query.clone();
        for field in &schema.objects[&query] {
            if let Some(id) = tree.add(schema, None, &query, field, &mut heap) {
                tree.roots.push(id);
            }
        }
        while let Some(Reverse((_, _, id))) = heap.pop() {
            let ty = tree.sites[id].ty.clone();
            if schema.kind(&ty) != "OBJECT" {
                assert!(
                    matches!(schema.kind(&ty), "SCALAR" | "ENUM"),
                    "the walker knows objects, scalars and enums; teach it {} ({})",
                    ty,
                    schema.kind(&ty)
                );
                tree.sites[id].select = Select::Leaf;
            } else if tree.sites[id].lookup {
                tree.short(schema, id, 2);
            } else if schema.leaf_like(&ty) || expanded.insert(ty.clone()) {
                tree.sites[id].select = Select::Expand;
                for field in &schema.objects[&ty] {
                    if let Some(child) = tree.add(schema, Some(id), &ty, field, &mut heap) {
                        tree.sites[id].children.push(child);
                    }
                }
            } else {
                tree.short(schema, id, 2);
            }
        }
        tree
    }

    /// Adds a site for `field` of `owner` under `parent`, queued to be decided in order of
    /// (level, depth), so that a type is expanded where the least access reaches it.
    fn add(
        &mut self,
        schema: &Schema,
        parent: Option<usize>,
        owner: &str,
        field: &FieldDef,
        heap: &mut BinaryHeap<Reverse<(Level, usize, usize)>>,
    ) -> Option<usize> {
        let id = self.site(schema, parent, owner, field)?;
        let site = &self.sites[id];
        heap.push(Reverse((site.level, site.depth, id)));
        Some(id)
    }

    /// A site for `field` of `owner` under `parent`, not queued; `None` when its required
    /// arguments cannot be filled (recorded in `unwalkable`).
    fn site(
        &mut self,
        schema: &Schema,
        parent: Option<usize>,
        owner: &str,
        field: &FieldDef,
    ) -> Option<usize> {
        let given = ARGUMENTS
            .iter()
            .find(|(t, f, _)| *t == owner && *f == field.name)
            .map(|(_, _, args)| (*args).to_owned());
        // Interface-typed fields (`node`, `nodes`) return the objects walked elsewhere;
        // they are excused in EXCUSED and covered by tests/api/node.rs.
        if schema.kind(&field.ty) == "INTERFACE" {
            return None;
        }
        let is_root = parent.is_none();
        let lookup = is_root
            && given.is_none()
            && field
                .args
                .iter()
                .filter(|a| a.required)
                .map(|a| a.name.as_str())
                .eq(["id"]);
        let args = match given {
            Some(args) => args,
            None if lookup => format!("(id: ${})", field.name),
            None if field.args.iter().any(|a| a.required) => {
                self.unwalkable
                    .insert((owner.to_owned(), field.name.clone()));
                return None;
            }
            None if field.args.iter().any(|a| a.name == "first") => format!("(first: {PAGE})"),
            None => String::new(),
        };
        let own = need(schema, owner, field);
        let (parent_level, depth, parent_self) = match parent {
            Some(p) => (
                self.sites[p].level,
                self.sites[p].depth + 1,
                self.sites[p].self_scoped,
            ),
            None => (READ, 0, false),
        };
        let self_scoped = parent_self
            || SELF_ROOTS
                .iter()
                .any(|(t, f)| *t == owner && *f == field.name);
        self.sites.push(Site {
            owner: owner.to_owned(),
            field: field.name.clone(),
            args,
            ty: field.ty.clone(),
            level: parent_level.max(own),
            gate: own > parent_level,
            depth,
            self_scoped,
            lookup,
            select: Select::Leaf,
            children: Vec::new(),
        });
        Some(self.sites.len() - 1)
    }

    /// Selects a type expanded elsewhere by its `id` and `venue { id }`, or, for a type
    /// without an id (a connection, an edge), by the short form of its object fields.
    fn short(&mut self, schema: &Schema, id: usize, budget: usize) {
        let ty = self.sites[id].ty.clone();
        self.sites[id].select = Select::Short;
        let fields = &schema.objects[&ty];
        let has_id = fields.iter().any(|f| f.name == "id");
        for field in fields {
            let wanted = if has_id {
                field.name == "id" || (field.name == "venue" && field.ty == "Venue")
            } else {
                budget > 0 && schema.kind(&field.ty) == "OBJECT" && !schema.leaf_like(&field.ty)
            };
            if !wanted {
                continue;
            }
            let Some(child) = self.site(schema, Some(id), &ty, field) else {
                continue;
            };
            self.sites[id].children.push(child);
            if schema.kind(&field.ty) == "OBJECT" {
                self.short(schema, child, budget.saturating_sub(1));
            }
        }
    }

    fn text(&self, id: usize) -> String {
        let site = &self.sites[id];
        let mut out = format!("{}{}", site.field, site.args);
        if site.select != Select::Leaf {
            let mut inner: Vec<String> = site.children.iter().map(|c| self.text(*c)).collect();
            if inner.is_empty() {
                inner.push("__typename".into());
            }
            out.push_str(&format!(" {{ {} }}", inner.join(" ")));
        }
        out
    }

    /// Every root but the lookups by id, under `$venue` and `$future`.
    fn main_query(&self) -> String {
        let roots: Vec<String> = self
            .roots
            .iter()
            .filter(|r| !self.sites[**r].lookup)
            .map(|r| self.text(*r))
            .collect();
        format!(
            "query Walk($venue: ID!, $future: DateTime!) {{ {} }}",
            roots.join(" ")
        )
    }

    /// The lookups by id for which `ids` holds an id of the looked-up type.
    fn lookup_query(&self, ids: &BTreeMap<String, String>) -> Option<(String, Value)> {
        let mut declared = Vec::new();
        let mut fields = Vec::new();
        let mut variables = serde_json::Map::new();
        for &root in &self.roots {
            let site = &self.sites[root];
            if let (true, Some(id)) = (site.lookup, ids.get(&site.ty)) {
                declared.push(format!("${}: ID!", site.field));
                fields.push(self.text(root));
                variables.insert(site.field.clone(), json!(id));
            }
        }
        (!fields.is_empty()).then(|| {
            (
                format!(
                    "query Lookup({}) {{ {} }}",
                    declared.join(", "),
                    fields.join(" ")
                ),
                Value::Object(variables),
            )
        })
    }

    /// The first id of each object type in an answer, and every venue id it holds.
    fn ids(&self, data: &Value) -> (BTreeMap<String, String>, BTreeSet<String>) {
        let mut first = BTreeMap::new();
        let mut venues = BTreeSet::new();
        for root in &self.roots {
            self.collect(
                *root,
                &data[&self.sites[*root].field],
                &mut first,
                &mut venues,
            );
        }
        (first, venues)
    }

    fn collect(
        &self,
        id: usize,
        value: &Value,
        first: &mut BTreeMap<String, String>,
        venues: &mut BTreeSet<String>,
    ) {
        let site = &self.sites[id];
        match value {
            Value::Array(items) => items
                .iter()
                .for_each(|item| self.collect(id, item, first, venues)),
            Value::Object(map) => {
                if let Some(Value::String(object_id)) = map.get("id") {
                    first
                        .entry(site.ty.clone())
                        .or_insert_with(|| object_id.clone());
                    if site.ty == "Venue" {
                        venues.insert(object_id.clone());
                    }
                }
                for child in &site.children {
                    let name = &self.sites[*child].field;
                    self.collect(*child, map.get(name).unwrap_or(&Value::Null), first, venues);
                }
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// Comparing answers
// ---------------------------------------------------------------------------------------

/// What the walk saw, over every role and run.
#[derive(Default)]
struct Seen {
    /// Fields resolved on an object the reference could see.
    resolved: BTreeSet<(String, String)>,
    /// Gates refused to a role below their level where the reference had a value.
    refused: BTreeSet<(String, String)>,
    /// Gates given to a role at their level where the reference had a value.
    given: BTreeSet<(String, String)>,
    /// Everything wrong, one line per field, role and kind of problem.
    failures: BTreeMap<(String, String, &'static str), String>,
}

impl Seen {
    fn fail(&mut self, site: &Site, who: &str, kind: &'static str, detail: String) {
        self.failures
            .entry((site.name(), who.to_owned(), kind))
            .or_insert(detail);
    }
}

/// How an answer is held against another.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Against {
    /// The reference user, who holds OWNER on the same venues.
    Reference,
    /// The same role's earlier answer (after changes it must not see).
    Earlier,
}

struct Walk<'a> {
    tree: &'a Tree,
    who: &'a str,
    level: Level,
    against: Against,
}

impl Walk<'_> {
    fn answers(&self, got: &Value, expected: &Value, seen: &mut Seen) {
        for root in &self.tree.roots {
            let field = &self.tree.sites[*root].field;
            if let (Some(got), Some(expected)) = (got.get(field), expected.get(field)) {
                self.field(*root, got, expected, field.clone(), seen);
            } else if let Some(expected) = expected.get(field) {
                self.field(*root, &Value::Null, expected, field.clone(), seen);
            }
        }
    }

    fn field(&self, id: usize, got: &Value, expected: &Value, path: String, seen: &mut Seen) {
        let site = &self.tree.sites[id];
        if self.against == Against::Reference {
            seen.resolved.insert(site.key());
        }
        if site.level > self.level {
            if !got.is_null() {
                seen.fail(
                    site,
                    self.who,
                    "leak",
                    format!(
                        "needs {:?} but answered {got} at {path} (the role is {:?})",
                        site.level, self.level
                    ),
                );
            }
            if site.gate && !expected.is_null() && self.against == Against::Reference {
                seen.refused.insert(site.key());
            }
            return;
        }
        let loose = site.self_scoped && self.against == Against::Reference;
        match (got, expected) {
            (Value::Null, Value::Null) => {}
            (_, Value::Null) if !loose => seen.fail(
                site,
                self.who,
                "extra",
                format!("answered {got} at {path} where the other answer has nothing"),
            ),
            (Value::Null, _) if !loose => seen.fail(
                site,
                self.who,
                "missing",
                format!("answered nothing at {path}, the other answer has {expected}"),
            ),
            (Value::Null, _) | (_, Value::Null) => {}
            _ => {
                if site.gate && self.against == Against::Reference {
                    seen.given.insert(site.key());
                }
                self.value(site, id, got, expected, path, loose, seen);
            }
        }
    }

    #[allow(clippy::too_many_arguments, clippy::only_used_in_recursion)]
    fn value(
        &self,
        site: &Site,
        id: usize,
        got: &Value,
        expected: &Value,
        path: String,
        loose: bool,
        seen: &mut Seen,
    ) {
        match (got, expected) {
            (Value::Array(got), Value::Array(expected)) => {
                if got.len() != expected.len() && !loose {
                    seen.fail(
                        site,
                        self.who,
                        "length",
                        format!(
                            "{} items at {path}, the other answer has {}",
                            got.len(),
                            expected.len()
                        ),
                    );
                }
                for (i, (g, e)) in got.iter().zip(expected).enumerate() {
                    self.value(site, id, g, e, format!("{path}[{i}]"), loose, seen);
                }
            }
            (Value::Object(got), Value::Object(expected)) => {
                for child in &site.children {
                    let name = &self.tree.sites[*child].field;
                    self.field(
                        *child,
                        got.get(name).unwrap_or(&Value::Null),
                        expected.get(name).unwrap_or(&Value::Null),
                        format!("{path}.{name}"),
                        seen,
                    );
                }
            }
            _ if loose => {}
            _ => {
                let masked = MASKED
                    .iter()
                    .any(|(t, f)| *t == site.owner && *f == site.field)
                    && self.level < FINANCIAL
                    && self.against == Against::Reference;
                if masked {
                    if got == expected {
                        seen.fail(
                            site,
                            self.who,
                            "unmasked",
                            format!("shows {got} at {path} unmasked"),
                        );
                    }
                } else if got != expected {
                    seen.fail(
                        site,
                        self.who,
                        "differs",
                        format!("answered {got} at {path}, the other answer has {expected}"),
                    );
                }
            }
        }
    }
}

/// Every error of a response is FORBIDDEN or NOT_FOUND (never INTERNAL or a leak of
/// another kind), and it came with data.
fn only_refusals(response: &Value, what: &str) {
    for code in error_codes(response) {
        assert!(
            code == "FORBIDDEN" || code == "NOT_FOUND",
            "{what}: an error other than FORBIDDEN or NOT_FOUND: {response}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------------------

struct Role {
    email: &'static str,
    /// How the role is named in messages.
    name: &'static str,
    token: String,
    level: Level,
    venues: BTreeSet<String>,
}

/// Logs in and reads the user's venues and effective level (a global VIEWER is a viewer
/// whatever its venue row says).
async fn role(app: &TestApp, email: &'static str, name: &'static str) -> Role {
    let token = app.login(email).await;
    let me = app
        .query_ok(
            &token,
            "{ me { user { role } venueRoles { role venue { id } } } }",
            json!({}),
        )
        .await;
    let viewer = me["me"]["user"]["role"] == "VIEWER";
    let mut venues = BTreeSet::new();
    let mut level = Level::Owner;
    for row in me["me"]["venueRoles"].as_array().unwrap() {
        venues.insert(row["venue"]["id"].as_str().unwrap().to_owned());
        let here = match row["role"].as_str().unwrap() {
            _ if viewer => Level::Viewer,
            "OWNER" => Level::Owner,
            "ADMIN" => Level::Admin,
            "MANAGER" => Level::Manager,
            _ => Level::Coordinator,
        };
        level = level.min(here);
    }
    assert!(!venues.is_empty(), "{email} has a venue");
    Role {
        email,
        name,
        token,
        level,
        venues,
    }
}

/// A user who holds OWNER on exactly `venues`: what a role would see with every right at
/// its venues.
async fn reference_user(app: &TestApp, venues: &BTreeSet<String>, n: usize) -> String {
    let email = format!("reference-{n}@prima.test");
    prima_service::users::create_user(
        &app.db.db.conn,
        &prima_service::auth::Hasher::new(prima_service::auth::HashLimits::for_machine()),
        prima_service::users::NewUser {
            email: email.clone(),
            password: PASSWORD.to_owned(),
            first_name: "Reference".into(),
            last_name: format!("Owner {n}"),
            role: UserRole::Manager,
            venues: venues
                .iter()
                .map(|v| (v.parse().unwrap(), VenueRole::Owner))
                .collect(),
        },
    )
    .await
    .expect("creating a reference user");
    app.login(&email).await
}

/// Makes bookings for `guest` at `venue` and moves them through every counter (completed,
/// cancelled, no-show), through the write path, as the global ADMIN.
async fn bookings_elsewhere(app: &TestApp, admin: Uuid, venue: &str, guest: &str) {
    let db = &app.db.db;
    let actor = prima_service::auth::actor_for(&db.conn, admin)
        .await
        .unwrap();
    let now = Utc::now();
    let mut made = Vec::new();
    for days in [60, 61, 62] {
        let at = now + Duration::days(days);
        let booking = create::create_booking_at(
            db,
            &actor,
            NewBooking {
                venue_id: venue.parse().unwrap(),
                guest_id: guest.parse().unwrap(),
                promoter_id: None,
                booking_type: BookingType::NonPrime,
                diners: 4,
                booking_time: at,
                duration_minutes: None,
                special_requests: None,
                notes: None,
                source: None,
                client: Default::default(),
            },
            None,
            now,
        )
        .await
        .expect("a booking at the hidden venue");
        if booking.status == prima_entity::enums::BookingStatus::Pending {
            transition::transition_at(db, &actor, booking.id, Transition::Confirm, now)
                .await
                .expect("confirming it");
        }
        made.push((booking.id, at));
    }
    let moves = [
        Transition::Complete,
        Transition::Cancel {
            reason: "the guest called".into(),
        },
        Transition::NoShow { reason: None },
    ];
    for ((id, at), transition) in made.into_iter().zip(moves) {
        let when = match transition {
            Transition::Cancel { .. } => now,
            _ => at + Duration::hours(3),
        };
        transition::transition_at(db, &actor, id, transition, when)
            .await
            .expect("moving the booking");
    }
}

/// A guest of the venue who may book (not BLOCKED).
async fn bookable_guest(app: &TestApp, token: &str, venue: &str) -> String {
    let data = app
        .query_ok(
            token,
            "query($v: ID!) { venue(id: $v) { guests(first: 20) { nodes { id status } } } }",
            json!({ "v": venue }),
        )
        .await;
    data["venue"]["guests"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["status"] != "BLOCKED")
        .expect("the venue has a guest who may book")["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn run(app: &TestApp, token: &str, query: &str, variables: &Value) -> Value {
    app.graphql(Some(token), query, variables.clone()).await
}

// ---------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_field_of_every_type_answers_each_role_only_what_its_level_at_its_venues_allows() {
    let started = std::time::Instant::now();
    let app = TestApp::demo(600).await;
    let admin = app.login("admin@prima.demo").await;
    let schema = Schema::parse(&app.query_ok(&admin, INTROSPECTION, json!({})).await);
    let tree = Tree::build(&schema);
    let main = tree.main_query();
    let future = (Utc::now() + Duration::days(30)).to_rfc3339();
    let vars = |venue: &str| json!({ "venue": venue, "future": future });
    let admin_id: Uuid = app
        .query_ok(&admin, "{ me { user { id } } }", json!({}))
        .await["me"]["user"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let all_venues: Vec<String> = app
        .query_ok(&admin, "{ venues(first: 100) { nodes { id } } }", json!({}))
        .await["venues"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();

    let mut seen = Seen::default();
    let mut references: HashMap<BTreeSet<String>, String> = HashMap::new();
    for (email, name) in [
        ("owner@prima.demo", "venue OWNER"),
        ("gm@prima.demo", "venue ADMIN"),
        ("manager@prima.demo", "MANAGER"),
        ("coordinator@prima.demo", "COORDINATOR"),
        ("viewer@prima.demo", "global VIEWER"),
    ] {
        let role = role(&app, email, name).await;
        let n = references.len();
        let reference = match references.get(&role.venues) {
            Some(token) => token.clone(),
            None => {
                let token = reference_user(&app, &role.venues, n).await;
                references.insert(role.venues.clone(), token.clone());
                token
            }
        };
        let venue = role.venues.iter().next().unwrap().clone();
        let who = format!("{} ({})", role.name, role.email);

        // 1. Level: the role against the reference, at the role's venue.
        let expected = run(&app, &reference, &main, &vars(&venue)).await;
        assert!(
            error_codes(&expected).is_empty(),
            "the reference user sees everything at its venues: {expected}"
        );
        let got = run(&app, &role.token, &main, &vars(&venue)).await;
        only_refusals(&got, &who);
        let walk = Walk {
            tree: &tree,
            who: &who,
            level: role.level,
            against: Against::Reference,
        };
        walk.answers(&got["data"], &expected["data"], &mut seen);
        let (ids, _) = tree.ids(&expected["data"]);
        let (_, venues_seen) = tree.ids(&got["data"]);
        if let Some((lookup, lookup_vars)) = tree.lookup_query(&ids) {
            let expected = run(&app, &reference, &lookup, &lookup_vars).await;
            let got_lookup = run(&app, &role.token, &lookup, &lookup_vars).await;
            only_refusals(&got_lookup, &who);
            walk.answers(&got_lookup["data"], &expected["data"], &mut seen);
        }

        // 2. A venue the role cannot see: nothing of it from any root.
        let hidden = all_venues
            .iter()
            .find(|v| !role.venues.contains(*v))
            .expect("a venue the role cannot see")
            .clone();
        let there = run(&app, &role.token, &main, &vars(&hidden)).await;
        only_refusals(&there, &who);
        for root in tree.roots.iter().map(|r| &tree.sites[*r]) {
            if root.args.contains("$venue") {
                assert!(
                    there["data"][&root.field].is_null(),
                    "{who}: Query.{} answered for a venue it cannot see: {there}",
                    root.field
                );
            }
        }
        assert!(
            error_codes(&there).iter().all(|c| c == "NOT_FOUND"),
            "{who}: a venue it cannot see must look like no venue at all: {there}"
        );
        let (_, venues_there) = tree.ids(&there["data"]);
        let admin_there = app.query_ok(&admin, &main, vars(&hidden)).await;
        let (hidden_ids, _) = tree.ids(&admin_there);
        let venue_scoped: BTreeMap<String, String> = hidden_ids
            .into_iter()
            .filter(|(ty, _)| ty == "Venue" || schema.field(ty, "venue").is_some())
            .collect();
        if let Some((lookup, lookup_vars)) = tree.lookup_query(&venue_scoped) {
            let answer = run(&app, &role.token, &lookup, &lookup_vars).await;
            for root in tree.roots.iter().map(|r| &tree.sites[*r]) {
                if lookup_vars.get(&root.field).is_some() {
                    assert!(
                        answer["data"][&root.field].is_null(),
                        "{who}: Query.{} found an object of a venue it cannot see: {answer}",
                        root.field
                    );
                }
            }
            assert!(
                error_codes(&answer).iter().all(|c| c == "NOT_FOUND")
                    && !error_codes(&answer).is_empty(),
                "{who}: lookups at a venue it cannot see: {answer}"
            );
        }
        for venue in venues_seen.iter().chain(&venues_there) {
            assert!(
                role.venues.contains(venue),
                "{who}: an answer holds venue {venue}, which the role cannot see"
            );
        }

        // 3. Bookings at that venue, for a guest the role sees, change nothing it sees.
        let guest = bookable_guest(&app, &reference, &venue).await;
        let before = run(&app, &role.token, &main, &vars(&venue)).await;
        bookings_elsewhere(&app, admin_id, &hidden, &guest).await;
        let after = run(&app, &role.token, &main, &vars(&venue)).await;
        let unchanged = Walk {
            tree: &tree,
            who: &format!("{who} after bookings at a venue it cannot see"),
            level: role.level,
            against: Against::Earlier,
        };
        unchanged.answers(&after["data"], &before["data"], &mut seen);
        assert_eq!(
            error_codes(&after),
            error_codes(&before),
            "{who}: the errors changed after bookings at a venue it cannot see"
        );
    }

    // Every field was reached, or is excused; every gate was seen to close and to open.
    let excused = |ty: &str, field: &str| {
        EXCUSED
            .iter()
            .any(|(t, f, _)| *t == ty && (*f == "*" || *f == field))
    };
    let from_query = schema.reachable_from_query();
    let mut problems: Vec<String> = seen
        .failures
        .iter()
        .map(|((field, who, kind), detail)| format!("{field} [{kind}] {who}: {detail}"))
        .collect();
    for (ty, fields) in &schema.objects {
        for field in fields {
            if excused(ty, &field.name) || seen.resolved.contains(&(ty.clone(), field.name.clone()))
            {
                continue;
            }
            let amount = matches!(field.ty.as_str(), "Money" | "Decimal");
            let only_from_operations = !from_query.contains(ty) && !schema.operations.contains(ty);
            if only_from_operations && !amount {
                // A payload or event type: its objects are walked from `Query`; only its
                // amounts must be excused by name.
                continue;
            }
            let why = if tree.unwalkable.contains(&(ty.clone(), field.name.clone())) {
                "it takes arguments the walker cannot fill (give them in ARGUMENTS)"
            } else if only_from_operations {
                "an amount reached only through a mutation or subscription (excuse it in \
                 EXCUSED with the capability that guards it)"
            } else {
                "no object of its type turned up in the demo data the walker reads"
            };
            problems.push(format!(
                "{ty}.{}: not reached by the walker nor excused: {why}",
                field.name
            ));
        }
    }
    let gates: BTreeSet<_> = tree
        .sites
        .iter()
        .filter(|s| s.gate)
        .map(|s| (s.key(), s.level))
        .collect();
    for ((ty, field), level) in gates {
        let key = (ty.clone(), field.clone());
        if excused(&ty, &field) {
            continue;
        }
        if !seen.refused.contains(&key) {
            problems.push(format!(
                "{ty}.{field} needs {level:?}: never seen refused to a role below it with data \
                 behind it"
            ));
        }
        if !seen.given.contains(&key) {
            problems.push(format!(
                "{ty}.{field} needs {level:?}: never seen given to a role at that level with \
                 data behind it"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );

    // The changes went through the write path: every invariant still holds.
    let report = prima_service::check::run(&app.db.db.conn, None)
        .await
        .unwrap();
    assert_eq!(report.discrepancies, Vec::new());
    eprintln!(
        "field access: {} object types, {} fields walked, {} gates, 5 roles, in {:.1?}",
        schema.objects.len(),
        seen.resolved.len(),
        tree.sites.iter().filter(|s| s.gate).count(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// Regression tests of the two leaks (issue 8, defects 5 and 6)
// ---------------------------------------------------------------------------------------

/// A guest's figures recomputed from a list of their bookings (DOMAIN.md "Promoter and
/// guest metrics"): bookings of every status, cancelled, no-shows, the COMPLETED total fees,
/// the mean party size rounded half away from zero to one place (2.0 without bookings),
/// the latest booking time.
fn figures_of<'a>(bookings: impl Iterator<Item = &'a Value>) -> Value {
    use rust_decimal::{Decimal, RoundingStrategy};
    let (mut n, mut cancelled, mut no_show, mut diners) = (0i64, 0i64, 0i64, 0i64);
    let mut spent = Decimal::ZERO;
    let mut last: Option<chrono::DateTime<Utc>> = None;
    for b in bookings {
        n += 1;
        diners += b["diners"].as_i64().unwrap();
        match b["status"].as_str().unwrap() {
            "CANCELLED" => cancelled += 1,
            "NO_SHOW" => no_show += 1,
            "COMPLETED" => {
                spent += b["totalFee"]["amount"]
                    .as_str()
                    .unwrap()
                    .parse::<Decimal>()
                    .unwrap()
            }
            _ => {}
        }
        let at: chrono::DateTime<Utc> = b["bookingTime"].as_str().unwrap().parse().unwrap();
        last = last.max(Some(at));
    }
    let average = if n == 0 {
        Decimal::new(20, 1)
    } else {
        (Decimal::from(diners) / Decimal::from(n))
            .round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero)
    };
    json!({
        "totalBookings": n,
        "cancelledBookings": cancelled,
        "noShowBookings": no_show,
        "totalSpent": spent.normalize(),
        "averagePartySize": average.normalize(),
        "lastBookingAt": last,
    })
}

/// The figures as the API answered them, in the same shape as [`figures_of`].
fn figures_answered(guest: &Value) -> Value {
    use rust_decimal::Decimal;
    let decimal = |v: &Value| v.as_str().unwrap().parse::<Decimal>().unwrap();
    let at = |v: &Value| {
        v.as_str()
            .map(|t| t.parse::<chrono::DateTime<Utc>>().unwrap())
    };
    json!({
        "totalBookings": guest["totalBookings"],
        "cancelledBookings": guest["cancelledBookings"],
        "noShowBookings": guest["noShowBookings"],
        "totalSpent": decimal(&guest["totalSpent"]).normalize(),
        "averagePartySize": decimal(&guest["averagePartySize"]).normalize(),
        "lastBookingAt": at(&guest["lastBookingAt"]),
    })
}

const FIGURES: &str = "id totalBookings cancelledBookings noShowBookings totalSpent \
                       averagePartySize lastBookingAt";

#[tokio::test]
async fn a_single_venue_user_sees_a_guests_figures_of_their_venue_only_and_an_admin_sees_all() {
    let app = TestApp::demo(600).await;
    let admin = app.login("admin@prima.demo").await;
    let coordinator = role(&app, "coordinator@prima.demo", "COORDINATOR").await;
    let venue = coordinator.venues.iter().next().unwrap().clone();
    let query = format!(
        "query($v: ID!) {{ venue(id: $v) {{ guests(first: 40) {{ nodes {{ {FIGURES}
           bookings(first: 60) {{ totalCount nodes {{ venue {{ id }} status diners bookingTime
             totalFee {{ amount }} }} }} }} }} }} }}"
    );
    let as_admin = app.query_ok(&admin, &query, json!({ "v": venue })).await;
    let mine = app
        .query_ok(
            &coordinator.token,
            &format!(
                "query($v: ID!) {{ venue(id: $v) {{ guests(first: 40) {{ nodes {{ {FIGURES} }} }} }} }}"
            ),
            json!({ "v": venue }),
        )
        .await;
    let theirs: HashMap<&str, &Value> = mine["venue"]["guests"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["id"].as_str().unwrap(), g))
        .collect();
    let guests = as_admin["venue"]["guests"]["nodes"].as_array().unwrap();
    assert!(guests.len() >= 10, "the venue has guests: {}", guests.len());
    let mut booked_elsewhere = 0;
    for guest in guests {
        let id = guest["id"].as_str().unwrap();
        let bookings = guest["bookings"]["nodes"].as_array().unwrap();
        assert_eq!(
            guest["bookings"]["totalCount"].as_u64().unwrap() as usize,
            bookings.len(),
            "every booking of guest {id} is on the page"
        );
        // The global ADMIN: every venue.
        assert_eq!(
            figures_answered(guest),
            figures_of(bookings.iter()),
            "the admin's figures of guest {id}"
        );
        // The coordinator: this venue only.
        let here = figures_of(
            bookings
                .iter()
                .filter(|b| b["venue"]["id"] == venue.as_str()),
        );
        assert_eq!(
            figures_answered(theirs[id]),
            here,
            "the coordinator's figures of guest {id}, who booked at {} venue(s)",
            bookings
                .iter()
                .map(|b| b["venue"]["id"].as_str().unwrap())
                .collect::<BTreeSet<_>>()
                .len()
        );
        if bookings.iter().any(|b| b["venue"]["id"] != venue.as_str()) {
            booked_elsewhere += 1;
        }
    }
    eprintln!(
        "{booked_elsewhere} of {} guests of the coordinator's venue also booked elsewhere",
        guests.len()
    );
    assert!(
        booked_elsewhere > 0,
        "some guests of the venue also booked elsewhere (the case that leaked)"
    );
}

#[tokio::test]
async fn coordinators_and_viewers_get_forbidden_on_a_bookings_promoter_commission() {
    let app = TestApp::demo(300).await;
    let query = "query($v: ID!) { venue(id: $v) { bookings(first: 30) { nodes {
        id totalFee { amount } promoterCommission { amount } } } } }";
    for (email, name) in [
        ("coordinator@prima.demo", "COORDINATOR"),
        ("viewer@prima.demo", "VIEWER"),
    ] {
        let role = role(&app, email, name).await;
        let venue = role.venues.iter().next().unwrap();
        let response = app
            .graphql(Some(&role.token), query, json!({ "v": venue }))
            .await;
        let bookings = response["data"]["venue"]["bookings"]["nodes"]
            .as_array()
            .unwrap();
        assert!(!bookings.is_empty());
        for booking in bookings {
            assert!(
                booking["promoterCommission"].is_null(),
                "{name} sees a commission: {booking}"
            );
            assert!(
                booking["totalFee"]["amount"].is_string(),
                "{name} still sees the booking's price"
            );
        }
        assert_eq!(
            error_codes(&response),
            vec!["FORBIDDEN"; bookings.len()],
            "{name}: one FORBIDDEN per commission"
        );
        assert!(
            response["errors"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["path"].as_array().unwrap().last().unwrap() == "promoterCommission"),
            "{response}"
        );
        // The same booking looked up by id.
        let id = bookings[0]["id"].as_str().unwrap();
        let one = app
            .graphql(
                Some(&role.token),
                "query($id: ID!) { booking(id: $id) { id promoterCommission { amount } } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(error_codes(&one), ["FORBIDDEN"], "{one}");
        assert_eq!(one["data"]["booking"]["id"], id);
        assert!(one["data"]["booking"]["promoterCommission"].is_null());
    }
    // A manager reads them, and some are above 0.
    let manager = role(&app, "manager@prima.demo", "MANAGER").await;
    let venue = manager.venues.iter().next().unwrap();
    let data = app
        .query_ok(&manager.token, query, json!({ "v": venue }))
        .await;
    let commissions: Vec<&str> = data["venue"]["bookings"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["promoterCommission"]["amount"].as_str().unwrap())
        .collect();
    assert!(commissions.iter().any(|c| *c != "0.00"), "{commissions:?}");
}

/// Every booking's guest with their figures. One level of guests only: with a second, the
/// request's loader cache would already hold every guest of a small portfolio and skip a
/// batch, and the count would differ for that reason alone.
const GUEST_FIGURES: &str = "{ venues(first: 10) { nodes { bookings(first: 50) { nodes {
    guest { totalBookings cancelledBookings noShowBookings totalSpent averagePartySize
        lastBookingAt } } } } } }";

async fn statements_for_guest_figures(bookings: u64, email: &str) -> u64 {
    let app = TestApp::demo(bookings).await;
    let token = app.login(email).await;
    app.query_ok(&token, GUEST_FIGURES, json!({})).await;
    let before = app.statements();
    let data = app.query_ok(&token, GUEST_FIGURES, json!({})).await;
    assert!(
        data["venues"]["nodes"][0]["bookings"]["nodes"][0]["guest"]["totalBookings"]
            .as_i64()
            .is_some_and(|n| n > 0),
        "the query returns guests with bookings: {data}"
    );
    app.statements() - before
}

#[tokio::test]
async fn guest_figures_take_the_same_few_statements_at_two_data_sizes() {
    for email in ["owner@prima.demo", "admin@prima.demo"] {
        let small = statements_for_guest_figures(300, email).await;
        let large = statements_for_guest_figures(1_500, email).await;
        eprintln!("guest figures as {email}: {small} statements at 300 bookings, {large} at 1,500");
        assert_eq!(
            small, large,
            "{email}: the count must not depend on the data"
        );
        assert!(small <= 8, "{email}: at most 8 statements, got {small}");
    }
}
