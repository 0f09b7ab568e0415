//! People, not ids: the `User` type, reachable from `Membership.user` and `TeamMember.user`, so a
//! members page can show who its members are (e-mail, name, subject, since when).
//!
//! Users are not tenant rows: one person may belong to several tenants. A user is reachable only
//! through a membership or team membership the caller can already see (the generic surface
//! scopes those by tenant), so this adds no new way to enumerate people. Users of one level are
//! read in one statement by [`UsersLoader`].

use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    Value,
    dataloader::{DataLoader, Loader},
    dynamic::{Field, FieldFuture, FieldValue, InputValue, Object, TypeRef},
};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::{error::AppError, graphql::ids, graphql::parts::Operations, rows::Row};

/// Loads users by id on the system pool (the `users` table is shared, not tenant-owned).
pub struct UsersLoader {
    pub db: DatabaseConnection,
}

impl Loader<Uuid> for UsersLoader {
    type Value = Arc<entity::users::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let users = entity::users::Entity::find()
            .filter(entity::users::Column::Id.is_in(keys.iter().copied()))
            .all(&self.db)
            .await
            .map_err(|e| Arc::new(AppError::from(e)))?;
        Ok(users.into_iter().map(|u| (u.id, Arc::new(u))).collect())
    }
}

/// The per-request loader, as request data.
pub fn loader(db: DatabaseConnection) -> DataLoader<UsersLoader> {
    DataLoader::new(UsersLoader { db }, tokio::spawn)
}

fn user_field(name: &'static str, ty: TypeRef, pick: fn(&entity::users::Model) -> Value) -> Field {
    Field::new(name, ty, move |ctx| {
        FieldFuture::new(async move {
            let user = ctx
                .parent_value
                .try_downcast_ref::<Arc<entity::users::Model>>()?;
            Ok(Some(pick(user)))
        })
    })
}

fn user_object() -> Object {
    let string = || TypeRef::named(TypeRef::STRING);
    Object::new("User")
        .description("A person, as the tokens name them. One person may belong to several tenants.")
        .implement("Node")
        .field(user_field("id", TypeRef::named_nn(TypeRef::ID), |u| {
            Value::from(ids::encode("User", u.id))
        }))
        .field(
            user_field("email", string(), |u| {
                u.email.clone().map_or(Value::Null, Value::from)
            })
            .description("The e-mail address, when known."),
        )
        .field(user_field("displayName", string(), |u| {
            u.display_name.clone().map_or(Value::Null, Value::from)
        }))
        .field(
            user_field("subject", TypeRef::named_nn(TypeRef::STRING), |u| {
                Value::from(u.subject.clone())
            })
            .description("The token subject (`sub`) this user signs in as."),
        )
        .field(user_field(
            "createdAt",
            TypeRef::named_nn("DateTime"),
            |u| Value::from(u.created_at.to_rfc3339()),
        ))
        .field(
            user_field("lastSeenAt", TypeRef::named("DateTime"), |u| {
                u.last_seen_at
                    .map_or(Value::Null, |t| Value::from(t.to_rfc3339()))
            })
            .description(
                "When the user last made a request (to the hour); null until they first sign in.",
            ),
        )
}

/// `Membership.status`: `INVITED` until the member first signs in, then `ACTIVE`.
fn membership_status() -> Field {
    Field::new("status", TypeRef::named_nn("MembershipStatus"), |ctx| {
        FieldFuture::new(async move {
            let row = ctx.parent_value.try_downcast_ref::<Row>()?;
            let user = load_user(&ctx, row).await?;
            let status = if user.last_seen_at.is_some() {
                "ACTIVE"
            } else {
                "INVITED"
            };
            Ok(Some(FieldValue::value(Value::Enum(
                async_graphql::Name::new(status),
            ))))
        })
    })
    .description("INVITED until the member first signs in (with this subject, or a token whose verified e-mail is the invited one), then ACTIVE.")
}

async fn load_user(
    ctx: &async_graphql::dynamic::ResolverContext<'_>,
    row: &Row,
) -> Result<Arc<entity::users::Model>, AppError> {
    let id = row
        .get("user_id")
        .as_uuid()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("a row without user_id")))?;
    let loader = ctx
        .data::<DataLoader<UsersLoader>>()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{}", e.message)))?;
    loader
        .load_one(id)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{}", e.message())))?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("membership of a missing user")))
}

/// `user` on a row that holds a `user_id`: the person, loaded with the others of its level.
fn user_of_row() -> Field {
    Field::new("user", TypeRef::named_nn("User"), |ctx| {
        FieldFuture::new(async move {
            let row = ctx.parent_value.try_downcast_ref::<Row>()?;
            let user = load_user(&ctx, row).await?;
            Ok(Some(FieldValue::owned_any(user)))
        })
    })
    .description("Who this is: e-mail, name, subject.")
}

/// Adds `User`, `MembershipStatus`, and the `user` fields of `Membership` and `TeamMember`
/// (and `Membership.status`) to `ops`.
pub fn build(ops: &mut Operations) {
    ops.objects.push(user_object());
    ops.objects.extend(user_connection());
    ops.query_fields.push(users_query());
    ops.enums.push(
        async_graphql::dynamic::Enum::new("MembershipStatus")
            .description("Whether a member has signed in yet.")
            .item("INVITED")
            .item("ACTIVE"),
    );
    ops.object_fields.push(("Membership", membership_status()));
    ops.object_fields.push(("Membership", user_of_row()));
    ops.object_fields.push(("TeamMember", user_of_row()));
}

/// One page of `users`: the users and where the next page starts.
struct UserPage {
    users: Vec<Arc<entity::users::Model>>,
    total: u64,
    next: Option<Uuid>,
}

/// Longest page of `users`.
const MAX_USERS_PAGE: u64 = 200;

fn users_query() -> Field {
    Field::new("users", TypeRef::named_nn("UserConnection"), |ctx| {
        FieldFuture::new(async move {
            use sea_orm::{PaginatorTrait, QueryOrder, QuerySelect};
            let state = crate::graphql::classes::app(&ctx)?;
            let req = crate::graphql::classes::request(&ctx)?;
            req.require_admin()?;
            let first = match ctx.args.get("first") {
                Some(v) if !v.is_null() => v.u64()?,
                _ => 50,
            };
            if first == 0 || first > MAX_USERS_PAGE {
                return Err(
                    AppError::input("first", format!("between 1 and {MAX_USERS_PAGE}")).into(),
                );
            }
            let after = match ctx.args.get("after") {
                Some(v) if !v.is_null() => Some(ids::expect(v.string()?, "User", "after")?),
                _ => None,
            };
            let mut query = entity::users::Entity::find();
            if let Some(text) = ctx.args.get("search").filter(|v| !v.is_null()) {
                let needle = text.string()?.trim().to_lowercase();
                if !needle.is_empty() {
                    let pattern = format!(
                        "%{}%",
                        needle
                            .replace('\\', "\\\\")
                            .replace('%', "\\%")
                            .replace('_', "\\_")
                    );
                    use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
                    let like = |column: entity::users::Column| {
                        Expr::expr(Func::lower(Expr::col(column)))
                            .like(LikeExpr::new(pattern.clone()).escape('\\'))
                    };
                    query = query.filter(
                        sea_orm::Condition::any()
                            .add(like(entity::users::Column::Email))
                            .add(like(entity::users::Column::Subject))
                            .add(like(entity::users::Column::DisplayName)),
                    );
                }
            }
            let total = query
                .clone()
                .count(&state.db)
                .await
                .map_err(AppError::from)?;
            if let Some(after) = after {
                query = query.filter(entity::users::Column::Id.gt(after));
            }
            let mut users = query
                .order_by_asc(entity::users::Column::Id)
                .limit(first + 1)
                .all(&state.db)
                .await
                .map_err(AppError::from)?;
            let more = users.len() as u64 > first;
            users.truncate(first as usize);
            let next = more.then(|| users.last().map(|u| u.id)).flatten();
            Ok(Some(FieldValue::owned_any(UserPage {
                users: users.into_iter().map(Arc::new).collect(),
                total,
                next,
            })))
        })
    })
    .argument(
        InputValue::new("search", TypeRef::named(TypeRef::STRING))
            .description("Part of an e-mail, subject or display name (any case)."),
    )
    .argument(
        InputValue::new("first", TypeRef::named(TypeRef::INT))
            .description("At most 200; 50 by default."),
    )
    .argument(
        InputValue::new("after", TypeRef::named(TypeRef::STRING))
            .description("`pageInfo.endCursor` of the previous page."),
    )
    .description("People, oldest first, with keyset paging (platform admins).")
}

fn user_connection() -> [Object; 2] {
    [
        Object::new("UserConnection")
            .description("A page of users.")
            .field(Field::new(
                "nodes",
                TypeRef::named_nn_list_nn("User"),
                |ctx| {
                    FieldFuture::new(async move {
                        let page = ctx.parent_value.try_downcast_ref::<UserPage>()?;
                        Ok(Some(FieldValue::list(
                            page.users.iter().map(|u| FieldValue::owned_any(u.clone())),
                        )))
                    })
                },
            ))
            .field(Field::new(
                "totalCount",
                TypeRef::named_nn(TypeRef::INT),
                |ctx| {
                    FieldFuture::new(async move {
                        let page = ctx.parent_value.try_downcast_ref::<UserPage>()?;
                        Ok(Some(Value::from(page.total)))
                    })
                },
            ))
            .field(Field::new(
                "pageInfo",
                TypeRef::named_nn("UserPageInfo"),
                |ctx| {
                    FieldFuture::new(async move {
                        let page = ctx.parent_value.try_downcast_ref::<UserPage>()?;
                        Ok(Some(FieldValue::owned_any(page.next)))
                    })
                },
            )),
        Object::new("UserPageInfo")
            .description("Where the next page of users starts (keyset: stable under inserts).")
            .field(Field::new(
                "hasNextPage",
                TypeRef::named_nn(TypeRef::BOOLEAN),
                |ctx| {
                    FieldFuture::new(async move {
                        let next = ctx.parent_value.try_downcast_ref::<Option<Uuid>>()?;
                        Ok(Some(Value::from(next.is_some())))
                    })
                },
            ))
            .field(Field::new(
                "endCursor",
                TypeRef::named(TypeRef::STRING),
                |ctx| {
                    FieldFuture::new(async move {
                        let next = ctx.parent_value.try_downcast_ref::<Option<Uuid>>()?;
                        Ok(next.map(|id| Value::from(ids::encode("User", id))))
                    })
                },
            )),
    ]
}
