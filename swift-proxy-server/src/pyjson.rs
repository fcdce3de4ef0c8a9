//! JSON text as Python's `json.dumps` writes it (`ensure_ascii`, floats as
//! Python's repr, keys in the order given or sorted): what clients of Python
//! Swift see in ACL headers and `/info`, and what Python proxies read from
//! the memcache we share, byte for byte.

use serde_json::Value;
use swift_common::config::swift_conf::json_string;
use swift_common::config::values::python_float_repr;

/// `json.dumps(v)` with the default separators (`, ` and `: `), or
/// `separators=(',', ':')` when `compact`; object keys in insertion order,
/// or sorted with `sort_keys`.
pub fn dumps(v: &Value, compact: bool, sort_keys: bool) -> String {
    let mut out = String::new();
    write(&mut out, v, compact, sort_keys);
    out
}

fn write(out: &mut String, v: &Value, compact: bool, sort_keys: bool) {
    let (item_sep, key_sep) = if compact { (",", ":") } else { (", ", ": ") };
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (_, Some(u), _) => out.push_str(&u.to_string()),
            (_, _, Some(f)) => out.push_str(&python_float_repr(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => out.push_str(&json_string(s)),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                write(out, x, compact, sort_keys);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            if sort_keys {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            for (i, (k, x)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                out.push_str(&json_string(k));
                out.push_str(key_sep);
                write(out, x, compact, sort_keys);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_python() {
        let v: Value = serde_json::from_str(r#"{"b": [1, "\u00e9"], "a": null}"#).unwrap();
        assert_eq!(
            dumps(&v, false, false),
            r#"{"b": [1, "\u00e9"], "a": null}"#
        );
        assert_eq!(dumps(&v, true, true), r#"{"a":null,"b":[1,"\u00e9"]}"#);
        let f: Value = serde_json::from_str("[1.0, 1e20, 0.1, 18446744073709551615]").unwrap();
        assert_eq!(
            dumps(&f, false, false),
            "[1.0, 1e+20, 0.1, 18446744073709551615]"
        );
    }
}
