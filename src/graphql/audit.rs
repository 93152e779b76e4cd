//! Reading the audit log: the workspace log (permission-filtered and masked for the
//! reader), its export, retention and chain verification, and the platform log for
//! master admins. Entries become `AuditEntry` only through `service::audit::masked`
//! (workspace readers) or as platform entries (master admins, which carry no workspace
//! data).

use super::context::user;
use super::context::{principal, state};
use super::convert::ExportPayload;
use super::convert::parse_id;
use crate::audit::Tx;
use crate::auth::Principal;
use crate::error::{AppError, AppResult};
use crate::repo::audit::AuditFilter;
use crate::service::audit as svc;
use crate::service::export::ExportFormat;
use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub const MAX_PAGE: i32 = 100;

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
pub enum AuditOutcome {
    Success,
    Denied,
    Failed,
}

impl AuditOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "success" => Self::Success,
            "denied" => Self::Denied,
            _ => Self::Failed,
        }
    }
}

#[derive(SimpleObject)]
pub struct AuditActor {
    /// user | api_key | master_admin | anonymous | system
    pub kind: String,
    pub id: Option<ID>,
    pub label: Option<String>,
}

#[derive(SimpleObject)]
pub struct AuditEntry {
    pub id: ID,
    /// Place in the workspace's (or platform's) hash chain, from 1 without gaps.
    pub seq: Option<i64>,
    pub occurred_at: DateTime<Utc>,
    pub actor: AuditActor,
    /// The master admin who was impersonating the actor, if any.
    pub impersonator_id: Option<ID>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub action: String,
    pub module: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// `{ field: { before, after } }`; secrets appear as "[redacted]", and sensitive
    /// fields as your own field access allows (masked, or null when you may not read
    /// them: you see only that they changed).
    pub changes: Option<Json<serde_json::Value>>,
    pub outcome: AuditOutcome,
    pub error_code: Option<String>,
    /// Why: the rule that refused an operation, or the reason an actor stated.
    pub reason: Option<String>,
}

impl AuditEntry {
    /// An entry that has already passed its reader's rules (`service::audit::masked`),
    /// or a platform entry for a master admin.
    pub fn project(e: entity::audit_entry::Model) -> Self {
        let id = |u: Uuid| ID(u.to_string());
        Self {
            id: id(e.id),
            seq: e.seq,
            occurred_at: e.occurred_at,
            actor: AuditActor { kind: e.actor_type, id: e.actor_id.map(id), label: e.actor_label },
            impersonator_id: e.impersonator_id.map(id),
            ip: e.ip,
            user_agent: e.user_agent,
            request_id: e.request_id,
            action: e.action,
            module: e.module,
            target_type: e.target_type,
            target_id: e.target_id,
            changes: e.changes.map(Json),
            outcome: AuditOutcome::parse(&e.outcome),
            error_code: e.error_code,
            reason: e.reason,
        }
    }
}

#[derive(InputObject, Default)]
pub struct AuditLogFilter {
    pub action: Option<String>,
    pub module: Option<String>,
    pub outcome: Option<AuditOutcome>,
    pub actor_id: Option<ID>,
    /// Entries made while this master admin was impersonating someone.
    pub impersonator_id: Option<ID>,
    /// The kind of record (`customer`, `role`, `session`, ...).
    pub target_type: Option<String>,
    /// The record.
    pub target_id: Option<String>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
}

impl AuditLogFilter {
    pub fn parse(self) -> AppResult<AuditFilter> {
        Ok(AuditFilter {
            action: self.action,
            module: self.module,
            outcome: self.outcome.map(|o| o.as_str().to_owned()),
            actor_id: self.actor_id.as_ref().map(|i| parse_id("filter.actorId", i)).transpose()?,
            impersonator_id: self.impersonator_id.as_ref().map(|i| parse_id("filter.impersonatorId", i)).transpose()?,
            target_type: self.target_type,
            target_id: self.target_id,
            from: self.from,
            to: self.to,
            visible_modules: None,
        })
    }
}

/// The answer of `verifyAuditChain`.
#[derive(SimpleObject)]
pub struct AuditChainVerification {
    /// True when every entry checked is intact and linked to the one before it.
    pub ok: bool,
    /// Entries checked and found intact (before the first problem, if any).
    pub checked: i64,
    /// The first sequence number that is missing, edited or wrongly linked.
    pub first_broken_seq: Option<i64>,
    /// What is wrong there: "hash mismatch", "broken link", "missing entry (gap in
    /// sequence)", "sequence out of order" or "retention anchor does not match the
    /// purge record".
    pub problem: Option<String>,
    /// Entries up to this sequence number were deleted by retention; checking started
    /// from the stored hash of that entry (the anchor).
    pub purged_through: Option<i64>,
}

impl From<crate::audit::chain::Verification> for AuditChainVerification {
    fn from(v: crate::audit::chain::Verification) -> Self {
        Self {
            ok: v.broken.is_none(),
            checked: v.checked,
            first_broken_seq: v.broken.map(|b| b.0),
            problem: v.broken.map(|b| b.1.to_owned()),
            purged_through: v.purged_through,
        }
    }
}

#[derive(SimpleObject)]
pub struct AuditRetention {
    /// Days entries are kept; null: forever.
    pub days: Option<i32>,
    /// The workspace's own setting; null: the server default applies.
    pub workspace_days: Option<i32>,
    /// The server default (PALISADE_AUDIT_RETENTION_DAYS); null: forever.
    pub server_default_days: Option<i32>,
}

type AuditConnection = Connection<String, AuditEntry, EmptyFields, EmptyFields>;

/// One page of entries, newest first, after the id cursor `after`.
async fn page(
    ctx: &Context<'_>,
    workspace_id: Option<Uuid>,
    filter: AuditFilter,
    first: Option<i32>,
    after: Option<String>,
    view: impl Fn(entity::audit_entry::Model) -> entity::audit_entry::Model,
) -> AppResult<AuditConnection> {
    let state = state(ctx)?;
    let before = after.as_ref().map(|c| parse_id("after", &ID(c.clone()))).transpose()?;
    let limit = u64::try_from(first.unwrap_or(20).clamp(1, MAX_PAGE)).unwrap_or(20);
    let mut rows = crate::repo::audit::list(&state.db, workspace_id, &filter, before, limit + 1).await?;
    let has_next = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let mut conn = Connection::new(after.is_some(), has_next);
    conn.edges.extend(rows.into_iter().map(|r| Edge::new(r.id.to_string(), AuditEntry::project(view(r)))));
    Ok(conn)
}

async fn retention(ctx: &Context<'_>, workspace_id: Uuid) -> AppResult<AuditRetention> {
    let state = state(ctx)?;
    let ws = crate::repo::workspaces::get(&state.db, workspace_id).await?.ok_or(AppError::NotFound)?;
    Ok(AuditRetention {
        days: svc::retention_days(state, &ws),
        workspace_days: ws.audit_retention_days,
        server_default_days: state.config.audit_retention_days.and_then(|d| i32::try_from(d).ok()),
    })
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The workspace's audit log, newest first: entries of the modules you may read
    /// (customers with customers.read, roles with roles.read, sign-ins with team.read,
    /// security settings with settings.read, ...), sensitive values as your own field
    /// access allows.
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(minimum = 1, maximum = 100))] first: Option<i32>,
        after: Option<String>,
        filter: Option<AuditLogFilter>,
    ) -> AppResult<AuditConnection> {
        let p = user(ctx)?;
        let filter = svc::reader_filter(filter.unwrap_or_default().parse()?, &p.grants);
        page(ctx, Some(p.workspace_id), filter, first, after, |e| svc::masked(e, &p.grants)).await
    }

    /// Checks the workspace's audit hash chain: every entry's hash recomputed from its
    /// stored fields, every link to the entry before, no gaps. `from` and `to` are
    /// sequence numbers, inclusive (default: the whole chain); a range that starts
    /// mid-chain links to the stored hash of the entry before `from`. Reports the first
    /// broken sequence number. Entries written before the log was chained are not
    /// covered; entries purged by retention are reported as `purgedThrough`.
    async fn verify_audit_chain(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(minimum = 1))] from: Option<i64>,
        #[graphql(validator(minimum = 1))] to: Option<i64>,
    ) -> AppResult<AuditChainVerification> {
        let p = user(ctx)?;
        Ok(svc::verify(&state(ctx)?.db, Some(p.workspace_id), from, to).await?.into())
    }

    /// How long this workspace keeps its audit log.
    async fn audit_retention(&self, ctx: &Context<'_>) -> AppResult<AuditRetention> {
        retention(ctx, user(ctx)?.workspace_id).await
    }

    /// The platform's own log (master admins): their sign-ins, workspace creation,
    /// lifecycle actions and impersonations, newest first.
    #[graphql(visible = "super::platform::sees_support_tools")]
    async fn platform_audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(minimum = 1, maximum = 100))] first: Option<i32>,
        after: Option<String>,
        filter: Option<AuditLogFilter>,
    ) -> AppResult<AuditConnection> {
        let Principal::MasterAdmin(_) = principal(ctx) else { return Err(AppError::Forbidden) };
        page(ctx, None, filter.unwrap_or_default().parse()?, first, after, |e| e).await
    }

    /// Checks the platform log's hash chain (master admins).
    #[graphql(visible = "super::platform::sees_support_tools")]
    async fn verify_platform_audit_chain(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(minimum = 1))] from: Option<i64>,
        #[graphql(validator(minimum = 1))] to: Option<i64>,
    ) -> AppResult<AuditChainVerification> {
        let Principal::MasterAdmin(_) = principal(ctx) else { return Err(AppError::Forbidden) };
        Ok(svc::verify(&state(ctx)?.db, None, from, to).await?.into())
    }
}

#[derive(Default)]
pub struct AuditMutation;

#[Object]
impl AuditMutation {
    /// Exports the entries you may read that match `filter`, newest first, masked like
    /// `auditLog`. Needs audit.export, the dataExport restriction and a recent step-up;
    /// at most your maxRecordsPerRequest entries, and 10,000 in the answer (narrow the
    /// filter for more); `download: true` answers with a file to fetch instead, which
    /// streams (see `ExportDownload`). Audited.
    async fn export_audit_log(
        &self,
        ctx: &Context<'_>,
        format: ExportFormat,
        filter: Option<AuditLogFilter>,
        #[graphql(default)] download: bool,
    ) -> AppResult<ExportPayload> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let filter = filter.unwrap_or_default().parse()?;
        if download {
            let issued = crate::service::downloads::issue_audit(state(ctx)?, &tx, p, filter, format).await?;
            return Ok(ExportPayload::ticket(format, issued));
        }
        Ok(ExportPayload::of(format, svc::export(&tx, p, filter, format).await?))
    }

    /// Sets how many days the workspace keeps audit entries (30 to 36500), or null for
    /// the server default. Needs settings.write and a recent step-up.
    async fn update_audit_retention(&self, ctx: &Context<'_>, days: Option<i32>) -> AppResult<AuditRetention> {
        let (state, p, tx) = (state(ctx)?, user(ctx)?, Tx::current(ctx)?);
        let effective = svc::set_retention(state, &tx, p, days).await?;
        Ok(AuditRetention {
            days: effective,
            workspace_days: days,
            server_default_days: state.config.audit_retention_days.and_then(|d| i32::try_from(d).ok()),
        })
    }

    /// Deletes the entries older than the retention period now (the server also does
    /// this every hour). The chain stays verifiable from its new anchor, and the purge
    /// is recorded in it. Returns how many entries were deleted.
    async fn apply_audit_retention(&self, ctx: &Context<'_>) -> AppResult<i64> {
        let (state, p, tx) = (state(ctx)?, user(ctx)?, Tx::current(ctx)?);
        let n = svc::apply_retention(state, &tx, p).await?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }
}
