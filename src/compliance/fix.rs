//! Remediation: the findings' remedies applied to the configuration's text, keeping its
//! comments and layout, shown as a unified diff.
//!
//! Written by hand because no YAML crate edits a document in place: `serde_norway` (and
//! every serde format) rewrites the whole file and drops its comments, which an SRE would
//! not accept in a reviewed configuration. The editor understands the block style that
//! configurations are written in (nested mappings, `- ` lists, flow lists); every edit is
//! checked by parsing the result and comparing it with the parsed original changed by the
//! same remedy, so a layout the editor misreads is refused rather than corrupted.

use serde_json::Value;

use super::control::Remedy;

/// What applying remedies did.
#[derive(Debug, Clone, PartialEq)]
pub struct Fixed {
    /// The new text.
    pub text: String,
    /// The remedies applied, in order.
    pub applied: Vec<Remedy>,
    /// Those that could not be applied, and why.
    pub refused: Vec<(Remedy, String)>,
}

/// Applies each remedy (duplicates once) to `text`.
pub fn apply(text: &str, remedies: &[Remedy]) -> Fixed {
    let mut fixed = Fixed {
        text: text.to_string(),
        applied: Vec::new(),
        refused: Vec::new(),
    };
    for remedy in remedies {
        if fixed.applied.contains(remedy) || fixed.refused.iter().any(|(r, _)| r == remedy) {
            continue;
        }
        match apply_one(&fixed.text, remedy) {
            Ok(Some(next)) => {
                fixed.text = next;
                fixed.applied.push(remedy.clone());
            }
            // Already so (an earlier remedy did it).
            Ok(None) => fixed.applied.push(remedy.clone()),
            Err(why) => fixed.refused.push((remedy.clone(), why)),
        }
    }
    fixed
}

/// The unified diff from `old` to `new`, headed with `name` and `name (fixed)`.
pub fn diff(name: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(name, &format!("{name} (fixed)"))
        .to_string()
}

/// One remedy: the new text, `None` when nothing needs to change, or why it cannot be made.
fn apply_one(text: &str, remedy: &Remedy) -> Result<Option<String>, String> {
    let before: Value = parse(text)?;
    let mut expected = before.clone();
    let (path, new_text) = match remedy {
        Remedy::Set { set, value } => {
            let path = split(set)?;
            if get(&before, &path) == Some(value) {
                return Ok(None);
            }
            set_value(&mut expected, &path, value.clone())?;
            (path.clone(), set_in_text(text, &path, value)?)
        }
        Remedy::Add { add, value } => {
            let path = split(add)?;
            let list = get(&before, &path);
            if list
                .and_then(Value::as_array)
                .is_some_and(|items| items.contains(value))
            {
                return Ok(None);
            }
            let mut items = match list {
                None | Some(Value::Null) => vec![],
                Some(Value::Array(items)) => items.clone(),
                Some(_) => return Err(format!("{add} is not a list")),
            };
            items.push(value.clone());
            set_value(&mut expected, &path, Value::Array(items))?;
            (path.clone(), add_in_text(text, &path, value)?)
        }
    };
    let after = parse(&new_text)?;
    if after != expected {
        return Err(format!(
            "editing {} in place would change more than it (an unusual layout); edit it by hand",
            path.join(".")
        ));
    }
    Ok(Some(new_text))
}

fn parse(text: &str) -> Result<Value, String> {
    let yaml: serde_norway::Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    serde_json::to_value(yaml).map_err(|e| e.to_string())
}

fn split(path: &str) -> Result<Vec<String>, String> {
    let parts: Vec<String> = path.split('.').map(str::to_string).collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || p.contains([':', '#', '\n']))
    {
        return Err(format!("{path:?} is not a dotted path of keys"));
    }
    Ok(parts)
}

fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn set_value(v: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let mut at = v;
    for (i, key) in path.iter().enumerate() {
        if at.is_null() {
            *at = Value::Object(Default::default());
        }
        let Some(map) = at.as_object_mut() else {
            return Err(format!("{} is not a mapping", path[..i].join(".")));
        };
        if i + 1 == path.len() {
            map.insert(key.clone(), value);
            return Ok(());
        }
        at = map.entry(key.clone()).or_insert(Value::Null);
    }
    Ok(())
}

/// A value as YAML on one line (flow style: JSON is valid YAML).
fn inline(value: &Value) -> String {
    match value {
        Value::String(s)
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '.'))
                && serde_norway::from_str::<serde_norway::Value>(s)
                    .is_ok_and(|v| v.as_str() == Some(s.as_str())) =>
        {
            s.clone()
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(inline).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

/// A key line of a block mapping.
#[derive(Debug, Clone)]
struct KeyLine {
    /// Line index.
    line: usize,
    /// Column of the key.
    indent: usize,
    /// The keys from the root (`[]` for a list item).
    path: Vec<String>,
    /// The byte offset of the value after `key:` in the line.
    value_at: usize,
    /// The last line of the key's block (its own line when the value is inline).
    end: usize,
}

/// The key lines of a block-style document.
fn key_lines(lines: &[&str]) -> Vec<KeyLine> {
    let mut out: Vec<KeyLine> = Vec::new();
    // (indent, segment, index into out when a key)
    let mut stack: Vec<(usize, String, Option<usize>)> = Vec::new();
    let mut scalar_block: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let mut indent = line.len() - content.len();
        if let Some(block_indent) = scalar_block {
            if indent > block_indent {
                close_to(&mut out, &stack, i);
                continue;
            }
            scalar_block = None;
        }
        if content == "---" || content.starts_with("--- ") {
            stack.clear();
            continue;
        }
        while stack.last().is_some_and(|(ind, _, _)| *ind >= indent) {
            stack.pop();
        }
        close_to(&mut out, &stack, i);
        let mut rest = content;
        // `- key: value` opens a list item whose mapping starts at the item's content.
        while let Some(after) = rest
            .strip_prefix("- ")
            .or_else(|| (rest == "-").then_some(""))
        {
            stack.push((indent, "[]".into(), None));
            let trimmed = after.trim_start();
            indent += rest.len() - trimmed.len();
            rest = trimmed;
        }
        let Some((key, value)) = split_key(rest) else {
            continue;
        };
        let mut path: Vec<String> = stack.iter().map(|(_, s, _)| s.clone()).collect();
        path.push(key.to_string());
        let value_at = line.len() - value.len();
        let v = value.trim();
        if v.starts_with('|') || v.starts_with('>') {
            scalar_block = Some(indent);
        }
        out.push(KeyLine {
            line: i,
            indent,
            path,
            value_at,
            end: i,
        });
        stack.push((indent, key.to_string(), Some(out.len() - 1)));
    }
    out
}

/// Extends the blocks of every key on the stack to line `i`.
fn close_to(out: &mut [KeyLine], stack: &[(usize, String, Option<usize>)], i: usize) {
    for (_, _, k) in stack {
        if let Some(k) = k {
            out[*k].end = i;
        }
    }
}

/// `key: value` → (key, the text after the colon); plain keys only.
fn split_key(content: &str) -> Option<(&str, &str)> {
    let colon = content.find(':')?;
    let key = &content[..colon];
    let after = &content[colon + 1..];
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    (plain && (after.is_empty() || after.starts_with([' ', '\t']))).then_some((key, after))
}

/// The value part of a line without its trailing comment.
fn value_and_comment(text: &str) -> (&str, &str) {
    // A ` #` outside quotes starts a comment.
    let mut quote: Option<char> = None;
    let bytes: Vec<char> = text.chars().collect();
    let mut offset = 0;
    for (i, c) in bytes.iter().enumerate() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(*c),
            (Some(q), c) if *c == q => quote = None,
            (None, '#') if i == 0 || bytes[i - 1].is_whitespace() => {
                return (&text[..offset], &text[offset..]);
            }
            _ => {}
        }
        offset += c.len_utf8();
    }
    (text, "")
}

fn set_in_text(text: &str, path: &[String], value: &Value) -> Result<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let keys = key_lines(&lines);
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    if let Some(k) = keys.iter().find(|k| k.path == path) {
        let line = lines[k.line];
        let (v, comment) = value_and_comment(&line[k.value_at..]);
        if v.trim().is_empty() && k.end > k.line {
            return Err(format!("{} holds a block; edit it by hand", path.join(".")));
        }
        out[k.line] = format!(
            "{}{}",
            &line[..k.value_at],
            keep_comment_column(v, &inline(value), comment)
        );
        return Ok(join_lines(out, text));
    }
    // Insert the missing keys below the deepest ancestor present.
    let (depth, parent) = (0..path.len())
        .rev()
        .find_map(|d| {
            keys.iter()
                .find(|k| k.path == path[..d])
                .map(|k| (d, Some(k)))
        })
        .unwrap_or((0, None));
    let (at, indent) = match parent {
        Some(p) => {
            let line = lines[p.line];
            if !value_and_comment(&line[p.value_at..]).0.trim().is_empty() {
                return Err(format!(
                    "{} is written inline; edit it by hand",
                    path[..depth].join(".")
                ));
            }
            let child = keys
                .iter()
                .find(|k| k.line > p.line && k.line <= p.end && k.path.len() == depth + 1)
                .map(|k| k.indent)
                .unwrap_or(p.indent + 2);
            (p.end + 1, child)
        }
        None => (last_content_line(&lines) + 1, 0),
    };
    let mut new_lines = Vec::new();
    for (i, key) in path[depth..].iter().enumerate() {
        let pad = " ".repeat(indent + 2 * i);
        if depth + i + 1 == path.len() {
            new_lines.push(format!("{pad}{key}: {}", inline(value)));
        } else {
            new_lines.push(format!("{pad}{key}:"));
        }
    }
    out.splice(at..at, new_lines);
    Ok(join_lines(out, text))
}

fn add_in_text(text: &str, path: &[String], item: &Value) -> Result<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let keys = key_lines(&lines);
    let Some(k) = keys.iter().find(|k| k.path == path) else {
        return set_in_text(text, path, &Value::Array(vec![item.clone()]));
    };
    let line = lines[k.line];
    let (v, comment) = value_and_comment(&line[k.value_at..]);
    let v = v.trim();
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    if let Some(inner) = v.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        let inner = inner.trim();
        let list = if inner.is_empty() {
            format!("[{}]", inline(item))
        } else {
            format!("[{inner}, {}]", inline(item))
        };
        let old = value_and_comment(&line[k.value_at..]).0;
        out[k.line] = format!(
            "{}{}",
            &line[..k.value_at],
            keep_comment_column(old, &list, comment)
        );
        return Ok(join_lines(out, text));
    }
    if v.is_empty() || v == "~" || v == "null" {
        // A block list below (or nothing yet): add `- item` after its last item.
        let items: Vec<usize> = (k.line + 1..=k.end)
            .filter(|&i| lines[i].trim_start().starts_with('-'))
            .collect();
        match items.last() {
            Some(&last) => {
                let pad = &lines[last][..lines[last].len() - lines[last].trim_start().len()];
                out.insert(k.end + 1, format!("{pad}- {}", inline(item)));
            }
            None if k.end == k.line => {
                out[k.line] = format!("{} [{}]", &line[..k.value_at].trim_end(), inline(item));
            }
            None => return Err(format!("{} holds a mapping, not a list", path.join("."))),
        }
        return Ok(join_lines(out, text));
    }
    Err(format!("{} is not a list", path.join(".")))
}

/// ` new` followed by the comment where it was (or one space after, when `new` is longer).
fn keep_comment_column(old: &str, new: &str, comment: &str) -> String {
    if comment.is_empty() {
        return format!(" {new}");
    }
    let width = old.chars().count().max(new.chars().count() + 2);
    format!("{:<width$}{comment}", format!(" {new}"))
}

fn last_content_line(lines: &[&str]) -> usize {
    lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .unwrap_or(0)
}

fn join_lines(lines: Vec<String>, original: &str) -> String {
    let mut text = lines.join("\n");
    if original.ends_with('\n') || original.is_empty() {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CONFIG: &str = "# the demo\nlisten:\n  https: 0.0.0.0:6443   # API\ninsecureHttp: true   # trials only\nworkloads:\n  - workload: api\n    namespace: shop\ncompliance:\n  labels:\n    hash: [user_id]   # pseudonymised\n  retention:\n    days: 400\n    maxDays: 30\n";

    fn set(path: &str, value: Value) -> Remedy {
        Remedy::Set {
            set: path.into(),
            value,
        }
    }

    fn add(path: &str, value: Value) -> Remedy {
        Remedy::Add {
            add: path.into(),
            value,
        }
    }

    #[test]
    fn scalars_are_set_in_place_keeping_comments() {
        let fixed = apply(
            CONFIG,
            &[
                set("insecureHttp", json!(false)),
                set("compliance.retention.days", json!(30)),
            ],
        );
        assert!(fixed.refused.is_empty(), "{:?}", fixed.refused);
        assert!(
            fixed.text.contains("insecureHttp: false  # trials only\n"),
            "{}",
            fixed.text
        );
        assert!(fixed.text.contains("    days: 30\n"));
        assert!(fixed.text.starts_with("# the demo\n"));
    }

    #[test]
    fn lists_grow_in_flow_and_block_style_and_missing_ones_are_created() {
        let fixed = apply(
            CONFIG,
            &[
                add("compliance.labels.hash", json!("client_ip")),
                add("compliance.labels.drop", json!("card")),
                add("compliance.labels.drop", json!("card")),
                set("compliance.auditRetentionDays", json!(2555)),
                set("audit.enabled", json!(true)),
            ],
        );
        assert!(fixed.refused.is_empty(), "{:?}", fixed.refused);
        let doc = parse(&fixed.text).unwrap();
        assert_eq!(
            doc["compliance"]["labels"]["hash"],
            json!(["user_id", "client_ip"])
        );
        assert_eq!(doc["compliance"]["labels"]["drop"], json!(["card"]));
        assert_eq!(doc["compliance"]["auditRetentionDays"], json!(2555));
        assert_eq!(doc["audit"]["enabled"], json!(true));
        assert!(fixed.text.contains("# pseudonymised"));
        let block = "compliance:\n  labels:\n    drop:\n      - email\n";
        let fixed = apply(block, &[add("compliance.labels.drop", json!("ssn"))]);
        assert_eq!(
            fixed.text,
            "compliance:\n  labels:\n    drop:\n      - email\n      - ssn\n"
        );
    }

    #[test]
    fn an_edit_the_editor_cannot_make_safely_is_refused_not_guessed() {
        let inline = "compliance: {retention: {days: 400}}\n";
        let fixed = apply(inline, &[set("compliance.retention.days", json!(30))]);
        assert_eq!(fixed.text, inline);
        assert_eq!(fixed.refused.len(), 1);
        let block = "compliance:\n  labels:\n    drop:\n      x: 1\n";
        let fixed = apply(block, &[add("compliance.labels.drop", json!("ssn"))]);
        assert_eq!(fixed.refused.len(), 1, "{}", fixed.text);
    }

    #[test]
    fn keys_inside_list_items_are_not_mistaken_for_top_level_ones() {
        let text = "workloads:\n  - workload: api\n    insecureHttp: x\n";
        let fixed = apply(text, &[set("insecureHttp", json!(false))]);
        assert!(fixed.refused.is_empty());
        assert!(
            fixed.text.ends_with("\ninsecureHttp: false\n"),
            "{}",
            fixed.text
        );
        let d = diff("c.yaml", text, &fixed.text);
        assert!(d.contains("+insecureHttp: false"), "{d}");
    }
}
