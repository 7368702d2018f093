//! Limits on what a request may ask, all enforced before any resolver runs (and so before
//! any SQL), over HTTP and WebSocket alike:
//!
//! 1. Before parsing ([`document`]): the document's size in bytes and its number of
//!    tokens, how deep its selection sets and argument values nest, and how deep the
//!    variables nest. The parser is recursive; nothing deep or large reaches it.
//! 2. After parsing ([`cost`], [`inputs`]): the operation's cost (the most values its
//!    answer can hold, as GitHub and Shopify count it), its number of root fields and
//!    aliases, at most one `login`, and every string and list argument against its
//!    field's limit.
//! 3. After validation, async-graphql's own depth limit (`max_depth`).
//!
//! A refused request gets one error with `extensions.code` `LIMIT_EXCEEDED` (and
//! `extensions.limit` naming the limit, `extensions.maximum` its value), or
//! `BAD_USER_INPUT` with `extensions.field` for a string or list that is too long. Every
//! answer whose cost was measured carries `extensions.cost` (`requested`, `maximum`, and
//! `throttle { capacity remaining refillPerSecond }`).
//! 4. The caller's rate limit, in cost points ([`Guard::admit`]): THROTTLED, with
//!    `extensions.retryAfter` and a `Retry-After` header, when their budget cannot pay.
//! Each limit is a setting of the server with a safe default ([`Limits::default`]).

pub mod cost;
pub mod document;
pub mod index;
pub mod inputs;

use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    ErrorExtensionValues, Request, Response, ServerError, ServerResult, Value, Variables,
};
use prima_service::access::Actor;
use prima_service::bookings::create::ClientInfo;
use prima_service::throttle::Store;

use self::cost::{Caps, Over};
use self::index::Index;
use self::inputs::{InputCaps, Refusal};

/// Query limits, on by default.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Deepest selection allowed.
    pub max_depth: usize,
    /// Highest cost allowed: the most values the answer can hold.
    pub max_cost: u64,
    /// Most root fields in one operation.
    pub max_root_fields: usize,
    /// Most aliased fields in one operation.
    pub max_aliases: usize,
    /// Longest document, in bytes.
    pub max_document_bytes: usize,
    /// Most lexical tokens in a document.
    pub max_tokens: usize,
    /// Deepest nesting of lists and input objects in argument values and variables.
    pub max_input_depth: usize,
    /// Longest string argument or input field, in characters, where the field has no
    /// limit of its own.
    pub max_string_chars: usize,
    /// Most items in any list argument or input field.
    pub max_list_items: usize,
    /// Whether introspection (the docs GraphiQL shows) is allowed.
    pub introspection: bool,
    /// Each caller's budget of cost points (a leaky bucket); 0 turns rate limiting off.
    pub rate_capacity: u64,
    /// Points each caller's budget regains per second.
    pub rate_refill_per_sec: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 16,
            max_cost: 100_000,
            max_root_fields: 30,
            max_aliases: 100,
            max_document_bytes: 64 * 1024,
            max_tokens: 10_000,
            max_input_depth: 10,
            max_string_chars: 2_000,
            max_list_items: 100,
            introspection: true,
            rate_capacity: 1_000_000,
            rate_refill_per_sec: 100_000,
        }
    }
}

/// The error code of a broken limit.
pub const LIMIT_EXCEEDED: &str = "LIMIT_EXCEEDED";

/// The error code of a mutation or subscription sent where only queries run (an HTTP GET).
pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";

/// Which operations a request may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Any (POST, WebSocket).
    Any,
    /// Queries only (GET: a link or a cache must never change anything).
    Queries,
}

/// Enforces [`Limits`] on each request before the schema runs it. It is not a schema
/// extension: with any extension installed, async-graphql routes every field of every
/// response through the extension chain (a registry lookup and a boxed future per field),
/// a cost paid on each of the thousands of fields of a portfolio answer for hooks that
/// only ever look at the request.
pub struct Guard {
    limits: Arc<Limits>,
    index: Index,
}

/// What [`Guard::admit`] found out about a request, reported on its answer.
#[derive(Default)]
pub struct Admission {
    cost: Option<u64>,
    /// The caller's budget after this request was charged (or refused).
    budget: Option<Budget>,
}

/// A caller's rate-limit budget, as the answer reports it.
#[derive(Clone, Copy)]
struct Budget {
    remaining: u64,
    retry_after: Option<std::time::Duration>,
}

/// Whose budget a request is charged to: the user's, or for an anonymous request the
/// client address's.
pub fn rate_key(actor: Option<&Actor>, client: &ClientInfo) -> String {
    match (actor, client.ip_address.as_deref()) {
        (Some(actor), _) => format!("cost:user:{}", actor.user_id),
        (None, Some(address)) => format!("cost:address:{address}"),
        (None, None) => "cost:anonymous".to_owned(),
    }
}

impl Guard {
    /// The guard of a schema whose SDL `index` was made from.
    pub fn new(limits: Limits, index: Index) -> Self {
        Guard {
            limits: Arc::new(limits),
            index,
        }
    }

    /// Every check of a request, in order: those that need no parsing; parsing (the
    /// document is kept in the request, so the schema does not parse it again); those of the
    /// parsed operation; then the charge to `rate_key`'s budget in `limiter` (absent:
    /// no rate limit). The error, if any, is the request's whole answer.
    pub async fn admit(
        &self,
        request: &mut Request,
        allowed: Allowed,
        limiter: Option<&Store>,
        rate_key: &str,
    ) -> (Admission, ServerResult<()>) {
        let mut admission = Admission::default();
        let verdict = self
            .check(request, allowed, limiter, rate_key, &mut admission)
            .await;
        (admission, verdict)
    }

    async fn check(
        &self,
        request: &mut Request,
        allowed: Allowed,
        limiter: Option<&Store>,
        rate_key: &str,
        admission: &mut Admission,
    ) -> ServerResult<()> {
        self.before_parsing(request)?;
        let document = async_graphql::parser::parse_query(&request.query)?;
        // An unknown or ambiguous operation is validation's to report (and never runs).
        if allowed == Allowed::Queries
            && let Some(operation) = cost::operation(&document, request.operation_name.as_deref())
            && operation.node.ty != async_graphql::parser::types::OperationType::Query
        {
            return Err(with_code(
                format!(
                    "a GET request runs queries only; send this {} with POST",
                    operation.node.ty
                ),
                METHOD_NOT_ALLOWED,
                |_| {},
            ));
        }
        self.after_parsing(
            &document,
            request.operation_name.as_deref(),
            &request.variables,
            admission,
        )?;
        request.set_parsed_query(document);
        self.charge(limiter, rate_key, admission).await
    }

    /// Puts `extensions.cost` (and, when throttled, `Retry-After`) on the answer.
    pub fn report(&self, admission: &Admission, response: &mut Response) {
        if let Some(report) = self.cost_report(admission) {
            response.extensions.insert("cost".to_owned(), report);
        }
        if let Some(wait) = admission.budget.and_then(|budget| budget.retry_after) {
            let seconds = prima_service::error::whole_seconds(wait);
            if let Ok(value) = seconds.to_string().parse() {
                response.http_headers.insert("retry-after", value);
            }
        }
    }

    /// The checks that need no parsing.
    fn before_parsing(&self, request: &Request) -> ServerResult<()> {
        let limits = &self.limits;
        if request.query.len() > limits.max_document_bytes {
            return Err(limit_error(
                "documentBytes",
                limits.max_document_bytes,
                format!(
                    "the query document is {} bytes; at most {} are accepted",
                    request.query.len(),
                    limits.max_document_bytes
                ),
            ));
        }
        let shape = document::scan(&request.query, limits.max_tokens);
        if shape.tokens > limits.max_tokens {
            return Err(limit_error(
                "tokens",
                limits.max_tokens,
                format!(
                    "the query document has more than {} tokens",
                    limits.max_tokens
                ),
            ));
        }
        // The outermost braces of an operation or fragment are one level; async-graphql's
        // own depth check (after validation) gives the precise answer below this.
        let selection_cap = limits.max_depth + 1;
        if shape.selection_depth > selection_cap {
            return Err(limit_error(
                "depth",
                limits.max_depth,
                format!(
                    "the query is nested too deep: selections nest {} levels, at most {} are accepted",
                    shape.selection_depth - 1,
                    limits.max_depth
                ),
            ));
        }
        if shape.value_depth > limits.max_input_depth {
            return Err(too_deep(limits.max_input_depth, "an argument value"));
        }
        for (name, value) in request.variables.iter() {
            if document::value_depth(value, limits.max_input_depth) > limits.max_input_depth {
                return Err(too_deep(
                    limits.max_input_depth,
                    &format!("the variable `${name}`"),
                ));
            }
        }
        Ok(())
    }

    /// The checks of the parsed operation: cost (noted in `admission`, even when too
    /// high), root fields, aliases, logins, inputs.
    fn after_parsing(
        &self,
        document: &ExecutableDocument,
        name: Option<&str>,
        variables: &Variables,
        admission: &mut Admission,
    ) -> ServerResult<()> {
        let index = &self.index;
        // An unknown or ambiguous operation is validation's to report.
        let Some(operation) = cost::operation(document, name) else {
            return Ok(());
        };
        let limits = &self.limits;
        let (measure, over) = cost::measure(
            index,
            document,
            &operation.node,
            variables,
            Caps {
                max_cost: limits.max_cost,
                max_root_fields: limits.max_root_fields,
                max_aliases: limits.max_aliases,
            },
        );
        admission.cost = Some(measure.cost);
        match over {
            Some(Over::Cost) => {
                return Err(limit_error(
                    "cost",
                    limits.max_cost,
                    format!(
                        "the query costs more than {} points (each field counts once per row it can return, \
                         page sizes multiplied down the tree); ask for smaller pages or fewer fields",
                        limits.max_cost
                    ),
                ));
            }
            Some(Over::RootFields) => {
                return Err(limit_error(
                    "rootFields",
                    limits.max_root_fields,
                    format!(
                        "the operation has more than {} root fields",
                        limits.max_root_fields
                    ),
                ));
            }
            Some(Over::Aliases) => {
                return Err(limit_error(
                    "aliases",
                    limits.max_aliases,
                    format!("the operation has more than {} aliases", limits.max_aliases),
                ));
            }
            None => {}
        }
        if measure.logins > 1 {
            return Err(limit_error(
                "logins",
                1,
                "at most one `login` is accepted per operation".to_owned(),
            ));
        }
        let caps = InputCaps {
            max_string_chars: limits.max_string_chars,
            max_list_items: limits.max_list_items,
            max_input_depth: limits.max_input_depth,
        };
        match inputs::check(index, document, &operation.node, variables, caps) {
            Ok(()) => Ok(()),
            Err(Refusal::Invalid { field, message }) => Err(bad_user_input(&field, message)),
            Err(Refusal::TooDeep { field }) => Err(too_deep(
                limits.max_input_depth,
                &format!("the argument `{field}`"),
            )),
        }
    }
}

impl Guard {
    /// Takes the query's cost from the caller's budget (per user; per client address for
    /// anonymous requests), in Redis when configured so every replica shares it. A query
    /// the budget cannot pay is refused THROTTLED, with when to retry; nothing runs.
    async fn charge(
        &self,
        limiter: Option<&Store>,
        key: &str,
        admission: &mut Admission,
    ) -> ServerResult<()> {
        let limits = &self.limits;
        let Some(cost) = admission.cost else {
            return Ok(());
        };
        if limits.rate_capacity == 0 {
            return Ok(());
        }
        let Some(limiter) = limiter else {
            return Ok(());
        };
        let bucket = prima_service::throttle::Bucket {
            capacity: limits.rate_capacity,
            refill_per_sec: limits.rate_refill_per_sec,
        };
        let take = limiter.take(key, cost, bucket).await;
        let budget = Budget {
            remaining: take.remaining(),
            retry_after: take.retry_after(),
        };
        admission.budget = Some(budget);
        match budget.retry_after {
            None => Ok(()),
            Some(wait) => {
                let seconds = prima_service::error::whole_seconds(wait);
                Err(with_code(
                    format!(
                        "rate limit: this query costs {cost} points and {} of your {} are left \
                         (they refill at {} per second); retry in {seconds} s",
                        budget.remaining, limits.rate_capacity, limits.rate_refill_per_sec
                    ),
                    "THROTTLED",
                    |extensions| extensions.set("retryAfter", seconds),
                ))
            }
        }
    }

    /// `extensions.cost` of the answer: what the query costs and, with rate limiting, the
    /// caller's budget.
    fn cost_report(&self, admission: &Admission) -> Option<Value> {
        let cost = admission.cost?;
        let name = async_graphql::Name::new;
        let mut report = async_graphql::indexmap::IndexMap::new();
        report.insert(name("requested"), Value::from(cost));
        report.insert(name("maximum"), Value::from(self.limits.max_cost));
        if let Some(budget) = admission.budget {
            let mut throttle = async_graphql::indexmap::IndexMap::new();
            throttle.insert(name("capacity"), Value::from(self.limits.rate_capacity));
            throttle.insert(name("remaining"), Value::from(budget.remaining));
            throttle.insert(
                name("refillPerSecond"),
                Value::from(self.limits.rate_refill_per_sec),
            );
            report.insert(name("throttle"), Value::Object(throttle));
        }
        Some(Value::Object(report))
    }
}

fn with_code(
    message: String,
    code: &str,
    more: impl FnOnce(&mut ErrorExtensionValues),
) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    more(&mut extensions);
    error.extensions = Some(extensions);
    error
}

fn limit_error(limit: &str, maximum: impl TryInto<i64>, message: String) -> ServerError {
    let maximum = maximum.try_into().unwrap_or(i64::MAX);
    with_code(message, LIMIT_EXCEEDED, |extensions| {
        extensions.set("limit", limit);
        extensions.set("maximum", maximum);
    })
}

fn too_deep(maximum: usize, what: &str) -> ServerError {
    limit_error(
        "inputDepth",
        maximum,
        format!("{what} nests lists or input objects deeper than {maximum} levels"),
    )
}

fn bad_user_input(field: &str, message: String) -> ServerError {
    with_code(
        message,
        prima_service::Error::invalid("", "").code(),
        |extensions| {
            extensions.set("field", field);
        },
    )
}
