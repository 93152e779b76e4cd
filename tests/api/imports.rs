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

const UPLOAD: &str = "mutation($f: ExportFormat!, $file: Upload, $d: Boolean) { importCustomers(format: $f, file: $file, dryRun: $d) { dryRun rows created problemCount problems { line field message } } }";

/// A GraphQL multipart request (operations, map, then `files`, each named by its index).
fn multipart(app: &TestApp, token: Option<&str>, operations: serde_json::Value, map: &str, files: &[&[u8]]) -> reqwest::RequestBuilder {
    let boundary = "palisade-test-boundary-7c1e";
    let mut body = Vec::new();
    let mut part = |head: String, content: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\n{head}\r\n\r\n").as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    };
    part("Content-Disposition: form-data; name=\"operations\"".into(), operations.to_string().as_bytes());
    part("Content-Disposition: form-data; name=\"map\"".into(), map.as_bytes());
    for (i, file) in files.iter().enumerate() {
        part(format!("Content-Disposition: form-data; name=\"{i}\"; filename=\"customers.csv\"\r\nContent-Type: text/csv"), file);
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let mut req = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req
}

async fn upload(app: &TestApp, token: &str, file: &str, dry_run: bool) -> crate::helpers::Reply {
    let operations = json!({ "query": UPLOAD, "variables": { "f": "CSV", "file": null, "d": dry_run } });
    app.raw(multipart(app, Some(token), operations, r#"{"0": ["variables.file"]}"#, &[file.as_bytes()]).header("x-palisade-upload", "1"))
        .await
}

fn csv(rows: usize, bad_line: Option<usize>) -> String {
    let mut out = String::from("name,status,email\n");
    for i in 0..rows {
        // Line numbers count the header: row i is on line i + 2.
        let email = if bad_line == Some(i + 2) { "not-an-email".to_owned() } else { format!("u{i}@example.com") };
        out.push_str(&format!("Upload {i} Ltd,lead,{email}\n"));
    }
    out
}

#[tokio::test]
async fn an_uploaded_file_is_imported_in_batches_and_still_all_or_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let before = customers(&app).await;
    let created_before = entries(&app, "customer.created").await;

    // 1,200 rows are three batches: the bad row in the last one undoes the two before.
    let r = upload(&app, &owner, &csv(1_200, Some(1_201)), false).await;
    let report = r.ok()["importCustomers"].clone();
    assert_eq!(
        (report["rows"].clone(), report["created"].clone(), report["problemCount"].clone()),
        (json!(1200), json!(0), json!(1)),
        "{report}"
    );
    assert_eq!((report["problems"][0]["line"].clone(), report["problems"][0]["field"].clone()), (json!(1201), json!("email")));
    assert_eq!(customers(&app).await, before, "nothing of a file with a bad row stays");
    assert_eq!(entries(&app, "customer.created").await, created_before, "nor any entry for what was undone");

    let r = upload(&app, &owner, &csv(1_200, None), true).await;
    assert_eq!(r.ok()["importCustomers"], json!({ "dryRun": true, "rows": 1200, "created": 0, "problemCount": 0, "problems": [] }));
    assert_eq!(customers(&app).await, before);

    let r = upload(&app, &owner, &csv(1_200, None), false).await;
    assert_eq!(r.ok()["importCustomers"]["created"], 1200, "{}", r.body);
    assert_eq!(customers(&app).await, before + 1200);
    assert_eq!(entries(&app, "customer.created").await, created_before + 1200, "one entry per customer, written a batch at a time");
    let verified = app.gql("{ verifyAuditChain { ok checked } }", json!({}), Some(&owner)).await;
    assert_eq!(verified.ok()["verifyAuditChain"]["ok"], true, "the batched entries extend the chain: {}", verified.body);
    let owner_id = app.user_id("demo", "owner").await;
    let owned = app
        .count(
            "SELECT COUNT(*) FROM customers WHERE name LIKE 'Upload %' AND owner_id = ?",
            vec![uuid::Uuid::parse_str(&owner_id).unwrap().into()],
        )
        .await;
    assert_eq!(owned, 1200, "each imported customer is the importer's");

    // A file of many bad rows lists the first thousand and counts them all.
    let mut many = String::from("name,status\n");
    for i in 0..1_500 {
        many.push_str(&format!("Bad {i},gold\n"));
    }
    let report = upload(&app, &owner, &many, false).await.ok()["importCustomers"].clone();
    assert_eq!(
        (report["problemCount"].clone(), report["problems"].as_array().unwrap().len()),
        (json!(1500), 1000),
        "{}",
        report["problemCount"]
    );
    assert_eq!(report["problems"][999]["line"], 1001);

    // The file and the inline content are two ways to give the same thing: one of them.
    let both = json!({ "query": "mutation($file: Upload) { importCustomers(format: CSV, content: \"name\\nX\\n\", file: $file) { created } }", "variables": { "file": null } });
    let r = app
        .raw(multipart(&app, Some(&owner), both, r#"{"0": ["variables.file"]}"#, &[b"name\nY\n"]).header("x-palisade-upload", "1"))
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    let r = app.gql("mutation { importCustomers(format: CSV) { created } }", json!({}), Some(&owner)).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    assert_eq!(customers(&app).await, before + 1200);
}

#[tokio::test]
async fn uploads_need_the_header_a_signed_in_caller_and_a_bounded_file() {
    let app = TestApp::spawn_with(&[("PALISADE_MAX_UPLOAD_BYTES", "4096")]).await;
    let owner = app.login("demo", "owner").await;
    let before = customers(&app).await;
    let operations = || json!({ "query": UPLOAD, "variables": { "f": "CSV", "file": null, "d": false } });
    let map = r#"{"0": ["variables.file"]}"#;
    let small: &[u8] = b"name\nForm Ltd\n";

    // A cross-site HTML form can post multipart with the victim's cookie, but cannot
    // add a header.
    let r = app.raw(multipart(&app, Some(&owner), operations(), map, &[small])).await;
    assert_eq!((r.status, r.code()), (400, Some("BAD_USER_INPUT")), "{}", r.body);
    // Nobody who is not signed in gets a file stored.
    let r = app.raw(multipart(&app, None, operations(), map, &[small]).header("x-palisade-upload", "1")).await;
    assert_eq!((r.status, r.code()), (401, Some("UNAUTHENTICATED")), "{}", r.body);
    let r = app.raw(multipart(&app, Some("not-a-token"), operations(), map, &[small]).header("x-palisade-upload", "1")).await;
    assert_eq!(r.status, 401, "{}", r.body);

    // Over PALISADE_MAX_UPLOAD_BYTES: 413, and nothing runs.
    let big = csv(200, None);
    assert!(big.len() > 4096);
    let r = app.raw(multipart(&app, Some(&owner), operations(), map, &[big.as_bytes()]).header("x-palisade-upload", "1")).await;
    assert_eq!((r.status, r.code()), (413, Some("BAD_USER_INPUT")), "{}", r.body);

    // One file, in one place; anything else is refused before the operation runs.
    let r = app.raw(multipart(&app, Some(&owner), operations(), map, &[small, small]).header("x-palisade-upload", "1")).await;
    assert_eq!((r.status, r.code()), (400, Some("BAD_USER_INPUT")), "{}", r.body);
    for map in [r#"{}"#, r#"{"0": ["variables.file", "variables.f"]}"#, r#"["variables.file"]"#] {
        let r = app.raw(multipart(&app, Some(&owner), operations(), map, &[small]).header("x-palisade-upload", "1")).await;
        assert_eq!((r.status, r.code()), (400, Some("BAD_USER_INPUT")), "{map}: {}", r.body);
    }
    let r = app.raw(multipart(&app, Some(&owner), json!([operations()]), map, &[small]).header("x-palisade-upload", "1")).await;
    assert_eq!((r.status, r.code()), (400, Some("BAD_USER_INPUT")), "a batch: {}", r.body);
    // A file that is not text: refused, naming the argument it came in.
    let r = app.raw(multipart(&app, Some(&owner), operations(), map, &[b"name\n\xff\xfe Ltd\n"]).header("x-palisade-upload", "1")).await;
    assert_eq!((r.code(), r.body["errors"][0]["extensions"]["field"].as_str()), (Some("BAD_USER_INPUT"), Some("file")), "{}", r.body);
    assert_eq!(customers(&app).await, before);

    // And the same request, well formed, imports.
    let r = app.raw(multipart(&app, Some(&owner), operations(), map, &[small]).header("x-palisade-upload", "1")).await;
    assert_eq!(r.ok()["importCustomers"]["created"], 1, "{}", r.body);
    assert_eq!(customers(&app).await, before + 1);
}

#[tokio::test]
async fn an_owner_imports_more_than_an_export_holds_and_the_export_says_so() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    // The built-in Owner may import far more than a page (1,000,000 rows a request);
    // an export built inside the answer stops at 10,000.
    let r = upload(&app, &owner, &csv(10_001, None), false).await;
    assert_eq!(r.ok()["importCustomers"]["created"], 10_001, "{}", r.body);
    let export = "mutation($s: String) { exportCustomers(format: CSV, filter: { search: $s }) { rows } }";
    let r = app.gql(export, json!({ "s": null }), Some(&owner)).await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "{}", r.body);
    assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("at most 10000"), "{}", r.body);
    let r = app.gql(export, json!({ "s": "Upload 9999 Ltd" }), Some(&owner)).await;
    assert_eq!(r.ok()["exportCustomers"]["rows"], 1, "{}", r.body);

    // As a download it holds them all: the file streams.
    let r = app.gql("mutation { exportCustomers(format: CSV, download: true) { rows download { url } } }", json!({}), Some(&owner)).await;
    let ticket = r.ok()["exportCustomers"].clone();
    let all = customers(&app).await;
    assert_eq!(ticket["rows"], all - app.count("SELECT COUNT(*) FROM customers WHERE workspace_id <> (SELECT id FROM workspaces WHERE slug = 'demo') OR deleted_at IS NOT NULL", vec![]).await);
    let res =
        app.client.get(format!("{}{}", app.url, ticket["download"]["url"].as_str().unwrap())).bearer_auth(&owner).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let file = res.text().await.unwrap();
    assert_eq!(file.lines().count() as i64, ticket["rows"].as_i64().unwrap() + 1, "every row and the header");
    assert!(file.contains("Upload 0 Ltd") && file.contains("Upload 10000 Ltd"));
}
