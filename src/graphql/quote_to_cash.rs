//! The quote-to-cash records over GraphQL: quotes, the jobs that carry them out, and
//! invoices. Rows become output types only through their `project` functions.

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
use crate::repo::seek::Order;
use crate::service::export::ExportFormat;
use crate::service::quote_to_cash::{self as svc, InvoicePatch, JobPatch, QuotePatch};
use crate::service::records;
use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Condition;

fn id(u: uuid::Uuid) -> ID {
    ID(u.to_string())
}

async fn history(ctx: &Context<'_>, workspace_id: uuid::Uuid, _module: &str, target: uuid::Uuid) -> AppResult<Vec<AuditEntry>> {
    super::history::of(ctx, workspace_id, target).await
}

// ---- quotes ----

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
pub enum QuoteStatus {
    Draft,
    Sent,
    Accepted,
    Rejected,
}

fn quote_status(s: QuoteStatus) -> &'static str {
    match s {
        QuoteStatus::Draft => "draft",
        QuoteStatus::Sent => "sent",
        QuoteStatus::Accepted => "accepted",
        QuoteStatus::Rejected => "rejected",
    }
}

pub struct Quote(entity::quote::Model);

#[Object]
impl Quote {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn amount(&self) -> String {
        format_money(self.0.amount_cents)
    }
    async fn status(&self) -> QuoteStatus {
        match self.0.status.as_str() {
            "sent" => QuoteStatus::Sent,
            "accepted" => QuoteStatus::Accepted,
            "rejected" => QuoteStatus::Rejected,
            _ => QuoteStatus::Draft,
        }
    }
    async fn customer_id(&self) -> ID {
        id(self.0.customer_id)
    }
    async fn owner_id(&self) -> ID {
        id(self.0.owner_id)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Bumped by every change. Pass it back as `expectedVersion` so that a change made
    /// meanwhile by someone else is not overwritten: a stale one answers CONFLICT with
    /// `extensions.currentVersion`, and nothing is written.
    async fn version(&self) -> i64 {
        self.0.version
    }
    async fn history(&self, ctx: &Context<'_>) -> AppResult<Vec<AuditEntry>> {
        history(ctx, self.0.workspace_id, "quotes", self.0.id).await
    }
}

#[derive(InputObject)]
pub struct QuoteInput {
    /// Only when creating; a customer you can read.
    pub customer_id: Option<ID>,
    /// Only when creating: the user the record is assigned to and placed with (your
    /// scope must cover them); by default, you.
    pub owner_id: Option<ID>,
    pub title: Option<String>,
    pub amount: Option<String>,
    pub status: Option<QuoteStatus>,
}

impl QuoteInput {
    fn into_service(self) -> AppResult<QuotePatch> {
        Ok(QuotePatch {
            customer_id: self.customer_id.as_ref().map(|c| parse_id("customerId", c)).transpose()?,
            owner_id: self.owner_id.as_ref().map(|o| parse_id("ownerId", o)).transpose()?,
            title: self.title,
            amount: self.amount,
            status: self.status.map(|s| quote_status(s).to_owned()),
        })
    }
}

// ---- jobs ----

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
pub enum JobStatus {
    Scheduled,
    InProgress,
    Done,
}

fn job_status(s: JobStatus) -> &'static str {
    match s {
        JobStatus::Scheduled => "scheduled",
        JobStatus::InProgress => "in_progress",
        JobStatus::Done => "done",
    }
}

pub struct Job(entity::job::Model);

#[Object]
impl Job {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn status(&self) -> JobStatus {
        match self.0.status.as_str() {
            "in_progress" => JobStatus::InProgress,
            "done" => JobStatus::Done,
            _ => JobStatus::Scheduled,
        }
    }
    async fn scheduled_for(&self) -> Option<DateTime<Utc>> {
        self.0.scheduled_for
    }
    async fn notes(&self) -> Option<&str> {
        self.0.notes.as_deref()
    }
    async fn customer_id(&self) -> Option<ID> {
        self.0.customer_id.map(id)
    }
    async fn owner_id(&self) -> ID {
        id(self.0.owner_id)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Bumped by every change. Pass it back as `expectedVersion` so that a change made
    /// meanwhile by someone else is not overwritten: a stale one answers CONFLICT with
    /// `extensions.currentVersion`, and nothing is written.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// The job log: every change to this job, newest first.
    async fn log(&self, ctx: &Context<'_>) -> AppResult<Vec<AuditEntry>> {
        history(ctx, self.0.workspace_id, "jobs", self.0.id).await
    }
}

#[derive(InputObject)]
pub struct JobInput {
    /// Only when creating; a customer you can read.
    pub customer_id: Option<ID>,
    /// Only when creating: the user the record is assigned to and placed with (your
    /// scope must cover them); by default, you.
    pub owner_id: Option<ID>,
    pub title: Option<String>,
    pub status: Option<JobStatus>,
    pub scheduled_for: MaybeUndefined<DateTime<Utc>>,
    pub notes: MaybeUndefined<String>,
}

impl JobInput {
    fn into_service(self) -> AppResult<JobPatch> {
        Ok(JobPatch {
            customer_id: self.customer_id.as_ref().map(|c| parse_id("customerId", c)).transpose()?,
            owner_id: self.owner_id.as_ref().map(|o| parse_id("ownerId", o)).transpose()?,
            title: self.title,
            status: self.status.map(|s| job_status(s).to_owned()),
            scheduled_for: patch(self.scheduled_for),
            notes: patch(self.notes),
        })
    }
}

// ---- invoices ----

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
pub enum InvoiceStatus {
    Draft,
    Sent,
    Paid,
    Void,
}

fn invoice_status(s: InvoiceStatus) -> &'static str {
    match s {
        InvoiceStatus::Draft => "draft",
        InvoiceStatus::Sent => "sent",
        InvoiceStatus::Paid => "paid",
        InvoiceStatus::Void => "void",
    }
}

pub struct Invoice {
    m: entity::invoice::Model,
    bank_details: Protected,
}

impl Invoice {
    pub fn project(mut m: entity::invoice::Model, g: &Grants) -> Self {
        let bank_details = protect(g, F::InvoiceBankDetails, m.bank_details.take());
        Self { m, bank_details }
    }
}

#[Object]
impl Invoice {
    async fn id(&self) -> ID {
        id(self.m.id)
    }
    async fn number(&self) -> &str {
        &self.m.number
    }
    async fn amount(&self) -> String {
        format_money(self.m.amount_cents)
    }
    async fn status(&self) -> InvoiceStatus {
        match self.m.status.as_str() {
            "sent" => InvoiceStatus::Sent,
            "paid" => InvoiceStatus::Paid,
            "void" => InvoiceStatus::Void,
            _ => InvoiceStatus::Draft,
        }
    }
    async fn due_at(&self) -> Option<DateTime<Utc>> {
        self.m.due_at
    }
    /// Sensitive (masked: last 4).
    async fn bank_details(&self, ctx: &Context<'_>) -> Option<String> {
        reveal(ctx, &self.bank_details)
    }
    async fn customer_id(&self) -> ID {
        id(self.m.customer_id)
    }
    async fn owner_id(&self) -> ID {
        id(self.m.owner_id)
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
    async fn history(&self, ctx: &Context<'_>) -> AppResult<Vec<AuditEntry>> {
        history(ctx, self.m.workspace_id, "invoices", self.m.id).await
    }
}

#[derive(InputObject)]
pub struct InvoiceInput {
    /// Only when creating; a customer you can read.
    pub customer_id: Option<ID>,
    /// Only when creating: the user the record is assigned to and placed with (your
    /// scope must cover them); by default, you.
    pub owner_id: Option<ID>,
    /// Unique in the workspace.
    pub number: Option<String>,
    pub amount: Option<String>,
    pub status: Option<InvoiceStatus>,
    pub due_at: MaybeUndefined<DateTime<Utc>>,
    /// Needs WRITE on invoice bank details.
    pub bank_details: MaybeUndefined<String>,
}

impl InvoiceInput {
    fn into_service(self) -> AppResult<InvoicePatch> {
        Ok(InvoicePatch {
            customer_id: self.customer_id.as_ref().map(|c| parse_id("customerId", c)).transpose()?,
            owner_id: self.owner_id.as_ref().map(|o| parse_id("ownerId", o)).transpose()?,
            number: self.number,
            amount: self.amount,
            status: self.status.map(|s| invoice_status(s).to_owned()),
            due_at: patch(self.due_at),
            bank_details: patch(self.bank_details),
        })
    }
}

#[derive(InputObject, Default)]
pub struct WorkFilter {
    /// A customer's records only.
    pub customer_id: Option<ID>,
}

fn customer_filter(f: Option<WorkFilter>) -> AppResult<Option<uuid::Uuid>> {
    f.and_then(|f| f.customer_id).as_ref().map(|c| parse_id("filter.customerId", c)).transpose()
}

#[derive(Default)]
pub struct QuoteToCashQuery;

#[Object]
impl QuoteToCashQuery {
    /// Quotes in your scope, newest first.
    async fn quotes(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<WorkFilter>,
        order_by: Option<ListOrder>,
    ) -> AppResult<Connection<String, Quote, ListInfo, EmptyFields>> {
        let p = user(ctx)?;
        let reach = Reach::for_permission(p, Permission::QuotesRead)?;
        let w = Window::new(&p.grants, "quotes", ListOrder::or(order_by, Order::NEWEST_FIRST), first, after.as_deref())?;
        let f = repo::quotes::Filter { status: None, customer_id: customer_filter(filter)? };
        let db = &state(ctx)?.db;
        let total = if wants_total(ctx) { Some(repo::crm::tally(db, &reach, &f).await?) } else { None };
        let rows = repo::crm::find(db, &reach, &f, w.order(), w.after(), w.fetch()).await?;
        w.page(rows, total, crm::seek_of::<entity::quote::Entity>, Quote)
    }

    async fn quote(&self, ctx: &Context<'_>, id: ID) -> AppResult<Quote> {
        let p = user(ctx)?;
        let reach = Reach::for_permission(p, Permission::QuotesRead)?;
        let m = repo::crm::get::<entity::quote::Entity>(&state(ctx)?.db, &reach, parse_id("id", &id)?).await?.ok_or(AppError::NotFound)?;
        Ok(Quote(m))
    }

    /// Jobs in your scope, newest first.
    async fn jobs(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<WorkFilter>,
        order_by: Option<ListOrder>,
    ) -> AppResult<Connection<String, Job, ListInfo, EmptyFields>> {
        let p = user(ctx)?;
        let reach = Reach::for_permission(p, Permission::JobsRead)?;
        let w = Window::new(&p.grants, "jobs", ListOrder::or(order_by, Order::NEWEST_FIRST), first, after.as_deref())?;
        let f = repo::jobs::Filter { status: None, customer_id: customer_filter(filter)? };
        let db = &state(ctx)?.db;
        let total = if wants_total(ctx) { Some(repo::crm::tally(db, &reach, &f).await?) } else { None };
        let rows = repo::crm::find(db, &reach, &f, w.order(), w.after(), w.fetch()).await?;
        w.page(rows, total, crm::seek_of::<entity::job::Entity>, Job)
    }

    async fn job(&self, ctx: &Context<'_>, id: ID) -> AppResult<Job> {
        let p = user(ctx)?;
        let reach = Reach::for_permission(p, Permission::JobsRead)?;
        let m = repo::crm::get::<entity::job::Entity>(&state(ctx)?.db, &reach, parse_id("id", &id)?).await?.ok_or(AppError::NotFound)?;
        Ok(Job(m))
    }

    /// Invoices in your scope, newest first.
    async fn invoices(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<WorkFilter>,
        order_by: Option<ListOrder>,
    ) -> AppResult<Connection<String, Invoice, ListInfo, EmptyFields>> {
        let p = user(ctx)?;
        let reach = Reach::for_permission(p, Permission::InvoicesRead)?;
        let w = Window::new(&p.grants, "invoices", ListOrder::or(order_by, Order::NEWEST_FIRST), first, after.as_deref())?;
        let f = repo::invoices::Filter { status: None, customer_id: customer_filter(filter)? };
        let db = &state(ctx)?.db;
        let total = if wants_total(ctx) { Some(repo::crm::tally(db, &reach, &f).await?) } else { None };
        let rows = repo::crm::find(db, &reach, &f, w.order(), w.after(), w.fetch()).await?;
        w.page(rows, total, crm::seek_of::<entity::invoice::Entity>, |m| Invoice::project(m, &p.grants))
    }

    async fn invoice(&self, ctx: &Context<'_>, id: ID) -> AppResult<Invoice> {
        let p = user(ctx)?;
        let reach = Reach::for_permission(p, Permission::InvoicesRead)?;
        let m =
            repo::crm::get::<entity::invoice::Entity>(&state(ctx)?.db, &reach, parse_id("id", &id)?).await?.ok_or(AppError::NotFound)?;
        Ok(Invoice::project(m, &p.grants))
    }
}

#[derive(Default)]
pub struct QuoteToCashMutation;

#[Object]
impl QuoteToCashMutation {
    /// Applies one change to several quotes, all or nothing (bulkOperations).
    async fn bulk_update_quotes(&self, ctx: &Context<'_>, ids: Vec<ID>, input: QuoteInput) -> AppResult<Vec<Quote>> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let rows = svc::bulk_update_quotes(state(ctx)?, &tx, p, &parse_ids(&ids)?, input.into_service()?).await?;
        Ok(rows.into_iter().map(Quote).collect())
    }

    /// Deletes several quotes, all or nothing; returns how many.
    async fn bulk_delete_quotes(&self, ctx: &Context<'_>, ids: Vec<ID>) -> AppResult<i32> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let n = records::bulk_delete::<entity::quote::Entity>(state(ctx)?, &tx, p, &parse_ids(&ids)?).await?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// Exports the quotes in your scope (dataExport); audited.
    /// At most 10,000 rows in the answer; `download: true` answers with a file to fetch
    /// instead, which streams (see `ExportDownload`).
    async fn export_quotes(&self, ctx: &Context<'_>, format: ExportFormat, #[graphql(default)] download: bool) -> AppResult<ExportPayload> {
        super::convert::export::<entity::quote::Entity>(ctx, format, download, Condition::all(), None).await
    }

    /// Applies one change to several jobs, all or nothing (bulkOperations).
    async fn bulk_update_jobs(&self, ctx: &Context<'_>, ids: Vec<ID>, input: JobInput) -> AppResult<Vec<Job>> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let rows = svc::bulk_update_jobs(state(ctx)?, &tx, p, &parse_ids(&ids)?, input.into_service()?).await?;
        Ok(rows.into_iter().map(Job).collect())
    }

    /// Deletes several jobs, all or nothing; returns how many.
    async fn bulk_delete_jobs(&self, ctx: &Context<'_>, ids: Vec<ID>) -> AppResult<i32> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let n = records::bulk_delete::<entity::job::Entity>(state(ctx)?, &tx, p, &parse_ids(&ids)?).await?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// Exports the jobs in your scope (dataExport); audited.
    /// At most 10,000 rows in the answer; `download: true` answers with a file to fetch
    /// instead, which streams (see `ExportDownload`).
    async fn export_jobs(&self, ctx: &Context<'_>, format: ExportFormat, #[graphql(default)] download: bool) -> AppResult<ExportPayload> {
        super::convert::export::<entity::job::Entity>(ctx, format, download, Condition::all(), None).await
    }

    /// Applies one change to several invoices, all or nothing (bulkOperations).
    async fn bulk_update_invoices(&self, ctx: &Context<'_>, ids: Vec<ID>, input: InvoiceInput) -> AppResult<Vec<Invoice>> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let rows = svc::bulk_update_invoices(state(ctx)?, &tx, p, &parse_ids(&ids)?, input.into_service()?).await?;
        Ok(rows.into_iter().map(|m| Invoice::project(m, &p.grants)).collect())
    }

    /// Deletes several invoices, all or nothing; returns how many.
    async fn bulk_delete_invoices(&self, ctx: &Context<'_>, ids: Vec<ID>) -> AppResult<i32> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let n = records::bulk_delete::<entity::invoice::Entity>(state(ctx)?, &tx, p, &parse_ids(&ids)?).await?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// Exports the invoices in your scope, bank details as you may see them
    /// (dataExport); audited.
    /// At most 10,000 rows in the answer; `download: true` answers with a file to fetch
    /// instead, which streams (see `ExportDownload`).
    async fn export_invoices(
        &self,
        ctx: &Context<'_>,
        format: ExportFormat,
        #[graphql(default)] download: bool,
    ) -> AppResult<ExportPayload> {
        super::convert::export::<entity::invoice::Entity>(ctx, format, download, Condition::all(), None).await
    }

    async fn create_quote(&self, ctx: &Context<'_>, input: QuoteInput) -> AppResult<Quote> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        Ok(Quote(svc::create_quote(state(ctx)?, &tx, p, input.into_service()?).await?))
    }

    async fn update_quote(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>, input: QuoteInput) -> AppResult<Quote> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        Ok(Quote(svc::update_quote(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version, input.into_service()?).await?))
    }

    async fn create_job(&self, ctx: &Context<'_>, input: JobInput) -> AppResult<Job> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        Ok(Job(svc::create_job(state(ctx)?, &tx, p, input.into_service()?).await?))
    }

    async fn update_job(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>, input: JobInput) -> AppResult<Job> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        Ok(Job(svc::update_job(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version, input.into_service()?).await?))
    }

    async fn create_invoice(&self, ctx: &Context<'_>, input: InvoiceInput) -> AppResult<Invoice> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        Ok(Invoice::project(svc::create_invoice(state(ctx)?, &tx, p, input.into_service()?).await?, &p.grants))
    }

    /// Soft-deletes a quote (quotes.write).
    async fn delete_quote(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>) -> AppResult<bool> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        crate::service::records::delete::<entity::quote::Entity>(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version).await?;
        Ok(true)
    }

    /// Soft-deletes a job (jobs.write).
    async fn delete_job(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>) -> AppResult<bool> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        crate::service::records::delete::<entity::job::Entity>(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version).await?;
        Ok(true)
    }

    /// Soft-deletes an invoice (invoices.write).
    async fn delete_invoice(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>) -> AppResult<bool> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        crate::service::records::delete::<entity::invoice::Entity>(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version).await?;
        Ok(true)
    }

    async fn update_invoice(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>, input: InvoiceInput) -> AppResult<Invoice> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        Ok(Invoice::project(
            svc::update_invoice(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version, input.into_service()?).await?,
            &p.grants,
        ))
    }
}
