//! Partner API keys: shown once, stored hashed, acting only within their role, and
//! stopping at revocation or expiry.
use crate::helpers::{DEMO_PASSWORD, TestApp};
use palisade::clock::Clock;
use serde_json::json;

const CUSTOMERS: &str = "{ customers(first: 5) { edges { node { id name email } } } }";
const IDS: &str = "{ customers(first: 5) { edges { node { id } } } }";

#[tokio::test]
async fn a_key_is_shown_once_stored_hashed_and_acts_with_its_role() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let role = app.partner_role(&owner).await;
    let (key_id, secret) = app.create_key(&owner, "CRM sync", &role).await;
    assert!(secret.starts_with("pk_"), "{secret}");

    // The database holds the hash and the public prefix, never the key.
    let rows = app.sql_values("SELECT prefix, secret_hash FROM api_keys", vec![]).await;
    let (prefix, hash) = (rows[0].try_get_by_index::<String>(0).unwrap(), rows[0].try_get_by_index::<String>(1).unwrap());
    assert!(secret.starts_with(&format!("pk_{prefix}_")));
    assert_ne!(hash, secret);
    let dump = app.sql_values("SELECT * FROM api_keys", vec![]).await;
    assert!(!format!("{dump:?}").contains(&secret[prefix.len() + 4..]), "the secret is stored");
    // ...and the list never shows it again.
    let listed = app.gql("{ apiKeys { id name prefix status role { name } lastUsedAt } }", json!({}), Some(&owner)).await;
    assert!(!listed.body.to_string().contains(&secret));
    assert_eq!(listed.ok()["apiKeys"][0]["prefix"], prefix.as_str());
    assert_eq!(listed.ok()["apiKeys"][0]["role"]["name"], "Partner");
    assert_eq!(listed.ok()["apiKeys"][0]["status"], "ACTIVE");
    assert!(listed.ok()["apiKeys"][0]["lastUsedAt"].is_null());

    // The key reads what its role reads, with its field rules (emails masked).
    let r = app.gql(CUSTOMERS, json!({}), Some(&secret)).await;
    let edges = r.ok()["customers"]["edges"].as_array().unwrap().clone();
    assert!(!edges.is_empty());
    assert!(edges.iter().all(|e| e["node"]["email"].as_str().is_none_or(|m| m.starts_with("•••@"))), "{edges:?}");
    let me =
        app.gql("{ me { kind user { id } apiKey { id name } workspace { slug } access { permissions } } }", json!({}), Some(&secret)).await;
    assert_eq!(me.ok()["me"]["kind"], "API_KEY");
    assert_eq!(me.ok()["me"]["apiKey"]["id"], key_id.as_str());
    assert!(me.ok()["me"]["user"].is_null());
    assert_eq!(me.ok()["me"]["access"]["permissions"], json!(["CUSTOMERS_READ", "AUDIT_READ"]));
    // Its use is recorded.
    let listed = app.gql("{ apiKeys { lastUsedAt lastUsedIp } }", json!({}), Some(&owner)).await;
    assert!(listed.ok()["apiKeys"][0]["lastUsedAt"].is_string());
    assert_eq!(listed.ok()["apiKeys"][0]["lastUsedIp"], "127.0.0.1");

    // Refused, as data: (what, operation) -> code. A key never does people's things.
    let cases = [
        ("a permission its role lacks", "{ products(first: 1) { edges { node { id } } } }", "FORBIDDEN"),
        ("a write its role lacks", "mutation { createCustomer(input: { name: \"X\" }) { id } }", "FORBIDDEN"),
        ("its own sessions", "{ mySessions { id } }", "FORBIDDEN"),
        ("a password change", "mutation { changePassword(currentPassword: \"x\", newPassword: \"y\") }", "FORBIDDEN"),
        ("two-factor", "{ myTwoFactor { totpEnabled } }", "FORBIDDEN"),
        ("security settings", "{ securitySettings { ipAllowlist } }", "FORBIDDEN"),
        ("signing out", "mutation { logout }", "FORBIDDEN"),
    ];
    for (what, op, code) in cases {
        let r = app.gql(op, json!({}), Some(&secret)).await;
        assert_eq!(r.code(), Some(code), "{what}: {}", r.body);
    }
    // Even with the permission, a key cannot create keys or change security settings:
    // those need a person's step-up.
    let admin_role = app
        .create_role(
            &owner,
            json!({ "name": "Automation", "rank": 40, "permissions": ["APIKEYS_WRITE", "SETTINGS_READ", "SETTINGS_WRITE"],
                    "restrictions": { "dataExport": false, "bulkOperations": false, "apiAccess": true, "maxRecordsPerRequest": 10 } }),
        )
        .await;
    let (_, admin_key) = app.create_key(&owner, "automation", &admin_role).await;
    for op in [
        format!("mutation {{ createApiKey(input: {{ name: \"again\", roleId: \"{role}\" }}) {{ secret }} }}"),
        "mutation { updateSupportAccess(staff: false, owners: false) { staff } }".to_owned(),
    ] {
        let r = app.gql(&op, json!({}), Some(&admin_key)).await;
        assert_eq!(r.code(), Some("FORBIDDEN"), "{op}: {}", r.body);
        assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("API keys"), "{}", r.body);
    }
    let r = app.gql("{ securitySettings { ipAllowlist } }", json!({}), Some(&admin_key)).await;
    r.ok();

    // What a key does is attributed to the key.
    let rows = app
        .sql_values(
            "SELECT actor_type, actor_id FROM audit_entries WHERE actor_type = 'api_key' AND outcome = 'denied' ORDER BY id",
            vec![],
        )
        .await;
    assert!(rows.iter().any(|r| r.try_get_by_index::<Option<uuid::Uuid>>(1).unwrap().map(|u| u.to_string()) == Some(key_id.clone())));
}

#[tokio::test]
async fn creating_a_key_is_checked_like_assigning_its_role() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let manager = app.login("demo", "manager").await;
    let q = "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }";
    // A role without API access cannot back a key.
    let no_api = app
        .create_role(&owner, json!({ "name": "Inside", "rank": 20, "permissions": ["CUSTOMERS_READ"], "scopes": [{ "module": "CUSTOMERS", "scope": "ALL" }] }))
        .await;
    let r = app.gql(q, json!({ "i": { "name": "k", "roleId": no_api } }), Some(&owner)).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    // The manager cannot mint a key holding what they do not hold (billing), even with
    // apikeys.write through a role of their own.
    let keyholder = app
        .create_role(
            &owner,
            json!({ "name": "Key admin", "rank": 10, "permissions": ["APIKEYS_WRITE"],
                    "restrictions": { "dataExport": false, "bulkOperations": false, "apiAccess": true, "maxRecordsPerRequest": 10 } }),
        )
        .await;
    app.assign_role(&owner, &keyholder, &app.user_id("demo", "manager").await).await;
    let billing = app
        .create_role(
            &owner,
            json!({ "name": "Billing bot", "rank": 20, "permissions": ["BILLING_READ"],
                    "restrictions": { "dataExport": false, "bulkOperations": false, "apiAccess": true, "maxRecordsPerRequest": 10 } }),
        )
        .await;
    // Assignments change the next request's grants; the manager's session stays.
    let _ = &manager;
    let keys_before = app.count("SELECT COUNT(*) FROM api_keys", vec![]).await;
    let r = app.gql(q, json!({ "i": { "name": "k", "roleId": billing } }), Some(&manager)).await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "{}", r.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM api_keys", vec![]).await, keys_before);
    // Without apikeys.write at all: refused by the policy.
    let staff = app.login("demo", "staff").await;
    let r = app.gql(q, json!({ "i": { "name": "k", "roleId": billing } }), Some(&staff)).await;
    assert_eq!(r.code(), Some("FORBIDDEN"));
    // A key needs a recent step-up.
    app.clock.advance(chrono::Duration::minutes(11));
    let owner_stale = owner;
    let r = app.gql(q, json!({ "i": { "name": "k", "roleId": keyholder } }), Some(&owner_stale)).await;
    assert_eq!(r.code(), Some("STEP_UP_REQUIRED"), "{}", r.body);
    let r = app
        .gql(
            "mutation($p: String) { reauthenticate(password: $p) { stepUpValidUntil } }",
            json!({ "p": DEMO_PASSWORD }),
            Some(&owner_stale),
        )
        .await;
    r.ok();
    let r = app.gql(q, json!({ "i": { "name": "k", "roleId": keyholder, "expiresAt": "2020-01-01T00:00:00Z" } }), Some(&owner_stale)).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "an expiry in the past");
}

#[tokio::test]
async fn a_revoked_or_expired_key_stops_at_once_and_records_go_to_its_creator() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let role = app
        .create_role(
            &owner,
            json!({ "name": "Writer bot", "rank": 30, "permissions": ["CUSTOMERS_READ", "CUSTOMERS_WRITE"],
                    "scopes": [{ "module": "CUSTOMERS", "scope": "ALL" }],
                    "restrictions": { "dataExport": false, "bulkOperations": false, "apiAccess": true, "maxRecordsPerRequest": 10 } }),
        )
        .await;
    let (key_id, secret) = app.create_key(&owner, "writer", &role).await;
    let r = app.gql("mutation { createCustomer(input: { name: \"Made by a key\" }) { id ownerId } }", json!({}), Some(&secret)).await;
    assert_eq!(r.ok()["createCustomer"]["ownerId"], app.user_id("demo", "owner").await.as_str(), "a key owns nothing: its creator does");
    let created = app.entries("customer.created").await;
    let last = created.last().unwrap();
    assert_eq!(last.try_get_by_index::<String>(0).unwrap(), "api_key");
    assert_eq!(last.try_get_by_index::<Option<uuid::Uuid>>(1).unwrap().unwrap().to_string(), key_id);

    // Another instance sees the revocation as well: it is read from the database.
    let other = app.another_instance().await;
    other.gql(IDS, json!({}), Some(&secret)).await.ok();
    let r = app.gql("mutation($id: ID!) { revokeApiKey(id: $id) { status revokedAt } }", json!({ "id": key_id }), Some(&owner)).await;
    assert_eq!(r.ok()["revokeApiKey"]["status"], "REVOKED");
    for instance in [&app, &other] {
        let r = instance.gql(IDS, json!({}), Some(&secret)).await;
        assert!(r.data()["customers"].is_null());
        assert_eq!(r.code(), Some("UNAUTHENTICATED"), "{}", r.body);
    }
    let r = app.gql("mutation($id: ID!) { revokeApiKey(id: $id) { status } }", json!({ "id": key_id }), Some(&owner)).await;
    assert_eq!(r.code(), Some("CONFLICT"));
    // The key's own history, and its role's.
    let r = app.gql("{ apiKeys { name history { action } } roles { name history { action } } }", json!({}), Some(&owner)).await;
    let writer = r.ok()["apiKeys"].as_array().unwrap().iter().find(|k| k["name"] == "writer").unwrap().clone();
    assert_eq!(writer["history"], json!([{ "action": "apikey.revoked" }, { "action": "apikey.created" }]));
    let bot = r.ok()["roles"].as_array().unwrap().iter().find(|k| k["name"] == "Writer bot").unwrap().clone();
    assert_eq!(bot["history"], json!([{ "action": "role.created" }]));
    assert_eq!(app.entries("apikey.revoked").await.len(), 1);

    // An expiring key works until its time, then not.
    let r = app
        .gql(
            "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret apiKey { expiresAt } } }",
            json!({ "i": { "name": "short", "roleId": role, "expiresAt": (app.clock.now() + chrono::Duration::hours(1)).to_rfc3339() } }),
            Some(&owner),
        )
        .await;
    let short = r.ok()["createApiKey"]["secret"].as_str().unwrap().to_owned();
    app.gql(IDS, json!({}), Some(&short)).await.ok();
    app.clock.advance(chrono::Duration::hours(1));
    assert_eq!(app.gql(IDS, json!({}), Some(&short)).await.code(), Some("UNAUTHENTICATED"));
    let listed = app.gql("{ apiKeys { name status } }", json!({}), Some(&app.login("demo", "owner").await)).await;
    let statuses: Vec<_> = listed.ok()["apiKeys"].as_array().unwrap().iter().map(|k| (k["name"].clone(), k["status"].clone())).collect();
    assert!(
        statuses.contains(&(json!("short"), json!("EXPIRED"))) && statuses.contains(&(json!("writer"), json!("REVOKED"))),
        "{statuses:?}"
    );
    // A forged key (right prefix, wrong secret) is just invalid.
    let forged = format!("{}AAAA", &short[..short.len() - 4]);
    assert_eq!(app.gql(IDS, json!({}), Some(&forged)).await.code(), Some("UNAUTHENTICATED"));
}
