//! Query cost, counted as GitHub and Shopify count it, before anything runs.
//!
//! Policy:
//! - Every field in the response costs one point for each time it can appear: a field
//!   under a list counts once per row that list can hold, multiplied down the tree, with
//!   aliases and fragments expanded. So the cost bounds the number of values in the
//!   answer, and with it time, memory and response size.
//! - A connection's `edges` and `nodes` hold at most `first` or `last` rows (20 when
//!   neither is given, never more than 100: larger pages are refused by the field).
//! - A plain list of objects holds at most the bound in [`LIST_BOUNDS`], which the API
//!   enforces where the rows are written; a list of objects without a bound is a bug
//!   that the test `every_list_of_objects_has_a_bound` finds. A list of scalars counts
//!   as one value (its length is bounded where it is written, by the input limits).
//! - Each mutation field costs [`MUTATION_COST`] on top of its payload (a write does more
//!   than a read).
//! - Introspection (`__schema`, `__type`) costs what it returns: the walk follows the
//!   schema's real types, fields and arguments, so GraphiQL's introspection query costs a
//!   few thousand points while `fields { type { fields { type { ... } } } }` nested to
//!   the depth limit is refused.
//! - The walk stops as soon as the cost passes the maximum, so refusing an expensive
//!   query costs little. Fragment cycles and unknown fields are left to validation.
//!
//! The same walk counts the operation's root fields and aliases (capped separately) and
//! how many `login` fields it holds (at most one per operation: each is an argon2 hash).

use std::collections::HashSet;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet, Type,
};
use async_graphql::{Name, Positioned, Value, Variables};

use super::index::{Index, Kind, TypeInfo, is_list, named};

/// The extra cost of each mutation field.
pub const MUTATION_COST: u64 = 10;

/// The most rows of each plain list of objects, as `(type, field, rows)`. Each bound is
/// enforced by the API where the rows are written.
pub const LIST_BOUNDS: &[(&str, &str, u64)] = &[
    (
        "Booking",
        "transactions",
        prima_service::ledger::MAX_TRANSACTIONS_PER_BOOKING,
    ),
    (
        "Viewer",
        "venueRoles",
        prima_service::users::MAX_VENUE_ROLES,
    ),
    ("Query", "nodes", crate::node::MAX_NODES),
    (
        "GenerateVenuePayoutsPayload",
        "results",
        prima_service::payouts::generate::MAX_PROMOTERS_PER_RUN,
    ),
    (
        "PayoutStatement",
        "lines",
        prima_service::payouts::balance::LINE_KINDS,
    ),
    (
        "LeaderboardUpdate",
        "entries",
        prima_service::paging::MAX_PAGE_SIZE,
    ),
];

/// The bound of a plain list of objects; `None` when it has none (a bug; see the module
/// docs).
pub fn list_bound(parent: &str, field: &str) -> Option<u64> {
    LIST_BOUNDS
        .iter()
        .find(|(ty, name, _)| *ty == parent && *name == field)
        .map(|(_, _, rows)| *rows)
}

/// The caps the walk applies.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Highest cost.
    pub max_cost: u64,
    /// Most root fields.
    pub max_root_fields: usize,
    /// Most aliased fields (after fragments are expanded).
    pub max_aliases: usize,
}

/// What the walk measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Measure {
    /// The cost (possibly stopped early, just past the maximum).
    pub cost: u64,
    /// Root fields of the operation.
    pub root_fields: usize,
    /// Aliased fields.
    pub aliases: usize,
    /// `login` fields at the mutation root.
    pub logins: usize,
}

/// Which cap a query broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// The cost passed `max_cost`.
    Cost,
    /// More root fields than `max_root_fields`.
    RootFields,
    /// More aliases than `max_aliases`.
    Aliases,
}

/// The operation a request runs: the only one, or the one named.
pub fn operation<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// Measures one operation of a document. Returns the measure, and the first cap it
/// broke, if any (the walk stops there).
pub fn measure(
    index: &Index,
    document: &ExecutableDocument,
    operation: &OperationDefinition,
    variables: &Variables,
    caps: Caps,
) -> (Measure, Option<Over>) {
    let root = match operation.ty {
        OperationType::Query => Some(index.query.as_str()),
        OperationType::Mutation => index.mutation.as_deref(),
        OperationType::Subscription => index.subscription.as_deref(),
    };
    let mut walk = Walk {
        index,
        document,
        operation,
        variables,
        caps,
        measure: Measure::default(),
        over: None,
        fragments: Vec::new(),
    };
    if let Some(root) = root {
        let mutation = operation.ty == OperationType::Mutation;
        walk.root(&operation.selection_set.node, root, mutation);
    }
    (walk.measure, walk.over)
}

struct Walk<'a> {
    index: &'a Index,
    document: &'a ExecutableDocument,
    operation: &'a OperationDefinition,
    variables: &'a Variables,
    caps: Caps,
    measure: Measure,
    over: Option<Over>,
    /// The fragments being expanded (a cycle is left to validation).
    fragments: Vec<&'a Name>,
}

/// What a selection is evaluated against.
#[derive(Clone, Copy)]
struct At<'a> {
    /// The type whose fields are selected.
    ty: &'a str,
    /// How many times each field here can appear in the answer.
    times: u64,
    /// For a connection: how many rows its `edges` and `nodes` hold.
    page: Option<u64>,
}

impl<'a> Walk<'a> {
    fn add(&mut self, points: u64) {
        self.measure.cost = self.measure.cost.saturating_add(points);
        if self.measure.cost > self.caps.max_cost && self.over.is_none() {
            self.over = Some(Over::Cost);
        }
    }

    fn stopped(&self) -> bool {
        self.over.is_some()
    }

    /// The root selection: counts root fields (through fragments) and `login`s, then
    /// walks each.
    fn root(&mut self, set: &'a SelectionSet, root: &'a str, mutation: bool) {
        let at = At {
            ty: root,
            times: 1,
            page: None,
        };
        self.each_field(set, at, &mut |walk, field, at| {
            walk.measure.root_fields += 1;
            if walk.measure.root_fields > walk.caps.max_root_fields && walk.over.is_none() {
                walk.over = Some(Over::RootFields);
                return;
            }
            if mutation {
                walk.add(MUTATION_COST);
                if field.name.node.as_str() == "login" {
                    walk.measure.logins += 1;
                }
            }
            walk.field(field, at);
        });
    }

    /// Calls `visit` for each field of a selection set, expanding fragments, with the
    /// type each field is selected on.
    fn each_field(
        &mut self,
        set: &'a SelectionSet,
        at: At<'a>,
        visit: &mut dyn FnMut(&mut Self, &'a async_graphql::parser::types::Field, At<'a>),
    ) {
        for selection in &set.items {
            if self.stopped() {
                return;
            }
            match &selection.node {
                Selection::Field(field) => visit(self, &field.node, at),
                Selection::InlineFragment(fragment) => {
                    let ty = fragment
                        .node
                        .type_condition
                        .as_ref()
                        .map_or(at.ty, |condition| condition.node.on.node.as_str());
                    self.each_field(&fragment.node.selection_set.node, At { ty, ..at }, visit);
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    let Some(fragment) = self.document.fragments.get(name) else {
                        continue;
                    };
                    if self.fragments.contains(&name) {
                        continue;
                    }
                    self.fragments.push(name);
                    let ty = fragment.node.type_condition.node.on.node.as_str();
                    self.each_field(&fragment.node.selection_set.node, At { ty, ..at }, visit);
                    self.fragments.pop();
                }
            }
        }
    }

    fn selection(&mut self, set: &'a SelectionSet, at: At<'a>) {
        self.each_field(set, at, &mut |walk, field, at| walk.field(field, at));
    }

    fn field(&mut self, field: &'a async_graphql::parser::types::Field, at: At<'a>) {
        if field.alias.is_some() {
            self.measure.aliases += 1;
            if self.measure.aliases > self.caps.max_aliases && self.over.is_none() {
                self.over = Some(Over::Aliases);
                return;
            }
        }
        let name = field.name.node.as_str();
        match name {
            "__typename" => return self.add(at.times),
            "__schema" if at.ty == self.index.query => {
                self.add(at.times);
                return self.schema(&field.selection_set.node);
            }
            "__type" if at.ty == self.index.query => {
                self.add(at.times);
                let wanted = self.argument(field, "name");
                if let Some(Value::String(wanted)) = wanted
                    && self.index.get(&wanted).is_some()
                {
                    let ty = Intro::Named(self.owned_name(&wanted));
                    return self.intro_type(&field.selection_set.node, &ty);
                }
                return;
            }
            _ => {}
        }
        let Some(info) = self.index.get(at.ty) else {
            return;
        };
        let Some(definition) = info.field(name) else {
            return;
        };
        let child_ty = named(&definition.ty);
        let Some(child) = self.index.get(child_ty) else {
            return;
        };
        let composite = !matches!(child.kind, Kind::Scalar | Kind::Enum);
        let times = if !composite {
            at.times
        } else if is_list(&definition.ty) {
            let rows = if info.is_connection() && (name == "edges" || name == "nodes") {
                at.page.unwrap_or(prima_service::paging::MAX_PAGE_SIZE)
            } else {
                list_bound(at.ty, name).unwrap_or_else(|| {
                    tracing::error!(
                        "{}.{name} is a list of objects without a bound; counted as {}",
                        at.ty,
                        prima_service::paging::MAX_PAGE_SIZE
                    );
                    prima_service::paging::MAX_PAGE_SIZE
                })
            };
            at.times.saturating_mul(rows)
        } else {
            at.times
        };
        self.add(times);
        if composite {
            let page = child.is_connection().then(|| self.page_size(field));
            self.selection(
                &field.selection_set.node,
                At {
                    ty: child_ty,
                    times,
                    page,
                },
            );
        }
    }

    /// The rows a connection field can return: `first` or `last`, else the default page,
    /// at least 1 and at most the largest page.
    fn page_size(&self, field: &async_graphql::parser::types::Field) -> u64 {
        let requested = ["first", "last"]
            .iter()
            .find_map(|arg| match self.argument(field, arg) {
                Some(Value::Number(n)) => n.as_u64().or(n.as_i64().map(|_| 1)),
                _ => None,
            });
        requested
            .unwrap_or(prima_service::paging::DEFAULT_PAGE_SIZE)
            .clamp(1, prima_service::paging::MAX_PAGE_SIZE)
    }

    /// An argument's value with variables (and their defaults) resolved.
    fn argument(&self, field: &async_graphql::parser::types::Field, name: &str) -> Option<Value> {
        let (_, value) = field
            .arguments
            .iter()
            .find(|(arg, _)| arg.node.as_str() == name)?;
        value
            .node
            .clone()
            .into_const_with(|variable| {
                Ok::<_, ()>(resolve_variable(self.operation, self.variables, &variable))
            })
            .ok()
    }

    fn owned_name(&self, name: &str) -> String {
        name.to_owned()
    }

    // ---- introspection: costs what it returns -------------------------------------

    fn schema(&mut self, set: &'a SelectionSet) {
        let types: Vec<String> = self.index.types().map(|(name, _)| name.clone()).collect();
        let roots: Vec<(&str, Option<String>)> = vec![
            ("queryType", Some(self.index.query.clone())),
            ("mutationType", self.index.mutation.clone()),
            ("subscriptionType", self.index.subscription.clone()),
        ];
        self.each_field(
            set,
            At {
                ty: "__Schema",
                times: 1,
                page: None,
            },
            &mut |walk, field, _| {
                let name = field.name.node.as_str();
                walk.add(1);
                match name {
                    "types" => {
                        // The introspection types and built-in scalars have no fields we
                        // model; they count as one value each.
                        walk.add((walk.index.introspected_types() - types.len()) as u64);
                        for ty in &types {
                            if walk.stopped() {
                                return;
                            }
                            walk.add(1);
                            walk.intro_type(&field.selection_set.node, &Intro::Named(ty.clone()));
                        }
                    }
                    "directives" => {
                        // @include, @skip, @deprecated, @specifiedBy, @oneOf: a handful of
                        // small objects with at most two arguments each.
                        walk.add(5 * 8);
                    }
                    _ => {
                        if let Some((_, Some(root))) = roots.iter().find(|(key, _)| *key == name) {
                            walk.intro_type(&field.selection_set.node, &Intro::Named(root.clone()));
                        }
                    }
                }
            },
        );
    }

    /// A `__Type` value: its selection, evaluated against the real type.
    fn intro_type(&mut self, set: &'a SelectionSet, ty: &Intro) {
        self.each_field(
            set,
            At {
                ty: "__Type",
                times: 1,
                page: None,
            },
            &mut |walk, field, _| {
                walk.add(1);
                let set = &field.selection_set.node;
                let info = match ty {
                    Intro::Named(name) => walk.index.get(name),
                    _ => None,
                };
                match field.name.node.as_str() {
                    "ofType" => {
                        if let Intro::Wrapped(inner) = ty {
                            walk.intro_type(set, inner);
                        }
                    }
                    "fields" => {
                        let Some(info) =
                            info.filter(|i| matches!(i.kind, Kind::Object | Kind::Interface))
                        else {
                            return;
                        };
                        for (_, definition) in &info.fields {
                            if walk.stopped() {
                                return;
                            }
                            walk.add(1);
                            walk.intro_field(set, definition);
                        }
                    }
                    "inputFields" => {
                        let Some(info) = info.filter(|i| i.kind == Kind::InputObject) else {
                            return;
                        };
                        for (_, definition) in &info.fields {
                            if walk.stopped() {
                                return;
                            }
                            walk.add(1);
                            walk.intro_input(set, &definition.ty);
                        }
                    }
                    "interfaces" | "possibleTypes" => {
                        let Some(info) = info else { return };
                        let names = if field.name.node.as_str() == "interfaces" {
                            &info.interfaces
                        } else {
                            &info.possible
                        };
                        for name in names {
                            if walk.stopped() {
                                return;
                            }
                            walk.add(1);
                            walk.intro_type(set, &Intro::Named(name.clone()));
                        }
                    }
                    "enumValues" => {
                        let values = info.map_or(0, |info| info.enum_values.len()) as u64;
                        // Each value is a small object of scalars.
                        walk.add(values.saturating_mul(1 + set.items.len() as u64));
                    }
                    _ => {}
                }
            },
        );
    }

    /// A `__Field` value.
    fn intro_field(&mut self, set: &'a SelectionSet, definition: &'a super::index::Field) {
        self.each_field(
            set,
            At {
                ty: "__Field",
                times: 1,
                page: None,
            },
            &mut |walk, field, _| {
                walk.add(1);
                let set = &field.selection_set.node;
                match field.name.node.as_str() {
                    "type" => walk.intro_type(set, &Intro::of(&definition.ty)),
                    "args" => {
                        for (_, ty) in &definition.args {
                            if walk.stopped() {
                                return;
                            }
                            walk.add(1);
                            walk.intro_input(set, ty);
                        }
                    }
                    _ => {}
                }
            },
        );
    }

    /// An `__InputValue` value.
    fn intro_input(&mut self, set: &'a SelectionSet, ty: &Type) {
        let ty = Intro::of(ty);
        self.each_field(
            set,
            At {
                ty: "__InputValue",
                times: 1,
                page: None,
            },
            &mut |walk, field, _| {
                walk.add(1);
                if field.name.node.as_str() == "type" {
                    walk.intro_type(&field.selection_set.node, &ty);
                }
            },
        );
    }
}

/// A type as introspection shows it: named, or a list / non-null wrapper.
enum Intro {
    Named(String),
    Wrapped(Box<Intro>),
}

impl Intro {
    fn of(ty: &Type) -> Intro {
        let base = match &ty.base {
            async_graphql::parser::types::BaseType::Named(name) => Intro::Named(name.to_string()),
            async_graphql::parser::types::BaseType::List(inner) => {
                Intro::Wrapped(Box::new(Intro::of(inner)))
            }
        };
        if ty.nullable {
            base
        } else {
            Intro::Wrapped(Box::new(base))
        }
    }
}

/// A variable's value: as sent, else its definition's default, else null.
pub fn resolve_variable(
    operation: &OperationDefinition,
    variables: &Variables,
    name: &Name,
) -> Value {
    if let Some(value) = variables.get(name) {
        return value.clone();
    }
    operation
        .variable_definitions
        .iter()
        .find(|definition| definition.node.name.node == *name)
        .and_then(|definition| definition.node.default_value.as_ref())
        .map(|value| value.node.clone())
        .unwrap_or(Value::Null)
}

/// Every plain list of objects in the schema, as `Type.field` (connections' `edges` and
/// `nodes` excluded): what [`LIST_BOUNDS`] must cover.
pub fn lists_of_objects(index: &Index) -> Vec<String> {
    let mut found = HashSet::new();
    for (name, info) in index.types() {
        if name.starts_with("__") || info.is_connection() {
            continue;
        }
        for (field, definition) in &info.fields {
            let child = index.get(named(&definition.ty)).map(|t: &TypeInfo| t.kind);
            let composite = !matches!(child, Some(Kind::Scalar | Kind::Enum) | None);
            if composite
                && is_list(&definition.ty)
                && matches!(info.kind, Kind::Object | Kind::Interface)
            {
                found.insert(format!("{name}.{field}"));
            }
        }
    }
    let mut found: Vec<String> = found.into_iter().collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        Index::from_sdl(&crate::sdl())
    }

    fn cost_of(query: &str, variables: serde_json::Value) -> (Measure, Option<Over>) {
        let document = async_graphql::parser::parse_query(query).unwrap();
        let variables = Variables::from_json(variables);
        let operation = operation(&document, None).unwrap();
        let caps = Caps {
            max_cost: u64::MAX,
            max_root_fields: usize::MAX,
            max_aliases: usize::MAX,
        };
        measure(&index(), &document, &operation.node, &variables, caps)
    }

    #[test]
    fn every_list_of_objects_has_a_bound() {
        let unbounded: Vec<String> = lists_of_objects(&index())
            .into_iter()
            .filter(|field| {
                let (ty, name) = field.split_once('.').unwrap();
                list_bound(ty, name).is_none()
            })
            .collect();
        assert!(
            unbounded.is_empty(),
            "lists of objects without a bound (make them connections, or enforce a bound \
             where their rows are written and add it to LIST_BOUNDS): {unbounded:?}"
        );
    }

    #[test]
    fn each_field_counts_once_per_row_it_can_appear_in() {
        // venues 1 + edges 10 + node 10 + name 10 + bookings 10 + edges 500 + node 500
        // + id 500 + transactions 500 x 23 + id 500 x 23.
        let (measure, over) = cost_of(
            "{ venues(first: 10) { edges { node { name bookings(first: 50) { edges { node {
                id transactions { id } } } } } } } }",
            serde_json::json!({}),
        );
        assert_eq!(over, None);
        let rows = prima_service::ledger::MAX_TRANSACTIONS_PER_BOOKING;
        assert_eq!(
            measure.cost,
            1 + 10 + 10 + 10 + 10 + 500 + 500 + 500 + 2 * 500 * rows
        );
    }

    #[test]
    fn page_sizes_come_from_variables_and_default_to_twenty() {
        let (with_variable, _) = cost_of(
            "query($n: Int) { venues(first: $n) { nodes { id } } }",
            serde_json::json!({ "n": 5 }),
        );
        assert_eq!(with_variable.cost, 1 + 5 + 5);
        let (defaulted, _) = cost_of("{ venues { nodes { id } } }", serde_json::json!({}));
        assert_eq!(defaulted.cost, 1 + 20 + 20);
        let (clamped, _) = cost_of(
            "{ venues(last: 5000) { nodes { id } } }",
            serde_json::json!({}),
        );
        assert_eq!(clamped.cost, 1 + 100 + 100);
    }

    #[test]
    fn aliases_and_fragments_are_expanded() {
        let (measure, _) = cost_of(
            "{ a: venues(first: 2) { ...V } b: venues(first: 3) { ...V } }
             fragment V on VenueConnection { nodes { id name } }",
            serde_json::json!({}),
        );
        assert_eq!(measure.cost, (1 + 2 + 4) + (1 + 3 + 6));
        assert_eq!(measure.aliases, 2);
        assert_eq!(measure.root_fields, 2);
    }

    #[test]
    fn the_walk_stops_at_the_maximum() {
        let document = async_graphql::parser::parse_query(
            "{ venues(first: 100) { nodes { bookings(first: 100) { nodes { id } } } } }",
        )
        .unwrap();
        let operation = operation(&document, None).unwrap();
        let caps = Caps {
            max_cost: 1_000,
            max_root_fields: 10,
            max_aliases: 10,
        };
        let (measure, over) = measure(
            &index(),
            &document,
            &operation.node,
            &Variables::default(),
            caps,
        );
        assert_eq!(over, Some(Over::Cost));
        assert!(measure.cost < 20_000, "stopped early at {}", measure.cost);
    }

    #[test]
    fn mutations_cost_more_and_logins_are_counted() {
        let (measure, _) = cost_of(
            "mutation { login(email: \"a\", password: \"b\") { token } }",
            serde_json::json!({}),
        );
        assert_eq!(measure.logins, 1);
        assert_eq!(measure.cost, MUTATION_COST + 1 + 1);
    }

    /// The costs README.md quotes.
    #[test]
    fn the_costs_the_readme_quotes() {
        let tour = "{ venues(first: 10) { totalCount edges { node {
            name type tier currency
            currentPricing { primeBaseFor2 { amount currency } nonPrimePerDiner { amount } }
            bookings(first: 5, orderBy: {field: BOOKING_TIME, direction: DESC}) {
              totalCount
              edges { node {
                bookingTime status diners totalFee { amount currency }
                guest { firstName lastName }
                promoter { firstName tier }
                transactions { type status amount { amount } payout { status } }
              } }
            }
        } } } }";
        let portfolio = "{ venues(first: 10) { edges { node { bookings(first: 50) { edges { node {
            guest { id } promoter { id } transactions { id payout { id } } } } } } } } }";
        let costs = [tour, portfolio].map(|query| cost_of(query, serde_json::json!({})).0.cost);
        assert_eq!(costs, [8_892, 49_031]);
    }
}
