//! Support tickets. Internal notes are a sensitive field.

use crate::audit::Tx;
use crate::audit::{AuditEvent, record_changes};
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
use serde_json::{Value, json};
use uuid::Uuid;

pub const STATUSES: &[&str] = &["open", "pending", "closed"];
pub const PRIORITIES: &[&str] = &["low", "normal", "high", "urgent"];

#[derive(Default)]
pub struct TicketPatch {
    pub customer_id: Option<Uuid>,
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

fn changes(before: Option<&ticket::Model>, after: &ticket::Model) -> Value {
    let plain = |m: Option<&ticket::Model>| -> [Value; 4] {
        match m {
            None => Default::default(),
            Some(m) => [json!(m.subject), json!(m.status), json!(m.priority), json!(m.description)],
        }
    };
    let (pb, pa) = (plain(before), plain(Some(after)));
    let plain: Vec<_> =
        ["subject", "status", "priority", "description"].iter().enumerate().map(|(i, n)| (*n, pb[i].clone(), pa[i].clone())).collect();
    record_changes(&plain, &[("internalNotes", before.and_then(|b| b.internal_notes.clone()), after.internal_notes.clone())])
}

fn event(ws: Uuid, action: &'static str, id: Uuid, changes: Value) -> AuditEvent {
    AuditEvent::Record { workspace_id: ws, action, module: "tickets", target_type: "ticket", id, changes }
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
        repo::customers::get(tx.db(), &customers, c).await?.ok_or_else(|| AppError::bad_input("customerId", "no such customer"))?;
    }
    let now = state.clock.now();
    let at = reach.placement();
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
    let m = apply(blank, &patch)?;
    let created = repo::crm::insert::<entity::ticket::Entity>(tx.db(), &reach, m).await?;
    tx.audit(event(reach.workspace_id(), "ticket.created", created.id, changes(None, &created)));
    Ok(created)
}

pub async fn update(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    id: Uuid,
    expected: Option<i64>,
    patch: TicketPatch,
) -> AppResult<ticket::Model> {
    let reach = Reach::for_permission(p, Permission::TicketsWrite)?;
    check(p, &patch)?;
    if patch.customer_id.is_some() {
        return Err(AppError::bad_input("customerId", "a ticket's customer cannot change"));
    }
    let before = records::lock::<entity::ticket::Entity>(tx, &reach, id, expected).await?;
    let mut after = apply(before.clone(), &patch)?;
    after.updated_at = state.clock.now();
    let after = repo::crm::save::<entity::ticket::Entity>(tx.db(), &reach, &before, after).await?;
    tx.audit(event(reach.workspace_id(), "ticket.updated", id, changes(Some(&before), &after)));
    Ok(after)
}
