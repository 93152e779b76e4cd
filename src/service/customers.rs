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
use crate::service::records;
use crate::state::AppState;
use entity::customer;
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

pub async fn create(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, patch: CustomerPatch) -> AppResult<customer::Model> {
    let reach = Reach::for_permission(p, Permission::CustomersWrite)?;
    require_write(&p.grants, &sensitive_in(&patch))?;
    let name = patch.name.clone().ok_or_else(|| AppError::bad_input("name", "is required"))?;
    let blank = crate::new_record!(customer::Model {
        workspace_id: reach.workspace_id(),
        placed: reach.placement(),
        now: state.clock.now(),
        name,
        status: "lead".into(),
        email: None,
        phone: None,
        tax_id: None,
        notes: None,
        credit_limit_cents: None,
    });
    records::insert::<customer::Entity>(tx, &reach, apply(blank, patch)?).await
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

/// The customers in the principal's scope matching `filter` (see `records::export`).
pub async fn export(tx: &Tx<'_>, p: &UserPrincipal, filter: &repo::customers::Filter, format: ExportFormat) -> AppResult<(String, usize)> {
    records::export::<customer::Entity>(tx, p, repo::crm::RecordFilter::condition(filter), format).await
}
