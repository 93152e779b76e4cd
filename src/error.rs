//! One error type for the whole server and the one place that maps it to the
//! `extensions.code` a client sees. Internal failures are logged in full (inside the
//! request's span, which carries the request id) and answered with a generic message;
//! the HTTP layer adds the request id to INTERNAL errors so support can find the log.

use async_graphql::ErrorExtensions;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppError {
    /// No valid session, or the one presented has ended.
    Unauthenticated,
    /// Sign-in failed. Deliberately one variant for every cause, so the answer cannot
    /// tell an unknown account from a wrong password or a suspended workspace.
    InvalidCredentials,
    Forbidden,
    /// Refused with a reason the caller may see (anti-escalation rules).
    Denied(String),
    NotFound,
    /// A sensitive field the principal may not read (null in the answer) or write
    /// (nothing written). Carries the field's `type.field` key.
    FieldForbidden(String),
    BadInput {
        field: String,
        message: String,
    },
    Conflict(String),
    /// `expectedVersion` is not the record's version: someone changed it since the
    /// caller read it. Carries the current version.
    StaleVersion {
        current: i64,
    },
    RateLimited {
        retry_after_secs: u64,
    },
    LoginRestricted,
    /// A sensitive operation needs a session that proved its password or second factor
    /// recently; `reauthenticate` refreshes it.
    StepUpRequired,
    /// The workspace is suspended: nobody may sign in or act in it.
    WorkspaceSuspended,
    /// The workspace is archived: read-only, every change is refused.
    WorkspaceArchived,
    /// A dependency (database, store) is unreachable; security checks fail closed.
    Unavailable,
    /// A sign-in code could not be handed to the mail server. The challenge stays, so
    /// `resendSignInCode(challengeId)` can try again (or another method can answer it).
    SignInCodeUndelivered {
        challenge_id: String,
        methods: Vec<String>,
    },
    /// Anything unexpected. The detail goes to the log, never to the client.
    Internal(String),
}

impl AppError {
    pub fn bad_input(field: &str, message: impl Into<String>) -> Self {
        Self::BadInput { field: field.to_owned(), message: message.into() }
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated | Self::InvalidCredentials => "UNAUTHENTICATED",
            Self::Forbidden | Self::Denied(_) => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::FieldForbidden(_) => "FIELD_FORBIDDEN",
            Self::BadInput { .. } => "BAD_USER_INPUT",
            Self::Conflict(_) | Self::StaleVersion { .. } => "CONFLICT",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::LoginRestricted => "LOGIN_RESTRICTED",
            Self::StepUpRequired => "STEP_UP_REQUIRED",
            Self::WorkspaceSuspended => "WORKSPACE_SUSPENDED",
            Self::WorkspaceArchived => "WORKSPACE_ARCHIVED",
            Self::Unavailable | Self::SignInCodeUndelivered { .. } => "SERVICE_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::Unauthenticated => "authentication required".into(),
            Self::InvalidCredentials => "invalid credentials".into(),
            Self::Forbidden => "not allowed".into(),
            Self::Denied(why) => format!("not allowed: {why}"),
            Self::NotFound => "not found".into(),
            Self::FieldForbidden(f) => format!("no access to field {f}"),
            Self::BadInput { field, message } => format!("{field}: {message}"),
            Self::Conflict(m) => m.clone(),
            Self::StaleVersion { current } => {
                format!("this record was changed since you read it (it is now at version {current}); read it again")
            }
            Self::RateLimited { .. } => "too many requests".into(),
            Self::LoginRestricted => "sign-in is not allowed from here or at this time".into(),
            Self::StepUpRequired => "this operation needs a recent password or two-factor check: call reauthenticate".into(),
            Self::WorkspaceSuspended => "this workspace is suspended; contact your administrator".into(),
            Self::WorkspaceArchived => "this workspace is archived and read-only".into(),
            Self::Unavailable => "service temporarily unavailable".into(),
            Self::SignInCodeUndelivered { .. } => {
                "the sign-in code could not be sent; try resendSignInCode(challengeId) in a moment, or another method".into()
            }
            Self::Internal(_) => "internal error".into(),
        }
    }

    /// Full detail for operators (command-line output), never for API clients.
    pub fn detail(&self) -> String {
        match self {
            Self::Internal(d) => d.clone(),
            other => other.message(),
        }
    }

    /// Whether an audit entry for this failure says `denied` (a rule refused it) or
    /// `failed` (bad input, conflict, or a fault).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Unauthenticated
                | Self::InvalidCredentials
                | Self::Forbidden
                | Self::NotFound
                | Self::RateLimited { .. }
                | Self::LoginRestricted
                | Self::StepUpRequired
                | Self::WorkspaceSuspended
                | Self::WorkspaceArchived
        )
    }
}

// AppError is deliberately not `Display`: async-graphql converts any `Display` type
// into an error with that text, which would bypass the mapping below.

/// The one place that tells an unreachable database from a failing statement: the
/// first is answered SERVICE_UNAVAILABLE (the request may be retried, and succeeds
/// once the database is back), the second INTERNAL.
impl From<sea_orm::DbErr> for AppError {
    fn from(e: sea_orm::DbErr) -> Self {
        if matches!(e, sea_orm::DbErr::RecordNotUpdated) {
            // A compare-and-set save found the row moved on (or gone) meanwhile.
            return Self::Conflict("this record changed while it was being saved; read it again".into());
        }
        if db_unreachable(&e) {
            tracing::error!(error = %e, "database unavailable");
            Self::Unavailable
        } else {
            Self::Internal(format!("database: {e}"))
        }
    }
}

/// Whether `e` says the database could not be reached or used at all right now (no
/// connection within the acquire timeout, a connection lost or refused, the server
/// shutting down, a lock held elsewhere beyond the busy timeout, a disk that fails),
/// rather than that one statement was wrong.
pub fn db_unreachable(e: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => sqlx_unreachable(e),
        _ => false,
    }
}

fn sqlx_unreachable(e: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match e {
        Error::Io(_) | Error::Tls(_) | Error::PoolTimedOut | Error::PoolClosed | Error::WorkerCrashed => true,
        Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db.try_downcast_ref::<sea_orm::sqlx::postgres::PgDatabaseError>().is_some() {
                // Class 08: connection exception; 53: insufficient resources (too many
                // connections, disk full, out of memory); 57P01-57P03: the server is
                // shutting down, crashed, or not yet accepting connections.
                code.starts_with("08") || code.starts_with("53") || matches!(&*code, "57P01" | "57P02" | "57P03")
            } else if db.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>().is_some() {
                // Extended result codes carry the primary code in their low byte: BUSY,
                // LOCKED, READONLY (the file's permissions changed), IOERR, FULL, CANTOPEN.
                code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 8 | 10 | 13 | 14))
            } else {
                false
            }
        }
        _ => false,
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "store unavailable");
        Self::Unavailable
    }
}

impl AppError {
    /// This error as an entry of a GraphQL response's `errors`, at `pos`.
    pub fn into_server_error(self, pos: async_graphql::Pos) -> async_graphql::ServerError {
        async_graphql::Error::from(self).into_server_error(pos)
    }

    /// This error for a whole request or document, where no position is worth giving.
    pub fn unplaced(self) -> async_graphql::ServerError {
        let mut se = self.into_server_error(async_graphql::Pos::default());
        se.locations.clear();
        se
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(e: AppError) -> Self {
        if let AppError::Internal(detail) = &e {
            tracing::error!(error = %detail, "internal error");
        }
        async_graphql::Error::new(e.message()).extend_with(|_, ext| {
            ext.set("code", e.code());
            match &e {
                AppError::BadInput { field, .. } => ext.set("field", field.as_str()),
                AppError::RateLimited { retry_after_secs } => ext.set("retryAfter", *retry_after_secs),
                AppError::StaleVersion { current } => ext.set("currentVersion", *current),
                AppError::FieldForbidden(f) => ext.set("field", f.as_str()),
                AppError::SignInCodeUndelivered { challenge_id, methods } => {
                    ext.set("challengeId", challenge_id.as_str());
                    ext.set("methods", methods.clone());
                }
                _ => {}
            }
        })
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// A setting that cannot be used, named by its variable (the server does not start).
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid {}: {}", self.variable, self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak_their_detail() {
        let e: async_graphql::Error = AppError::internal("SELECT secret FROM users").into();
        assert_eq!(e.message, "internal error");
        let ext = format!("{:?}", e.extensions);
        assert!(ext.contains("INTERNAL") && !ext.contains("SELECT"), "{ext}");
    }

    #[test]
    fn an_unreachable_database_is_unavailable_and_a_bad_statement_internal() {
        use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr, sqlx};
        use std::sync::Arc;
        let timed_out = DbErr::ConnectionAcquire(ConnAcquireErr::Timeout);
        assert_eq!(AppError::from(timed_out), AppError::Unavailable);
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let lost = DbErr::Query(RuntimeErr::SqlxError(Arc::new(sqlx::Error::Io(refused))));
        assert_eq!(AppError::from(lost), AppError::Unavailable);
        let wrong = DbErr::Query(RuntimeErr::SqlxError(Arc::new(sqlx::Error::RowNotFound)));
        assert!(matches!(AppError::from(wrong), AppError::Internal(_)));
        assert!(matches!(AppError::from(DbErr::Custom("x".into())), AppError::Internal(_)));
        // A compare-and-set save that found the row moved on is a conflict, not a fault.
        assert_eq!(AppError::from(DbErr::RecordNotUpdated).code(), "CONFLICT");
    }

    #[test]
    fn bad_input_names_the_field() {
        let e: async_graphql::Error = AppError::bad_input("password", "too short").into();
        let ext = format!("{:?}", e.extensions);
        assert!(ext.contains("BAD_USER_INPUT") && ext.contains("password"), "{ext}");
    }
}
