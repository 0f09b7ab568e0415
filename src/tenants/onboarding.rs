//! A tenant's onboarding checklist (seed 001): the steps the template declares in its sheets
//! (`vocabulary.onboarding_steps`, stored in `onboarding_steps`), each done or not.
//!
//! A step with a server check completes itself, computed when read: `forked` (the tenant's
//! provisioning is READY), `staff_admin_seeded` (the tenant has an Owner — `seedStaffAdmin`
//! makes one), `domain_verified` (a verified custom domain), `branding_set` (a branding row with
//! any field). Any other step is manual: a Super User or above of the tenant marks it done
//! ([`complete_step`]) or reopens it ([`reopen_step`]); the mark is an `onboarding_completions`
//! row of the tenant, under row-level security like every tenant-owned table.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, ModelTrait, PaginatorTrait, QueryFilter,
    QueryOrder, sea_query::OnConflict,
};
use uuid::Uuid;

use super::branding::find_branding;
use crate::{
    error::{AppError, AppResult},
    scope::{RequestContext, Role},
    sheets::format::StepCheck,
    state::AppState,
};

/// Whether the server or a person completes a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// Marked done by a Super User or above.
    Manual,
    /// Checked by the server.
    Automatic,
}

impl StepKind {
    /// The GraphQL enum value.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Manual => "MANUAL",
            StepKind::Automatic => "AUTOMATIC",
        }
    }
}

/// Where a tenant is in its checklist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnboardingState {
    /// No step is done.
    NotStarted,
    /// Some steps are done.
    InProgress,
    /// Every step is done (also when the template declares none).
    Complete,
}

impl OnboardingState {
    /// The GraphQL enum value.
    pub fn as_str(self) -> &'static str {
        match self {
            OnboardingState::NotStarted => "NOT_STARTED",
            OnboardingState::InProgress => "IN_PROGRESS",
            OnboardingState::Complete => "COMPLETE",
        }
    }
}

/// One step of a tenant's checklist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub key: String,
    pub title: String,
    pub hint: Option<String>,
    pub order: i32,
    pub kind: StepKind,
    /// The server check of an automatic step.
    pub check: Option<StepCheck>,
    pub done: bool,
    /// When a manual step was marked done.
    pub done_at: Option<DateTime<Utc>>,
    /// Who marked a manual step done (the token's subject).
    pub done_by: Option<String>,
}

/// The onboarding checklist of a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Onboarding {
    /// In the template's order (then by key).
    pub steps: Vec<Step>,
    pub state: OnboardingState,
    /// Steps done, as a whole percentage of all steps, rounded down (100 only when complete).
    pub percentage: i32,
}

impl Onboarding {
    fn of(steps: Vec<Step>) -> Self {
        let total = steps.len();
        let done = steps.iter().filter(|s| s.done).count();
        let state = if done == total {
            OnboardingState::Complete
        } else if done == 0 {
            OnboardingState::NotStarted
        } else {
            OnboardingState::InProgress
        };
        // No steps: nothing left to do.
        let percentage = (done * 100)
            .checked_div(total)
            .map_or(100, |p| i32::try_from(p).unwrap_or(100));
        Self {
            steps,
            state,
            percentage,
        }
    }

    /// The step with `key`.
    pub fn step(&self, key: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.key == key)
    }
}

/// Computes the checklist of `tenant`, in that tenant's transaction(s).
pub async fn onboarding(state: &AppState, tenant: Uuid) -> AppResult<Onboarding> {
    let txs = Transactions::open(state, tenant).await?;
    let checklist = onboarding_in(&txs, tenant).await?;
    txs.commit().await?;
    Ok(checklist)
}

/// Where a checklist is read and marked: the tenant's marks and branding in its own database
/// (`placed`: the main one for a shared tenant), the steps, the catalog, memberships and domains
/// in the main database (`main`, for a placed tenant only: otherwise `placed` is both).
struct Transactions {
    placed: sea_orm::DatabaseTransaction,
    main: Option<sea_orm::DatabaseTransaction>,
}

impl Transactions {
    async fn open(state: &AppState, tenant: Uuid) -> AppResult<Self> {
        // Read before any transaction opens: on SQLite a write transaction of the main database
        // holds its write lock, and another connection of its pool could be long coming.
        let database = crate::placement::database_of(state, tenant).await?;
        let placed = crate::access::begin_placed_in(&state.scoped_db, tenant, &database).await?;
        let main = match database {
            Some(_) => {
                Some(crate::access::begin_tenant(&state.scoped_db.request, Some(tenant)).await?)
            }
            None => None,
        };
        Ok(Self { placed, main })
    }

    fn main(&self) -> &sea_orm::DatabaseTransaction {
        self.main.as_ref().unwrap_or(&self.placed)
    }

    async fn commit(self) -> AppResult<()> {
        self.placed.commit().await?;
        if let Some(main) = self.main {
            main.commit().await?;
        }
        Ok(())
    }
}

/// The checklist of the tenant the request acts in (any member reads it).
pub async fn own_onboarding(state: &AppState, req: &RequestContext) -> AppResult<Onboarding> {
    let tenant = req.tenant()?;
    onboarding(state, tenant.id).await
}

/// The result of a server check for `tenant`.
async fn checked(txs: &Transactions, tenant: Uuid, check: StepCheck) -> AppResult<bool> {
    use entity::{domains as d, memberships, tenants};
    let db = txs.main();
    Ok(match check {
        StepCheck::Forked => tenants::Entity::find_by_id(tenant)
            .one(db)
            .await?
            .is_some_and(|t| t.provisioning_state == tenants::ProvisioningState::Ready),
        StepCheck::StaffAdminSeeded => {
            memberships::Entity::find()
                .filter(memberships::Column::TenantId.eq(tenant))
                .filter(memberships::Column::Role.eq(Role::Owner.as_str()))
                .count(db)
                .await?
                > 0
        }
        StepCheck::DomainVerified => {
            d::Entity::find()
                .filter(d::Column::TenantId.eq(tenant))
                .filter(d::Column::VerifiedAt.is_not_null())
                .count(db)
                .await?
                > 0
        }
        StepCheck::BrandingSet => find_branding(&txs.placed, tenant).await?.is_some_and(|b| {
            [
                &b.primary_color,
                &b.secondary_color,
                &b.header_background_color,
                &b.header_text_color,
                &b.link_color,
                &b.button_color,
                &b.custom_css,
            ]
            .iter()
            .any(|v| v.as_deref().is_some_and(|s| !s.is_empty()))
                || b.logo.is_some()
        }),
    })
}

async fn onboarding_in(txs: &Transactions, tenant: Uuid) -> AppResult<Onboarding> {
    use entity::{onboarding_completions as c, onboarding_steps as s};
    let declared = s::Entity::find()
        .order_by_asc(s::Column::Position)
        .order_by_asc(s::Column::Key)
        .all(txs.main())
        .await?;
    let marks = c::Entity::find()
        .filter(c::Column::TenantId.eq(tenant))
        .all(&txs.placed)
        .await?;
    let mut steps = Vec::with_capacity(declared.len());
    // Each check runs once, however many steps name it.
    let mut results: Vec<(StepCheck, bool)> = Vec::new();
    for step in declared {
        // A check this server does not know (written around the sheets) leaves the step manual.
        let check = step.server_check.as_deref().and_then(StepCheck::parse);
        let (done, done_at, done_by) = match check {
            Some(check) => {
                let done = match results.iter().find(|(c, _)| *c == check) {
                    Some((_, done)) => *done,
                    None => {
                        let done = checked(txs, tenant, check).await?;
                        results.push((check, done));
                        done
                    }
                };
                (done, None, None)
            }
            None => match marks.iter().find(|m| m.step_key == step.key) {
                Some(m) => (true, Some(m.done_at), Some(m.done_by.clone())),
                None => (false, None, None),
            },
        };
        steps.push(Step {
            key: step.key,
            title: step.title,
            hint: step.hint,
            order: step.position,
            kind: if check.is_some() {
                StepKind::Automatic
            } else {
                StepKind::Manual
            },
            check,
            done,
            done_at,
            done_by,
        });
    }
    Ok(Onboarding::of(steps))
}

/// What a mark or reopen did: the step before and after, and the checklist after.
#[derive(Clone, Debug)]
pub struct StepChange {
    pub before: Step,
    pub after: Step,
    pub onboarding: Onboarding,
}

/// Marks the manual step `key` of the caller's tenant done (`done`) or reopens it: Super Users
/// and above. An unknown key, or a step the server checks, is `BAD_USER_INPUT`. Marking a done
/// step again (or reopening an open one) changes nothing.
pub async fn set_step(
    state: &AppState,
    req: &RequestContext,
    key: &str,
    done: bool,
) -> AppResult<StepChange> {
    use entity::onboarding_completions as c;
    let tenant = req.require_role(Role::SuperUser)?;
    if tenant.is_template {
        return Err(AppError::PreconditionFailed(
            "the template has no onboarding".into(),
        ));
    }
    let tenant = tenant.id;
    let txs = Transactions::open(state, tenant).await?;
    let tx = &txs.placed;
    let current = onboarding_in(&txs, tenant).await?;
    let Some(before) = current.step(key).cloned() else {
        return Err(AppError::input(
            "key",
            format!("there is no onboarding step `{key}`"),
        ));
    };
    if let Some(check) = before.check {
        return Err(AppError::input(
            "key",
            format!(
                "the onboarding step `{key}` is checked by the server ({}) and completes by \
                 itself; it cannot be marked by hand",
                check.as_str()
            ),
        ));
    }
    let existing = c::Entity::find()
        .filter(c::Column::TenantId.eq(tenant))
        .filter(c::Column::StepKey.eq(key))
        .one(tx)
        .await?;
    match (done, existing) {
        (true, None) => {
            // Two marks of one step at once: the second finds the first's row and does nothing.
            let now = state.clock.now();
            c::Entity::insert(c::ActiveModel {
                id: Set(Uuid::now_v7()),
                tenant_id: Set(tenant),
                step_key: Set(key.to_string()),
                done_by: Set(req.principal.subject.clone()),
                done_at: Set(now),
                created_at: Set(now),
                updated_at: Set(now),
            })
            .on_conflict(
                OnConflict::columns([c::Column::TenantId, c::Column::StepKey])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(tx)
            .await?;
        }
        (false, Some(mark)) => {
            mark.delete(tx).await?;
        }
        _ => {}
    }
    let onboarding = onboarding_in(&txs, tenant).await?;
    txs.commit().await?;
    let after = onboarding
        .step(key)
        .cloned()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("onboarding step {key} vanished")))?;
    Ok(StepChange {
        before,
        after,
        onboarding,
    })
}
