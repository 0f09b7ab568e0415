//! Which user a token is: by its subject, or — the first time an identity provider's opaque
//! subject shows up — by the verified e-mail the user was invited with.
//!
//! A member added by e-mail (`addMember`, `createTenant(ownerEmail:)`) is a user keyed by that
//! e-mail until they sign in. Real identity providers (Auth0, Keycloak, Entra) put an opaque id
//! in `sub`, so on first sight a token is linked to the invited user whose e-mail it vouches
//! for — only when the provider says the e-mail is verified, and only to a user who has never
//! signed in (an invitation), never to an account someone already uses. From then on the user is
//! found by the new subject. Each request keeps `last_seen_at` to the hour: a user who has
//! never been seen is *invited*, one who has is *active*.

use chrono::{Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter,
};

use crate::{auth::Claims, error::AppResult, state::AppState};

/// How stale `last_seen_at` may get before a request refreshes it.
const SEEN_GRANULARITY: Duration = Duration::hours(1);

/// The user `claims` sign in as, linked and marked seen; `None` for a subject nobody invited.
pub async fn user_of(state: &AppState, claims: &Claims) -> AppResult<Option<entity::users::Model>> {
    use entity::users;
    let now = Utc::now();
    if let Some(user) = users::Entity::find()
        .filter(users::Column::Subject.eq(claims.sub.as_str()))
        .one(&state.db)
        .await?
    {
        let stale = user
            .last_seen_at
            .is_none_or(|seen| now - seen > SEEN_GRANULARITY);
        if stale {
            // Off the request's path: a busy database (a fork holding SQLite's write lock)
            // delays the bookkeeping, never the request.
            let db = state.db.clone();
            let mut active: users::ActiveModel = user.clone().into();
            active.last_seen_at = Set(Some(now));
            tokio::spawn(async move {
                if let Err(err) = active.update(&db).await {
                    tracing::warn!(error = %err, "could not record when a user was last seen");
                }
            });
        }
        return Ok(Some(user));
    }
    let Some(email) = claims.verified_email(
        &state.config.jwt_email_claim,
        &state.config.jwt_email_verified_claim,
    ) else {
        return Ok(None);
    };
    let invited = users::Entity::find()
        .filter(users::Column::LastSeenAt.is_null())
        .filter(
            Condition::any()
                .add(users::Column::Subject.eq(email.as_str()))
                .add(users::Column::Email.eq(email.as_str())),
        )
        .one(&state.db)
        .await?;
    let Some(user) = invited else {
        return Ok(None);
    };
    tracing::info!(user.id = %user.id, "linked a new token subject to an invited user by verified e-mail");
    let mut active: users::ActiveModel = user.into();
    active.subject = Set(claims.sub.clone());
    active.email = Set(Some(email));
    active.last_seen_at = Set(Some(now));
    active.updated_at = Set(now);
    Ok(Some(active.update(&state.db).await?))
}
