//! The transports: everything between a socket and the GraphQL executor.
//!
//! - [`accept`]: the accept loop (hyper HTTP/1.1 with a header deadline, upgrades, drain);
//! - [`server`]: the router, its layers, and the HTTP handlers;
//! - [`negotiation`]: GraphQL over HTTP (`Accept`, status codes, the body written in order);
//! - [`limits`]: the checks before execution, on every transport;
//! - [`headers`]: what the request headers say about the caller;
//! - [`execution`]: one execution with its per-request data, on any transport;
//! - [`ws`]: the two WebSocket protocols, and [`ws::shared`], encode-once subscriptions;
//! - [`ui`]: GraphiQL and the provisioning monitor;
//! - [`export`]: `GET /tenants/{id}/export`, a tenant's archive, streamed.
//!
//! Dependencies point one way: `server` → `ws`, `ui` → `execution`, `headers`, `negotiation`,
//! `limits`; nothing here is used by the layers below except `limits::Budget` (a schema
//! extension) and `ws::shared::Streams` (held by the fork hub).

pub mod accept;
pub mod execution;
pub mod export;
pub mod headers;
pub mod limits;
pub mod negotiation;
pub mod server;
pub mod ui;
pub mod ws;
