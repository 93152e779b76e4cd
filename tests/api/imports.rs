//! Customer imports: all or nothing, every bad row reported with its line and field, the
//! same validation and field rules as `createCustomer`, the restrictions, and the log.
use crate::helpers::TestApp;
use serde_json::json;

const IMPORT: &str = "mutation($f: ExportFormat!, $c: String!, $d: Boolean) { importCustomers(format: $f, content: $c, dryRun: $d) { dryRun rows created problems { line field message } } }";

async fn import(app: &TestApp, token: &str, format: &str, content: &str, dry_run: bool) -> crate::helpers::Reply {
    app.gql(IMPORT, json!({ "f": format, "c": content, "d": dry_run }), Some(token)).await
}

async fn customers(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM customers", vec![]).await
}

async fn entries(app: &TestApp, action: &str) -> i64 {
    app.count("SELECT COUNT(*) FROM audit_entries WHERE action = ? AND outcome = 'success'", vec![action.into()]).await
}

#[tokio::test]
async fn an_import_creates_every_row_or_none_and_names_each_bad_one() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let before = customers(&app).await;

    // A quoted cell may span lines: the rows after it keep their real line numbers.
    let bad = "name,status,email,creditLimit,notes\n\
               Ada Ltd,active,ada@example.com,2500.00,\n\
               Bad Mail Ltd,lead,not-an-email,,\n\
               Multi Ltd,lead,,,\"first line\nsecond line\"\n\
               ,active,,,\n\
               Big Ltd,gold,,lots,\n";
    let r = import(&app, &owner, "CSV", bad, false).await;
    let report = r.ok()["importCustomers"].clone();
    assert_eq!(report["rows"], 5);
    assert_eq!(report["created"], 0);
    let problems: Vec<(i64, String)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["line"].as_i64().unwrap(), p["field"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(problems, [(3, "email".to_owned()), (6, "name".to_owned()), (7, "status".to_owned())], "{report}");
    assert_eq!(customers(&app).await, before, "a file with a bad row creates nothing");

    // The same file, fixed, as a dry run: checked, nothing created.
    let good = "name,status,email,creditLimit,notes\n\
                Ada Ltd,active,ada@example.com,2500.00,\n\
                Multi Ltd,LEAD,,,\"first line\nsecond line\"\n\
                Cyd Ltd,,,,\n";
    let r = import(&app, &owner, "CSV", good, true).await;
    assert_eq!(r.ok()["importCustomers"], json!({ "dryRun": true, "rows": 3, "created": 0, "problems": [] }));
    assert_eq!(customers(&app).await, before);

    let created_before = entries(&app, "customer.created").await;
    let r = import(&app, &owner, "CSV", good, false).await;
    assert_eq!(r.ok()["importCustomers"]["created"], 3, "{}", r.body);
    assert_eq!(customers(&app).await, before + 3);
    assert_eq!(entries(&app, "customer.created").await, created_before + 3, "one entry per customer");
    assert_eq!(entries(&app, "customers.imported").await, 3, "and one per import, dry runs and refusals included");
    let owner_id = app.user_id("demo", "owner").await;
    let r = app
        .gql(
            "{ customers(first: 5, filter: { search: \"Multi Ltd\" }) { edges { node { name status notes ownerId } } } }",
            json!({}),
            Some(&owner),
        )
        .await;
    assert_eq!(
        r.ok()["customers"]["edges"][0]["node"],
        json!({ "name": "Multi Ltd", "status": "LEAD", "notes": "first line\nsecond line", "ownerId": owner_id })
    );

    // JSON: element numbers stand for lines.
    let rows = json!([{ "name": "Json One", "creditLimit": 100 }, { "name": "Json Two", "phone": "+44 20 7946 0000" }, { "name": "", "email": "x@y.z" }]);
    let r = import(&app, &owner, "JSON", &rows.to_string(), false).await;
    let report = r.ok()["importCustomers"].clone();
    assert_eq!(report["created"], 0);
    assert_eq!(
        report["problems"].as_array().unwrap().iter().map(|p| (p["line"].clone(), p["field"].clone())).collect::<Vec<_>>(),
        [(json!(3), json!("name"))]
    );
    let rows = json!([{ "name": "Json One", "creditLimit": 100 }, { "name": "Json Two", "phone": "+44 20 7946 0000" }]);
    assert_eq!(import(&app, &owner, "JSON", &rows.to_string(), false).await.ok()["importCustomers"]["created"], 2);

    // Lines may end in CRLF; other control characters stay refused, in the file and in
    // every cell.
    assert_eq!(import(&app, &owner, "CSV", "name,status\r\nCrlf Ltd,lead\r\n", false).await.ok()["importCustomers"]["created"], 1);
    assert_eq!(import(&app, &owner, "CSV", "name\nBell\u{7} Ltd\n", false).await.code(), Some("BAD_USER_INPUT"));
    let r = import(&app, &owner, "CSV", "name,phone\nTab Ltd,\"+44\t20\"\n", false).await;
    assert_eq!(r.ok()["importCustomers"]["problems"][0]["field"], "phone", "{}", r.body);

    // Columns that are not a customer's own fields are refused, naming them.
    let r = import(&app, &owner, "CSV", "id,name\n0190c0de-0000-7000-8000-000000000000,Sneaky Ltd\n", false).await;
    assert_eq!(r.ok()["importCustomers"]["problems"][0]["field"], "id");
    for broken in ["", "name\n", "name,email\n\"unterminated,x\n"] {
        let r = import(&app, &owner, "CSV", broken, false).await;
        assert!(matches!(r.code(), Some("BAD_USER_INPUT")) || r.ok()["importCustomers"]["created"] == 0, "{broken:?}: {}", r.body);
    }
    let r = import(&app, &owner, "JSON", "{\"name\": \"not an array\"}", false).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
}

#[tokio::test]
async fn imports_follow_permissions_field_rules_and_restrictions() {
    let app = TestApp::spawn().await;
    let before = customers(&app).await;
    let file = "name,taxId\nTax Ltd,GB123456789\n";
    // Staff may not import at all; a Manager may import but not write tax ids.
    let staff = app.login("demo", "staff").await;
    assert_eq!(import(&app, &staff, "CSV", file, false).await.code(), Some("FORBIDDEN"));
    let manager = app.login("demo", "manager").await;
    let r = import(&app, &manager, "CSV", file, false).await;
    assert_eq!(r.code(), Some("FIELD_FORBIDDEN"), "{}", r.body);
    assert_eq!(import(&app, &manager, "CSV", "name\nPlain Ltd\n", false).await.ok()["importCustomers"]["created"], 1);

    // Without bulkOperations, or over maxRecordsPerRequest: refused.
    let owner = app.login("demo", "owner").await;
    let role = app
        .create_role(
            &owner,
            json!({ "name": "Importer", "rank": 30, "permissions": ["CUSTOMERS_READ", "CUSTOMERS_WRITE", "CUSTOMERS_IMPORT"],
                "scopes": [{ "module": "CUSTOMERS", "scope": "ALL" }],
                "restrictions": { "dataExport": false, "bulkOperations": true, "apiAccess": false, "maxRecordsPerRequest": 2 } }),
        )
        .await;
    let guest_id = app.user_id("demo", "guest").await;
    app.assign_role(&owner, &role, &guest_id).await;
    let guest = app.login("demo", "guest").await;
    let three = "name\nA Ltd\nB Ltd\nC Ltd\n";
    let r = import(&app, &guest, "CSV", three, false).await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "{}", r.body);
    assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("at most 2"), "{}", r.body);
    assert_eq!(import(&app, &guest, "CSV", "name\nA Ltd\nB Ltd\n", false).await.ok()["importCustomers"]["created"], 2);
    assert_eq!(customers(&app).await, before + 3);
}
