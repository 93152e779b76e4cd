//! Reading the audit log.

use super::context::{principal, state};
use super::types::parse_id;
use crate::auth::Principal;
use crate::error::AppError;
use crate::repo::audit::AuditFilter;
use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

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
    /// user | master_admin | anonymous | system
    pub kind: String,
    pub id: Option<ID>,
    pub label: Option<String>,
}

#[derive(SimpleObject)]
pub struct AuditEntry {
    pub id: ID,
    pub occurred_at: DateTime<Utc>,
    pub actor: AuditActor,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub action: String,
    pub module: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// `{ field: { before, after } }`; secrets appear as "[redacted]".
    pub changes: Option<Json<serde_json::Value>>,
    pub outcome: AuditOutcome,
    pub error_code: Option<String>,
}

impl From<entity::audit_entry::Model> for AuditEntry {
    fn from(e: entity::audit_entry::Model) -> Self {
        Self {
            id: ID(e.id.to_string()),
            occurred_at: e.occurred_at,
            actor: AuditActor { kind: e.actor_type, id: e.actor_id.map(|i| ID(i.to_string())), label: e.actor_label },
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
        }
    }
}

#[derive(InputObject, Default)]
pub struct AuditLogFilter {
    pub action: Option<String>,
    pub module: Option<String>,
    pub outcome: Option<AuditOutcome>,
    pub actor_id: Option<ID>,
    pub target_id: Option<String>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
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
    /// sequence)" or "sequence out of order".
    pub problem: Option<String>,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The workspace's audit log, newest first.
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(minimum = 1, maximum = 100))] first: Option<i32>,
        after: Option<String>,
        filter: Option<AuditLogFilter>,
    ) -> Result<Connection<String, AuditEntry, EmptyFields, EmptyFields>> {
        let Principal::User(p) = principal(ctx) else { return Err(AppError::Forbidden.into()) };
        let state = state(ctx)?;
        let f = filter.unwrap_or_default();
        let filter = AuditFilter {
            action: f.action,
            module: f.module,
            outcome: f.outcome.map(|o| o.as_str().to_owned()),
            actor_id: f.actor_id.as_ref().map(|i| parse_id("filter.actorId", i)).transpose()?,
            target_id: f.target_id,
            from: f.from,
            to: f.to,
        };
        let before = after.as_ref().map(|c| parse_id("after", &ID(c.clone()))).transpose()?;
        let limit = u64::try_from(first.unwrap_or(20).clamp(1, MAX_PAGE)).unwrap_or(20);
        let mut rows = crate::repo::audit::list(&state.db, p.workspace_id, &filter, before, limit + 1).await.map_err(AppError::from)?;
        let has_next = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let mut conn = Connection::new(after.is_some(), has_next);
        conn.edges.extend(rows.into_iter().map(|r| Edge::new(r.id.to_string(), AuditEntry::from(r))));
        Ok(conn)
    }

    /// Checks the workspace's audit hash chain: every entry's hash recomputed from its
    /// stored fields, every link to the entry before, no gaps. `from` and `to` are
    /// sequence numbers, inclusive (default: the whole chain); a range that starts
    /// mid-chain links to the stored hash of the entry before `from`. Reports the first
    /// broken sequence number. Entries written before the log was chained are not
    /// covered.
    async fn verify_audit_chain(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(minimum = 1))] from: Option<i64>,
        #[graphql(validator(minimum = 1))] to: Option<i64>,
    ) -> Result<AuditChainVerification> {
        let Principal::User(p) = principal(ctx) else { return Err(AppError::Forbidden.into()) };
        if let (Some(f), Some(t)) = (from, to)
            && t < f
        {
            return Err(AppError::bad_input("to", "must not be less than from").into());
        }
        let state = state(ctx)?;
        let v = crate::audit::chain::verify(&state.db, Some(p.workspace_id), from, to).await.map_err(AppError::from)?;
        Ok(AuditChainVerification {
            ok: v.broken.is_none(),
            checked: v.checked,
            first_broken_seq: v.broken.map(|b| b.0),
            problem: v.broken.map(|b| b.1.to_owned()),
        })
    }
}
