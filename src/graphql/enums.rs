//! The enums of the schema: every value with a fixed set of members is an enum, on output as on
//! input, so a code generator gives clients a closed type (`'OWNER' | 'SUPER_USER' | …`) instead
//! of `string`. The stored form of each member is its name.
//!
//! [`ENUM_COLUMNS`] says which columns of the generated surface hold one of these enums; the
//! generic layer (`classes.rs`) types their fields and filters with it.

use async_graphql::dynamic::Enum;
use entity::{
    audit_entries::AuditOutcome,
    tenants::{ProvisioningState, TenantKind, TenantStatus},
};

use crate::fork::{
    engine::PHASES,
    runs::{RunKind, RunStatus, moves::MOVE_PHASES},
};

/// One enum: its GraphQL name, description and members (stored as they are named).
#[derive(Debug)]
pub struct EnumDef {
    pub name: &'static str,
    pub description: &'static str,
    pub members: &'static [&'static str],
}

/// Tenant roles, highest first.
pub const ROLE: EnumDef = EnumDef {
    name: "Role",
    description: "Tenant roles, highest first: OWNER, SUPER_USER, EDITOR, CONTRIBUTOR, VIEWER.",
    members: &["OWNER", "SUPER_USER", "EDITOR", "CONTRIBUTOR", "VIEWER"],
};

/// A tenant's commercial status.
pub const TENANT_STATUS: EnumDef = EnumDef {
    name: "TenantStatus",
    description: "A tenant's status: TRIAL (usable; flagged once its trial ends), ACTIVE, or \
                  SUSPENDED (every member blocked).",
    members: TenantStatus::NAMES,
};

/// Where a tenant's provisioning stands.
pub const PROVISIONING_STATE: EnumDef = EnumDef {
    name: "ProvisioningState",
    description: "Where a tenant's provisioning stands: PENDING (never forked), RUNNING (a fork \
                  is under way; members are blocked), READY.",
    members: ProvisioningState::NAMES,
};

/// The template or a tenant.
pub const TENANT_KIND: EnumDef = EnumDef {
    name: "TenantKind",
    description: "TEMPLATE (the source of every fork) or TENANT.",
    members: TenantKind::NAMES,
};

/// A fork run's status.
pub const FORK_RUN_STATUS: EnumDef = EnumDef {
    name: "ForkRunStatus",
    description: "A fork run's status: PENDING, RUNNING, then FINISHED or ROLLED_BACK (a failure \
                  in its own process; nothing kept), or ABANDONED (its process died). PLANNED is \
                  a dry run's plan.",
    members: RunStatus::NAMES,
};

/// A run's phases: a fork's five, then a move's three.
const RUN_PHASES: [&str; PHASES.len() + MOVE_PHASES.len()] = {
    let mut out = [""; PHASES.len() + MOVE_PHASES.len()];
    let mut i = 0;
    while i < PHASES.len() {
        out[i] = PHASES[i];
        i += 1;
    }
    let mut j = 0;
    while j < MOVE_PHASES.len() {
        out[i + j] = MOVE_PHASES[j];
        j += 1;
    }
    out
};

/// The phases of a run, in order.
pub const FORK_PHASE: EnumDef = EnumDef {
    name: "ForkPhase",
    description: "The phases of a run, in order. A fork or upgrade: the application spine, \
                  tenant-wide configuration, then the derived geospatial layers, citizen read \
                  access and citizen submit/vote access. A move: MOVE_COPY (the rows copied \
                  while the tenant is served from where it was), MOVE_SWITCH (the tenant held in \
                  provisioning while what changed is carried over, counts and checksums are \
                  compared and the placement switches), MOVE_CLEANUP (the old copy removed).",
    members: &RUN_PHASES,
};

/// What a run does.
pub const FORK_RUN_KIND: EnumDef = EnumDef {
    name: "ForkRunKind",
    description: "FORK (copies what the tenant is missing), UPGRADE (also applies the \
                  template's changes the tenant did not override) or MOVE (carries the tenant \
                  to another database: `moveTenant`).",
    members: RunKind::NAMES,
};

/// What a fork event reports.
pub const FORK_EVENT_KIND: EnumDef = EnumDef {
    name: "ForkEventKind",
    description: "What a fork event reports (ROW_CONFLICT: an upgrade kept a tenant's change \
                  over the template's; APPLICATION_FORKED: phase 1 finished one application, \
                  `detail: {application, applicationId, index, total}`). A run ends with RUN_FINISHED, RUN_ROLLED_BACK (after \
                  ROLLING_BACK) or RUN_FAILED (its process died; written by the sweep).",
    members: &[
        "RUN_STARTED",
        "PHASE_STARTED",
        "ROWS_COPIED",
        "APPLICATION_FORKED",
        "ROW_SKIPPED",
        "ROW_CONFLICT",
        "PHASE_FINISHED",
        "ROLLING_BACK",
        "RUN_FINISHED",
        "RUN_FAILED",
        "RUN_ROLLED_BACK",
    ],
};

/// The outcome of an audited mutation.
pub const AUDIT_OUTCOME: EnumDef = EnumDef {
    name: "AuditOutcome",
    description: "ALLOWED (it ran), REFUSED (the caller's mistake or a refusal: its \
                  `extensions.code` is in the entry's detail), or FAILED (an internal error).",
    members: AuditOutcome::NAMES,
};

/// The kind of a derived citizen access grant.
pub const ACCESS_GRANT_KIND: EnumDef = EnumDef {
    name: "AccessGrantKind",
    description: "What a derived grant lets citizens do: read a public page or surface, submit \
                  through a public action, or vote on one.",
    members: &["CITIZEN_READ", "CITIZEN_SUBMIT", "CITIZEN_VOTE"],
};

/// Every enum of this module.
pub const ALL: &[&EnumDef] = &[
    &ROLE,
    &TENANT_STATUS,
    &PROVISIONING_STATE,
    &TENANT_KIND,
    &FORK_RUN_STATUS,
    &FORK_PHASE,
    &FORK_RUN_KIND,
    &FORK_EVENT_KIND,
    &AUDIT_OUTCOME,
    &ACCESS_GRANT_KIND,
];

/// The columns of the generated surface that hold an enum: (table, column, enum).
pub const ENUM_COLUMNS: &[(&str, &str, &EnumDef)] = &[
    ("memberships", "role", &ROLE),
    ("tenants", "status", &TENANT_STATUS),
    ("tenants", "provisioning_state", &PROVISIONING_STATE),
    ("tenants", "kind", &TENANT_KIND),
    ("fork_runs", "status", &FORK_RUN_STATUS),
    ("fork_runs", "phase", &FORK_PHASE),
    ("fork_runs", "failed_phase", &FORK_PHASE),
    ("fork_runs", "kind", &FORK_RUN_KIND),
    ("fork_events", "kind", &FORK_EVENT_KIND),
    ("fork_events", "phase", &FORK_PHASE),
    ("audit_entries", "outcome", &AUDIT_OUTCOME),
    ("access_grants", "kind", &ACCESS_GRANT_KIND),
];

/// The enum a column holds, if any.
pub fn of_column(table: &str, column: &str) -> Option<&'static EnumDef> {
    ENUM_COLUMNS
        .iter()
        .find(|(t, c, _)| *t == table && *c == column)
        .map(|(_, _, def)| *def)
}

/// The enum named `name`, if it is one of this module's.
pub fn by_name(name: &str) -> Option<&'static EnumDef> {
    ALL.iter().find(|def| def.name == name).copied()
}

impl EnumDef {
    /// The GraphQL type.
    pub fn build(&self) -> Enum {
        self.members.iter().fold(
            Enum::new(self.name).description(self.description),
            |e, m| e.item(*m),
        )
    }

    /// True when `value` is a member.
    pub fn has(&self, value: &str) -> bool {
        self.members.contains(&value)
    }
}

/// Every enum, built.
pub fn build() -> Vec<Enum> {
    ALL.iter().map(|def| def.build()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{fork::hub::EventKind, scope::Role};

    #[test]
    fn enums_match_the_rust_values() {
        assert_eq!(ROLE.members, &Role::HIGHEST_FIRST.map(Role::as_str)[..]);
        for member in FORK_EVENT_KIND.members {
            assert_eq!(
                EventKind::parse(member).map(EventKind::as_str),
                Some(*member)
            );
        }
        for (table, column, _) in ENUM_COLUMNS {
            let registry = crate::registry::Registry::default();
            let class = registry.by_table(table).expect("table");
            assert!(
                class.columns.iter().any(|c| c.name == *column),
                "{table}.{column}"
            );
        }
    }
}
