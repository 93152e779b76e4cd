//! Orders: written with lines priced from products the caller can read, for a customer
//! the caller can read; moved along draft -> processing -> fulfilled by orders.process,
//! cancelled by orders.cancel (before fulfilment), refunded by orders.refund (after).

use crate::audit::Tx;
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
use serde_json::json;
use std::collections::HashMap;
use uuid::Uuid;

pub struct LineInput {
    pub product_id: Uuid,
    pub quantity: i32,
}

pub struct OrderInput {
    pub customer_id: Option<Uuid>,
    /// Only when creating (see `records::placement_for`).
    pub owner_id: Option<Uuid>,
    pub lines: Option<Vec<LineInput>>,
    pub internal_notes: Patch<String>,
}

crate::record_module! {
    order::Entity, Orders, "order", write: OrdersWrite, delete: OrdersWrite, export: None,
    |m| plain {
        "status" => json!(m.status),
        "total" => json!(format_money(m.total_cents)),
        "customerId" => json!(m.customer_id.to_string()),
    } secret {
        OrderInternalNotes => m.internal_notes.clone(),
    }
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
        repo::crm::get_many::<entity::product::Entity>(tx.db(), &products, &ids).await?.into_iter().map(|m| (m.id, m)).collect();
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
    repo::crm::get::<entity::customer::Entity>(tx.db(), &customers, customer_id)
        .await?
        .ok_or_else(|| AppError::bad_input("customerId", "no such customer"))?;
    let (lines, total) = price_lines(tx, p, input.lines.as_deref().unwrap_or_default()).await?;
    let now = state.clock.now();
    let at = records::placement_for(tx, &reach, input.owner_id).await?;
    let m = crate::new_record!(order::Model {
        workspace_id: reach.workspace_id(),
        placed: at,
        now: now,
        customer_id,
        status: "draft".into(),
        total_cents: total,
        internal_notes: notes(&input.internal_notes, None)?,
    });
    let created =
        records::insert_as::<order::Entity>(tx, &reach, "order.created", m, &[("lines", json!(lines.len()))], AppError::from).await?;
    repo::orders::replace_lines(tx.db(), reach.workspace_id(), created.id, &lines).await?;
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
    if input.owner_id.is_some() {
        return Err(AppError::bad_input("ownerId", "is given only when creating"));
    }
    let before = records::lock::<entity::order::Entity>(tx, &reach, id, expected).await?;
    let mut after = before.clone();
    after.internal_notes = notes(&input.internal_notes, before.internal_notes.clone())?;
    let mut note = Vec::new();
    if let Some(lines) = &input.lines {
        if before.status != "draft" {
            return Err(AppError::Conflict("only draft orders can change their lines".into()));
        }
        let (priced, total) = price_lines(tx, p, lines).await?;
        repo::orders::replace_lines(tx.db(), reach.workspace_id(), id, &priced).await?;
        after.total_cents = total;
        note.push(("lines", json!(priced.len())));
    }
    records::save_as::<order::Entity>(state, tx, &reach, "order.updated", &before, after, &note, AppError::from).await
}

/// The order's life: draft -> processing -> fulfilled (orders.process, one step at a
/// time), cancelled before fulfilment, refunded after it; each step happens once.
pub const PROCESS: records::Transition = records::Transition {
    permission: Permission::OrdersProcess,
    action: "order.processed",
    steps: &[("draft", "processing"), ("processing", "fulfilled")],
};
pub const CANCEL: records::Transition = records::Transition {
    permission: Permission::OrdersCancel,
    action: "order.cancelled",
    steps: &[("draft", "cancelled"), ("processing", "cancelled")],
};
pub const REFUND: records::Transition =
    records::Transition { permission: Permission::OrdersRefund, action: "order.refunded", steps: &[("fulfilled", "refunded")] };

pub async fn transition(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    id: Uuid,
    expected: Option<i64>,
    t: &records::Transition,
) -> AppResult<order::Model> {
    records::transition::<order::Entity>(state, tx, p, id, expected, t, |m| &mut m.status, "an order").await
}
