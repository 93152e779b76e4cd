//! Impersonation: master admins only, with a reason and a time limit; marked on every
//! response, attributed to both people, kept away from the user's credentials, and
//! announced to the user.
use crate::helpers::{MASTER_EMAIL, TestApp};
use palisade::clock::Clock;
use serde_json::{Value, json};

const START: &str = "mutation($i: StartImpersonationInput!) { startImpersonation(input: $i) { token impersonation { id status expiresAt reason adminEmail } } }";

async fn start(app: &TestApp, master: &str, user: &str, reason: &str, minutes: Option<i32>) -> crate::helpers::Reply {
    let ws = app.workspace_id("demo").await;
    let user_id = app.user_id("demo", user).await;
    app.gql(START, json!({ "i": { "workspaceId": ws, "userId": user_id, "reason": reason, "minutes": minutes } }), Some(master)).await
}

async fn master_id(app: &TestApp) -> String {
    let rows = app.sql_values("SELECT id FROM master_admins", vec![]).await;
    rows[0].try_get_by_index::<uuid::Uuid>(0).unwrap().to_string()
}

const REASON: &str = "customer ticket #4711: invoices do not load";

#[tokio::test]
async fn only_master_admins_impersonate_with_a_reason_for_a_bounded_time() {
    let app = TestApp::spawn().await;
    let master = app.master_token().await;
    let staff = app.login("demo", "staff").await;
    let owner = app.login("demo", "owner").await;

    // (who, target, reason, minutes) -> refusal code, as data.
    type Case<'a> = (&'a str, &'a str, &'a str, &'a str, Option<i32>, &'a str);
    let refused: Vec<Case> = vec![
        ("a workspace user", &staff, "staff", REASON, None, "FORBIDDEN"),
        ("the workspace's Owner", &owner, "staff", REASON, None, "FORBIDDEN"),
        ("no reason", &master, "staff", "   ", None, "BAD_USER_INPUT"),
        ("a reason too short", &master, "staff", "because", None, "BAD_USER_INPUT"),
        ("longer than an hour", &master, "staff", REASON, Some(61), "BAD_USER_INPUT"),
        ("no time at all", &master, "staff", REASON, Some(0), "BAD_USER_INPUT"),
        ("an Owner, while the workspace keeps Owners closed", &master, "owner", REASON, None, "FORBIDDEN"),
        ("a user who cannot sign in", &master, "former", REASON, None, "FORBIDDEN"),
    ];
    for (case, who, target, reason, minutes, code) in refused {
        let r = start(&app, who, target, reason, minutes).await;
        assert_eq!(r.code(), Some(code), "{case}: {}", r.body);
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM impersonations", vec![]).await, 0, "nothing was started");
    // Someone else's workspace: the user is not found there.
    let acme = app.workspace_id("acme").await;
    let r = app
        .gql(START, json!({ "i": { "workspaceId": acme, "userId": app.user_id("demo", "staff").await, "reason": REASON } }), Some(&master))
        .await;
    assert_eq!(r.code(), Some("NOT_FOUND"));

    // Support finds whom to impersonate in the workspace list (no contact details).
    let r = app.gql("{ workspaces { slug users { id username role } } }", json!({}), Some(&master)).await;
    let demo = r.ok()["workspaces"].as_array().unwrap().iter().find(|w| w["slug"] == "demo").unwrap().clone();
    let listed = demo["users"].as_array().unwrap().iter().find(|u| u["username"] == "staff").unwrap().clone();
    assert_eq!(listed["id"], app.user_id("demo", "staff").await.as_str());
    assert!(!r.body.to_string().contains("@"), "no emails in the platform's user list");

    let r = start(&app, &master, "staff", REASON, None).await;
    let imp = r.ok()["startImpersonation"]["impersonation"].clone();
    assert_eq!(imp["status"], "ACTIVE");
    assert_eq!(imp["reason"], REASON);
    let expires: chrono::DateTime<chrono::Utc> = imp["expiresAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires, app.clock.now() + chrono::Duration::minutes(30), "30 minutes by default");
    assert!(r.headers.get("set-cookie").is_none(), "the admin's own cookie session is left alone");
    // One at a time.
    assert_eq!(start(&app, &master, "manager", REASON, Some(5)).await.code(), Some("CONFLICT"));

    // The workspace decides about its Owners (only an Owner may open that door).
    let manager = app.login("demo", "manager").await;
    let r = app.gql("mutation { updateSupportAccess(staff: true, owners: true) { owners } }", json!({}), Some(&manager)).await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "a manager has no settings.write: {}", r.body);
    app.gql("mutation { updateSupportAccess(staff: true, owners: true) { owners } }", json!({}), Some(&owner)).await.ok();
    let r = app.gql("mutation($id: ID) { stopImpersonation(id: $id) { status } }", json!({ "id": imp["id"] }), Some(&master)).await;
    assert_eq!(r.ok()["stopImpersonation"]["status"], "ENDED");
    start(&app, &master, "owner", REASON, Some(5)).await.ok();
    // ...and can close it for staff too.
    app.gql("mutation { updateSupportAccess(staff: false, owners: false) { owners } }", json!({}), Some(&app.login("demo", "owner").await))
        .await
        .ok();
    let other_admin = {
        palisade::service::bootstrap::create_master_admin(&app.state, "second@palisade.test", "velvet-harbor-quartz-82").await.unwrap();
        app.master_sign_in("second@palisade.test", "velvet-harbor-quartz-82").await
    };
    assert_eq!(start(&app, &other_admin, "staff", REASON, None).await.code(), Some("FORBIDDEN"), "support access turned off");
}

#[tokio::test]
async fn an_impersonation_is_marked_attributed_to_both_and_kept_from_the_users_credentials() {
    let app = TestApp::spawn().await;
    let master = app.master_token().await;
    let r = start(&app, &master, "staff", REASON, Some(20)).await;
    let token = r.ok()["startImpersonation"]["token"].as_str().unwrap().to_owned();
    let imp_id = r.ok()["startImpersonation"]["impersonation"]["id"].as_str().unwrap().to_owned();
    let (staff_id, admin_id) = (app.user_id("demo", "staff").await, master_id(&app).await);

    // Every response says who is acting as whom, until when.
    let me = app.gql("{ me { kind user { id username } } }", json!({}), Some(&token)).await;
    assert_eq!(me.ok()["me"]["user"]["username"], "staff");
    let ext = &me.body["extensions"]["impersonation"];
    assert_eq!(ext["by"], MASTER_EMAIL);
    assert_eq!(ext["byId"], admin_id.as_str());
    assert_eq!(ext["as"], "staff");
    assert_eq!(ext["id"], imp_id.as_str());
    assert!(ext["until"].is_string());
    let plain = app.gql("{ me { kind } }", json!({}), Some(&app.login("demo", "staff").await)).await;
    assert!(plain.body.get("extensions").is_none_or(|e| e.get("impersonation").is_none()), "only impersonation sessions are marked");

    // What the admin does as the user names both.
    let r = app.gql("mutation { createCustomer(input: { name: \"Made during support\" }) { id } }", json!({}), Some(&token)).await;
    let customer = r.ok()["createCustomer"]["id"].as_str().unwrap().to_owned();
    let rows = app
        .sql_values("SELECT actor_type, actor_id, impersonator_id FROM audit_entries WHERE target_id = ?", vec![customer.clone().into()])
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].try_get_by_index::<String>(0).unwrap(), "user");
    assert_eq!(rows[0].try_get_by_index::<Option<uuid::Uuid>>(1).unwrap().unwrap().to_string(), staff_id);
    assert_eq!(rows[0].try_get_by_index::<Option<uuid::Uuid>>(2).unwrap().unwrap().to_string(), admin_id);
    // The Owner can find everything done under impersonation.
    let owner = app.login("demo", "owner").await;
    let found = app
        .gql(
            "query($f: AuditLogFilter) { auditLog(first: 50, filter: $f) { edges { node { action impersonatorId actor { id } } } } }",
            json!({ "f": { "impersonatorId": admin_id } }),
            Some(&owner),
        )
        .await;
    let actions: Vec<Value> = found.ok()["auditLog"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["action"].clone()).collect();
    assert!(actions.contains(&json!("customer.created")), "{actions:?}");

    // The user's credentials, sessions and the workspace's security are out of reach.
    let refused = [
        "mutation { changePassword(currentPassword: \"demo-password-for-tests\", newPassword: \"taken-over-account-1\") }",
        "mutation { reauthenticate(password: \"demo-password-for-tests\") { stepUpValidUntil } }",
        "mutation { startTotpEnrollment(password: \"demo-password-for-tests\") { secret } }",
        "mutation { revokeOtherSessions }",
        "mutation { regenerateRecoveryCodes(password: \"demo-password-for-tests\") { codes } }",
    ];
    for op in refused {
        let r = app.gql(op, json!({}), Some(&token)).await;
        assert_eq!(r.code(), Some("FORBIDDEN"), "{op}: {}", r.body);
        assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("impersonating"), "{}", r.body);
    }
    let r = app.gql("{ mySessions { id } }", json!({}), Some(&token)).await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "where the user signs in from is theirs");
    // The user sees support in their own session list (and could end it there).
    let own = app.login("demo", "staff").await;
    let r = app.gql("{ mySessions { impersonatedBy current } }", json!({}), Some(&own)).await;
    let by: Vec<Value> = r.ok()["mySessions"].as_array().unwrap().iter().map(|s| s["impersonatedBy"].clone()).collect();
    assert!(by.contains(&json!(MASTER_EMAIL)), "{by:?}");

    // Email addresses (where sign-in codes go) cannot be redirected either: as the
    // manager, who may otherwise change staff emails.
    app.gql("mutation { stopImpersonation { status } }", json!({}), Some(&token)).await.ok();
    let r = start(&app, &master, "manager", REASON, Some(20)).await;
    let as_manager = r.ok()["startImpersonation"]["token"].as_str().unwrap().to_owned();
    let update = "mutation($id: ID!, $i: UpdateUserInput!) { updateUser(id: $id, input: $i) { id } }";
    let r = app.gql(update, json!({ "id": staff_id, "i": { "email": "mine@evil.example" } }), Some(&as_manager)).await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "{}", r.body);
    assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("impersonating"), "{}", r.body);
    let r = app.gql(update, json!({ "id": staff_id, "i": { "displayName": "Staff Member" } }), Some(&as_manager)).await;
    r.ok();
    app.gql("mutation { stopImpersonation { status } }", json!({}), Some(&as_manager)).await.ok();
    let r = start(&app, &master, "staff", REASON, Some(20)).await;
    let token = r.ok()["startImpersonation"]["token"].as_str().unwrap().to_owned();

    // The user was told, with the reason.
    let mails = app.mails();
    let notice = mails.iter().find(|m| m.subject == "Support access to your account" && m.to.starts_with("staff@")).expect("a notice");
    assert!(notice.body.contains(REASON) && notice.body.contains(MASTER_EMAIL), "{}", notice.body);

    // Listing: master admins see all, the Owner their workspace's, others nothing.
    let q = "{ impersonationSessions { id reason status adminEmail } }";
    let r = app.gql(q, json!({}), Some(&master)).await;
    assert_eq!(r.ok()["impersonationSessions"][0]["status"], "ACTIVE");
    assert_eq!(r.ok()["impersonationSessions"].as_array().unwrap().len(), 3);
    let r = app.gql(q, json!({}), Some(&owner)).await;
    assert_eq!(r.ok()["impersonationSessions"][0]["reason"], REASON);
    let acme_owner = app.login("acme", "owner").await;
    assert_eq!(app.gql(q, json!({}), Some(&acme_owner)).await.ok()["impersonationSessions"], json!([]));
    assert_eq!(app.gql(q, json!({}), Some(&app.login("demo", "manager").await)).await.code(), Some("FORBIDDEN"));

    // Stopping ends the session at once; both logs have the start and the stop.
    let r = app.gql("mutation { stopImpersonation { status endedAt } }", json!({}), Some(&token)).await;
    assert_eq!(r.ok()["stopImpersonation"]["status"], "ENDED");
    assert_eq!(app.me(&token).await.code(), Some("UNAUTHENTICATED"));
    for action in ["impersonation.started", "impersonation.stopped"] {
        let rows = app.entries(action).await;
        let places: Vec<(Option<uuid::Uuid>, String)> =
            rows.iter().map(|r| (r.try_get_by_index::<Option<uuid::Uuid>>(3).unwrap(), r.try_get_by_index::<String>(4).unwrap())).collect();
        assert_eq!(places.len(), 6, "three impersonations, each in both logs: {action}: {places:?}");
        assert!(
            places.iter().any(|(w, m)| w.is_some() && m == "support") && places.iter().any(|(w, m)| w.is_none() && m == "platform"),
            "{action}: {places:?}"
        );
        // Started by the admin; stopped from the impersonation session, so by the user
        // with the admin named beside them.
        let (kind, impersonator) =
            (rows[0].try_get_by_index::<String>(0).unwrap(), rows[0].try_get_by_index::<Option<uuid::Uuid>>(2).unwrap());
        match action {
            "impersonation.started" => assert_eq!((kind.as_str(), impersonator), ("master_admin", None)),
            _ => assert_eq!((kind.as_str(), impersonator.map(|u| u.to_string())), ("user", Some(admin_id.clone()))),
        }
    }
    let platform = app.gql("{ platformAuditLog(first: 20) { edges { node { action reason } } } }", json!({}), Some(&master)).await;
    let started: Vec<&Value> = platform.ok()["platformAuditLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["action"] == "impersonation.started")
        .collect();
    assert_eq!(started[0]["node"]["reason"], REASON);

    // Running out ends it too.
    let r = start(&app, &master, "staff", REASON, Some(5)).await;
    let short = r.ok()["startImpersonation"]["token"].as_str().unwrap().to_owned();
    app.me(&short).await.ok();
    app.clock.advance(chrono::Duration::minutes(5));
    assert_eq!(app.me(&short).await.code(), Some("UNAUTHENTICATED"));
    let r = app.gql("{ impersonationSessions { status } }", json!({}), Some(&master)).await;
    assert_eq!(r.ok()["impersonationSessions"][0]["status"], "EXPIRED");
    // ...and a suspended workspace cannot be entered.
    let ws = app.workspace_id("demo").await;
    app.gql(
        "mutation($id: ID!) { suspendWorkspace(id: $id, reason: \"security incident review\") { status } }",
        json!({ "id": ws }),
        Some(&master),
    )
    .await
    .ok();
    assert_eq!(start(&app, &master, "staff", REASON, None).await.code(), Some("FORBIDDEN"));
}
