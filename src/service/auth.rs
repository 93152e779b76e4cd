//! Sign-in, sign-out, password change and session management.
//!
//! Guarantees: every failed sign-in (unknown workspace, unknown account, wrong
//! password, inactive or unlicensed account, suspended workspace) gives the same error
//! after the same Argon2 work; a session is created only after every check passed and
//! is removed again if the audit write does not commit; a password change ends every
//! other session of that user.

use crate::audit::AuditEvent;
use crate::auth::session::{ActiveSession, Subject};
use crate::auth::{Principal, may_sign_in};
use crate::domain::{NewPassword, PASSWORD_MAX_CHARS, fold_key};
use crate::error::{AppError, AppResult};
use crate::graphql::context::RequestMeta;
use crate::graphql::gate::Tx;
use crate::repo;
use crate::secret::Secret;
use crate::state::AppState;
use uuid::Uuid;

pub struct SignedIn {
    pub token: Secret<String>,
    pub session: ActiveSession,
}

fn register_undo(state: &AppState, tx: &Tx<'_>, session: &ActiveSession) {
    let sessions = state.sessions.clone();
    let (hash, subject) = (session.hash.clone(), session.record.subject);
    tx.on_rollback(move || {
        Box::pin(async move {
            if let Err(e) = sessions.revoke(&hash, &subject).await {
                tracing::error!(error = %e, "could not remove the session of a rolled-back sign-in");
            }
        })
    });
}

pub async fn login(state: &AppState, tx: &Tx<'_>, meta: &RequestMeta, workspace: &str, login: &str, password: &str) -> AppResult<SignedIn> {
    let db = tx.db();
    let ws = repo::workspaces::by_slug(db, workspace.trim()).await?;
    let user = match &ws {
        Some(ws) => repo::users::find_for_login(db, ws.id, &fold_key(login.trim())).await?,
        None => None,
    };
    let fail = |workspace_id: Option<Uuid>| {
        state.metrics.sign_in("failure");
        tx.audit_failure(AuditEvent::SignInFailed { workspace_id, login: login.to_owned() });
        Err(AppError::InvalidCredentials)
    };
    // Over-long input is refused without hashing it; that says nothing about accounts.
    if password.chars().count() > PASSWORD_MAX_CHARS {
        return fail(ws.as_ref().map(|w| w.id));
    }
    let matched = state.hasher.verify(password, user.as_ref().and_then(|u| u.password_hash.as_deref())).await?;
    let (Some(ws), Some(user)) = (ws, user) else {
        return fail(None);
    };
    if !matched || !may_sign_in(&user, &ws, state.clock.now()) {
        return fail(Some(ws.id));
    }

    let subject = Subject::User { user_id: user.id, workspace_id: ws.id };
    let (token, session) = state.sessions.create(subject, meta.ip_string(), meta.user_agent.clone()).await?;
    register_undo(state, tx, &session);
    let now = state.clock.now();
    repo::users::record_login(db, ws.id, user.id, meta.ip_string(), now).await?;
    tx.audit(AuditEvent::SignedIn {
        workspace_id: ws.id,
        user_id: user.id,
        username: user.username,
        session_id: session.record.id,
        previous_login: user.last_login_at.map(|t| t.to_rfc3339()),
        at: now.to_rfc3339(),
    });
    state.metrics.sign_in("success");
    Ok(SignedIn { token, session })
}

pub async fn master_login(state: &AppState, tx: &Tx<'_>, meta: &RequestMeta, email: &str, password: &str) -> AppResult<SignedIn> {
    let admin = repo::master_admins::by_email_key(tx.db(), &fold_key(email.trim())).await?;
    let fail = || {
        state.metrics.sign_in("failure");
        tx.audit_failure(AuditEvent::MasterSignInFailed { email: email.to_owned() });
        Err(AppError::InvalidCredentials)
    };
    if password.chars().count() > PASSWORD_MAX_CHARS {
        return fail();
    }
    let matched = state.hasher.verify(password, admin.as_ref().map(|a| a.password_hash.as_str())).await?;
    let Some(admin) = admin.filter(|a| matched && a.active) else {
        return fail();
    };
    let subject = Subject::MasterAdmin { admin_id: admin.id };
    let (token, session) = state.sessions.create(subject, meta.ip_string(), meta.user_agent.clone()).await?;
    register_undo(state, tx, &session);
    tx.audit(AuditEvent::MasterSignedIn { admin_id: admin.id, email: admin.email, session_id: session.record.id });
    state.metrics.sign_in("success");
    Ok(SignedIn { token, session })
}

pub async fn logout(state: &AppState, tx: &Tx<'_>, principal: &Principal) -> AppResult<()> {
    let Some(session) = principal.session() else { return Err(AppError::Unauthenticated) };
    state.sessions.revoke(&session.hash, &session.record.subject).await?;
    tx.audit(match principal {
        Principal::User(u) => AuditEvent::SignedOut { workspace_id: u.workspace_id, user_id: u.user_id, session_id: session.record.id },
        Principal::MasterAdmin(m) => AuditEvent::MasterSignedOut { admin_id: m.admin_id, session_id: session.record.id },
        Principal::Anonymous => return Err(AppError::Unauthenticated),
    });
    Ok(())
}

pub async fn change_password(state: &AppState, tx: &Tx<'_>, principal: &Principal, current: &str, new: &str) -> AppResult<()> {
    let Principal::User(p) = principal else { return Err(AppError::Forbidden) };
    let new = NewPassword::parse("newPassword", new)?;
    if new.expose() == current {
        return Err(AppError::bad_input("newPassword", "must differ from the current password"));
    }
    let user = repo::users::get(tx.db(), p.workspace_id, p.user_id).await?.ok_or(AppError::Unauthenticated)?;
    if !state.hasher.verify(current, user.password_hash.as_deref()).await? {
        return Err(AppError::bad_input("currentPassword", "is not correct"));
    }
    let hash = state.hasher.hash(&new).await?;
    repo::users::set_password_hash(tx.db(), p.workspace_id, p.user_id, hash, state.clock.now()).await?;
    // Revoking is the safe direction: it is not undone if the audit write fails.
    let revoked = state.sessions.revoke_all(&p.session.record.subject, Some(&p.session.hash)).await?;
    tx.audit(AuditEvent::PasswordChanged { workspace_id: p.workspace_id, user_id: p.user_id, sessions_revoked: revoked });
    Ok(())
}

fn subject_ids(principal: &Principal) -> AppResult<(Option<Uuid>, Uuid, &ActiveSession)> {
    match principal {
        Principal::User(u) => Ok((Some(u.workspace_id), u.user_id, &u.session)),
        Principal::MasterAdmin(m) => Ok((None, m.admin_id, &m.session)),
        Principal::Anonymous => Err(AppError::Unauthenticated),
    }
}

pub async fn my_sessions(state: &AppState, principal: &Principal) -> AppResult<Vec<ActiveSession>> {
    let (_, _, current) = subject_ids(principal)?;
    Ok(state.sessions.list(&current.record.subject).await?)
}

pub async fn revoke_session(state: &AppState, tx: &Tx<'_>, principal: &Principal, session_id: Uuid) -> AppResult<()> {
    let (workspace_id, subject_id, current) = subject_ids(principal)?;
    let target =
        state.sessions.list(&current.record.subject).await?.into_iter().find(|s| s.record.id == session_id).ok_or(AppError::NotFound)?;
    state.sessions.revoke(&target.hash, &target.record.subject).await?;
    tx.audit(AuditEvent::SessionRevoked { workspace_id, subject_id, session_id });
    Ok(())
}

pub async fn revoke_other_sessions(state: &AppState, tx: &Tx<'_>, principal: &Principal) -> AppResult<usize> {
    let (workspace_id, subject_id, current) = subject_ids(principal)?;
    let count = state.sessions.revoke_all(&current.record.subject, Some(&current.hash)).await?;
    tx.audit(AuditEvent::OtherSessionsRevoked { workspace_id, subject_id, count });
    Ok(count)
}
