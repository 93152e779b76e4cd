//! No sensitive value reaches a principal without access: one big query over every
//! module, and the raw JSON is searched for each protected value.

use crate::helpers::TestApp;
use palisade::auth::BuiltinRole;
use palisade::authz::builtin::specs;
use palisade::authz::catalog::{FieldAccess, SensitiveField as F};
use serde_json::{Value, json};

const EVERYTHING: &str = "{
  customers(first: 50) { edges { node { id email phone taxId notes creditLimit history { changes } } } }
  products(first: 50) { edges { node { costPrice supplier history { changes } } } }
  orders(first: 50) { edges { node { internalNotes customer { email taxId } lines { product { costPrice supplier } } history { changes } } } }
  tickets(first: 50) { edges { node { internalNotes history { changes } } } }
  payments(first: 50) { edges { node { cardLast4 iban payerEmail history { changes } } } }
  invoices(first: 50) { edges { node { bankDetails history { changes } } } }
  quotes(first: 50) { edges { node { title } } }
  jobs(first: 50) { edges { node { notes log { changes } } } }
  users(first: 50) { edges { node { username email phone lastLoginIp } } }
}";

/// Every protected value in the demo workspace, read with full access from the DB.
async fn secrets(app: &TestApp) -> Vec<(F, String)> {
    let mut out = Vec::new();
    let q = |sql: &'static str, f: F| (sql, f);
    for (sql, field) in [
        q("SELECT email FROM customers", F::CustomerEmail),
        q("SELECT phone FROM customers", F::CustomerPhone),
        q("SELECT tax_id FROM customers", F::CustomerTaxId),
        q("SELECT notes FROM customers", F::CustomerNotes),
        q("SELECT supplier FROM products", F::ProductSupplier),
        q("SELECT internal_notes FROM orders", F::OrderInternalNotes),
        q("SELECT internal_notes FROM tickets", F::TicketInternalNotes),
        q("SELECT iban FROM payments", F::PaymentIban),
        q("SELECT payer_email FROM payments", F::PaymentPayerEmail),
        q("SELECT bank_details FROM invoices", F::InvoiceBankDetails),
        q("SELECT phone FROM users WHERE phone IS NOT NULL", F::UserPhone),
    ] {
        for row in app.sql_values(sql, vec![]).await {
            if let Ok(Some(v)) = row.try_get_by_index::<Option<String>>(0) {
                out.push((field, v));
            }
        }
    }
    out
}

#[tokio::test]
async fn no_protected_value_reaches_a_role_without_access() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    // Give a user a phone and a login IP so those fields have values to leak.
    let sam = app.sql_values("SELECT id FROM users WHERE username_key = 'sam'", vec![]).await[0]
        .try_get_by_index::<uuid::Uuid>(0)
        .unwrap()
        .to_string();
    app.gql("mutation($id: ID!) { updateUser(id: $id, input: { phone: \"+44 7700 900123\" }) { id } }", json!({ "id": sam }), Some(&owner))
        .await
        .ok();
    let all = secrets(&app).await;
    assert!(all.len() > 40, "only {} values to look for", all.len());
    for (role, who) in [(BuiltinRole::Guest, "guest"), (BuiltinRole::Staff, "staff"), (BuiltinRole::Manager, "manager")] {
        let spec = specs().into_iter().find(|s| s.builtin == role).unwrap();
        let token = app.login("demo", who).await;
        let r = app.gql(EVERYTHING, json!({}), Some(&token)).await;
        let audit = app.gql("{ auditLog(first: 100) { edges { node { changes } } } }", json!({}), Some(&token)).await;
        let raw = format!("{}{}", r.body, audit.body);
        let mut checked = 0;
        for (field, value) in &all {
            if spec.fields.get(field).copied().unwrap_or_default() < FieldAccess::Read && value.len() >= 6 {
                assert!(!raw.contains(value.as_str()), "{who} sees {} = {value}", field.key());
                checked += 1;
            }
        }
        assert!(checked > 10, "{who}: only {checked} values checked");
        // One audit entry for the request names every field that was withheld.
        let rows = app
            .sql_values(
                "SELECT changes, outcome FROM audit_entries WHERE action = 'access.fields_withheld' AND request_id = ?",
                vec![r.request_id().into()],
            )
            .await;
        let any_none = F::ALL.iter().any(|f| spec.fields.get(f).copied().unwrap_or_default() == FieldAccess::None);
        assert_eq!(rows.len(), usize::from(any_none), "{who}");
        if !any_none {
            continue;
        }
        let fields = rows[0].try_get_by_index::<Option<Value>>(0).unwrap().unwrap()["fields"]["after"].clone();
        let withheld: Vec<&str> = fields.as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
        for (field, level) in &spec.fields {
            if *level == FieldAccess::None {
                continue;
            }
            assert!(!withheld.contains(&field.key()), "{who}: {} was readable", field.key());
        }
        if who == "guest" {
            assert!(withheld.contains(&"customer.email") && withheld.contains(&"order.internalNotes"), "{withheld:?}");
        }
        // The answer keeps its shape: withheld values are nulls with FIELD_FORBIDDEN.
        let errors = r.body["errors"].as_array().cloned().unwrap_or_default();
        assert!(
            errors.iter().all(|e| matches!(e["extensions"]["code"].as_str(), Some("FIELD_FORBIDDEN" | "FORBIDDEN"))),
            "{who}: {}",
            Value::Array(errors)
        );
    }
}
