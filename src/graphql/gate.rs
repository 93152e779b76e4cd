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

use crate::audit::tx::Pending;
pub use crate::audit::tx::{RequestState, Tx};
use crate::audit::writer::{EntryContext, write_batch, write_entry, writer};
use crate::audit::{Actor, AuditEvent, AuditRecord};
use crate::auth::Principal;
use crate::auth::RequestMeta;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextResolve, ResolveInfo};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Context, PathSegment, ServerError, ServerResult, Value, Variables};
use sea_orm::TransactionTrait;
use std::sync::Arc;
use tokio::sync::OwnedMutexGuard;

/// Mutations whose resolver opens the transaction itself (`Tx::open`), after work that
/// must not hold SQLite's single write lock: sign-ins check the password (Argon2, tens
/// of milliseconds) first, so concurrent sign-ins hash in parallel.
const OPENS_ITS_OWN_TRANSACTION: &[&str] = &["login", "masterLogin"];

/// The gate is the only maker of `Tx`: from the transaction it holds for the mutation.
impl<'a> Tx<'a> {
    /// For the mutations in `OPENS_ITS_OWN_TRANSACTION`: takes the write lock and opens
    /// the mutation's transaction now (or returns the one already open). The gate
    /// commits or rolls it back like any other.
    pub async fn open(ctx: &Context<'a>) -> AppResult<Self> {
        let rs: &'a RequestState = ctx.data::<Arc<RequestState>>().map_err(|_| AppError::internal("no request state"))?;
        if rs.tx.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
            let state = ctx.data::<AppState>().map_err(|_| AppError::internal("no application state"))?;
            let held = writer(state.write_lock.as_ref(), None).await;
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
        let actor = ctx.data_opt::<Principal>().map_or_else(|| Actor::of(&Principal::Anonymous), Actor::of);
        Ok(Self::bind(db, state, actor, ctx.data_opt::<RequestMeta>().cloned()))
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
    let mut se = e.unplaced();
    se.path = vec![PathSegment::Field(path.to_owned())];
    se
}

/// An error about the document as a whole: it has no position worth reporting.
fn document_error(e: AppError) -> ServerError {
    e.unplaced()
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
    let mut records: Vec<crate::audit::writer::Outcome> = Vec::new();
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
            Some("FIELD_FORBIDDEN".into()),
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
    match state.read_audit.write(crate::audit::writer::entries(records, &cx)).await {
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
    match write_batch(&state.db, state.write_lock.as_ref(), None, cx, vec![(record, "denied", Some(code.into()))]).await {
        Ok(written) => state.audit_bus.announce(written),
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

/// Starts the download of an export ticket (`GET /exports/{ticket}`): the file's
/// pieces, once its `export.downloaded` entry is on the record (fails closed: no entry,
/// no file).
pub(crate) async fn download(
    state: &AppState,
    principal: &Principal,
    meta: &RequestMeta,
    ticket: &str,
) -> AppResult<crate::service::downloads::Download> {
    let (download, record) = crate::service::downloads::open(state, principal, ticket).await?;
    let cx = EntryContext { actor: Actor::of(principal), meta: Some(meta), now: state.clock.now() };
    let written = write_batch(&state.db, state.write_lock.as_ref(), None, &cx, vec![(record, "success", None)]).await?;
    state.audit_bus.announce(written);
    Ok(download)
}

/// A refused root field outside the gate (a subscription refused by the WebSocket
/// handler), written like the gate writes its own refusals.
pub(crate) async fn audit_refusal(
    state: &AppState,
    principal: &Principal,
    meta: &RequestMeta,
    root: &str,
    field: &str,
    refusal: &super::root_access::Refusal,
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

/// The failure entry of a mutation that the request's end cuts short (see
/// `RequestState`'s `Drop`).
fn cut_short_entry(state: &AppState, principal: &Principal, meta: Option<&RequestMeta>, field: &str) -> crate::audit::tx::Compensation {
    let (state, actor, workspace_id, meta, field) =
        (state.clone(), Actor::of(principal), principal.workspace_id(), meta.cloned(), field.to_owned());
    Box::new(move || {
        Box::pin(async move {
            let cx = EntryContext { actor, meta: meta.as_ref(), now: state.clock.now() };
            let record = failure_record(workspace_id, "Mutation", &field, Some("the request was stopped before it finished".into()));
            write_records(&state, None, &cx, vec![record], "failed", "SERVICE_UNAVAILABLE", field).await;
        })
    })
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
            let entries = records.into_iter().map(|r| (r, outcome, Some(code.clone()))).collect();
            match write_batch(&state.db, state.write_lock.as_ref(), held, &cx, entries).await {
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

        if let Err(refusal) = super::root_access::authorize(info.parent_type, info.name, principal, state.clock.now()) {
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

        *rs.cut_short.lock().unwrap_or_else(|e| e.into_inner()) = Some(cut_short_entry(state, principal, meta, &field));
        // Held until the mutation has committed or been rolled back and audited.
        let mut held = None;
        if !OPENS_ITS_OWN_TRANSACTION.contains(&info.name) {
            held = writer(state.write_lock.as_ref(), None).await;
            let txn = match state.db.begin().await {
                Ok(t) => Arc::new(t),
                Err(e) => {
                    rs.cut_short.lock().unwrap_or_else(|e| e.into_inner()).take();
                    let err = server_error(AppError::from(e), &path);
                    self.write_failure(state, held, &cx(), principal, "Mutation", &field, Vec::new(), &error_code(&err), None).await;
                    return Err(err);
                }
            };
            *rs.tx.lock().unwrap_or_else(|e| e.into_inner()) = Some(txn);
        }
        let result = next.run(ctx, info).await;
        // From here on the gate itself puts the outcome on the record.
        rs.cut_short.lock().unwrap_or_else(|e| e.into_inner()).take();
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
