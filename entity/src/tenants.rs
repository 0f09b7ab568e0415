//! `tenants`: The tenant catalog: every tenant, including the template (`kind = TEMPLATE`).

use crate::class::{ClassInfo, Fork, Plane, Surface};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The tenant catalog: every tenant, including the template (`kind = TEMPLATE`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(column_type = "Text", unique)]
    pub slug: String,
    #[sea_orm(column_type = "Text")]
    pub name: String,
    pub kind: TenantKind,
    /// One of [`TenantStatus::NAMES`], kept as text: a stored value outside them fails only the
    /// `status` field of a read, not the whole tenant (`shape::a_failed_non_null_field_…`).
    #[sea_orm(column_type = "Text")]
    pub status: String,
    #[sea_orm(nullable)]
    pub trial_ends_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub suspension_reason: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub plan: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub region_hint: Option<String>,
    pub schema_version: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub contact_name: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub contact_email: Option<String>,
    #[sea_orm(column_type = "Text", unique, nullable)]
    pub subdomain: Option<String>,
    pub provisioning_state: ProvisioningState,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The tenant's root company in the customer's own systems (seed 003).
    #[sea_orm(column_type = "Text", nullable)]
    pub root_company_id: Option<String>,
    /// The named tenant database holding the tenant's configuration, derived rows and lineage
    /// (`FORKLIFT_TENANT_DATABASES`); `None`: the main database. A name, never a URL.
    #[sea_orm(column_type = "Text", nullable)]
    pub database: Option<String>,
}

stored_enum! {
    /// What a tenant is: the template every fork copies from, or a tenant.
    TenantKind {
        Template = "TEMPLATE",
        Tenant = "TENANT",
    }
}

stored_enum! {
    /// A tenant's status (`docs/tenancy.md`): a trial, active, suspended (members refused), or
    /// being purged (`deleteTenant(purge: true)` started; nobody is let in, a re-run finishes).
    TenantStatus {
        Trial = "TRIAL",
        Active = "ACTIVE",
        Suspended = "SUSPENDED",
        Purging = "PURGING",
    }
}

stored_enum! {
    /// Where a tenant's provisioning is: never forked (`PENDING`), a fork running, or `READY`.
    /// Members are refused until it is `READY`.
    ProvisioningState {
        Pending = "PENDING",
        Running = "RUNNING",
        Ready = "READY",
    }
}

/// The rows this class points at; the row-class registry derives references from these.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl ClassInfo for Entity {
    const NAME: &'static str = "Tenant";
    const PLANE: Plane = Plane::Vocabulary;
    const FORK: Fork = Fork::Never;
    const NATURAL_KEY: &'static [&'static str] = &["slug"];
    const SURFACE: Surface = Surface::Catalog;
}
