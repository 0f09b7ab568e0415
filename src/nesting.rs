//! Iterative nesting pre-scans: how deep brackets go in a text, found without recursion and
//! before any recursive parser or walker sees the text.
//!
//! Parsers and tree walkers recurse once per nesting level; a 4 KB document nested 2,000 levels
//! deep overflowed a worker thread's stack and aborted the process. Every text that reaches a
//! recursive step first passes one of these scans, which stop at the first level past the
//! limit. The limits themselves are in `http/limits.rs` (documents) and `branding.rs` (CSS).

/// How a text's brackets are read: what opens, what closes, and how strings and comments hide
/// brackets from the count.
#[derive(Copy, Clone, Debug)]
enum Lexicon {
    /// GraphQL executable documents: `{ [ (`, `"…"` and `"""…"""` strings, `#` comments.
    GraphQl,
    /// JSON texts: `{ [`, `"…"` strings.
    Json,
    /// CSS: `{ [ (` (a function's `name(` included), `"…"` and `'…'` strings, `/* */` comments.
    Css,
}

/// The deepest bracket nesting of `text` read as `lexicon`, or `Err(depth)` as soon as the
/// nesting exceeds `limit` (the scan stops there, so the cost is linear in the bytes read).
fn scan(text: &[u8], lexicon: Lexicon, limit: usize) -> Result<usize, usize> {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut i = 0;
    while i < text.len() {
        let byte = text[i];
        match byte {
            b'{' | b'[' => {
                depth += 1;
            }
            b'(' if !matches!(lexicon, Lexicon::Json) => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b')' if !matches!(lexicon, Lexicon::Json) => depth = depth.saturating_sub(1),
            b'/' if matches!(lexicon, Lexicon::Css) && text[i..].starts_with(b"/*") => {
                i = text[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(text.len(), |end| i + 2 + end + 2);
                continue;
            }
            b'\'' if matches!(lexicon, Lexicon::Css) => {
                i = skip_quoted(text, i + 1, b'\'');
                continue;
            }
            b'#' if matches!(lexicon, Lexicon::GraphQl) => {
                while i < text.len() && text[i] != b'\n' && text[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' => {
                let block = matches!(lexicon, Lexicon::GraphQl) && text[i..].starts_with(b"\"\"\"");
                i = if block {
                    skip_block_string(text, i + 3)
                } else {
                    skip_quoted(text, i + 1, b'"')
                };
                continue;
            }
            _ => {}
        }
        if depth > deepest {
            deepest = depth;
            if deepest > limit {
                return Err(deepest);
            }
        }
        i += 1;
    }
    Ok(deepest)
}

/// The index after the `quote` that closes a string starting at `i` (after its opening quote).
fn skip_quoted(text: &[u8], mut i: usize, quote: u8) -> usize {
    while i < text.len() {
        match text[i] {
            b'\\' => i += 2,
            byte if byte == quote => return i + 1,
            _ => i += 1,
        }
    }
    text.len()
}

/// The index after the `"""` that closes a block string starting at `i` (after its opener).
fn skip_block_string(text: &[u8], mut i: usize) -> usize {
    while i < text.len() {
        if text[i..].starts_with(b"\\\"\"\"") {
            i += 4;
        } else if text[i..].starts_with(b"\"\"\"") {
            return i + 3;
        } else {
            i += 1;
        }
    }
    text.len()
}

/// Checks that a GraphQL document nests selection sets, lists, input objects and argument lists
/// (together) at most `limit` deep. `Err` carries the depth reached when the scan stopped.
pub fn graphql(text: &str, limit: usize) -> Result<usize, usize> {
    scan(text.as_bytes(), Lexicon::GraphQl, limit)
}

/// Checks that a JSON text nests objects and arrays at most `limit` deep.
pub fn json(text: &[u8], limit: usize) -> Result<usize, usize> {
    scan(text, Lexicon::Json, limit)
}

/// Checks that a stylesheet nests blocks, functions and brackets at most `limit` deep.
pub fn css(text: &str, limit: usize) -> Result<usize, usize> {
    scan(text.as_bytes(), Lexicon::Css, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_kind_of_bracket() {
        assert_eq!(graphql("{ a(b: [{c: 1}]) { d } }", 64), Ok(4));
        assert_eq!(graphql("query { a }", 64), Ok(1));
        assert_eq!(json(br#"{"a": [[1], {"b": 2}]}"#, 64), Ok(3));
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let doc = "{ a(s: \"[[[[\\\"[[[\", t: \"\"\"{{{{ \\\"\"\" [[[[ \"\"\") # ((((\n }";
        assert_eq!(graphql(doc, 64), Ok(2));
        assert_eq!(json(br#"{"a": "[[[[\"[[["}"#, 64), Ok(1));
        assert_eq!(css("a { b: url('((((') } /* {{{{ */", 64), Ok(2));
    }

    #[test]
    fn stops_at_the_first_level_past_the_limit() {
        let deep = "[".repeat(100_000);
        assert_eq!(graphql(&deep, 64), Err(65));
        assert_eq!(json(deep.as_bytes(), 10), Err(11));
    }

    #[test]
    fn unbalanced_closers_do_not_underflow() {
        assert_eq!(graphql("}}}} { a }", 64), Ok(1));
    }
}
