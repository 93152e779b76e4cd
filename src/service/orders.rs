//! Orders: written with lines priced from products the caller can read, for a customer
//! the caller can read; moved along draft -> processing -> fulfilled by orders.process,
//! cancelled by orders.cancel (before fulfilment), refunded by orders.refund (after).

use crate::audit::Tx;
use crate::audit::{AuditEvent, record_changes};
use crate::auth::UserPrincipal;
use crate::authz::catalog::{Permission, SensitiveField};
use crate::authz::fields::require_write;
use crate::authz::scope::Reach;
use crate::domain::{Patch, format_money};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::service::records;
use crate::state::AppState;
use entity::order;
use serde_json::{Value, json};
use std::collections::HashMap;
use uuid::Uuid;

pub struct LineInput {
    pub product_id: Uuid,
    pub quantity: i32,
}

pub struct OrderInput {
    pub customer_id: Option<Uuid>,
    pub lines: Option<Vec<LineInput>>,
    pub internal_notes: Patch<String>,
}

fn changes(before: Option<&order::Model>, after: &order::Model, lines: Option<usize>) -> Value {
    let plain = |m: Option<&order::Model>| -> [Value; 3] {
        match m {
            None => Default::default(),
            Some(m) => [json!(m.status), json!(format_money(m.total_cents)), json!(m.customer_id.to_string())],
        }
    };
    let (pb, pa) = (plain(before), plain(Some(after)));
    let mut plain: Vec<_> = ["status", "total", "customerId"].iter().enumerate().map(|(i, n)| (*n, pb[i].clone(), pa[i].clone())).collect();
    if let Some(n) = lines {
        plain.push(("lines", Value::Null, json!(n)));
    }
    let secret = [("internalNotes", before.and_then(|b| b.internal_notes.clone()), after.internal_notes.clone())];
    record_changes(&plain, &secret)
}

fn event(ws: Uuid, action: &'static str, id: Uuid, changes: Value) -> AuditEvent {
    AuditEvent::Record { workspace_id: ws, action, module: "orders", target_type: "order", id, changes }
}

/// Prices the lines from products the caller can read; returns (product, qty, price) and the total.
async fn price_lines(tx: &Tx<'_>, p: &UserPrincipal, lines: &[LineInput]) -> AppResult<(Vec<(Uuid, i32, i64)>, i64)> {
    if lines.is_empty() || lines.len() > 100 {
        return Err(AppError::bad_input("lines", "give 1 to 100 lines"));
    }
    let products =
        Reach::for_permission(p, Permission::ProductsRead).map_err(|_| AppError::bad_input("lines", "you cannot read products"))?;
    let ids: Vec<Uuid> = lines.iter().map(|l| l.product_id).collect();
    let found: HashMap<Uuid, entity::product::Model> =
        repo::products::get_many(tx.db(), &products, &ids).await?.into_iter().map(|m| (m.id, m)).collect();
    let mut out = Vec::new();
    let mut total: i64 = 0;
    for l in lines {
        if !(1..=10_000).contains(&l.quantity) {
            return Err(AppError::bad_input("lines.quantity", "must be from 1 to 10000"));
        }
        let product = found
            .get(&l.product_id)
            .filter(|m| m.active)
            .ok_or_else(|| AppError::bad_input("lines.productId", "no such active product"))?;
        total = total.saturating_add(product.price_cents.saturating_mul(i64::from(l.quantity)));
        out.push((product.id, l.quantity, product.price_cents));
    }
    Ok((out, total))
}

fn notes(patch: &Patch<String>, current: Option<String>) -> AppResult<Option<String>> {
    Ok(match patch {
        Patch::Keep => current,
        Patch::Clear => None,
        Patch::Set(v) if v.chars().count() > 10_000 => {
            return Err(AppError::bad_input("internalNotes", "must be at most 10000 characters"));
        }
        Patch::Set(v) => Some(v.trim().to_owned()).filter(|v| !v.is_empty()),
    })
}

pub async fn create(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, input: OrderInput) -> AppResult<order::Model> {
    let reach = Reach::for_permission(p, Permission::OrdersWrite)?;
    if !matches!(input.internal_notes, Patch::Keep) {
        require_write(&p.grants, &[SensitiveField::OrderInternalNotes])?;
    }
    let customer_id = input.customer_id.ok_or_else(|| AppError::bad_input("customerId", "is required"))?;
    let customers =
        Reach::for_permission(p, Permission::CustomersRead).map_err(|_| AppError::bad_input("customerId", "no such customer"))?;
    repo::customers::get(tx.db(), &customers, customer_id).await?.ok_or_else(|| AppError::bad_input("customerId", "no such customer"))?;
    let (lines, total) = price_lines(tx, p, input.lines.as_deref().unwrap_or_default()).await?;
    let now = state.clock.now();
    let at = reach.placement();
    let m = crate::new_record!(order::Model {
        workspace_id: reach.workspace_id(),
        placed: at,
        now: now,
        customer_id,
        status: "draft".into(),
        total_cents: total,
        internal_notes: notes(&input.internal_notes, None)?,
    });
    let created = repo::crm::insert::<entity::order::Entity>(tx.db(), &reach, m).await?;
    repo::orders::replace_lines(tx.db(), reach.workspace_id(), created.id, &lines).await?;
    tx.audit(event(reach.workspace_id(), "order.created", created.id, changes(None, &created, Some(lines.len()))));
    Ok(created)
}

pub async fn update(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    id: Uuid,
    expected: Option<i64>,
    input: OrderInput,
) -> AppResult<order::Model> {
    let reach = Reach::for_permission(p, Permission::OrdersWrite)?;
    if !matches!(input.internal_notes, Patch::Keep) {
        require_write(&p.grants, &[SensitiveField::OrderInternalNotes])?;
    }
    if input.customer_id.is_some() {
        return Err(AppError::bad_input("customerId", "an order's customer cannot change"));
    }
    let before = records::lock::<entity::order::Entity>(tx, &reach, id, expected).await?;
    let mut after = before.clone();
    after.internal_notes = notes(&input.internal_notes, before.internal_notes.clone())?;
    let mut line_count = None;
    if let Some(lines) = &input.lines {
        if before.status != "draft" {
            return Err(AppError::Conflict("only draft orders can change their lines".into()));
        }
        let (priced, total) = price_lines(tx, p, lines).await?;
        repo::orders::replace_lines(tx.db(), reach.workspace_id(), id, &priced).await?;
        after.total_cents = total;
        line_count = Some(priced.len());
    }
    after.updated_at = state.clock.now();
    let after = repo::crm::save::<entity::order::Entity>(tx.db(), &reach, &before, after).await?;
    tx.audit(event(reach.workspace_id(), "order.updated", id, changes(Some(&before), &after, line_count)));
    Ok(after)
}

#[derive(Clone, Copy)]
pub enum Transition {
    Process,
    Cancel,
    Refund,
}

pub async fn transition(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    id: Uuid,
    expected: Option<i64>,
    t: Transition,
) -> AppResult<order::Model> {
    let (permission, action) = match t {
        Transition::Process => (Permission::OrdersProcess, "order.processed"),
        Transition::Cancel => (Permission::OrdersCancel, "order.cancelled"),
        Transition::Refund => (Permission::OrdersRefund, "order.refunded"),
    };
    let reach = Reach::for_permission(p, permission)?;
    let before = records::lock::<entity::order::Entity>(tx, &reach, id, expected).await?;
    let next = match (t, before.status.as_str()) {
        (Transition::Process, "draft") => "processing",
        (Transition::Process, "processing") => "fulfilled",
        (Transition::Cancel, "draft" | "processing") => "cancelled",
        (Transition::Refund, "fulfilled") => "refunded",
        (_, status) => return Err(AppError::Conflict(format!("not possible for an order that is {status}"))),
    };
    let mut after = before.clone();
    after.status = next.into();
    after.updated_at = state.clock.now();
    let after = repo::crm::save::<entity::order::Entity>(tx.db(), &reach, &before, after).await?;
    tx.audit(event(reach.workspace_id(), action, id, changes(Some(&before), &after, None)));
    Ok(after)
}
