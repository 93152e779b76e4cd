//! The one write path of every CRM module. A module is described as data
//! (`RecordModule`: its catalog module, its record name, the permissions that write and
//! delete it, which of its fields are audited and which of those are sensitive) and the
//! generic steps here do the rest: the reach, the locked read checked against the
//! version the client last saw, the compare-and-set save of the changed columns, the
//! state transition that happens once, and the audit entry with what was really
//! replaced. A module's own code is only what is specific to it: validation, its
//! patches and its special actions.

use crate::audit::{AuditEvent, Tx, record_changes};
use crate::auth::UserPrincipal;
use crate::authz::catalog::{Module, Permission, SensitiveField};
use crate::authz::scope::Reach;
use crate::error::{AppError, AppResult};
use crate::repo::crm::{self, CrmTable};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelBehavior, ActiveModelTrait, DbErr, IntoActiveModel, TryIntoModel};
use serde_json::Value;
use uuid::Uuid;

/// What the audit log and exports keep of a record, in the order of the module's
/// `PLAIN` and `SECRET` lists: plain values, and the sensitive ones, which the log never
/// holds (it says only that they changed) and exports show as the reader may see them.
#[derive(Default)]
pub struct Audited {
    pub plain: Vec<Value>,
    pub secret: Vec<Option<String>>,
}

/// A CRM module as data.
pub trait RecordModule: CrmTable
where
    Self::Model: Clone + IntoActiveModel<Self::ActiveModel>,
    Self::ActiveModel: ActiveModelTrait<Entity = Self> + ActiveModelBehavior + TryIntoModel<Self::Model> + Send,
{
    const MODULE: Module;
    /// Names the audit entries: `customer.created`, `customer.updated`, ...
    const RECORD: &'static str;
    const CREATED: &'static str;
    const UPDATED: &'static str;
    const DELETED: &'static str;
    const EXPORTED: &'static str;
    /// Creates and changes records.
    const WRITE: Permission;
    /// Deletes them (the write permission where the catalog has no delete of its own).
    const DELETE: Permission;
    /// Exports them, besides reading them (None: reading is enough, with the dataExport
    /// restriction that every export needs).
    const EXPORT: Option<Permission>;
    /// The names of the plain fields `audited` gives, in its order.
    const PLAIN: &'static [&'static str];
    /// The sensitive fields `audited` gives, in its order.
    const SECRET: &'static [SensitiveField];
    fn audited(m: &Self::Model) -> Audited;
}

/// Describes a module:
///
/// ```ignore
/// record_module! {
///     customer::Entity, Customers, "customer", write: CustomersWrite, delete: CustomersDelete,
///     export: Some(CustomersExport), |m| plain { "name" => json!(m.name) } secret { CustomerEmail => m.email.clone() }
/// }
/// ```
#[macro_export]
macro_rules! record_module {
    (
        $entity:ty, $module:ident, $record:literal, write: $write:ident, delete: $delete:ident, export: $export:expr,
        |$m:ident| plain { $($pn:literal => $pv:expr),* $(,)? } secret { $($sf:ident => $sv:expr),* $(,)? }
    ) => {
        impl $crate::service::records::RecordModule for $entity {
            const MODULE: $crate::authz::catalog::Module = $crate::authz::catalog::Module::$module;
            const RECORD: &'static str = $record;
            const CREATED: &'static str = concat!($record, ".created");
            const UPDATED: &'static str = concat!($record, ".updated");
            const DELETED: &'static str = concat!($record, ".deleted");
            const EXPORTED: &'static str = concat!($record, "s.exported");
            const WRITE: $crate::authz::catalog::Permission = $crate::authz::catalog::Permission::$write;
            const DELETE: $crate::authz::catalog::Permission = $crate::authz::catalog::Permission::$delete;
            const EXPORT: Option<$crate::authz::catalog::Permission> = {
                #[allow(unused_imports)]
                use $crate::authz::catalog::Permission::*;
                $export
            };
            const PLAIN: &'static [&'static str] = &[$($pn),*];
            const SECRET: &'static [$crate::authz::catalog::SensitiveField] = &[$($crate::authz::catalog::SensitiveField::$sf),*];
            fn audited($m: &<$entity as sea_orm::EntityTrait>::Model) -> $crate::service::records::Audited {
                $crate::service::records::Audited { plain: vec![$($pv),*], secret: vec![$($sv),*] }
            }
        }
    };
}

/// What changed between two versions of a record (None: it did not exist), with its
/// deletion as a plain `deleted` field.
pub fn changes<M: RecordModule>(before: Option<&M::Model>, after: &M::Model) -> Value
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel>,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    let b = before.map(M::audited).unwrap_or_default();
    let a = M::audited(after);
    let mut plain: Vec<_> =
        M::PLAIN.iter().enumerate().map(|(i, n)| (*n, b.plain.get(i).cloned().unwrap_or(Value::Null), a.plain[i].clone())).collect();
    plain.push(("deleted", before.map_or(Value::Null, |m| M::deleted(m).into()), M::deleted(after).into()));
    let secret: Vec<_> =
        M::SECRET.iter().enumerate().map(|(i, f)| (f.name(), b.secret.get(i).cloned().flatten(), a.secret[i].clone())).collect();
    record_changes(&plain, &secret)
}

fn event<M: RecordModule>(workspace_id: Uuid, action: &'static str, id: Uuid, changes: Value) -> AuditEvent
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel>,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    AuditEvent::Record { workspace_id, action, module: M::MODULE.as_str(), target_type: M::RECORD, id, changes }
}

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

/// Extra facts for an entry, beside the record's own fields (an order's line count).
pub type Note = [(&'static str, Value)];

/// Inserts a new record and records its creation.
pub async fn insert<M: RecordModule>(tx: &Tx<'_>, reach: &Reach, m: M::Model) -> AppResult<M::Model>
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel>,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    insert_as::<M>(tx, reach, M::CREATED, m, &[], AppError::from).await
}

/// `insert` recorded as `action`, with `note`; `map_err` turns a module's own
/// constraint (a taken SKU or number) into its answer.
pub async fn insert_as<M: RecordModule>(
    tx: &Tx<'_>,
    reach: &Reach,
    action: &'static str,
    m: M::Model,
    note: &Note,
    map_err: fn(DbErr) -> AppError,
) -> AppResult<M::Model>
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel>,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    let created = crm::insert::<M>(tx.db(), reach, m).await.map_err(map_err)?;
    tx.audit(event::<M>(reach.workspace_id(), action, M::id_of(&created), noted(changes::<M>(None, &created), note)));
    Ok(created)
}

/// Inserts a batch of new records into `txn` (the mutation's transaction or a savepoint
/// of it) with their entries written at once (`Tx::audit_now`), so that an import of
/// any size holds one batch in memory, never the whole file.
pub async fn insert_batch<M: RecordModule>(
    tx: &Tx<'_>,
    txn: &sea_orm::DatabaseTransaction,
    reach: &Reach,
    models: Vec<M::Model>,
    now: DateTime<Utc>,
) -> AppResult<usize>
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel>,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    let events = models.iter().map(|m| event::<M>(reach.workspace_id(), M::CREATED, M::id_of(m), changes::<M>(None, m))).collect();
    let n = models.len();
    crm::insert_many::<M>(txn, reach, models).await?;
    tx.audit_now(txn, events, now).await?;
    Ok(n)
}

fn noted(mut changes: Value, note: &Note) -> Value {
    if let Value::Object(map) = &mut changes {
        for (k, v) in note {
            map.insert((*k).to_owned(), serde_json::json!({ "before": null, "after": v }));
        }
    }
    changes
}

/// Saves `after` over `before` (read with `lock`), stamped now, and records `action`
/// with exactly what changed.
pub async fn save<M: RecordModule>(
    state: &AppState,
    tx: &Tx<'_>,
    reach: &Reach,
    action: &'static str,
    before: &M::Model,
    after: M::Model,
) -> AppResult<M::Model>
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel>,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    save_as::<M>(state, tx, reach, action, before, after, &[], AppError::from).await
}

/// `save` with `note` and a module's own constraint errors (see `insert_as`).
#[allow(clippy::too_many_arguments)]
pub async fn save_as<M: RecordModule>(
    state: &AppState,
    tx: &Tx<'_>,
    reach: &Reach,
    action: &'static str,
    before: &M::Model,
    after: M::Model,
    note: &Note,
    map_err: fn(DbErr) -> AppError,
) -> AppResult<M::Model>
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel>,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    let after = stamped::<M>(after, state.clock.now(), None)?;
    let after = crm::save::<M>(tx.db(), reach, before, after).await.map_err(map_err)?;
    tx.audit(event::<M>(reach.workspace_id(), action, M::id_of(before), noted(changes::<M>(Some(before), &after), note)));
    Ok(after)
}

/// `m` with `updated_at` (and, when given, `deleted_at`) set.
fn stamped<M: RecordModule>(m: M::Model, now: DateTime<Utc>, deleted: Option<DateTime<Utc>>) -> AppResult<M::Model>
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel>,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    let mut am = m.into_active_model();
    am.set(M::updated_column(), now.into());
    if let Some(at) = deleted {
        am.set(M::deleted_column(), Some(at).into());
    }
    Ok(am.try_into_model()?)
}

/// The whole update of one record under `permission`: locked, changed by `change`,
/// saved and audited as `action`.
#[allow(clippy::too_many_arguments)]
pub async fn change<M: RecordModule>(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    permission: Permission,
    action: &'static str,
    id: Uuid,
    expected: Option<i64>,
    change: impl FnOnce(M::Model) -> AppResult<M::Model>,
) -> AppResult<M::Model>
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel>,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    let reach = Reach::for_permission(p, permission)?;
    let before = lock::<M>(tx, &reach, id, expected).await?;
    let after = change(before.clone())?;
    save::<M>(state, tx, &reach, action, &before, after).await
}

/// Soft-deletes a record under the module's delete permission.
pub async fn delete<M: RecordModule>(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, id: Uuid, expected: Option<i64>) -> AppResult<()>
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel>,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    let reach = Reach::for_permission(p, M::DELETE)?;
    let before = lock::<M>(tx, &reach, id, expected).await?;
    let now = state.clock.now();
    let after = stamped::<M>(before.clone(), now, Some(now))?;
    let after = crm::save::<M>(tx.db(), &reach, &before, after).await?;
    tx.audit(event::<M>(reach.workspace_id(), M::DELETED, id, changes::<M>(Some(&before), &after)));
    Ok(())
}

/// A state transition: the permission it needs, the entry it writes, and the states it
/// leads from and to. Decided on the locked row, so of concurrent attempts exactly one
/// finds the state it leads from; the others answer CONFLICT.
pub struct Transition {
    pub permission: Permission,
    pub action: &'static str,
    pub steps: &'static [(&'static str, &'static str)],
}

/// Moves a record along `t`; `status` reads and sets the state field.
#[allow(clippy::too_many_arguments)]
pub async fn transition<M: RecordModule>(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    id: Uuid,
    expected: Option<i64>,
    t: &Transition,
    status: fn(&mut M::Model) -> &mut String,
    what: &str,
) -> AppResult<M::Model>
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel>,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    change::<M>(state, tx, p, t.permission, t.action, id, expected, |mut m| {
        let current = status(&mut m);
        let next = t
            .steps
            .iter()
            .find(|(from, _)| from == current)
            .map(|(_, to)| *to)
            .ok_or_else(|| AppError::Conflict(format!("not possible for {what} that is {current}")))?;
        *current = next.to_owned();
        Ok(m)
    })
    .await
}

/// The bulkOperations restriction, which every operation on many records needs.
pub fn require_bulk(p: &UserPrincipal) -> AppResult<()> {
    if p.grants.restrictions.bulk_operations { Ok(()) } else { Err(AppError::Denied("your roles do not allow bulk operations".into())) }
}

/// The bulkOperations restriction and at most maxRecordsPerRequest ids (100 at most),
/// each named once.
fn bulk_ids(p: &UserPrincipal, ids: &[Uuid]) -> AppResult<()> {
    require_bulk(p)?;
    let max = p.grants.restrictions.max_records_per_request.min(100) as usize;
    if ids.is_empty() {
        return Err(AppError::bad_input("ids", "name at least one record"));
    }
    if ids.len() > max {
        return Err(AppError::Denied(format!("your roles allow at most {max} records per request")));
    }
    let mut seen = std::collections::HashSet::new();
    if !ids.iter().all(|id| seen.insert(*id)) {
        return Err(AppError::bad_input("ids", "name each record once"));
    }
    Ok(())
}

/// Holds every record of a bulk change, in one statement ordered by id (two bulk
/// changes over the same records queue instead of deadlocking), in the order asked.
/// One id missing or out of reach fails the whole operation (NOT_FOUND).
async fn hold_all<M: RecordModule>(tx: &Tx<'_>, reach: &Reach, ids: &[Uuid]) -> AppResult<Vec<M::Model>>
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel>,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    let mut held: std::collections::HashMap<Uuid, M::Model> =
        crm::locked_many::<M>(tx.db(), reach, ids).await?.into_iter().map(|m| (M::id_of(&m), m)).collect();
    ids.iter().map(|id| held.remove(id).ok_or(AppError::NotFound)).collect()
}

/// One change to many records, all or nothing: every record is held first, each is
/// changed by `change` and saved with its own entry, and any refusal (a missing record,
/// a bad value) rolls the whole operation back.
#[allow(clippy::too_many_arguments)]
pub async fn bulk_change<M: RecordModule>(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    permission: Permission,
    action: &'static str,
    ids: &[Uuid],
    map_err: fn(DbErr) -> AppError,
    change: impl Fn(M::Model) -> AppResult<M::Model>,
) -> AppResult<Vec<M::Model>>
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel>,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    bulk_ids(p, ids)?;
    let reach = Reach::for_permission(p, permission)?;
    let mut out = Vec::with_capacity(ids.len());
    for before in hold_all::<M>(tx, &reach, ids).await? {
        let after = change(before.clone())?;
        out.push(save_as::<M>(state, tx, &reach, action, &before, after, &[], map_err).await?);
    }
    Ok(out)
}

/// Soft-deletes many records, all or nothing; returns how many.
pub async fn bulk_delete<M: RecordModule>(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, ids: &[Uuid]) -> AppResult<usize>
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel>,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    bulk_ids(p, ids)?;
    let reach = Reach::for_permission(p, M::DELETE)?;
    let now = state.clock.now();
    for before in hold_all::<M>(tx, &reach, ids).await? {
        let after = crm::save::<M>(tx.db(), &reach, &before, stamped::<M>(before.clone(), now, Some(now))?).await?;
        tx.audit(event::<M>(reach.workspace_id(), M::DELETED, M::id_of(&before), changes::<M>(Some(&before), &after)));
    }
    Ok(ids.len())
}

/// What an export of `M` may read: the module's read permission and its export
/// permission where the catalog has one.
fn export_reach<M: RecordModule>(p: &UserPrincipal) -> AppResult<Reach>
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel>,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    let read = Reach::for_permission(p, M::MODULE.read_permission().ok_or(AppError::Forbidden)?)?;
    if let Some(permission) = M::EXPORT {
        Reach::for_permission(p, permission)?;
    }
    Ok(read)
}

/// An export's columns: `id`, the plain fields, the sensitive ones, `createdAt`.
fn export_columns<M: RecordModule>() -> Vec<&'static str>
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel>,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    let mut columns = vec!["id"];
    columns.extend(M::PLAIN);
    columns.extend(M::SECRET.iter().map(|f| f.name()));
    columns.push("createdAt");
    columns
}

/// One record as an export row, sensitive fields as the reader may see them (value,
/// mask or nothing).
fn export_row<M: RecordModule>(p: &UserPrincipal, m: &M::Model) -> Vec<Value>
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel>,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    let a = M::audited(m);
    let mut row = vec![Value::String(M::id_of(m).to_string())];
    row.extend(a.plain);
    for (f, v) in M::SECRET.iter().zip(a.secret) {
        row.push(crate::authz::fields::protect(&p.grants, *f, v).shown().map_or(Value::Null, Value::String));
    }
    row.push(Value::String(M::created(m).to_rfc3339()));
    row
}

/// The records the principal reads that match `filter`, oldest first, every field as
/// the principal may see it (sensitive ones as value, mask or nothing). Needs the
/// module's read permission, its export permission where the catalog has one, and the
/// dataExport restriction; a larger set than maxRecordsPerRequest (or
/// `export::MAX_ROWS`) is refused, never cut short. One entry records the export.
pub async fn export<M: RecordModule>(
    tx: &Tx<'_>,
    p: &UserPrincipal,
    filter: sea_orm::sea_query::Condition,
    format: super::export::ExportFormat,
) -> AppResult<(String, usize)>
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel> + Sync,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    let read = export_reach::<M>(p)?;
    let max = super::export::check(p, crm::count::<M>(tx.db(), &read, filter.clone()).await?)?;
    let order = crate::repo::seek::Order::asc(crate::repo::seek::SortKey::Id);
    let rows = crm::list::<M>(tx.db(), &read, filter, order, None, max).await?;
    let records: Vec<Vec<Value>> = rows.iter().map(|m| export_row::<M>(p, m)).collect();
    let n = records.len();
    let content = super::export::render(&export_columns::<M>(), records, format)?;
    tx.audit(AuditEvent::Record {
        workspace_id: read.workspace_id(),
        action: M::EXPORTED,
        module: M::MODULE.as_str(),
        target_type: "export",
        id: Uuid::now_v7(),
        changes: serde_json::json!({ "rows": { "before": null, "after": n }, "format": { "before": null, "after": format.as_str() } }),
    });
    Ok((content, n))
}

/// The checks of `export`, for an export to be downloaded instead (`service::downloads`):
/// how many records match, at most maxRecordsPerRequest (`export::MAX_ROWS` does not
/// apply: the download streams). The export's entry is written here, naming the
/// download `ticket`.
pub async fn export_download<M: RecordModule>(
    tx: &Tx<'_>,
    p: &UserPrincipal,
    filter: sea_orm::sea_query::Condition,
    format: super::export::ExportFormat,
    ticket: Uuid,
) -> AppResult<u64>
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel> + Sync,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    let read = export_reach::<M>(p)?;
    let matching = crm::count::<M>(tx.db(), &read, filter).await?;
    super::export::check_download(p, matching)?;
    tx.audit(AuditEvent::Record {
        workspace_id: read.workspace_id(),
        action: M::EXPORTED,
        module: M::MODULE.as_str(),
        target_type: "export",
        id: ticket,
        changes: serde_json::json!({
            "rows": { "before": null, "after": matching },
            "format": { "before": null, "after": format.as_str() },
            "delivery": { "before": null, "after": "download" },
        }),
    });
    Ok(matching)
}

/// The file of `export`, rendered `BATCH` records at a time as the receiver takes
/// them: what the principal reads now (their reach and field access at download
/// time), oldest first. Memory holds a batch. An error (or more rows than
/// maxRecordsPerRequest) ends the stream with `Err`, so the download fails instead
/// of ending short.
pub fn export_stream<M: RecordModule>(
    db: sea_orm::DatabaseConnection,
    p: UserPrincipal,
    filter: sea_orm::sea_query::Condition,
    format: super::export::ExportFormat,
) -> AppResult<tokio::sync::mpsc::Receiver<AppResult<String>>>
where
    M::Model: Clone + IntoActiveModel<M::ActiveModel> + Sync + Send,
    M::ActiveModel: ActiveModelTrait<Entity = M> + ActiveModelBehavior + TryIntoModel<M::Model> + Send,
{
    let read = export_reach::<M>(&p)?;
    super::export::check_download(&p, 0)?;
    let max = u64::from(p.grants.restrictions.max_records_per_request);
    let order = crate::repo::seek::Order::asc(crate::repo::seek::SortKey::Id);
    let p = std::sync::Arc::new(p);
    Ok(super::export::stream(&export_columns::<M>(), format, max, move |after| {
        let (db, read, filter, p) = (db.clone(), read.clone(), filter.clone(), p.clone());
        async move {
            let batch = crm::list::<M>(&db, &read, filter, order, after.as_ref(), super::export::STREAM_BATCH).await?;
            let last = batch.last().map(|m| crm::seek_of::<M>(m, order)).transpose()?;
            Ok((batch.iter().map(|m| export_row::<M>(&p, m)).collect(), last))
        }
    }))
}

/// Where a new record goes: with its author (None), or assigned to `owner` and placed in
/// that user's department, team and primary group, which the author's reach must cover
/// (a Staff member with an ASSIGNED scope places records only for themselves; a
/// department-wide Manager for anyone in the department). The author stays the
/// record's creator.
pub async fn placement_for(tx: &Tx<'_>, reach: &Reach, owner: Option<Uuid>) -> AppResult<crate::authz::scope::Placement> {
    let at = reach.placement().clone();
    let Some(owner) = owner else { return Ok(at) };
    let user = crate::repo::users::get(tx.db(), reach.workspace_id(), owner)
        .await?
        .filter(|u| u.active)
        .ok_or_else(|| AppError::bad_input("ownerId", "no such active user"))?;
    let covered = crate::authz::scope::matches(reach.scope(), &at, user.id, user.department_id, user.team_id, user.primary_group_id);
    if !covered {
        return Err(AppError::Denied("your scope does not let you place records for that user".into()));
    }
    Ok(crate::authz::scope::Placement {
        department_id: user.department_id,
        team_id: user.team_id,
        primary_group_id: user.primary_group_id,
        group_ids: Vec::new(),
        new_record_owner: user.id,
        ..at
    })
}
