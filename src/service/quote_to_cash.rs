//! Quotes, jobs and invoices: records that belong to a customer the author can read.
//! Invoice bank details are a sensitive field; a job's log is its own history.

use crate::audit::Tx;
use crate::auth::UserPrincipal;
use crate::authz::catalog::{Permission, SensitiveField};
use crate::authz::fields::require_write;
use crate::authz::scope::{Placement, Reach};
use crate::domain::parse_name;
use crate::domain::{Patch, format_money, parse_money};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::service::records;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

/// A customer the principal can read, else "no such customer" (missing and out of
/// scope look the same).
pub async fn readable_customer(tx: &Tx<'_>, p: &UserPrincipal, id: Uuid) -> AppResult<()> {
    let customers =
        Reach::for_permission(p, Permission::CustomersRead).map_err(|_| AppError::bad_input("customerId", "no such customer"))?;
    repo::crm::get::<entity::customer::Entity>(tx.db(), &customers, id)
        .await?
        .ok_or_else(|| AppError::bad_input("customerId", "no such customer"))?;
    Ok(())
}

fn status(field: &str, allowed: &[&str], v: &Option<String>, cur: String) -> AppResult<String> {
    match v {
        None => Ok(cur),
        Some(s) if allowed.contains(&s.as_str()) => Ok(s.clone()),
        Some(_) => Err(AppError::bad_input(field, format!("must be one of {}", allowed.join(", ")))),
    }
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
    /// Only when creating (see `records::placement_for`).
    pub owner_id: Option<Uuid>,
    pub title: Option<String>,
    pub amount: Option<String>,
    pub status: Option<String>,
}

crate::record_module! {
    entity::quote::Entity, Quotes, "quote", write: QuotesWrite, delete: QuotesWrite, export: None,
    |m| plain {
        "title" => json!(m.title),
        "amount" => json!(format_money(m.amount_cents)),
        "status" => json!(m.status),
        "customerId" => json!(m.customer_id.to_string()),
    } secret {}
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
    let mut c = common(&reach, state);
    c.at = records::placement_for(tx, &reach, patch.owner_id).await?;
    let blank = crate::new_record!(entity::quote::Model {
        workspace_id: c.workspace_id,
        placed: c.at,
        now: c.now,
        customer_id,
        title: String::new(),
        amount_cents: 0,
        status: "draft".into(),
    });
    records::insert::<entity::quote::Entity>(tx, &reach, apply_quote(blank, &patch)?).await
}

pub async fn update_quote(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    id: Uuid,
    expected: Option<i64>,
    patch: QuotePatch,
) -> AppResult<entity::quote::Model> {
    fixed_customer(patch.customer_id, patch.owner_id)?;
    records::change::<entity::quote::Entity>(state, tx, p, Permission::QuotesWrite, "quote.updated", id, expected, |m| {
        apply_quote(m, &patch)
    })
    .await
}

// ---- jobs ----

pub const JOB_STATUSES: &[&str] = &["scheduled", "in_progress", "done"];

#[derive(Default)]
pub struct JobPatch {
    pub customer_id: Option<Uuid>,
    /// Only when creating (see `records::placement_for`).
    pub owner_id: Option<Uuid>,
    pub title: Option<String>,
    pub status: Option<String>,
    pub scheduled_for: Patch<DateTime<Utc>>,
    pub notes: Patch<String>,
}

crate::record_module! {
    entity::job::Entity, Jobs, "job", write: JobsWrite, delete: JobsWrite, export: None,
    |m| plain {
        "title" => json!(m.title),
        "status" => json!(m.status),
        "scheduledFor" => json!(m.scheduled_for.map(|t| t.to_rfc3339())),
        "notes" => json!(m.notes),
        "customerId" => json!(m.customer_id.map(|c| c.to_string())),
    } secret {}
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
    let mut c = common(&reach, state);
    c.at = records::placement_for(tx, &reach, patch.owner_id).await?;
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
    records::insert::<entity::job::Entity>(tx, &reach, apply_job(blank, &patch)?).await
}

pub async fn update_job(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    id: Uuid,
    expected: Option<i64>,
    patch: JobPatch,
) -> AppResult<entity::job::Model> {
    fixed_customer(patch.customer_id, patch.owner_id)?;
    records::change::<entity::job::Entity>(state, tx, p, Permission::JobsWrite, "job.updated", id, expected, |m| apply_job(m, &patch)).await
}

// ---- invoices ----

pub const INVOICE_STATUSES: &[&str] = &["draft", "sent", "paid", "void"];

#[derive(Default)]
pub struct InvoicePatch {
    pub customer_id: Option<Uuid>,
    /// Only when creating (see `records::placement_for`).
    pub owner_id: Option<Uuid>,
    pub number: Option<String>,
    pub amount: Option<String>,
    pub status: Option<String>,
    pub due_at: Patch<DateTime<Utc>>,
    pub bank_details: Patch<String>,
}

crate::record_module! {
    entity::invoice::Entity, Invoices, "invoice", write: InvoicesWrite, delete: InvoicesWrite, export: None,
    |m| plain {
        "number" => json!(m.number),
        "amount" => json!(format_money(m.amount_cents)),
        "status" => json!(m.status),
        "dueAt" => json!(m.due_at.map(|t| t.to_rfc3339())),
        "customerId" => json!(m.customer_id.to_string()),
    } secret {
        InvoiceBankDetails => m.bank_details.clone(),
    }
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
    let mut c = common(&reach, state);
    c.at = records::placement_for(tx, &reach, patch.owner_id).await?;
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
    records::insert_as::<entity::invoice::Entity>(tx, &reach, "invoice.created", apply_invoice(blank, &patch)?, &[], number_taken).await
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
    fixed_customer(patch.customer_id, patch.owner_id)?;
    let before = records::lock::<entity::invoice::Entity>(tx, &reach, id, expected).await?;
    let after = apply_invoice(before.clone(), &patch)?;
    records::save_as::<entity::invoice::Entity>(state, tx, &reach, "invoice.updated", &before, after, &[], number_taken).await
}

/// A record's customer and owner are given only when creating it.
fn fixed_customer(customer_id: Option<Uuid>, owner_id: Option<Uuid>) -> AppResult<()> {
    if customer_id.is_some() {
        return Err(AppError::bad_input("customerId", "cannot change"));
    }
    if owner_id.is_some() {
        return Err(AppError::bad_input("ownerId", "is given only when creating"));
    }
    Ok(())
}

/// One change to many quotes, all or nothing (see `records::bulk_change`).
pub async fn bulk_update_quotes(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    ids: &[Uuid],
    patch: QuotePatch,
) -> AppResult<Vec<entity::quote::Model>> {
    fixed_customer(patch.customer_id, patch.owner_id)?;
    records::bulk_change::<entity::quote::Entity>(state, tx, p, Permission::QuotesWrite, "quote.updated", ids, AppError::from, |m| {
        apply_quote(m, &patch)
    })
    .await
}

/// One change to many jobs, all or nothing.
pub async fn bulk_update_jobs(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    ids: &[Uuid],
    patch: JobPatch,
) -> AppResult<Vec<entity::job::Model>> {
    fixed_customer(patch.customer_id, patch.owner_id)?;
    records::bulk_change::<entity::job::Entity>(state, tx, p, Permission::JobsWrite, "job.updated", ids, AppError::from, |m| {
        apply_job(m, &patch)
    })
    .await
}

/// One change to many invoices, all or nothing (a number can be given to one only).
pub async fn bulk_update_invoices(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    ids: &[Uuid],
    patch: InvoicePatch,
) -> AppResult<Vec<entity::invoice::Model>> {
    if !matches!(patch.bank_details, Patch::Keep) {
        require_write(&p.grants, &[SensitiveField::InvoiceBankDetails])?;
    }
    fixed_customer(patch.customer_id, patch.owner_id)?;
    records::bulk_change::<entity::invoice::Entity>(state, tx, p, Permission::InvoicesWrite, "invoice.updated", ids, number_taken, |m| {
        apply_invoice(m, &patch)
    })
    .await
}
