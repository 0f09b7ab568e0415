//! Branding (SPEC §6): colours, custom CSS and the logo of a tenant, validated before they are
//! stored.
//!
//! Custom CSS is tokenized with a real CSS parser (`cssparser`, the one Servo and Firefox use)
//! and checked against allow-lists of at-rules and functions, so obfuscation by escapes or
//! comments does not get past it. Logos are typed by their content, never by their name.

use cssparser::{Parser, ParserInput, Token};

use crate::error::{AppError, AppResult};

/// The colour fields of a branding, as (GraphQL field, column).
pub const COLOR_FIELDS: [(&str, &str); 6] = [
    ("primaryColor", "primary_color"),
    ("secondaryColor", "secondary_color"),
    ("headerBackgroundColor", "header_background_color"),
    ("headerTextColor", "header_text_color"),
    ("linkColor", "link_color"),
    ("buttonColor", "button_color"),
];

/// Longest custom CSS accepted, in characters.
pub const MAX_CSS_CHARS: usize = 10_000;
/// Deepest nesting of blocks, functions and brackets in custom CSS.
pub const MAX_CSS_NESTING: usize = 16;

/// Largest logo accepted, in bytes.
pub const MAX_LOGO_BYTES: usize = 2 * 1024 * 1024;

/// A colour as `#rgb` or `#rrggbb` (lowercased), or a clear error naming `field`.
pub fn color(field: &str, value: &str) -> AppResult<String> {
    let hex = value.trim().strip_prefix('#').unwrap_or("");
    let ok = matches!(hex.len(), 3 | 6) && hex.chars().all(|c| c.is_ascii_hexdigit());
    if !ok {
        return Err(AppError::input(
            field,
            format!("`{value}` is not a hex colour such as #1a2b3c"),
        ));
    }
    Ok(format!("#{}", hex.to_ascii_lowercase()))
}

/// At-rules custom CSS may use.
const AT_RULES: &[&str] = &[
    "media",
    "supports",
    "keyframes",
    "-webkit-keyframes",
    "font-face",
    "layer",
    "container",
];

/// Functions custom CSS may call (`url` is checked separately).
const FUNCTIONS: &[&str] = &[
    "rgb",
    "rgba",
    "hsl",
    "hsla",
    "hwb",
    "lab",
    "lch",
    "oklab",
    "oklch",
    "color-mix",
    "calc",
    "min",
    "max",
    "clamp",
    "var",
    "env",
    "linear-gradient",
    "radial-gradient",
    "conic-gradient",
    "repeating-linear-gradient",
    "repeating-radial-gradient",
    "translate",
    "translatex",
    "translatey",
    "translate3d",
    "rotate",
    "scale",
    "scalex",
    "scaley",
    "skew",
    "skewx",
    "skewy",
    "matrix",
    "cubic-bezier",
    "steps",
    "not",
    "is",
    "where",
    "has",
    "nth-child",
    "nth-of-type",
    "nth-last-child",
    "nth-last-of-type",
    "lang",
    "minmax",
    "repeat",
    "fit-content",
    "format",
    "local",
    "attr",
    "counter",
    "counters",
    "drop-shadow",
    "blur",
    "brightness",
    "contrast",
    "grayscale",
    "opacity",
    "saturate",
    "sepia",
    "invert",
    "hue-rotate",
];

/// Properties that run code or bind behaviour in some browser.
const FORBIDDEN_PROPERTIES: &[&str] = &[
    "behavior",
    "-moz-binding",
    "-o-link",
    "-o-link-source",
    "-ms-behavior",
];

fn refuse(message: impl Into<String>) -> AppError {
    AppError::input("customCss", message)
}

/// True for a URL that stays on this origin: relative, or an inline raster image.
fn same_origin_url(url: &str) -> bool {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("data:") {
        return [
            "data:image/png",
            "data:image/jpeg",
            "data:image/gif",
            "data:image/webp",
        ]
        .iter()
        .any(|p| lower.starts_with(p));
    }
    let scheme = lower.split(['/', '?', '#']).next().unwrap_or("");
    !lower.starts_with("//") && !lower.starts_with("\\\\") && !scheme.contains(':')
}

fn check_text(text: &str) -> AppResult<()> {
    let lower = text.to_ascii_lowercase();
    for bad in [
        "javascript:",
        "vbscript:",
        "expression(",
        "</style",
        "<script",
        "<!--",
        "-->",
    ] {
        if lower.contains(bad) {
            return Err(refuse(format!("`{bad}` is not allowed in custom CSS")));
        }
    }
    Ok(())
}

fn walk<'i>(parser: &mut Parser<'i, '_>) -> Result<(), AppError> {
    loop {
        let token = match parser.next_including_whitespace_and_comments() {
            Ok(token) => token.clone(),
            Err(_) => return Ok(()),
        };
        let nested = match &token {
            Token::AtKeyword(name) => {
                let name = name.to_ascii_lowercase();
                if !AT_RULES.contains(&name.as_str()) {
                    return Err(refuse(format!("the at-rule `@{name}` is not allowed")));
                }
                false
            }
            Token::Ident(name) => {
                let name = name.to_ascii_lowercase();
                check_text(&name)?;
                if FORBIDDEN_PROPERTIES.contains(&name.as_str()) {
                    return Err(refuse(format!("the property `{name}` is not allowed")));
                }
                false
            }
            Token::QuotedString(text) => {
                check_text(text)?;
                false
            }
            Token::UnquotedUrl(url) => {
                check_text(url)?;
                if !same_origin_url(url) {
                    return Err(refuse(format!("url({url}) points at another origin")));
                }
                false
            }
            Token::Function(name) => {
                let name = name.to_ascii_lowercase();
                if name == "url" || name == "src" {
                    let argument = parser
                        .parse_nested_block(|p| {
                            p.expect_string().map(|s| s.to_string()).map_err(Into::into)
                        })
                        .map_err(|_: cssparser::ParseError<'_, ()>| {
                            refuse("url() needs one string")
                        })?;
                    check_text(&argument)?;
                    if !same_origin_url(&argument) {
                        return Err(refuse(format!(
                            "url(\"{argument}\") points at another origin"
                        )));
                    }
                    continue;
                }
                if !FUNCTIONS.contains(&name.as_str()) {
                    return Err(refuse(format!("the function `{name}()` is not allowed")));
                }
                true
            }
            Token::ParenthesisBlock | Token::SquareBracketBlock | Token::CurlyBracketBlock => true,
            Token::BadUrl(_) | Token::BadString(_) => return Err(refuse("the CSS is malformed")),
            Token::Delim('<') => return Err(refuse("`<` is not allowed in custom CSS")),
            Token::Comment(text) => {
                check_text(text)?;
                false
            }
            _ => false,
        };
        if nested {
            parser
                .parse_nested_block(|p| {
                    walk(p).map_err(|e| p.new_custom_error::<AppError, AppError>(e))
                })
                .map_err(|e| match e.kind {
                    cssparser::ParseErrorKind::Custom(err) => err,
                    _ => refuse("the CSS is malformed"),
                })?;
        }
    }
}

/// Checks custom CSS; returns it unchanged when it is allowed.
pub fn custom_css(css: &str) -> AppResult<String> {
    if css.chars().count() > MAX_CSS_CHARS {
        return Err(refuse(format!(
            "custom CSS is limited to {MAX_CSS_CHARS} characters"
        )));
    }
    check_text(css)?;
    if css.contains('\\') {
        // Escapes are how filters are dodged (`\65xpression`); plain CSS for colours and layout
        // does not need them.
        return Err(refuse("escapes (`\\`) are not allowed in custom CSS"));
    }
    // The walk below recurses once per nested block: bound the nesting before it runs.
    if let Err(depth) = crate::nesting::css(css, MAX_CSS_NESTING) {
        return Err(refuse(format!(
            "custom CSS nests deeper than {MAX_CSS_NESTING} levels (reached {depth})"
        )));
    }
    let mut input = ParserInput::new(css);
    let mut parser = Parser::new(&mut input);
    walk(&mut parser)?;
    Ok(css.to_string())
}

/// The content type of a logo, decided from its bytes; refuses anything else and SVGs that
/// could run code.
pub fn logo_content_type(bytes: &[u8]) -> AppResult<&'static str> {
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(AppError::input("file", "the logo is larger than 2 MB"));
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok("image/png");
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok("image/jpeg");
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Ok("image/gif");
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok("image/webp");
    }
    if let Ok(text) = std::str::from_utf8(bytes)
        && is_svg(text)
    {
        let lower = text.to_ascii_lowercase();
        let active = [
            "<script",
            "javascript:",
            "<foreignobject",
            "<iframe",
            "<embed",
            "<object",
            "<!entity",
        ]
        .iter()
        .any(|bad| lower.contains(bad))
            || has_event_handler(&lower);
        if active {
            return Err(AppError::input(
                "file",
                "SVG logos may not contain scripts or event handlers",
            ));
        }
        return Ok("image/svg+xml");
    }
    Err(AppError::input(
        "file",
        "the logo must be a PNG, JPEG, GIF, SVG or WebP image",
    ))
}

fn is_svg(text: &str) -> bool {
    let mut rest = text.trim_start_matches('\u{feff}').trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("<?xml") {
            rest = after.split_once("?>").map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.split_once("-->").map_or("", |(_, r)| r).trim_start();
        } else if rest.len() >= 9 && rest[..9].eq_ignore_ascii_case("<!doctype") {
            rest = rest.split_once('>').map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    rest.starts_with("<svg")
}

/// True when an element carries an `on…=` attribute.
fn has_event_handler(lower: &str) -> bool {
    let bytes = lower.as_bytes();
    lower.match_indices("on").any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let preceded = matches!(
            before,
            Some(b' ' | b'\t' | b'\n' | b'\r' | b'/' | b'"' | b'\'')
        );
        let name_end = lower[i + 2..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map(|n| i + 2 + n)
            .unwrap_or(lower.len());
        preceded && name_end > i + 2 && lower[name_end..].trim_start().starts_with('=')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_hex() {
        assert_eq!(color("c", "#1A2b3C").ok().as_deref(), Some("#1a2b3c"));
        assert!(color("c", "#fff").is_ok());
        for bad in ["red", "#12", "#gggggg", "1a2b3c", "#1a2b3c4", "rgb(0,0,0)"] {
            assert!(color("c", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn harmless_css_is_kept() {
        let css = ".header { background: linear-gradient(#fff, #eee); color: rgb(10 20 30); }\n\
                   @media (max-width: 600px) { .nav a:hover { text-decoration: underline; } }\n\
                   .logo { background-image: url(\"/assets/logo.png\"); width: calc(100% - 2rem); }";
        assert_eq!(custom_css(css).ok().as_deref(), Some(css));
    }

    #[test]
    fn css_attacks_are_refused() {
        let attacks = [
            "@import url(https://evil.example/x.css);",
            "@import 'https://evil.example/x.css';",
            "body { background: url(https://evil.example/track.png); }",
            "body { background: url('//evil.example/track.png'); }",
            "body { background-image: url(\"javascript:alert(1)\"); }",
            "body { width: expression(alert(1)); }",
            "body { behavior: url(/x.htc); }",
            "body { -moz-binding: url(/x.xml#xss); }",
            "</style><script>alert(1)</script>",
            "body { color: red } <!-- --> ",
            "body { w\\69 dth: \\65 xpression(alert(1)); }",
            "@namespace svg url(http://www.w3.org/2000/svg);",
            "body { background: image-set(\"https://evil.example/a.png\" 1x); }",
            "a { background: url(data:text/html;base64,PHNjcmlwdD4=); }",
            "@charset \"utf-8\"; body{}",
            "a { content: \"javascript:alert(1)\" }",
        ];
        for css in attacks {
            assert!(custom_css(css).is_err(), "accepted: {css}");
        }
        assert!(
            custom_css(&"a{}".repeat(4000)).is_err(),
            "over 10,000 characters"
        );
    }

    #[test]
    fn logos_are_typed_by_content() {
        assert_eq!(
            logo_content_type(b"\x89PNG\r\n\x1a\n....").ok(),
            Some("image/png")
        );
        assert_eq!(
            logo_content_type(&[0xFF, 0xD8, 0xFF, 0xE0]).ok(),
            Some("image/jpeg")
        );
        assert_eq!(logo_content_type(b"GIF89a...").ok(), Some("image/gif"));
        assert_eq!(
            logo_content_type(b"RIFF\0\0\0\0WEBPVP8 ").ok(),
            Some("image/webp")
        );
        let svg = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>"#;
        assert_eq!(logo_content_type(svg).ok(), Some("image/svg+xml"));
        assert!(logo_content_type(b"<html><body>not a png</body></html>").is_err());
        assert!(logo_content_type(br#"<svg><script>alert(1)</script></svg>"#).is_err());
        assert!(logo_content_type(br#"<svg onload="alert(1)"></svg>"#).is_err());
        assert!(logo_content_type(br#"<svg><a href="javascript:alert(1)">x</a></svg>"#).is_err());
        let big = vec![0x89u8; MAX_LOGO_BYTES + 1];
        assert!(logo_content_type(&big).is_err());
    }
}
