//! The rows a principal is built from (the user's or API key's, and the workspace's),
//! kept per instance so that a signed-in request needs no SQL at all.
//!
//! Guarantees: an entry is used only while the workspace's principal epoch, which the
//! request reads from the shared store in the same round trip as its session, is the
//! one the entry was loaded under. Every change to what a principal is made of (a
//! user's status, licence or place, an override, the workspace's status or security
//! rules, roles, assignments, groups, API keys) announces a new epoch once its
//! transaction has committed (`service::principals_changed`), so the next request on
//! every instance reloads. An epoch is a random token, never a counter, so a store that
//! restarted empty cannot bring an old value back, and nothing is cached for a
//! workspace whose epoch is missing until it has a new one. Should the announcement
//! itself fail (the store went away between the commit and it), this instance has
//! already dropped its entries and the others drop theirs after `STALE_AFTER`.
//! Everything that depends on the time, the address or the session (licence ends,
//! overrides that expire, login hours, conditional roles) is still decided afresh on
//! every request, from the cached rows.

use crate::store::{Store, StoreResult};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The longest an entry lives even when no change is announced: the bound on staleness
/// if an announcement was lost.
pub const STALE_AFTER: Duration = Duration::from_secs(60);

/// How long an epoch stays in the store without changes (a workspace nobody changes
/// simply gets a new one, which costs one reload per user).
const EPOCH_TTL: Duration = Duration::from_secs(7 * 86_400);

const MAX_ENTRIES: usize = 20_000;

/// The store key of a workspace's principal epoch.
pub fn epoch_key(workspace_id: Uuid) -> String {
    format!("principals:{workspace_id}")
}

/// What a cached principal is built from.
#[derive(Clone)]
pub enum Rows {
    User { user: Arc<entity::user::Model>, workspace: Arc<entity::workspace::Model> },
    Key { key: Arc<entity::api_key::Model>, workspace: Arc<entity::workspace::Model> },
}

struct Entry {
    workspace_id: Uuid,
    epoch: String,
    loaded_at: Instant,
    rows: Rows,
}

#[derive(Default)]
pub struct PrincipalCache {
    /// Whose a session (by token hash) or an API key (by prefix) is: the workspace and
    /// the user or key id, so that the epoch can be read together with the credential.
    hints: Mutex<HashMap<String, (Uuid, Uuid)>>,
    /// By user id or API key id.
    entries: Mutex<HashMap<Uuid, Entry>>,
    /// When this instance last recorded an API key's use.
    key_touches: Mutex<HashMap<Uuid, Instant>>,
}

impl PrincipalCache {
    /// The workspace and subject last seen behind a credential.
    pub fn whose(&self, credential: &str) -> Option<(Uuid, Uuid)> {
        self.hints.lock().ok()?.get(credential).copied()
    }

    pub fn note_whose(&self, credential: &str, workspace_id: Uuid, id: Uuid) {
        if let Ok(mut m) = self.hints.lock() {
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert(credential.to_owned(), (workspace_id, id));
        }
    }

    /// Whether this instance last recorded the key's use at least `every` ago (and, if
    /// so, counts this as the new time).
    pub fn key_touch_due(&self, key_id: Uuid, every: Duration) -> bool {
        let Ok(mut m) = self.key_touches.lock() else { return true };
        if m.get(&key_id).is_some_and(|at| at.elapsed() < every) {
            return false;
        }
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        m.insert(key_id, Instant::now());
        true
    }

    /// The rows cached for `id` under `epoch`, if still fresh.
    pub fn get(&self, id: Uuid, workspace_id: Uuid, epoch: &str) -> Option<Rows> {
        let m = self.entries.lock().ok()?;
        m.get(&id)
            .filter(|e| e.workspace_id == workspace_id && e.epoch == epoch && e.loaded_at.elapsed() < STALE_AFTER)
            .map(|e| e.rows.clone())
    }

    /// Remembers rows read from the database after `epoch` was read from the store.
    pub fn put(&self, id: Uuid, workspace_id: Uuid, epoch: String, rows: Rows) {
        if let Ok(mut m) = self.entries.lock() {
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert(id, Entry { workspace_id, epoch, loaded_at: Instant::now(), rows });
        }
    }

    /// Drops this instance's entries for a workspace.
    pub fn forget_workspace(&self, workspace_id: Uuid) {
        if let Ok(mut m) = self.entries.lock() {
            m.retain(|_, e| e.workspace_id != workspace_id);
        }
    }
}

/// Makes every principal of the workspace stale, here at once and on every instance
/// through the store. Call after the change has committed.
pub async fn announce(store: &dyn Store, cache: &PrincipalCache, workspace_id: Uuid) -> StoreResult<()> {
    cache.forget_workspace(workspace_id);
    store.set(&epoch_key(workspace_id), &Uuid::new_v4().simple().to_string(), EPOCH_TTL).await
}

/// Gives a workspace whose epoch the store does not have (never changed since the store
/// started) a new one; nothing read before it may be cached.
pub async fn start_epoch(store: &dyn Store, workspace_id: Uuid) -> StoreResult<()> {
    store.set_nx(&epoch_key(workspace_id), &Uuid::new_v4().simple().to_string(), EPOCH_TTL).await.map(|_| ())
}
