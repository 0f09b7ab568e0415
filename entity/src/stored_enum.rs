//! `stored_enum!`: a closed set of values stored as their names in a text column, through
//! sea-orm's active enums, serialised under the same names, listed in order ([`NAMES`] feeds the
//! GraphQL enum of the same values).
//!
//! [`NAMES`]: crate::audit_entries::AuditOutcome::NAMES

/// Declares a string-valued active enum: `stored_enum! { /// doc  Name { Variant = "NAME", … } }`.
#[macro_export]
macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash,
            sea_orm::EnumIter, sea_orm::DeriveActiveEnum, serde::Serialize, serde::Deserialize,
        )]
        #[sea_orm(rs_type = "String", db_type = "Text")]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[sea_orm(string_value = $value)]
                #[serde(rename = $value)]
                $variant,
            )+
        }

        impl $name {
            /// The stored names, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($value),+];

            /// The value stored as `name`.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $($value => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The stored name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::{audit_entries::AuditOutcome, fork_runs::RunStatus};
    use sea_orm::ActiveEnum;

    #[test]
    fn names_parse_back_and_are_what_is_stored() {
        for name in RunStatus::NAMES {
            let status = RunStatus::parse(name).expect("a listed name parses");
            assert_eq!(status.as_str(), *name);
            assert_eq!(status.to_value(), *name, "stored under its name");
            assert_eq!(
                serde_json::to_value(status).expect("serialises"),
                serde_json::json!(name)
            );
        }
        assert_eq!(AuditOutcome::parse("REFUSED"), Some(AuditOutcome::Refused));
        assert_eq!(AuditOutcome::parse("refused"), None);
    }
}
