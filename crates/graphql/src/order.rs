//! Response fields in the order of the selection set, as the spec's serialized map
//! ordering requires. async-graphql resolves a query's fields concurrently and keeps them
//! in the order they finish, so `{ a: id b: bookings { … } c: name }` came back a, c, b.
//!
//! Before execution, a [`Plan`] is taken from the operation: each object's response keys in
//! the order the spec's CollectFields first meets them (fragments and inline fragments
//! expanded in place; one key for fields merged under one response name), with the plan of
//! their own selections. After execution every object of the answer is put back in that
//! order; an object already in order (most are) is only read.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Value};

/// Deepest plan taken. Deeper selections (possible only through nested fragment spreads,
/// which validation refuses beyond the depth limit anyway) keep async-graphql's order.
const MAX_DEPTH: usize = 64;

/// The order of an object's response keys, each with the plan of its own selection.
#[derive(Debug, Default, PartialEq)]
pub struct Plan(Vec<(Name, Plan)>);

impl Plan {
    /// The plan of the operation `name` of `document` (None when there is no such single
    /// operation: validation reports that).
    pub fn of(document: &ExecutableDocument, name: Option<&str>) -> Option<Plan> {
        let operation = crate::limits::cost::operation(document, name)?;
        Some(Plan::build(
            document,
            &[&operation.node.selection_set.node],
            0,
        ))
    }

    fn build(document: &ExecutableDocument, sets: &[&SelectionSet], depth: usize) -> Plan {
        if depth > MAX_DEPTH {
            return Plan::default();
        }
        let mut keys: Vec<(Name, Vec<&SelectionSet>)> = Vec::new();
        let mut path = Vec::new();
        for set in sets {
            collect(document, set, &mut keys, &mut path);
        }
        Plan(
            keys.into_iter()
                .map(|(key, children)| {
                    let child = if children.is_empty() {
                        Plan::default()
                    } else {
                        Plan::build(document, &children, depth + 1)
                    };
                    (key, child)
                })
                .collect(),
        )
    }

    /// Puts every object of `value` (an answer's `data`) in the plan's order.
    pub fn apply(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                if !self.in_order(map.keys()) {
                    let mut unordered = std::mem::take(map);
                    for (key, _) in &self.0 {
                        if let Some(value) = unordered.swap_remove(key) {
                            map.insert(key.clone(), value);
                        }
                    }
                    map.extend(unordered);
                }
                for (key, child) in &self.0 {
                    if !child.0.is_empty()
                        && let Some(value) = map.get_mut(key)
                    {
                        child.apply(value);
                    }
                }
            }
            Value::List(items) => items.iter_mut().for_each(|item| self.apply(item)),
            _ => {}
        }
    }

    /// Whether `keys` come in the plan's order (each may be missing: a fragment that did not
    /// apply, a field of a null object).
    fn in_order<'a>(&self, keys: impl Iterator<Item = &'a Name>) -> bool {
        let mut planned = self.0.iter();
        keys.into_iter()
            .all(|key| planned.by_ref().any(|(name, _)| name == key))
    }
}

/// CollectFields, for order only: type conditions are ignored (a field of a fragment that
/// does not apply is simply absent from the object), and a fragment already being expanded
/// on this path is skipped (a cycle, which validation refuses).
fn collect<'a>(
    document: &'a ExecutableDocument,
    set: &'a SelectionSet,
    keys: &mut Vec<(Name, Vec<&'a SelectionSet>)>,
    path: &mut Vec<&'a str>,
) {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let key = &field.node.response_key().node;
                let at = match keys.iter().position(|(name, _)| name == key) {
                    Some(at) => at,
                    None => {
                        keys.push((key.clone(), Vec::new()));
                        keys.len() - 1
                    }
                };
                let children = &field.node.selection_set.node;
                if !children.items.is_empty() {
                    keys[at].1.push(children);
                }
            }
            Selection::InlineFragment(fragment) => {
                collect(document, &fragment.node.selection_set.node, keys, path);
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if path.contains(&name) {
                    continue;
                }
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                    path.push(name);
                    collect(document, &fragment.node.selection_set.node, keys, path);
                    path.pop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(query: &str) -> Plan {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        Plan::of(&document, None).expect("one operation")
    }

    fn keys(value: &Value) -> Vec<String> {
        match value {
            Value::Object(map) => map.keys().map(|key| key.to_string()).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn objects_come_back_in_selection_order_through_aliases_fragments_and_lists() {
        let plan = plan(
            "query { c: x { b: y a: z } a: w ...F ... on Q { e: v } }
             fragment F on Q { d: u c: x { q: y } }",
        );
        let mut data = async_graphql::value!({
            "e": 5, "d": 4,
            "c": [{ "q": 1, "a": 2, "b": 3 }, { "a": 2, "b": 3, "q": 1 }],
            "a": 1,
        });
        plan.apply(&mut data);
        assert_eq!(keys(&data), ["c", "a", "d", "e"]);
        let Value::Object(map) = &data else { panic!() };
        let Value::List(items) = &map["c"] else {
            panic!()
        };
        for item in items {
            assert_eq!(
                keys(item),
                ["b", "a", "q"],
                "merged fields keep first-seen order"
            );
        }
    }

    #[test]
    fn a_fragment_cycle_or_a_missing_fragment_ends_the_plan_there() {
        let plan = plan("{ ...A } fragment A on Q { a ...B } fragment B on Q { b ...A ...C }");
        assert_eq!(
            plan.0
                .iter()
                .map(|(key, _)| key.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn keys_already_in_order_are_only_read() {
        let plan = plan("{ a b c }");
        assert!(plan.in_order([Name::new("a"), Name::new("c")].iter()));
        assert!(!plan.in_order([Name::new("c"), Name::new("a")].iter()));
        assert!(!plan.in_order([Name::new("d")].iter()));
    }
}
