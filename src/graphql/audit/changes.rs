//! How the audit log shows a change: the rows of branding, domains and features as
//! `{"before": …, "after": …}` (`detail.change`), in the field names of the API. A branding's
//! logo is shown by content type and size, never by its bytes.

use serde_json::{Map, Value, json};

use crate::graphql::ids;

/// The audit view of a branding (colours, CSS and the logo's type and size).
pub fn branding(model: &entity::brandings::Model) -> Value {
    json!({
        "primaryColor": model.primary_color,
        "secondaryColor": model.secondary_color,
        "headerBackgroundColor": model.header_background_color,
        "headerTextColor": model.header_text_color,
        "linkColor": model.link_color,
        "buttonColor": model.button_color,
        "customCss": model.custom_css,
        "logo": model.logo.as_ref().map(|bytes| json!({
            "contentType": model.logo_content_type,
            "bytes": bytes.len(),
        })),
    })
}

/// The audit view of a custom domain.
pub fn domain(model: &entity::domains::Model) -> Value {
    json!({
        "id": ids::encode("Domain", model.id),
        "host": model.host,
        "verified": model.verified_at.is_some(),
        "verifiedAt": model.verified_at.map(|t| t.to_rfc3339()),
    })
}

/// The audit view of a feature record.
pub fn feature(model: &entity::tenant_features::Model) -> Value {
    json!({
        "key": model.feature_key,
        "version": model.version,
        "provider": model.provider,
        "customization": model.customization,
        "lastMigratedAt": model.last_migrated_at.map(|t| t.to_rfc3339()),
    })
}

/// The fields of two objects that differ, as `(before, after)`: what a change did, without the
/// fields it left alone. Non-objects are returned whole.
pub fn difference(before: &Value, after: &Value) -> (Value, Value) {
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        return (before.clone(), after.clone());
    };
    let mut old = Map::new();
    let mut new = Map::new();
    for (key, value) in a {
        let was = b.get(key).unwrap_or(&Value::Null);
        if was != value {
            old.insert(key.clone(), was.clone());
            new.insert(key.clone(), value.clone());
        }
    }
    for (key, was) in b {
        if !a.contains_key(key) {
            old.insert(key.clone(), was.clone());
            new.insert(key.clone(), Value::Null);
        }
    }
    (Value::Object(old), Value::Object(new))
}

/// The `detail.change` of a branding mutation: only the fields it changed.
pub fn branding_change(
    before: &entity::brandings::Model,
    after: &entity::brandings::Model,
) -> Value {
    let (before, after) = difference(&branding(before), &branding(after));
    json!({ "targetType": "Branding", "before": before, "after": after })
}

/// A tenant reference for a change whose target is not the tenant (`updateFeature`): the audit
/// extension files an admin's entry under it.
pub fn tenant_ref(id: uuid::Uuid) -> Value {
    json!({ "id": ids::encode("Tenant", id) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difference_keeps_only_changed_fields() {
        let (b, a) = difference(
            &json!({"x": 1, "y": "same", "z": null}),
            &json!({"x": 2, "y": "same", "z": "set"}),
        );
        assert_eq!(b, json!({"x": 1, "z": null}));
        assert_eq!(a, json!({"x": 2, "z": "set"}));
    }
}
