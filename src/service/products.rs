//! Products. Prices need products.pricing on top of products.write; stock moves only
//! through inventory adjustments (products.inventory). Cost price and supplier are
//! sensitive fields.

use crate::audit::Tx;
use crate::audit::{AuditEvent, record_changes};
use crate::auth::UserPrincipal;
use crate::authz::catalog::{Permission, SensitiveField};
use crate::authz::fields::require_write;
use crate::authz::scope::Reach;
use crate::domain::parse_name;
use crate::domain::{Patch, format_money, parse_money};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::service::records;
use crate::state::AppState;
use entity::product;
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Debug, Clone, Default)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub sku: Option<String>,
    pub active: Option<bool>,
    pub price: Option<String>,
    pub cost_price: Patch<String>,
    pub supplier: Patch<String>,
}

fn check_patch(p: &UserPrincipal, patch: &ProductPatch) -> AppResult<()> {
    let pricing = patch.price.is_some() || !matches!(patch.cost_price, Patch::Keep);
    if pricing && !p.grants.has(Permission::ProductsPricing) {
        return Err(AppError::Denied("changing prices needs products.pricing".into()));
    }
    let mut fields = Vec::new();
    if !matches!(patch.cost_price, Patch::Keep) {
        fields.push(SensitiveField::ProductCostPrice);
    }
    if !matches!(patch.supplier, Patch::Keep) {
        fields.push(SensitiveField::ProductSupplier);
    }
    require_write(&p.grants, &fields)
}

fn apply(mut m: product::Model, patch: ProductPatch) -> AppResult<product::Model> {
    if let Some(n) = patch.name {
        m.name = parse_name("name", &n, 200)?;
    }
    if let Some(sku) = patch.sku {
        let sku = sku.trim().to_uppercase();
        if sku.is_empty() || sku.len() > 64 || !sku.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(AppError::bad_input("sku", "must be 1 to 64 characters of A-Z, 0-9, '-' and '_'"));
        }
        m.sku = sku;
    }
    if let Some(a) = patch.active {
        m.active = a;
    }
    if let Some(price) = patch.price {
        m.price_cents = parse_money("price", &price)?;
    }
    m.cost_price_cents = match patch.cost_price {
        Patch::Keep => m.cost_price_cents,
        Patch::Clear => None,
        Patch::Set(v) => Some(parse_money("costPrice", &v)?),
    };
    m.supplier = match patch.supplier {
        Patch::Keep => m.supplier,
        Patch::Clear => None,
        Patch::Set(v) => Some(parse_name("supplier", &v, 200)?),
    };
    Ok(m)
}

fn changes(before: Option<&product::Model>, after: &product::Model) -> Value {
    let plain = |m: Option<&product::Model>| -> [Value; 6] {
        match m {
            None => Default::default(),
            Some(m) => [
                json!(m.name),
                json!(m.sku),
                json!(format_money(m.price_cents)),
                json!(m.stock),
                json!(m.active),
                json!(m.deleted_at.is_some()),
            ],
        }
    };
    let secret = |m: Option<&product::Model>| -> [Option<String>; 2] {
        match m {
            None => Default::default(),
            Some(m) => [m.cost_price_cents.map(format_money), m.supplier.clone()],
        }
    };
    let (pb, pa, sb, sa) = (plain(before), plain(Some(after)), secret(before), secret(Some(after)));
    let plain: Vec<_> = ["name", "sku", "price", "stock", "active", "deleted"]
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, pb[i].clone(), pa[i].clone()))
        .collect();
    let secret: Vec<_> = ["costPrice", "supplier"].iter().enumerate().map(|(i, n)| (*n, sb[i].clone(), sa[i].clone())).collect();
    record_changes(&plain, &secret)
}

fn event(ws: Uuid, action: &'static str, id: Uuid, changes: Value) -> AuditEvent {
    AuditEvent::Record { workspace_id: ws, action, module: "products", target_type: "product", id, changes }
}

fn sku_taken(e: sea_orm::DbErr) -> AppError {
    if repo::is_unique_violation(&e) { AppError::Conflict("a product with this SKU already exists".into()) } else { e.into() }
}

pub async fn create(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, patch: ProductPatch) -> AppResult<product::Model> {
    let reach = Reach::for_permission(p, Permission::ProductsWrite)?;
    check_patch(p, &patch)?;
    if patch.name.is_none() || patch.sku.is_none() {
        return Err(AppError::bad_input(if patch.name.is_none() { "name" } else { "sku" }, "is required"));
    }
    let now = state.clock.now();
    let at = reach.placement();
    let blank = crate::new_record!(product::Model {
        workspace_id: reach.workspace_id(),
        placed: at,
        now: now,
        name: String::new(),
        sku: String::new(),
        price_cents: 0,
        cost_price_cents: None,
        supplier: None,
        stock: 0,
        active: true,
    });
    let m = apply(blank, patch)?;
    let created = repo::crm::insert::<entity::product::Entity>(tx.db(), &reach, m).await.map_err(sku_taken)?;
    tx.audit(event(reach.workspace_id(), "product.created", created.id, changes(None, &created)));
    Ok(created)
}

pub async fn update(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    id: Uuid,
    expected: Option<i64>,
    patch: ProductPatch,
) -> AppResult<product::Model> {
    let reach = Reach::for_permission(p, Permission::ProductsWrite)?;
    check_patch(p, &patch)?;
    let before = records::lock::<entity::product::Entity>(tx, &reach, id, expected).await?;
    let mut after = apply(before.clone(), patch)?;
    after.updated_at = state.clock.now();
    let after = repo::crm::save::<entity::product::Entity>(tx.db(), &reach, &before, after).await.map_err(sku_taken)?;
    tx.audit(event(reach.workspace_id(), "product.updated", id, changes(Some(&before), &after)));
    Ok(after)
}

/// Adds `delta` (negative to take out) to the stock; stock never goes below zero.
pub async fn adjust_inventory(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    id: Uuid,
    expected: Option<i64>,
    delta: i32,
) -> AppResult<product::Model> {
    let reach = Reach::for_permission(p, Permission::ProductsInventory)?;
    let before = records::lock::<entity::product::Entity>(tx, &reach, id, expected).await?;
    let stock = before
        .stock
        .checked_add(delta)
        .filter(|s| *s >= 0)
        .ok_or_else(|| AppError::bad_input("delta", format!("would take stock below zero (it is {})", before.stock)))?;
    let mut after = before.clone();
    after.stock = stock;
    after.updated_at = state.clock.now();
    let after = repo::crm::save::<entity::product::Entity>(tx.db(), &reach, &before, after).await?;
    tx.audit(event(reach.workspace_id(), "product.inventory_adjusted", id, changes(Some(&before), &after)));
    Ok(after)
}

pub async fn delete(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, id: Uuid, expected: Option<i64>) -> AppResult<()> {
    let reach = Reach::for_permission(p, Permission::ProductsDelete)?;
    let before = records::lock::<entity::product::Entity>(tx, &reach, id, expected).await?;
    let mut after = before.clone();
    after.deleted_at = Some(state.clock.now());
    after.updated_at = state.clock.now();
    let after = repo::crm::save::<entity::product::Entity>(tx.db(), &reach, &before, after).await?;
    tx.audit(event(reach.workspace_id(), "product.deleted", id, changes(Some(&before), &after)));
    Ok(())
}
