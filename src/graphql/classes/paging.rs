//! Relay connections of the generated surface: the connection and edge objects, `PageInfo`,
//! cursors (offsets, opaque) and the page window the paging arguments give.

use super::*;

/// Connection results handed from a connection field to its sub-fields.
pub struct ConnectionData {
    rows: Vec<Row>,
    offset: u64,
    total: u64,
}

impl ConnectionData {
    /// A page of rows starting at `offset` out of `total`.
    pub fn new(rows: Vec<Row>, offset: u64, total: u64) -> Self {
        Self {
            rows,
            offset,
            total,
        }
    }
}

/// The opaque cursor of the row at `offset`.
pub(crate) fn cursor(offset: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("cursor:{offset}"))
}

/// The offset a cursor names; `field` names the argument in errors.
pub(crate) fn parse_cursor(text: &str, field: &str) -> AppResult<u64> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("cursor:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| AppError::input(field, "not a valid cursor"))
}

/// Relay pagination arguments → (offset, limit) given the total.
pub fn window(ctx: &ResolverContext<'_>, total: u64) -> AppResult<(u64, u64)> {
    let arg_u64 = |name: &str| -> AppResult<Option<u64>> {
        match ctx.args.get(name) {
            None => Ok(None),
            Some(v) if v.is_null() => Ok(None),
            Some(v) => page_size(
                name,
                v.i64()
                    .map_err(|_| AppError::input(name, "expected an integer"))?,
            )
            .map(Some),
        }
    };
    let arg_cursor = |name: &str| -> AppResult<Option<u64>> {
        match ctx.args.get(name) {
            None => Ok(None),
            Some(v) if v.is_null() => Ok(None),
            Some(v) => Ok(Some(parse_cursor(
                v.string()
                    .map_err(|_| AppError::input(name, "not a valid cursor"))?,
                name,
            )?)),
        }
    };
    let paging = Paging {
        first: arg_u64("first")?,
        last: arg_u64("last")?,
        after: arg_cursor("after")?,
        before: arg_cursor("before")?,
    };
    Ok(paging.window(total))
}

/// Checks a `first`/`last` argument: not negative, at most [`MAX_PAGE`].
pub(crate) fn page_size(name: &str, n: i64) -> AppResult<u64> {
    if n < 0 {
        return Err(AppError::input(name, "must not be negative"));
    }
    if n as u64 > MAX_PAGE {
        return Err(AppError::input(name, format!("at most {MAX_PAGE}")));
    }
    Ok(n as u64)
}

/// A connection's paging arguments, checked: sizes and the offsets their cursors name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Paging {
    pub first: Option<u64>,
    pub last: Option<u64>,
    pub after: Option<u64>,
    pub before: Option<u64>,
}

impl Paging {
    /// The page as `(offset, limit)` among `total` rows.
    pub fn window(&self, total: u64) -> (u64, u64) {
        let mut start = self.after.map_or(0, |a| a + 1);
        let mut end = self.before.unwrap_or(total).min(total);
        if let Some(first) = self.first {
            end = end.min(start + first);
        }
        if let Some(last) = self.last {
            start = start.max(end.saturating_sub(last));
        }
        if self.first.is_none() && self.last.is_none() {
            end = end.min(start + DEFAULT_PAGE);
        }
        (start, end.saturating_sub(start))
    }

    /// Whether the window depends on the total (only `last` counts from the end; without it
    /// the page is the same however many rows follow).
    pub fn needs_total(&self) -> bool {
        self.last.is_some()
    }

    /// The page without knowing the total: what [`Paging::window`] gives for any total large
    /// enough (the statement's `LIMIT` then stops at the real end). Only when `!needs_total()`.
    pub fn open_window(&self) -> (u64, u64) {
        self.window(u64::MAX / 4)
    }
}

pub fn pagination_args(field: Field) -> Field {
    field
        .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("after", TypeRef::named(TypeRef::STRING)))
        .argument(InputValue::new("last", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("before", TypeRef::named(TypeRef::STRING)))
}

/// The shared connection plumbing (`PageInfo`).
pub fn page_info_object() -> Object {
    let data =
        |ctx: &ResolverContext<'_>| -> AppResult<(bool, bool, Option<String>, Option<String>)> {
            let c = ctx
                .parent_value
                .try_downcast_ref::<ConnectionData>()
                .map_err(|_| AppError::Internal(anyhow::anyhow!("bad parent")))?;
            let n = c.rows.len() as u64;
            Ok((
                c.offset + n < c.total,
                c.offset > 0,
                (n > 0).then(|| cursor(c.offset)),
                (n > 0).then(|| cursor(c.offset + n - 1)),
            ))
        };
    Object::new("PageInfo")
        .description("Relay page information.")
        .field(Field::new(
            "hasNextPage",
            TypeRef::named_nn(TypeRef::BOOLEAN),
            move |ctx| FieldFuture::new(async move { Ok(Some(Value::from(data(&ctx)?.0))) }),
        ))
        .field(Field::new(
            "hasPreviousPage",
            TypeRef::named_nn(TypeRef::BOOLEAN),
            move |ctx| FieldFuture::new(async move { Ok(Some(Value::from(data(&ctx)?.1))) }),
        ))
        .field(Field::new(
            "startCursor",
            TypeRef::named(TypeRef::STRING),
            move |ctx| FieldFuture::new(async move { Ok(data(&ctx)?.2.map(Value::from)) }),
        ))
        .field(Field::new(
            "endCursor",
            TypeRef::named(TypeRef::STRING),
            move |ctx| FieldFuture::new(async move { Ok(data(&ctx)?.3.map(Value::from)) }),
        ))
}

pub(super) fn connection_objects(class: &RowClass) -> (Object, Object) {
    let name = class.name;
    let edge = Object::new(format!("{name}Edge"))
        .field(Field::new(
            "cursor",
            TypeRef::named_nn(TypeRef::STRING),
            |ctx| {
                FieldFuture::new(async move {
                    let (offset, _) = ctx.parent_value.try_downcast_ref::<(u64, Row)>()?;
                    Ok(Some(Value::from(cursor(*offset))))
                })
            },
        ))
        .field(Field::new("node", TypeRef::named_nn(name), |ctx| {
            FieldFuture::new(async move {
                let (_, row) = ctx.parent_value.try_downcast_ref::<(u64, Row)>()?;
                Ok(Some(FieldValue::owned_any(row.clone())))
            })
        }));
    let connection = Object::new(format!("{name}Connection"))
        .field(Field::new(
            "edges",
            TypeRef::named_nn_list_nn(format!("{name}Edge")),
            |ctx| {
                FieldFuture::new(async move {
                    let c = ctx.parent_value.try_downcast_ref::<ConnectionData>()?;
                    Ok(Some(FieldValue::list(c.rows.iter().enumerate().map(
                        |(i, row)| FieldValue::owned_any((c.offset + i as u64, row.clone())),
                    ))))
                })
            },
        ))
        .field(Field::new(
            "nodes",
            TypeRef::named_nn_list_nn(name),
            |ctx| {
                FieldFuture::new(async move {
                    let c = ctx.parent_value.try_downcast_ref::<ConnectionData>()?;
                    Ok(Some(FieldValue::list(
                        c.rows.iter().map(|row| FieldValue::owned_any(row.clone())),
                    )))
                })
            },
        ))
        .field(Field::new(
            "totalCount",
            TypeRef::named_nn(TypeRef::INT),
            |ctx| {
                FieldFuture::new(async move {
                    let c = ctx.parent_value.try_downcast_ref::<ConnectionData>()?;
                    Ok(Some(Value::from(c.total)))
                })
            },
        ))
        .field(Field::new(
            "pageInfo",
            TypeRef::named_nn("PageInfo"),
            |ctx| {
                FieldFuture::new(async move {
                    let c = ctx.parent_value.try_downcast_ref::<ConnectionData>()?;
                    Ok(Some(FieldValue::borrowed_any(c)))
                })
            },
        ));
    (connection, edge)
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_PAGE, Paging, URL_SAFE_NO_PAD, cursor, parse_cursor};
    use crate::error::AppError;
    use base64::Engine;

    #[test]
    fn cursors_round_trip_their_offset() {
        for offset in [0, 1, 99, 1_000, u64::MAX] {
            assert_eq!(parse_cursor(&cursor(offset), "after").ok(), Some(offset));
        }
        // Opaque, URL-safe, unpadded.
        let text = cursor(42);
        assert!(!text.contains("42") && !text.contains('=') && !text.contains('+'));
    }

    #[test]
    fn a_cursor_that_is_not_one_is_bad_input_on_its_argument() {
        let other = URL_SAFE_NO_PAD.encode("offset:3");
        let negative = URL_SAFE_NO_PAD.encode("cursor:-1");
        for text in ["", "not base64!", &other, &negative] {
            match parse_cursor(text, "before") {
                Err(AppError::BadUserInput { field, .. }) => assert_eq!(field, "before", "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn paging_windows() {
        let page = |first, last, after, before| Paging {
            first,
            last,
            after,
            before,
        };
        // Neither size: the default page from the start (or after the cursor).
        assert_eq!(page(None, None, None, None).window(500), (0, DEFAULT_PAGE));
        assert_eq!(page(None, None, Some(9), None).window(15), (10, 5));
        assert_eq!(page(Some(3), None, Some(1), None).window(10), (2, 3));
        // `last` counts back from the end, or from `before`.
        assert_eq!(page(None, Some(2), None, None).window(10), (8, 2));
        assert_eq!(page(None, Some(2), None, Some(5)).window(10), (3, 2));
        assert_eq!(page(Some(0), None, None, None).window(10), (0, 0));
        // Past the end: an empty page at the cursor.
        assert_eq!(page(Some(5), None, Some(20), None).window(10), (21, 0));
        // Without `last`, the page does not depend on the total.
        let open = page(Some(4), None, Some(2), None);
        assert!(!open.needs_total());
        assert_eq!(open.open_window(), open.window(1_000));
        assert!(page(None, Some(1), None, None).needs_total());
    }
}
