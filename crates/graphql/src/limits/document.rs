//! The first look at a request, before the GraphQL parser sees it: the document's size in
//! bytes, its number of lexical tokens, how deep its brackets nest, and how deep the
//! variables nest.
//!
//! Why a scan of our own: async-graphql's parser recurses once per nested value, list or
//! selection set, and checks its own recursion limit only for selection sets and only
//! after parsing. A 3 KB document of `[[[[...]]]]` (or an input object inside itself)
//! about 1,500 deep overflowed a worker thread's stack and aborted the process. This scan
//! is a flat loop over the bytes with constant stack, so nothing an attacker sends reaches
//! the recursive parser unless it is shallow and small.
//!
//! The scan follows the GraphQL lexical grammar closely enough to count: punctuators,
//! names, numbers, strings (`"..."` with escapes, block strings `"""..."""`) and comments
//! (`# ...` to the end of the line); whitespace, commas and the byte-order mark are
//! ignored. Brackets inside strings and comments do not count. It does not validate: an
//! unterminated string simply ends the scan, and the parser reports the syntax error.

use async_graphql::Value;

/// What the scan found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Lexical tokens (punctuators, names, numbers, strings; a `...` counts once).
    pub tokens: usize,
    /// Deepest nesting of selection sets (`{` outside parentheses).
    pub selection_depth: usize,
    /// Deepest nesting of `[` and `{` inside parentheses: argument values, directive
    /// arguments, and variable defaults.
    pub value_depth: usize,
}

/// Scans a document. Stops early, with the shape so far, once `max_tokens` is passed, so
/// its work is bounded by the token limit, not by the document.
pub fn scan(document: &str, max_tokens: usize) -> Shape {
    let bytes = document.as_bytes();
    let mut shape = Shape::default();
    // Open brackets: selection braces outside parentheses, and value brackets inside.
    let mut selection = 0usize;
    let mut value = 0usize;
    let mut parens = 0usize;
    // For each open bracket inside parentheses we only need the count, but a `{` must
    // know whether it opened inside parentheses to close the right counter. Brackets are
    // balanced in a valid document; for an invalid one the counts just saturate.
    let mut value_stack_base: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                i = skip_string(bytes, i);
            }
            b'(' => {
                parens += 1;
                value_stack_base.push(value);
                i += 1;
            }
            b')' => {
                parens = parens.saturating_sub(1);
                value = value_stack_base.pop().unwrap_or(0);
                i += 1;
            }
            b'[' | b'{' if parens > 0 => {
                value += 1;
                shape.value_depth = shape.value_depth.max(value);
                i += 1;
            }
            b']' | b'}' if parens > 0 => {
                value = value.saturating_sub(1);
                i += 1;
            }
            b'{' => {
                selection += 1;
                shape.selection_depth = shape.selection_depth.max(selection);
                i += 1;
            }
            b'}' => {
                selection = selection.saturating_sub(1);
                i += 1;
            }
            b'[' => {
                // A list type in a variable definition is inside parentheses; outside them
                // `[` is a syntax error the parser reports. Count it as a value bracket
                // so a pile of them is still refused.
                value += 1;
                shape.value_depth = shape.value_depth.max(value);
                i += 1;
            }
            b']' => {
                value = value.saturating_sub(1);
                i += 1;
            }
            b'.' if bytes.get(i + 1) == Some(&b'.') && bytes.get(i + 2) == Some(&b'.') => {
                i += 3;
            }
            b'_' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' => {
                i += 1;
                while i < bytes.len()
                    && matches!(bytes[i], b'_' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'+' | b'-')
                {
                    // Numbers may hold `.`, `e+`, `e-`; names never start with a digit,
                    // and `...` never follows a name without a space in a valid document.
                    if bytes[i] == b'.' && bytes.get(i + 1) == Some(&b'.') {
                        break;
                    }
                    i += 1;
                }
            }
            0xEF if bytes.get(i + 1) == Some(&0xBB) && bytes.get(i + 2) == Some(&0xBF) => {
                // The byte-order mark is ignored, as whitespace.
                i += 3;
                continue;
            }
            _ => {
                // Any other punctuator (`! $ & : = @ |`) or a stray byte: one token.
                i += 1;
            }
        }
        shape.tokens += 1;
        if shape.tokens > max_tokens {
            break;
        }
    }
    shape
}

/// The index just past the string starting at `start` (a `"`), or the end of the input
/// when it is unterminated.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    if bytes[start..].starts_with(b"\"\"\"") {
        let mut i = start + 3;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"\\\"\"\"") {
                i += 4;
            } else if bytes[i..].starts_with(b"\"\"\"") {
                return i + 3;
            } else {
                i += 1;
            }
        }
        return bytes.len();
    }
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            // A plain string ends at the line; the parser reports it.
            b'\n' | b'\r' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// How deep a variables value nests (a scalar is 0, `[1]` is 1, `{"a": [1]}` is 2).
/// Iterative, so a deep value cannot overflow the stack here either; stops counting past
/// `limit`.
pub fn value_depth(value: &Value, limit: usize) -> usize {
    let mut deepest = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((value, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        if deepest > limit {
            return deepest;
        }
        match value {
            Value::List(items) => stack.extend(items.iter().map(|item| (item, depth + 1))),
            Value::Object(fields) => stack.extend(fields.values().map(|item| (item, depth + 1))),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_tokens_and_ignores_whitespace_commas_and_comments() {
        let shape = scan("# a comment { [ (\n{ a, b(x: 1) }", 100);
        // { a b ( x : 1 ) }
        assert_eq!(shape.tokens, 9);
        assert_eq!(shape.selection_depth, 1);
        assert_eq!(shape.value_depth, 0);
    }

    #[test]
    fn brackets_in_strings_do_not_count() {
        let shape = scan(
            r#"{ a(s: "[[[{{{ \" ]]]") b(s: """ [[[ \""" {{ """) }"#,
            100,
        );
        assert_eq!(shape.value_depth, 0);
        assert_eq!(shape.selection_depth, 1);
    }

    #[test]
    fn nested_argument_values_are_measured() {
        let deep = format!("{{ a(x: {}1{}) }}", "[".repeat(1500), "]".repeat(1500));
        assert_eq!(scan(&deep, usize::MAX).value_depth, 1500);
        let objects = format!("{{ a(x: {}) }}", "{b: ".repeat(40) + "1" + &"}".repeat(40));
        let shape = scan(&objects, usize::MAX);
        assert_eq!(shape.value_depth, 40);
        assert_eq!(shape.selection_depth, 1);
    }

    #[test]
    fn selection_sets_and_values_are_told_apart() {
        let shape = scan(
            "query($v: [[ID!]] = [[\"a\"]]) { a { b(f: {g: [1]}) { c { d } } } }",
            100,
        );
        assert_eq!(shape.selection_depth, 4);
        assert_eq!(shape.value_depth, 2);
    }

    #[test]
    fn the_scan_stops_past_the_token_limit() {
        let many = "{ ".to_owned() + &"__typename ".repeat(1_000_000) + "}";
        let shape = scan(&many, 10);
        assert_eq!(shape.tokens, 11);
    }

    #[test]
    fn spreads_and_numbers_are_single_tokens() {
        assert_eq!(scan("{ ...F a(x: -1.5e+3) }", 100).tokens, 10);
    }

    #[test]
    fn variable_depth_is_measured_without_recursion() {
        let mut value = Value::from(1);
        for _ in 0..100_000 {
            value = Value::List(vec![value]);
        }
        assert_eq!(value_depth(&value, 10), 11);
        assert_eq!(value_depth(&Value::from(1), 10), 0);
        // Dropping a deep value recurses in Value's own Drop; leak it in the test so the
        // test thread's stack is not the thing measured.
        std::mem::forget(value);
    }
}
