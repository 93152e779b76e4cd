//! Where a request comes from: what sign-in, rate limits, login rules and audit entries
//! need to know about it besides the principal. Built once per request by the HTTP
//! layer.

use crate::secret::Secret;
use std::net::IpAddr;

#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// The session token presented with this request, if any.
    pub token: Option<Secret<String>>,
    /// The device cookie's id, if the client sent one.
    pub device: Option<String>,
}

impl RequestMeta {
    pub fn ip_string(&self) -> Option<String> {
        self.ip.map(|i| i.to_string())
    }
}
