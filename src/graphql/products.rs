//! Products over GraphQL; rows become `Product` only through `Product::project`.

use super::audit::AuditEntry;
use super::context::state;
use super::context::user;
use super::convert::parse_id;
use super::convert::patch;
use super::convert::reveal;
use super::convert::{ExportPayload, parse_ids};
use super::paging::{ListInfo, ListOrder, Window, wants_total};
use crate::audit::Tx;
use crate::authz::catalog::{Permission, SensitiveField as F};
use crate::authz::eval::Grants;
use crate::authz::fields::{Protected, protect};
use crate::authz::scope::Reach;
use crate::domain::format_money;
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::repo::crm;
use crate::repo::seek::{Order, SortKey};
use crate::service::export::ExportFormat;
use crate::service::products::{self as svc, ProductPatch};
use crate::service::records;
use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Condition;

pub struct Product {
    id: uuid::Uuid,
    workspace_id: uuid::Uuid,
    owner_id: uuid::Uuid,
    name: String,
    sku: String,
    price: String,
    stock: i32,
    active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
    cost_price: Protected,
    supplier: Protected,
}

impl Product {
    pub fn project(m: entity::product::Model, g: &Grants) -> Self {
        Self {
            cost_price: protect(g, F::ProductCostPrice, m.cost_price_cents.map(format_money)),
            supplier: protect(g, F::ProductSupplier, m.supplier),
            id: m.id,
            workspace_id: m.workspace_id,
            owner_id: m.owner_id,
            name: m.name,
            sku: m.sku,
            price: format_money(m.price_cents),
            stock: m.stock,
            active: m.active,
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        }
    }
}

#[Object]
impl Product {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.name
    }
    async fn sku(&self) -> &str {
        &self.sku
    }
    /// Selling price, as a decimal string.
    async fn price(&self) -> &str {
        &self.price
    }
    /// Sensitive (masked: order of magnitude).
    async fn cost_price(&self, ctx: &Context<'_>) -> Option<String> {
        reveal(ctx, &self.cost_price)
    }
    /// Sensitive (masked: hidden).
    async fn supplier(&self, ctx: &Context<'_>) -> Option<String> {
        reveal(ctx, &self.supplier)
    }
    async fn stock(&self) -> i32 {
        self.stock
    }
    async fn active(&self) -> bool {
        self.active
    }
    async fn owner_id(&self) -> ID {
        ID(self.owner_id.to_string())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    /// Bumped by every change. Pass it back as `expectedVersion` so that a change made
    /// meanwhile by someone else is not overwritten: a stale one answers CONFLICT with
    /// `extensions.currentVersion`, and nothing is written.
    async fn version(&self) -> i64 {
        self.version
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
    /// This record's audit entries, newest first (sensitive values redacted).
    async fn history(&self, ctx: &Context<'_>) -> AppResult<Vec<AuditEntry>> {
        super::history::of(ctx, self.workspace_id, self.id).await
    }
}

#[derive(InputObject, Default)]
pub struct ProductFilter {
    /// Part of the name or SKU.
    pub search: Option<String>,
    pub active: Option<bool>,
}

#[derive(InputObject)]
pub struct ProductInput {
    /// Only when creating: the user the record is assigned to and placed with (your
    /// scope must cover them); by default, you.
    pub owner_id: Option<ID>,
    pub name: Option<String>,
    pub sku: Option<String>,
    pub active: Option<bool>,
    /// Needs products.pricing.
    pub price: Option<String>,
    /// Needs products.pricing and WRITE on product cost prices.
    pub cost_price: MaybeUndefined<String>,
    /// Needs WRITE on product suppliers.
    pub supplier: MaybeUndefined<String>,
}

impl ProductInput {
    fn into_service(self) -> AppResult<ProductPatch> {
        Ok(ProductPatch {
            owner_id: self.owner_id.as_ref().map(|o| parse_id("ownerId", o)).transpose()?,
            name: self.name,
            sku: self.sku,
            active: self.active,
            price: self.price,
            cost_price: patch(self.cost_price),
            supplier: patch(self.supplier),
        })
    }
}

#[derive(Default)]
pub struct ProductsQuery;

#[Object]
impl ProductsQuery {
    /// Products in your scope, by name.
    async fn products(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ProductFilter>,
        order_by: Option<ListOrder>,
    ) -> AppResult<Connection<String, Product, ListInfo, EmptyFields>> {
        let p = user(ctx)?;
        let reach = Reach::for_permission(p, Permission::ProductsRead)?;
        let w = Window::new(&p.grants, "products", ListOrder::or(order_by, Order::asc(SortKey::Column("name"))), first, after.as_deref())?;
        let f = filter.unwrap_or_default();
        let filter = repo::products::Filter { search: f.search, active: f.active };
        let db = &state(ctx)?.db;
        let total = if wants_total(ctx) { Some(repo::crm::tally(db, &reach, &filter).await?) } else { None };
        let rows = repo::crm::find(db, &reach, &filter, w.order(), w.after(), w.fetch()).await?;
        w.page(rows, total, crm::seek_of::<entity::product::Entity>, |m| Product::project(m, &p.grants))
    }

    async fn product(&self, ctx: &Context<'_>, id: ID) -> AppResult<Product> {
        let p = user(ctx)?;
        let reach = Reach::for_permission(p, Permission::ProductsRead)?;
        let m =
            repo::crm::get::<entity::product::Entity>(&state(ctx)?.db, &reach, parse_id("id", &id)?).await?.ok_or(AppError::NotFound)?;
        Ok(Product::project(m, &p.grants))
    }
}

#[derive(Default)]
pub struct ProductsMutation;

#[Object]
impl ProductsMutation {
    /// Applies one change to several products, all or nothing. Needs the bulkOperations
    /// restriction; at most maxRecordsPerRequest ids.
    async fn bulk_update_products(&self, ctx: &Context<'_>, ids: Vec<ID>, input: ProductInput) -> AppResult<Vec<Product>> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let rows = svc::bulk_update(state(ctx)?, &tx, p, &parse_ids(&ids)?, input.into_service()?).await?;
        Ok(rows.into_iter().map(|m| Product::project(m, &p.grants)).collect())
    }

    /// Deletes several products, all or nothing; returns how many.
    async fn bulk_delete_products(&self, ctx: &Context<'_>, ids: Vec<ID>) -> AppResult<i32> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let n = records::bulk_delete::<entity::product::Entity>(state(ctx)?, &tx, p, &parse_ids(&ids)?).await?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// Exports the products in your scope, sensitive fields as you may see them. Needs
    /// the dataExport restriction; audited.
    /// At most 10,000 rows in the answer; `download: true` answers with a file to fetch
    /// instead, which streams (see `ExportDownload`).
    async fn export_products(
        &self,
        ctx: &Context<'_>,
        format: ExportFormat,
        #[graphql(default)] download: bool,
    ) -> AppResult<ExportPayload> {
        super::convert::export::<entity::product::Entity>(ctx, format, download, Condition::all(), None).await
    }

    async fn create_product(&self, ctx: &Context<'_>, input: ProductInput) -> AppResult<Product> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        Ok(Product::project(svc::create(state(ctx)?, &tx, p, input.into_service()?).await?, &p.grants))
    }

    async fn update_product(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>, input: ProductInput) -> AppResult<Product> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        Ok(Product::project(
            svc::update(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version, input.into_service()?).await?,
            &p.grants,
        ))
    }

    /// Adds to (or, negative, takes from) the stock. Needs products.inventory.
    async fn adjust_inventory(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>, delta: i32) -> AppResult<Product> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        Ok(Product::project(svc::adjust_inventory(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version, delta).await?, &p.grants))
    }

    async fn delete_product(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>) -> AppResult<bool> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        svc::delete(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version).await?;
        Ok(true)
    }
}
