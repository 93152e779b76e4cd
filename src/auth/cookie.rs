//! The session cookie. With `Secure` (the default) it is `__Host-palisade_session`,
//! which browsers bind to this exact host and path `/`; without `Secure` (local plain
//! http only) the `__Host-` prefix is not allowed, so the name drops it.

use crate::config::Config;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};

pub fn name(config: &Config) -> &'static str {
    if config.cookie_secure { "__Host-palisade_session" } else { "palisade_session" }
}

fn attrs(config: &Config) -> &'static str {
    if config.cookie_secure { "; Path=/; HttpOnly; SameSite=Lax; Secure" } else { "; Path=/; HttpOnly; SameSite=Lax" }
}

pub fn set(config: &Config, token: &str) -> String {
    format!("{}={token}; Max-Age={}{}", name(config), config.session_absolute_timeout.as_secs(), attrs(config))
}

pub fn clear(config: &Config) -> String {
    format!("{}=; Max-Age=0{}", name(config), attrs(config))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Bearer,
    Cookie,
}

/// The presented session token: `Authorization: Bearer` wins over the cookie.
pub fn token(config: &Config, headers: &HeaderMap) -> Option<(String, TokenSource)> {
    if let Some(v) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let mut parts = v.splitn(2, ' ');
        if let (Some(scheme), Some(tok)) = (parts.next(), parts.next())
            && scheme.eq_ignore_ascii_case("bearer")
            && !tok.trim().is_empty()
        {
            return Some((tok.trim().to_owned(), TokenSource::Bearer));
        }
    }
    cookie_value(headers, name(config)).map(|v| (v, TokenSource::Cookie))
}

/// The first non-empty value of cookie `wanted`.
fn cookie_value(headers: &HeaderMap, wanted: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| *k == wanted && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// The device cookie: a random id that marks a browser a user has signed in from, so
/// a sign-in from a device never seen before can ask for a second factor. It carries
/// no authority; only its hash is stored.
pub fn device_name(config: &Config) -> &'static str {
    if config.cookie_secure { "__Host-palisade_device" } else { "palisade_device" }
}

pub fn set_device(config: &Config, id: &str) -> String {
    // A year: the point is to recognise the device next time.
    format!("{}={id}; Max-Age=31536000{}", device_name(config), attrs(config))
}

pub fn device(config: &Config, headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, device_name(config)).filter(|v| v.len() <= 128)
}
