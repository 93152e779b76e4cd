//! The gate every root field passes through.
//!
//! Guarantees:
//! - every root field is checked against `policy` before its resolver runs; a field
//!   without a policy entry is refused;
//! - every root mutation runs in one database transaction that the gate opens; its
//!   resolver reaches the database only through the `Tx` capability, which exists only
//!   while that transaction is open;
//! - the audit events the resolver recorded are written in that transaction before it
//!   commits; a mutation that recorded none is rolled back (a change without an audit
//!   entry cannot be committed);
//! - a refused or failed mutation commits nothing but its own refusal entry, and side
//!   effects outside the database that the resolver registered (new sessions) are
//!   undone;
//! - what a request read that must be on the record (read-audited sensitive fields,
//!   withheld fields, explanations of access) is written before the answer leaves, and
//!   the answer is withheld when it cannot be (`audit_reads`);
//! - every committed entry is announced on the audit bus (`audit::bus`) for streams.
//!
//! Subscriptions do not pass through an extension hook for their root field: the
//! WebSocket handler asks the same `policy::authorize` before starting one.
//!
//! Also bounds the number of aliases in a document (async-graphql has no such limit).

use super::context::RequestMeta;
use crate::audit::{Actor, AuditEvent, AuditRecord};
use crate::auth::Principal;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextResolve, ResolveInfo};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Context, PathSegment, Pos, ServerError, ServerResult, Value, Variables};
use futures_util::future::BoxFuture;
use sea_orm::{DatabaseTransaction, TransactionTrait};
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

type Compensation = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

#[derive(Default)]
struct Pending {
    on_success: Vec<AuditEvent>,
    on_failure: Vec<AuditEvent>,
    compensations: Vec<Compensation>,
    after_commit: Vec<Compensation>,
}

/// Per-request slot for the open mutation transaction. The HTTP layer inserts a fresh
/// one into every request; only the gate fills it.
#[derive(Default)]
pub struct RequestState {
    tx: Mutex<Option<Arc<DatabaseTransaction>>>,
    /// The SQLite write lock taken by `Tx::open` for a mutation whose transaction the
    /// gate left to the resolver (see `OPENS_ITS_OWN_TRANSACTION`).
    deferred_writer: Mutex<Option<OwnedMutexGuard<()>>>,
    /// Set while a mutation runs: if the request is dropped before the gate has written
    /// its outcome (the execution timeout fired, the client went away), `Drop` puts a
    /// failure entry on the record in its place.
    in_flight: Mutex<Option<InFlight>>,
    pending: Mutex<Pending>,
    /// Sensitive fields this request was refused (answered null), audited once at the end.
    withheld: Mutex<std::collections::BTreeSet<&'static str>>,
    /// Values of read-audited fields this request showed, by field, audited once at the
    /// end (one entry per request and field set, however many rows).
    sensitive_reads: Mutex<std::collections::BTreeMap<&'static str, u64>>,
    /// Other reads a query records (explanations of access), written at the end too.
    read_events: Mutex<Vec<AuditEvent>>,
}

/// If a mutation is cancelled mid-flight (the execution timeout fired, the client went
/// away), its transaction is dropped uncommitted and the gate never reaches its
/// clean-up; the undo actions it had registered still run, from here.
impl Drop for RequestState {
    fn drop(&mut self) {
        let undo = std::mem::take(&mut self.lock_pending().compensations);
        let cut_short = self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).take();
        if (undo.is_empty() && cut_short.is_none()) || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        // The dropped transaction must release SQLite's write lock before the entry
        // below can be written.
        drop(self.tx.lock().unwrap_or_else(|e| e.into_inner()).take());
        drop(self.deferred_writer.lock().unwrap_or_else(|e| e.into_inner()).take());
        // In the request's span, so these log lines keep the request id.
        let task = async move {
            for f in undo {
                f().await;
            }
            if let Some(op) = cut_short {
                let cx = EntryContext { actor: op.actor, meta: op.meta.as_ref(), now: op.state.clock.now() };
                let record =
                    failure_record(op.workspace_id, "Mutation", &op.field, Some("the request was stopped before it finished".into()));
                write_records(&op.state, None, &cx, vec![record], "failed", "SERVICE_UNAVAILABLE", op.field).await;
            }
        };
        tokio::spawn(tracing::Instrument::instrument(task, tracing::Span::current()));
    }
}

/// What `Drop` needs to audit a mutation that was cut short.
struct InFlight {
    state: AppState,
    actor: Actor,
    workspace_id: Option<uuid::Uuid>,
    meta: Option<RequestMeta>,
    field: String,
}

/// Mutations whose resolver opens the transaction itself (`Tx::open`), after work that
/// must not hold SQLite's single write lock: sign-ins check the password (Argon2, tens
/// of milliseconds) first, so concurrent sign-ins hash in parallel.
const OPENS_ITS_OWN_TRANSACTION: &[&str] = &["login", "masterLogin"];

impl RequestState {
    pub fn note_withheld(&self, field: &'static str) {
        self.withheld.lock().unwrap_or_else(|e| e.into_inner()).insert(field);
    }

    pub fn note_sensitive_read(&self, field: &'static str) {
        *self.sensitive_reads.lock().unwrap_or_else(|e| e.into_inner()).entry(field).or_default() += 1;
    }

    /// Records a read that must be on the record (a query's own audit event), written
    /// when the request ends.
    pub fn note_read(&self, event: AuditEvent) {
        self.read_events.lock().unwrap_or_else(|e| e.into_inner()).push(event);
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The capability a mutation resolver needs to change anything: the gate's open
/// transaction plus the audit buffer that will be written into it.
pub struct Tx<'a> {
    db: Arc<DatabaseTransaction>,
    state: &'a RequestState,
}

impl<'a> Tx<'a> {
    /// For the mutations in `OPENS_ITS_OWN_TRANSACTION`: takes the write lock and opens
    /// the mutation's transaction now (or returns the one already open). The gate
    /// commits or rolls it back like any other.
    pub async fn open(ctx: &Context<'a>) -> AppResult<Self> {
        let rs: &'a RequestState = ctx.data::<Arc<RequestState>>().map_err(|_| AppError::internal("no request state"))?;
        if rs.tx.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
            let state = ctx.data::<AppState>().map_err(|_| AppError::internal("no application state"))?;
            let held = writer(state, None).await;
            let txn = Arc::new(state.db.begin().await?);
            *rs.deferred_writer.lock().unwrap_or_else(|e| e.into_inner()) = held;
            *rs.tx.lock().unwrap_or_else(|e| e.into_inner()) = Some(txn);
        }
        Self::current(ctx)
    }

    pub fn current(ctx: &Context<'a>) -> AppResult<Self> {
        let state: &'a RequestState = ctx.data::<Arc<RequestState>>().map_err(|_| AppError::internal("no request state"))?;
        let db = state
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| AppError::internal("Tx::current outside a gated mutation"))?;
        Ok(Self { db, state })
    }

    pub fn db(&self) -> &DatabaseTransaction {
        &self.db
    }

    /// Recorded in the log if (and only if) the mutation commits.
    pub fn audit(&self, event: AuditEvent) {
        self.state.lock_pending().on_success.push(event);
    }

    /// Recorded in the log if the mutation fails, instead of the generic refusal entry.
    pub fn audit_failure(&self, event: AuditEvent) {
        self.state.lock_pending().on_failure.push(event);
    }

    /// Runs once the transaction has committed (mail about what just happened), before
    /// the response leaves; never runs for a mutation that did not commit.
    pub fn after_commit(&self, f: impl FnOnce() -> BoxFuture<'static, ()> + Send + 'static) {
        self.state.lock_pending().after_commit.push(Box::new(f));
    }

    /// Undoes an effect outside the database if the transaction does not commit.
    pub fn on_rollback(&self, f: impl FnOnce() -> BoxFuture<'static, ()> + Send + 'static) {
        self.state.lock_pending().compensations.push(Box::new(f));
    }
}

/// Fields of one log entry that come from the request rather than the event.
pub struct EntryContext<'a> {
    pub actor: Actor,
    pub meta: Option<&'a RequestMeta>,
    pub now: chrono::DateTime<chrono::Utc>,
}

/// The single writer of audit entries: appends the entry to its workspace's hash chain
/// (see `audit::chain`) inside `txn`. On SQLite the caller must hold
/// `AppState::write_lock` (the gate does for mutations; see `write_failure` and
/// `audit_withheld`), or run before the server serves (bootstrap).
pub(crate) async fn write_entry(
    txn: &DatabaseTransaction,
    record: AuditRecord,
    cx: &EntryContext<'_>,
    outcome: &str,
    error_code: Option<&str>,
) -> Result<entity::audit_entry::Model, sea_orm::DbErr> {
    let actor = record.actor.unwrap_or_else(|| cx.actor.clone());
    let entry = entity::audit_entry::Model {
        id: uuid::Uuid::now_v7(),
        workspace_id: record.workspace_id,
        occurred_at: cx.now,
        actor_type: actor.kind.as_str().into(),
        actor_id: actor.id,
        actor_label: actor.label,
        impersonator_id: actor.impersonator,
        ip: cx.meta.and_then(RequestMeta::ip_string),
        user_agent: cx.meta.and_then(|m| m.user_agent.clone()),
        request_id: cx.meta.map(|m| m.request_id.clone()),
        action: record.action.into(),
        module: record.module.into(),
        target_type: record.target_type.map(Into::into),
        target_id: record.target_id,
        changes: record.changes,
        outcome: outcome.into(),
        error_code: error_code.map(Into::into),
        reason: record.reason,
        seq: None,
        prev_hash: None,
        hash: None,
    };
    crate::audit::chain::append(txn, entry).await
}

/// Writes `events` as the `system` actor inside `txn`: for work outside any request
/// (command-line bootstrap, the retention sweeper), through the same writer. On SQLite
/// the caller holds `AppState::write_lock`, or runs before the server serves.
pub(crate) async fn write_system(
    state: &AppState,
    txn: &DatabaseTransaction,
    events: Vec<AuditEvent>,
) -> Result<Vec<entity::audit_entry::Model>, sea_orm::DbErr> {
    let cx = EntryContext { actor: Actor::system(), meta: None, now: state.clock.now() };
    let mut written = Vec::with_capacity(events.len());
    for ev in events {
        written.push(write_entry(txn, ev.into_record(), &cx, "success", None).await?);
    }
    Ok(written)
}

/// SQLite's single writer: waits for `AppState::write_lock` unless `held` already is it.
pub(crate) async fn writer(state: &AppState, held: Option<OwnedMutexGuard<()>>) -> Option<OwnedMutexGuard<()>> {
    match (held, &state.write_lock) {
        (Some(g), _) => Some(g),
        (None, Some(lock)) => Some(lock.clone().lock_owned().await),
        (None, None) => None,
    }
}

pub struct Gate;

impl ExtensionFactory for Gate {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(GateExtension)
    }
}

struct GateExtension;

fn count_aliases(doc: &ExecutableDocument) -> usize {
    fn walk(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|s| match &s.node {
                Selection::Field(f) => usize::from(f.node.alias.is_some()) + walk(&f.node.selection_set.node),
                Selection::InlineFragment(i) => walk(&i.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    doc.operations.iter().map(|(_, op)| walk(&op.node.selection_set.node)).sum::<usize>()
        + doc.fragments.values().map(|f| walk(&f.node.selection_set.node)).sum::<usize>()
}

fn server_error(e: AppError, path: &str) -> ServerError {
    let mut se = async_graphql::Error::from(e).into_server_error(Pos::default());
    se.locations.clear();
    se.path = vec![PathSegment::Field(path.to_owned())];
    se
}

/// An error about the document as a whole: it has no position worth reporting.
fn document_error(e: AppError) -> ServerError {
    let mut se = async_graphql::Error::from(e).into_server_error(Pos::default());
    se.locations.clear();
    se
}

fn error_code(e: &ServerError) -> String {
    match e.extensions.as_ref().and_then(|x| x.get("code")) {
        Some(Value::String(s)) => s.clone(),
        _ => "INTERNAL".into(),
    }
}

const REFUSAL_CODES: &[&str] = &[
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "FIELD_FORBIDDEN",
    "NOT_FOUND",
    "RATE_LIMITED",
    "LOGIN_RESTRICTED",
    "STEP_UP_REQUIRED",
    "WORKSPACE_SUSPENDED",
    "WORKSPACE_ARCHIVED",
];

/// After a request: what its reads must leave on the record, in one transaction:
/// one `access.fields_withheld` entry naming every sensitive field the principal was
/// refused, one `access.sensitive_read` entry naming the read-audited fields it was
/// shown (with how many values of each), and the read events queries recorded
/// (explanations of access). However many rows a request covered, that is at most two
/// entries plus one per recorded read.
///
/// Fails closed: `Err` when entries that had to be written could not be, and the caller
/// must then not send what was read.
pub(crate) async fn audit_reads(state: &AppState, rs: &RequestState, principal: &Principal, meta: &RequestMeta) -> AppResult<()> {
    let withheld: Vec<&str> = std::mem::take(&mut *rs.withheld.lock().unwrap_or_else(|e| e.into_inner())).into_iter().collect();
    let shown = std::mem::take(&mut *rs.sensitive_reads.lock().unwrap_or_else(|e| e.into_inner()));
    let events = std::mem::take(&mut *rs.read_events.lock().unwrap_or_else(|e| e.into_inner()));
    let Principal::User(u) = principal else { return Ok(()) };
    let mut records: Vec<(AuditRecord, &str, Option<&str>)> = Vec::new();
    if !withheld.is_empty() {
        records.push((
            AuditRecord {
                workspace_id: Some(u.workspace_id),
                actor: None,
                action: "access.fields_withheld",
                module: "api",
                target_type: Some("fields"),
                target_id: None,
                changes: Some(serde_json::json!({ "fields": { "before": null, "after": withheld } })),
                reason: Some("no read access to these fields".into()),
            },
            "denied",
            Some("FIELD_FORBIDDEN"),
        ));
    }
    if !shown.is_empty() {
        records.push((
            AuditRecord {
                workspace_id: Some(u.workspace_id),
                actor: None,
                action: "access.sensitive_read",
                module: "api",
                target_type: Some("fields"),
                target_id: None,
                changes: Some(serde_json::json!({ "valuesShown": { "before": null, "after": shown } })),
                reason: None,
            },
            "success",
            None,
        ));
    }
    records.extend(events.into_iter().map(|e| (e.into_record(), "success", None)));
    if records.is_empty() {
        return Ok(());
    }
    let cx = EntryContext { actor: Actor::of(principal), meta: Some(meta), now: state.clock.now() };
    let writer = writer(state, None).await;
    let result = async {
        let txn = state.db.begin().await?;
        let mut written = Vec::with_capacity(records.len());
        for (r, outcome, code) in records {
            written.push(write_entry(&txn, r, &cx, outcome, code).await?);
        }
        txn.commit().await?;
        Ok::<_, sea_orm::DbErr>(written)
    }
    .await;
    drop(writer);
    match result {
        Ok(written) => {
            state.audit_bus.announce(written);
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, "could not audit this request's reads");
            Err(AppError::from(e))
        }
    }
}

/// How often a refusal that repeats in a loop (a restricted session, a flood over a
/// request limit) is put on the record for the same session, key or address.
const SAMPLED_AUDIT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Writes `record` at most once per `SAMPLED_AUDIT_EVERY` for `sample_key`: a client
/// retrying in a loop must not flood the log (or SQLite's single writer), but nobody
/// is refused unseen. An entry that cannot be written is tried again next time.
async fn audit_sampled(state: &AppState, cx: &EntryContext<'_>, sample_key: String, record: AuditRecord, code: &'static str) {
    match state.store.set_nx(&sample_key, "1", SAMPLED_AUDIT_EVERY).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => tracing::error!(error = %e, "could not sample a repeated refusal; auditing it anyway"),
    }
    let writer = writer(state, None).await;
    let result = async {
        let txn = state.db.begin().await?;
        let written = write_entry(&txn, record, cx, "denied", Some(code)).await?;
        txn.commit().await?;
        Ok::<_, sea_orm::DbErr>(written)
    }
    .await;
    drop(writer);
    match result {
        Ok(written) => state.audit_bus.announce(vec![written]),
        Err(e) => {
            let _ = state.store.del(&sample_key).await;
            tracing::error!(error = %e, "could not audit a repeated refusal");
        }
    }
}

/// A request of a live session that the network or hours rules refused (see
/// `audit_sampled`: once per session per minute).
pub(crate) async fn audit_restricted_session(state: &AppState, meta: &RequestMeta, r: &crate::auth::RestrictedSession) {
    let actor = Actor::new(crate::audit::ActorKind::User, Some(r.user_id), Some(r.username.clone()));
    let record = AuditEvent::Security {
        workspace_id: Some(r.workspace_id),
        actor: Some(actor.clone()),
        action: "auth.request_restricted",
        target_type: "session",
        target_id: Some(r.session_id.to_string()),
        changes: serde_json::json!({ "rule": r.rule }),
        reason: Some(format!("the {} rule refused a request of this session", r.rule)),
    }
    .into_record();
    let cx = EntryContext { actor, meta: Some(meta), now: state.clock.now() };
    audit_sampled(state, &cx, format!("restricted_audit:{}", r.session_hash), record, "LOGIN_RESTRICTED").await;
}

/// A request refused by a flood limit before GraphQL ran (per session, per key, or per
/// address without a credential): once per limited session, key or address per minute,
/// in the workspace's log (the platform's for anonymous requests).
pub(crate) async fn audit_flood_refusal(state: &AppState, meta: &RequestMeta, principal: &Principal, bucket: &'static str, key: &str) {
    let record = AuditRecord {
        workspace_id: principal.workspace_id(),
        actor: None,
        action: "api.throttled",
        module: "api",
        target_type: Some("limit"),
        target_id: Some(bucket.into()),
        changes: Some(serde_json::json!({ "bucket": { "before": null, "after": bucket } })),
        reason: Some(format!("over the {bucket} limit; further refusals in the next minute are not listed one by one")),
    };
    let cx = EntryContext { actor: Actor::of(principal), meta: Some(meta), now: state.clock.now() };
    let sample_key = format!("throttle_audit:{bucket}:{}", crate::auth::session::hash_token(key));
    audit_sampled(state, &cx, sample_key, record, "RATE_LIMITED").await;
}

/// A refused root field outside the gate (a subscription refused by the WebSocket
/// handler), written like the gate writes its own refusals.
pub(crate) async fn audit_refusal(
    state: &AppState,
    principal: &Principal,
    meta: &RequestMeta,
    root: &str,
    field: &str,
    refusal: &super::policy::Refusal,
) {
    let cx = EntryContext { actor: Actor::of(principal), meta: Some(meta), now: state.clock.now() };
    GateExtension.write_failure(state, None, &cx, principal, root, field, Vec::new(), refusal.error.code(), refusal.reason.clone()).await;
}

/// The generic entry of a refused or failed root field.
fn failure_record(workspace_id: Option<uuid::Uuid>, root: &str, field: &str, reason: Option<String>) -> AuditRecord {
    AuditRecord {
        workspace_id,
        actor: None,
        action: match root {
            "Mutation" => "api.mutation",
            "Subscription" => "api.subscription",
            _ => "api.query",
        },
        module: "api",
        target_type: Some("operation"),
        target_id: Some(field.chars().take(64).collect()),
        changes: None,
        reason,
    }
}

/// Writes `records` in a transaction of their own, in a task of its own: a request that
/// is dropped while waiting for the write lock (a timeout, a client that went away)
/// does not take its refusal entries with it. `held`: the SQLite write lock, if the
/// caller already holds it (the lock is not re-entrant).
async fn write_records(
    state: &AppState,
    held: Option<OwnedMutexGuard<()>>,
    cx: &EntryContext<'_>,
    records: Vec<AuditRecord>,
    outcome: &'static str,
    code: &str,
    field: String,
) {
    let (state, actor, meta, now, code) = (state.clone(), cx.actor.clone(), cx.meta.cloned(), cx.now, code.to_owned());
    let task = tokio::spawn(tracing::Instrument::instrument(
        async move {
            let cx = EntryContext { actor, meta: meta.as_ref(), now };
            let writer = writer(&state, held).await;
            let result = async {
                let txn = state.db.begin().await?;
                let mut written = Vec::with_capacity(records.len());
                for r in records {
                    written.push(write_entry(&txn, r, &cx, outcome, Some(&code)).await?);
                }
                txn.commit().await?;
                Ok::<_, sea_orm::DbErr>(written)
            }
            .await;
            drop(writer);
            match result {
                Ok(written) => state.audit_bus.announce(written),
                Err(e) => tracing::error!(error = %e, field, "could not write the refusal audit entry"),
            }
        },
        tracing::Span::current(),
    ));
    let _ = task.await;
}

impl GateExtension {
    /// Writes the refusal or failure entries of a mutation that did not commit, in a
    /// transaction of their own (see `write_records`).
    #[allow(clippy::too_many_arguments)]
    async fn write_failure(
        &self,
        state: &AppState,
        held: Option<OwnedMutexGuard<()>>,
        cx: &EntryContext<'_>,
        principal: &Principal,
        root: &str,
        field: &str,
        events: Vec<AuditEvent>,
        code: &str,
        reason: Option<String>,
    ) {
        let outcome = if REFUSAL_CODES.contains(&code) { "denied" } else { "failed" };
        let records: Vec<AuditRecord> = if events.is_empty() {
            vec![failure_record(principal.workspace_id(), root, field, reason)]
        } else {
            events.into_iter().map(AuditEvent::into_record).collect()
        };
        write_records(state, held, cx, records, outcome, code, field.to_owned()).await;
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for GateExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        super::text_guard::check(&doc, variables).map_err(document_error)?;
        if let Some(state) = ctx.data_opt::<AppState>() {
            let max = state.config.max_aliases;
            if count_aliases(&doc) > max {
                let e = AppError::bad_input("query", format!("too many aliases (at most {max})"));
                return Err(document_error(e));
            }
        }
        Ok(doc)
    }

    async fn resolve(&self, ctx: &ExtensionContext<'_>, info: ResolveInfo<'_>, next: NextResolve<'_>) -> ServerResult<Option<Value>> {
        if info.path_node.parent.is_some() || info.is_for_introspection || info.name.starts_with("__") {
            return next.run(ctx, info).await;
        }
        let path = info.alias.unwrap_or(info.name).to_owned();
        let (Some(state), Some(rs)) = (ctx.data_opt::<AppState>(), ctx.data_opt::<Arc<RequestState>>()) else {
            return Err(server_error(AppError::internal("gate: request context missing"), &path));
        };
        static ANONYMOUS: Principal = Principal::Anonymous;
        let principal = ctx.data_opt::<Principal>().unwrap_or(&ANONYMOUS);
        let meta = ctx.data_opt::<RequestMeta>();
        let is_mutation = info.parent_type == "Mutation";
        let field = info.name.to_owned();
        let cx = || EntryContext { actor: Actor::of(principal), meta, now: state.clock.now() };

        if let Err(refusal) = super::policy::authorize(info.parent_type, info.name, principal, state.clock.now()) {
            // Every refused mutation, and every query refused to someone signed in, is
            // on the record with the rule that refused it.
            if is_mutation || !matches!(principal, Principal::Anonymous) {
                self.write_failure(
                    state,
                    None,
                    &cx(),
                    principal,
                    info.parent_type,
                    &field,
                    Vec::new(),
                    refusal.error.code(),
                    refusal.reason,
                )
                .await;
            }
            return Err(server_error(refusal.error, &path));
        }
        if !is_mutation {
            return next.run(ctx, info).await;
        }

        *rs.in_flight.lock().unwrap_or_else(|e| e.into_inner()) = Some(InFlight {
            state: state.clone(),
            actor: Actor::of(principal),
            workspace_id: principal.workspace_id(),
            meta: meta.cloned(),
            field: field.clone(),
        });
        // Held until the mutation has committed or been rolled back and audited.
        let mut held = None;
        if !OPENS_ITS_OWN_TRANSACTION.contains(&info.name) {
            held = writer(state, None).await;
            let txn = match state.db.begin().await {
                Ok(t) => Arc::new(t),
                Err(e) => {
                    rs.in_flight.lock().unwrap_or_else(|e| e.into_inner()).take();
                    let err = server_error(AppError::from(e), &path);
                    self.write_failure(state, held, &cx(), principal, "Mutation", &field, Vec::new(), &error_code(&err), None).await;
                    return Err(err);
                }
            };
            *rs.tx.lock().unwrap_or_else(|e| e.into_inner()) = Some(txn);
        }
        let result = next.run(ctx, info).await;
        // From here on the gate itself puts the outcome on the record.
        rs.in_flight.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(g) = rs.deferred_writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            held = Some(g);
        }
        let txn = rs.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Pending { on_success, on_failure, compensations, after_commit } = std::mem::take(&mut *rs.lock_pending());

        let outcome: Result<(Option<Value>, Vec<entity::audit_entry::Model>), (ServerError, Vec<AuditEvent>)> =
            match (result, txn.map(Arc::try_unwrap)) {
                (Err(err), _) => Err((err, on_failure)),
                (Ok(_), None | Some(Err(_))) => {
                    Err((server_error(AppError::internal("gate: mutation transaction escaped"), &path), Vec::new()))
                }
                (Ok(value), Some(Ok(txn))) => {
                    let committed = async {
                        if on_success.is_empty() {
                            return Err(AppError::internal(format!("mutation {field} recorded no audit event")));
                        }
                        let cx = cx();
                        let mut written = Vec::with_capacity(on_success.len());
                        for ev in on_success {
                            written.push(write_entry(&txn, ev.into_record(), &cx, "success", None).await?);
                        }
                        txn.commit().await?;
                        Ok(written)
                    }
                    .await;
                    match committed {
                        Ok(written) => {
                            // Mail can be slow; other writers need not wait for it.
                            drop(held);
                            state.audit_bus.announce(written);
                            for f in after_commit {
                                f().await;
                            }
                            return Ok(value);
                        }
                        Err(e) => Err((server_error(e, &path), Vec::new())),
                    }
                }
            };
        // Not committed: the transaction was dropped (rolled back) above.
        let (err, events) = match outcome {
            Ok((v, _)) => return Ok(v),
            Err(x) => x,
        };
        for undo in compensations {
            undo().await;
        }
        // A rule's refusal names the rule, so the log says why as the caller was told.
        let code = error_code(&err);
        let reason = (code == "FORBIDDEN").then(|| err.message.clone());
        self.write_failure(state, held, &cx(), principal, "Mutation", &field, events, &code, reason).await;
        Err(err)
    }
}
