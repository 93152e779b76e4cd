//! The `auditEvents` subscription: a workspace's audit entries as they commit, for
//! partners (API keys) and staff, resumable from a cursor.
//!
//! Guarantees:
//! - entries arrive in chain order (`seq`), each at most once, none skipped: the feed
//!   keeps its position in the workspace's chain, takes announced entries that continue
//!   it, and reads anything it has not seen from the database (after `after`, after a
//!   gap, after the bus reconnected or the subscriber fell behind);
//! - with `after`, the feed subscribes to the bus first and then replays from the
//!   database, so nothing committed in between is lost across the switch to live;
//! - before each batch of entries, and every `PALISADE_WS_RECHECK_MS` while idle, the
//!   credential is authenticated afresh (session or API key, user, workspace status,
//!   network rules) and the subscription authorized afresh (`policy::authorize`), with
//!   a decision at most `DECISION_MAX_AGE` old: one evaluation serves every stream of
//!   the same credential on this instance within that time, so a hundred streams of
//!   one partner key cost one evaluation, not a hundred, per batch. Every change that
//!   can take access away (roles, staff, settings, keys, lifecycle, sign-outs and
//!   session revocations) writes an entry into the same chain before anything that
//!   follows it, so on meeting such an entry the feed decides afresh before passing
//!   it or anything after it: no entry is ever shown under a decision older than a
//!   change it follows. The first failure ends the stream with its error, after the
//!   entries already passed (the WebSocket layer then closes the socket when the
//!   credential itself is gone);
//! - each entry passes the same reader filter and masking as `auditLog`
//!   (`service::audit`), with the permissions of that moment.
//!
//! Assumes the WebSocket layer authorized the subscription before starting it and put
//! the connection's credential (`WsCredential`) into the request data.

use super::audit::{AuditEntry, AuditLogFilter};
use super::context::state;
use super::context::user;
use crate::audit::bus::BusMessage;
use crate::auth::{Principal, UserPrincipal};
use crate::error::{AppError, AppResult};
use crate::repo::audit::AuditFilter;
use crate::secret::Secret;
use crate::state::AppState;
use async_graphql::{Context, SimpleObject, Subscription};
use entity::audit_entry::Model;
use futures_util::Stream;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::TryRecvError};
use uuid::Uuid;

/// Entries read from the database per query while catching up.
const PAGE: u64 = 500;
/// Every this many idle rechecks, the feed also looks at the chain's head in the
/// database (an announcement lost at the very end of a burst is found this way).
const HEAD_CHECK_EVERY: u32 = 8;

/// How old an authorization decision may be when a batch of entries is delivered.
pub const DECISION_MAX_AGE: std::time::Duration = std::time::Duration::from_millis(100);

type Decision = (std::time::Instant, AppResult<UserPrincipal>);

/// Recent authorization decisions per credential (and client address) on this
/// instance, shared by all streams.
#[derive(Default)]
pub struct Decisions {
    recent: std::sync::Mutex<std::collections::HashMap<(String, Option<IpAddr>), Decision>>,
}

/// Entries of changes that can take access away: the feed decides afresh on meeting
/// one (see the module doc).
fn may_change_access(e: &Model) -> bool {
    matches!(e.module.as_str(), "roles" | "team" | "security" | "workspaces" | "support" | "apikeys")
        || matches!(e.action.as_str(), "auth.sign_out" | "auth.session_revoked" | "auth.other_sessions_revoked" | "auth.password_changed")
}

impl Decisions {
    /// The decision for `credential`: a recent one (younger than `DECISION_MAX_AGE`)
    /// unless `fresh`, else evaluated now (and remembered for the other streams).
    async fn decide(&self, state: &AppState, credential: &WsCredential, workspace_id: Uuid, fresh: bool) -> AppResult<UserPrincipal> {
        let key = (crate::auth::session::hash_token(credential.token.expose()), credential.ip);
        let now = std::time::Instant::now();
        let in_workspace = |d: AppResult<UserPrincipal>| {
            d.and_then(|p| if p.workspace_id == workspace_id { Ok(p) } else { Err(AppError::Unauthenticated) })
        };
        if !fresh
            && let Some((at, decision)) = self.recent.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
            && now.duration_since(*at) < DECISION_MAX_AGE
        {
            return in_workspace(decision.clone());
        }
        let decision = evaluate(state, credential).await;
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() > 10_000 {
            recent.retain(|_, (at, _)| now.duration_since(*at) < DECISION_MAX_AGE);
        }
        recent.insert(key, (now, decision.clone()));
        in_workspace(decision)
    }
}

/// The principal behind the credential right now, if it may still subscribe.
async fn evaluate(state: &AppState, credential: &WsCredential) -> AppResult<UserPrincipal> {
    let principal = crate::auth::authenticate(state, credential.token.expose(), credential.ip).await?;
    let Some(Principal::User(p)) = principal else { return Err(AppError::Unauthenticated) };
    super::root_access::authorize("Subscription", "auditEvents", &Principal::User(p.clone()), state.clock.now()).map_err(|r| r.error)?;
    Ok(p)
}

/// The credential a WebSocket connection authenticated with; every batch is
/// authorized with it afresh.
#[derive(Clone)]
pub struct WsCredential {
    pub token: Secret<String>,
    pub ip: Option<IpAddr>,
}

#[derive(SimpleObject)]
pub struct AuditStreamEvent {
    /// Pass the last cursor you received as `after` to resume without a gap.
    pub cursor: String,
    pub entry: AuditEntry,
}

fn cursor(seq: i64) -> String {
    seq.to_string()
}

fn parse_cursor(c: &str) -> AppResult<i64> {
    c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| AppError::bad_input("after", "is not a cursor from this stream"))
}

struct Feed {
    state: AppState,
    decisions: Arc<Decisions>,
    credential: WsCredential,
    workspace_id: Uuid,
    filter: AuditFilter,
    /// The last `seq` of the chain this feed has passed (shown or not).
    position: i64,
    rx: broadcast::Receiver<BusMessage>,
    ready: VecDeque<AuditStreamEvent>,
    /// Why the stream ends, once what was passed before it has been delivered.
    failed: Option<AppError>,
    /// The database may hold entries past `position` that the bus did not bring.
    behind: bool,
    recheck: tokio::time::Interval,
    idle_checks: u32,
    ended: bool,
}

enum Wake {
    Entries(Vec<Arc<Model>>),
    Resync,
    Tick,
}

impl Feed {
    /// The principal behind the credential now, if it may still subscribe.
    async fn authorize(&self, fresh: bool) -> AppResult<UserPrincipal> {
        self.decisions.decide(&self.state, &self.credential, self.workspace_id, fresh).await
    }

    /// Takes `entries` (announced, in any order) and, where they do not continue the
    /// chain from `position`, what the database holds; queues what the principal may
    /// see, deciding afresh before any entry that may change access.
    async fn advance(&mut self, p: UserPrincipal, mut entries: Vec<Arc<Model>>) -> AppResult<()> {
        entries.sort_by_key(|e| e.seq);
        let mut next: Vec<Model> = Vec::new();
        for e in entries {
            let Some(seq) = e.seq else { continue };
            if seq <= self.position + next.len() as i64 {
                continue;
            }
            if seq > self.position + next.len() as i64 + 1 {
                self.behind = true;
                break;
            }
            next.push(Model::clone(&e));
        }
        if self.behind {
            let from = self.position + next.len() as i64;
            let rows = crate::repo::audit::chain_after(&self.state.db, self.workspace_id, from, PAGE).await?;
            self.behind = rows.len() as u64 == PAGE;
            next.extend(rows);
        }
        let mut p = p;
        let mut visible = crate::service::audit::reader_filter(self.filter.clone(), &p.grants);
        for e in next {
            if may_change_access(&e) {
                p = self.authorize(true).await?;
                visible = crate::service::audit::reader_filter(self.filter.clone(), &p.grants);
            }
            self.accept(&visible, &p, e);
        }
        Ok(())
    }

    fn accept(&mut self, visible: &AuditFilter, p: &UserPrincipal, e: Model) {
        let Some(seq) = e.seq else { return };
        self.position = seq;
        if visible.matches(&e) {
            let entry = AuditEntry::project(crate::service::audit::masked(e, &p.grants));
            self.ready.push_back(AuditStreamEvent { cursor: cursor(seq), entry });
        }
    }

    /// Waits for announcements (taking every one already queued, as one batch) or the
    /// recheck tick.
    async fn wake(&mut self) -> Wake {
        let first = tokio::select! {
            m = self.rx.recv() => m,
            _ = self.recheck.tick() => return Wake::Tick,
        };
        let mut entries = Vec::new();
        let mut resync = false;
        let ws = self.workspace_id;
        let mut take = |m: Result<BusMessage, RecvErr>, entries: &mut Vec<Arc<Model>>| match m {
            Ok(BusMessage::Entry(e)) => {
                if e.workspace_id == Some(ws) {
                    entries.push(e);
                }
                true
            }
            Ok(BusMessage::Resync) | Err(RecvErr::Lagged) => {
                resync = true;
                true
            }
            Err(RecvErr::Closed) => false,
        };
        let first = match first {
            Ok(m) => Ok(m),
            Err(broadcast::error::RecvError::Lagged(_)) => Err(RecvErr::Lagged),
            Err(broadcast::error::RecvError::Closed) => Err(RecvErr::Closed),
        };
        if take(first, &mut entries) {
            loop {
                let next = match self.rx.try_recv() {
                    Ok(m) => Ok(m),
                    Err(TryRecvError::Lagged(_)) => Err(RecvErr::Lagged),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Closed) => Err(RecvErr::Closed),
                };
                if !take(next, &mut entries) {
                    break;
                }
            }
        }
        if resync { Wake::Resync } else { Wake::Entries(entries) }
    }

    async fn next(&mut self) -> Option<AppResult<AuditStreamEvent>> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(Ok(e));
            }
            if let Some(e) = self.failed.take() {
                self.ended = true;
                return Some(Err(e));
            }
            if self.ended {
                return None;
            }
            let entries = if self.behind {
                Vec::new()
            } else {
                match self.wake().await {
                    Wake::Entries(e) if e.is_empty() => continue,
                    Wake::Entries(e) => e,
                    Wake::Resync => {
                        self.behind = true;
                        Vec::new()
                    }
                    Wake::Tick => {
                        self.idle_checks += 1;
                        if self.idle_checks.is_multiple_of(HEAD_CHECK_EVERY) {
                            self.behind = true;
                        }
                        Vec::new()
                    }
                }
            };
            // Every batch, and every idle tick, is authorized.
            let outcome = match self.authorize(false).await {
                Ok(p) => self.advance(p, entries).await,
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                self.failed = Some(e);
            }
        }
    }
}

enum RecvErr {
    Lagged,
    Closed,
}

#[derive(Default)]
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// The workspace's audit entries as they are committed, in chain order: those you
    /// may read, masked by your field access, exactly like `auditLog`. With `after`
    /// (the last `cursor` you received) the stream first replays what you missed, then
    /// goes live, without gaps or repeats; without it, it starts with the next entry.
    /// Entries purged by retention cannot be replayed. Your credential and permissions
    /// are checked again before every batch and at least every
    /// `PALISADE_WS_RECHECK_MS`: the stream ends when they no longer allow it.
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditLogFilter>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = AppResult<AuditStreamEvent>>, AppError> {
        let state = state(ctx)?.clone();
        let p = user(ctx)?;
        let credential = ctx.data::<WsCredential>().map_err(|_| AppError::Forbidden)?.clone();
        let decisions = ctx.data::<Arc<Decisions>>().map_err(|_| AppError::internal("stream decisions missing from the schema"))?.clone();
        let filter = filter.unwrap_or_default().parse()?;
        let after = after.as_deref().map(parse_cursor).transpose()?;
        // Subscribe before reading the database: whatever commits in between arrives
        // on the bus, and whatever the bus brings twice is skipped by position.
        let rx = state.audit_bus.subscribe();
        let position = match after {
            Some(a) => a,
            None => crate::repo::audit::chain_head(&state.db, Some(p.workspace_id)).await?.and_then(|h| h.seq).unwrap_or(0),
        };
        let mut recheck = tokio::time::interval(state.config.ws.recheck);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        recheck.reset();
        let feed = Feed {
            workspace_id: p.workspace_id,
            state,
            decisions,
            credential,
            filter,
            position,
            rx,
            ready: VecDeque::new(),
            failed: None,
            behind: after.is_some(),
            recheck,
            idle_checks: 0,
            ended: false,
        };
        Ok(futures_util::stream::unfold(feed, |mut f| async move { f.next().await.map(|item| (item, f)) }))
    }
}
