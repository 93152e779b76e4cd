//! Conversions at the API edge that every module shares: ids and optional inputs in,
//! protected values and exported files out.

use crate::authz::fields::Protected;
use crate::domain::Patch;
use crate::error::{AppError, AppResult};
use crate::service::export::ExportFormat;
use async_graphql::{Context, ID, MaybeUndefined, SimpleObject};
use uuid::Uuid;

pub fn parse_id(field: &str, id: &ID) -> AppResult<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| AppError::bad_input(field, "is not a valid id"))
}

/// A sensitive value on its way out: the value, its mask, or null plus one
/// FIELD_FORBIDDEN error at this field's path (the rest of the query goes on, and the
/// answer keeps its shape for every role).
pub(crate) fn reveal(ctx: &Context<'_>, p: &Protected) -> Option<String> {
    match p {
        Protected::Value(v) => v.clone(),
        Protected::Audited(f, v) => {
            if let Some(rs) = ctx.data_opt::<std::sync::Arc<crate::audit::tx::RequestState>>() {
                rs.note_sensitive_read(f.key());
            }
            Some(v.clone())
        }
        Protected::Masked(m) => Some(m.clone()),
        Protected::Forbidden(f) => {
            if let Some(rs) = ctx.data_opt::<std::sync::Arc<crate::audit::tx::RequestState>>() {
                rs.note_withheld(f.key());
            }
            let err = AppError::FieldForbidden(f.key().to_owned()).into_server_error(ctx.item.pos);
            ctx.add_error(ctx.set_error_path(err));
            None
        }
    }
}

/// An optional input field as a change: absent keeps, null clears, a value sets.
pub(crate) fn patch<T>(m: MaybeUndefined<T>) -> Patch<T> {
    match m {
        MaybeUndefined::Undefined => Patch::Keep,
        MaybeUndefined::Null => Patch::Clear,
        MaybeUndefined::Value(v) => Patch::Set(v),
    }
}

#[derive(SimpleObject)]
pub struct ExportPayload {
    pub format: ExportFormat,
    /// The rows in the file; for a download, the records that matched when it was asked
    /// for.
    pub rows: i32,
    /// The file's content (CSV with a header row, or a JSON array); null for a download.
    pub content: Option<String>,
    /// Where to fetch the file, when it was asked for as a download.
    pub download: Option<ExportDownload>,
}

/// A file to fetch: `GET url` with the same session (cookie or bearer token) or API
/// key that asked for it, once, before `expiresAt`. It streams; its content is what
/// the export would have returned inline, read when it is fetched.
#[derive(SimpleObject)]
pub struct ExportDownload {
    /// A path on this server: `/exports/<ticket>`.
    pub url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl ExportPayload {
    /// What `service::records::export` rendered.
    pub fn of(format: ExportFormat, (content, rows): (String, usize)) -> Self {
        Self { format, rows: i32::try_from(rows).unwrap_or(i32::MAX), content: Some(content), download: None }
    }

    /// A download ticket `service::downloads::issue` handed out.
    pub fn ticket(format: ExportFormat, issued: crate::service::downloads::Issued) -> Self {
        Self {
            format,
            rows: i32::try_from(issued.rows).unwrap_or(i32::MAX),
            content: None,
            download: Some(ExportDownload { url: format!("/exports/{}", issued.token), expires_at: issued.expires_at }),
        }
    }
}

/// A module's export, in the answer or (`download`) as a ticket: the same checks and
/// entry either way.
pub(crate) async fn export<M: crate::service::records::RecordModule>(
    ctx: &Context<'_>,
    format: ExportFormat,
    download: bool,
    filter: sea_orm::sea_query::Condition,
    customers: Option<crate::repo::customers::Filter>,
) -> AppResult<ExportPayload>
where
    M::Model: Clone + sea_orm::IntoActiveModel<M::ActiveModel> + Sync,
    M::ActiveModel: sea_orm::ActiveModelTrait<Entity = M> + sea_orm::ActiveModelBehavior + sea_orm::TryIntoModel<M::Model> + Send,
{
    let (p, tx) = (super::context::user(ctx)?, crate::audit::Tx::current(ctx)?);
    if download {
        let issued = crate::service::downloads::issue::<M>(super::context::state(ctx)?, &tx, p, filter, customers, format).await?;
        Ok(ExportPayload::ticket(format, issued))
    } else {
        Ok(ExportPayload::of(format, crate::service::records::export::<M>(&tx, p, filter, format).await?))
    }
}

/// The ids of a bulk operation.
pub fn parse_ids(ids: &[async_graphql::ID]) -> crate::error::AppResult<Vec<uuid::Uuid>> {
    ids.iter().map(|i| parse_id("ids", i)).collect()
}
