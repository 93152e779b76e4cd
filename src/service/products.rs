//! Products. Prices need products.pricing on top of products.write; stock moves only
//! through inventory adjustments (products.inventory). Cost price and supplier are
//! sensitive fields.

use crate::audit::Tx;
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
use serde_json::json;
use uuid::Uuid;

#[derive(Debug, Clone, Default)]
pub struct ProductPatch {
    /// Only when creating (see `records::placement_for`).
    pub owner_id: Option<Uuid>,
    pub name: Option<String>,
    pub sku: Option<String>,
    pub active: Option<bool>,
    pub price: Option<String>,
    pub cost_price: Patch<String>,
    pub supplier: Patch<String>,
}

/// A change to an existing product: the owner is given only when creating.
fn only_on_create(patch: &ProductPatch) -> AppResult<()> {
    if patch.owner_id.is_some() {
        return Err(AppError::bad_input("ownerId", "is given only when creating"));
    }
    Ok(())
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

crate::record_module! {
    product::Entity, Products, "product", write: ProductsWrite, delete: ProductsDelete, export: None,
    |m| plain {
        "name" => json!(m.name),
        "sku" => json!(m.sku),
        "price" => json!(format_money(m.price_cents)),
        "stock" => json!(m.stock),
        "active" => json!(m.active),
    } secret {
        ProductCostPrice => m.cost_price_cents.map(format_money),
        ProductSupplier => m.supplier.clone(),
    }
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
    let at = records::placement_for(tx, &reach, patch.owner_id).await?;
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
    records::insert_as::<product::Entity>(tx, &reach, "product.created", apply(blank, patch)?, &[], sku_taken).await
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
    only_on_create(&patch)?;
    let before = records::lock::<product::Entity>(tx, &reach, id, expected).await?;
    let after = apply(before.clone(), patch)?;
    records::save_as::<product::Entity>(state, tx, &reach, "product.updated", &before, after, &[], sku_taken).await
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
    records::change::<product::Entity>(state, tx, p, Permission::ProductsInventory, "product.inventory_adjusted", id, expected, |mut m| {
        m.stock = m
            .stock
            .checked_add(delta)
            .filter(|s| *s >= 0)
            .ok_or_else(|| AppError::bad_input("delta", format!("would take stock below zero (it is {})", m.stock)))?;
        Ok(m)
    })
    .await
}

pub async fn delete(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, id: Uuid, expected: Option<i64>) -> AppResult<()> {
    records::delete::<product::Entity>(state, tx, p, id, expected).await
}

/// One change to many products, all or nothing (see `records::bulk_change`).
pub async fn bulk_update(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    ids: &[Uuid],
    patch: ProductPatch,
) -> AppResult<Vec<product::Model>> {
    check_patch(p, &patch)?;
    only_on_create(&patch)?;
    records::bulk_change::<product::Entity>(state, tx, p, Permission::ProductsWrite, "product.updated", ids, sku_taken, |m| {
        apply(m, patch.clone())
    })
    .await
}
