//! Support tickets. Internal notes are a sensitive field.

use crate::audit::Tx;
use crate::auth::UserPrincipal;
use crate::authz::catalog::{Permission, SensitiveField};
use crate::authz::fields::require_write;
use crate::authz::scope::Reach;
use crate::domain::Patch;
use crate::domain::parse_name;
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::service::records;
use crate::state::AppState;
use entity::ticket;
use serde_json::json;
use uuid::Uuid;

pub const STATUSES: &[&str] = &["open", "pending", "closed"];
pub const PRIORITIES: &[&str] = &["low", "normal", "high", "urgent"];

#[derive(Default)]
pub struct TicketPatch {
    pub customer_id: Option<Uuid>,
    /// Only when creating (see `records::placement_for`).
    pub owner_id: Option<Uuid>,
    pub subject: Option<String>,
    pub status: Option<String>,
    pub priority: Option<String>,
    pub description: Patch<String>,
    pub internal_notes: Patch<String>,
}

fn long_text(field: &str, p: &Patch<String>, cur: Option<String>) -> AppResult<Option<String>> {
    Ok(match p {
        Patch::Keep => cur,
        Patch::Clear => None,
        Patch::Set(v) if v.chars().count() > 20_000 => return Err(AppError::bad_input(field, "must be at most 20000 characters")),
        Patch::Set(v) => Some(v.trim().to_owned()).filter(|v| !v.is_empty()),
    })
}

fn apply(mut m: ticket::Model, p: &TicketPatch) -> AppResult<ticket::Model> {
    if let Some(s) = &p.subject {
        m.subject = parse_name("subject", s, 200)?;
    }
    if let Some(s) = &p.status {
        m.status = s.clone();
    }
    if let Some(pr) = &p.priority {
        m.priority = pr.clone();
    }
    m.description = long_text("description", &p.description, m.description)?;
    m.internal_notes = long_text("internalNotes", &p.internal_notes, m.internal_notes)?;
    Ok(m)
}

crate::record_module! {
    ticket::Entity, Tickets, "ticket", write: TicketsWrite, delete: TicketsWrite, export: None,
    |m| plain {
        "subject" => json!(m.subject),
        "status" => json!(m.status),
        "priority" => json!(m.priority),
        "description" => json!(m.description),
        "customerId" => json!(m.customer_id.map(|c| c.to_string())),
    } secret {
        TicketInternalNotes => m.internal_notes.clone(),
    }
}

fn check(p: &UserPrincipal, patch: &TicketPatch) -> AppResult<()> {
    if !matches!(patch.internal_notes, Patch::Keep) {
        require_write(&p.grants, &[SensitiveField::TicketInternalNotes])?;
    }
    Ok(())
}

pub async fn create(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, patch: TicketPatch) -> AppResult<ticket::Model> {
    let reach = Reach::for_permission(p, Permission::TicketsWrite)?;
    check(p, &patch)?;
    let subject = patch.subject.clone().ok_or_else(|| AppError::bad_input("subject", "is required"))?;
    if let Some(c) = patch.customer_id {
        let customers =
            Reach::for_permission(p, Permission::CustomersRead).map_err(|_| AppError::bad_input("customerId", "no such customer"))?;
        repo::crm::get::<entity::customer::Entity>(tx.db(), &customers, c)
            .await?
            .ok_or_else(|| AppError::bad_input("customerId", "no such customer"))?;
    }
    let now = state.clock.now();
    let at = records::placement_for(tx, &reach, patch.owner_id).await?;
    let blank = crate::new_record!(ticket::Model {
        workspace_id: reach.workspace_id(),
        placed: at,
        now: now,
        customer_id: patch.customer_id,
        subject,
        status: "open".into(),
        priority: "normal".into(),
        description: None,
        internal_notes: None,
    });
    records::insert::<ticket::Entity>(tx, &reach, apply(blank, &patch)?).await
}

pub async fn update(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    id: Uuid,
    expected: Option<i64>,
    patch: TicketPatch,
) -> AppResult<ticket::Model> {
    check(p, &patch)?;
    if patch.customer_id.is_some() {
        return Err(AppError::bad_input("customerId", "a ticket's customer cannot change"));
    }
    if patch.owner_id.is_some() {
        return Err(AppError::bad_input("ownerId", "is given only when creating"));
    }
    records::change::<ticket::Entity>(state, tx, p, Permission::TicketsWrite, "ticket.updated", id, expected, |m| apply(m, &patch)).await
}

/// One change to many tickets, all or nothing (see `records::bulk_change`).
pub async fn bulk_update(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    ids: &[Uuid],
    patch: TicketPatch,
) -> AppResult<Vec<ticket::Model>> {
    check(p, &patch)?;
    if patch.customer_id.is_some() {
        return Err(AppError::bad_input("customerId", "a ticket's customer cannot change"));
    }
    if patch.owner_id.is_some() {
        return Err(AppError::bad_input("ownerId", "is given only when creating"));
    }
    records::bulk_change::<ticket::Entity>(state, tx, p, Permission::TicketsWrite, "ticket.updated", ids, AppError::from, |m| {
        apply(m, &patch)
    })
    .await
}
