//! Read-only aggregates. They count only what the caller's scopes reach: the same
//! `Reach` conditions as every list, inside the GROUP BY queries.

use super::context::state;
use super::context::user;
use super::convert::ExportPayload;
use crate::audit::Tx;
use crate::authz::catalog::Permission;
use crate::authz::scope::Reach;
use crate::domain::format_money;
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::service::export::ExportFormat;
use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

#[derive(SimpleObject)]
pub struct StatusTotal {
    pub status: String,
    pub orders: i64,
    pub total: String,
}

#[derive(SimpleObject)]
pub struct SalesReport {
    pub orders: i64,
    /// Sum of fulfilled orders.
    pub revenue: String,
    pub by_status: Vec<StatusTotal>,
}

#[derive(SimpleObject)]
pub struct StatusCount {
    pub status: String,
    pub customers: i64,
}

#[derive(SimpleObject)]
pub struct OwnerCount {
    pub owner_id: ID,
    pub customers: i64,
}

pub struct PipelineAnalytics {
    by_status: Vec<StatusCount>,
    reach: Reach,
    advanced: bool,
}

#[Object]
impl PipelineAnalytics {
    /// Customers per pipeline stage (lead, active, inactive).
    async fn by_status(&self) -> &[StatusCount] {
        &self.by_status
    }

    /// Customers per assigned user. Needs analytics.advanced.
    async fn by_owner(&self, ctx: &Context<'_>) -> AppResult<Vec<OwnerCount>> {
        if !self.advanced {
            return Err(AppError::Denied("the per-owner breakdown needs analytics.advanced".into()));
        }
        let rows = repo::customers::counts_by_owner(&state(ctx)?.db, &self.reach).await?;
        Ok(rows.into_iter().map(|(o, n)| OwnerCount { owner_id: ID(o.to_string()), customers: n }).collect())
    }
}

#[derive(Default)]
pub struct ReportsQuery;

#[Object]
impl ReportsQuery {
    /// Orders and revenue in your orders scope, created in `[from, to)`.
    async fn sales_report(&self, ctx: &Context<'_>, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> AppResult<SalesReport> {
        let p = user(ctx)?;
        let reach = Reach::for_permission(p, Permission::OrdersRead)?;
        let rows = repo::orders::totals_by_status(&state(ctx)?.db, &reach, from, to).await?;
        let orders = rows.iter().map(|r| r.1).sum();
        let revenue = rows.iter().filter(|r| r.0 == "fulfilled").map(|r| r.2).sum();
        Ok(SalesReport {
            orders,
            revenue: format_money(revenue),
            by_status: rows.into_iter().map(|(status, orders, total)| StatusTotal { status, orders, total: format_money(total) }).collect(),
        })
    }

    /// The customer pipeline in your customers scope.
    async fn pipeline_analytics(&self, ctx: &Context<'_>) -> AppResult<PipelineAnalytics> {
        let p = user(ctx)?;
        let reach = Reach::for_permission(p, Permission::CustomersRead)?;
        let rows = repo::customers::counts_by_status(&state(ctx)?.db, &reach).await?;
        Ok(PipelineAnalytics {
            by_status: rows.into_iter().map(|(status, customers)| StatusCount { status, customers }).collect(),
            advanced: p.grants.has(Permission::AnalyticsAdvanced),
            reach,
        })
    }
}

#[derive(Default)]
pub struct ReportsMutation;

#[Object]
impl ReportsMutation {
    /// The analytics as one file: `salesReport`'s orders per status (created in
    /// `[from, to)`), `pipelineAnalytics`' customers per status and, with
    /// analytics.advanced, per owner; one row per aggregate (`report`, `key`, `count`,
    /// `total`), each counted within your scopes. A part you cannot read is left out.
    /// Needs analytics.export, the dataExport restriction and a recent step-up; audited.
    async fn export_analytics(
        &self,
        ctx: &Context<'_>,
        format: ExportFormat,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> AppResult<ExportPayload> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        Ok(ExportPayload::of(format, crate::service::analytics::export(&tx, p, from, to, format).await?))
    }
}
