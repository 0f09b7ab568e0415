//! Forklift's schema migrations. The same migrations run on SQLite and PostgreSQL, up and down.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_initial;
mod m20261122_000002_row_level_security;
mod m20261122_000003_request_role_rls;
mod m20261129_000004_tenant_root_company;
mod m20261129_000005_user_last_seen;
mod m20261129_000006_verified_domains;
mod m20261129_000007_template_evolution;
mod m20261206_000009_onboarding;
mod m20261206_000010_tenant_database;
mod m20261206_000011_distribution_keys;
mod m20261206_000012_move_runs;
pub use m20261206_000011_distribution_keys::{DISTRIBUTED, NOT_DISTRIBUTED};
pub mod table;
pub mod tables;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_initial::Migration),
            Box::new(m20261122_000002_row_level_security::Migration),
            Box::new(m20261122_000003_request_role_rls::Migration),
            Box::new(m20261129_000004_tenant_root_company::Migration),
            Box::new(m20261129_000005_user_last_seen::Migration),
            Box::new(m20261129_000006_verified_domains::Migration),
            Box::new(m20261129_000007_template_evolution::Migration),
            Box::new(m20261206_000009_onboarding::Migration),
            Box::new(m20261206_000010_tenant_database::Migration),
            Box::new(m20261206_000011_distribution_keys::Migration),
            Box::new(m20261206_000012_move_runs::Migration),
        ]
    }
}
