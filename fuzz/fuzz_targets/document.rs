//! Fuzzes the whole GraphQL request path in process: the limits, the parser, validation and
//! the resolvers over a small demo database, as an anonymous caller and as a venue owner.
//!
//! An input is a document, optionally followed by a NUL byte and a JSON object of
//! variables. A crash, a hang (libFuzzer's `-timeout`) or an error without
//! `extensions.code` is a finding.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use prima_graphql::{Api, Deps, Limits, build_schema, request_data};

struct World {
    runtime: tokio::runtime::Runtime,
    schema: Api,
    deps: Deps,
    owner: prima_service::access::Actor,
    // Keeps the in-memory database alive.
    _db: prima_service::testing::TestDb,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let (db, deps, owner) = runtime.block_on(async {
            let db = prima_service::testing::TestDb::new().await;
            let options = prima_service::seed::SeedOptions {
                bookings: 200,
                now: prima_service::time::now(),
            };
            prima_service::seed::seed(&db.db.conn, &options)
                .await
                .expect("seeding");
            let tokens = prima_service::auth::Tokens::new(
                prima_service::auth::TokenSecret::random(),
                chrono::Duration::hours(1),
            );
            let limiter = prima_service::throttle::Store::in_process(Default::default());
            let login = std::sync::Arc::new(prima_service::auth::LoginGuard::new(
                limiter.clone(),
                prima_service::auth::Hasher::new(prima_service::auth::HashLimits::for_machine()),
                prima_service::auth::LoginPolicy::default(),
            ));
            let deps = Deps {
                db: db.db.clone(),
                tokens,
                realtime: None,
                limiter,
                login,
            };
            use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
            let owner_id = prima_entity::users::Entity::find()
                .filter(prima_entity::users::Column::Email.eq("owner@prima.demo"))
                .one(&db.db.conn)
                .await
                .expect("reading users")
                .expect("the demo owner")
                .id;
            let owner = prima_service::auth::actor_for(&db.db.conn, owner_id)
                .await
                .expect("the owner as an actor");
            (db, deps, owner)
        });
        let schema = build_schema(Some(deps.clone()), &Limits::default());
        World {
            runtime,
            schema,
            deps,
            owner,
            _db: db,
        }
    })
}

/// Where every request comes from, as the server's HTTP layer records it.
fn client() -> prima_service::bookings::create::ClientInfo {
    prima_service::bookings::create::ClientInfo {
        ip_address: Some("127.0.0.1".into()),
        user_agent: Some("prima-fuzz".into()),
        referrer: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let world = world();
    let (document, variables) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let Ok(document) = std::str::from_utf8(document) else {
        return;
    };
    let variables = variables
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(bytes).ok())
        .map(async_graphql::Variables::from_json)
        .unwrap_or_default();
    for caller in [None, Some(world.owner.clone())] {
        let (caller, loader) = request_data(&world.deps, Ok(caller));
        let rate_key = prima_graphql::limits::rate_key(caller.0.as_deref().ok(), &client());
        let mut request = async_graphql::Request::new(document)
            .variables(variables.clone())
            .data(caller)
            .data(client());
        if let Some(loader) = loader {
            request = request.data(loader);
        }
        let response = world
            .runtime
            .block_on(world.schema.execute(request, &rate_key));
        for error in &response.errors {
            // Parse and validation errors get their code from the server's HTTP layer;
            // everything a resolver or a limit raises carries one already, and never
            // INTERNAL.
            if let Some(code) = error.extensions.as_ref().and_then(|e| e.get("code")) {
                assert_ne!(
                    code,
                    &async_graphql::Value::from("INTERNAL"),
                    "{document}: {error:?}"
                );
            }
        }
        drop(response);
    }
});
