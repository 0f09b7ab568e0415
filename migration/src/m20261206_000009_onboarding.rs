//! Onboarding (issue #17, item 8): the checklist the template declares, and a tenant's manual
//! steps marked done.
//!
//! - `onboarding_steps`: vocabulary (no owner), written by sheets imports from
//!   `vocabulary.onboarding_steps`: key, title, hint, position and an optional server check.
//! - `onboarding_completions`: tenant-owned, one row per manual step a tenant marked done
//!   (`(tenant_id, step_key)` unique), with the unique `(tenant_id, id)` of every such table and,
//!   on PostgreSQL, row-level security forced with the one `tenant_only` policy of migration 3.
#![allow(elided_lifetimes_in_paths)] // the async_trait signature of MigrationTrait

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DbBackend};

/// Creates the onboarding tables.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000009_onboarding"
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum OnboardingSteps {
    Table,
    Id,
    Key,
    Title,
    Hint,
    Position,
    ServerCheck,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OnboardingCompletions {
    Table,
    Id,
    TenantId,
    StepKey,
    DoneBy,
    DoneAt,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OnboardingSteps::Table)
                    .col(pk_uuid(OnboardingSteps::Id))
                    .col(text_uniq(OnboardingSteps::Key))
                    .col(text(OnboardingSteps::Title))
                    .col(text_null(OnboardingSteps::Hint))
                    .col(integer(OnboardingSteps::Position))
                    .col(text_null(OnboardingSteps::ServerCheck))
                    .col(timestamp_with_time_zone(OnboardingSteps::CreatedAt))
                    .col(timestamp_with_time_zone(OnboardingSteps::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OnboardingCompletions::Table)
                    .col(pk_uuid(OnboardingCompletions::Id))
                    .col(uuid(OnboardingCompletions::TenantId))
                    .col(text(OnboardingCompletions::StepKey))
                    .col(text(OnboardingCompletions::DoneBy))
                    .col(timestamp_with_time_zone(OnboardingCompletions::DoneAt))
                    .col(timestamp_with_time_zone(OnboardingCompletions::CreatedAt))
                    .col(timestamp_with_time_zone(OnboardingCompletions::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_onboarding_completions_tenant_id")
                            .from_tbl(OnboardingCompletions::Table)
                            .from_col(OnboardingCompletions::TenantId)
                            .to_tbl(Tenants::Table)
                            .to_col(Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .index(
                        Index::create()
                            .name("ux_onboarding_completions_tenant_id_id")
                            .unique()
                            .col(OnboardingCompletions::TenantId)
                            .col(OnboardingCompletions::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // The natural key: a step is marked done at most once per tenant.
        manager
            .create_index(
                Index::create()
                    .name("ux_onboarding_completions_natural_key")
                    .table(OnboardingCompletions::Table)
                    .unique()
                    .col(OnboardingCompletions::TenantId)
                    .col(OnboardingCompletions::StepKey)
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(
                    "ALTER TABLE onboarding_completions ENABLE ROW LEVEL SECURITY;
                     ALTER TABLE onboarding_completions FORCE ROW LEVEL SECURITY;
                     CREATE POLICY tenant_only ON onboarding_completions FOR ALL
                       USING (tenant_id = forklift_current_tenant())
                       WITH CHECK (tenant_id = forklift_current_tenant());",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["onboarding_completions", "onboarding_steps"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
