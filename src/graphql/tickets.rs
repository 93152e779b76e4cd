//! Tickets over GraphQL; rows become `Ticket` only through `Ticket::project`.

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
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::repo::crm;
use crate::repo::seek::Order;
use crate::service::export::ExportFormat;
use crate::service::records;
use crate::service::tickets::{self as svc, TicketPatch};
use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Condition;

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
pub enum TicketStatus {
    Open,
    Pending,
    Closed,
}

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
pub enum TicketPriority {
    Low,
    Normal,
    High,
    Urgent,
}

fn status_str(s: TicketStatus) -> &'static str {
    match s {
        TicketStatus::Open => "open",
        TicketStatus::Pending => "pending",
        TicketStatus::Closed => "closed",
    }
}

fn priority_str(p: TicketPriority) -> &'static str {
    match p {
        TicketPriority::Low => "low",
        TicketPriority::Normal => "normal",
        TicketPriority::High => "high",
        TicketPriority::Urgent => "urgent",
    }
}

pub struct Ticket {
    m: entity::ticket::Model,
    internal_notes: Protected,
}

impl Ticket {
    pub fn project(mut m: entity::ticket::Model, g: &Grants) -> Self {
        let internal_notes = protect(g, F::TicketInternalNotes, m.internal_notes.take());
        Self { m, internal_notes }
    }
}

#[Object]
impl Ticket {
    async fn id(&self) -> ID {
        ID(self.m.id.to_string())
    }
    async fn subject(&self) -> &str {
        &self.m.subject
    }
    async fn status(&self) -> TicketStatus {
        match self.m.status.as_str() {
            "pending" => TicketStatus::Pending,
            "closed" => TicketStatus::Closed,
            _ => TicketStatus::Open,
        }
    }
    async fn priority(&self) -> TicketPriority {
        match self.m.priority.as_str() {
            "low" => TicketPriority::Low,
            "high" => TicketPriority::High,
            "urgent" => TicketPriority::Urgent,
            _ => TicketPriority::Normal,
        }
    }
    async fn description(&self) -> Option<&str> {
        self.m.description.as_deref()
    }
    /// Sensitive (masked: hidden).
    async fn internal_notes(&self, ctx: &Context<'_>) -> Option<String> {
        reveal(ctx, &self.internal_notes)
    }
    async fn customer_id(&self) -> Option<ID> {
        self.m.customer_id.map(|c| ID(c.to_string()))
    }
    async fn owner_id(&self) -> ID {
        ID(self.m.owner_id.to_string())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.m.created_at
    }
    /// Bumped by every change. Pass it back as `expectedVersion` so that a change made
    /// meanwhile by someone else is not overwritten: a stale one answers CONFLICT with
    /// `extensions.currentVersion`, and nothing is written.
    async fn version(&self) -> i64 {
        self.m.version
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.m.updated_at
    }
    async fn history(&self, ctx: &Context<'_>) -> AppResult<Vec<AuditEntry>> {
        super::history::of(ctx, self.m.workspace_id, self.m.id).await
    }
}

#[derive(InputObject, Default)]
pub struct TicketFilter {
    pub status: Option<TicketStatus>,
    pub priority: Option<TicketPriority>,
    pub customer_id: Option<ID>,
}

#[derive(InputObject)]
pub struct TicketInput {
    /// Only when creating; a customer you can read.
    pub customer_id: Option<ID>,
    /// Only when creating: the user the record is assigned to and placed with (your
    /// scope must cover them); by default, you.
    pub owner_id: Option<ID>,
    pub subject: Option<String>,
    pub status: Option<TicketStatus>,
    pub priority: Option<TicketPriority>,
    pub description: MaybeUndefined<String>,
    /// Needs WRITE on ticket internal notes.
    pub internal_notes: MaybeUndefined<String>,
}

impl TicketInput {
    fn into_service(self) -> AppResult<TicketPatch> {
        Ok(TicketPatch {
            customer_id: self.customer_id.as_ref().map(|c| parse_id("customerId", c)).transpose()?,
            owner_id: self.owner_id.as_ref().map(|o| parse_id("ownerId", o)).transpose()?,
            subject: self.subject,
            status: self.status.map(|s| status_str(s).to_owned()),
            priority: self.priority.map(|p| priority_str(p).to_owned()),
            description: patch(self.description),
            internal_notes: patch(self.internal_notes),
        })
    }
}

#[derive(Default)]
pub struct TicketsQuery;

#[Object]
impl TicketsQuery {
    /// Tickets in your scope, newest first.
    async fn tickets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<TicketFilter>,
        order_by: Option<ListOrder>,
    ) -> AppResult<Connection<String, Ticket, ListInfo, EmptyFields>> {
        let p = user(ctx)?;
        let reach = Reach::for_permission(p, Permission::TicketsRead)?;
        let w = Window::new(&p.grants, "tickets", ListOrder::or(order_by, Order::NEWEST_FIRST), first, after.as_deref())?;
        let f = filter.unwrap_or_default();
        let filter = repo::tickets::Filter {
            status: f.status.map(|s| status_str(s).to_owned()),
            priority: f.priority.map(|p| priority_str(p).to_owned()),
            customer_id: f.customer_id.as_ref().map(|c| parse_id("filter.customerId", c)).transpose()?,
        };
        let db = &state(ctx)?.db;
        let total = if wants_total(ctx) { Some(repo::crm::tally(db, &reach, &filter).await?) } else { None };
        let rows = repo::crm::find(db, &reach, &filter, w.order(), w.after(), w.fetch()).await?;
        w.page(rows, total, crm::seek_of::<entity::ticket::Entity>, |m| Ticket::project(m, &p.grants))
    }

    async fn ticket(&self, ctx: &Context<'_>, id: ID) -> AppResult<Ticket> {
        let p = user(ctx)?;
        let reach = Reach::for_permission(p, Permission::TicketsRead)?;
        let m = repo::crm::get::<entity::ticket::Entity>(&state(ctx)?.db, &reach, parse_id("id", &id)?).await?.ok_or(AppError::NotFound)?;
        Ok(Ticket::project(m, &p.grants))
    }
}

#[derive(Default)]
pub struct TicketsMutation;

#[Object]
impl TicketsMutation {
    /// Applies one change to several tickets, all or nothing (bulkOperations).
    async fn bulk_update_tickets(&self, ctx: &Context<'_>, ids: Vec<ID>, input: TicketInput) -> AppResult<Vec<Ticket>> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let rows = svc::bulk_update(state(ctx)?, &tx, p, &parse_ids(&ids)?, input.into_service()?).await?;
        Ok(rows.into_iter().map(|m| Ticket::project(m, &p.grants)).collect())
    }

    /// Deletes several tickets, all or nothing; returns how many.
    async fn bulk_delete_tickets(&self, ctx: &Context<'_>, ids: Vec<ID>) -> AppResult<i32> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let n = records::bulk_delete::<entity::ticket::Entity>(state(ctx)?, &tx, p, &parse_ids(&ids)?).await?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// Exports the tickets in your scope (dataExport); audited.
    /// At most 10,000 rows in the answer; `download: true` answers with a file to fetch
    /// instead, which streams (see `ExportDownload`).
    async fn export_tickets(
        &self,
        ctx: &Context<'_>,
        format: ExportFormat,
        #[graphql(default)] download: bool,
    ) -> AppResult<ExportPayload> {
        super::convert::export::<entity::ticket::Entity>(ctx, format, download, Condition::all(), None).await
    }

    async fn create_ticket(&self, ctx: &Context<'_>, input: TicketInput) -> AppResult<Ticket> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        Ok(Ticket::project(svc::create(state(ctx)?, &tx, p, input.into_service()?).await?, &p.grants))
    }

    /// Soft-deletes a ticket (tickets.write).
    async fn delete_ticket(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>) -> AppResult<bool> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        crate::service::records::delete::<entity::ticket::Entity>(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version).await?;
        Ok(true)
    }

    async fn update_ticket(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>, input: TicketInput) -> AppResult<Ticket> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        Ok(Ticket::project(
            svc::update(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version, input.into_service()?).await?,
            &p.grants,
        ))
    }
}
