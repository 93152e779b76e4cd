//! Customers: create, update, reassign, delete. Reads go straight from GraphQL to the
//! scoped repo (they change nothing).

use crate::audit::Tx;
use crate::auth::UserPrincipal;
use crate::authz::catalog::{Permission, SensitiveField};
use crate::authz::fields::require_write;
use crate::authz::scope::Reach;
use crate::domain::{Email, Patch, format_money, parse_money, parse_name};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::service::{import, records};
use crate::state::AppState;
use entity::customer;
use sea_orm::TransactionTrait;
use serde_json::json;
use uuid::Uuid;

#[derive(Debug, Clone, Default)]
pub struct CustomerPatch {
    pub name: Option<String>,
    pub status: Option<String>,
    pub email: Patch<String>,
    pub phone: Patch<String>,
    pub tax_id: Patch<String>,
    pub notes: Patch<String>,
    pub credit_limit: Patch<String>,
}

pub const STATUSES: &[&str] = &["lead", "active", "inactive"];

fn sensitive_in(p: &CustomerPatch) -> Vec<SensitiveField> {
    let mut v = Vec::new();
    for (touched, f) in [
        (p.email.touched(), SensitiveField::CustomerEmail),
        (p.phone.touched(), SensitiveField::CustomerPhone),
        (p.tax_id.touched(), SensitiveField::CustomerTaxId),
        (p.notes.touched(), SensitiveField::CustomerNotes),
        (p.credit_limit.touched(), SensitiveField::CustomerCreditLimit),
    ] {
        if touched {
            v.push(f);
        }
    }
    v
}

fn text(field: &str, max: usize, p: Patch<String>, current: Option<String>) -> AppResult<Option<String>> {
    Ok(match p {
        Patch::Keep => current,
        Patch::Clear => None,
        Patch::Set(v) => {
            let v = v.trim().to_owned();
            if v.chars().count() > max || v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                return Err(AppError::bad_input(field, format!("must be at most {max} characters without control characters")));
            }
            (!v.is_empty()).then_some(v)
        }
    })
}

fn apply(mut m: customer::Model, p: CustomerPatch) -> AppResult<customer::Model> {
    if let Some(name) = p.name {
        m.name = parse_name("name", &name, 200)?;
    }
    if let Some(status) = p.status {
        if !STATUSES.contains(&status.as_str()) {
            return Err(AppError::bad_input("status", "must be lead, active or inactive"));
        }
        m.status = status;
    }
    m.email = match p.email {
        Patch::Set(e) => Some(Email::parse("email", &e)?.display),
        other => text("email", 320, other, m.email)?,
    };
    m.phone = text("phone", 64, p.phone, m.phone)?;
    m.tax_id = text("taxId", 64, p.tax_id, m.tax_id)?;
    m.notes = text("notes", 10_000, p.notes, m.notes)?;
    m.credit_limit_cents = match p.credit_limit {
        Patch::Keep => m.credit_limit_cents,
        Patch::Clear => None,
        Patch::Set(v) => Some(parse_money("creditLimit", &v)?),
    };
    Ok(m)
}

crate::record_module! {
    customer::Entity, Customers, "customer", write: CustomersWrite, delete: CustomersDelete, export: Some(CustomersExport),
    |m| plain {
        "name" => json!(m.name),
        "status" => json!(m.status),
        "ownerId" => json!(m.owner_id.to_string()),
        "departmentId" => json!(m.department_id.map(|u| u.to_string())),
        "teamId" => json!(m.team_id.map(|u| u.to_string())),
        "groupId" => json!(m.group_id.map(|u| u.to_string())),
    } secret {
        CustomerEmail => m.email.clone(),
        CustomerPhone => m.phone.clone(),
        CustomerTaxId => m.tax_id.clone(),
        CustomerNotes => m.notes.clone(),
        CustomerCreditLimit => m.credit_limit_cents.map(format_money),
    }
}

/// A new customer, the author's or (`owner`) assigned to a user the author's scope
/// covers (see `records::placement_for`).
pub async fn create(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    patch: CustomerPatch,
    owner: Option<Uuid>,
) -> AppResult<customer::Model> {
    let reach = Reach::for_permission(p, Permission::CustomersWrite)?;
    require_write(&p.grants, &sensitive_in(&patch))?;
    if patch.name.is_none() {
        return Err(AppError::bad_input("name", "is required"));
    }
    let at = records::placement_for(tx, &reach, owner).await?;
    records::insert::<customer::Entity>(tx, &reach, apply(blank(&reach, &at, state.clock.now()), patch)?).await
}

/// A new customer placed at `at`, before its fields are applied.
fn blank(reach: &Reach, at: &crate::authz::scope::Placement, now: chrono::DateTime<chrono::Utc>) -> customer::Model {
    crate::new_record!(customer::Model {
        workspace_id: reach.workspace_id(),
        placed: at,
        now: now,
        name: String::new(),
        status: "lead".into(),
        email: None,
        phone: None,
        tax_id: None,
        notes: None,
        credit_limit_cents: None,
    })
}

pub async fn update(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    id: Uuid,
    expected: Option<i64>,
    patch: CustomerPatch,
) -> AppResult<customer::Model> {
    require_write(&p.grants, &sensitive_in(&patch))?;
    records::change::<customer::Entity>(state, tx, p, Permission::CustomersWrite, "customer.updated", id, expected, |m| apply(m, patch))
        .await
}

/// Gives the customer to another user; the record moves to that user's department,
/// team and primary group, so scopes follow the new owner.
pub async fn reassign(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    id: Uuid,
    expected: Option<i64>,
    owner_id: Uuid,
) -> AppResult<customer::Model> {
    let reach = Reach::for_permission(p, Permission::CustomersWrite)?;
    let before = records::lock::<customer::Entity>(tx, &reach, id, expected).await?;
    let owner = repo::users::get(tx.db(), reach.workspace_id(), owner_id)
        .await?
        .filter(|u| u.active)
        .ok_or_else(|| AppError::bad_input("ownerId", "no such active user"))?;
    let mut after = before.clone();
    after.owner_id = owner.id;
    after.department_id = owner.department_id;
    after.team_id = owner.team_id;
    after.group_id = owner.primary_group_id;
    records::save::<customer::Entity>(state, tx, &reach, "customer.reassigned", &before, after).await
}

pub async fn delete(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, id: Uuid, expected: Option<i64>) -> AppResult<()> {
    records::delete::<customer::Entity>(state, tx, p, id, expected).await
}

/// Applies one change to many records, all or nothing: an id that is missing or out
/// of scope fails the whole operation (NOT_FOUND) and nothing is written.
pub async fn bulk_update(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    ids: &[Uuid],
    patch: CustomerPatch,
) -> AppResult<Vec<customer::Model>> {
    require_write(&p.grants, &sensitive_in(&patch))?;
    records::bulk_change::<customer::Entity>(state, tx, p, Permission::CustomersWrite, "customer.updated", ids, AppError::from, |m| {
        apply(m, patch.clone())
    })
    .await
}

pub async fn bulk_delete(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, ids: &[Uuid]) -> AppResult<usize> {
    records::bulk_delete::<customer::Entity>(state, tx, p, ids).await
}

pub use super::export::ExportFormat;

/// The columns an import takes: a customer's own fields. Placement comes from the
/// importer, as for `createCustomer`.
const IMPORT_COLUMNS: [&str; 7] = ["name", "status", "email", "phone", "taxId", "notes", "creditLimit"];

/// The patch a row asks for, or its problems.
fn import_patch(row: &import::Row) -> Result<CustomerPatch, Vec<import::Problem>> {
    let problem = |field: &str, message: String| import::Problem { line: row.line, field: field.to_owned(), message };
    let mut patch = CustomerPatch::default();
    let mut problems = Vec::new();
    for (column, value) in &row.values {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        // The rule the API applies to every string it receives (`graphql::text_guard`),
        // cell by cell: only notes may hold tabs and newlines.
        let multi_line = column == "notes";
        if value.chars().any(|c| c.is_control() && !(multi_line && matches!(c, '\t' | '\n'))) {
            problems.push(problem(column, "must not contain control characters".into()));
            continue;
        }
        let set = Patch::Set(value.to_owned());
        match column.as_str() {
            "name" => patch.name = Some(value.to_owned()),
            "status" => patch.status = Some(value.to_lowercase()),
            "email" => patch.email = set,
            "phone" => patch.phone = set,
            "taxId" => patch.tax_id = set,
            "notes" => patch.notes = set,
            "creditLimit" => patch.credit_limit = set,
            other => problems.push(problem(other, format!("is not a column of an import (use {})", IMPORT_COLUMNS.join(", ")))),
        }
    }
    if patch.name.is_none() {
        problems.push(problem("name", "is required".into()));
    }
    if problems.is_empty() { Ok(patch) } else { Err(problems) }
}

/// Creates customers from a CSV (header row first) or JSON file, all or nothing. Every
/// row is checked like `createCustomer` (the same validation and field rules); one bad
/// value anywhere means nothing is created and the report gives every problem with its
/// line and field. A dry run checks and reports without creating anything. Needs
/// customers.import and customers.write, the bulkOperations restriction, and at most
/// maxRecordsPerRequest rows. Each created customer has its own entry, and the import
/// one more.
///
/// The file is read and written in batches (`service::import`), inside a savepoint
/// that is released only if every row was good: memory holds a batch, not the file.
pub async fn import(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    format: ExportFormat,
    file: Box<dyn std::io::Read + Send>,
    dry_run: bool,
) -> AppResult<import::Report> {
    Reach::for_permission(p, Permission::CustomersImport)?;
    let reach = Reach::for_permission(p, Permission::CustomersWrite)?;
    records::require_bulk(p)?;
    let max = p.grants.restrictions.max_records_per_request as usize;
    let now = state.clock.now();
    let mut batches = import::read(format, file);
    let savepoint = tx.db().begin().await?;
    let mut report = import::Report::default();
    while let Some(batch) = batches.recv().await {
        let batch = batch?;
        report.rows += batch.len();
        if report.rows > max {
            return Err(AppError::Denied(format!("the file has more than {max} rows; your roles import at most {max} at a time")));
        }
        let mut checked = Vec::with_capacity(batch.len());
        for row in &batch {
            let patch = match import_patch(row) {
                Ok(patch) => patch,
                Err(found) => {
                    found.into_iter().for_each(|f| report.problem(f));
                    continue;
                }
            };
            // Field rules first: a value the importer may not write is refused
            // outright, as in a single create.
            require_write(&p.grants, &sensitive_in(&patch))?;
            match apply(blank(&reach, reach.placement(), now), patch) {
                Ok(m) => checked.push(m),
                Err(AppError::BadInput { field, message }) => report.problem(import::Problem { line: row.line, field, message }),
                Err(e) => return Err(e),
            }
        }
        if report.problem_count == 0 && !dry_run {
            report.created += records::insert_batch::<customer::Entity>(tx, &savepoint, &reach, checked, now).await?;
        }
    }
    if report.rows == 0 {
        return Err(AppError::bad_input("content", "holds no rows"));
    }
    let outcome = if dry_run {
        "dry run"
    } else if report.problem_count == 0 {
        "created"
    } else {
        "refused"
    };
    if outcome == "created" {
        savepoint.commit().await?;
    } else {
        savepoint.rollback().await?;
        report.created = 0;
    }
    tx.audit(crate::audit::AuditEvent::Record {
        workspace_id: reach.workspace_id(),
        action: "customers.imported",
        module: "customers",
        target_type: "import",
        id: Uuid::now_v7(),
        changes: json!({
            "rows": { "before": null, "after": report.rows },
            "created": { "before": null, "after": report.created },
            "problems": { "before": null, "after": report.problem_count },
            "format": { "before": null, "after": format.as_str() },
            "outcome": { "before": null, "after": outcome },
        }),
    });
    Ok(report)
}
