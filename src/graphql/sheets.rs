//! `importSheets(files, dryRun, prune)`: provisioning sheets for template authors, with the same
//! summary as the CLI and every problem with its location.

use async_graphql::{
    Value,
    dynamic::{Field, FieldFuture, FieldValue, InputObject, InputValue, Object, TypeRef},
};

use crate::{
    error::AppError,
    graphql::{
        classes::{app, request},
        parts::Operations,
    },
    sheets::{self, ImportOptions, ImportReport, SheetError, SheetFile, SheetSummary},
};

/// Largest number of files in one `importSheets`.
const MAX_FILES: usize = 200;

fn field<T: Send + Sync + 'static>(
    name: &'static str,
    ty: TypeRef,
    pick: fn(&T) -> Value,
) -> Field {
    Field::new(name, ty, move |ctx| {
        FieldFuture::new(async move {
            let parent = ctx.parent_value.try_downcast_ref::<T>()?;
            Ok(Some(pick(parent)))
        })
    })
}

fn objects() -> Vec<Object> {
    let int = || TypeRef::named_nn(TypeRef::INT);
    let string = || TypeRef::named_nn(TypeRef::STRING);
    vec![
        Object::new("SheetSummary")
            .description("What importing one sheet created, updated, left unchanged and pruned.")
            .field(field::<SheetSummary>("file", string(), |s| Value::from(s.file.clone())))
            .field(field::<SheetSummary>("application", string(), |s| Value::from(s.application.clone())))
            .field(field::<SheetSummary>("created", int(), |s| Value::from(s.created)))
            .field(field::<SheetSummary>("updated", int(), |s| Value::from(s.updated)))
            .field(field::<SheetSummary>("unchanged", int(), |s| Value::from(s.unchanged)))
            .field(field::<SheetSummary>("pruned", int(), |s| Value::from(s.pruned))),
        Object::new("SheetError")
            .description("A problem in a sheet, at its line and column.")
            .field(field::<SheetError>("file", string(), |e| Value::from(e.file.clone())))
            .field(field::<SheetError>("line", int(), |e| Value::from(e.line)))
            .field(field::<SheetError>("column", int(), |e| Value::from(e.column)))
            .field(field::<SheetError>("message", string(), |e| Value::from(e.message.clone()))),
        Object::new("SheetImportResult")
            .description("The outcome of importSheets: summaries when it went through, errors (and nothing written) when not.")
            .field(field::<ImportReport>("ok", TypeRef::named_nn(TypeRef::BOOLEAN), |r| Value::from(r.ok)))
            .field(field::<ImportReport>("dryRun", TypeRef::named_nn(TypeRef::BOOLEAN), |r| Value::from(r.dry_run)))
            .field(Field::new("sheets", TypeRef::named_nn_list_nn("SheetSummary"), |ctx| {
                FieldFuture::new(async move {
                    let r = ctx.parent_value.try_downcast_ref::<ImportReport>()?;
                    Ok(Some(FieldValue::list(r.sheets.iter().map(|s| FieldValue::owned_any(s.clone())))))
                })
            }))
            .field(Field::new("errors", TypeRef::named_nn_list_nn("SheetError"), |ctx| {
                FieldFuture::new(async move {
                    let r = ctx.parent_value.try_downcast_ref::<ImportReport>()?;
                    Ok(Some(FieldValue::list(r.errors.iter().map(|e| FieldValue::owned_any(e.clone())))))
                })
            })),
    ]
}

/// Adds `importSheets` to `ops`.
pub fn build(ops: &mut Operations) {
    ops.objects.extend(objects());
    ops.inputs.push(
        InputObject::new("SheetFileInput")
            .description("One sheet: a name for error locations, and its YAML text.")
            .field(InputValue::new("name", TypeRef::named_nn(TypeRef::STRING)))
            .field(InputValue::new(
                "content",
                TypeRef::named_nn(TypeRef::STRING),
            )),
    );
    ops.mutation_fields.push(
        Field::new(
            "importSheets",
            TypeRef::named_nn("SheetImportResult"),
            |ctx| {
                FieldFuture::new(async move {
                    let state = app(&ctx)?;
                    let req = request(&ctx)?;
                    if !(req.principal.is_admin || req.principal.has_grant("template:author")) {
                        return Err(AppError::forbidden(
                            "importing sheets needs the template:author grant",
                        )
                        .into());
                    }
                    let list = ctx.args.try_get("files")?.list()?;
                    if list.len() > MAX_FILES {
                        return Err(AppError::input(
                            "files",
                            format!("at most {MAX_FILES} files at once"),
                        )
                        .into());
                    }
                    let mut files = Vec::with_capacity(list.len());
                    for item in list.iter() {
                        let obj = item.object()?;
                        files.push(SheetFile {
                            name: obj.try_get("name")?.string()?.to_string(),
                            content: obj.try_get("content")?.string()?.to_string(),
                        });
                    }
                    let flag = |name: &str| {
                        ctx.args
                            .get(name)
                            .and_then(|v| v.boolean().ok())
                            .unwrap_or(false)
                    };
                    let options = ImportOptions {
                        dry_run: flag("dryRun"),
                        prune: flag("prune"),
                        vocabulary_author: req.principal.is_admin
                            || req.principal.has_grant("vocabulary:author"),
                    };
                    let report = sheets::import(state, &files, options).await?;
                    Ok(Some(FieldValue::owned_any(report)))
                })
            },
        )
        .argument(InputValue::new(
            "files",
            TypeRef::named_nn_list_nn("SheetFileInput"),
        ))
        .argument(InputValue::new("dryRun", TypeRef::named(TypeRef::BOOLEAN)).default_value(false))
        .argument(InputValue::new("prune", TypeRef::named(TypeRef::BOOLEAN)).default_value(false))
        .description(
            "Imports provisioning sheets onto the template (template:author). Invalid sheets give \
             ok: false with every problem and write nothing; dryRun reports without writing; \
             prune deletes what the sheets no longer declare.",
        ),
    );
}
