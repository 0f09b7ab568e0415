//! Offboarding (`docs/tenancy.md`, "Offboarding"): a tenant's export, and its purge.
//!
//! - [`export`]: the tenant as a tar archive, streamed while it is read: its configuration as
//!   provisioning sheets ([`sheets_out`]), which import as a template, and its runtime rows as
//!   JSON lines. Served at `GET /tenants/{id}/export` and by `forklift export`.
//! - [`purge`]: `deleteTenant(id, purge: true)`, every row of the tenant in bounded batches,
//!   resumable.
//! - [`tar`]: the archive format, written by hand (ustar, regular files only).

pub mod export;
pub mod purge;
pub mod sheets_out;
pub mod tar;
