//! What the mutations of every CRM module share: the record they change, read under
//! lock (see `repo::crm`) and checked against the version the client last saw.

use crate::audit::Tx;
use crate::authz::scope::Reach;
use crate::error::{AppError, AppResult};
use crate::repo::crm::{self, CrmTable};
use uuid::Uuid;

/// The record `id` as it stands, held for this mutation: NOT_FOUND when the caller
/// cannot reach it, CONFLICT with the current version when `expected` is stale.
pub async fn lock<E: CrmTable>(tx: &Tx<'_>, reach: &Reach, id: Uuid, expected: Option<i64>) -> AppResult<E::Model> {
    let m = crm::locked::<E>(tx.db(), reach, id).await?.ok_or(AppError::NotFound)?;
    check_version(E::version(&m), expected)?;
    Ok(m)
}

/// CONFLICT (with the current version) when the caller saw another version.
pub fn check_version(current: i64, expected: Option<i64>) -> AppResult<()> {
    match expected {
        Some(v) if v != current => Err(AppError::StaleVersion { current }),
        _ => Ok(()),
    }
}
