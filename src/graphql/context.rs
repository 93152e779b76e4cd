//! What the HTTP layer hands to every resolver, and typed accessors for it.

use crate::auth::Principal;
use crate::error::{AppError, AppResult};
use crate::secret::Secret;
use crate::state::AppState;
use async_graphql::Context;
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

pub fn state<'a>(ctx: &Context<'a>) -> AppResult<&'a AppState> {
    ctx.data::<AppState>().map_err(|_| AppError::internal("application state missing from schema"))
}

pub fn principal<'a>(ctx: &Context<'a>) -> &'a Principal {
    static ANONYMOUS: Principal = Principal::Anonymous;
    ctx.data_opt::<Principal>().unwrap_or(&ANONYMOUS)
}

pub fn meta<'a>(ctx: &Context<'a>) -> AppResult<&'a RequestMeta> {
    ctx.data::<RequestMeta>().map_err(|_| AppError::internal("request metadata missing"))
}
