//! Orders over GraphQL. Nested customers, lines and products are loaded for a whole
//! page at once (one query each, only when selected) and through the reader's own
//! reach: a customer or product out of the reader's scope is simply null.

use super::audit::AuditEntry;
use super::context::state;
use super::context::user;
use super::convert::ExportPayload;
use super::convert::parse_id;
use super::convert::patch;
use super::convert::reveal;
use super::customers::Customer;
use super::paging::{ListInfo, ListOrder, Window, wants_total};
use super::products::Product;
use crate::audit::Tx;
use crate::auth::UserPrincipal;
use crate::authz::catalog::{Permission, SensitiveField as F};
use crate::authz::fields::{Protected, protect};
use crate::authz::scope::Reach;
use crate::domain::format_money;
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::repo::crm;
use crate::repo::seek;
use crate::service::export::ExportFormat;
use crate::service::orders::{self as svc, LineInput, OrderInput as SvcInput};
use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Condition;
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
pub enum OrderStatus {
    Draft,
    Processing,
    Fulfilled,
    Cancelled,
    Refunded,
}

impl OrderStatus {
    fn parse(s: &str) -> Self {
        match s {
            "processing" => Self::Processing,
            "fulfilled" => Self::Fulfilled,
            "cancelled" => Self::Cancelled,
            "refunded" => Self::Refunded,
            _ => Self::Draft,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Processing => "processing",
            Self::Fulfilled => "fulfilled",
            Self::Cancelled => "cancelled",
            Self::Refunded => "refunded",
        }
    }
}

pub struct OrderLine {
    product_id: Uuid,
    quantity: i32,
    unit_price_cents: i64,
    product: Option<Product>,
}

#[Object]
impl OrderLine {
    async fn product_id(&self) -> ID {
        ID(self.product_id.to_string())
    }
    /// Null when the product is outside your scope.
    async fn product(&self) -> Option<&Product> {
        self.product.as_ref()
    }
    async fn quantity(&self) -> i32 {
        self.quantity
    }
    async fn unit_price(&self) -> String {
        format_money(self.unit_price_cents)
    }
    async fn line_total(&self) -> String {
        format_money(self.unit_price_cents.saturating_mul(i64::from(self.quantity)))
    }
}

pub struct Order {
    id: Uuid,
    workspace_id: Uuid,
    owner_id: Uuid,
    customer_id: Uuid,
    status: OrderStatus,
    total_cents: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
    internal_notes: Protected,
    customer: Option<Customer>,
    lines: Vec<OrderLine>,
}

#[Object]
impl Order {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }
    async fn status(&self) -> OrderStatus {
        self.status
    }
    async fn total(&self) -> String {
        format_money(self.total_cents)
    }
    async fn owner_id(&self) -> ID {
        ID(self.owner_id.to_string())
    }
    async fn customer_id(&self) -> ID {
        ID(self.customer_id.to_string())
    }
    /// Null when the customer is outside your scope.
    async fn customer(&self) -> Option<&Customer> {
        self.customer.as_ref()
    }
    async fn lines(&self) -> &[OrderLine] {
        &self.lines
    }
    /// Sensitive (masked: hidden).
    async fn internal_notes(&self, ctx: &Context<'_>) -> Option<String> {
        reveal(ctx, &self.internal_notes)
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
    async fn history(&self, ctx: &Context<'_>) -> AppResult<Vec<AuditEntry>> {
        super::history::of(ctx, self.workspace_id, self.id).await
    }
}

/// Builds the page's projections with at most three extra queries, whatever its size.
async fn project(
    db: &impl sea_orm::ConnectionTrait,
    p: &UserPrincipal,
    rows: Vec<entity::order::Model>,
    want_customer: bool,
    want_lines: bool,
) -> AppResult<Vec<Order>> {
    let mut customers: HashMap<Uuid, entity::customer::Model> = HashMap::new();
    if want_customer && let Ok(reach) = Reach::for_permission(p, Permission::CustomersRead) {
        let ids: Vec<Uuid> = rows.iter().map(|o| o.customer_id).collect();
        customers = repo::crm::get_many::<entity::customer::Entity>(db, &reach, &ids).await?.into_iter().map(|c| (c.id, c)).collect();
    }
    let mut lines: HashMap<Uuid, Vec<entity::order_line::Model>> = HashMap::new();
    let mut products: HashMap<Uuid, entity::product::Model> = HashMap::new();
    if want_lines {
        let ids: Vec<Uuid> = rows.iter().map(|o| o.id).collect();
        for l in repo::orders::lines_of(db, p.workspace_id, &ids).await? {
            lines.entry(l.order_id).or_default().push(l);
        }
        if let Ok(reach) = Reach::for_permission(p, Permission::ProductsRead) {
            let pids: Vec<Uuid> = lines.values().flatten().map(|l| l.product_id).collect();
            products = repo::crm::get_many::<entity::product::Entity>(db, &reach, &pids).await?.into_iter().map(|m| (m.id, m)).collect();
        }
    }
    Ok(rows
        .into_iter()
        .map(|o| Order {
            internal_notes: protect(&p.grants, F::OrderInternalNotes, o.internal_notes),
            customer: customers.get(&o.customer_id).cloned().map(|c| Customer::project(c, &p.grants)),
            lines: lines
                .remove(&o.id)
                .unwrap_or_default()
                .into_iter()
                .map(|l| OrderLine {
                    product: products.get(&l.product_id).cloned().map(|m| Product::project(m, &p.grants)),
                    product_id: l.product_id,
                    quantity: l.quantity,
                    unit_price_cents: l.unit_price_cents,
                })
                .collect(),
            id: o.id,
            workspace_id: o.workspace_id,
            owner_id: o.owner_id,
            customer_id: o.customer_id,
            status: OrderStatus::parse(&o.status),
            total_cents: o.total_cents,
            created_at: o.created_at,
            updated_at: o.updated_at,
            version: o.version,
        })
        .collect())
}

/// One order; `db` is the mutation's transaction when there is one (so the answer sees
/// what the mutation wrote), else the pool.
async fn project_one(
    ctx: &Context<'_>,
    db: &impl sea_orm::ConnectionTrait,
    p: &UserPrincipal,
    m: entity::order::Model,
) -> AppResult<Order> {
    let look = ctx.look_ahead();
    let mut v = project(db, p, vec![m], look.field("customer").exists(), look.field("lines").exists()).await?;
    v.pop().ok_or_else(|| AppError::internal("projection lost the order"))
}

#[derive(InputObject, Default)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub customer_id: Option<ID>,
}

#[derive(InputObject)]
pub struct OrderLineInput {
    pub product_id: ID,
    pub quantity: i32,
}

#[derive(InputObject)]
pub struct OrderInput {
    /// Required when creating; cannot change afterwards.
    pub customer_id: Option<ID>,
    /// Only when creating: the user the order is assigned to and placed with (your
    /// scope must cover them); by default, you.
    pub owner_id: Option<ID>,
    /// Replaces the lines (draft orders only). Prices come from the products.
    pub lines: Option<Vec<OrderLineInput>>,
    /// Needs WRITE on order internal notes; null clears.
    pub internal_notes: MaybeUndefined<String>,
}

impl OrderInput {
    fn into_service(self) -> AppResult<SvcInput> {
        Ok(SvcInput {
            customer_id: self.customer_id.as_ref().map(|c| parse_id("customerId", c)).transpose()?,
            owner_id: self.owner_id.as_ref().map(|o| parse_id("ownerId", o)).transpose()?,
            lines: self
                .lines
                .map(|ls| {
                    ls.iter()
                        .map(|l| Ok(LineInput { product_id: parse_id("lines.productId", &l.product_id)?, quantity: l.quantity }))
                        .collect::<AppResult<Vec<_>>>()
                })
                .transpose()?,
            internal_notes: patch(self.internal_notes),
        })
    }
}

#[derive(Default)]
pub struct OrdersQuery;

#[Object]
impl OrdersQuery {
    /// Orders in your scope, newest first.
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<OrderFilter>,
        order_by: Option<ListOrder>,
    ) -> AppResult<Connection<String, Order, ListInfo, EmptyFields>> {
        let p = user(ctx)?;
        let reach = Reach::for_permission(p, Permission::OrdersRead)?;
        let w = Window::new(&p.grants, "orders", ListOrder::or(order_by, seek::Order::NEWEST_FIRST), first, after.as_deref())?;
        let f = filter.unwrap_or_default();
        let filter = repo::orders::Filter {
            status: f.status.map(|s| s.as_str().to_owned()),
            customer_id: f.customer_id.as_ref().map(|c| parse_id("filter.customerId", c)).transpose()?,
        };
        let db = &state(ctx)?.db;
        let total = if wants_total(ctx) { Some(repo::crm::tally(db, &reach, &filter).await?) } else { None };
        let rows = repo::crm::find(db, &reach, &filter, w.order(), w.after(), w.fetch()).await?;
        let (rows, more) = w.split(rows);
        let at = rows.iter().map(|m| crm::seek_of::<entity::order::Entity>(m, w.order())).collect::<Result<Vec<_>, _>>()?;
        let node = ctx.look_ahead().field("edges").field("node");
        let projected = project(db, p, rows, node.field("customer").exists(), node.field("lines").exists()).await?;
        w.connection(at.into_iter().zip(projected).collect(), more, total)
    }

    async fn order(&self, ctx: &Context<'_>, id: ID) -> AppResult<Order> {
        let p = user(ctx)?;
        let reach = Reach::for_permission(p, Permission::OrdersRead)?;
        let db = &state(ctx)?.db;
        let m = repo::crm::get::<entity::order::Entity>(db, &reach, parse_id("id", &id)?).await?.ok_or(AppError::NotFound)?;
        project_one(ctx, db, p, m).await
    }
}

#[derive(Default)]
pub struct OrdersMutation;

#[Object]
impl OrdersMutation {
    /// Exports the orders in your scope (dataExport); audited.
    /// At most 10,000 rows in the answer; `download: true` answers with a file to fetch
    /// instead, which streams (see `ExportDownload`).
    async fn export_orders(&self, ctx: &Context<'_>, format: ExportFormat, #[graphql(default)] download: bool) -> AppResult<ExportPayload> {
        super::convert::export::<entity::order::Entity>(ctx, format, download, Condition::all(), None).await
    }

    /// Creates a draft order for a customer you can read, from products you can read.
    async fn create_order(&self, ctx: &Context<'_>, input: OrderInput) -> AppResult<Order> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let m = svc::create(state(ctx)?, &tx, p, input.into_service()?).await?;
        project_one(ctx, tx.db(), p, m).await
    }

    async fn update_order(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>, input: OrderInput) -> AppResult<Order> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let m = svc::update(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version, input.into_service()?).await?;
        project_one(ctx, tx.db(), p, m).await
    }

    /// draft -> processing -> fulfilled (orders.process).
    async fn process_order(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>) -> AppResult<Order> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let m = svc::transition(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version, &svc::PROCESS).await?;
        project_one(ctx, tx.db(), p, m).await
    }

    /// Cancels a draft or processing order (orders.cancel).
    async fn cancel_order(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>) -> AppResult<Order> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let m = svc::transition(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version, &svc::CANCEL).await?;
        project_one(ctx, tx.db(), p, m).await
    }

    /// Refunds a fulfilled order (orders.refund).
    async fn refund_order(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>) -> AppResult<Order> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let m = svc::transition(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version, &svc::REFUND).await?;
        project_one(ctx, tx.db(), p, m).await
    }
}
