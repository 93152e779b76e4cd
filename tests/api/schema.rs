use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

#[test]
fn schema_graphql_matches_the_server() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    let current = palisade::graphql::sdl();
    assert!(committed == current, "schema.graphql is out of date: run `cargo run -- export-schema > schema.graphql` and commit the result");
}

/// Default deny is only safe if nothing is forgotten: every root field must have an
/// entry in the policy table (the gate refuses fields that do not).
#[test]
fn every_root_field_has_an_access_policy() {
    let doc = async_graphql::parser::parse_schema(palisade::graphql::sdl()).unwrap();
    let mut checked = 0;
    for def in doc.definitions {
        let TypeSystemDefinition::Type(t) = def else { continue };
        let name = t.node.name.node.to_string();
        if !matches!(name.as_str(), "Query" | "Mutation" | "Subscription") {
            continue;
        }
        let TypeKind::Object(obj) = &t.node.kind else { continue };
        for f in &obj.fields {
            let field = f.node.name.node.as_str();
            assert!(palisade::graphql::root_access::policy(&name, field).is_some(), "{name}.{field} has no access policy");
            checked += 1;
        }
    }
    assert!(checked >= 8, "walked only {checked} root fields");
}

#[test]
fn an_unlisted_root_field_is_denied() {
    assert!(palisade::graphql::root_access::policy("Mutation", "dropEverything").is_none());
    assert!(palisade::graphql::root_access::policy("Query", "allSecrets").is_none());
}
