//! Customers: create, update, reassign, delete. Reads go straight from GraphQL to the
//! scoped repo (they change nothing).

use crate::audit::AuditEvent;
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
use serde_json::{Value, json};
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

/// What changed between two versions (None: the record did not exist).
fn changes(before: Option<&customer::Model>, after: Option<&customer::Model>) -> Value {
    let id = |u: Option<Uuid>| json!(u.map(|u| u.to_string()));
    let plain = |m: Option<&customer::Model>| -> [Value; 7] {
        match m {
            None => Default::default(),
            Some(m) => [
                json!(m.name),
                json!(m.status),
                json!(m.owner_id.to_string()),
                id(m.department_id),
                id(m.team_id),
                id(m.group_id),
                json!(m.deleted_at.is_some()),
            ],
        }
    };
    let secret = |m: Option<&customer::Model>| -> [Option<String>; 5] {
        match m {
            None => Default::default(),
            Some(m) => [m.email.clone(), m.phone.clone(), m.tax_id.clone(), m.notes.clone(), m.credit_limit_cents.map(format_money)],
        }
    };
    let (pb, pa, sb, sa) = (plain(before), plain(after), secret(before), secret(after));
    let names = ["name", "status", "ownerId", "departmentId", "teamId", "groupId", "deleted"];
    let secret_names = ["email", "phone", "taxId", "notes", "creditLimit"];
    let plain: Vec<_> = names.iter().enumerate().map(|(i, n)| (*n, pb[i].clone(), pa[i].clone())).collect();
    let secret: Vec<_> = secret_names.iter().enumerate().map(|(i, n)| (*n, sb[i].clone(), sa[i].clone())).collect();
    crate::audit::record_changes(&plain, &secret)
}

fn event(ws: Uuid, action: &'static str, id: Uuid, changes: Value) -> AuditEvent {
    AuditEvent::Record { workspace_id: ws, action, module: "customers", target_type: "customer", id, changes }
}

pub async fn create(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, patch: CustomerPatch) -> AppResult<customer::Model> {
    let reach = Reach::for_permission(p, Permission::CustomersWrite)?;
    require_write(&p.grants, &sensitive_in(&patch))?;
    let name = patch.name.clone().ok_or_else(|| AppError::bad_input("name", "is required"))?;
    let now = state.clock.now();
    let blank = crate::new_record!(customer::Model {
        workspace_id: reach.workspace_id(),
        placed: reach.placement(),
        now: now,
        name,
        status: "lead".into(),
        email: None,
        phone: None,
        tax_id: None,
        notes: None,
        credit_limit_cents: None,
    });
    let m = apply(blank, patch)?;
    let created = repo::crm::insert::<customer::Entity>(tx.db(), &reach, m).await?;
    tx.audit(event(reach.workspace_id(), "customer.created", created.id, changes(None, Some(&created))));
    Ok(created)
}

pub async fn update(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    id: Uuid,
    expected: Option<i64>,
    patch: CustomerPatch,
) -> AppResult<customer::Model> {
    let reach = Reach::for_permission(p, Permission::CustomersWrite)?;
    require_write(&p.grants, &sensitive_in(&patch))?;
    let before = records::lock::<customer::Entity>(tx, &reach, id, expected).await?;
    let mut after = apply(before.clone(), patch)?;
    after.updated_at = state.clock.now();
    let after = repo::crm::save::<customer::Entity>(tx.db(), &reach, &before, after).await?;
    tx.audit(event(reach.workspace_id(), "customer.updated", id, changes(Some(&before), Some(&after))));
    Ok(after)
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
    after.updated_at = state.clock.now();
    let after = repo::crm::save::<customer::Entity>(tx.db(), &reach, &before, after).await?;
    tx.audit(event(reach.workspace_id(), "customer.reassigned", id, changes(Some(&before), Some(&after))));
    Ok(after)
}

pub async fn delete(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, id: Uuid, expected: Option<i64>) -> AppResult<()> {
    let reach = Reach::for_permission(p, Permission::CustomersDelete)?;
    let before = records::lock::<customer::Entity>(tx, &reach, id, expected).await?;
    let mut after = before.clone();
    after.deleted_at = Some(state.clock.now());
    after.updated_at = state.clock.now();
    let after = repo::crm::save::<customer::Entity>(tx.db(), &reach, &before, after).await?;
    tx.audit(event(reach.workspace_id(), "customer.deleted", id, changes(Some(&before), Some(&after))));
    Ok(())
}

fn require_restriction(allowed: bool, what: &str) -> AppResult<()> {
    if allowed { Ok(()) } else { Err(AppError::Denied(format!("your roles do not allow {what}"))) }
}

fn bulk_ids(p: &UserPrincipal, ids: &[Uuid]) -> AppResult<()> {
    require_restriction(p.grants.restrictions.bulk_operations, "bulk operations")?;
    let max = p.grants.restrictions.max_records_per_request.min(100) as usize;
    if ids.is_empty() {
        return Err(AppError::bad_input("ids", "name at least one record"));
    }
    if ids.len() > max {
        return Err(AppError::Denied(format!("your roles allow at most {max} records per request")));
    }
    Ok(())
}

/// Takes the rows of a bulk change in one ordered statement first, so that two bulk
/// changes over the same records queue instead of deadlocking.
async fn hold_all(tx: &Tx<'_>, p: &UserPrincipal, permission: Permission, ids: &[Uuid]) -> AppResult<()> {
    let reach = Reach::for_permission(p, permission)?;
    repo::crm::locked_many::<customer::Entity>(tx.db(), &reach, ids).await?;
    Ok(())
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
    bulk_ids(p, ids)?;
    hold_all(tx, p, Permission::CustomersWrite, ids).await?;
    let mut out = Vec::new();
    for id in ids {
        out.push(update(state, tx, p, *id, None, patch.clone()).await?);
    }
    Ok(out)
}

pub async fn bulk_delete(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, ids: &[Uuid]) -> AppResult<usize> {
    bulk_ids(p, ids)?;
    hold_all(tx, p, Permission::CustomersDelete, ids).await?;
    for id in ids {
        delete(state, tx, p, *id, None).await?;
    }
    Ok(ids.len())
}

pub use super::export::ExportFormat;

/// The customers in the principal's scope matching `filter`, with each sensitive
/// field as the principal may see it (value, mask, or empty). Needs customers.export
/// and the dataExport restriction; at most maxRecordsPerRequest rows.
pub async fn export(tx: &Tx<'_>, p: &UserPrincipal, filter: &repo::customers::Filter, format: ExportFormat) -> AppResult<(String, usize)> {
    let reach = Reach::for_permission(p, Permission::CustomersExport)?;
    let read = Reach::for_permission(p, Permission::CustomersRead)?;
    let max = super::export::check(p, repo::customers::count(tx.db(), &read, filter).await?)?;
    let rows =
        repo::customers::list(tx.db(), &read, filter, repo::seek::Order::asc(repo::seek::SortKey::Column("name")), None, max).await?;
    let shown = |f: SensitiveField, v: Option<String>| crate::authz::fields::protect(&p.grants, f, v).shown();
    let text = |v: Option<String>| v.map_or(Value::Null, Value::String);
    let records: Vec<Vec<Value>> = rows
        .into_iter()
        .map(|m| {
            vec![
                Value::String(m.id.to_string()),
                Value::String(m.name.clone()),
                Value::String(m.status.clone()),
                Value::String(m.owner_id.to_string()),
                text(shown(SensitiveField::CustomerEmail, m.email.clone())),
                text(shown(SensitiveField::CustomerPhone, m.phone.clone())),
                text(shown(SensitiveField::CustomerTaxId, m.tax_id.clone())),
                text(shown(SensitiveField::CustomerNotes, m.notes.clone())),
                text(shown(SensitiveField::CustomerCreditLimit, m.credit_limit_cents.map(format_money))),
                Value::String(m.created_at.to_rfc3339()),
            ]
        })
        .collect();
    let n = records.len();
    let columns = ["id", "name", "status", "ownerId", "email", "phone", "taxId", "notes", "creditLimit", "createdAt"];
    let content = super::export::render(&columns, records, format)?;
    tx.audit(AuditEvent::Record {
        workspace_id: reach.workspace_id(),
        action: "customers.exported",
        module: "customers",
        target_type: "export",
        id: Uuid::now_v7(),
        changes: json!({ "rows": { "before": null, "after": n }, "format": { "before": null, "after": format.as_str() } }),
    });
    Ok((content, n))
}
