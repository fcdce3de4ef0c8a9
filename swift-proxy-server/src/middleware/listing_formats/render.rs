//! A JSON listing in the client's format, as Swift's `listing_to_text`,
//! `account_to_xml` and `container_to_xml` write it: the same elements and
//! fields, ElementTree's escaping and empty-element form (`<hash />`), the
//! declaration Swift prepends, and the same failures: a record missing a
//! field is a `KeyError` (Swift then passes the JSON through), a value
//! ElementTree or `str.encode` cannot handle raises (a 500).

use super::pyjson::{Dict, PyStr, Value};

/// Why a listing could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvertError {
    /// A record lacks a field: Swift sends the JSON body unchanged.
    KeyError(&'static str),
    /// Python raised something else: nothing catches it before catch_errors.
    Raised(String),
}

const DECLARATION: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// `listing_to_text`: each record's `name` (else its `subdir`), one a line.
pub fn listing_to_text(listing: &[Dict]) -> Result<Vec<u8>, ConvertError> {
    let mut out = Vec::new();
    for item in listing {
        let value = match item.get("name") {
            Some(v) => v,
            None => item.get("subdir").ok_or(ConvertError::KeyError("subdir"))?,
        };
        let Value::Str(s) = value else {
            return Err(ConvertError::Raised(format!(
                "'{}' object has no attribute 'encode'",
                value.type_name()
            )));
        };
        let text = s.as_str().ok_or_else(|| {
            ConvertError::Raised("'utf-8' codec can't encode: surrogates not allowed".into())
        })?;
        out.extend_from_slice(text.as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

/// A child of the document, built before anything is written (where Swift
/// raises its `KeyError`s).
enum Record<'a> {
    Subdir(&'a Value),
    /// Tag and `(field, str(value))` pairs.
    Entry(&'static str, Vec<(&'static str, PyStr)>),
}

fn fields<'a>(
    record: &'a Dict,
    tag: &'static str,
    required: &[&'static str],
    optional: &[&'static str],
) -> Result<Record<'a>, ConvertError> {
    let mut out = Vec::with_capacity(required.len() + optional.len());
    for &f in required {
        let v = record.get(f).ok_or(ConvertError::KeyError(f))?;
        out.push((f, v.py_str()));
    }
    for &f in optional {
        if let Some(v) = record.get(f) {
            out.push((f, v.py_str()));
        }
    }
    Ok(Record::Entry(tag, out))
}

/// `account_to_xml(listing, account_name)`.
pub fn account_to_xml(listing: &[Dict], account: &str) -> Result<Vec<u8>, ConvertError> {
    let records = listing
        .iter()
        .map(|r| match r.get("subdir") {
            Some(v) => Ok(Record::Subdir(v)),
            None => fields(
                r,
                "container",
                &["name", "count", "bytes", "last_modified"],
                &["storage_policy"],
            ),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut x = Xml::new();
    x.raw(b"<account name=\"");
    x.attr_str(&PyStr::from(account));
    // doc.text = '\n', and each child's tail is '\n'.
    x.raw(b"\">\n");
    for r in &records {
        match r {
            Record::Subdir(v) => {
                x.raw(b"<subdir name=\"");
                x.attr(v)?;
                x.raw(b"\" />");
            }
            Record::Entry(tag, fields) => x.entry(tag, fields),
        }
        x.raw(b"\n");
    }
    x.raw(b"</account>");
    Ok(x.out)
}

/// `container_to_xml(listing, base_name)`.
pub fn container_to_xml(listing: &[Dict], container: &str) -> Result<Vec<u8>, ConvertError> {
    let records = listing
        .iter()
        .map(|r| match r.get("subdir") {
            Some(v) => Ok(Record::Subdir(v)),
            None => fields(
                r,
                "object",
                &["name", "hash", "bytes", "content_type", "last_modified"],
                &[],
            ),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut x = Xml::new();
    x.raw(b"<container name=\"");
    x.attr_str(&PyStr::from(container));
    if records.is_empty() {
        x.raw(b"\" />");
        return Ok(x.out);
    }
    x.raw(b"\">");
    for r in &records {
        match r {
            Record::Subdir(v) => {
                x.raw(b"<subdir name=\"");
                x.attr(v)?;
                x.raw(b"\">");
                // SubElement(sub, 'name').text = name
                if v.truthy() {
                    let Value::Str(s) = v else {
                        return Err(cannot_serialize(v));
                    };
                    x.raw(b"<name>");
                    x.cdata(s);
                    x.raw(b"</name>");
                } else {
                    x.raw(b"<name />");
                }
                x.raw(b"</subdir>");
            }
            Record::Entry(tag, fields) => x.entry(tag, fields),
        }
    }
    x.raw(b"</container>");
    Ok(x.out)
}

fn cannot_serialize(v: &Value) -> ConvertError {
    ConvertError::Raised(format!(
        "cannot serialize {} (type {})",
        v.repr(),
        v.type_name()
    ))
}

/// ElementTree's writer, encoding to UTF-8 with `xmlcharrefreplace`.
struct Xml {
    out: Vec<u8>,
}

impl Xml {
    fn new() -> Xml {
        Xml {
            out: DECLARATION.to_vec(),
        }
    }

    fn raw(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }

    /// Text as written, a lone surrogate as a character reference.
    fn write(&mut self, s: &PyStr, escape: impl Fn(u32) -> Option<&'static str>) {
        for cp in s.code_points() {
            if let Some(e) = escape(cp) {
                self.raw(e.as_bytes());
            } else if (0xd800..0xe000).contains(&cp) {
                self.raw(format!("&#{cp};").as_bytes());
            } else if let Some(c) = char::from_u32(cp) {
                let mut buf = [0u8; 4];
                self.raw(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }

    /// `_escape_cdata`.
    fn cdata(&mut self, s: &PyStr) {
        self.write(s, |cp| match cp {
            0x26 => Some("&amp;"),
            0x3c => Some("&lt;"),
            0x3e => Some("&gt;"),
            _ => None,
        });
    }

    /// `_escape_attrib` of a string.
    fn attr_str(&mut self, s: &PyStr) {
        self.write(s, |cp| match cp {
            0x26 => Some("&amp;"),
            0x3c => Some("&lt;"),
            0x3e => Some("&gt;"),
            0x22 => Some("&quot;"),
            0x0d => Some("&#13;"),
            0x0a => Some("&#10;"),
            0x09 => Some("&#09;"),
            _ => None,
        });
    }

    /// An attribute value of any type, as ElementTree writes it:
    /// `_escape_attrib` tests `"&" in v` and so on, then calls
    /// `v.replace`. A list or dict holding none of those strings comes back
    /// unchanged and is written as `str(v)`, unescaped; one holding one has
    /// no `replace`; other types fail the `in`.
    fn attr(&mut self, v: &Value) -> Result<(), ConvertError> {
        match v {
            Value::Str(s) => {
                self.attr_str(s);
                Ok(())
            }
            Value::List(_) | Value::Dict(_) => {
                for special in ["&", "<", ">", "\"", "\r", "\n", "\t"] {
                    if v.contains(special).unwrap_or(true) {
                        return Err(cannot_serialize(v));
                    }
                }
                self.write(&v.py_str(), |_| None);
                Ok(())
            }
            other => Err(cannot_serialize(other)),
        }
    }

    /// `<tag><field>text</field>...</tag>`, an empty text as `<field />`.
    fn entry(&mut self, tag: &str, fields: &[(&'static str, PyStr)]) {
        self.raw(format!("<{tag}>").as_bytes());
        for (f, text) in fields {
            if text.is_empty() {
                self.raw(format!("<{f} />").as_bytes());
            } else {
                self.raw(format!("<{f}>").as_bytes());
                self.cdata(text);
                self.raw(format!("</{f}>").as_bytes());
            }
        }
        self.raw(format!("</{tag}>").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::super::pyjson::loads;
    use super::*;

    fn dicts(json: &str) -> Vec<Dict> {
        match loads(json.as_bytes()).unwrap() {
            Value::List(l) => l
                .into_iter()
                .map(|v| match v {
                    Value::Dict(d) => d,
                    _ => panic!("not a dict"),
                })
                .collect(),
            _ => panic!("not a list"),
        }
    }

    fn s(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn container_xml_as_elementtree_writes_it() {
        let l = dicts(
            r#"[{"subdir": "d/"}, {"name": "a&<>\"'", "hash": "h", "bytes": 3,
                "content_type": "", "last_modified": "2024", "extra": 1}]"#,
        );
        assert_eq!(
            s(container_to_xml(&l, "c\"&").unwrap()),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<container name=\"c&quot;&amp;\">\
             <subdir name=\"d/\"><name>d/</name></subdir><object><name>a&amp;&lt;&gt;\"'</name>\
             <hash>h</hash><bytes>3</bytes><content_type /><last_modified>2024</last_modified>\
             </object></container>"
        );
        assert_eq!(
            s(container_to_xml(&[], "c").unwrap()),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<container name=\"c\" />"
        );
    }

    #[test]
    fn account_xml_as_elementtree_writes_it() {
        let l = dicts(
            r#"[{"subdir": "x\ty"}, {"name": "c", "count": 1, "bytes": 2.5,
                "last_modified": null, "storage_policy": "gold"}]"#,
        );
        assert_eq!(
            s(account_to_xml(&l, "AUTH_a").unwrap()),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<account name=\"AUTH_a\">\n\
             <subdir name=\"x&#09;y\" />\n<container><name>c</name><count>1</count>\
             <bytes>2.5</bytes><last_modified>None</last_modified>\
             <storage_policy>gold</storage_policy></container>\n</account>"
        );
    }

    #[test]
    fn missing_fields_and_unserialisable_values() {
        let missing = dicts(r#"[{"subdir": 5}, {"name": "o"}]"#);
        // The KeyError comes first: the tree is built before it is written.
        assert_eq!(
            container_to_xml(&missing, "c"),
            Err(ConvertError::KeyError("hash"))
        );
        let bad = dicts(r#"[{"subdir": 5}]"#);
        assert!(matches!(
            container_to_xml(&bad, "c"),
            Err(ConvertError::Raised(_))
        ));
        let list = dicts(r#"[{"subdir": ["a"]}]"#);
        assert_eq!(
            s(account_to_xml(&list, "a").unwrap()),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<account name=\"a\">\n\
             <subdir name=\"['a']\" />\n</account>"
        );
        let empty = dicts(r#"[{"subdir": []}]"#);
        assert!(
            s(container_to_xml(&empty, "c").unwrap())
                .contains("<subdir name=\"[]\"><name /></subdir>")
        );
        let surrogate = dicts(r#"[{"subdir": "\ud800"}]"#);
        assert!(s(account_to_xml(&surrogate, "a").unwrap()).contains("name=\"&#55296;\""));
        assert!(matches!(
            listing_to_text(&surrogate),
            Err(ConvertError::Raised(_))
        ));
        assert_eq!(
            listing_to_text(&dicts(r#"[{"name": "a"}, {"x": 1}]"#)),
            Err(ConvertError::KeyError("subdir"))
        );
        assert!(matches!(
            listing_to_text(&dicts(r#"[{"name": 1}, {"x": 1}]"#)),
            Err(ConvertError::Raised(_))
        ));
    }
}
