//! The analytics export (analytics.export): the aggregates `salesReport` and
//! `pipelineAnalytics` show, as one file, counted only within the exporter's scopes.

use super::export::{self, ExportFormat};
use crate::audit::{AuditEvent, Tx};
use crate::auth::UserPrincipal;
use crate::authz::catalog::Permission;
use crate::authz::scope::Reach;
use crate::domain::format_money;
use crate::error::{AppError, AppResult};
use crate::repo;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

const COLUMNS: [&str; 4] = ["report", "key", "count", "total"];

/// One row per aggregate: `sales` (orders and their total per status, created in
/// `[from, to)`; needs reports.read and orders.read), `pipeline` (customers per
/// status; needs customers.read) and `pipelineByOwner` (customers per assigned user;
/// needs analytics.advanced too). A section the exporter cannot read is left out and
/// named in the entry; with none readable the export is refused. Needs the dataExport
/// restriction.
pub async fn export(
    tx: &Tx<'_>,
    p: &UserPrincipal,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    format: ExportFormat,
) -> AppResult<(String, usize)> {
    let mut rows: Vec<Vec<Value>> = Vec::new();
    let (mut included, mut omitted) = (Vec::new(), Vec::new());
    match (p.grants.has(Permission::ReportsRead), Reach::for_permission(p, Permission::OrdersRead)) {
        (true, Ok(orders)) => {
            for (status, n, total) in repo::orders::totals_by_status(tx.db(), &orders, from, to).await? {
                rows.push(vec![json!("sales"), json!(status), json!(n), json!(format_money(total))]);
            }
            included.push("sales");
        }
        _ => omitted.push("sales"),
    }
    match Reach::for_permission(p, Permission::CustomersRead) {
        Ok(customers) => {
            for (status, n) in repo::customers::counts_by_status(tx.db(), &customers).await? {
                rows.push(vec![json!("pipeline"), json!(status), json!(n), Value::Null]);
            }
            included.push("pipeline");
            if p.grants.has(Permission::AnalyticsAdvanced) {
                for (owner, n) in repo::customers::counts_by_owner(tx.db(), &customers).await? {
                    rows.push(vec![json!("pipelineByOwner"), json!(owner.to_string()), json!(n), Value::Null]);
                }
                included.push("pipelineByOwner");
            } else {
                omitted.push("pipelineByOwner");
            }
        }
        Err(_) => omitted.extend(["pipeline", "pipelineByOwner"]),
    }
    if included.is_empty() {
        return Err(AppError::Denied(
            "none of the analytics is in your scopes (sales needs orders.read, the pipeline customers.read)".into(),
        ));
    }
    export::check(p, rows.len() as u64)?;
    let n = rows.len();
    let content = export::render(&COLUMNS, rows, format)?;
    tx.audit(AuditEvent::Record {
        workspace_id: p.workspace_id,
        action: "analytics.exported",
        module: "analytics",
        target_type: "export",
        id: Uuid::now_v7(),
        changes: json!({
            "rows": { "before": null, "after": n },
            "format": { "before": null, "after": format.as_str() },
            "sections": { "before": null, "after": included },
            "omitted": { "before": null, "after": omitted },
            "from": { "before": null, "after": from.map(|d| d.to_rfc3339()) },
            "to": { "before": null, "after": to.map(|d| d.to_rfc3339()) },
        }),
    });
    Ok((content, n))
}
