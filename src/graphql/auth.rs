//! Sign-in and sessions.

use super::context::{meta, principal, state};
use super::convert::parse_id;
use super::types::{LoginInput, LoginPayload, MasterLoginInput, Session, Viewer, ViewerKind};
use crate::audit::Tx;
use crate::auth::Principal;
use crate::auth::cookie;
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::service;
use async_graphql::{Context, ID, Object};

#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// The signed-in user and their workspace, or the signed-in master admin.
    async fn me(&self, ctx: &Context<'_>) -> AppResult<Viewer> {
        let state = state(ctx)?;
        match principal(ctx) {
            Principal::User(p) if p.api_key().is_some() => {
                let key = repo::api_keys::get(&state.db, p.workspace_id, p.user_id).await?.ok_or(AppError::Unauthenticated)?;
                let ws = repo::workspaces::get(&state.db, p.workspace_id).await?.ok_or(AppError::Unauthenticated)?;
                let role = p.grants.active_roles.first().map(|r| r.1.clone()).unwrap_or_default();
                Ok(Viewer {
                    kind: ViewerKind::ApiKey,
                    user: None,
                    workspace: Some(ws.into()),
                    master_admin: None,
                    api_key: Some(super::apikeys::ApiKey::project(key, role, state.clock.now())),
                    access: Some(p.grants.as_ref().into()),
                })
            }
            Principal::User(p) => {
                let (user, ws) =
                    repo::users::get_with_workspace(&state.db, p.workspace_id, p.user_id).await?.ok_or(AppError::Unauthenticated)?;
                Ok(Viewer {
                    kind: ViewerKind::User,
                    user: Some(super::types::User::project(user, super::types::Viewing::As(&p.grants, p.user_id))),
                    workspace: Some(ws.into()),
                    master_admin: None,
                    api_key: None,
                    access: Some(p.grants.as_ref().into()),
                })
            }
            Principal::MasterAdmin(m) => Ok(Viewer {
                kind: ViewerKind::MasterAdmin,
                user: None,
                workspace: None,
                master_admin: Some(super::types::MasterAdmin { id: ID(m.admin_id.to_string()), email: m.email.clone() }),
                api_key: None,
                access: None,
            }),
            Principal::Anonymous => Err(AppError::Unauthenticated),
        }
    }

    /// Every live session of the signed-in account, oldest first.
    async fn my_sessions(&self, ctx: &Context<'_>) -> AppResult<Vec<Session>> {
        let p = principal(ctx);
        let current = p.session().map(|s| s.hash.as_str());
        let sessions = service::auth::my_sessions(state(ctx)?, p).await?;
        Ok(sessions.iter().map(|s| Session::from_active(s, current)).collect())
    }
}

/// Hands a new session to the client: as the HttpOnly cookie and, once, in the body.
pub(crate) fn signed_in(ctx: &Context<'_>, state: &crate::state::AppState, signed: service::sign_in::SignedIn) -> LoginPayload {
    ctx.append_http_header(axum::http::header::SET_COOKIE, cookie::set(&state.config, signed.token.expose()));
    if let Some(device) = &signed.new_device_cookie {
        ctx.append_http_header(axum::http::header::SET_COOKIE, cookie::set_device(&state.config, device));
    }
    LoginPayload {
        token: Some(signed.token.expose().clone()),
        session: Some(Session::from_active(&signed.session, Some(&signed.session.hash))),
        challenge: None,
        failed_attempts_since_last_sign_in: i32::try_from(signed.failed_attempts).unwrap_or(i32::MAX),
        totp_enrollment: None,
        recovery_codes: (!signed.recovery_codes.is_empty()).then(|| signed.recovery_codes.iter().map(|c| c.expose().clone()).collect()),
    }
}

fn challenged(c: service::sign_in::ChallengeIssued) -> LoginPayload {
    LoginPayload {
        token: None,
        session: None,
        challenge: Some(super::types::TwoFactorChallenge { id: c.id, methods: c.methods, expires_at: c.expires_at }),
        failed_attempts_since_last_sign_in: 0,
        totp_enrollment: c.enrollment.map(|e| super::types::TotpEnrollment {
            otpauth_uri: e.otpauth_uri.expose().clone(),
            secret: e.secret.expose().clone(),
            qr_code_svg: e.qr_svg.expose().clone(),
        }),
        recovery_codes: None,
    }
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Signs a workspace user in by username or email. Every failure answers the same
    /// UNAUTHENTICATED error. When a second factor is needed (enforced, enrolled, or the
    /// sign-in looks unusual) the answer carries a `challenge` instead of a session.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> AppResult<LoginPayload> {
        let (state, meta) = (state(ctx)?, meta(ctx)?);
        let req = service::auth::LoginRequest {
            workspace: &input.workspace,
            login: &input.login,
            password: &input.password,
            device: meta.device.clone(),
        };
        // The password is checked before the transaction (and SQLite's write lock).
        let checked = service::auth::check_password(state, meta, &req).await?;
        let tx = Tx::open(ctx).await?;
        match service::auth::login(state, &tx, meta, req, checked).await? {
            service::sign_in::LoginResult::SignedIn(signed) => Ok(signed_in(ctx, state, *signed)),
            service::sign_in::LoginResult::Challenge(c) => Ok(challenged(c)),
        }
    }

    /// Signs a master admin (platform support) in. The password alone never opens a
    /// session: the answer is a TOTP challenge (on the first sign-in, with the
    /// authenticator to enrol in `totpEnrollment`), completed with `verifyTwoFactor`.
    async fn master_login(&self, ctx: &Context<'_>, input: MasterLoginInput) -> AppResult<LoginPayload> {
        let (state, meta) = (state(ctx)?, meta(ctx)?);
        let checked = service::master_auth::check_password(state, meta, &input.email, &input.password).await?;
        let tx = Tx::open(ctx).await?;
        let c = service::master_auth::login(state, &tx, &input.email, checked).await?;
        Ok(challenged(c))
    }

    /// Ends the current session.
    async fn logout(&self, ctx: &Context<'_>) -> AppResult<bool> {
        let (state, tx) = (state(ctx)?, Tx::current(ctx)?);
        service::auth::logout(state, &tx, principal(ctx)).await?;
        ctx.append_http_header(axum::http::header::SET_COOKIE, cookie::clear(&state.config));
        Ok(true)
    }

    /// Changes the signed-in user's password (12 to 256 characters, not weak, not
    /// containing the username, email or workspace name) and ends their other sessions
    /// unless `keepOtherSessions`.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] current_password: String,
        #[graphql(secret)] new_password: String,
        keep_other_sessions: Option<bool>,
    ) -> AppResult<bool> {
        let (state, tx) = (state(ctx)?, Tx::current(ctx)?);
        service::auth::change_password(state, &tx, principal(ctx), &current_password, &new_password, keep_other_sessions.unwrap_or(false))
            .await?;
        Ok(true)
    }

    /// Ends one of the signed-in account's sessions (see `mySessions`).
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> AppResult<bool> {
        let (state, tx) = (state(ctx)?, Tx::current(ctx)?);
        let id = parse_id("id", &id)?;
        service::auth::revoke_session(state, &tx, principal(ctx), id).await?;
        Ok(true)
    }

    /// Ends every session of the signed-in account except this one; returns how many.
    async fn revoke_other_sessions(&self, ctx: &Context<'_>) -> AppResult<i32> {
        let (state, tx) = (state(ctx)?, Tx::current(ctx)?);
        let n = service::auth::revoke_other_sessions(state, &tx, principal(ctx)).await?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }
}
