//! Use cases, one module per aggregate. A mutation use case takes the gate's `Tx`
//! (so it can only run inside a gated, audited transaction), does its work through
//! `repo`, and records exactly the audit events that describe it.

use crate::audit::tx::Tx;
use crate::error::AppResult;
use crate::state::AppState;
use uuid::Uuid;

pub mod analytics;
pub mod apikeys;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod customers;
pub mod downloads;
pub mod export;
pub mod import;
pub mod master_auth;
pub mod notify;
pub mod orders;
pub mod payments;
pub mod products;
pub mod quote_to_cash;
pub mod records;
pub mod roles;
pub mod security;
pub mod sign_in;
pub mod support;
pub mod team;
pub mod tickets;
pub mod workspaces;

/// Records, in `tx`, that what the workspace's principals are made of changes (a user's
/// status, licence, place or override, the workspace's status or security rules, an
/// API key): once the transaction commits, every instance's cached principals of the
/// workspace are stale (`auth::principals`). Every such change must call it.
pub async fn principals_changed(state: &AppState, tx: &Tx<'_>, workspace_id: Uuid) {
    let (store, cache) = (state.store.clone(), state.principals.clone());
    tx.after_commit(move || {
        Box::pin(async move {
            if let Err(e) = crate::auth::principals::announce(store.as_ref(), &cache, workspace_id).await {
                tracing::error!(error = %e, %workspace_id, "could not announce a principal change; other instances see it within a minute");
            }
        })
    });
}

/// Like `principals_changed`, for a change to what grants are evaluated from (roles,
/// assignments, groups, a user's place): the permission epoch also moves, in the same
/// transaction, so the loaded assignments and roles (`auth::grants`) are read again.
pub async fn permissions_changed(state: &AppState, tx: &Tx<'_>, workspace_id: Uuid) -> AppResult<()> {
    crate::repo::roles::bump_epoch(tx.db(), workspace_id).await?;
    principals_changed(state, tx, workspace_id).await;
    Ok(())
}
