//! Quotes, jobs and invoices: records that belong to a customer the author can read.
//! Invoice bank details are a sensitive field; a job's log is its own history.

use crate::audit::Tx;
use crate::audit::{AuditEvent, record_changes};
use crate::auth::UserPrincipal;
use crate::authz::catalog::{Permission, SensitiveField};
use crate::authz::fields::require_write;
use crate::authz::scope::{Placement, Reach};
use crate::domain::parse_name;
use crate::domain::{Patch, format_money, parse_money};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::repo::crm::CrmTable;
use crate::service::records;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelBehavior, ActiveModelTrait, IntoActiveModel, TryIntoModel};
use serde_json::{Value, json};
use uuid::Uuid;

/// A customer the principal can read, else "no such customer" (missing and out of
/// scope look the same).
pub async fn readable_customer(tx: &Tx<'_>, p: &UserPrincipal, id: Uuid) -> AppResult<()> {
    let customers =
        Reach::for_permission(p, Permission::CustomersRead).map_err(|_| AppError::bad_input("customerId", "no such customer"))?;
    repo::customers::get(tx.db(), &customers, id).await?.ok_or_else(|| AppError::bad_input("customerId", "no such customer"))?;
    Ok(())
}

fn status(field: &str, allowed: &[&str], v: &Option<String>, cur: String) -> AppResult<String> {
    match v {
        None => Ok(cur),
        Some(s) if allowed.contains(&s.as_str()) => Ok(s.clone()),
        Some(_) => Err(AppError::bad_input(field, format!("must be one of {}", allowed.join(", ")))),
    }
}

fn event(ws: Uuid, module: &'static str, target_type: &'static str, action: &'static str, id: Uuid, changes: Value) -> AuditEvent {
    AuditEvent::Record { workspace_id: ws, action, module, target_type, id, changes }
}

struct Common {
    workspace_id: Uuid,
    at: Placement,
    now: DateTime<Utc>,
}

fn common(reach: &Reach, state: &AppState) -> Common {
    Common { workspace_id: reach.workspace_id(), at: reach.placement().clone(), now: state.clock.now() }
}

// ---- quotes ----

pub const QUOTE_STATUSES: &[&str] = &["draft", "sent", "accepted", "rejected"];

#[derive(Default)]
pub struct QuotePatch {
    pub customer_id: Option<Uuid>,
    pub title: Option<String>,
    pub amount: Option<String>,
    pub status: Option<String>,
}

fn quote_changes(b: Option<&entity::quote::Model>, a: &entity::quote::Model) -> Value {
    let v = |m: Option<&entity::quote::Model>| {
        m.map(|m| [json!(m.title), json!(format_money(m.amount_cents)), json!(m.status)]).unwrap_or_default()
    };
    let (pb, pa) = (v(b), v(Some(a)));
    let plain: Vec<_> = ["title", "amount", "status"].iter().enumerate().map(|(i, n)| (*n, pb[i].clone(), pa[i].clone())).collect();
    record_changes(&plain, &[])
}

fn apply_quote(mut m: entity::quote::Model, p: &QuotePatch) -> AppResult<entity::quote::Model> {
    if let Some(t) = &p.title {
        m.title = parse_name("title", t, 200)?;
    }
    if let Some(a) = &p.amount {
        m.amount_cents = parse_money("amount", a)?;
    }
    m.status = status("status", QUOTE_STATUSES, &p.status, m.status)?;
    Ok(m)
}

pub async fn create_quote(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, patch: QuotePatch) -> AppResult<entity::quote::Model> {
    let reach = Reach::for_permission(p, Permission::QuotesWrite)?;
    let customer_id = patch.customer_id.ok_or_else(|| AppError::bad_input("customerId", "is required"))?;
    readable_customer(tx, p, customer_id).await?;
    if patch.title.is_none() || patch.amount.is_none() {
        return Err(AppError::bad_input(if patch.title.is_none() { "title" } else { "amount" }, "is required"));
    }
    let c = common(&reach, state);
    let blank = crate::new_record!(entity::quote::Model {
        workspace_id: c.workspace_id,
        placed: c.at,
        now: c.now,
        customer_id,
        title: String::new(),
        amount_cents: 0,
        status: "draft".into(),
    });
    let created = repo::crm::insert::<entity::quote::Entity>(tx.db(), &reach, apply_quote(blank, &patch)?).await?;
    tx.audit(event(c.workspace_id, "quotes", "quote", "quote.created", created.id, quote_changes(None, &created)));
    Ok(created)
}

pub async fn update_quote(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    id: Uuid,
    expected: Option<i64>,
    patch: QuotePatch,
) -> AppResult<entity::quote::Model> {
    let reach = Reach::for_permission(p, Permission::QuotesWrite)?;
    if patch.customer_id.is_some() {
        return Err(AppError::bad_input("customerId", "cannot change"));
    }
    let before = records::lock::<entity::quote::Entity>(tx, &reach, id, expected).await?;
    let mut after = apply_quote(before.clone(), &patch)?;
    after.updated_at = state.clock.now();
    let after = repo::crm::save::<entity::quote::Entity>(tx.db(), &reach, &before, after).await?;
    tx.audit(event(reach.workspace_id(), "quotes", "quote", "quote.updated", id, quote_changes(Some(&before), &after)));
    Ok(after)
}

// ---- jobs ----

pub const JOB_STATUSES: &[&str] = &["scheduled", "in_progress", "done"];

#[derive(Default)]
pub struct JobPatch {
    pub customer_id: Option<Uuid>,
    pub title: Option<String>,
    pub status: Option<String>,
    pub scheduled_for: Patch<DateTime<Utc>>,
    pub notes: Patch<String>,
}

fn job_changes(b: Option<&entity::job::Model>, a: &entity::job::Model) -> Value {
    let v = |m: Option<&entity::job::Model>| {
        m.map(|m| [json!(m.title), json!(m.status), json!(m.scheduled_for.map(|t| t.to_rfc3339())), json!(m.notes)]).unwrap_or_default()
    };
    let (pb, pa) = (v(b), v(Some(a)));
    let plain: Vec<_> =
        ["title", "status", "scheduledFor", "notes"].iter().enumerate().map(|(i, n)| (*n, pb[i].clone(), pa[i].clone())).collect();
    record_changes(&plain, &[])
}

fn apply_job(mut m: entity::job::Model, p: &JobPatch) -> AppResult<entity::job::Model> {
    if let Some(t) = &p.title {
        m.title = parse_name("title", t, 200)?;
    }
    m.status = status("status", JOB_STATUSES, &p.status, m.status)?;
    m.scheduled_for = match &p.scheduled_for {
        Patch::Keep => m.scheduled_for,
        Patch::Clear => None,
        Patch::Set(t) => Some(*t),
    };
    m.notes = match &p.notes {
        Patch::Keep => m.notes,
        Patch::Clear => None,
        Patch::Set(n) if n.chars().count() > 20_000 => return Err(AppError::bad_input("notes", "must be at most 20000 characters")),
        Patch::Set(n) => Some(n.trim().to_owned()).filter(|n| !n.is_empty()),
    };
    Ok(m)
}

pub async fn create_job(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, patch: JobPatch) -> AppResult<entity::job::Model> {
    let reach = Reach::for_permission(p, Permission::JobsWrite)?;
    if let Some(cu) = patch.customer_id {
        readable_customer(tx, p, cu).await?;
    }
    if patch.title.is_none() {
        return Err(AppError::bad_input("title", "is required"));
    }
    let c = common(&reach, state);
    let blank = crate::new_record!(entity::job::Model {
        workspace_id: c.workspace_id,
        placed: c.at,
        now: c.now,
        customer_id: patch.customer_id,
        title: String::new(),
        status: "scheduled".into(),
        scheduled_for: None,
        notes: None,
    });
    let created = repo::crm::insert::<entity::job::Entity>(tx.db(), &reach, apply_job(blank, &patch)?).await?;
    tx.audit(event(c.workspace_id, "jobs", "job", "job.created", created.id, job_changes(None, &created)));
    Ok(created)
}

pub async fn update_job(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    id: Uuid,
    expected: Option<i64>,
    patch: JobPatch,
) -> AppResult<entity::job::Model> {
    let reach = Reach::for_permission(p, Permission::JobsWrite)?;
    if patch.customer_id.is_some() {
        return Err(AppError::bad_input("customerId", "cannot change"));
    }
    let before = records::lock::<entity::job::Entity>(tx, &reach, id, expected).await?;
    let mut after = apply_job(before.clone(), &patch)?;
    after.updated_at = state.clock.now();
    let after = repo::crm::save::<entity::job::Entity>(tx.db(), &reach, &before, after).await?;
    tx.audit(event(reach.workspace_id(), "jobs", "job", "job.updated", id, job_changes(Some(&before), &after)));
    Ok(after)
}

// ---- invoices ----

pub const INVOICE_STATUSES: &[&str] = &["draft", "sent", "paid", "void"];

#[derive(Default)]
pub struct InvoicePatch {
    pub customer_id: Option<Uuid>,
    pub number: Option<String>,
    pub amount: Option<String>,
    pub status: Option<String>,
    pub due_at: Patch<DateTime<Utc>>,
    pub bank_details: Patch<String>,
}

fn invoice_changes(b: Option<&entity::invoice::Model>, a: &entity::invoice::Model) -> Value {
    let v = |m: Option<&entity::invoice::Model>| {
        m.map(|m| [json!(m.number), json!(format_money(m.amount_cents)), json!(m.status), json!(m.due_at.map(|t| t.to_rfc3339()))])
            .unwrap_or_default()
    };
    let (pb, pa) = (v(b), v(Some(a)));
    let plain: Vec<_> =
        ["number", "amount", "status", "dueAt"].iter().enumerate().map(|(i, n)| (*n, pb[i].clone(), pa[i].clone())).collect();
    record_changes(&plain, &[("bankDetails", b.and_then(|m| m.bank_details.clone()), a.bank_details.clone())])
}

fn apply_invoice(mut m: entity::invoice::Model, p: &InvoicePatch) -> AppResult<entity::invoice::Model> {
    if let Some(n) = &p.number {
        let n = n.trim().to_uppercase();
        if n.is_empty() || n.len() > 32 || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '/') {
            return Err(AppError::bad_input("number", "must be 1 to 32 characters of A-Z, 0-9, '-' and '/'"));
        }
        m.number = n;
    }
    if let Some(a) = &p.amount {
        m.amount_cents = parse_money("amount", a)?;
    }
    m.status = status("status", INVOICE_STATUSES, &p.status, m.status)?;
    m.due_at = match &p.due_at {
        Patch::Keep => m.due_at,
        Patch::Clear => None,
        Patch::Set(t) => Some(*t),
    };
    m.bank_details = match &p.bank_details {
        Patch::Keep => m.bank_details,
        Patch::Clear => None,
        Patch::Set(d) => Some(parse_name("bankDetails", d, 200)?),
    };
    Ok(m)
}

fn number_taken(e: sea_orm::DbErr) -> AppError {
    if repo::is_unique_violation(&e) { AppError::Conflict("an invoice with this number already exists".into()) } else { e.into() }
}

pub async fn create_invoice(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, patch: InvoicePatch) -> AppResult<entity::invoice::Model> {
    let reach = Reach::for_permission(p, Permission::InvoicesWrite)?;
    if !matches!(patch.bank_details, Patch::Keep) {
        require_write(&p.grants, &[SensitiveField::InvoiceBankDetails])?;
    }
    let customer_id = patch.customer_id.ok_or_else(|| AppError::bad_input("customerId", "is required"))?;
    readable_customer(tx, p, customer_id).await?;
    if patch.number.is_none() || patch.amount.is_none() {
        return Err(AppError::bad_input(if patch.number.is_none() { "number" } else { "amount" }, "is required"));
    }
    let c = common(&reach, state);
    let blank = crate::new_record!(entity::invoice::Model {
        workspace_id: c.workspace_id,
        placed: c.at,
        now: c.now,
        customer_id,
        number: String::new(),
        amount_cents: 0,
        status: "draft".into(),
        due_at: None,
        bank_details: None,
    });
    let created =
        repo::crm::insert::<entity::invoice::Entity>(tx.db(), &reach, apply_invoice(blank, &patch)?).await.map_err(number_taken)?;
    tx.audit(event(c.workspace_id, "invoices", "invoice", "invoice.created", created.id, invoice_changes(None, &created)));
    Ok(created)
}

pub async fn update_invoice(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    id: Uuid,
    expected: Option<i64>,
    patch: InvoicePatch,
) -> AppResult<entity::invoice::Model> {
    let reach = Reach::for_permission(p, Permission::InvoicesWrite)?;
    if !matches!(patch.bank_details, Patch::Keep) {
        require_write(&p.grants, &[SensitiveField::InvoiceBankDetails])?;
    }
    if patch.customer_id.is_some() {
        return Err(AppError::bad_input("customerId", "cannot change"));
    }
    let before = records::lock::<entity::invoice::Entity>(tx, &reach, id, expected).await?;
    let mut after = apply_invoice(before.clone(), &patch)?;
    after.updated_at = state.clock.now();
    let after = repo::crm::save::<entity::invoice::Entity>(tx.db(), &reach, &before, after).await.map_err(number_taken)?;
    tx.audit(event(reach.workspace_id(), "invoices", "invoice", "invoice.updated", id, invoice_changes(Some(&before), &after)));
    Ok(after)
}

/// Soft-deletes a ticket, quote, job or invoice (their module's write permission; the
/// catalog has a separate delete permission only for customers and products).
pub async fn delete<E: CrmTable>(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    permission: Permission,
    target_type: &'static str,
    id: Uuid,
    expected: Option<i64>,
) -> AppResult<()>
where
    E::Model: IntoActiveModel<E::ActiveModel> + Clone,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + TryIntoModel<E::Model> + Send,
{
    let reach = Reach::for_permission(p, permission)?;
    let before = records::lock::<E>(tx, &reach, id, expected).await?;
    let now = state.clock.now();
    let mut after = before.clone().into_active_model();
    after.set(E::deleted_column(), Some(now).into());
    after.set(E::updated_column(), now.into());
    repo::crm::save::<E>(tx.db(), &reach, &before, after.try_into_model()?).await?;
    let action = match target_type {
        "ticket" => "ticket.deleted",
        "quote" => "quote.deleted",
        "job" => "job.deleted",
        _ => "invoice.deleted",
    };
    tx.audit(event(
        reach.workspace_id(),
        permission.module().as_str(),
        target_type,
        action,
        id,
        json!({ "deleted": { "before": false, "after": true } }),
    ));
    Ok(())
}
