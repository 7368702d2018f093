//! A property of the whole server: for any document, valid or not, generated from the
//! schema itself (so fields added later are exercised too), the answer is a GraphQL answer:
//! no panic, no 5xx, every error typed with `extensions.code`, and within a time bound.
//!
//! Documents are random selections of real fields with random arguments (right and wrong
//! types, long strings, odd numbers), then, for half of them, mutated: characters deleted,
//! brackets and punctuation inserted, pieces repeated, the end cut off. Each case prints
//! its seed on failure; `PRIMA_FUZZ_SEED` and `PRIMA_FUZZ_CASES` replay or extend a run.
//! The coverage-guided fuzzer over the same surface is in `fuzz/` (run by hand).

use std::time::{Duration, Instant};

use prima_graphql::limits::index::{Index, Kind, TypeInfo, named};
use prima_tests::TestApp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// The longest any one answer may take (a debug build on a busy 2-core machine).
const BOUND: Duration = Duration::from_secs(10);

struct Generator<'a> {
    index: &'a Index,
    rng: StdRng,
}

impl Generator<'_> {
    fn pick<'b, T>(&mut self, items: &'b [T]) -> Option<&'b T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[self.rng.random_range(0..items.len())])
        }
    }

    fn document(&mut self) -> String {
        let root = match self.rng.random_range(0..10) {
            0..=6 => ("query", self.index.query.clone()),
            _ => ("mutation", self.index.mutation.clone().unwrap_or_default()),
        };
        let mut out = format!("{} {{ ", root.0);
        self.selection(&root.1, 0, &mut out);
        out.push('}');
        out
    }

    fn selection(&mut self, ty: &str, depth: usize, out: &mut String) {
        let Some(info) = self.index.get(ty).cloned() else {
            out.push_str("__typename ");
            return;
        };
        if matches!(info.kind, Kind::Union | Kind::Interface) || info.fields.is_empty() {
            out.push_str("__typename ");
            if let Some(member) = self.pick(&info.possible).cloned() {
                out.push_str(&format!("... on {member} {{ "));
                self.selection(&member, depth + 1, out);
                out.push_str("} ");
            }
            return;
        }
        let count = self.rng.random_range(1..=4);
        for i in 0..count {
            let Some((name, field)) = self.pick(&info.fields).cloned() else {
                return;
            };
            if self.rng.random_bool(0.2) {
                out.push_str(&format!("a{i}: "));
            }
            out.push_str(&name);
            let mut args = Vec::new();
            for (arg, ty) in &field.args {
                if !ty.nullable || self.rng.random_bool(0.4) {
                    args.push(format!("{arg}: {}", self.value(ty, 0)));
                }
            }
            if !args.is_empty() {
                out.push_str(&format!("({})", args.join(", ")));
            }
            let child = named(&field.ty);
            let composite = self
                .index
                .get(child)
                .is_some_and(|t: &TypeInfo| !matches!(t.kind, Kind::Scalar | Kind::Enum));
            if composite {
                out.push_str(" { ");
                if depth < 5 {
                    self.selection(child, depth + 1, out);
                } else {
                    out.push_str("__typename ");
                }
                out.push_str("} ");
            } else {
                out.push(' ');
            }
        }
    }

    fn value(&mut self, ty: &async_graphql::parser::types::Type, depth: usize) -> String {
        use async_graphql::parser::types::BaseType;
        if depth > 4 || (ty.nullable && self.rng.random_bool(0.1)) {
            return "null".into();
        }
        match &ty.base {
            BaseType::List(inner) => {
                let n = self.rng.random_range(0..4);
                let items: Vec<String> = (0..n).map(|_| self.value(inner, depth + 1)).collect();
                format!("[{}]", items.join(", "))
            }
            BaseType::Named(name) => self.named_value(name.as_str(), depth),
        }
    }

    fn named_value(&mut self, name: &str, depth: usize) -> String {
        let info = self.index.get(name).cloned();
        match info.as_ref().map(|i| i.kind) {
            Some(Kind::Enum) => {
                let info = info.unwrap();
                match self.pick(&info.enum_values) {
                    Some(value) if self.rng.random_bool(0.9) => value.clone(),
                    _ => "NOT_A_VALUE".into(),
                }
            }
            Some(Kind::InputObject) => {
                let info = info.unwrap();
                let mut fields = Vec::new();
                for (field, definition) in &info.fields {
                    if !definition.ty.nullable || self.rng.random_bool(0.5) {
                        fields.push(format!(
                            "{field}: {}",
                            self.value(&definition.ty, depth + 1)
                        ));
                    }
                }
                format!("{{{}}}", fields.join(", "))
            }
            _ => self.scalar(name),
        }
    }

    fn scalar(&mut self, name: &str) -> String {
        let wrong_type = self.rng.random_bool(0.1);
        match (name, wrong_type) {
            ("Int", false) => {
                let choices = [0i64, -1, 1, 5, 100, 101, 2_147_483_647, -2_147_483_648];
                self.pick(&choices).unwrap().to_string()
            }
            ("Float", false) => "1.5".into(),
            ("Boolean", false) => self.rng.random_bool(0.5).to_string(),
            ("ID", false) => format!("\"{}\"", uuid::Uuid::new_v4()),
            ("DateTime", false) => "\"2031-02-03T19:30:00Z\"".into(),
            ("Decimal", false) => "\"12.34\"".into(),
            ("NaiveDate", false) => "\"1990-05-17\"".into(),
            _ => {
                let length = *self.pick(&[0usize, 1, 8, 300, 3_000]).unwrap();
                let text: String = (0..length)
                    .map(|_| {
                        *self
                            .pick(&['a', 'Z', '%', '_', '\\', ' ', 'é', '0'])
                            .unwrap()
                    })
                    .map(|c| {
                        if c == '\\' {
                            "\\\\".to_string()
                        } else {
                            c.to_string()
                        }
                    })
                    .collect();
                format!("\"{text}\"")
            }
        }
    }

    /// Breaks a document a little: what a fuzzer or a careless client sends.
    fn mutate(&mut self, document: String) -> String {
        let mut bytes: Vec<char> = document.chars().collect();
        for _ in 0..self.rng.random_range(1..=3) {
            if bytes.is_empty() {
                break;
            }
            let at = self.rng.random_range(0..bytes.len());
            match self.rng.random_range(0..5) {
                0 => {
                    let end = (at + self.rng.random_range(1..10)).min(bytes.len());
                    bytes.drain(at..end);
                }
                1 => {
                    let c = *self
                        .pick(&[
                            '{', '}', '[', ']', '(', ')', '"', '$', '@', ':', '!', '#', '.',
                        ])
                        .unwrap();
                    bytes.insert(at, c);
                }
                2 => {
                    let end = (at + self.rng.random_range(1..20)).min(bytes.len());
                    let piece: Vec<char> = bytes[at..end].to_vec();
                    for _ in 0..self.rng.random_range(1..50) {
                        bytes.splice(at..at, piece.iter().copied());
                    }
                }
                3 => bytes.truncate(at),
                _ => bytes.insert(at, '\u{0}'),
            }
        }
        bytes.into_iter().collect()
    }
}

/// One request: the property holds for its answer.
async fn check(app: &TestApp, token: Option<&str>, document: &str, seed: u64) {
    let client = reqwest::Client::new();
    let mut request = client
        .post(app.url("/graphql"))
        .json(&serde_json::json!({ "query": document }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let started = Instant::now();
    let response = tokio::time::timeout(BOUND, request.send())
        .await
        .unwrap_or_else(|_| panic!("seed {seed}: no answer within {BOUND:?} to {document}"))
        .unwrap_or_else(|err| {
            panic!("seed {seed}: the server dropped the request ({err}): {document}")
        });
    let status = response.status();
    assert!(
        status.as_u16() < 500,
        "seed {seed}: status {status} for {document}"
    );
    let body: Value = response
        .json()
        .await
        .unwrap_or_else(|err| panic!("seed {seed}: the answer is not JSON ({err}) for {document}"));
    if let Some(errors) = body["errors"].as_array() {
        for error in errors {
            assert!(
                error["extensions"]["code"].is_string(),
                "seed {seed}: an error without a code: {error} for {document}"
            );
            assert_ne!(
                error["extensions"]["code"], "INTERNAL",
                "seed {seed}: an internal error for {document}"
            );
        }
    }
    assert!(started.elapsed() < BOUND);
}

#[tokio::test]
async fn any_document_generated_from_the_schema_gets_a_typed_answer_in_time() {
    let app = TestApp::demo(100).await;
    let owner = app.login("owner@prima.demo").await;
    let viewer = app.login("viewer@prima.demo").await;
    let index = Index::from_sdl(&prima_graphql::sdl());
    let base: u64 = std::env::var("PRIMA_FUZZ_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(20261201);
    let cases: u64 = std::env::var("PRIMA_FUZZ_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(300);
    for case in 0..cases {
        let seed = base.wrapping_add(case);
        let mut generator = Generator {
            index: &index,
            rng: StdRng::seed_from_u64(seed),
        };
        let mut document = generator.document();
        if generator.rng.random_bool(0.5) {
            document = generator.mutate(document);
        }
        let token = match seed % 3 {
            0 => None,
            1 => Some(owner.as_str()),
            _ => Some(viewer.as_str()),
        };
        check(&app, token, &document, seed).await;
    }
    // And the server is still up and right.
    let alive = app
        .graphql(None, "{ __typename }", serde_json::json!({}))
        .await;
    assert_eq!(alive["data"]["__typename"], "Query");
}
