//! Two-factor, step-up, workspace security settings and per-user overrides over
//! GraphQL. Secrets (TOTP seed, recovery codes) appear only in the one answer that
//! creates them.

use super::context::user;
use super::context::{meta, state};
use super::convert::parse_id;
use super::types::{LoginPayload, TotpEnrollment, TwoFactorChallenge};
use crate::audit::Tx;
use crate::auth::security_settings::{
    self, LoginHours as Hours, SecurityOverride as Override, SecuritySettings as Settings, SessionLimitAction, TwoFactorRule,
};
use crate::authz::catalog::Permission;
use crate::error::{AppError, AppResult};
use crate::service::sign_in::TwoFactorMethod;
use crate::service::{self, security as svc};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
pub enum TwoFactorMode {
    /// Not enforced (users may still enrol, and suspicious sign-ins still ask).
    Off,
    /// Every staff member.
    All,
    /// Staff holding any of `twoFactorPermissions`.
    Permissions,
}

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl From<Weekday> for chrono::Weekday {
    fn from(d: Weekday) -> Self {
        match d {
            Weekday::Mon => Self::Mon,
            Weekday::Tue => Self::Tue,
            Weekday::Wed => Self::Wed,
            Weekday::Thu => Self::Thu,
            Weekday::Fri => Self::Fri,
            Weekday::Sat => Self::Sat,
            Weekday::Sun => Self::Sun,
        }
    }
}

impl From<chrono::Weekday> for Weekday {
    fn from(d: chrono::Weekday) -> Self {
        match d {
            chrono::Weekday::Mon => Self::Mon,
            chrono::Weekday::Tue => Self::Tue,
            chrono::Weekday::Wed => Self::Wed,
            chrono::Weekday::Thu => Self::Thu,
            chrono::Weekday::Fri => Self::Fri,
            chrono::Weekday::Sat => Self::Sat,
            chrono::Weekday::Sun => Self::Sun,
        }
    }
}

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
pub enum SessionLimit {
    /// A new sign-in ends the oldest session(s) to stay within the maximum.
    RevokeOldest,
    /// A new sign-in beyond the maximum is refused (CONFLICT).
    RefuseNew,
}

/// Days and local times during which sign-in and every request are allowed. A window
/// whose end is earlier than its start runs past midnight into the next day; `days`
/// are the days a window starts on.
#[derive(SimpleObject)]
pub struct LoginHours {
    pub days: Vec<Weekday>,
    /// "HH:MM", local to `timezone`.
    pub start: String,
    pub end: String,
    /// IANA time zone, e.g. "Europe/Oslo".
    pub timezone: String,
}

impl From<&Hours> for LoginHours {
    fn from(h: &Hours) -> Self {
        Self {
            days: h.days.iter().map(|d| (*d).into()).collect(),
            start: h.start.format("%H:%M").to_string(),
            end: h.end.format("%H:%M").to_string(),
            timezone: h.timezone.clone(),
        }
    }
}

#[derive(InputObject)]
pub struct LoginHoursInput {
    pub days: Vec<Weekday>,
    pub start: String,
    pub end: String,
    pub timezone: String,
}

impl LoginHoursInput {
    fn parse(self, field: &str) -> AppResult<Hours> {
        let mut days: Vec<chrono::Weekday> = self.days.into_iter().map(Into::into).collect();
        days.sort_by_key(chrono::Weekday::num_days_from_monday);
        days.dedup();
        let h = Hours {
            days,
            start: security_settings::parse_time(&format!("{field}.start"), &self.start)?,
            end: security_settings::parse_time(&format!("{field}.end"), &self.end)?,
            timezone: security_settings::parse_timezone(&format!("{field}.timezone"), self.timezone.trim())?.name().to_owned(),
        };
        h.validate(field)?;
        Ok(h)
    }
}

#[derive(SimpleObject)]
pub struct SecuritySettings {
    pub two_factor: TwoFactorMode,
    /// With `PERMISSIONS`: staff holding any of these must use two-factor.
    pub two_factor_permissions: Vec<Permission>,
    /// IP lockdown: CIDRs (IPv4 and IPv6) from which staff may sign in and work. Empty
    /// means no lockdown.
    pub ip_allowlist: Vec<String>,
    pub login_hours: Option<LoginHours>,
    /// Null: the server default.
    pub session_idle_minutes: Option<i32>,
    pub session_absolute_minutes: Option<i32>,
    /// Null: unlimited.
    pub max_sessions: Option<i32>,
    pub on_session_limit: SessionLimit,
}

fn int(v: Option<u32>) -> Option<i32> {
    v.map(|m| i32::try_from(m).unwrap_or(i32::MAX))
}

fn uint(field: &str, v: Option<i32>) -> AppResult<Option<u32>> {
    v.map(|n| u32::try_from(n).map_err(|_| AppError::bad_input(field, "must not be negative"))).transpose()
}

impl From<&Settings> for SecuritySettings {
    fn from(s: &Settings) -> Self {
        let (two_factor, perms) = match &s.two_factor {
            TwoFactorRule::Off => (TwoFactorMode::Off, Vec::new()),
            TwoFactorRule::All => (TwoFactorMode::All, Vec::new()),
            TwoFactorRule::Permissions { permissions } => (TwoFactorMode::Permissions, permissions.clone()),
        };
        Self {
            two_factor,
            two_factor_permissions: perms,
            ip_allowlist: s.ip_allowlist.iter().map(ToString::to_string).collect(),
            login_hours: s.login_hours.as_ref().map(Into::into),
            session_idle_minutes: int(s.session_idle_minutes),
            session_absolute_minutes: int(s.session_absolute_minutes),
            max_sessions: int(s.max_sessions),
            on_session_limit: match s.on_session_limit {
                SessionLimitAction::RevokeOldest => SessionLimit::RevokeOldest,
                SessionLimitAction::RefuseNew => SessionLimit::RefuseNew,
            },
        }
    }
}

/// The whole settings document; `updateSecuritySettings` replaces the settings with it
/// (omitted fields take their defaults: no rule).
#[derive(InputObject)]
pub struct SecuritySettingsInput {
    #[graphql(default_with = "TwoFactorMode::Off")]
    pub two_factor: TwoFactorMode,
    #[graphql(default)]
    pub two_factor_permissions: Vec<Permission>,
    #[graphql(default)]
    pub ip_allowlist: Vec<String>,
    pub login_hours: Option<LoginHoursInput>,
    pub session_idle_minutes: Option<i32>,
    pub session_absolute_minutes: Option<i32>,
    pub max_sessions: Option<i32>,
    #[graphql(default_with = "SessionLimit::RevokeOldest")]
    pub on_session_limit: SessionLimit,
}

impl SecuritySettingsInput {
    fn parse(self) -> AppResult<Settings> {
        let two_factor = match self.two_factor {
            TwoFactorMode::Off => TwoFactorRule::Off,
            TwoFactorMode::All => TwoFactorRule::All,
            TwoFactorMode::Permissions => TwoFactorRule::Permissions { permissions: self.two_factor_permissions },
        };
        Ok(Settings {
            two_factor,
            ip_allowlist: security_settings::parse_networks("ipAllowlist", &self.ip_allowlist)?,
            login_hours: self.login_hours.map(|h| h.parse("loginHours")).transpose()?,
            session_idle_minutes: uint("sessionIdleMinutes", self.session_idle_minutes)?,
            session_absolute_minutes: uint("sessionAbsoluteMinutes", self.session_absolute_minutes)?,
            max_sessions: uint("maxSessions", self.max_sessions)?,
            on_session_limit: match self.on_session_limit {
                SessionLimit::RevokeOldest => SessionLimitAction::RevokeOldest,
                SessionLimit::RefuseNew => SessionLimitAction::RefuseNew,
            },
        })
    }
}

/// One person's exceptions to the workspace rules. Null fields follow the workspace.
#[derive(SimpleObject)]
pub struct SecurityOverride {
    pub user_id: ID,
    pub username: String,
    pub reason: String,
    pub set_by_id: Option<ID>,
    pub set_by: String,
    pub set_at: Option<DateTime<Utc>>,
    /// After this the override stops applying (it stays listed for review).
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether it applies now (not expired).
    pub active: bool,
    /// Whole days since it was set, for access reviews.
    pub age_days: i32,
    pub two_factor_required: Option<bool>,
    /// false: IP lockdown does not apply to this person (road staff).
    pub ip_lockdown_enabled: Option<bool>,
    /// Networks allowed for this person on top of the workspace allowlist.
    pub extra_networks: Vec<String>,
    /// false: no login-hours rule for this person.
    pub login_hours_enabled: Option<bool>,
    /// This person's own hours and time zone, instead of the workspace's.
    pub login_hours: Option<LoginHours>,
    pub session_idle_minutes: Option<i32>,
    pub session_absolute_minutes: Option<i32>,
    pub max_sessions: Option<i32>,
}

impl SecurityOverride {
    fn project(user: &entity::user::Model, o: &Override, now: DateTime<Utc>) -> Self {
        Self {
            user_id: ID(user.id.to_string()),
            username: user.username.clone(),
            reason: o.reason.clone(),
            set_by_id: o.set_by.map(|u| ID(u.to_string())),
            set_by: o.set_by_label.clone(),
            set_at: o.set_at,
            expires_at: o.expires_at,
            active: o.is_active(now),
            age_days: o.set_at.map_or(0, |t| i32::try_from((now - t).num_days().max(0)).unwrap_or(i32::MAX)),
            two_factor_required: o.two_factor_required,
            ip_lockdown_enabled: o.ip_lockdown_enabled,
            extra_networks: o.extra_networks.iter().map(ToString::to_string).collect(),
            login_hours_enabled: o.login_hours_enabled,
            login_hours: o.login_hours.as_ref().map(Into::into),
            session_idle_minutes: int(o.session_idle_minutes),
            session_absolute_minutes: int(o.session_absolute_minutes),
            max_sessions: int(o.max_sessions),
        }
    }
}

#[derive(InputObject)]
pub struct SecurityOverrideInput {
    /// Why this person needs an exception (required, 5 to 500 characters).
    pub reason: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub two_factor_required: Option<bool>,
    pub ip_lockdown_enabled: Option<bool>,
    #[graphql(default)]
    pub extra_networks: Vec<String>,
    pub login_hours_enabled: Option<bool>,
    pub login_hours: Option<LoginHoursInput>,
    pub session_idle_minutes: Option<i32>,
    pub session_absolute_minutes: Option<i32>,
    pub max_sessions: Option<i32>,
}

#[derive(SimpleObject)]
pub struct TwoFactorStatus {
    pub totp_enabled: bool,
    pub totp_enabled_at: Option<DateTime<Utc>>,
    pub recovery_codes_left: i32,
    /// Until when this session may perform step-up operations without reauthenticating.
    pub step_up_valid_until: Option<DateTime<Utc>>,
    /// Whether this session passed a second factor.
    pub session_two_factor: bool,
}

impl From<crate::service::sign_in::TwoFactorStatus> for TwoFactorStatus {
    fn from(s: crate::service::sign_in::TwoFactorStatus) -> Self {
        Self {
            totp_enabled: s.totp_enabled_at.is_some(),
            totp_enabled_at: s.totp_enabled_at,
            recovery_codes_left: i32::try_from(s.recovery_codes_left).unwrap_or(i32::MAX),
            step_up_valid_until: s.step_up_valid_until,
            session_two_factor: s.session_two_factor,
        }
    }
}

#[derive(SimpleObject)]
pub struct RecoveryCodes {
    /// Ten single-use codes, shown only here, once. Each replaces a second factor once.
    pub codes: Vec<String>,
}

#[derive(InputObject)]
pub struct VerifyTwoFactorInput {
    pub challenge_id: String,
    pub method: TwoFactorMethod,
    #[graphql(secret)]
    pub code: String,
}

#[derive(Default)]
pub struct SecurityQuery;

#[Object]
impl SecurityQuery {
    /// The signed-in user's second factors and step-up state.
    async fn my_two_factor(&self, ctx: &Context<'_>) -> AppResult<TwoFactorStatus> {
        let state = state(ctx)?;
        match crate::graphql::context::principal(ctx) {
            crate::auth::Principal::MasterAdmin(m) => Ok(service::master_auth::status(state, m).await?.into()),
            _ => Ok(svc::status(state, user(ctx)?).await?.into()),
        }
    }

    /// The workspace's security settings.
    async fn security_settings(&self, ctx: &Context<'_>) -> AppResult<SecuritySettings> {
        let s = svc::settings(state(ctx)?, user(ctx)?.workspace_id).await?;
        Ok((&s).into())
    }

    /// Every per-user override, active or expired, with its reason and age.
    async fn security_overrides(&self, ctx: &Context<'_>) -> AppResult<Vec<SecurityOverride>> {
        let state = state(ctx)?;
        let now = state.clock.now();
        let rows = svc::overrides(state, user(ctx)?.workspace_id).await?;
        Ok(rows.iter().map(|r| SecurityOverride::project(&r.user, &r.rules, now)).collect())
    }
}

#[derive(Default)]
pub struct SecurityMutation;

#[Object]
impl SecurityMutation {
    /// Completes a sign-in that answered with a challenge. Wrong codes count against
    /// the challenge (a few attempts) and the account.
    async fn verify_two_factor(&self, ctx: &Context<'_>, input: VerifyTwoFactorInput) -> AppResult<LoginPayload> {
        let (state, meta, tx) = (state(ctx)?, meta(ctx)?, Tx::current(ctx)?);
        let req = service::sign_in::VerifyRequest {
            challenge_id: &input.challenge_id,
            method: input.method,
            code: &input.code,
            device: meta.device.clone(),
        };
        let signed = service::auth::verify_two_factor(state, &tx, meta, req).await?;
        Ok(super::auth::signed_in(ctx, state, signed))
    }

    /// Sends a new sign-in code for a pending email challenge: after a sign-in answered
    /// SERVICE_UNAVAILABLE with a `challengeId` (the code could not be sent), or when a
    /// code did not arrive. The previous code stops working. Limited per challenge and
    /// per account.
    async fn resend_sign_in_code(&self, ctx: &Context<'_>, challenge_id: String) -> AppResult<TwoFactorChallenge> {
        let (state, tx) = (state(ctx)?, Tx::current(ctx)?);
        let c = service::auth::resend_sign_in_code(state, &tx, &challenge_id).await?;
        Ok(TwoFactorChallenge { id: c.id, methods: c.methods, expires_at: c.expires_at })
    }

    /// Proves the password (or a TOTP code) again, so the session may perform step-up
    /// operations for the next 10 minutes.
    async fn reauthenticate(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] password: Option<String>,
        #[graphql(secret)] code: Option<String>,
    ) -> AppResult<TwoFactorStatus> {
        let (state, tx) = (state(ctx)?, Tx::current(ctx)?);
        if let crate::auth::Principal::MasterAdmin(m) = crate::graphql::context::principal(ctx) {
            let session = service::master_auth::reauthenticate(state, &tx, m, password.as_deref(), code.as_deref()).await?;
            let mut status: TwoFactorStatus = service::master_auth::status(state, m).await?.into();
            status.step_up_valid_until = session.record.proved_at.map(|t| t + super::root_access::STEP_UP_WINDOW);
            status.session_two_factor = session.record.two_factor;
            return Ok(status);
        }
        let p = user(ctx)?;
        let session = service::auth::reauthenticate(state, &tx, p, password.as_deref(), code.as_deref()).await?;
        // The principal still carries the session as it was before this proof.
        let mut status: TwoFactorStatus = svc::status(state, p).await?.into();
        status.step_up_valid_until = session.record.proved_at.map(|t| t + super::root_access::STEP_UP_WINDOW);
        status.session_two_factor = session.record.two_factor;
        Ok(status)
    }

    /// Starts TOTP enrolment (needs the current password). Returns the new seed once;
    /// it takes effect only after `confirmTotpEnrollment` with a code from it.
    async fn start_totp_enrollment(&self, ctx: &Context<'_>, #[graphql(secret)] password: String) -> AppResult<TotpEnrollment> {
        let (state, tx) = (state(ctx)?, Tx::current(ctx)?);
        let e = svc::start_totp(state, &tx, user(ctx)?, &password).await?;
        Ok(TotpEnrollment {
            otpauth_uri: e.otpauth_uri.expose().clone(),
            secret: e.secret.expose().clone(),
            qr_code_svg: e.qr_svg.expose().clone(),
        })
    }

    /// Completes TOTP enrolment with a current code; returns new recovery codes (once).
    async fn confirm_totp_enrollment(&self, ctx: &Context<'_>, #[graphql(secret)] code: String) -> AppResult<RecoveryCodes> {
        let (state, tx) = (state(ctx)?, Tx::current(ctx)?);
        let codes = svc::confirm_totp(state, &tx, user(ctx)?, &code).await?;
        Ok(RecoveryCodes { codes: codes.iter().map(|c| c.expose().clone()).collect() })
    }

    /// Removes TOTP (and the recovery codes); needs the current password.
    async fn disable_totp(&self, ctx: &Context<'_>, #[graphql(secret)] password: String) -> AppResult<bool> {
        let (state, tx) = (state(ctx)?, Tx::current(ctx)?);
        svc::disable_totp(state, &tx, user(ctx)?, &password).await?;
        Ok(true)
    }

    /// Replaces the recovery codes with a new set (the old ones stop working); needs
    /// the current password.
    async fn regenerate_recovery_codes(&self, ctx: &Context<'_>, #[graphql(secret)] password: String) -> AppResult<RecoveryCodes> {
        let (state, tx) = (state(ctx)?, Tx::current(ctx)?);
        let codes = svc::regenerate_recovery_codes(state, &tx, user(ctx)?, &password).await?;
        Ok(RecoveryCodes { codes: codes.iter().map(|c| c.expose().clone()).collect() })
    }

    /// Replaces the workspace's security settings. Refused if the new rules would lock
    /// out the request making the change.
    async fn update_security_settings(&self, ctx: &Context<'_>, input: SecuritySettingsInput) -> AppResult<SecuritySettings> {
        let (state, meta, tx) = (state(ctx)?, meta(ctx)?, Tx::current(ctx)?);
        let settings = input.parse()?;
        let saved = svc::update_settings(state, &tx, user(ctx)?, meta, settings).await?;
        Ok((&saved).into())
    }

    /// Sets (or replaces) one person's override of the workspace rules.
    async fn set_security_override(&self, ctx: &Context<'_>, user_id: ID, input: SecurityOverrideInput) -> AppResult<SecurityOverride> {
        let (state, tx) = (state(ctx)?, Tx::current(ctx)?);
        let uid = parse_id("userId", &user_id)?;
        let parsed = svc::OverrideInput {
            reason: input.reason,
            expires_at: input.expires_at,
            two_factor_required: input.two_factor_required,
            ip_lockdown_enabled: input.ip_lockdown_enabled,
            extra_networks: input.extra_networks,
            login_hours_enabled: input.login_hours_enabled,
            login_hours: input.login_hours.map(|h| h.parse("loginHours")).transpose()?,
            session_idle_minutes: uint("sessionIdleMinutes", input.session_idle_minutes)?,
            session_absolute_minutes: uint("sessionAbsoluteMinutes", input.session_absolute_minutes)?,
            max_sessions: uint("maxSessions", input.max_sessions)?,
        };
        let (target, ov) = svc::set_override(state, &tx, user(ctx)?, uid, parsed).await?;
        Ok(SecurityOverride::project(&target, &ov, state.clock.now()))
    }

    /// Removes one person's override (with a reason, for the log).
    async fn clear_security_override(&self, ctx: &Context<'_>, user_id: ID, reason: String) -> AppResult<bool> {
        let (state, tx) = (state(ctx)?, Tx::current(ctx)?);
        let uid = parse_id("userId", &user_id)?;
        svc::clear_override(state, &tx, user(ctx)?, uid, &reason).await?;
        Ok(true)
    }
}
