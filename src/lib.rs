//! Forklift: a multi-tenant configuration API server. A platform team authors one template;
//! Forklift forks it into every new tenant and serves all of them through one GraphQL API.
//!
//! Start at `ARCHITECTURE.md` for the map. In short: [`registry`] describes every row class;
//! [`scope`] resolves who is calling in which tenant; [`access`] is the one scoped path to
//! tenant-owned rows; [`graphql`] generates the API from the registry; [`fork`] copies the
//! template into tenants; [`admin`] is tenant administration; [`bootstrap`] brings an empty
//! database up.

pub mod access;
pub mod app;
pub mod auth;
pub mod bootstrap;
pub mod branding;
pub mod cli;
pub mod config;
pub mod databases;
pub mod db;
pub mod domains;
pub mod error;
pub mod fork;
pub mod graphql;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod naming;
pub mod nesting;
pub mod offboarding;
pub mod placement;
pub mod registry;
pub mod rows;
pub mod runtimes;
pub mod scope;
pub mod sheets;
pub mod state;
pub mod synthetic;
pub mod telemetry;
pub mod template;
pub mod tenant_profile;
pub mod tenants;
pub mod text;
