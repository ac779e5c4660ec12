//! Format-preserving TOML edits on files gpu-setup does not own.
//!
//! Edits go through `toml_edit`; two of them are done on the raw text and then
//! checked by re-parsing, because they are about lines that `toml_edit` keeps
//! in decor: un-commenting a stock `#key = default` line in place (as NVIDIA's
//! docs do by hand), and deleting a key's whole line so the comments around it
//! stay. Finally [`restore_layout`] puts back the line endings and the missing
//! final newline that `toml_edit` normalises, so only the lines an edit is
//! about ever differ.

use similar::{capture_diff_slices, Algorithm, DiffOp};
use toml_edit::{Document, DocumentMut, Item, Table, TableLike, Value};

use crate::error::{line_col, PlanError};
use crate::paths::TargetPath;

/// Which existing values may be replaced by an edit.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Expect {
    /// A boolean.
    Bool,
    /// A string.
    Str,
    /// An array of strings.
    StrArray,
    /// An array of strings that may hold `{append = true|false}` tables
    /// (containers.conf, Podman 4.8+: containers/common
    /// `internal/attributedstring`).
    AttrStrArray,
}

impl Expect {
    fn describe(self) -> &'static str {
        match self {
            Expect::Bool => "a boolean",
            Expect::Str => "a string",
            Expect::StrArray => "an array of strings",
            Expect::AttrStrArray => "an array of strings (optionally with {append=true})",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        match self {
            Expect::Bool => v.is_bool(),
            Expect::Str => v.is_str(),
            Expect::StrArray => v.as_array().is_some_and(|a| a.iter().all(Value::is_str)),
            Expect::AttrStrArray => v.as_array().is_some_and(|a| {
                a.iter().all(|item| {
                    item.is_str()
                        || item
                            .as_inline_table()
                            .is_some_and(|t| t.iter().all(|(k, v)| k == "append" && v.is_bool()))
                })
            }),
        }
    }
}

/// Parses `text` (the content of `path`) for editing.
pub(crate) fn parse_mut(path: &TargetPath, text: &str) -> Result<DocumentMut, PlanError> {
    text.parse::<DocumentMut>()
        .map_err(|e| syntax_error(path, text, &e))
}

/// Parses `text` keeping spans, for locating things.
pub(crate) fn parse_spanned<'a>(
    path: &TargetPath,
    text: &'a str,
) -> Result<Document<&'a str>, PlanError> {
    Document::parse(text).map_err(|e| syntax_error(path, text, &e))
}

fn syntax_error(path: &TargetPath, text: &str, e: &toml_edit::TomlError) -> PlanError {
    let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
    PlanError::Syntax {
        path: path.clone(),
        line,
        column,
        message: e.message().trim().to_owned(),
        language: "TOML",
    }
}

/// Builds a wrong-type error for the item at `keys`, located in `text`.
pub(crate) fn wrong_type(
    path: &TargetPath,
    text: &str,
    keys: &[&str],
    expected: &'static str,
    found: &str,
) -> PlanError {
    let offset = Document::parse(text).ok().and_then(|doc| {
        let mut item = doc.as_item();
        let mut key_span = None;
        for k in keys {
            let t = item.as_table_like()?;
            let (key, it) = t.get_key_value(k)?;
            key_span = key.span();
            item = it;
        }
        item.span().or(key_span).map(|s| s.start)
    });
    let (line, column) = offset.map_or((1, 1), |o| line_col(text, o));
    PlanError::WrongType {
        path: path.clone(),
        line,
        column,
        key: keys.join("."),
        expected,
        found: found.to_owned(),
    }
}

/// Reads a value at `table.key` of a parsed document (`doc.as_item()`),
/// checking its type. `Ok(None)` when absent.
pub(crate) fn get<'d>(
    path: &TargetPath,
    text: &str,
    doc: &'d Item,
    table: &[&str],
    key: &str,
    expect: Expect,
) -> Result<Option<&'d Value>, PlanError> {
    let mut item = doc;
    for (i, k) in table.iter().enumerate() {
        let Some(t) = item.as_table_like() else {
            return Err(wrong_type(
                path,
                text,
                &table[..i],
                "a table",
                item.type_name(),
            ));
        };
        match t.get(k) {
            Some(next) => item = next,
            None => return Ok(None),
        }
    }
    let Some(t) = item.as_table_like() else {
        return Err(wrong_type(path, text, table, "a table", item.type_name()));
    };
    let Some(found) = t.get(key) else {
        return Ok(None);
    };
    let mut full: Vec<&str> = table.to_vec();
    full.push(key);
    match found.as_value() {
        Some(v) if expect.accepts(v) => Ok(Some(v)),
        _ => Err(wrong_type(
            path,
            text,
            &full,
            expect.describe(),
            found.type_name(),
        )),
    }
}

/// Navigates to the table at `keys`, creating missing tables: intermediate
/// ones implicit (so no empty `[engine]` header appears), the last one a
/// normal table appended at the end of the document.
fn table_mut<'d>(
    path: &TargetPath,
    text: &str,
    doc: &'d mut DocumentMut,
    keys: &[&str],
) -> Result<&'d mut dyn TableLike, PlanError> {
    let mut cur: &mut dyn TableLike = doc.as_table_mut();
    for (i, k) in keys.iter().enumerate() {
        if cur.get(k).is_none() {
            let mut t = Table::new();
            t.set_implicit(i + 1 < keys.len());
            cur.insert(k, Item::Table(t));
        }
        let item = cur
            .get_mut(k)
            .ok_or_else(|| internal(path, "table vanished"))?;
        let type_name = item.type_name();
        cur = match item.as_table_like_mut() {
            Some(t) => t,
            None => return Err(wrong_type(path, text, &keys[..=i], "a table", type_name)),
        };
    }
    Ok(cur)
}

fn internal(path: &TargetPath, message: &str) -> PlanError {
    PlanError::Internal {
        path: path.clone(),
        message: message.to_owned(),
    }
}

/// Sets `table.key = value` in `text` and returns the new text (equal to
/// `text` when the value is already there). An existing value of another type
/// is an error, never overwritten.
pub(crate) fn set(
    path: &TargetPath,
    text: &str,
    table: &[&str],
    key: &str,
    value: Value,
    expect: Expect,
) -> Result<String, PlanError> {
    let mut doc = parse_mut(path, text)?;
    if let Some(existing) = get(path, text, doc.as_item(), table, key, expect)? {
        if values_equal(existing, &value) {
            return Ok(text.to_owned());
        }
        let untouched = doc.to_string();
        let t = table_mut(path, text, &mut doc, table)?;
        let slot = t
            .get_mut(key)
            .and_then(Item::as_value_mut)
            .ok_or_else(|| internal(path, "value vanished"))?;
        let mut value = value;
        *value.decor_mut() = slot.decor().clone();
        *slot = value;
        return rewritten(path, text, &untouched, &doc);
    }
    if let Some(edited) = uncomment_in_place(path, text, table, key, &value)? {
        return Ok(edited);
    }
    let untouched = doc.to_string();
    table_mut(path, text, &mut doc, table)?.insert(key, Item::Value(value));
    rewritten(path, text, &untouched, &doc)
}

/// `doc` (parsed from `text`, then edited) as text with `text`'s layout,
/// when toml_edit writes every line of the unedited `text` back where it
/// was (`untouched`: the parsed document written before the edit). It does not for dotted keys whose table continues after other
/// lines (toml_edit groups a table's dotted keys), so such a file is
/// refused, naming the first line that would move, rather than rewritten.
fn rewritten(
    path: &TargetPath,
    text: &str,
    untouched: &str,
    doc: &DocumentMut,
) -> Result<String, PlanError> {
    let round_trip = restore_layout(text, untouched);
    if round_trip != text {
        let old: Vec<&str> = text.lines().collect();
        let new: Vec<&str> = round_trip.lines().collect();
        let moved = capture_diff_slices(Algorithm::Myers, &old, &new)
            .into_iter()
            .find_map(|op| match op {
                DiffOp::Delete { old_index, .. } | DiffOp::Replace { old_index, .. } => {
                    Some(old_index)
                }
                _ => None,
            })
            .unwrap_or(0);
        return Err(PlanError::Layout {
            path: path.clone(),
            line: moved + 1,
            text: old.get(moved).unwrap_or(&"").trim().to_owned(),
        });
    }
    Ok(restore_layout(text, &doc.to_string()))
}

/// Removes `table.key` from `text`, keeping the comments around it.
pub(crate) fn remove(
    path: &TargetPath,
    text: &str,
    table: &[&str],
    key: &str,
) -> Result<String, PlanError> {
    let mut doc = parse_mut(path, text)?;
    let untouched = doc.to_string();
    let mut item = doc.as_item_mut();
    for k in table {
        match item.as_table_like_mut().and_then(|t| t.get_mut(k)) {
            Some(next) => item = next,
            None => return Ok(text.to_owned()),
        }
    }
    let Some(t) = item.as_table_like_mut() else {
        return Ok(text.to_owned());
    };
    if t.remove(key).is_none() {
        return Ok(text.to_owned());
    }
    if let Some(edited) = delete_line(text, table, key) {
        if parse_mut(path, &edited).is_ok_and(|d| items_equal(d.as_item(), doc.as_item())) {
            return Ok(edited);
        }
    }
    rewritten(path, text, &untouched, &doc)
}

/// Whether a table holds any key-value at all, however deeply nested
/// (tables only count by what they hold).
pub(crate) fn has_values(t: &dyn TableLike) -> bool {
    t.iter().any(|(_, item)| match item.as_table_like() {
        Some(inner) => has_values(inner),
        None => !item.is_none(),
    })
}

/// When `table` is a `[header]` table and its lines hold a commented-out
/// `#key = ...`, replaces that line with `key = value`, keeping indentation.
fn uncomment_in_place(
    path: &TargetPath,
    text: &str,
    table: &[&str],
    key: &str,
    value: &Value,
) -> Result<Option<String>, PlanError> {
    let spanned = parse_spanned(path, text)?;
    let mut item = spanned.as_item();
    for k in table {
        match item.as_table_like().and_then(|t| t.get(k)) {
            Some(next) => item = next,
            None => return Ok(None),
        }
    }
    let Some(t) = item.as_table() else {
        return Ok(None);
    };
    let Some(header) = t.span().filter(|_| !t.is_dotted() && !t.is_implicit()) else {
        return Ok(None);
    };
    let region_start = line_end(text, header.end);
    let mut starts = Vec::new();
    collect_header_starts(spanned.as_item(), &mut starts);
    let region_end = starts
        .into_iter()
        .filter(|&s| s > header.start)
        .map(|s| line_start(text, s))
        .min()
        .unwrap_or(text.len());
    if region_start >= region_end {
        return Ok(None);
    }
    let mut offset = region_start;
    for line in text[region_start..region_end].split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        let trimmed = content.trim_start();
        // Only a complete one-line `#key = value` counts: the first line of a
        // commented multi-line array (`#crun = [`) would leave its tail behind,
        // and `#key.sub = 1` is another key.
        let commented = trimmed.strip_prefix('#').is_some_and(|rest| {
            rest.parse::<DocumentMut>()
                .is_ok_and(|d| d.len() == 1 && d.get(key).is_some_and(Item::is_value))
        });
        if commented {
            let indent = &content[..content.len() - trimmed.len()];
            let mut fresh = value.clone();
            fresh.decor_mut().clear();
            let replacement = format!("{indent}{key} = {fresh}");
            let mut edited = String::with_capacity(text.len() + 8);
            edited.push_str(&text[..offset]);
            edited.push_str(&replacement);
            edited.push_str(&text[offset + content.len()..]);
            return Ok(verify_set(path, text, &edited, table, key, value).then_some(edited));
        }
        offset += line.len();
    }
    Ok(None)
}

/// Checks that `edited` is `original` plus exactly `table.key = value`.
fn verify_set(
    path: &TargetPath,
    original: &str,
    edited: &str,
    table: &[&str],
    key: &str,
    value: &Value,
) -> bool {
    let (Ok(before), Ok(mut after)) = (parse_mut(path, original), parse_mut(path, edited)) else {
        return false;
    };
    let mut item = after.as_item_mut();
    for k in table {
        match item.as_table_like_mut().and_then(|t| t.get_mut(k)) {
            Some(next) => item = next,
            None => return false,
        }
    }
    let Some(t) = item.as_table_like_mut() else {
        return false;
    };
    match t.remove(key) {
        Some(Item::Value(v)) if values_equal(&v, value) => {}
        _ => return false,
    }
    items_equal(before.as_item(), after.as_item())
}

/// Deletes the line(s) holding `table.key = ...` when they hold nothing else
/// but an end-of-line comment. The caller verifies the result.
fn delete_line(text: &str, table: &[&str], key: &str) -> Option<String> {
    let doc = Document::parse(text).ok()?;
    let mut item = doc.as_item();
    for k in table {
        item = item.as_table_like()?.get(k)?;
    }
    let (k, v) = item.as_table_like()?.get_key_value(key)?;
    let (ks, vs) = (k.span()?, v.span()?);
    let start = line_start(text, ks.start);
    if !text[start..ks.start].trim().is_empty() {
        return None;
    }
    let end = line_end(text, vs.end);
    let rest = text[vs.end..end].trim();
    if !(rest.is_empty() || rest.starts_with('#')) {
        return None;
    }
    // The last line has no newline of its own: take the one before it.
    let start = if end == text.len() && !text.ends_with('\n') {
        text[..start]
            .strip_suffix('\n')
            .map_or(start, |t| t.strip_suffix('\r').unwrap_or(t).len())
    } else {
        start
    };
    Some(format!("{}{}", &text[..start], &text[end..]))
}

fn collect_header_starts(item: &Item, out: &mut Vec<usize>) {
    match item {
        Item::Table(t) => {
            if let Some(s) = t.span() {
                out.push(s.start);
            }
            for (_, child) in t.iter() {
                collect_header_starts(child, out);
            }
        }
        Item::ArrayOfTables(a) => {
            for t in a.iter() {
                if let Some(s) = t.span() {
                    out.push(s.start);
                }
                for (_, child) in t.iter() {
                    collect_header_starts(child, out);
                }
            }
        }
        _ => {}
    }
}

/// Offset of the start of the line holding `offset`.
fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |i| i + 1)
}

/// Offset just past the newline ending the line holding `offset`.
fn line_end(text: &str, offset: usize) -> usize {
    text[offset..]
        .find('\n')
        .map_or(text.len(), |i| offset + i + 1)
}

/// Whether two values mean the same (formatting ignored).
pub(crate) fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.value() == y.value(),
        (Value::Integer(x), Value::Integer(y)) => x.value() == y.value(),
        (Value::Float(x), Value::Float(y)) => {
            x.value() == y.value() || (x.value().is_nan() && y.value().is_nan())
        }
        (Value::Boolean(x), Value::Boolean(y)) => x.value() == y.value(),
        (Value::Datetime(x), Value::Datetime(y)) => x.value() == y.value(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| values_equal(p, q))
        }
        (Value::InlineTable(x), Value::InlineTable(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => false,
    }
}

/// Whether two items mean the same. Tables compare by content, whatever
/// their form (header, dotted, inline).
pub(crate) fn items_equal(a: &Item, b: &Item) -> bool {
    match (a, b) {
        (Item::None, Item::None) => true,
        (Item::ArrayOfTables(x), Item::ArrayOfTables(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(p, q)| items_equal(&Item::Table(p.clone()), &Item::Table(q.clone())))
        }
        _ => match (a.as_table_like(), b.as_table_like()) {
            (Some(x), Some(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .all(|(k, v)| y.get(k).is_some_and(|w| items_equal(v, w)))
            }
            (None, None) => match (a.as_value(), b.as_value()) {
                (Some(x), Some(y)) => values_equal(x, y),
                _ => false,
            },
            _ => false,
        },
    }
}

/// Takes `edited` (as rendered by `toml_edit`, LF endings) and puts back the
/// byte-exact lines of `original` wherever a line is unchanged, its line
/// ending style for new lines, and its lack of a final newline.
pub(crate) fn restore_layout(original: &str, edited: &str) -> String {
    let old: Vec<(&str, &str)> = original
        .split_inclusive('\n')
        .map(|l| {
            let content = l.trim_end_matches('\n').trim_end_matches('\r');
            (content, &l[content.len()..])
        })
        .collect();
    let new: Vec<&str> = edited.lines().collect();
    let crlf = old.iter().filter(|(_, e)| *e == "\r\n").count();
    let lf = old.iter().filter(|(_, e)| *e == "\n").count();
    let eol = if crlf > lf { "\r\n" } else { "\n" };
    let old_contents: Vec<&str> = old.iter().map(|(c, _)| *c).collect();

    let mut lines: Vec<(&str, &str)> = Vec::with_capacity(new.len());
    for op in capture_diff_slices(Algorithm::Myers, &old_contents, &new) {
        match op {
            DiffOp::Equal { old_index, len, .. } => {
                lines.extend(
                    old[old_index..old_index + len]
                        .iter()
                        .map(|(c, e)| (*c, if e.is_empty() { eol } else { *e })),
                );
            }
            DiffOp::Insert {
                new_index, new_len, ..
            }
            | DiffOp::Replace {
                new_index, new_len, ..
            } => {
                lines.extend(
                    new[new_index..new_index + new_len]
                        .iter()
                        .map(|c| (*c, eol)),
                );
            }
            DiffOp::Delete { .. } => {}
        }
    }
    let keep_final_newline = original.is_empty() || original.ends_with('\n');
    if let (false, Some(last)) = (keep_final_newline, lines.last_mut()) {
        last.1 = "";
    }
    lines.into_iter().flat_map(|(c, e)| [c, e]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> TargetPath {
        TargetPath::new("/t.toml").unwrap()
    }

    fn no_cgroups(text: &str) -> Result<String, PlanError> {
        set(
            &p(),
            text,
            &["cli"],
            "no-cgroups",
            Value::from(true),
            Expect::Bool,
        )
    }

    #[test]
    fn restore_keeps_crlf_and_missing_final_newline() {
        let original = "a = 1\r\nb = 2";
        let edited = "a = 1\nc = 3\nb = 2\n";
        assert_eq!(restore_layout(original, edited), "a = 1\r\nc = 3\r\nb = 2");
    }

    #[test]
    fn uncomments_stock_line_in_place() {
        let text =
            "[cli]\n#path = \"x\"\n#no-cgroups = false\nload = true\n\n[rt]\n#no-cgroups = 1\n";
        let out = no_cgroups(text).unwrap();
        assert_eq!(
            out,
            "[cli]\n#path = \"x\"\nno-cgroups = true\nload = true\n\n[rt]\n#no-cgroups = 1\n"
        );
    }

    #[test]
    fn commented_line_in_another_table_is_not_used() {
        let text = "[cli]\nload = true\n\n[rt]\n#no-cgroups = false\n";
        let out = no_cgroups(text).unwrap();
        assert_eq!(
            out,
            "[cli]\nload = true\nno-cgroups = true\n\n[rt]\n#no-cgroups = false\n"
        );
    }

    #[test]
    fn commented_line_inside_multiline_string_is_not_uncommented() {
        let text = "[cli]\ns = \"\"\"\n#no-cgroups = false\n\"\"\"\n";
        let out = no_cgroups(text).unwrap();
        assert_eq!(
            out,
            "[cli]\ns = \"\"\"\n#no-cgroups = false\n\"\"\"\nno-cgroups = true\n"
        );
    }

    #[test]
    fn commented_subkey_is_not_our_key() {
        let text = "[cli]\n#no-cgroups.x = 1\n";
        let out = no_cgroups(text).unwrap();
        assert_eq!(out, "[cli]\nno-cgroups = true\n#no-cgroups.x = 1\n");
    }

    #[test]
    fn commented_multiline_entry_is_not_half_uncommented() {
        let text = "[rt]\n#nvidia = [\n#  \"/x\",\n#]\n";
        let value = Value::Array(["/y"].into_iter().collect());
        let out = set(&p(), text, &["rt"], "nvidia", value, Expect::StrArray).unwrap();
        assert_eq!(
            out,
            "[rt]\nnvidia = [\"/y\"]\n#nvidia = [\n#  \"/x\",\n#]\n"
        );
    }

    #[test]
    fn remove_keeps_neighbouring_comments() {
        let text = "[cli]\n# about a\na = 1\n# about b\nb = 2 # why\n# about c\nc = 3\n";
        let out = remove(&p(), text, &["cli"], "b").unwrap();
        assert_eq!(
            out,
            "[cli]\n# about a\na = 1\n# about b\n# about c\nc = 3\n"
        );
    }

    #[test]
    fn replacing_a_value_keeps_its_comment() {
        let text = "[cli]\nno-cgroups = false # set by admin\n";
        let out = no_cgroups(text).unwrap();
        assert_eq!(out, "[cli]\nno-cgroups = true # set by admin\n");
    }

    #[test]
    fn wrong_type_is_located() {
        let text = "[cli]\n\nno-cgroups = \"yes\"\n";
        let err = no_cgroups(text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`/t.toml` line 3, column 14: `cli.no-cgroups` must be a boolean, found string"
        );
    }
}
