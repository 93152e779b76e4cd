//! Exports too large for an answer. An export asked for as a download is checked and
//! audited like any export (`records::export_download`) and answered with a ticket;
//! `GET /exports/<ticket>` then streams the file (`records::export_stream`), so memory
//! holds a batch of rows, not the file.
//!
//! Guarantees:
//! - a ticket is a random 256-bit token, kept only as its hash, in the store (so any
//!   instance serves it) for `TICKET_TTL`;
//! - it works once, and only for the session or API key that asked for it: anyone else
//!   is told it does not exist, and it stays usable for its owner;
//! - the download reads as the principal is at download time (a revoked session or
//!   role stops it; field access masks as it does then);
//! - an `export.downloaded` entry is on the record before the first byte leaves
//!   (`graphql::gate::download` writes it).

use crate::audit::AuditRecord;
use crate::auth::{Principal, UserPrincipal};
use crate::authz::catalog::Module;
use crate::error::{AppError, AppResult};
use crate::repo::crm::RecordFilter;
use crate::service::export::ExportFormat;
use crate::service::records::{self, RecordModule};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Condition;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::mpsc::Receiver;
use uuid::Uuid;

/// How long a ticket waits to be used.
pub const TICKET_TTL: Duration = Duration::from_secs(300);

/// What a ticket stands for: who asked, with which credential, for which export.
#[derive(Serialize, Deserialize)]
struct Ticket {
    id: Uuid,
    workspace_id: Uuid,
    user_id: Uuid,
    credential: String,
    module: String,
    format: String,
    /// The customers' list filter, for a customer export.
    customers: Option<crate::repo::customers::Filter>,
    /// The audit log's filter (without the reader's modules, which are the
    /// downloader's at download time), for an audit export.
    #[serde(default)]
    audit: Option<crate::repo::audit::AuditFilter>,
}

/// A ticket handed out: the token (shown once), when it expires, how many records
/// matched when it was issued.
pub struct Issued {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub rows: u64,
}

/// A download under way: the file's name and type, and its pieces as they are read.
pub struct Download {
    pub filename: String,
    pub content_type: &'static str,
    pub pieces: Receiver<AppResult<String>>,
}

/// The session's hash, or the API key's id: what the download must be asked with.
fn credential(p: &UserPrincipal) -> Option<String> {
    match (p.session(), p.api_key()) {
        (Some(s), _) => Some(format!("session:{}", s.hash)),
        (None, Some(k)) => Some(format!("key:{}", k.id)),
        (None, None) => None,
    }
}

fn store_key(token: &str) -> String {
    format!("export_ticket:{}", crate::auth::session::hash_token(token))
}

fn new_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut bytes);
    format!("exp_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Checks and audits an export of `M` matching `filter` (`customers`: the customers'
/// list filter it came from), and hands out its ticket.
pub async fn issue<M: RecordModule>(
    state: &AppState,
    tx: &crate::audit::Tx<'_>,
    p: &UserPrincipal,
    filter: Condition,
    customers: Option<crate::repo::customers::Filter>,
    format: ExportFormat,
) -> AppResult<Issued>
where
    M::Model: Clone + sea_orm::IntoActiveModel<M::ActiveModel> + Sync,
    M::ActiveModel: sea_orm::ActiveModelTrait<Entity = M> + sea_orm::ActiveModelBehavior + sea_orm::TryIntoModel<M::Model> + Send,
{
    let credential = credential(p).ok_or(AppError::Forbidden)?;
    let id = Uuid::now_v7();
    let rows = records::export_download::<M>(tx, p, filter, format, id).await?;
    let ticket = Ticket {
        id,
        workspace_id: p.workspace_id,
        user_id: p.user_id,
        credential,
        module: M::MODULE.as_str().to_owned(),
        format: format.as_str().to_owned(),
        customers,
        audit: None,
    };
    hand_out(state, tx, ticket, rows).await
}

/// Checks and audits an export of the audit log matching `filter`, and hands out its
/// ticket.
pub async fn issue_audit(
    state: &AppState,
    tx: &crate::audit::Tx<'_>,
    p: &UserPrincipal,
    filter: crate::repo::audit::AuditFilter,
    format: ExportFormat,
) -> AppResult<Issued> {
    let credential = credential(p).ok_or(AppError::Forbidden)?;
    let id = Uuid::now_v7();
    let rows = super::audit::export_download(tx, p, &filter, format, id).await?;
    let filter = crate::repo::audit::AuditFilter { visible_modules: None, ..filter };
    let ticket = Ticket {
        id,
        workspace_id: p.workspace_id,
        user_id: p.user_id,
        credential,
        module: Module::Audit.as_str().to_owned(),
        format: format.as_str().to_owned(),
        customers: None,
        audit: Some(filter),
    };
    hand_out(state, tx, ticket, rows).await
}

/// Stores `ticket` under a new token, for as long as its export's entry commits.
async fn hand_out(state: &AppState, tx: &crate::audit::Tx<'_>, ticket: Ticket, rows: u64) -> AppResult<Issued> {
    let token = new_token();
    let key = store_key(&token);
    let value = serde_json::to_string(&ticket).map_err(AppError::internal)?;
    state.store.set(&key, &value, TICKET_TTL).await?;
    // A ticket whose export entry did not commit must not be usable.
    let store = state.store.clone();
    tx.on_rollback(move || {
        Box::pin(async move {
            let _ = store.del(&key).await;
        })
    });
    let expires_at = state.clock.now() + chrono::Duration::from_std(TICKET_TTL).unwrap_or_default();
    Ok(Issued { token, expires_at, rows })
}

/// Takes the ticket `token` for `principal` (once) and starts reading its file; the
/// entry to write before any of it is sent comes with it. NOT_FOUND for a ticket that
/// does not exist, has expired, was used, or is another credential's.
pub async fn open(state: &AppState, principal: &Principal, token: &str) -> AppResult<(Download, AuditRecord)> {
    let Principal::User(p) = principal else { return Err(AppError::Unauthenticated) };
    let key = store_key(token);
    let value = state.store.get(&key).await?.ok_or(AppError::NotFound)?;
    let ticket: Ticket = serde_json::from_str(&value).map_err(AppError::internal)?;
    if ticket.workspace_id != p.workspace_id || ticket.user_id != p.user_id || credential(p).as_deref() != Some(&ticket.credential) {
        return Err(AppError::NotFound);
    }
    // Of two downloads racing for one ticket, only the one that deletes it goes on.
    if !state.store.del(&key).await? {
        return Err(AppError::NotFound);
    }
    let format = match ticket.format.as_str() {
        "json" => ExportFormat::Json,
        _ => ExportFormat::Csv,
    };
    let module = Module::parse(&ticket.module).ok_or_else(|| AppError::internal("a ticket names an unknown module"))?;
    let (db, owner) = (state.db.clone(), p.clone());
    let customers = ticket.customers.clone().unwrap_or_default();
    let pieces = match module {
        Module::Customers => records::export_stream::<entity::customer::Entity>(db, owner, customers.condition(), format),
        Module::Products => records::export_stream::<entity::product::Entity>(db, owner, Condition::all(), format),
        Module::Orders => records::export_stream::<entity::order::Entity>(db, owner, Condition::all(), format),
        Module::Payments => records::export_stream::<entity::payment::Entity>(db, owner, Condition::all(), format),
        Module::Quotes => records::export_stream::<entity::quote::Entity>(db, owner, Condition::all(), format),
        Module::Jobs => records::export_stream::<entity::job::Entity>(db, owner, Condition::all(), format),
        Module::Invoices => records::export_stream::<entity::invoice::Entity>(db, owner, Condition::all(), format),
        Module::Tickets => records::export_stream::<entity::ticket::Entity>(db, owner, Condition::all(), format),
        Module::Audit => super::audit::export_stream(db, owner, ticket.audit.clone().unwrap_or_default(), format),
        _ => Err(AppError::internal("a ticket names a module without records")),
    }?;
    let record = AuditRecord {
        workspace_id: Some(p.workspace_id),
        actor: None,
        action: "export.downloaded",
        module: module.as_str(),
        target_type: Some("export"),
        target_id: Some(ticket.id.to_string()),
        changes: Some(serde_json::json!({ "format": { "before": null, "after": format.as_str() } })),
        reason: None,
    };
    let download =
        Download { filename: format!("{}-export.{}", module.as_str(), format.as_str()), content_type: content_type(format), pieces };
    Ok((download, record))
}

fn content_type(format: ExportFormat) -> &'static str {
    match format {
        ExportFormat::Csv => "text/csv; charset=utf-8",
        ExportFormat::Json => "application/json",
    }
}
