//! Forklift's integration tests: one binary, real servers on port 0, real databases.
//! Every test declared with `both!` runs on SQLite and on PostgreSQL (see `harness`).

mod fixture;
mod harness;
mod wsclient;

mod admin;
mod audit_log;
mod claims;
mod cli;
mod dedicated;
mod distribution;
mod fanout;
mod fleet;
mod fork;
mod fork_watch;
mod foundation;
mod global_ids;
mod guard;
mod hardening;
mod hostile;
mod http;
mod input;
mod keyset;
mod offboarding;
mod offline;
mod onboarding;
mod placement;
mod query_surface;
mod read_paths;
mod readme;
mod replicas;
mod rls;
mod schema;
mod shape;
mod sheets;
mod tables;
mod telemetry;
mod tenancy;
mod tenant_admin;
mod tools;
mod upgrade;
mod ws;
