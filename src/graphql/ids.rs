//! Opaque global ids (`Node.id`): base64url of `Type:uuid`.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use uuid::Uuid;

use crate::error::AppError;

/// The global id of row `id` of type `type_name`.
pub fn encode(type_name: &str, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{type_name}:{id}"))
}

/// Splits a global id into its type name and row id.
pub fn decode(global: &str) -> Option<(String, Uuid)> {
    let bytes = URL_SAFE_NO_PAD.decode(global.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (type_name, id) = text.split_once(':')?;
    Some((type_name.to_string(), Uuid::parse_str(id).ok()?))
}

/// Decodes a global id that must be of `type_name`; `field` names the argument in errors.
pub fn expect(global: &str, type_name: &str, field: &str) -> Result<Uuid, AppError> {
    match decode(global) {
        Some((t, id)) if t == type_name => Ok(id),
        Some((t, _)) => Err(AppError::input(
            field,
            format!("expected the id of a {type_name}, got the id of a {t}"),
        )),
        None => Err(AppError::input(field, "not a valid id")),
    }
}

/// Types whose ids the API once gave as raw UUIDs: a reference to one accepts either form.
const RAW_UUID_TOO: &[&str] = &["User", "Tenant"];

/// Decodes the id of a `type_name` given where a reference is expected: a global id, or for
/// [`RAW_UUID_TOO`] types (formerly raw UUIDs) the raw UUID too.
pub fn expect_reference(text: &str, type_name: &str, field: &str) -> Result<Uuid, AppError> {
    if RAW_UUID_TOO.contains(&type_name)
        && let Ok(id) = Uuid::parse_str(text.trim())
    {
        return Ok(id);
    }
    expect(text, type_name, field)
}
