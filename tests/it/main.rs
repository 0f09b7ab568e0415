//! Forklift's integration tests: one binary, real servers on port 0, real databases.
//! Every `both!` test runs on SQLite and on PostgreSQL (see `harness`).

mod harness;
mod fixture;
mod wsclient;

mod admin;
mod foundation;
mod fork;
mod guard;
mod http;
mod replicas;
mod rls;
mod schema;
mod tenancy;
mod ws;
