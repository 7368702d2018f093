//! The schema as the limits need it: for each type its kind and fields, for each field its
//! arguments and type. Built once, from the schema's own SDL (`Schema::sdl`, parsed with
//! async-graphql's public parser), so it can never disagree with what is served.

use std::collections::HashMap;

use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};

/// A type's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A scalar (built-in or custom).
    Scalar,
    /// An enum.
    Enum,
    /// An object type.
    Object,
    /// An interface.
    Interface,
    /// A union.
    Union,
    /// An input object.
    InputObject,
}

/// An output field or an input value (argument or input field).
#[derive(Debug, Clone)]
pub struct Field {
    /// Its type as declared (`[Booking!]!`).
    pub ty: Type,
    /// Its arguments (output fields only), in declaration order.
    pub args: Vec<(String, Type)>,
}

impl Field {
    /// An argument's type.
    pub fn arg(&self, name: &str) -> Option<&Type> {
        self.args
            .iter()
            .find(|(arg, _)| arg == name)
            .map(|(_, ty)| ty)
    }
}

/// One type of the schema.
#[derive(Debug, Clone)]
pub struct TypeInfo {
    /// Its kind.
    pub kind: Kind,
    /// Output fields (objects, interfaces) or input fields (input objects), in
    /// declaration order.
    pub fields: Vec<(String, Field)>,
    /// Interfaces an object or interface implements.
    pub interfaces: Vec<String>,
    /// Members of a union; implementations of an interface.
    pub possible: Vec<String>,
    /// Values of an enum.
    pub enum_values: Vec<String>,
}

impl TypeInfo {
    /// A field by name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, field)| field)
    }

    /// Whether this is a Relay connection: an object with `edges` and `pageInfo`.
    pub fn is_connection(&self) -> bool {
        self.kind == Kind::Object
            && self.field("edges").is_some()
            && self.field("pageInfo").is_some()
    }
}

/// The schema's types by name.
#[derive(Debug, Clone, Default)]
pub struct Index {
    types: HashMap<String, TypeInfo>,
    /// The root types' names.
    pub query: String,
    /// The mutation root, when there is one.
    pub mutation: Option<String>,
    /// The subscription root, when there is one.
    pub subscription: Option<String>,
}

/// The built-in scalars, which the SDL does not list.
const BUILT_IN_SCALARS: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];

impl Index {
    /// Builds the index from SDL. Panics on SDL that does not parse: the SDL is the
    /// schema's own, so that is a bug, found by the first test that builds a schema.
    pub fn from_sdl(sdl: &str) -> Index {
        let document =
            async_graphql::parser::parse_schema(sdl).expect("the schema's own SDL parses");
        let mut index = Index {
            query: "Query".into(),
            ..Index::default()
        };
        for name in BUILT_IN_SCALARS {
            index.types.insert(name.into(), scalar());
        }
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    let schema = schema.node;
                    if let Some(query) = schema.query {
                        index.query = query.node.to_string();
                    }
                    index.mutation = schema.mutation.map(|name| name.node.to_string());
                    index.subscription = schema.subscription.map(|name| name.node.to_string());
                }
                TypeSystemDefinition::Type(definition) => {
                    let definition = definition.node;
                    let name = definition.name.node.to_string();
                    let info = type_info(definition.kind);
                    index.types.insert(name, info);
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        // Without a `schema { ... }` block the roots have their default names.
        if index.mutation.is_none() && index.types.contains_key("Mutation") {
            index.mutation = Some("Mutation".into());
        }
        if index.subscription.is_none() && index.types.contains_key("Subscription") {
            index.subscription = Some("Subscription".into());
        }
        // Interfaces know their implementations.
        let implementations: Vec<(String, String)> = index
            .types
            .iter()
            .flat_map(|(name, info)| {
                info.interfaces
                    .iter()
                    .map(move |interface| (interface.clone(), name.clone()))
            })
            .collect();
        for (interface, implementation) in implementations {
            if let Some(info) = index.types.get_mut(&interface) {
                info.possible.push(implementation);
            }
        }
        index
    }

    /// A type by name.
    pub fn get(&self, name: &str) -> Option<&TypeInfo> {
        self.types.get(name)
    }

    /// Every type, by name.
    pub fn types(&self) -> impl Iterator<Item = (&String, &TypeInfo)> {
        self.types.iter()
    }

    /// How many types introspection lists (ours, the built-in scalars, and the eight
    /// introspection types).
    pub fn introspected_types(&self) -> usize {
        self.types.len() + 8
    }
}

fn scalar() -> TypeInfo {
    TypeInfo {
        kind: Kind::Scalar,
        fields: Vec::new(),
        interfaces: Vec::new(),
        possible: Vec::new(),
        enum_values: Vec::new(),
    }
}

fn type_info(kind: TypeKind) -> TypeInfo {
    let mut info = scalar();
    match kind {
        TypeKind::Scalar => {}
        TypeKind::Enum(values) => {
            info.kind = Kind::Enum;
            info.enum_values = values
                .values
                .iter()
                .map(|value| value.node.value.node.to_string())
                .collect();
        }
        TypeKind::Object(object) => {
            info.kind = Kind::Object;
            info.interfaces = object
                .implements
                .iter()
                .map(|n| n.node.to_string())
                .collect();
            info.fields = output_fields(object.fields);
        }
        TypeKind::Interface(interface) => {
            info.kind = Kind::Interface;
            info.interfaces = interface
                .implements
                .iter()
                .map(|n| n.node.to_string())
                .collect();
            info.fields = output_fields(interface.fields);
        }
        TypeKind::Union(union) => {
            info.kind = Kind::Union;
            info.possible = union.members.iter().map(|n| n.node.to_string()).collect();
        }
        TypeKind::InputObject(input) => {
            info.kind = Kind::InputObject;
            info.fields = input
                .fields
                .into_iter()
                .map(|field| {
                    let field = field.node;
                    (
                        field.name.node.to_string(),
                        Field {
                            ty: field.ty.node,
                            args: Vec::new(),
                        },
                    )
                })
                .collect();
        }
    }
    info
}

fn output_fields(
    fields: Vec<async_graphql::Positioned<async_graphql::parser::types::FieldDefinition>>,
) -> Vec<(String, Field)> {
    fields
        .into_iter()
        .map(|field| {
            let field = field.node;
            let args = field
                .arguments
                .into_iter()
                .map(|arg| (arg.node.name.node.to_string(), arg.node.ty.node))
                .collect();
            (
                field.name.node.to_string(),
                Field {
                    ty: field.ty.node,
                    args,
                },
            )
        })
        .collect()
}

/// The named type under any list and non-null wrappers.
pub fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => named(inner),
    }
}

/// Whether the type is a list (at its outermost level, under a non-null).
pub fn is_list(ty: &Type) -> bool {
    matches!(ty.base, BaseType::List(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_knows_types_fields_arguments_and_roots() {
        let index = Index::from_sdl(
            "type Query { a(first: Int): AConnection! b: [B!]! }
             type AConnection { edges: [AEdge!]! pageInfo: P! }
             type AEdge { node: B! cursor: String! }
             type P { hasNextPage: Boolean! }
             interface Node { id: ID! }
             type B implements Node { id: ID! }
             input I { s: String n: [I!] }
             enum E { X Y }
             schema { query: Query }",
        );
        assert_eq!(index.query, "Query");
        assert!(index.mutation.is_none());
        let query = index.get("Query").unwrap();
        assert_eq!(named(&query.field("a").unwrap().ty), "AConnection");
        assert!(query.field("a").unwrap().arg("first").is_some());
        assert!(is_list(&query.field("b").unwrap().ty));
        assert!(index.get("AConnection").unwrap().is_connection());
        assert!(!index.get("B").unwrap().is_connection());
        assert_eq!(index.get("Node").unwrap().possible, ["B"]);
        assert_eq!(index.get("E").unwrap().enum_values, ["X", "Y"]);
        assert_eq!(index.get("I").unwrap().kind, Kind::InputObject);
        assert_eq!(index.get("String").unwrap().kind, Kind::Scalar);
    }
}
