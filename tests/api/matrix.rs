//! The access matrix, generated from the built-in roles' definitions: every role x
//! operation x record (own, in scope, out of scope, other workspace), through the API.
//! Expected outcomes come from the role specs and from the scope table below (written
//! independently of the server's SQL). Adding a module adds rows to `OPERATIONS` and a
//! record lookup, not new test code paths.

use crate::helpers::TestApp;
use palisade::auth::BuiltinRole;
use palisade::authz::builtin::specs;
use palisade::authz::catalog::{FieldAccess, Module, Permission, Scope, SensitiveField};
use serde_json::{Value, json};

/// How a record stands to the acting user (demo placements: manager and staff share
/// Sales / Sales North / group North; sam is Sales / Sales South / group South; guest is
/// Support / Helpdesk / group South; owner has no placement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Own,
    TeamMate,
    DepartmentMate,
    GroupMate,
    Outsider,
    OtherWorkspace,
}

/// The scope rules as a table: which relations each scope reaches.
fn scope_reaches(scope: Scope, r: Relation) -> bool {
    use Relation::*;
    match scope {
        Scope::None => false,
        Scope::Assigned => r == Own,
        Scope::Group => matches!(r, Own | GroupMate),
        Scope::Team => matches!(r, Own | TeamMate),
        Scope::Department => matches!(r, Own | TeamMate | DepartmentMate),
        Scope::All => r != OtherWorkspace,
    }
}

/// Whose records stand in which relation to each acting demo user.
fn records_for(actor: &str) -> Vec<(Relation, &'static str, &'static str)> {
    use Relation::*;
    let other = (OtherWorkspace, "acme", "owner");
    match actor {
        "owner" => vec![(Own, "demo", "owner"), (Outsider, "demo", "manager"), (Outsider, "demo", "guest"), other],
        "manager" => {
            vec![(Own, "demo", "manager"), (TeamMate, "demo", "staff"), (DepartmentMate, "demo", "sam"), (Outsider, "demo", "guest"), other]
        }
        "staff" => {
            vec![(Own, "demo", "staff"), (TeamMate, "demo", "manager"), (DepartmentMate, "demo", "sam"), (Outsider, "demo", "guest"), other]
        }
        "guest" => vec![(Own, "demo", "guest"), (GroupMate, "demo", "sam"), (Outsider, "demo", "staff"), other],
        _ => unreachable!(),
    }
}

struct Operation {
    name: &'static str,
    permission: Permission,
    /// Further permissions the operation needs (a module action on top of write).
    also: &'static [Permission],
    /// Sensitive fields the operation writes.
    writes: &'static [SensitiveField],
    /// The answer when every check passes (None: success; an order that was refunded
    /// cannot be cancelled).
    when_allowed: Option<&'static str>,
    query: &'static str,
    vars: fn(&str) -> Value,
}

/// The modules under test: the module, its table, and its operations.
const MODULES: &[(Module, &str, &[Operation])] = &[
    (Module::Customers, "customers", CUSTOMER_OPERATIONS),
    (Module::Products, "products", PRODUCT_OPERATIONS),
    (Module::Orders, "orders", ORDER_OPERATIONS),
    (Module::Tickets, "tickets", TICKET_OPERATIONS),
    (Module::Payments, "payments", PAYMENT_OPERATIONS),
    (Module::Quotes, "quotes", QUOTE_OPERATIONS),
    (Module::Jobs, "jobs", JOB_OPERATIONS),
    (Module::Invoices, "invoices", INVOICE_OPERATIONS),
];

const QUOTE_OPERATIONS: &[Operation] = &[
    Operation {
        name: "read",
        permission: Permission::QuotesRead,
        also: &[],
        writes: &[],
        when_allowed: None,
        query: "query($id: ID!) { quote(id: $id) { id title } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "accept",
        permission: Permission::QuotesWrite,
        also: &[],
        writes: &[],
        when_allowed: None,
        query: "mutation($id: ID!) { updateQuote(id: $id, input: { status: ACCEPTED }) { status } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "delete",
        permission: Permission::QuotesWrite,
        also: &[],
        writes: &[],
        when_allowed: None,
        query: "mutation($id: ID!) { deleteQuote(id: $id) }",
        vars: |id| json!({ "id": id }),
    },
];

const JOB_OPERATIONS: &[Operation] = &[
    Operation {
        name: "read",
        permission: Permission::JobsRead,
        also: &[],
        writes: &[],
        when_allowed: None,
        query: "query($id: ID!) { job(id: $id) { id log { action } } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "start",
        permission: Permission::JobsWrite,
        also: &[],
        writes: &[],
        when_allowed: None,
        query: "mutation($id: ID!) { updateJob(id: $id, input: { status: IN_PROGRESS }) { status } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "delete",
        permission: Permission::JobsWrite,
        also: &[],
        writes: &[],
        when_allowed: None,
        query: "mutation($id: ID!) { deleteJob(id: $id) }",
        vars: |id| json!({ "id": id }),
    },
];

const INVOICE_OPERATIONS: &[Operation] = &[
    Operation {
        name: "read",
        permission: Permission::InvoicesRead,
        also: &[],
        writes: &[],
        when_allowed: None,
        query: "query($id: ID!) { invoice(id: $id) { id number } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "mark paid",
        permission: Permission::InvoicesWrite,
        also: &[],
        writes: &[],
        when_allowed: None,
        query: "mutation($id: ID!) { updateInvoice(id: $id, input: { status: PAID }) { status } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "set bank details",
        permission: Permission::InvoicesWrite,
        also: &[],
        writes: &[SensitiveField::InvoiceBankDetails],
        when_allowed: None,
        query: "mutation($id: ID!) { updateInvoice(id: $id, input: { bankDetails: \"New Bank 1234\" }) { id } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "delete",
        permission: Permission::InvoicesWrite,
        also: &[],
        writes: &[],
        when_allowed: None,
        query: "mutation($id: ID!) { deleteInvoice(id: $id) }",
        vars: |id| json!({ "id": id }),
    },
];

/// In order: a processed payment can be reconciled, then refunded, and a refunded one
/// cannot be reconciled.
const PAYMENT_OPERATIONS: &[Operation] = &[
    Operation {
        name: "read",
        permission: Permission::PaymentsRead,
        also: &[],
        writes: &[],
        when_allowed: None,
        query: "query($id: ID!) { payment(id: $id) { id amount } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "reconcile",
        permission: Permission::PaymentsReconcile,
        also: &[],
        writes: &[],
        when_allowed: None,
        query: "mutation($id: ID!) { reconcilePayment(id: $id) { status } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "refund",
        permission: Permission::PaymentsRefund,
        also: &[],
        writes: &[],
        when_allowed: None,
        query: "mutation($id: ID!) { refundPayment(id: $id) { status } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "reconcile after refund",
        permission: Permission::PaymentsReconcile,
        also: &[],
        writes: &[],
        when_allowed: Some("CONFLICT"),
        query: "mutation($id: ID!) { reconcilePayment(id: $id) { status } }",
        vars: |id| json!({ "id": id }),
    },
];

const TICKET_OPERATIONS: &[Operation] = &[
    Operation {
        name: "read",
        permission: Permission::TicketsRead,
        also: &[],
        writes: &[],
        when_allowed: None,
        query: "query($id: ID!) { ticket(id: $id) { id subject } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "close",
        permission: Permission::TicketsWrite,
        also: &[],
        writes: &[],
        when_allowed: None,
        query: "mutation($id: ID!) { updateTicket(id: $id, input: { status: CLOSED }) { status } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "set internal notes",
        permission: Permission::TicketsWrite,
        also: &[],
        writes: &[SensitiveField::TicketInternalNotes],
        when_allowed: None,
        query: "mutation($id: ID!) { updateTicket(id: $id, input: { internalNotes: \"VIP\" }) { id } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "delete",
        permission: Permission::TicketsWrite,
        also: &[],
        writes: &[],
        when_allowed: None,
        query: "mutation($id: ID!) { deleteTicket(id: $id) }",
        vars: |id| json!({ "id": id }),
    },
];

/// In order: the seeded orders are drafts, so processing twice fulfils them, and a
/// refunded order can no longer be cancelled.
const ORDER_OPERATIONS: &[Operation] = &[
    Operation {
        name: "read",
        permission: Permission::OrdersRead,
        also: &[],
        writes: &[],
        when_allowed: None,
        query: "query($id: ID!) { order(id: $id) { id total } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "set internal notes",
        permission: Permission::OrdersWrite,
        also: &[],
        writes: &[SensitiveField::OrderInternalNotes],
        when_allowed: None,
        query: "mutation($id: ID!) { updateOrder(id: $id, input: { internalNotes: \"call first\" }) { id } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "process",
        permission: Permission::OrdersProcess,
        also: &[],
        writes: &[],
        when_allowed: None,
        query: "mutation($id: ID!) { processOrder(id: $id) { status } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "fulfil",
        permission: Permission::OrdersProcess,
        also: &[],
        writes: &[],
        when_allowed: None,
        query: "mutation($id: ID!) { processOrder(id: $id) { status } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "refund",
        permission: Permission::OrdersRefund,
        also: &[],
        writes: &[],
        when_allowed: None,
        query: "mutation($id: ID!) { refundOrder(id: $id) { status } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "cancel after refund",
        permission: Permission::OrdersCancel,
        also: &[],
        writes: &[],
        when_allowed: Some("CONFLICT"),
        query: "mutation($id: ID!) { cancelOrder(id: $id) { status } }",
        vars: |id| json!({ "id": id }),
    },
];

const PRODUCT_OPERATIONS: &[Operation] = &[
    Operation {
        name: "read",
        permission: Permission::ProductsRead,
        also: &[],
        when_allowed: None,
        writes: &[],
        query: "query($id: ID!) { product(id: $id) { id name } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "rename",
        permission: Permission::ProductsWrite,
        also: &[],
        when_allowed: None,
        writes: &[],
        query: "mutation($id: ID!) { updateProduct(id: $id, input: { name: \"Renamed\" }) { id } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "reprice",
        permission: Permission::ProductsWrite,
        also: &[Permission::ProductsPricing],
        when_allowed: None,
        writes: &[],
        query: "mutation($id: ID!) { updateProduct(id: $id, input: { price: \"99.00\" }) { id } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "set cost price",
        permission: Permission::ProductsWrite,
        also: &[Permission::ProductsPricing],
        when_allowed: None,
        writes: &[SensitiveField::ProductCostPrice],
        query: "mutation($id: ID!) { updateProduct(id: $id, input: { costPrice: \"12.00\" }) { id } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "adjust inventory",
        permission: Permission::ProductsInventory,
        also: &[],
        when_allowed: None,
        writes: &[],
        query: "mutation($id: ID!) { adjustInventory(id: $id, delta: -1) { stock } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "delete",
        permission: Permission::ProductsDelete,
        also: &[],
        when_allowed: None,
        writes: &[],
        query: "mutation($id: ID!) { deleteProduct(id: $id) }",
        vars: |id| json!({ "id": id }),
    },
];

const CUSTOMER_OPERATIONS: &[Operation] = &[
    Operation {
        name: "read",
        also: &[],
        permission: Permission::CustomersRead,
        when_allowed: None,
        writes: &[],
        query: "query($id: ID!) { customer(id: $id) { id name } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "update",
        permission: Permission::CustomersWrite,
        also: &[],
        when_allowed: None,
        writes: &[],
        query: "mutation($id: ID!) { updateCustomer(id: $id, input: { name: \"Renamed\" }) { id } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "update email",
        permission: Permission::CustomersWrite,
        also: &[],
        when_allowed: None,
        writes: &[SensitiveField::CustomerEmail],
        query: "mutation($id: ID!) { updateCustomer(id: $id, input: { email: \"new@changed.example\" }) { id } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "update tax id",
        permission: Permission::CustomersWrite,
        also: &[],
        when_allowed: None,
        writes: &[SensitiveField::CustomerTaxId],
        query: "mutation($id: ID!) { updateCustomer(id: $id, input: { taxId: \"XX999\" }) { id } }",
        vars: |id| json!({ "id": id }),
    },
    Operation {
        name: "delete",
        also: &[],
        permission: Permission::CustomersDelete,
        when_allowed: None,
        writes: &[],
        query: "mutation($id: ID!) { deleteCustomer(id: $id) }",
        vars: |id| json!({ "id": id }),
    },
];

/// The GraphQL name of a permission (CUSTOMERS_READ for customers.read).
fn permission_name(p: Permission) -> String {
    p.as_str().replace('.', "_").to_uppercase()
}

async fn record_of(app: &TestApp, table: &str, workspace: &str, owner: &str) -> String {
    let sql = format!(
        "SELECT c.id FROM {table} c JOIN users u ON c.owner_id = u.id JOIN workspaces w ON c.workspace_id = w.id \
         WHERE w.slug = ? AND u.username_key = ? AND c.deleted_at IS NULL ORDER BY c.id"
    );
    let rows = app.sql_values(&sql, vec![workspace.into(), owner.into()]).await;
    rows[0].try_get_by_index::<uuid::Uuid>(0).unwrap().to_string()
}

async fn customer_of(app: &TestApp, workspace: &str, owner: &str) -> String {
    record_of(app, "customers", workspace, owner).await
}

fn expected(
    spec_perms: &std::collections::BTreeSet<Permission>,
    spec_scope: Scope,
    fields: &std::collections::BTreeMap<SensitiveField, FieldAccess>,
    op: &Operation,
    rel: Relation,
) -> Option<&'static str> {
    if !spec_perms.contains(&op.permission) || op.also.iter().any(|p| !spec_perms.contains(p)) {
        return Some("FORBIDDEN");
    }
    if op.writes.iter().any(|f| fields.get(f).copied().unwrap_or_default() < FieldAccess::Write) {
        return Some("FIELD_FORBIDDEN");
    }
    if !scope_reaches(spec_scope, rel) {
        return Some("NOT_FOUND");
    }
    op.when_allowed
}

#[tokio::test]
async fn access_matrix() {
    let mut cells = 0;
    for (module, table, operations) in MODULES {
        for (role, actor) in
            [(BuiltinRole::Owner, "owner"), (BuiltinRole::Manager, "manager"), (BuiltinRole::Staff, "staff"), (BuiltinRole::Guest, "guest")]
        {
            let spec = specs().into_iter().find(|s| s.builtin == role).unwrap();
            let scope = spec.scopes.get(module).copied().unwrap_or_default();
            let read = module.read_permission().unwrap();
            // A fresh server per role: the operations change the records.
            let app = TestApp::spawn().await;
            let token = app.login("demo", actor).await;
            let owner_token = app.login("demo", "owner").await;
            let actor_id = {
                let rows = app
                    .sql_values(
                        "SELECT u.id FROM users u JOIN workspaces w ON u.workspace_id = w.id WHERE w.slug = 'demo' AND u.username_key = ?",
                        vec![actor.into()],
                    )
                    .await;
                rows[0].try_get_by_index::<uuid::Uuid>(0).unwrap().to_string()
            };
            for (rel, ws, owner) in records_for(actor) {
                let id = record_of(&app, table, ws, owner).await;
                // Listing finds exactly what reading finds.
                let listed = app.gql(&format!("{{ {table}(first: 50) {{ edges {{ node {{ id }} }} }} }}"), json!({}), Some(&token)).await;
                let in_list = listed.body["data"][*table]["edges"].as_array().map(|e| e.iter().any(|n| n["node"]["id"] == id.as_str()));
                let readable = spec.permissions.contains(&read) && scope_reaches(scope, rel);
                assert_eq!(in_list.unwrap_or(false), readable, "{actor} list {table} {rel:?}");
                cells += 1;
                for op in *operations {
                    // Ask for the explanation first: the operation may change the record.
                    let explained = app
                    .gql(
                        "query($u: ID!, $p: Permission!, $r: ID) { explainAccess(userId: $u, permission: $p, recordId: $r) { allowed recordInScope } }",
                        json!({ "u": actor_id, "p": permission_name(op.permission), "r": id }),
                        Some(&owner_token),
                    )
                    .await;
                    let r = app.gql(op.query, (op.vars)(&id), Some(&token)).await;
                    let want = expected(&spec.permissions, scope, &spec.fields, op, rel);
                    assert_eq!(r.code(), want, "{actor} {table} {} {rel:?}: {}", op.name, r.body);
                    // The explanation agrees with what happened (field rules aside).
                    let explained_allowed = if rel == Relation::OtherWorkspace {
                        assert_eq!(explained.code(), Some("NOT_FOUND"), "explain {actor} {} {rel:?}", op.name);
                        false
                    } else {
                        explained.ok()["explainAccess"]["allowed"].as_bool().unwrap()
                    };
                    let held_and_in_scope = spec.permissions.contains(&op.permission) && scope_reaches(scope, rel);
                    assert_eq!(explained_allowed, held_and_in_scope, "explain {actor} {} {rel:?}: {}", op.name, explained.body);
                    if want.is_none() {
                        assert!(explained_allowed, "explain denies what was allowed: {actor} {} {rel:?}", op.name);
                    }
                    cells += 1;
                }
            }
        }
    }
    assert!(cells >= 500, "only {cells} cells");
}

/// Field masking per role, on a record each role can read (its own).
#[tokio::test]
async fn customer_fields_are_shown_masked_or_withheld_per_role() {
    let app = TestApp::spawn().await;
    let q = "query($id: ID!) { customer(id: $id) { email phone taxId notes creditLimit } }";
    let fields = [
        ("email", SensitiveField::CustomerEmail),
        ("phone", SensitiveField::CustomerPhone),
        ("taxId", SensitiveField::CustomerTaxId),
        ("notes", SensitiveField::CustomerNotes),
        ("creditLimit", SensitiveField::CustomerCreditLimit),
    ];
    let owner_token = app.login("demo", "owner").await;
    for (role, actor) in
        [(BuiltinRole::Owner, "owner"), (BuiltinRole::Manager, "manager"), (BuiltinRole::Staff, "staff"), (BuiltinRole::Guest, "guest")]
    {
        let spec = specs().into_iter().find(|s| s.builtin == role).unwrap();
        let id = customer_of(&app, "demo", actor).await;
        let full = app.gql(q, json!({ "id": id }), Some(&owner_token)).await.ok()["customer"].clone();
        let token = app.login("demo", actor).await;
        let r = app.gql(q, json!({ "id": id }), Some(&token)).await;
        let errors: Vec<String> =
            r.body["errors"].as_array().into_iter().flatten().map(|e| e["extensions"]["field"].as_str().unwrap().to_owned()).collect();
        for (name, field) in fields {
            let got = &r.body["data"]["customer"][name];
            let real = full[name].as_str().unwrap();
            match spec.fields.get(&field).copied().unwrap_or_default() {
                FieldAccess::Read | FieldAccess::Write => assert_eq!(got, real, "{actor} {name}"),
                FieldAccess::Masked => {
                    let shown = got.as_str().unwrap();
                    assert!(shown.contains('•') || shown.contains('-'), "{actor} {name} not masked: {shown}");
                    assert_ne!(shown, real, "{actor} {name}");
                    assert_eq!(shown, field.mask().apply(real), "{actor} {name}");
                }
                FieldAccess::None => {
                    assert!(got.is_null(), "{actor} {name} should be null");
                    assert!(errors.contains(&field.key().to_owned()), "{actor} {name}: no FIELD_FORBIDDEN in {}", r.body);
                }
            }
        }
        // The raw answer never contains a value the role may not see in full.
        for (name, field) in fields {
            if spec.fields.get(&field).copied().unwrap_or_default() < FieldAccess::Read {
                let real = full[name].as_str().unwrap();
                assert!(!r.body.to_string().contains(real), "{actor} sees {name} in {}", r.body);
            }
        }
    }
}

#[tokio::test]
async fn product_fields_are_shown_masked_or_withheld_per_role() {
    let app = TestApp::spawn().await;
    let q = "query($id: ID!) { product(id: $id) { costPrice supplier } }";
    let fields = [("costPrice", SensitiveField::ProductCostPrice), ("supplier", SensitiveField::ProductSupplier)];
    let owner_token = app.login("demo", "owner").await;
    for (role, actor) in
        [(BuiltinRole::Owner, "owner"), (BuiltinRole::Manager, "manager"), (BuiltinRole::Staff, "staff"), (BuiltinRole::Guest, "guest")]
    {
        let spec = specs().into_iter().find(|s| s.builtin == role).unwrap();
        let id = record_of(&app, "products", "demo", actor).await;
        let full = app.gql(q, json!({ "id": id }), Some(&owner_token)).await.ok()["product"].clone();
        let token = app.login("demo", actor).await;
        let r = app.gql(q, json!({ "id": id }), Some(&token)).await;
        for (name, field) in fields {
            let got = &r.body["data"]["product"][name];
            let real = full[name].as_str().unwrap();
            match spec.fields.get(&field).copied().unwrap_or_default() {
                FieldAccess::Read | FieldAccess::Write => assert_eq!(got, real, "{actor} {name}"),
                FieldAccess::Masked => assert_eq!(got.as_str().unwrap(), field.mask().apply(real), "{actor} {name}"),
                FieldAccess::None => {
                    assert!(got.is_null(), "{actor} {name}");
                    assert!(!r.body.to_string().contains(real), "{actor} sees {name}");
                }
            }
        }
    }
}
