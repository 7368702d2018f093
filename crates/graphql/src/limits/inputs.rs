//! Input limits, checked before execution: every argument value of the operation (with its
//! variables resolved) is walked along its declared input type, and
//! - every string is at most its field's length ([`string_limit`]): BAD_USER_INPUT naming
//!   the field, as the service's own validation does;
//! - every list holds at most `max_list_items` items: BAD_USER_INPUT naming the field;
//! - no value nests deeper than `max_input_depth` lists and input objects: LIMIT_EXCEEDED.
//!
//! Why here and not in each resolver: a limit enforced field by field is forgotten on the
//! next field. Here every string and list a client can send is covered by default, and the
//! per-field maxima that differ from the default are listed in one table.

use std::collections::HashSet;

use async_graphql::parser::types::{
    ExecutableDocument, Field, OperationDefinition, OperationType, Selection, SelectionSet, Type,
};
use async_graphql::{Value, Variables};

use super::cost::resolve_variable;
use super::index::{Index, Kind, named};

/// Fields whose longest string differs from the default, by input field or argument name.
/// The service validates the same maxima (and usually more: formats, ranges).
const STRING_LIMITS: &[(&str, usize)] = &[
    ("search", 200),
    ("email", 254),
    ("password", 1024),
    ("idempotencyKey", 255),
    ("after", 1024),
    ("before", 1024),
];

/// The longest string of a scalar type when no field limit applies: identifiers, dates
/// and decimals are short whatever the field.
const SHORT_SCALARS: &[(&str, usize)] = &[("ID", 100), ("DateTime", 64), ("Decimal", 64)];

/// The longest string accepted for an input field or argument of a scalar type.
pub fn string_limit(field: &str, scalar: &str, default: usize) -> usize {
    STRING_LIMITS
        .iter()
        .find(|(name, _)| *name == field)
        .or_else(|| SHORT_SCALARS.iter().find(|(name, _)| *name == scalar))
        .map_or(default, |(_, limit)| *limit)
}

/// The input limits.
#[derive(Debug, Clone, Copy)]
pub struct InputCaps {
    /// Longest string, in characters, where no field limit applies.
    pub max_string_chars: usize,
    /// Most items in any list.
    pub max_list_items: usize,
    /// Deepest nesting of lists and input objects.
    pub max_input_depth: usize,
}

/// An input that breaks a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// BAD_USER_INPUT naming the field.
    Invalid {
        /// The input field or argument.
        field: String,
        /// What is wrong, for a person.
        message: String,
    },
    /// Nested deeper than allowed: LIMIT_EXCEEDED.
    TooDeep {
        /// The argument.
        field: String,
    },
}

/// Checks the arguments of every field the operation can run.
pub fn check(
    index: &Index,
    document: &ExecutableDocument,
    operation: &OperationDefinition,
    variables: &Variables,
    caps: InputCaps,
) -> Result<(), Refusal> {
    let root = match operation.ty {
        OperationType::Query => Some(index.query.as_str()),
        OperationType::Mutation => index.mutation.as_deref(),
        OperationType::Subscription => index.subscription.as_deref(),
    };
    let Some(root) = root else { return Ok(()) };
    let mut walk = Walk {
        index,
        document,
        operation,
        variables,
        caps,
        seen: HashSet::new(),
    };
    walk.selection(&operation.selection_set.node, root)
}

struct Walk<'a> {
    index: &'a Index,
    document: &'a ExecutableDocument,
    operation: &'a OperationDefinition,
    variables: &'a Variables,
    caps: InputCaps,
    /// Fragments already checked: each is checked once, however often it is spread.
    seen: HashSet<&'a str>,
}

impl<'a> Walk<'a> {
    fn selection(&mut self, set: &'a SelectionSet, ty: &'a str) -> Result<(), Refusal> {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => self.field(&field.node, ty)?,
                Selection::InlineFragment(fragment) => {
                    let ty = fragment
                        .node
                        .type_condition
                        .as_ref()
                        .map_or(ty, |condition| condition.node.on.node.as_str());
                    self.selection(&fragment.node.selection_set.node, ty)?;
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if !self.seen.insert(name) {
                        continue;
                    }
                    if let Some(fragment) =
                        self.document.fragments.get(&spread.node.fragment_name.node)
                    {
                        let ty = fragment.node.type_condition.node.on.node.as_str();
                        self.selection(&fragment.node.selection_set.node, ty)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn field(&mut self, field: &'a Field, parent: &'a str) -> Result<(), Refusal> {
        let definition = self
            .index
            .get(parent)
            .and_then(|info| info.field(field.name.node.as_str()));
        if let Some(definition) = definition {
            for (name, value) in &field.arguments {
                let Some(ty) = definition.arg(name.node.as_str()) else {
                    continue;
                };
                let value = value
                    .node
                    .clone()
                    .into_const_with(|variable| {
                        Ok::<_, ()>(resolve_variable(self.operation, self.variables, &variable))
                    })
                    .unwrap_or(Value::Null);
                self.value(&value, ty, name.node.as_str(), name.node.as_str(), 0)?;
            }
            let child = named(&definition.ty);
            if !field.selection_set.node.items.is_empty() {
                return self.selection(&field.selection_set.node, child);
            }
        }
        Ok(())
    }

    /// Checks one value against its type. `field` names the innermost input field (what
    /// BAD_USER_INPUT reports), `argument` the argument it is under.
    fn value(
        &self,
        value: &Value,
        ty: &Type,
        field: &str,
        argument: &str,
        depth: usize,
    ) -> Result<(), Refusal> {
        match value {
            Value::List(items) => {
                if depth + 1 > self.caps.max_input_depth {
                    return Err(Refusal::TooDeep {
                        field: argument.to_owned(),
                    });
                }
                if items.len() > self.caps.max_list_items {
                    return Err(Refusal::Invalid {
                        field: field.to_owned(),
                        message: format!(
                            "`{field}` has {} items; at most {} are accepted",
                            items.len(),
                            self.caps.max_list_items
                        ),
                    });
                }
                let item_ty = match &ty.base {
                    async_graphql::parser::types::BaseType::List(inner) => inner.as_ref(),
                    // A single value is coerced to a list; a list where a single value is
                    // expected is a type error validation reports.
                    async_graphql::parser::types::BaseType::Named(_) => ty,
                };
                for item in items {
                    self.value(item, item_ty, field, argument, depth + 1)?;
                }
                Ok(())
            }
            Value::Object(fields) => {
                if depth + 1 > self.caps.max_input_depth {
                    return Err(Refusal::TooDeep {
                        field: argument.to_owned(),
                    });
                }
                let Some(info) = self
                    .index
                    .get(named(ty))
                    .filter(|i| i.kind == Kind::InputObject)
                else {
                    return Ok(());
                };
                for (name, item) in fields {
                    if let Some(definition) = info.field(name.as_str()) {
                        self.value(item, &definition.ty, name.as_str(), argument, depth + 1)?;
                    }
                }
                Ok(())
            }
            Value::String(text) => {
                let limit = string_limit(field, named(ty), self.caps.max_string_chars);
                // Count characters only as far as the limit: a huge string costs no more
                // than a long one.
                if text.len() > limit && text.chars().nth(limit).is_some() {
                    return Err(Refusal::Invalid {
                        field: field.to_owned(),
                        message: format!("`{field}` is longer than {limit} characters"),
                    });
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
