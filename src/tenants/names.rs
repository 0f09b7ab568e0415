//! Names a tenant or a member is known by: slugs made from display names, DNS labels, e-mail
//! addresses.

/// A slug from a name: lowercase ASCII letters and digits joined by single dashes.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for ch in name.to_lowercase().chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch);
        } else if let Some(folded) = fold_latin(ch) {
            out.push_str(folded);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut out: String = out.trim_matches('-').chars().take(63).collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// The ASCII spelling of a common accented Latin letter (`é` → `e`, `ß` → `ss`).
fn fold_latin(ch: char) -> Option<&'static str> {
    Some(match ch {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ą' => "a",
        'ç' | 'ć' | 'č' => "c",
        'ď' | 'đ' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
        'ł' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'ř' => "r",
        'ś' | 'š' | 'ş' => "s",
        'ť' | 'ţ' => "t",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        _ => return None,
    })
}

/// True for a DNS label of 1–63 lowercase letters, digits and inner dashes.
pub fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// True for a plausible e-mail address: one `@` between a local part and a dotted domain.
pub fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !value.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs_are_lowercase_ascii_words_joined_by_single_dashes() {
        assert_eq!(slugify("Ville de Saint-Étienne"), "ville-de-saint-etienne");
        assert_eq!(slugify("  Acme -- City!  "), "acme-city");
        assert_eq!(slugify("Straße 42"), "strasse-42");
        assert_eq!(slugify("Łódź"), "lodz");
        assert_eq!(slugify("東京"), "");
        assert_eq!(slugify("---"), "");
    }

    #[test]
    fn slugs_are_at_most_63_characters_and_never_end_in_a_dash() {
        let long = slugify(&"word ".repeat(30));
        assert!(long.len() <= 63, "{long}");
        assert!(!long.ends_with('-'), "{long}");
        assert!(long.starts_with("word-word"), "{long}");
        assert_eq!(slugify(&"a".repeat(100)), "a".repeat(63));
        // Cut on a dash: the dash goes too.
        let cut = slugify(&"ab ".repeat(40));
        assert_eq!(cut.len(), 62, "{cut}");
        assert!(cut.ends_with("-ab"), "{cut}");
    }
}
