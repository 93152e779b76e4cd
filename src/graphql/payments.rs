//! Payments over GraphQL; rows become `Payment` only through `Payment::project`.

use super::audit::AuditEntry;
use super::context::state;
use super::context::user;
use super::convert::ExportPayload;
use super::convert::parse_id;
use super::convert::reveal;
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
use crate::service::payments::{self as svc, NewPayment};
use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, Enum, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Condition;

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
pub enum PaymentStatus {
    Processed,
    Reconciled,
    Refunded,
}

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
pub enum PaymentMethod {
    Card,
    Transfer,
    Cash,
}

pub struct Payment {
    m: entity::payment::Model,
    card_last4: Protected,
    iban: Protected,
    payer_email: Protected,
}

impl Payment {
    pub fn project(mut m: entity::payment::Model, g: &Grants) -> Self {
        Self {
            card_last4: protect(g, F::PaymentCardLast4, m.card_last4.take()),
            iban: protect(g, F::PaymentIban, m.iban.take()),
            payer_email: protect(g, F::PaymentPayerEmail, m.payer_email.take()),
            m,
        }
    }
}

#[Object]
impl Payment {
    async fn id(&self) -> ID {
        ID(self.m.id.to_string())
    }
    async fn amount(&self) -> String {
        format_money(self.m.amount_cents)
    }
    async fn method(&self) -> PaymentMethod {
        match self.m.method.as_str() {
            "transfer" => PaymentMethod::Transfer,
            "cash" => PaymentMethod::Cash,
            _ => PaymentMethod::Card,
        }
    }
    async fn status(&self) -> PaymentStatus {
        match self.m.status.as_str() {
            "reconciled" => PaymentStatus::Reconciled,
            "refunded" => PaymentStatus::Refunded,
            _ => PaymentStatus::Processed,
        }
    }
    async fn reference(&self) -> Option<&str> {
        self.m.reference.as_deref()
    }
    async fn order_id(&self) -> Option<ID> {
        self.m.order_id.map(|o| ID(o.to_string()))
    }
    /// Sensitive (masked: hidden).
    async fn card_last4(&self, ctx: &Context<'_>) -> Option<String> {
        reveal(ctx, &self.card_last4)
    }
    /// Sensitive (masked: last 4).
    async fn iban(&self, ctx: &Context<'_>) -> Option<String> {
        reveal(ctx, &self.iban)
    }
    /// Sensitive (masked: domain only).
    async fn payer_email(&self, ctx: &Context<'_>) -> Option<String> {
        reveal(ctx, &self.payer_email)
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
    async fn history(&self, ctx: &Context<'_>) -> AppResult<Vec<AuditEntry>> {
        super::history::of(ctx, self.m.workspace_id, self.m.id).await
    }
}

#[derive(InputObject, Default)]
pub struct PaymentFilter {
    pub status: Option<PaymentStatus>,
    pub order_id: Option<ID>,
}

#[derive(InputObject)]
pub struct RecordPaymentInput {
    /// An order you can read, if the payment is for one.
    pub order_id: Option<ID>,
    /// The user the payment is assigned to and placed with (your scope must cover
    /// them); by default, you.
    pub owner_id: Option<ID>,
    /// A decimal amount such as "49.90".
    pub amount: String,
    pub method: PaymentMethod,
    pub reference: Option<String>,
    /// The fields below need WRITE on them.
    pub card_last4: Option<String>,
    pub iban: Option<String>,
    pub payer_email: Option<String>,
}

#[derive(Default)]
pub struct PaymentsQuery;

#[Object]
impl PaymentsQuery {
    /// Payments in your scope, newest first.
    async fn payments(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<PaymentFilter>,
        order_by: Option<ListOrder>,
    ) -> AppResult<Connection<String, Payment, ListInfo, EmptyFields>> {
        let p = user(ctx)?;
        let reach = Reach::for_permission(p, Permission::PaymentsRead)?;
        let w = Window::new(&p.grants, "payments", ListOrder::or(order_by, Order::NEWEST_FIRST), first, after.as_deref())?;
        let f = filter.unwrap_or_default();
        let filter = repo::payments::Filter {
            status: f.status.map(|s| {
                match s {
                    PaymentStatus::Processed => "processed",
                    PaymentStatus::Reconciled => "reconciled",
                    PaymentStatus::Refunded => "refunded",
                }
                .to_owned()
            }),
            order_id: f.order_id.as_ref().map(|o| parse_id("filter.orderId", o)).transpose()?,
        };
        let db = &state(ctx)?.db;
        let total = if wants_total(ctx) { Some(repo::crm::tally(db, &reach, &filter).await?) } else { None };
        let rows = repo::crm::find(db, &reach, &filter, w.order(), w.after(), w.fetch()).await?;
        w.page(rows, total, crm::seek_of::<entity::payment::Entity>, |m| Payment::project(m, &p.grants))
    }

    async fn payment(&self, ctx: &Context<'_>, id: ID) -> AppResult<Payment> {
        let p = user(ctx)?;
        let reach = Reach::for_permission(p, Permission::PaymentsRead)?;
        let m =
            repo::crm::get::<entity::payment::Entity>(&state(ctx)?.db, &reach, parse_id("id", &id)?).await?.ok_or(AppError::NotFound)?;
        Ok(Payment::project(m, &p.grants))
    }
}

#[derive(Default)]
pub struct PaymentsMutation;

#[Object]
impl PaymentsMutation {
    /// Exports the payments in your scope, card, IBAN and payer email as you may see
    /// them. Needs payments.export and the dataExport restriction; audited.
    /// At most 10,000 rows in the answer; `download: true` answers with a file to fetch
    /// instead, which streams (see `ExportDownload`).
    async fn export_payments(
        &self,
        ctx: &Context<'_>,
        format: ExportFormat,
        #[graphql(default)] download: bool,
    ) -> AppResult<ExportPayload> {
        super::convert::export::<entity::payment::Entity>(ctx, format, download, Condition::all(), None).await
    }

    /// Records a received payment (payments.process).
    async fn record_payment(&self, ctx: &Context<'_>, input: RecordPaymentInput) -> AppResult<Payment> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let input = NewPayment {
            order_id: input.order_id.as_ref().map(|o| parse_id("orderId", o)).transpose()?,
            owner_id: input.owner_id.as_ref().map(|o| parse_id("ownerId", o)).transpose()?,
            amount: input.amount,
            method: match input.method {
                PaymentMethod::Card => "card",
                PaymentMethod::Transfer => "transfer",
                PaymentMethod::Cash => "cash",
            }
            .into(),
            reference: input.reference,
            card_last4: input.card_last4,
            iban: input.iban,
            payer_email: input.payer_email,
        };
        Ok(Payment::project(svc::record(state(ctx)?, &tx, p, input).await?, &p.grants))
    }

    /// Marks a processed payment as matched in the books (payments.reconcile).
    async fn reconcile_payment(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>) -> AppResult<Payment> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        Ok(Payment::project(svc::step(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version, &svc::RECONCILE).await?, &p.grants))
    }

    /// Refunds a processed or reconciled payment (payments.refund).
    async fn refund_payment(&self, ctx: &Context<'_>, id: ID, expected_version: Option<i64>) -> AppResult<Payment> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        Ok(Payment::project(svc::step(state(ctx)?, &tx, p, parse_id("id", &id)?, expected_version, &svc::REFUND).await?, &p.grants))
    }
}
