//! Reading the audit log as a workspace principal, exporting it, and its retention.
//!
//! Guarantees:
//! - a reader sees only entries of modules they may read (`catalog::audit_visibility`,
//!   default deny), with each sensitive field's before/after values passed through
//!   their own field access (`fields::mask_changes`); the same filter and projection
//!   serve the log, record histories, exports and the live stream;
//! - retention deletes only a prefix of a chain, anchors what is left, and records the
//!   purge in the chain itself, so the rest stays verifiable (`audit::chain`);
//! - exports and retention changes are audited like every other change.

use crate::audit::Tx;
use crate::audit::{AuditEvent, chain, change};
use crate::auth::UserPrincipal;
use crate::authz::catalog::{AuditVisibility, Module, audit_visibility};
use crate::authz::eval::Grants;
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::repo::audit::AuditFilter;
use crate::service::export::{self, ExportFormat};
use crate::state::AppState;
use entity::audit_entry::Model;
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{Value, json};
use uuid::Uuid;

/// Shortest and longest retention a workspace may set, in days.
pub const MIN_RETENTION_DAYS: i32 = 30;
pub const MAX_RETENTION_DAYS: i32 = 36_500;

/// Modules named outside the catalog (see `audit_visibility`).
const OTHER_MODULES: &[&str] = &["api", "audit", "auth", "security", "workspaces", "support"];

/// Every module whose entries `g` may read.
pub fn visible_modules(g: &Grants) -> Vec<String> {
    Module::ALL
        .iter()
        .map(|m| m.as_str())
        .chain(OTHER_MODULES.iter().copied())
        .filter(|m| match audit_visibility(m) {
            AuditVisibility::Open => true,
            AuditVisibility::Needs(p) => g.has(p),
            AuditVisibility::Closed => false,
        })
        .map(str::to_owned)
        .collect()
}

/// `f` narrowed to what `g` may read.
pub fn reader_filter(mut f: AuditFilter, g: &Grants) -> AuditFilter {
    f.visible_modules = Some(visible_modules(g));
    f
}

/// An entry as `g` may see it (its changes masked by `g`'s field access).
pub fn masked(mut e: Model, g: &Grants) -> Model {
    e.changes = e.changes.map(|c| crate::authz::fields::mask_changes(g, &e.module, c));
    e
}

/// The retention that applies to a workspace: its own, else the server default.
pub fn retention_days(state: &AppState, ws: &entity::workspace::Model) -> Option<i32> {
    ws.audit_retention_days.or(state.config.audit_retention_days.map(|d| i32::try_from(d).unwrap_or(MAX_RETENTION_DAYS)))
}

pub async fn set_retention(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, days: Option<i32>) -> AppResult<Option<i32>> {
    if let Some(d) = days
        && !(MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&d)
    {
        return Err(AppError::bad_input(
            "days",
            format!("must be from {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS} (or null for the server default)"),
        ));
    }
    let ws = repo::workspaces::get(tx.db(), p.workspace_id).await?.ok_or(AppError::NotFound)?;
    repo::workspaces::set_audit_retention(tx.db(), ws.id, days, state.clock.now()).await?;
    tx.audit(AuditEvent::Record {
        workspace_id: ws.id,
        action: "audit.retention_set",
        module: "audit",
        target_type: "workspace",
        id: ws.id,
        changes: json!({ "retentionDays": change(ws.audit_retention_days, days) }),
    });
    let after = entity::workspace::Model { audit_retention_days: days, ..ws };
    Ok(retention_days(state, &after))
}

/// What a purge leaves in the chain: how far it went and what the rest now links to.
fn purged_event(workspace_id: Uuid, p: &chain::Purged, days: i32) -> AuditEvent {
    AuditEvent::Record {
        workspace_id,
        action: "audit.purged",
        module: "audit",
        target_type: "audit_log",
        id: workspace_id,
        changes: json!({
            "throughSeq": change(Value::Null, p.through_seq),
            "anchorHash": change(Value::Null, p.anchor_hash.clone()),
            "entriesPurged": change(Value::Null, p.entries),
            "retentionDays": change(Value::Null, days),
        }),
    }
}

/// Purges the caller's workspace log now, per its retention (inside the mutation).
/// Returns the number of entries deleted (0 when nothing was old enough).
pub async fn apply_retention(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal) -> AppResult<u64> {
    let ws = repo::workspaces::get(tx.db(), p.workspace_id).await?.ok_or(AppError::NotFound)?;
    let Some(days) = retention_days(state, &ws) else {
        return Err(AppError::bad_input("days", "this workspace keeps its audit log forever (set a retention first)"));
    };
    let now = state.clock.now();
    let purged = chain::purge(tx.db(), ws.id, now - chrono::Duration::days(i64::from(days)), now).await?;
    let n = purged.as_ref().map_or(0, |x| x.entries);
    // An application with nothing to purge is recorded too: someone asked.
    tx.audit(match purged {
        Some(x) => purged_event(ws.id, &x, days),
        None => AuditEvent::Record {
            workspace_id: ws.id,
            action: "audit.retention_checked",
            module: "audit",
            target_type: "audit_log",
            id: ws.id,
            changes: json!({ "entriesPurged": change(Value::Null, 0), "retentionDays": change(Value::Null, days) }),
        },
    });
    Ok(n)
}

/// The background sweep: every workspace with a retention, purged as the system actor,
/// one transaction each. Returns the number of entries deleted.
pub async fn sweep(state: &AppState) -> AppResult<u64> {
    let mut total = 0;
    for ws in repo::workspaces::all(&state.db).await? {
        let Some(days) = retention_days(state, &ws) else { continue };
        let _writer = crate::audit::writer::writer(state.write_lock.as_ref(), None).await;
        let now = state.clock.now();
        let txn = state.db.begin().await?;
        let Some(purged) = chain::purge(&txn, ws.id, now - chrono::Duration::days(i64::from(days)), now).await? else { continue };
        let written = crate::audit::writer::write_system(&txn, vec![purged_event(ws.id, &purged, days)], state.clock.now()).await?;
        txn.commit().await?;
        state.audit_bus.announce(written);
        total += purged.entries;
    }
    Ok(total)
}

/// The columns of an audit export, in order.
const COLUMNS: &[&str] = &[
    "seq",
    "id",
    "occurredAt",
    "actorKind",
    "actorId",
    "actorLabel",
    "impersonatorId",
    "ip",
    "userAgent",
    "requestId",
    "action",
    "module",
    "targetType",
    "targetId",
    "outcome",
    "errorCode",
    "reason",
    "changes",
];

fn row(e: Model) -> Vec<Value> {
    let text = |v: Option<String>| v.map_or(Value::Null, Value::String);
    let id = |v: Option<Uuid>| v.map_or(Value::Null, |u| Value::String(u.to_string()));
    vec![
        e.seq.map_or(Value::Null, Value::from),
        Value::String(e.id.to_string()),
        Value::String(chain::canonical_time(e.occurred_at)),
        Value::String(e.actor_type),
        id(e.actor_id),
        text(e.actor_label),
        id(e.impersonator_id),
        text(e.ip),
        text(e.user_agent),
        text(e.request_id),
        Value::String(e.action),
        Value::String(e.module),
        text(e.target_type),
        text(e.target_id),
        Value::String(e.outcome),
        text(e.error_code),
        text(e.reason),
        e.changes.unwrap_or(Value::Null),
    ]
}

/// The entries of the principal's workspace matching `filter` that they may read,
/// newest first, masked by their field access. Needs the dataExport restriction and at
/// most maxRecordsPerRequest matching entries.
pub async fn export(tx: &Tx<'_>, p: &UserPrincipal, filter: AuditFilter, format: ExportFormat) -> AppResult<(String, usize)> {
    let filter = reader_filter(filter, &p.grants);
    let matching = repo::audit::count(tx.db(), p.workspace_id, &filter).await?;
    let max = export::check(p, matching)?;
    let rows = repo::audit::list(tx.db(), Some(p.workspace_id), &filter, None, max).await?;
    let n = rows.len();
    let content = export::render(COLUMNS, rows.into_iter().map(|e| row(masked(e, &p.grants))).collect(), format)?;
    tx.audit(AuditEvent::Record {
        workspace_id: p.workspace_id,
        action: "audit.exported",
        module: "audit",
        target_type: "export",
        id: Uuid::now_v7(),
        changes: json!({ "rows": change(Value::Null, n), "format": change(Value::Null, format.as_str()), "filter": change(Value::Null, describe(&filter)) }),
    });
    Ok((content, n))
}

/// The checks of `export` for an export to be downloaded (`service::downloads`): how
/// many entries match, at most maxRecordsPerRequest. The export's entry is written here,
/// naming the download `ticket`.
pub async fn export_download(tx: &Tx<'_>, p: &UserPrincipal, filter: &AuditFilter, format: ExportFormat, ticket: Uuid) -> AppResult<u64> {
    let filter = reader_filter(filter.clone(), &p.grants);
    let matching = repo::audit::count(tx.db(), p.workspace_id, &filter).await?;
    export::check_download(p, matching)?;
    tx.audit(AuditEvent::Record {
        workspace_id: p.workspace_id,
        action: "audit.exported",
        module: "audit",
        target_type: "export",
        id: ticket,
        changes: json!({
            "rows": change(Value::Null, matching),
            "format": change(Value::Null, format.as_str()),
            "filter": change(Value::Null, describe(&filter)),
            "delivery": change(Value::Null, "download"),
        }),
    });
    Ok(matching)
}

/// The file of `export`, rendered 1,000 entries at a time as the receiver takes them,
/// newest first: what the principal may read now (the modules and field access they
/// have at download time). Ends with `Err` on a failure or if more than
/// maxRecordsPerRequest entries match by then, so the download fails instead of ending
/// short.
pub fn export_stream(
    db: sea_orm::DatabaseConnection,
    p: UserPrincipal,
    filter: AuditFilter,
    format: ExportFormat,
) -> AppResult<tokio::sync::mpsc::Receiver<AppResult<String>>> {
    if !p.grants.has(crate::authz::catalog::Permission::AuditExport) {
        return Err(AppError::Forbidden);
    }
    export::check_download(&p, 0)?;
    let filter = reader_filter(filter, &p.grants);
    let max = u64::from(p.grants.restrictions.max_records_per_request);
    let p = std::sync::Arc::new(p);
    Ok(export::stream(COLUMNS, format, max, move |before| {
        let (db, filter, p) = (db.clone(), filter.clone(), p.clone());
        async move {
            let batch = repo::audit::list(&db, Some(p.workspace_id), &filter, before, export::STREAM_BATCH).await?;
            let last = batch.last().map(|e| e.id);
            Ok((batch.into_iter().map(|e| row(masked(e, &p.grants))).collect(), last))
        }
    }))
}

/// The filter as the export's audit entry records it.
fn describe(f: &AuditFilter) -> Value {
    json!({
        "action": f.action, "module": f.module, "outcome": f.outcome,
        "actorId": f.actor_id.map(|u| u.to_string()), "impersonatorId": f.impersonator_id.map(|u| u.to_string()),
        "targetType": f.target_type, "targetId": f.target_id,
        "from": f.from.map(|t| t.to_rfc3339()), "to": f.to.map(|t| t.to_rfc3339()),
    })
}

/// Verifies a workspace's chain (or the platform chain).
pub async fn verify(
    db: &impl ConnectionTrait,
    workspace_id: Option<Uuid>,
    from: Option<i64>,
    to: Option<i64>,
) -> AppResult<chain::Verification> {
    if let (Some(f), Some(t)) = (from, to)
        && t < f
    {
        return Err(AppError::bad_input("to", "must not be less than from"));
    }
    Ok(chain::verify(db, workspace_id, from, to).await?)
}
