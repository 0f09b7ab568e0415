//! Tenant administration, one subject per module. Every function that works in one tenant takes
//! the request context and gets the tenant from it; the GraphQL wiring is in `graphql/`.
//!
//! - [`catalog`]: listing, lookup and statistics (platform admins);
//! - [`lifecycle`]: create, activate, suspend, extend the trial, delete;
//! - [`members`]: `me`, members and roles, the last-owner rule, the seeded staff administrator;
//! - [`branding`], [`domains`], [`features`]: a tenant's branding, custom domains and features;
//! - [`access_checks`]: whether a team may use a service (`checkAccess`);
//! - [`onboarding`]: the onboarding checklist;
//! - [`ensure`]: the template and a bootstrap's first tenant, created when missing;
//! - [`names`]: slugs, DNS labels and e-mail addresses.

pub mod access_checks;
pub mod branding;
pub mod catalog;
pub mod domains;
pub mod ensure;
pub mod features;
pub mod lifecycle;
pub mod members;
pub mod names;
pub mod onboarding;
