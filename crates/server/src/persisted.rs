//! Persisted documents: Apollo's automatic persisted queries (APQ) by default, or, with
//! `--trusted-documents FILE`, only the documents of a manifest.
//!
//! **Automatic.** A request may name its document by hash,
//! `extensions.persistedQuery = {"version": 1, "sha256Hash": "<64 hex digits>"}`. With the
//! hash alone, the document is looked up: unknown, the answer is the error
//! `PersistedQueryNotFound` (code PERSISTED_QUERY_NOT_FOUND), and the client sends the
//! hash again with the document. A document sent with its hash must match it; it is kept
//! once a request with it has run (a document that does not parse or validate is never
//! kept), for [`TTL`], in Redis when `REDIS_URL` is set (shared by every replica) or in
//! process (at most [`MEMORY_ENTRIES`], oldest out first).
//!
//! **Trusted documents.** For production: the manifest, as Apollo's tooling
//! (`persisted-query-manifest.json`: `{"format": "apollo-persisted-query-manifest",
//! "operations": [{"id", "body", ...}]}`) or Relay's (`{"<id>": "<document>"}`) emits it,
//! is the whole set of operations that run. A request names one by id (the hash above, or
//! `documentId`), or sends a document whose SHA-256 is in the manifest; anything else is
//! refused with PERSISTED_QUERY_NOT_ALLOWED before it is parsed. Nothing is learnt.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use async_graphql::{ErrorExtensionValues, Request, ServerError, Value};
use sha2::{Digest, Sha256};

/// How long a learnt document is kept.
pub const TTL: Duration = Duration::from_secs(24 * 3600);

/// The longest a Redis command may take before the document is treated as unknown.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// Most documents kept in process.
pub const MEMORY_ENTRIES: usize = 10_000;

/// The error code of an unknown hash, and the message Apollo Client looks for.
pub const NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
/// The error code of a document outside the trusted manifest.
pub const NOT_ALLOWED: &str = "PERSISTED_QUERY_NOT_ALLOWED";

/// Where documents come from.
pub enum Persisted {
    /// Learnt from clients (APQ).
    Automatic(Store),
    /// The manifest's, and only those.
    Trusted(Manifest),
}

/// Learnt documents by hash.
pub enum Store {
    /// Shared by replicas: `<prefix>:<hash>`, expiring after [`TTL`].
    Redis {
        /// The server's Redis.
        client: redis::Client,
        /// One multiplexed connection, opened on first use and again after a failure.
        connection: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
        /// Key prefix.
        prefix: String,
    },
    /// This process's, bounded.
    Memory(Mutex<Memory>),
}

/// The in-process store: documents by hash, and the order they came in.
#[derive(Default)]
pub struct Memory {
    documents: HashMap<String, Arc<str>>,
    order: VecDeque<String>,
}

/// A trusted-documents manifest.
#[derive(Debug, Default)]
pub struct Manifest {
    /// Documents by the manifest's id.
    by_id: HashMap<String, Arc<str>>,
    /// The same documents by their SHA-256 (lowercase hex).
    by_hash: HashMap<String, Arc<str>>,
}

/// What the server does with a request's document after it ran.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    /// Nothing.
    Nothing,
    /// Keep it under this hash, if it ran.
    Learn(String),
}

impl Persisted {
    /// APQ, in Redis when there is one. Keys are by content (a hash names exactly one
    /// document, checked when it is kept), so deployments may share a prefix.
    pub fn automatic(redis: Option<redis::Client>, prefix: &str) -> Persisted {
        Persisted::Automatic(match redis {
            Some(client) => Store::Redis {
                client,
                connection: tokio::sync::Mutex::new(None),
                prefix: prefix.to_owned(),
            },
            None => Store::Memory(Mutex::default()),
        })
    }

    /// Reads a manifest file.
    pub fn trusted(path: &std::path::Path) -> anyhow::Result<Persisted> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the trusted documents {}", path.display()))?;
        let manifest = Manifest::parse(&text)
            .with_context(|| format!("reading the trusted documents {}", path.display()))?;
        tracing::info!(documents = manifest.len(), "only trusted documents run");
        Ok(Persisted::Trusted(manifest))
    }

    /// Puts the request's document in place (from its hash), or refuses the request.
    pub async fn resolve(&self, request: &mut Request) -> Result<After, ServerError> {
        let named = named_document(request)?;
        match self {
            Persisted::Trusted(manifest) => {
                manifest.admit(request, named.as_deref())?;
                Ok(After::Nothing)
            }
            Persisted::Automatic(store) => {
                let Some(hash) = named else {
                    return Ok(After::Nothing);
                };
                if !request.query.is_empty() {
                    if sha256(&request.query) != hash {
                        return Err(coded(
                            "provided sha does not match query".into(),
                            "BAD_REQUEST",
                        ));
                    }
                    return Ok(After::Learn(hash));
                }
                match store.get(&hash).await {
                    Some(document) => {
                        request.query = document.to_string();
                        Ok(After::Nothing)
                    }
                    None => Err(coded("PersistedQueryNotFound".into(), NOT_FOUND)),
                }
            }
        }
    }

    /// Keeps a document that ran under its hash.
    pub async fn learn(&self, hash: String, document: &str) {
        if let Persisted::Automatic(store) = self {
            store.put(hash, document).await;
        }
    }
}

impl Store {
    async fn get(&self, hash: &str) -> Option<Arc<str>> {
        match self {
            Store::Memory(memory) => memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .documents
                .get(hash)
                .cloned(),
            Store::Redis {
                client,
                connection,
                prefix,
            } => {
                let key = format!("{prefix}:{hash}");
                let found = on_redis(client, connection, |mut conn| async move {
                    redis::cmd("GET")
                        .arg(key)
                        .query_async::<Option<String>>(&mut conn)
                        .await
                })
                .await;
                // Unreachable Redis: as if unknown; the client sends the document again.
                found
                    .inspect_err(
                        |err| tracing::warn!(error = %err, "persisted query lookup failed"),
                    )
                    .ok()
                    .flatten()
                    .map(Arc::from)
            }
        }
    }

    async fn put(&self, hash: String, document: &str) {
        match self {
            Store::Memory(memory) => memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(hash, document),
            Store::Redis {
                client,
                connection,
                prefix,
            } => {
                let (key, document) = (format!("{prefix}:{hash}"), document.to_owned());
                let stored = on_redis(client, connection, |mut conn| async move {
                    redis::cmd("SET")
                        .arg(key)
                        .arg(document)
                        .arg("EX")
                        .arg(TTL.as_secs())
                        .query_async::<()>(&mut conn)
                        .await
                })
                .await;
                if let Err(err) = stored {
                    tracing::warn!(error = %err, "keeping a persisted query failed");
                }
            }
        }
    }
}

/// Runs `command` on the shared connection in `slot` (opened on first use, with timeouts,
/// so an unresponsive Redis delays a request by at most [`REDIS_TIMEOUT`]); a failure drops
/// the connection, and the next command opens another.
async fn on_redis<T, F, Fut>(
    client: &redis::Client,
    slot: &tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    command: F,
) -> redis::RedisResult<T>
where
    F: FnOnce(redis::aio::MultiplexedConnection) -> Fut,
    Fut: std::future::Future<Output = redis::RedisResult<T>>,
{
    let conn = {
        let mut slot = slot.lock().await;
        match &*slot {
            Some(conn) => conn.clone(),
            None => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(REDIS_TIMEOUT))
                    .set_response_timeout(Some(REDIS_TIMEOUT));
                let conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                *slot = Some(conn.clone());
                conn
            }
        }
    };
    let result = command(conn).await;
    if result.is_err() {
        *slot.lock().await = None;
    }
    result
}

impl Memory {
    fn insert(&mut self, hash: String, document: &str) {
        if self.documents.contains_key(&hash) {
            return;
        }
        while self.order.len() >= MEMORY_ENTRIES {
            if let Some(oldest) = self.order.pop_front() {
                self.documents.remove(&oldest);
            }
        }
        self.documents.insert(hash.clone(), document.into());
        self.order.push_back(hash);
    }
}

impl Manifest {
    /// Apollo's manifest format or Relay's id-to-document map.
    pub fn parse(text: &str) -> anyhow::Result<Manifest> {
        let json: serde_json::Value =
            serde_json::from_str(text).context("the manifest is not JSON")?;
        let mut entries = Vec::new();
        match &json {
            serde_json::Value::Object(map) if map.contains_key("operations") => {
                let operations = map["operations"]
                    .as_array()
                    .context("`operations` is not a list")?;
                for operation in operations {
                    let id = operation["id"]
                        .as_str()
                        .context("an operation without an id")?;
                    let body = operation["body"]
                        .as_str()
                        .with_context(|| format!("operation {id} has no body"))?;
                    entries.push((id.to_owned(), body.to_owned()));
                }
            }
            serde_json::Value::Object(map) => {
                for (id, body) in map {
                    let body = body
                        .as_str()
                        .with_context(|| format!("document {id} is not a string"))?;
                    entries.push((id.clone(), body.to_owned()));
                }
            }
            _ => anyhow::bail!("the manifest is neither Apollo's nor Relay's format"),
        }
        anyhow::ensure!(!entries.is_empty(), "the manifest holds no documents");
        let mut manifest = Manifest::default();
        for (id, body) in entries {
            let body: Arc<str> = body.into();
            manifest.by_hash.insert(sha256(&body), body.clone());
            manifest.by_id.insert(id, body);
        }
        Ok(manifest)
    }

    /// How many documents it holds.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether it holds none (a parsed manifest never does).
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    fn admit(&self, request: &mut Request, named: Option<&str>) -> Result<(), ServerError> {
        let refused = || {
            coded(
                "only trusted documents run on this server; this one is not in its manifest".into(),
                NOT_ALLOWED,
            )
        };
        if let Some(id) = named {
            let document = self
                .by_id
                .get(id)
                .or_else(|| self.by_hash.get(id))
                .ok_or_else(refused)?;
            if !request.query.is_empty() && request.query != **document {
                return Err(refused());
            }
            request.query = document.to_string();
            return Ok(());
        }
        if self.by_hash.contains_key(&sha256(&request.query)) {
            Ok(())
        } else {
            Err(refused())
        }
    }
}

/// The document a request names by id: `extensions.persistedQuery.sha256Hash` (version 1)
/// or `extensions.documentId`.
fn named_document(request: &Request) -> Result<Option<String>, ServerError> {
    if let Some(Value::String(id)) = request.extensions.get("documentId") {
        return valid_id(id).map(Some);
    }
    let Some(persisted) = request.extensions.get("persistedQuery") else {
        return Ok(None);
    };
    let malformed = || {
        coded(
            "`extensions.persistedQuery` must be {\"version\": 1, \"sha256Hash\": \"<64 hex digits>\"}"
                .into(),
            "BAD_REQUEST",
        )
    };
    let Value::Object(fields) = persisted else {
        return Err(malformed());
    };
    if fields.get("version") != Some(&Value::from(1)) {
        return Err(coded(
            "persisted query version 1 is the only one".into(),
            "PERSISTED_QUERY_NOT_SUPPORTED",
        ));
    }
    match fields.get("sha256Hash") {
        Some(Value::String(hash))
            if hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(Some(hash.clone()))
        }
        _ => Err(malformed()),
    }
}

/// A document id as a client may send it: short and printable.
fn valid_id(id: &str) -> Result<String, ServerError> {
    let fits = !id.is_empty() && id.len() <= 200 && id.bytes().all(|b| b.is_ascii_graphic());
    if fits {
        Ok(id.to_owned())
    } else {
        Err(coded(
            "`documentId` must be 1 to 200 printable characters".into(),
            "BAD_REQUEST",
        ))
    }
}

/// Lowercase hex SHA-256 of a document.
pub fn sha256(document: &str) -> String {
    use std::fmt::Write as _;
    Sha256::digest(document.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

fn coded(message: String, code: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "{ __typename }";

    fn hashed(query: &str, hash: &str) -> Request {
        let mut request = Request::new(query);
        request.extensions.insert(
            "persistedQuery".into(),
            async_graphql::value!({ "version": 1, "sha256Hash": hash }),
        );
        request
    }

    fn code(error: &ServerError) -> String {
        error
            .extensions
            .as_ref()
            .unwrap()
            .get("code")
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_hash_is_lowercase_hex_sha256() {
        assert_eq!(
            sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn apq_asks_for_the_document_once_then_answers_from_the_hash() {
        let apq = Persisted::automatic(None, "test");
        let hash = sha256(DOC);
        let mut request = hashed("", &hash);
        let err = apq.resolve(&mut request).await.unwrap_err();
        assert_eq!(
            (err.message.as_str(), code(&err).as_str()),
            ("PersistedQueryNotFound", "\"PERSISTED_QUERY_NOT_FOUND\"")
        );
        let mut request = hashed(DOC, &hash);
        assert_eq!(
            apq.resolve(&mut request).await.unwrap(),
            After::Learn(hash.clone())
        );
        apq.learn(hash.clone(), DOC).await;
        let mut request = hashed("", &hash);
        assert_eq!(apq.resolve(&mut request).await.unwrap(), After::Nothing);
        assert_eq!(request.query, DOC);
        // A document that is not its hash's, and malformed extensions.
        let err = apq
            .resolve(&mut hashed("{ me { user { id } } }", &hash))
            .await
            .unwrap_err();
        assert!(err.message.contains("does not match"));
        for bad in ["ABC", &hash.to_uppercase(), &"0".repeat(63)] {
            assert!(apq.resolve(&mut hashed("", bad)).await.is_err(), "{bad}");
        }
        let mut request = Request::new("");
        request.extensions.insert(
            "persistedQuery".into(),
            async_graphql::value!({ "version": 2, "sha256Hash": hash }),
        );
        let err = apq.resolve(&mut request).await.unwrap_err();
        assert_eq!(code(&err), "\"PERSISTED_QUERY_NOT_SUPPORTED\"");
        // No extension: the request as it is.
        assert_eq!(
            apq.resolve(&mut Request::new(DOC)).await.unwrap(),
            After::Nothing
        );
    }

    #[tokio::test]
    async fn an_unreachable_redis_makes_every_hash_unknown_and_fails_nothing_else() {
        // Port 1 on the loopback: every connect is refused at once.
        let client = redis::Client::open("redis://127.0.0.1:1").unwrap();
        let apq = Persisted::automatic(Some(client), "test");
        let hash = sha256(DOC);
        let started = std::time::Instant::now();
        let err = apq.resolve(&mut hashed("", &hash)).await.unwrap_err();
        assert_eq!(code(&err), "\"PERSISTED_QUERY_NOT_FOUND\"");
        let mut request = hashed(DOC, &hash);
        assert_eq!(
            apq.resolve(&mut request).await.unwrap(),
            After::Learn(hash.clone())
        );
        apq.learn(hash, DOC).await;
        assert!(
            started.elapsed() < REDIS_TIMEOUT * 4,
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn the_in_process_store_keeps_at_most_its_bound_oldest_out_first() {
        let mut memory = Memory::default();
        for n in 0..MEMORY_ENTRIES + 5 {
            memory.insert(format!("{n:064}"), "{ a }");
        }
        assert_eq!(memory.documents.len(), MEMORY_ENTRIES);
        assert!(!memory.documents.contains_key(&format!("{:064}", 4)));
        assert!(memory.documents.contains_key(&format!("{:064}", 5)));
    }

    #[tokio::test]
    async fn a_trusted_manifest_runs_its_documents_only() {
        let apollo = format!(
            r#"{{"format": "apollo-persisted-query-manifest", "version": 1,
                "operations": [{{"id": "{}", "name": "T", "type": "query", "body": "{DOC}"}}]}}"#,
            sha256(DOC)
        );
        let relay = format!(r#"{{"relay-id-1": "{DOC}"}}"#);
        for text in [apollo, relay] {
            let trusted = Persisted::Trusted(Manifest::parse(&text).unwrap());
            // By its text, by its hash, and (Relay) by the manifest's id.
            assert!(trusted.resolve(&mut Request::new(DOC)).await.is_ok());
            let mut by_hash = hashed("", &sha256(DOC));
            trusted.resolve(&mut by_hash).await.unwrap();
            assert_eq!(by_hash.query, DOC);
            let err = trusted
                .resolve(&mut Request::new("{ me { user { id } } }"))
                .await
                .unwrap_err();
            assert_eq!(code(&err), format!("\"{NOT_ALLOWED}\""));
            let err = trusted
                .resolve(&mut hashed("", &sha256("{ other }")))
                .await
                .unwrap_err();
            assert_eq!(code(&err), format!("\"{NOT_ALLOWED}\""));
            // Learning is off.
            trusted.learn(sha256("{ other }"), "{ other }").await;
            assert!(
                trusted
                    .resolve(&mut Request::new("{ other }"))
                    .await
                    .is_err()
            );
        }
        let mut by_id = Request::new("");
        by_id
            .extensions
            .insert("documentId".into(), Value::from("relay-id-1"));
        let relay =
            Persisted::Trusted(Manifest::parse(&format!(r#"{{"relay-id-1": "{DOC}"}}"#)).unwrap());
        relay.resolve(&mut by_id).await.unwrap();
        assert_eq!(by_id.query, DOC);
        for bad in ["[]", "{}", r#"{"operations": [{"id": "x"}]}"#, "nope"] {
            assert!(Manifest::parse(bad).is_err(), "{bad}");
        }
    }
}
