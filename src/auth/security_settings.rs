//! Workspace security settings, per-user overrides, and the sign-in restrictions that
//! follow from them. Pure: no I/O, no clock (every check takes `now` from the caller).
//!
//! Guarantees: every check fails closed. A lockdown with no known client address
//! refuses. A login-hours rule that cannot be evaluated (unknown time zone, no days,
//! `start == end`) refuses. An explicit "on" override with nothing to allow (no
//! networks) refuses. An expired override has no effect at all. Client addresses are
//! compared in canonical form, so `::ffff:a.b.c.d` is the IPv4 client `a.b.c.d`.
//! Stored networks are normalised the same way before matching. Login hours are
//! wall-clock hours in the rule's own IANA time zone, so they follow DST (a window
//! may be an hour shorter or longer on a changeover night). `X-Forwarded-For` is only
//! believed when the socket peer is a configured trusted proxy, and only as far as
//! the chain of trusted proxies goes.
//!
//! Assumptions: `now` is the server's trusted clock. `trusted_proxies` lists only
//! proxies that overwrite or append to `X-Forwarded-For`. Settings are validated
//! (`validate`, `parse_*`) when they are written. Reads still tolerate unvalidated
//! data by refusing, never by allowing.
//!
//! Stored JSON is stable: camelCase fields, `TwoFactorRule` tagged by `mode`,
//! permissions as their catalog strings (`"customers.read"`), weekdays as `"Mon"`,
//! times as `"HH:MM:SS"`, time zones as IANA names, networks as CIDR strings.
//! An unknown permission in stored JSON is a deserialisation error, not a silently
//! dropped requirement.

use crate::authz::catalog::Permission;
use crate::error::{AppError, AppResult};
use axum::http::HeaderMap;
use chrono::{DateTime, Datelike, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Most networks one allowlist (workspace or per-user extra) may hold.
pub const MAX_NETWORKS: usize = 200;
/// Upper bound for the session minute settings (one year).
pub const MAX_SESSION_MINUTES: u32 = 525_600;
/// Upper bound for `max_sessions`.
pub const MAX_SESSIONS_LIMIT: u32 = 1_000;

/// The security settings of one workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct SecuritySettings {
    pub two_factor: TwoFactorRule,
    /// Empty means no IP lockdown.
    pub ip_allowlist: Vec<IpNet>,
    /// `None` means sign-in at any time.
    pub login_hours: Option<LoginHours>,
    /// `None` means the server default.
    pub session_idle_minutes: Option<u32>,
    pub session_absolute_minutes: Option<u32>,
    /// `None` means unlimited.
    pub max_sessions: Option<u32>,
    pub on_session_limit: SessionLimitAction,
}

/// Who must use a second factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "mode", rename_all = "camelCase")]
pub enum TwoFactorRule {
    #[default]
    Off,
    All,
    /// Everyone who holds at least one of these permissions.
    Permissions {
        #[serde(with = "permission_strings")]
        permissions: Vec<Permission>,
    },
}

/// What happens when a sign-in would exceed `max_sessions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum SessionLimitAction {
    #[default]
    RevokeOldest,
    RefuseNew,
}

/// A weekly sign-in window in wall-clock time of `timezone`.
///
/// `days` are the days on which a window starts. `start` is inclusive and `end` is
/// exclusive. `end < start` means the window runs past midnight into the next day,
/// so Fri 22:00-06:00 allows Fri 22:00 through Sat 05:59:59. `start == end` is
/// invalid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginHours {
    pub days: Vec<Weekday>,
    pub start: NaiveTime,
    pub end: NaiveTime,
    /// IANA name, e.g. `Europe/Oslo`. Validated with [`parse_timezone`] on write.
    pub timezone: String,
}

impl LoginHours {
    pub fn validate(&self, field: &str) -> AppResult<()> {
        if self.days.is_empty() {
            return Err(AppError::bad_input(field, "choose at least one day"));
        }
        if self.start == self.end {
            return Err(AppError::bad_input(field, "start and end must differ"));
        }
        parse_timezone(field, &self.timezone)?;
        Ok(())
    }

    /// Whether `now` falls inside a window. Anything invalid refuses.
    pub fn allows(&self, now: DateTime<Utc>) -> bool {
        if self.days.is_empty() || self.start == self.end {
            return false;
        }
        let Ok(tz) = self.timezone.parse::<Tz>() else {
            return false;
        };
        let local = now.with_timezone(&tz);
        let (day, time) = (local.weekday(), local.time());
        if self.start < self.end {
            self.days.contains(&day) && self.start <= time && time < self.end
        } else {
            (self.days.contains(&day) && time >= self.start) || (self.days.contains(&day.pred()) && time < self.end)
        }
    }
}

impl SecuritySettings {
    /// Write-time checks. `field` prefixes the names in errors (`field.loginHours`).
    pub fn validate(&self, field: &str) -> AppResult<()> {
        if let TwoFactorRule::Permissions { permissions } = &self.two_factor
            && permissions.is_empty()
        {
            return Err(AppError::bad_input(&format!("{field}.twoFactor"), "choose at least one permission"));
        }
        if self.ip_allowlist.len() > MAX_NETWORKS {
            return Err(AppError::bad_input(&format!("{field}.ipAllowlist"), format!("at most {MAX_NETWORKS} entries")));
        }
        if let Some(hours) = &self.login_hours {
            hours.validate(&format!("{field}.loginHours"))?;
        }
        validate_session_numbers(field, self.session_idle_minutes, self.session_absolute_minutes, self.max_sessions)
    }
}

/// One user's deviations from the workspace settings. Every `None` or empty field
/// means "same as the workspace".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct SecurityOverride {
    pub reason: String,
    pub set_by: Option<uuid::Uuid>,
    pub set_by_label: String,
    pub set_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub two_factor_required: Option<bool>,
    /// `Some(false)` turns IP lockdown off for this person. `Some(true)` turns it on
    /// even if the workspace has none, allowing only `extra_networks` then.
    pub ip_lockdown_enabled: Option<bool>,
    /// Added to the workspace allowlist for this person. These only widen an
    /// existing lockdown. They do not create one unless `ip_lockdown_enabled` is
    /// `Some(true)`.
    pub extra_networks: Vec<IpNet>,
    /// `Some(false)`: no hours rule for this person.
    pub login_hours_enabled: Option<bool>,
    /// Own hours and time zone, replacing the workspace's.
    pub login_hours: Option<LoginHours>,
    pub session_idle_minutes: Option<u32>,
    pub session_absolute_minutes: Option<u32>,
    pub max_sessions: Option<u32>,
}

impl SecurityOverride {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|end| now < end)
    }

    /// Write-time checks. `field` prefixes the names in errors.
    pub fn validate(&self, field: &str) -> AppResult<()> {
        if self.extra_networks.len() > MAX_NETWORKS {
            return Err(AppError::bad_input(&format!("{field}.extraNetworks"), format!("at most {MAX_NETWORKS} entries")));
        }
        if let Some(hours) = &self.login_hours {
            hours.validate(&format!("{field}.loginHours"))?;
        }
        if let (Some(set), Some(exp)) = (self.set_at, self.expires_at)
            && exp <= set
        {
            return Err(AppError::bad_input(&format!("{field}.expiresAt"), "must be after the time it is set"));
        }
        validate_session_numbers(field, self.session_idle_minutes, self.session_absolute_minutes, self.max_sessions)
    }
}

fn validate_session_numbers(field: &str, idle: Option<u32>, absolute: Option<u32>, max_sessions: Option<u32>) -> AppResult<()> {
    for (name, value) in [("sessionIdleMinutes", idle), ("sessionAbsoluteMinutes", absolute)] {
        if value.is_some_and(|m| m == 0 || m > MAX_SESSION_MINUTES) {
            return Err(AppError::bad_input(&format!("{field}.{name}"), format!("must be between 1 and {MAX_SESSION_MINUTES}")));
        }
    }
    if max_sessions.is_some_and(|n| n == 0 || n > MAX_SESSIONS_LIMIT) {
        return Err(AppError::bad_input(&format!("{field}.maxSessions"), format!("must be between 1 and {MAX_SESSIONS_LIMIT}")));
    }
    Ok(())
}

/// The settings that apply to one user right now (workspace plus active override).
#[derive(Debug, Clone, PartialEq)]
pub struct EffectivePolicy {
    pub two_factor: TwoFactorRule,
    pub two_factor_override: Option<bool>,
    /// `None` means no lockdown. `Some(empty)` refuses every address.
    pub ip_allowlist: Option<Vec<IpNet>>,
    pub login_hours: Option<LoginHours>,
    pub session_idle_minutes: Option<u32>,
    pub session_absolute_minutes: Option<u32>,
    pub max_sessions: Option<u32>,
    pub on_session_limit: SessionLimitAction,
}

/// Why a sign-in (or a request) is refused by the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    Network,
    Hours,
}

impl Restriction {
    /// The audit-log spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::Hours => "hours",
        }
    }
}

/// Merges the workspace settings with the user's override. An expired override
/// does not apply at all.
pub fn effective(settings: &SecuritySettings, ov: Option<&SecurityOverride>, now: DateTime<Utc>) -> EffectivePolicy {
    let ov = ov.filter(|o| o.is_active(now));

    let ip_allowlist = {
        let lockdown = match ov.and_then(|o| o.ip_lockdown_enabled) {
            Some(enabled) => enabled,
            None => !settings.ip_allowlist.is_empty(),
        };
        lockdown.then(|| {
            let extra = ov.map(|o| o.extra_networks.as_slice()).unwrap_or_default();
            normalise_networks(settings.ip_allowlist.iter().chain(extra).copied())
        })
    };

    let login_hours = match ov {
        Some(o) if o.login_hours_enabled == Some(false) => None,
        Some(o) => match (&o.login_hours, &settings.login_hours) {
            (Some(own), _) => Some(own.clone()),
            (None, Some(ws)) => Some(ws.clone()),
            // Explicitly on, but no hours anywhere: nothing is allowed.
            (None, None) if o.login_hours_enabled == Some(true) => Some(LoginHours::never()),
            (None, None) => None,
        },
        None => settings.login_hours.clone(),
    };

    EffectivePolicy {
        two_factor: settings.two_factor.clone(),
        two_factor_override: ov.and_then(|o| o.two_factor_required),
        ip_allowlist,
        login_hours,
        session_idle_minutes: ov.and_then(|o| o.session_idle_minutes).or(settings.session_idle_minutes),
        session_absolute_minutes: ov.and_then(|o| o.session_absolute_minutes).or(settings.session_absolute_minutes),
        max_sessions: ov.and_then(|o| o.max_sessions).or(settings.max_sessions),
        on_session_limit: settings.on_session_limit,
    }
}

impl LoginHours {
    /// A rule with no days, which never allows sign-in.
    fn never() -> Self {
        Self { days: Vec::new(), start: NaiveTime::MIN, end: NaiveTime::MIN, timezone: "UTC".into() }
    }
}

impl EffectivePolicy {
    /// The override wins when set. Otherwise `All` requires, `Off` does not, and
    /// `Permissions` requires when `holds` is true for any listed permission.
    pub fn two_factor_required(&self, holds: impl Fn(Permission) -> bool) -> bool {
        if let Some(forced) = self.two_factor_override {
            return forced;
        }
        match &self.two_factor {
            TwoFactorRule::Off => false,
            TwoFactorRule::All => true,
            TwoFactorRule::Permissions { permissions } => permissions.iter().any(|p| holds(*p)),
        }
    }

    /// No lockdown allows everything. Under lockdown an unknown address refuses.
    pub fn allows_ip(&self, ip: Option<IpAddr>) -> bool {
        let Some(allowlist) = &self.ip_allowlist else {
            return true;
        };
        let Some(ip) = ip else {
            return false;
        };
        let ip = ip.to_canonical();
        allowlist.iter().any(|net| canonical_net(*net).contains(&ip))
    }

    pub fn allows_time(&self, now: DateTime<Utc>) -> bool {
        self.login_hours.as_ref().is_none_or(|h| h.allows(now))
    }

    /// The network is checked first, so an outsider at a permitted time is
    /// reported as `Network`.
    pub fn check(&self, ip: Option<IpAddr>, now: DateTime<Utc>) -> Result<(), Restriction> {
        if !self.allows_ip(ip) {
            return Err(Restriction::Network);
        }
        if !self.allows_time(now) {
            return Err(Restriction::Hours);
        }
        Ok(())
    }
}

/// The host bits are cleared. IPv4-mapped IPv6 networks (prefix of at least 96)
/// become the IPv4 network they cover.
fn canonical_net(net: IpNet) -> IpNet {
    match net.trunc() {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(IpNet::V6(v6), |n| IpNet::V4(n.trunc())),
            None => IpNet::V6(v6),
        },
        other => other,
    }
}

/// Canonical networks in first-seen order, without duplicates.
fn normalise_networks(nets: impl IntoIterator<Item = IpNet>) -> Vec<IpNet> {
    let mut out: Vec<IpNet> = Vec::new();
    for net in nets.into_iter().map(canonical_net) {
        if !out.contains(&net) {
            out.push(net);
        }
    }
    out
}

/// Parses an allowlist as typed by an administrator. Each entry is a CIDR
/// (`10.0.0.0/8`, `2001:db8::/32`) or a bare address (a /32 or /128). Entries are
/// trimmed and blank ones skipped. The result is normalised (host bits cleared,
/// IPv4-mapped IPv6 networks converted to IPv4) and deduplicated.
pub fn parse_networks(field: &str, raw: &[String]) -> AppResult<Vec<IpNet>> {
    if raw.len() > MAX_NETWORKS {
        return Err(AppError::bad_input(field, format!("at most {MAX_NETWORKS} entries")));
    }
    let mut nets = Vec::with_capacity(raw.len());
    for entry in raw {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let net = match entry.parse::<IpNet>() {
            Ok(net) => net,
            Err(_) => match entry.parse::<IpAddr>() {
                Ok(addr) => IpNet::from(addr),
                Err(_) => return Err(AppError::bad_input(field, format!("not an IP address or network: {:?}", shorten(entry)))),
            },
        };
        nets.push(net);
    }
    Ok(normalise_networks(nets))
}

/// At most 64 characters of user input, for error messages.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// An IANA time zone name (`Europe/Oslo`), exactly as spelled in the tz database.
/// Store `tz.name()` of the result.
pub fn parse_timezone(field: &str, tz: &str) -> AppResult<Tz> {
    tz.trim().parse::<Tz>().map_err(|_| AppError::bad_input(field, format!("unknown time zone: {:?}", shorten(tz))))
}

/// A 24-hour `HH:MM` time (exactly two digits each, `00:00` to `23:59`).
pub fn parse_time(field: &str, hhmm: &str) -> AppResult<NaiveTime> {
    let bad = || AppError::bad_input(field, format!("expected a time as HH:MM: {:?}", shorten(hhmm)));
    let b = hhmm.trim().as_bytes();
    if b.len() != 5 || b[2] != b':' || ![b[0], b[1], b[3], b[4]].iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let hour = u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0');
    let minute = u32::from(b[3] - b'0') * 10 + u32::from(b[4] - b'0');
    NaiveTime::from_hms_opt(hour, minute, 0).ok_or_else(bad)
}

/// The address a request comes from.
///
/// This is the socket peer unless the peer is a trusted proxy. In that case the
/// `X-Forwarded-For` entries (all header instances, comma-separated) are walked from
/// the right, skipping trusted proxies, and the first untrusted address is returned.
/// A missing header or an unparseable entry stops the walk at the last good address
/// (a trusted proxy, or the peer). An untrusted peer's header is ignored. Results
/// are canonical (`::ffff:a.b.c.d` becomes `a.b.c.d`).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpNet]) -> IpAddr {
    let trusted = |ip: IpAddr| trusted_proxies.iter().any(|net| canonical_net(*net).contains(&ip));
    let peer = peer.to_canonical();
    if !trusted(peer) {
        return peer;
    }
    // `None` marks a header instance that is not visible ASCII (unparseable).
    let mut entries: Vec<Option<&str>> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        match value.to_str() {
            Ok(s) => entries.extend(s.split(',').map(|e| Some(e.trim()))),
            Err(_) => entries.push(None),
        }
    }
    let mut last_good = peer;
    for entry in entries.into_iter().rev() {
        let Some(ip) = entry.and_then(|e| e.parse::<IpAddr>().ok()) else {
            break;
        };
        let ip = ip.to_canonical();
        if !trusted(ip) {
            return ip;
        }
        last_good = ip;
    }
    last_good
}

/// Permissions stored as their catalog strings. Unknown strings are an error.
mod permission_strings {
    use super::Permission;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(perms: &[Permission], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(perms.iter().map(|p| p.as_str()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Permission>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| Permission::parse(s).ok_or_else(|| D::Error::custom(format!("unknown permission {s:?}"))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    const WEEKDAYS: [Weekday; 5] = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri];

    fn hours(days: &[Weekday], start: NaiveTime, end: NaiveTime, tz: &str) -> LoginHours {
        LoginHours { days: days.to_vec(), start, end, timezone: tz.into() }
    }

    fn with_allowlist(list: &[&str]) -> SecuritySettings {
        SecuritySettings { ip_allowlist: nets(list), ..Default::default() }
    }

    fn with_hours(h: LoginHours) -> SecuritySettings {
        SecuritySettings { login_hours: Some(h), ..Default::default() }
    }

    fn now() -> DateTime<Utc> {
        at(2026, 6, 15, 12, 0, 0)
    }

    // ---- IP allowlist ----

    #[test]
    fn ipv4_allowlist() {
        let p = effective(&with_allowlist(&["10.0.0.0/8", "192.0.2.7/32"]), None, now());
        assert!(p.allows_ip(ip("10.1.2.3")));
        assert!(p.allows_ip(ip("192.0.2.7")));
        assert!(!p.allows_ip(ip("192.0.2.8")));
        assert!(!p.allows_ip(ip("11.0.0.1")));
        assert!(!p.allows_ip(ip("2001:db8::1")));
        assert_eq!(p.check(ip("11.0.0.1"), now()), Err(Restriction::Network));
        assert_eq!(p.check(ip("10.0.0.1"), now()), Ok(()));
    }

    #[test]
    fn ipv6_allowlist() {
        let p = effective(&with_allowlist(&["2001:db8:1::/48"]), None, now());
        assert!(p.allows_ip(ip("2001:db8:1::42")));
        assert!(p.allows_ip(ip("2001:db8:1:ffff::1")));
        assert!(!p.allows_ip(ip("2001:db8:2::1")));
        assert!(!p.allows_ip(ip("10.0.0.1")));
    }

    #[test]
    fn v4_mapped_v6_client_matches_v4_networks_only() {
        let p = effective(&with_allowlist(&["203.0.113.0/24"]), None, now());
        assert!(p.allows_ip(ip("::ffff:203.0.113.9")));
        assert!(!p.allows_ip(ip("::ffff:198.51.100.9")));
        // A stored v4-mapped network (bypassing parse_networks) still matches.
        let p = effective(&with_allowlist(&["::ffff:198.51.100.0/120"]), None, now());
        assert!(p.allows_ip(ip("198.51.100.9")));
        assert!(p.allows_ip(ip("::ffff:198.51.100.9")));
        assert!(!p.allows_ip(ip("198.51.101.9")));
    }

    #[test]
    fn lockdown_with_unknown_ip_is_denied() {
        let p = effective(&with_allowlist(&["0.0.0.0/0", "::/0"]), None, now());
        assert!(!p.allows_ip(None));
        assert_eq!(p.check(None, now()), Err(Restriction::Network));
    }

    #[test]
    fn no_lockdown_allows_anything() {
        let p = effective(&SecuritySettings::default(), None, now());
        assert_eq!(p.ip_allowlist, None);
        assert!(p.allows_ip(None));
        assert!(p.allows_ip(ip("8.8.8.8")));
        assert_eq!(p.check(None, now()), Ok(()));
    }

    #[test]
    fn override_lockdown_off_allows_anywhere() {
        let ov = SecurityOverride { ip_lockdown_enabled: Some(false), ..Default::default() };
        let p = effective(&with_allowlist(&["10.0.0.0/8"]), Some(&ov), now());
        assert_eq!(p.ip_allowlist, None);
        assert!(p.allows_ip(ip("8.8.8.8")));
        assert!(p.allows_ip(None));
    }

    #[test]
    fn override_extra_networks_add_to_workspace_list() {
        let ov = SecurityOverride { extra_networks: nets(&["198.51.100.0/24", "10.0.0.0/8"]), ..Default::default() };
        let p = effective(&with_allowlist(&["10.0.0.0/8"]), Some(&ov), now());
        assert_eq!(p.ip_allowlist, Some(nets(&["10.0.0.0/8", "198.51.100.0/24"])));
        assert!(p.allows_ip(ip("10.9.9.9")));
        assert!(p.allows_ip(ip("198.51.100.1")));
        assert!(!p.allows_ip(ip("203.0.113.1")));
    }

    #[test]
    fn extra_networks_alone_do_not_create_a_lockdown() {
        let ov = SecurityOverride { extra_networks: nets(&["198.51.100.0/24"]), ..Default::default() };
        let p = effective(&SecuritySettings::default(), Some(&ov), now());
        assert_eq!(p.ip_allowlist, None);
        assert!(p.allows_ip(ip("203.0.113.1")));
    }

    #[test]
    fn override_lockdown_on_without_workspace_list() {
        let ov = SecurityOverride { ip_lockdown_enabled: Some(true), extra_networks: nets(&["198.51.100.0/24"]), ..Default::default() };
        let p = effective(&SecuritySettings::default(), Some(&ov), now());
        assert!(p.allows_ip(ip("198.51.100.1")));
        assert!(!p.allows_ip(ip("203.0.113.1")));
        // On, with nothing to allow: fail closed.
        let ov = SecurityOverride { ip_lockdown_enabled: Some(true), ..Default::default() };
        let p = effective(&SecuritySettings::default(), Some(&ov), now());
        assert_eq!(p.ip_allowlist, Some(vec![]));
        assert!(!p.allows_ip(ip("198.51.100.1")));
    }

    #[test]
    fn expired_override_no_longer_applies() {
        let settings = with_allowlist(&["10.0.0.0/8"]);
        let ov = SecurityOverride {
            ip_lockdown_enabled: Some(false),
            two_factor_required: Some(false),
            max_sessions: Some(9),
            expires_at: Some(at(2026, 6, 15, 12, 0, 0)),
            ..Default::default()
        };
        assert!(ov.is_active(at(2026, 6, 15, 11, 59, 59)));
        assert!(!ov.is_active(at(2026, 6, 15, 12, 0, 0)));

        let before = effective(&settings, Some(&ov), at(2026, 6, 15, 11, 59, 59));
        assert!(before.allows_ip(ip("8.8.8.8")));
        assert_eq!(before.max_sessions, Some(9));

        let after = effective(&settings, Some(&ov), at(2026, 6, 15, 12, 0, 0));
        assert_eq!(after, effective(&settings, None, at(2026, 6, 15, 12, 0, 0)));
        assert!(!after.allows_ip(ip("8.8.8.8")));
        assert_eq!(after.two_factor_override, None);
        assert_eq!(after.max_sessions, None);
    }

    #[test]
    fn session_settings_merge() {
        let settings = SecuritySettings {
            session_idle_minutes: Some(30),
            session_absolute_minutes: Some(600),
            max_sessions: Some(3),
            on_session_limit: SessionLimitAction::RefuseNew,
            ..Default::default()
        };
        let ov = SecurityOverride { session_idle_minutes: Some(5), max_sessions: Some(1), ..Default::default() };
        let p = effective(&settings, Some(&ov), now());
        assert_eq!(p.session_idle_minutes, Some(5));
        assert_eq!(p.session_absolute_minutes, Some(600));
        assert_eq!(p.max_sessions, Some(1));
        assert_eq!(p.on_session_limit, SessionLimitAction::RefuseNew);
    }

    // ---- Login hours ----

    #[test]
    fn office_hours_oslo_edges() {
        // 2026-06-15 is a Monday; Oslo is UTC+2 (CEST).
        let p = effective(&with_hours(hours(&WEEKDAYS, t(9, 0), t(17, 0), "Europe/Oslo")), None, now());
        assert!(!p.allows_time(at(2026, 6, 15, 6, 59, 59))); // 08:59:59
        assert!(p.allows_time(at(2026, 6, 15, 7, 0, 0))); // 09:00:00
        assert!(p.allows_time(at(2026, 6, 15, 14, 59, 59))); // 16:59:59
        assert!(!p.allows_time(at(2026, 6, 15, 15, 0, 0))); // 17:00:00
        assert!(!p.allows_time(at(2026, 6, 20, 10, 0, 0))); // Saturday noon
        assert_eq!(p.check(ip("1.2.3.4"), at(2026, 6, 15, 15, 0, 0)), Err(Restriction::Hours));
        assert_eq!(p.check(ip("1.2.3.4"), at(2026, 6, 15, 10, 0, 0)), Ok(()));
    }

    #[test]
    fn window_crossing_midnight() {
        // 2026-03-13 is a Friday.
        let p = effective(&with_hours(hours(&[Weekday::Fri], t(22, 0), t(6, 0), "UTC")), None, now());
        assert!(!p.allows_time(at(2026, 3, 13, 21, 59, 59)));
        assert!(p.allows_time(at(2026, 3, 13, 22, 0, 0)));
        assert!(p.allows_time(at(2026, 3, 13, 23, 0, 0))); // Fri 23:00
        assert!(p.allows_time(at(2026, 3, 14, 0, 0, 0))); // Sat 00:00
        assert!(p.allows_time(at(2026, 3, 14, 5, 59, 0))); // Sat 05:59
        assert!(p.allows_time(at(2026, 3, 14, 5, 59, 59)));
        assert!(!p.allows_time(at(2026, 3, 14, 6, 0, 0))); // Sat 06:00
        assert!(!p.allows_time(at(2026, 3, 12, 23, 0, 0))); // Thu 23:00, Thu not listed
        assert!(!p.allows_time(at(2026, 3, 13, 3, 0, 0))); // Fri 03:00 belongs to Thu's window
        assert!(!p.allows_time(at(2026, 3, 14, 23, 0, 0))); // Sat 23:00
    }

    #[test]
    fn spring_forward_new_york() {
        // DST began Sunday 2026-03-08 in New York.
        let p = effective(&with_hours(hours(&WEEKDAYS, t(8, 0), t(17, 0), "America/New_York")), None, now());
        assert!(p.allows_time(at(2026, 3, 9, 12, 30, 0))); // Mon 08:30 EDT
        assert!(!p.allows_time(at(2026, 3, 6, 12, 30, 0))); // Fri 07:30 EST
        assert!(p.allows_time(at(2026, 3, 6, 13, 0, 0))); // Fri 08:00 EST
        assert!(!p.allows_time(at(2026, 3, 9, 21, 0, 0))); // Mon 17:00 EDT
        assert!(p.allows_time(at(2026, 3, 6, 21, 0, 0))); // Fri 16:00 EST
    }

    #[test]
    fn fall_back_oslo() {
        // DST ended Sunday 2026-10-25 at 01:00 UTC (03:00 CEST -> 02:00 CET).
        let p = effective(&with_hours(hours(&WEEKDAYS, t(8, 0), t(16, 0), "Europe/Oslo")), None, now());
        assert!(!p.allows_time(at(2026, 10, 23, 5, 30, 0))); // Fri 07:30 CEST
        assert!(p.allows_time(at(2026, 10, 23, 6, 30, 0))); // Fri 08:30 CEST
        assert!(!p.allows_time(at(2026, 10, 26, 6, 30, 0))); // Mon 07:30 CET
        assert!(p.allows_time(at(2026, 10, 26, 7, 30, 0))); // Mon 08:30 CET
        assert!(p.allows_time(at(2026, 10, 26, 14, 59, 59))); // Mon 15:59:59 CET
        assert!(!p.allows_time(at(2026, 10, 26, 15, 0, 0))); // Mon 16:00 CET

        // A window across the changeover night itself: Sat 22:00 - 03:00.
        let p = effective(&with_hours(hours(&[Weekday::Sat], t(22, 0), t(3, 0), "Europe/Oslo")), None, now());
        assert!(!p.allows_time(at(2026, 10, 24, 19, 59, 59))); // Sat 21:59:59 CEST
        assert!(p.allows_time(at(2026, 10, 24, 20, 0, 0))); // Sat 22:00 CEST
        assert!(p.allows_time(at(2026, 10, 25, 0, 30, 0))); // 02:30 CEST (first)
        assert!(p.allows_time(at(2026, 10, 25, 1, 30, 0))); // 02:30 CET (second)
        assert!(p.allows_time(at(2026, 10, 25, 1, 59, 59))); // 02:59:59 CET
        assert!(!p.allows_time(at(2026, 10, 25, 2, 0, 0))); // 03:00 CET
    }

    #[test]
    fn override_hours_use_their_own_timezone() {
        let settings = with_hours(hours(&WEEKDAYS, t(8, 0), t(16, 0), "Europe/Oslo"));
        let ov = SecurityOverride { login_hours: Some(hours(&WEEKDAYS, t(9, 0), t(17, 0), "Asia/Tokyo")), ..Default::default() };
        let ws = effective(&settings, None, now());
        let user = effective(&settings, Some(&ov), now());
        // Mon 2026-06-15 01:00 UTC = 10:00 Tokyo, 03:00 Oslo.
        assert!(!ws.allows_time(at(2026, 6, 15, 1, 0, 0)));
        assert!(user.allows_time(at(2026, 6, 15, 1, 0, 0)));
        // Mon 10:00 UTC = 19:00 Tokyo, 12:00 Oslo.
        assert!(ws.allows_time(at(2026, 6, 15, 10, 0, 0)));
        assert!(!user.allows_time(at(2026, 6, 15, 10, 0, 0)));
        // Sun 2026-06-14 23:30 UTC = Mon 08:30 Tokyo (not yet), Mon 00:00 UTC = 09:00 Tokyo.
        assert!(!user.allows_time(at(2026, 6, 14, 23, 30, 0)));
        assert!(user.allows_time(at(2026, 6, 15, 0, 0, 0)));
    }

    #[test]
    fn override_hours_disabled_and_forced() {
        let settings = with_hours(hours(&WEEKDAYS, t(8, 0), t(16, 0), "Europe/Oslo"));
        let off = SecurityOverride {
            login_hours_enabled: Some(false),
            login_hours: Some(hours(&WEEKDAYS, t(9, 0), t(10, 0), "UTC")),
            ..Default::default()
        };
        let p = effective(&settings, Some(&off), now());
        assert_eq!(p.login_hours, None);
        assert!(p.allows_time(at(2026, 6, 20, 3, 0, 0)));

        // Own hours apply even when the workspace has none.
        let own = SecurityOverride { login_hours: Some(hours(&WEEKDAYS, t(9, 0), t(10, 0), "UTC")), ..Default::default() };
        let p = effective(&SecuritySettings::default(), Some(&own), now());
        assert!(p.allows_time(at(2026, 6, 15, 9, 30, 0)));
        assert!(!p.allows_time(at(2026, 6, 15, 10, 30, 0)));

        // Explicitly on with no hours anywhere: fail closed.
        let on = SecurityOverride { login_hours_enabled: Some(true), ..Default::default() };
        let p = effective(&SecuritySettings::default(), Some(&on), now());
        assert!(!p.allows_time(at(2026, 6, 15, 9, 30, 0)));
        // Explicitly on with workspace hours: the workspace hours.
        let p = effective(&settings, Some(&on), now());
        assert_eq!(p.login_hours, settings.login_hours);
    }

    #[test]
    fn invalid_hours_fail_closed() {
        let bad_tz = effective(&with_hours(hours(&WEEKDAYS, t(0, 0), t(23, 59), "Mars/Olympus")), None, now());
        assert!(!bad_tz.allows_time(at(2026, 6, 15, 12, 0, 0)));
        let no_days = effective(&with_hours(hours(&[], t(0, 0), t(23, 59), "UTC")), None, now());
        assert!(!no_days.allows_time(at(2026, 6, 15, 12, 0, 0)));
        let empty = effective(&with_hours(hours(&WEEKDAYS, t(9, 0), t(9, 0), "UTC")), None, now());
        assert!(!empty.allows_time(at(2026, 6, 15, 9, 0, 0)));
    }

    #[test]
    fn login_hours_validate() {
        assert!(hours(&WEEKDAYS, t(9, 0), t(17, 0), "Europe/Oslo").validate("h").is_ok());
        assert!(hours(&[Weekday::Fri], t(22, 0), t(6, 0), "UTC").validate("h").is_ok());
        for bad in [
            hours(&[], t(9, 0), t(17, 0), "Europe/Oslo"),
            hours(&WEEKDAYS, t(9, 0), t(9, 0), "Europe/Oslo"),
            hours(&WEEKDAYS, t(9, 0), t(17, 0), "Europe/Nowhere"),
            hours(&WEEKDAYS, t(9, 0), t(17, 0), "europe/oslo"),
        ] {
            assert!(matches!(bad.validate("h"), Err(AppError::BadInput { field, .. }) if field == "h"), "{bad:?}");
        }
    }

    #[test]
    fn settings_and_override_validate() {
        assert!(SecuritySettings::default().validate("s").is_ok());
        let bad = SecuritySettings { two_factor: TwoFactorRule::Permissions { permissions: vec![] }, ..Default::default() };
        assert!(matches!(bad.validate("s"), Err(AppError::BadInput { field, .. }) if field == "s.twoFactor"));
        let bad = SecuritySettings { session_idle_minutes: Some(0), ..Default::default() };
        assert!(matches!(bad.validate("s"), Err(AppError::BadInput { field, .. }) if field == "s.sessionIdleMinutes"));
        let bad = SecuritySettings { max_sessions: Some(0), ..Default::default() };
        assert!(bad.validate("s").is_err());
        let bad = SecuritySettings { login_hours: Some(hours(&[], t(9, 0), t(17, 0), "UTC")), ..Default::default() };
        assert!(matches!(bad.validate("s"), Err(AppError::BadInput { field, .. }) if field == "s.loginHours"));

        assert!(SecurityOverride::default().validate("o").is_ok());
        let bad =
            SecurityOverride { set_at: Some(at(2026, 1, 2, 0, 0, 0)), expires_at: Some(at(2026, 1, 1, 0, 0, 0)), ..Default::default() };
        assert!(bad.validate("o").is_err());
        let bad = SecurityOverride { extra_networks: vec!["10.0.0.0/8".parse().unwrap(); MAX_NETWORKS + 1], ..Default::default() };
        assert!(bad.validate("o").is_err());
    }

    // ---- Two-factor ----

    #[test]
    fn two_factor_rules_and_overrides() {
        let holds_read = |p: Permission| p == Permission::CustomersRead;
        let holds_none = |_: Permission| false;
        let rule = |two_factor: TwoFactorRule, ov: Option<bool>| {
            let settings = SecuritySettings { two_factor, ..Default::default() };
            let ov = SecurityOverride { two_factor_required: ov, ..Default::default() };
            effective(&settings, Some(&ov), now())
        };
        let perms = TwoFactorRule::Permissions { permissions: vec![Permission::PaymentsRefund, Permission::CustomersRead] };
        let other = TwoFactorRule::Permissions { permissions: vec![Permission::PaymentsRefund] };

        assert!(rule(TwoFactorRule::All, None).two_factor_required(holds_none));
        assert!(!rule(TwoFactorRule::Off, None).two_factor_required(holds_read));
        assert!(rule(perms.clone(), None).two_factor_required(holds_read));
        assert!(!rule(perms.clone(), None).two_factor_required(holds_none));
        assert!(!rule(other, None).two_factor_required(holds_read));

        assert!(!rule(TwoFactorRule::All, Some(false)).two_factor_required(holds_read));
        assert!(!rule(perms, Some(false)).two_factor_required(holds_read));
        assert!(rule(TwoFactorRule::Off, Some(true)).two_factor_required(holds_none));
    }

    // ---- Parsing ----

    #[test]
    fn parse_networks_good() {
        let raw: Vec<String> = [
            " 10.0.0.0/8 ",
            "10.1.2.3/8",
            "192.0.2.7",
            "2001:db8::1",
            "2001:DB8:0:0::/32",
            "::ffff:198.51.100.0/120",
            "::ffff:203.0.113.5",
            "",
            "192.0.2.7/32",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let parsed = parse_networks("ipAllowlist", &raw).unwrap();
        assert_eq!(parsed, nets(&["10.0.0.0/8", "192.0.2.7/32", "2001:db8::1/128", "2001:db8::/32", "198.51.100.0/24", "203.0.113.5/32"]));
        assert_eq!(parse_networks("x", &[]).unwrap(), vec![]);
        assert_eq!(parse_networks("x", &["::ffff:0:0/96".into()]).unwrap(), nets(&["0.0.0.0/0"]));
    }

    #[test]
    fn parse_networks_bad() {
        for bad in ["10.0.0.0/33", "banana", "10.0.0", "10.0.0.0/8/8", "fe80::1%eth0", "2001:db8::/129", "10.0.0.0 /8", "1.2.3.4:80"] {
            match parse_networks("ipAllowlist", &["10.0.0.0/8".into(), bad.into()]) {
                Err(AppError::BadInput { field, message }) => {
                    assert_eq!(field, "ipAllowlist");
                    assert!(message.contains(bad.trim()), "{message}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        let too_many: Vec<String> = (0..=MAX_NETWORKS).map(|i| format!("10.0.{}.{}", i / 256, i % 256)).collect();
        assert!(parse_networks("ipAllowlist", &too_many).is_err());
        assert_eq!(parse_networks("ipAllowlist", &too_many[..MAX_NETWORKS]).unwrap().len(), MAX_NETWORKS);
        let long = "x".repeat(10_000);
        let Err(AppError::BadInput { message, .. }) = parse_networks("f", &[long]) else { panic!() };
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn parse_timezone_and_time() {
        assert_eq!(parse_timezone("tz", "Europe/Oslo").unwrap(), chrono_tz::Europe::Oslo);
        assert_eq!(parse_timezone("tz", " UTC ").unwrap().name(), "UTC");
        for bad in ["", "Oslo", "europe/oslo", "Europe/Oslo/x", "+02:00"] {
            assert!(matches!(parse_timezone("tz", bad), Err(AppError::BadInput { field, .. }) if field == "tz"), "{bad}");
        }
        assert_eq!(parse_time("start", "09:30").unwrap(), t(9, 30));
        assert_eq!(parse_time("start", "00:00").unwrap(), t(0, 0));
        assert_eq!(parse_time("start", "23:59").unwrap(), t(23, 59));
        assert_eq!(parse_time("start", " 17:00 ").unwrap(), t(17, 0));
        for bad in ["24:00", "9:30", "09:60", "09:3", "0930", "09:30:00", "ab:cd", "", "-1:00", "09.30", "１２:00"] {
            assert!(matches!(parse_time("start", bad), Err(AppError::BadInput { field, .. }) if field == "start"), "{bad}");
        }
    }

    // ---- Client IP ----

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn addr(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn client_ip_untrusted_peer_ignores_spoofed_header() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(client_ip(addr("203.0.113.9"), &xff(&["1.2.3.4"]), &trusted), addr("203.0.113.9"));
        assert_eq!(client_ip(addr("203.0.113.9"), &xff(&["1.2.3.4"]), &[]), addr("203.0.113.9"));
    }

    #[test]
    fn client_ip_walks_trusted_chain_from_the_right() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(client_ip(addr("10.0.0.1"), &xff(&["1.2.3.4, 10.0.0.2"]), &trusted), addr("1.2.3.4"));
        // The client may prepend anything; only the rightmost untrusted entry counts.
        assert_eq!(client_ip(addr("10.0.0.1"), &xff(&["6.6.6.6, 1.2.3.4, 10.0.0.2"]), &trusted), addr("1.2.3.4"));
        // Several header instances are one list, in order.
        assert_eq!(client_ip(addr("10.0.0.1"), &xff(&["6.6.6.6", "1.2.3.4", "10.0.0.2"]), &trusted), addr("1.2.3.4"));
        // v4-mapped entries are canonicalised, also when checking trust.
        assert_eq!(client_ip(addr("10.0.0.1"), &xff(&["::ffff:1.2.3.4, ::ffff:10.0.0.2"]), &trusted), addr("1.2.3.4"));
        assert_eq!(client_ip(addr("10.0.0.1"), &xff(&["2001:db8::7"]), &trusted), addr("2001:db8::7"));
    }

    #[test]
    fn client_ip_trusted_peer_without_header_or_with_garbage() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(client_ip(addr("10.0.0.1"), &HeaderMap::new(), &trusted), addr("10.0.0.1"));
        assert_eq!(client_ip(addr("10.0.0.1"), &xff(&["garbage"]), &trusted), addr("10.0.0.1"));
        assert_eq!(client_ip(addr("10.0.0.1"), &xff(&[""]), &trusted), addr("10.0.0.1"));
        // Stop at the unparseable entry; the last good value is the trusted 10.0.0.2.
        assert_eq!(client_ip(addr("10.0.0.1"), &xff(&["1.2.3.4, junk, 10.0.0.2"]), &trusted), addr("10.0.0.2"));
        assert_eq!(client_ip(addr("10.0.0.1"), &xff(&["1.2.3.4:5678"]), &trusted), addr("10.0.0.1"));
        // All entries trusted: the leftmost trusted one.
        assert_eq!(client_ip(addr("10.0.0.1"), &xff(&["10.0.0.3, 10.0.0.2"]), &trusted), addr("10.0.0.3"));
        // A non-ASCII header instance stops the walk too.
        let mut h = xff(&["1.2.3.4"]);
        h.append("x-forwarded-for", HeaderValue::from_bytes(b"\xff5.6.7.8").unwrap());
        assert_eq!(client_ip(addr("10.0.0.1"), &h, &trusted), addr("10.0.0.1"));
    }

    #[test]
    fn client_ip_canonicalises_v4_mapped_peer() {
        assert_eq!(client_ip(addr("::ffff:203.0.113.9"), &HeaderMap::new(), &[]), addr("203.0.113.9"));
        // And a v4-mapped peer is recognised as a trusted IPv4 proxy.
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(client_ip(addr("::ffff:10.0.0.1"), &xff(&["1.2.3.4"]), &trusted), addr("1.2.3.4"));
    }

    // ---- Serde ----

    #[test]
    fn empty_json_is_the_defaults() {
        let s: SecuritySettings = serde_json::from_str("{}").unwrap();
        assert_eq!(s, SecuritySettings::default());
        assert_eq!(s.two_factor, TwoFactorRule::Off);
        assert_eq!(s.on_session_limit, SessionLimitAction::RevokeOldest);
        let o: SecurityOverride = serde_json::from_str("{}").unwrap();
        assert_eq!(o, SecurityOverride::default());
        assert!(o.is_active(now()));
    }

    #[test]
    fn settings_round_trip_and_stable_json() {
        let s = SecuritySettings {
            two_factor: TwoFactorRule::Permissions { permissions: vec![Permission::CustomersRead, Permission::RolesWrite] },
            ip_allowlist: nets(&["10.0.0.0/8", "2001:db8::/32"]),
            login_hours: Some(hours(&[Weekday::Mon, Weekday::Fri], t(22, 0), t(6, 30), "Europe/Oslo")),
            session_idle_minutes: Some(30),
            session_absolute_minutes: Some(720),
            max_sessions: Some(2),
            on_session_limit: SessionLimitAction::RefuseNew,
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "twoFactor": {"mode": "permissions", "permissions": ["customers.read", "roles.write"]},
                "ipAllowlist": ["10.0.0.0/8", "2001:db8::/32"],
                "loginHours": {"days": ["Mon", "Fri"], "start": "22:00:00", "end": "06:30:00", "timezone": "Europe/Oslo"},
                "sessionIdleMinutes": 30,
                "sessionAbsoluteMinutes": 720,
                "maxSessions": 2,
                "onSessionLimit": "refuseNew",
            })
        );
        assert_eq!(serde_json::from_value::<SecuritySettings>(json).unwrap(), s);

        for rule in [TwoFactorRule::Off, TwoFactorRule::All] {
            let s = SecuritySettings { two_factor: rule, ..Default::default() };
            let back: SecuritySettings = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
            assert_eq!(back, s);
        }
        assert_eq!(serde_json::to_value(TwoFactorRule::All).unwrap(), serde_json::json!({"mode": "all"}));
        assert_eq!(serde_json::to_value(SessionLimitAction::RevokeOldest).unwrap(), serde_json::json!("revokeOldest"));
    }

    #[test]
    fn unknown_permission_or_mode_is_an_error() {
        let bad = r#"{"twoFactor": {"mode": "permissions", "permissions": ["customers.fly"]}}"#;
        assert!(serde_json::from_str::<SecuritySettings>(bad).is_err());
        assert!(serde_json::from_str::<SecuritySettings>(r#"{"twoFactor": {"mode": "sometimes"}}"#).is_err());
    }

    #[test]
    fn override_round_trip() {
        let o = SecurityOverride {
            reason: "field engineer".into(),
            set_by: Some(uuid::Uuid::nil()),
            set_by_label: "Ada (owner)".into(),
            set_at: Some(at(2026, 6, 1, 8, 0, 0)),
            expires_at: Some(at(2026, 9, 1, 0, 0, 0)),
            two_factor_required: Some(true),
            ip_lockdown_enabled: Some(false),
            extra_networks: nets(&["198.51.100.0/24"]),
            login_hours_enabled: Some(true),
            login_hours: Some(hours(&WEEKDAYS, t(9, 0), t(17, 0), "Asia/Tokyo")),
            session_idle_minutes: Some(10),
            session_absolute_minutes: Some(60),
            max_sessions: Some(1),
        };
        let json = serde_json::to_string(&o).unwrap();
        assert!(json.contains(r#""expiresAt":"2026-09-01T00:00:00Z""#), "{json}");
        assert!(json.contains(r#""ipLockdownEnabled":false"#), "{json}");
        assert_eq!(serde_json::from_str::<SecurityOverride>(&json).unwrap(), o);
        // Times written as HH:MM in stored JSON are read too.
        let short = r#"{"loginHours": {"days": ["Sat"], "start": "22:00", "end": "03:00", "timezone": "UTC"}}"#;
        let parsed: SecurityOverride = serde_json::from_str(short).unwrap();
        assert_eq!(parsed.login_hours, Some(hours(&[Weekday::Sat], t(22, 0), t(3, 0), "UTC")));
    }
}
