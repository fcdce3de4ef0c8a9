//! An INI parser with the semantics of Python's `configparser.ConfigParser`
//! as Swift and paste.deploy configure it, and its `%(name)s` interpolation.
//!
//! What it reproduces (Python 3.11, `strict=True`, `allow_no_value=False`,
//! `empty_lines_in_values=True`, no inline comments):
//! - lines split on `\n`, `\r\n` and `\r` (Python's universal newlines);
//! - `key = value` or `key: value`, the first delimiter wins, key and value
//!   stripped of Python whitespace; a line without a delimiter is a parse
//!   error (reported after the whole file has been read, as Python does);
//! - full-line `#`/`;` comments only;
//! - a line indented deeper than its key line continues the value; blank
//!   lines inside a value are kept, trailing ones dropped;
//! - `[DEFAULT]` is special: it may appear several times, never duplicates;
//! - within one file a repeated section or option is an error; across files
//!   (a `.conf.d` directory) sections merge and later values win;
//! - text before the first section header is an error; a UTF-8 byte order
//!   mark is not skipped (Python's `open()` keeps it, so Swift refuses it);
//! - keys are case-sensitive ([`KeyCase::Preserve`], Swift's
//!   `optionxform = str`) or lower-cased (plain `ConfigParser`, used for
//!   `swift.conf`); section names are always case-sensitive.
//!
//! Every value remembers its file and line so errors can name them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ConfigError;
use super::pystr::{is_space, repr, rstrip, strip};

/// Python's `configparser.MAX_INTERPOLATION_DEPTH`.
pub const MAX_INTERPOLATION_DEPTH: usize = 10;

/// An interpolated value larger than this is refused: a few nested
/// references can otherwise expand exponentially (Python would just hang).
const MAX_INTERPOLATED_LEN: usize = 1 << 24;

/// The name of the special section whose keys every section inherits.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// How option names are normalized (configparser's `optionxform`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyCase {
    /// `optionxform = str`: what Swift and paste.deploy set.
    Preserve,
    /// Python's default `optionxform` (`str.lower`): plain `ConfigParser()`,
    /// which is how Swift reads `swift.conf`.
    Lower,
}

/// How `%(name)s` references are expanded on [`Ini::get`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    /// Swift's `NicerInterpolation`: a value without `%(` is returned as is
    /// (so `1%` works); otherwise as [`Interpolation::Basic`].
    Nicer,
    /// Python's `BasicInterpolation`: `%%` is `%`, any other lone `%` is an error.
    Basic,
    /// `RawConfigParser`: values are returned as written.
    Raw,
}

/// How the bytes of a file are decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Python's default `open()` in a UTF-8 locale: strict, BOM kept.
    Utf8,
    /// Every byte is one character (Swift reads the hash path settings this way).
    Latin1,
}

/// The parser's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IniOptions {
    pub key_case: KeyCase,
    pub interpolation: Interpolation,
}

impl IniOptions {
    /// `ConfigParser(interpolation=NicerInterpolation())` with `optionxform = str`:
    /// paste.deploy files as Swift reads them, and Swift's `readconf`.
    pub const SWIFT: IniOptions = IniOptions {
        key_case: KeyCase::Preserve,
        interpolation: Interpolation::Nicer,
    };
    /// A plain `ConfigParser()`: lower-cased keys, basic interpolation.
    pub const PYTHON_DEFAULT: IniOptions = IniOptions {
        key_case: KeyCase::Lower,
        interpolation: Interpolation::Basic,
    };
}

impl Default for IniOptions {
    fn default() -> Self {
        IniOptions::SWIFT
    }
}

/// One option's value as written, with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// The value before interpolation (continuation lines joined with `\n`).
    pub raw: String,
    /// The file it was read from (for built-in defaults: the config path).
    pub source: Arc<Path>,
    /// The line of its key; `None` for defaults that were not read from a file.
    pub line: Option<usize>,
}

/// A section: its options in the order Python keeps them.
#[derive(Clone, Debug)]
pub struct Section {
    name: String,
    source: Arc<Path>,
    line: Option<usize>,
    entries: Vec<(String, Value)>,
    index: HashMap<String, usize>,
}

impl Section {
    fn new(name: &str, source: Arc<Path>, line: Option<usize>) -> Self {
        Section {
            name: name.to_owned(),
            source,
            line,
            entries: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// The section name as written between the brackets.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file where the section header first appeared.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The line of the first header of this section.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The value of `key` in this section only (no `[DEFAULT]` fallback).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    /// Whether `key` is set in this section (not counting `[DEFAULT]`).
    pub fn contains_key(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// Keys in file order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// Keys and values in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The number of options.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the section has no options.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Set `key`; an existing key keeps its position (Python dict semantics).
    fn insert(&mut self, key: String, value: Value) {
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }

    fn value_mut(&mut self, key: &str) -> Option<&mut Value> {
        let i = *self.index.get(key)?;
        Some(&mut self.entries[i].1)
    }
}

/// Which section the parser is filling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Defaults,
    Section(usize),
}

/// A parsed configuration: `[DEFAULT]` plus named sections, possibly read
/// from several files into one parser.
#[derive(Clone, Debug)]
pub struct Ini {
    options: IniOptions,
    name: Arc<Path>,
    defaults: Section,
    sections: Vec<Section>,
    index: HashMap<String, usize>,
    files: Vec<PathBuf>,
}

impl Ini {
    /// An empty parser. `name` is what errors about values that come from no
    /// file (built-in defaults) name: the config file or directory.
    pub fn new(options: IniOptions, name: &Path) -> Self {
        let name: Arc<Path> = Arc::from(name);
        Ini {
            options,
            defaults: Section::new(DEFAULT_SECTION, name.clone(), None),
            name,
            sections: Vec::new(),
            index: HashMap::new(),
            files: Vec::new(),
        }
    }

    /// Parse `text` (one file) and merge it in. After an error the parser
    /// holds part of the file and should be dropped.
    pub fn parse(options: IniOptions, text: &str, path: &Path) -> Result<Ini, ConfigError> {
        let mut ini = Ini::new(options, path);
        ini.read_str(text, path)?;
        Ok(ini)
    }

    /// The parser's options.
    pub fn options(&self) -> IniOptions {
        self.options
    }

    /// The config path given to [`Ini::new`].
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// The files read so far, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Apply `optionxform` to a key.
    pub fn optionxform(&self, key: &str) -> String {
        match self.options.key_case {
            KeyCase::Preserve => key.to_owned(),
            KeyCase::Lower => key.to_lowercase(),
        }
    }

    /// Set a `[DEFAULT]` value that was not read from a file (paste's `here`
    /// and `__file__`, or a caller's global overrides). Replaces any value.
    pub fn set_default(&mut self, key: &str, value: &str) {
        let v = Value {
            raw: value.to_owned(),
            source: self.name.clone(),
            line: None,
        };
        self.defaults.insert(key.to_owned(), v);
    }

    /// paste's `update_defaults(..., overwrite=False)`: set the `[DEFAULT]`
    /// value only when the key is not there yet. Returns whether it was set.
    pub fn set_default_if_absent(&mut self, key: &str, value: &str) -> bool {
        if self.defaults.contains_key(key) {
            return false;
        }
        self.set_default(key, value);
        true
    }

    /// Read one file (ConfigParser's `read_file(open(path))`).
    pub fn read_file(&mut self, path: &Path, encoding: Encoding) -> Result<(), ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.read_bytes(&bytes, path, encoding)
    }

    /// Decode `bytes` as `encoding` and parse them as the file `path`.
    pub fn read_bytes(
        &mut self,
        bytes: &[u8],
        path: &Path,
        encoding: Encoding,
    ) -> Result<(), ConfigError> {
        match encoding {
            Encoding::Latin1 => {
                let text: String = bytes.iter().map(|&b| char::from(b)).collect();
                self.read_str(&text, path)
            }
            Encoding::Utf8 => match std::str::from_utf8(bytes) {
                Ok(text) => self.read_str(text, path),
                Err(e) => {
                    let offset = e.valid_up_to();
                    let line = line_of_offset(bytes, offset);
                    let byte = bytes.get(offset).copied().unwrap_or(0);
                    Err(ConfigError::Syntax {
                        path: path.to_path_buf(),
                        line,
                        message: format!(
                            "not valid UTF-8 (byte 0x{byte:02x}); Swift reads config files as UTF-8"
                        ),
                    })
                }
            },
        }
    }

    /// Parse `text` as the content of the file `path` and merge it in
    /// (one call of configparser's `_read`).
    pub fn read_str(&mut self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let source: Arc<Path> = Arc::from(path);
        self.files.push(path.to_path_buf());
        let syntax = |line: usize, message: String| ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            message,
        };

        // Sections and options seen in this file, with their line, for
        // strict duplicate detection (which never spans files).
        let mut sections_added: HashMap<String, usize> = HashMap::new();
        let mut options_added: HashMap<(String, String), usize> = HashMap::new();
        let mut cursect: Option<Target> = None;
        let mut sectname = String::new();
        // `Some("")` is an empty option name: set, but false-y in Python, so
        // nothing continues it.
        let mut optname: Option<String> = None;
        let mut indent_level = 0usize;
        // The lines of the value of `optname` (joined at the end of the file).
        let mut pending: Vec<String> = Vec::new();
        let mut bad_lines: Vec<(usize, String)> = Vec::new();

        for (i, line) in universal_lines(text).enumerate() {
            let lineno = i + 1;
            let stripped = strip(line);
            let is_comment = stripped.starts_with('#') || stripped.starts_with(';');
            let value = if is_comment { "" } else { stripped };
            let continuing = cursect.is_some() && optname.as_deref().is_some_and(|o| !o.is_empty());
            if value.is_empty() {
                // A blank line (not a comment) belongs to the value being read.
                if !is_comment && continuing {
                    pending.push(String::new());
                }
                continue;
            }
            let cur_indent = line.chars().position(|c| !is_space(c)).unwrap_or(0);
            if continuing && cur_indent > indent_level {
                pending.push(value.to_owned());
                continue;
            }
            indent_level = cur_indent;
            if let Some(header) = section_header(value) {
                self.finish_value(cursect, optname.as_deref(), &mut pending);
                if let Some(&idx) = self.index.get(header) {
                    if let Some(&first) = sections_added.get(header) {
                        return Err(syntax(
                            lineno,
                            format!(
                                "section [{header}] already exists (first at line {first}); \
                                 a section may appear only once per file"
                            ),
                        ));
                    }
                    cursect = Some(Target::Section(idx));
                    sections_added.insert(header.to_owned(), lineno);
                } else if header == DEFAULT_SECTION {
                    cursect = Some(Target::Defaults);
                } else {
                    let idx = self.sections.len();
                    self.sections
                        .push(Section::new(header, source.clone(), Some(lineno)));
                    self.index.insert(header.to_owned(), idx);
                    cursect = Some(Target::Section(idx));
                    sections_added.insert(header.to_owned(), lineno);
                }
                header.clone_into(&mut sectname);
                optname = None;
                continue;
            }
            let Some(target) = cursect else {
                let bom = if lineno == 1 && line.starts_with('\u{feff}') {
                    " (the file starts with a UTF-8 byte order mark, which Swift does not skip)"
                } else {
                    ""
                };
                return Err(syntax(
                    lineno,
                    format!(
                        "no [section] header before {}{bom}; every setting must be inside a section",
                        repr(line)
                    ),
                ));
            };
            let Some(delim) = value.find(['=', ':']) else {
                bad_lines.push((lineno, line.to_owned()));
                continue;
            };
            let name = rstrip(&value[..delim]);
            let optval = strip(&value[delim + 1..]);
            if name.is_empty() {
                bad_lines.push((lineno, line.to_owned()));
            }
            let key = self.optionxform(name);
            let dup_key = (sectname.clone(), key.clone());
            if let Some(&first) = options_added.get(&dup_key) {
                return Err(syntax(
                    lineno,
                    format!(
                        "option {} in section [{sectname}] already exists (first at line {first}); \
                         an option may appear only once per section in a file",
                        repr(&key)
                    ),
                ));
            }
            options_added.insert(dup_key, lineno);
            self.finish_value(cursect, optname.as_deref(), &mut pending);
            let v = Value {
                raw: optval.to_owned(),
                source: source.clone(),
                line: Some(lineno),
            };
            self.target_mut(target).insert(key.clone(), v);
            pending.push(optval.to_owned());
            optname = Some(key);
        }
        self.finish_value(cursect, optname.as_deref(), &mut pending);

        if let Some((line, text)) = bad_lines.first() {
            let more = match bad_lines.len() {
                1 => String::new(),
                n => {
                    let others: Vec<String> =
                        bad_lines[1..].iter().map(|(l, _)| l.to_string()).collect();
                    format!(" ({} more such lines: {})", n - 1, others.join(", "))
                }
            };
            return Err(syntax(
                *line,
                format!(
                    "expected \"key = value\", \"key: value\", a [section] header or a comment, \
                     found {}{more}",
                    repr(text)
                ),
            ));
        }
        Ok(())
    }

    fn target_mut(&mut self, target: Target) -> &mut Section {
        match target {
            Target::Defaults => &mut self.defaults,
            Target::Section(i) => &mut self.sections[i],
        }
    }

    /// Store the joined lines of the value just read (Python joins them at
    /// the end of the file: `'\n'.join(lines).rstrip()`).
    fn finish_value(
        &mut self,
        cursect: Option<Target>,
        optname: Option<&str>,
        pending: &mut Vec<String>,
    ) {
        let lines = std::mem::take(pending);
        if lines.len() <= 1 {
            return;
        }
        let (Some(target), Some(key)) = (cursect, optname) else {
            return;
        };
        let joined = rstrip(&lines.join("\n")).to_owned();
        if let Some(v) = self.target_mut(target).value_mut(key) {
            v.raw = joined;
        }
    }

    /// `[DEFAULT]`, with the built-in defaults.
    pub fn defaults(&self) -> &Section {
        &self.defaults
    }

    /// The sections other than `[DEFAULT]`, in the order first seen.
    pub fn sections(&self) -> impl Iterator<Item = &Section> {
        self.sections.iter()
    }

    /// Python's `sections()`: the names, in order.
    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|s| s.name.as_str())
    }

    /// A section by name (`DEFAULT` gives the defaults).
    pub fn section(&self, name: &str) -> Option<&Section> {
        if name == DEFAULT_SECTION {
            return Some(&self.defaults);
        }
        self.index.get(name).map(|&i| &self.sections[i])
    }

    /// Python's `has_section` (false for `DEFAULT`).
    pub fn has_section(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Python's `options(section)`: the section's keys, then the `[DEFAULT]`
    /// keys it does not set. `None` for a missing section.
    pub fn option_names(&self, section: &str) -> Option<Vec<&str>> {
        if section == DEFAULT_SECTION {
            return Some(self.defaults.keys().collect());
        }
        let s = self.section(section)?;
        let mut names: Vec<&str> = s.keys().collect();
        names.extend(self.defaults.keys().filter(|k| !s.contains_key(k)));
        Some(names)
    }

    /// The raw value of `key` in `section`, falling back to `[DEFAULT]`.
    pub fn get_raw(&self, section: &str, key: &str) -> Option<&Value> {
        let key = self.optionxform(key);
        let own = if section == DEFAULT_SECTION {
            None
        } else {
            self.section(section)?.get(&key)
        };
        own.or_else(|| self.defaults.get(&key))
    }

    /// Python's `get(section, key)`: the interpolated value, `None` when the
    /// section (or the key, in it and in `[DEFAULT]`) does not exist.
    pub fn get(&self, section: &str, key: &str) -> Result<Option<String>, ConfigError> {
        match self.get_raw(section, key) {
            None => Ok(None),
            Some(v) => self
                .interpolate(section, &self.optionxform(key), v)
                .map(Some),
        }
    }

    /// Python's `items(section)`: `[DEFAULT]` merged with the section (the
    /// section wins), interpolated; `None` for a missing section.
    pub fn items(&self, section: &str) -> Option<Result<Vec<(String, String)>, ConfigError>> {
        let s = if section == DEFAULT_SECTION {
            None
        } else {
            Some(self.section(section)?)
        };
        let mut keys: Vec<&str> = self.defaults.keys().collect();
        if let Some(s) = s {
            keys.extend(s.keys().filter(|k| !self.defaults.contains_key(k)));
        }
        let result = keys
            .into_iter()
            .map(|k| {
                let v = s.and_then(|s| s.get(k)).or_else(|| self.defaults.get(k));
                match v {
                    Some(v) => Ok((k.to_owned(), self.interpolate(section, k, v)?)),
                    None => Ok((k.to_owned(), String::new())),
                }
            })
            .collect();
        Some(result)
    }

    /// Expand `%(name)s` references in `value`, the value of `key` in
    /// `section`, the way Python's configured interpolation does.
    pub fn interpolate(
        &self,
        section: &str,
        key: &str,
        value: &Value,
    ) -> Result<String, ConfigError> {
        match self.options.interpolation {
            Interpolation::Raw => return Ok(value.raw.clone()),
            Interpolation::Nicer if !value.raw.contains("%(") => return Ok(value.raw.clone()),
            _ => {}
        }
        let own = if section == DEFAULT_SECTION {
            None
        } else {
            self.section(section)
        };
        let mut state = Expansion {
            ini: self,
            own,
            out: String::new(),
            steps: 0,
        };
        state
            .expand(&value.raw, 1)
            .map(|()| state.out)
            .map_err(|message| ConfigError::Interpolation {
                path: value.source.to_path_buf(),
                line: value.line,
                section: section.to_owned(),
                key: key.to_owned(),
                value: value.raw.clone(),
                message,
            })
    }
}

/// One interpolation in progress (BasicInterpolation's `_interpolate_some`).
struct Expansion<'a> {
    ini: &'a Ini,
    own: Option<&'a Section>,
    out: String,
    steps: usize,
}

impl<'a> Expansion<'a> {
    fn lookup(&self, name: &str) -> Option<&'a str> {
        let ini: &'a Ini = self.ini;
        let key = ini.optionxform(name);
        self.own
            .and_then(|s| s.get(&key))
            .or_else(|| ini.defaults.get(&key))
            .map(|v| v.raw.as_str())
    }

    fn expand(&mut self, text: &str, depth: usize) -> Result<(), String> {
        if depth > MAX_INTERPOLATION_DEPTH {
            return Err(format!(
                "interpolation nested more than {MAX_INTERPOLATION_DEPTH} levels deep \
                 (do the references loop?)"
            ));
        }
        let mut rest = text;
        while !rest.is_empty() {
            self.steps += 1;
            if self.out.len() > MAX_INTERPOLATED_LEN || self.steps > MAX_INTERPOLATED_LEN {
                return Err("interpolation expands to more than 16 MiB".to_owned());
            }
            let Some(p) = rest.find('%') else {
                self.out.push_str(rest);
                return Ok(());
            };
            self.out.push_str(&rest[..p]);
            rest = &rest[p..];
            let after = &rest[1..];
            if let Some(tail) = after.strip_prefix('%') {
                self.out.push('%');
                rest = tail;
            } else if let Some(inner) = after.strip_prefix('(') {
                // `%\(([^)]+)\)s`: a non-empty name up to the first `)`, then `s`.
                let name_end = inner.find(')').filter(|&e| e > 0);
                let Some(end) = name_end.filter(|&e| inner[e + 1..].starts_with('s')) else {
                    return Err(format!(
                        "bad interpolation variable reference {}: a reference is %(name)s; \
                         write %% for a literal %",
                        repr(rest)
                    ));
                };
                let name = &inner[..end];
                rest = &inner[end + 2..];
                let Some(v) = self.lookup(name) else {
                    return Err(format!(
                        "%({name})s refers to {}, which is not set in this section, in [DEFAULT] \
                         or in the built-in defaults",
                        repr(name)
                    ));
                };
                if v.contains('%') {
                    self.expand(v, depth + 1)?;
                } else {
                    self.out.push_str(v);
                }
            } else {
                return Err(format!(
                    "'%' must be followed by '%' or '(', found {}; write %% for a literal %",
                    repr(rest)
                ));
            }
        }
        Ok(())
    }
}

/// configparser's `SECTCRE` (`\[(?P<header>.+)\]`, matched at the start of
/// the stripped line, not anchored at its end): the text between the first
/// `[` and the last `]`, which must not be empty.
fn section_header(value: &str) -> Option<&str> {
    let inner = value.strip_prefix('[')?;
    let end = inner.rfind(']')?;
    (end > 0).then(|| &inner[..end])
}

/// Lines as Python's text mode yields them: split on `\n`, `\r\n` and `\r`,
/// without their ending.
fn universal_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let r = rest?;
        if r.is_empty() {
            rest = None;
            return None;
        }
        match r.find(['\n', '\r']) {
            None => {
                rest = None;
                Some(r)
            }
            Some(i) => {
                let skip = if r[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&r[i + skip..]);
                Some(&r[..i])
            }
        }
    })
}

/// The 1-based line (universal newlines) of byte `offset`.
fn line_of_offset(bytes: &[u8], offset: usize) -> usize {
    let head = &bytes[..offset.min(bytes.len())];
    let mut line = 1;
    let mut i = 0;
    while i < head.len() {
        match head[i] {
            b'\n' => line += 1,
            b'\r' => {
                line += 1;
                if head.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Ini, ConfigError> {
        Ini::parse(IniOptions::SWIFT, text, Path::new("/t.conf"))
    }

    fn get(ini: &Ini, s: &str, k: &str) -> Option<String> {
        ini.get(s, k).unwrap()
    }

    #[test]
    fn lines_split_like_python_universal_newlines() {
        let lines: Vec<&str> = universal_lines("a\r\nb\rc\n\nd").collect();
        assert_eq!(lines, ["a", "b", "c", "", "d"]);
        assert_eq!(universal_lines("a\n").count(), 1);
        assert_eq!(universal_lines("").count(), 0);
    }

    #[test]
    fn section_header_takes_text_up_to_the_last_bracket() {
        assert_eq!(section_header("[a] junk"), Some("a"));
        assert_eq!(section_header("[a]b]"), Some("a]b"));
        assert_eq!(section_header("[]"), None);
        assert_eq!(section_header("[]]"), Some("]"));
        assert_eq!(section_header("[ x ]"), Some(" x "));
    }

    #[test]
    fn continuation_keeps_inner_blank_lines_and_drops_trailing_ones() {
        let ini = parse("[s]\nk = a\n\n  b\n\n\nnext = 1\n").unwrap();
        assert_eq!(get(&ini, "s", "k").as_deref(), Some("a\n\nb"));
        assert_eq!(get(&ini, "s", "next").as_deref(), Some("1"));
    }

    #[test]
    fn first_delimiter_wins() {
        let ini = parse("[s]\na:b = c\nd = e:f\n").unwrap();
        assert_eq!(get(&ini, "s", "a").as_deref(), Some("b = c"));
        assert_eq!(get(&ini, "s", "d").as_deref(), Some("e:f"));
    }

    #[test]
    fn nicer_interpolation_leaves_values_without_a_reference_alone() {
        let ini = parse("[s]\nr = 1%\nx = %(r)s\n").unwrap();
        assert_eq!(get(&ini, "s", "r").as_deref(), Some("1%"));
        // A referenced value is expanded further, and `1%` is not valid there.
        assert!(ini.get("s", "x").is_err());
    }

    #[test]
    fn interpolation_depth_is_limited_to_ten() {
        let mut text = String::from("[s]\nv0 = end\n");
        for i in 1..=11 {
            text.push_str(&format!("v{i} = %(v{})s%%\n", i - 1));
        }
        let ini = parse(&text).unwrap();
        // Python: v10 expands (ten levels), v11 raises InterpolationDepthError.
        assert_eq!(get(&ini, "s", "v10").as_deref(), Some("end%%%%%%%%%%"));
        assert!(ini.get("s", "v11").is_err());
    }

    #[test]
    fn exponential_interpolation_is_refused_not_run() {
        let mut text = String::from("[s]\nv0 = xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx%%\n");
        for i in 1..=10 {
            let r = format!("%(v{})s", i - 1);
            text.push_str(&format!("v{i} = {}\n", r.repeat(40)));
        }
        let ini = parse(&text).unwrap();
        assert!(ini.get("s", "v10").is_err());
    }

    #[test]
    fn lowercase_keys_for_plain_configparser() {
        let ini = Ini::parse(
            IniOptions::PYTHON_DEFAULT,
            "[s]\nKey = v\n",
            Path::new("/t.conf"),
        )
        .unwrap();
        assert_eq!(ini.get("s", "KEY").unwrap().as_deref(), Some("v"));
        let dup = Ini::parse(
            IniOptions::PYTHON_DEFAULT,
            "[s]\nKey = v\nkey = w\n",
            Path::new("/t"),
        );
        assert!(dup.is_err());
    }
}
