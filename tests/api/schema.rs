//! `schema.graphql` is the SDL the server serves (`prima export-schema` prints the same).

#[test]
fn schema_graphql_matches_the_schema_the_code_builds() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let built = prima_graphql::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &built).expect("writing schema.graphql");
        return;
    }
    assert!(
        committed == built,
        "schema.graphql is out of date: run `UPDATE_SCHEMA=1 cargo test -p prima-tests schema` \
         (or `cargo run --bin prima -- export-schema > schema.graphql`) and commit it"
    );
}

#[tokio::test]
async fn every_type_field_argument_and_enum_value_has_a_description() {
    let schema = prima_graphql::build_schema(None, &prima_graphql::Limits::default());
    let response = schema
        .execute(
            async_graphql::Request::new(
                "{ __schema { types { name kind description
                fields { name description args { name description } }
                inputFields { name description }
                enumValues { name description } } } }",
            ),
            "cost:anonymous",
        )
        .await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let data = response.data.into_json().unwrap();
    let mut missing = Vec::new();
    let empty = |v: &serde_json::Value| v.as_str().is_none_or(|s| s.trim().is_empty());
    for ty in data["__schema"]["types"].as_array().unwrap() {
        let name = ty["name"].as_str().unwrap();
        if name.starts_with("__") || ty["kind"] == "SCALAR" {
            continue;
        }
        // Relay's generated wrappers (`XConnection`, `XEdge`) take no type description in
        // async-graphql; their fields are described, and the node type is.
        let relay_wrapper = name.ends_with("Connection") || name.ends_with("Edge");
        if empty(&ty["description"]) && !relay_wrapper {
            missing.push(name.to_owned());
        }
        for field in ty["fields"].as_array().into_iter().flatten() {
            if empty(&field["description"]) {
                missing.push(format!("{name}.{}", field["name"]));
            }
            for arg in field["args"].as_array().into_iter().flatten() {
                if empty(&arg["description"]) {
                    missing.push(format!("{name}.{}({})", field["name"], arg["name"]));
                }
            }
        }
        for list in ["inputFields", "enumValues"] {
            for item in ty[list].as_array().into_iter().flatten() {
                if empty(&item["description"]) {
                    missing.push(format!("{name}.{}", item["name"]));
                }
            }
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:#?}");
}
