//! paste.deploy on top of [`super::ini`], as Swift drives it: which sections
//! a name resolves to, and the `conf` dict each app or filter receives.
//!
//! Reproduced from paste.deploy's `ConfigLoader` with Swift's patches
//! (`NamedConfigLoader`, `ConfigDirLoader`):
//! - a path is a file (`here` = its directory, `__file__` = the file) or a
//!   `.conf.d` directory (every `*.conf` not starting with `.`, sorted, read
//!   into one parser; `here` = `__file__` = the directory; files that cannot
//!   be opened are skipped, as Python's `read()` does);
//! - `[DEFAULT]` beats a plain key of the same name in a section; `set k = v`
//!   beats `[DEFAULT]` and the caller's globals; `get k = g` copies a global;
//!   the caller's globals beat `[DEFAULT]` (and so also hide section keys);
//! - `use = egg:DIST#ENTRY` (or the name of another section of the same type)
//!   merges the used context; the result also has `here`, `__file__` and
//!   `__name__` (the name that was looked up);
//! - `[pipeline:NAME] pipeline = f1 f2 app`.
//!
//! Loading Python objects is the caller's business: a component is reported
//! as its `dist`/`entry_point`. What needs Python (`config:` and `call:`
//! URIs, `paste.app_factory = module:func`, `filter-with`, `[filter-app:]`,
//! `[composite:]`) is refused with an error that says so.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ini::{DEFAULT_SECTION, Encoding, Ini, IniOptions, Section, Value};
use super::pystr::{abspath, dirname, repr, split_whitespace, strip};
use super::{Conf, ConfigError};

/// How deep `use = other-section` chains may go (Python would hit its
/// recursion limit on a loop).
const MAX_USE_DEPTH: usize = 64;

/// A loaded paste.deploy config: one file, or a `.conf.d` directory.
#[derive(Clone, Debug)]
pub struct PasteConfig {
    path: PathBuf,
    is_dir: bool,
    ini: Ini,
    skipped: Vec<PathBuf>,
}

/// One element of a pipeline: a filter or the final app.
#[derive(Clone, Debug)]
pub struct Component {
    /// The name as written in the pipeline (`healthcheck` for `[filter:healthcheck]`).
    pub name: String,
    /// The egg distribution (`swift` for `egg:swift#proxy`).
    pub dist: String,
    /// The entry point (`proxy` for `egg:swift#proxy`; `main` when there is no `#`).
    pub entry_point: String,
    /// The section's resolved conf.
    pub conf: Conf,
}

/// `[pipeline:main]` resolved: filters outermost first, then the app.
#[derive(Clone, Debug)]
pub struct Pipeline {
    pub filters: Vec<Component>,
    pub app: Component,
    /// The `global_conf` paste hands every component of this pipeline
    /// (`[DEFAULT]`, `here`, `__file__`, the caller's globals, `set` lines of
    /// the pipeline section). Swift builds the filters it inserts itself
    /// (`catch_errors`, `gatekeeper`, ...) from exactly this.
    pub global_conf: Conf,
}

/// paste's object types, which decide the section prefixes searched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ObjectType {
    App,
    Filter,
}

impl ObjectType {
    /// `config_prefixes`: within a group the first prefix that matches wins.
    fn prefixes(self) -> &'static [&'static [&'static str]] {
        match self {
            ObjectType::App => &[
                &["app", "application"],
                &["composite", "composit"],
                &["pipeline"],
                &["filter-app"],
            ],
            ObjectType::Filter => &[&["filter"]],
        }
    }

    /// `egg_protocols`: the explicit factory keys paste accepts.
    fn protocols(self) -> &'static [&'static [&'static str]] {
        match self {
            ObjectType::App => &[
                &["paste.app_factory"],
                &["paste.composite_factory"],
                &["paste.composit_factory"],
            ],
            ObjectType::Filter => &[&["paste.filter_factory", "paste.filter_app_factory"]],
        }
    }

    /// How paste lists the prefixes in its messages.
    fn prefix_description(self) -> String {
        let all: Vec<String> = self
            .prefixes()
            .iter()
            .flat_map(|g| g.iter())
            .map(|p| repr(p))
            .collect();
        all.join(" or ")
    }
}

/// What a resolved context is.
#[derive(Clone, Debug)]
enum Kind {
    Egg { dist: String, entry: String },
    Pipeline { filters: Vec<Ctx>, app: Box<Ctx> },
}

/// A value of one of paste's dicts, with the file and line it was written
/// at (none for `here`, `__file__`, `__name__` and the caller's globals), so
/// that a bad value can be reported where it is.
#[derive(Clone, Debug)]
struct Entry {
    value: String,
    origin: Option<(PathBuf, usize)>,
}

impl Entry {
    fn computed(value: impl Into<String>) -> Self {
        Entry {
            value: value.into(),
            origin: None,
        }
    }

    /// `value` (already interpolated) as read from `raw`.
    fn read(value: String, raw: &Value) -> Self {
        Entry {
            value,
            origin: raw.line.map(|l| (raw.source.to_path_buf(), l)),
        }
    }
}

/// A paste dict (`global_conf` or `local_conf`).
type Dict = BTreeMap<String, Entry>;

/// A [`Conf`] from a paste dict.
fn to_conf(source: &Path, section: &str, dict: &Dict) -> Conf {
    let values = dict
        .iter()
        .map(|(k, e)| (k.clone(), e.value.clone()))
        .collect();
    let origins = dict
        .iter()
        .filter_map(|(k, e)| e.origin.clone().map(|o| (k.clone(), o)))
        .collect();
    Conf::new(source, section, values).with_origins(origins)
}

/// paste's `LoaderContext`, reduced to what Swift needs.
#[derive(Clone, Debug)]
struct Ctx {
    /// The full section name (or the URI, for a bare `egg:` pipeline element).
    section: String,
    global: Dict,
    local: Dict,
    kind: Kind,
}

impl Ctx {
    /// `LoaderContext.config()`: the globals updated with the locals.
    fn config(&self) -> Dict {
        let mut conf = self.global.clone();
        conf.extend(self.local.iter().map(|(k, v)| (k.clone(), v.clone())));
        conf
    }
}

impl PasteConfig {
    /// Read a file or a `.conf.d` directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let abs = abspath(path);
        if abs.is_dir() {
            Self::load_dir(&abs)
        } else {
            let bytes = std::fs::read(&abs).map_err(|source| ConfigError::Read {
                path: abs.clone(),
                source,
            })?;
            Self::from_bytes(&bytes, &abs)
        }
    }

    /// Parse `text` as if it were the file at `path` (which need not exist):
    /// `here` and `__file__` are derived from `path` as for a real file.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        Self::from_bytes(text.as_bytes(), path)
    }

    /// Parse the bytes of a config file that lives at `path`.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, ConfigError> {
        let abs = abspath(path);
        let mut ini = Ini::new(IniOptions::SWIFT, &abs);
        ini.set_default("here", &dirname(&abs).to_string_lossy());
        ini.set_default("__file__", &abs.to_string_lossy());
        ini.read_bytes(bytes, &abs, Encoding::Utf8)?;
        Ok(PasteConfig {
            path: abs,
            is_dir: false,
            ini,
            skipped: Vec::new(),
        })
    }

    /// Swift's `ConfigDirLoader`.
    fn load_dir(dir: &Path) -> Result<Self, ConfigError> {
        let read_err = |source| ConfigError::Read {
            path: dir.to_path_buf(),
            source,
        };
        let mut names: Vec<std::ffi::OsString> = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_err)? {
            let name = entry.map_err(read_err)?.file_name();
            let bytes = std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str());
            if bytes.ends_with(b".conf") && !bytes.starts_with(b".") {
                names.push(name);
            }
        }
        names.sort();
        let mut ini = Ini::new(IniOptions::SWIFT, dir);
        let shown = dir.to_string_lossy();
        ini.set_default("here", &shown);
        ini.set_default("__file__", &shown);
        let mut skipped = Vec::new();
        for name in names {
            let file = dir.join(name);
            // Python's `ConfigParser.read` skips what it cannot open.
            match std::fs::read(&file) {
                Ok(bytes) => ini.read_bytes(&bytes, &file, Encoding::Utf8)?,
                Err(_) => skipped.push(file),
            }
        }
        Ok(PasteConfig {
            path: dir.to_path_buf(),
            is_dir: true,
            ini,
            skipped,
        })
    }

    /// The path given to [`PasteConfig::load`], made absolute.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this config is a `.conf.d` directory.
    pub fn is_dir(&self) -> bool {
        self.is_dir
    }

    /// The files that were read, in order.
    pub fn files(&self) -> &[PathBuf] {
        self.ini.files()
    }

    /// `*.conf` entries of a `.conf.d` directory that could not be opened
    /// (unreadable, or directories): Swift ignores them silently; a caller
    /// may want to warn.
    pub fn skipped_files(&self) -> &[PathBuf] {
        &self.skipped
    }

    /// The parsed INI underneath (with `here` and `__file__` in `[DEFAULT]`).
    pub fn ini(&self) -> &Ini {
        &self.ini
    }

    /// paste's `appconfig(path, name=name, global_conf=global_overrides)`.
    pub fn app_config(
        &self,
        name: &str,
        global_overrides: &[(&str, &str)],
    ) -> Result<Conf, ConfigError> {
        let resolver = Resolver::new(self, global_overrides);
        let ctx = resolver.context(ObjectType::App, name, resolver.top_globals(), 0)?;
        Ok(to_conf(&self.path, &ctx.section, &ctx.config()))
    }

    /// paste's `loadapp(path, name=name, global_conf=global_overrides)`,
    /// resolved to components instead of objects.
    pub fn pipeline(
        &self,
        name: &str,
        global_overrides: &[(&str, &str)],
    ) -> Result<Pipeline, ConfigError> {
        let resolver = Resolver::new(self, global_overrides);
        let ctx = resolver.context(ObjectType::App, name, resolver.top_globals(), 0)?;
        let global_conf = to_conf(&self.path, &ctx.section, &ctx.global);
        match ctx.kind {
            Kind::Pipeline { filters, app } => {
                let filters = filters
                    .into_iter()
                    .map(|f| self.component(f))
                    .collect::<Result<Vec<_>, _>>()?;
                let app = self.component(*app)?;
                Ok(Pipeline {
                    filters,
                    app,
                    global_conf,
                })
            }
            Kind::Egg { .. } => {
                let app = self.component(ctx)?;
                Ok(Pipeline {
                    filters: Vec::new(),
                    app,
                    global_conf,
                })
            }
        }
    }

    fn component(&self, ctx: Ctx) -> Result<Component, ConfigError> {
        let conf = to_conf(&self.path, &ctx.section, &ctx.config());
        let name = ctx
            .local
            .get("__name__")
            .map(|e| e.value.clone())
            .unwrap_or_default();
        match ctx.kind {
            Kind::Egg { dist, entry } => Ok(Component {
                name,
                dist,
                entry_point: entry,
                conf,
            }),
            Kind::Pipeline { .. } => Err(ConfigError::Paste {
                path: self.path.clone(),
                message: format!(
                    "[{}] in {}: a pipeline used as an element of another pipeline \
                     is not supported; list its elements in the outer pipeline",
                    ctx.section,
                    self.path.display()
                ),
            }),
        }
    }
}

/// One resolution (one `appconfig`/`loadapp` call): the parser with the
/// caller's globals merged into `[DEFAULT]`, and paste's interpolated defaults.
struct Resolver<'a> {
    config: &'a PasteConfig,
    ini: Cow<'a, Ini>,
    overrides: Dict,
    /// `parser.defaults()`, computed when a section is first resolved (paste
    /// looks the section up first, so a missing section is reported before
    /// a broken `[DEFAULT]` value).
    defaults: OnceCell<Dict>,
}

impl<'a> Resolver<'a> {
    fn new(config: &'a PasteConfig, overrides: &[(&str, &str)]) -> Self {
        let ini = if overrides.is_empty() {
            Cow::Borrowed(&config.ini)
        } else {
            // paste's `update_defaults(global_conf, overwrite=False)`.
            let mut ini = config.ini.clone();
            for (k, v) in overrides {
                ini.set_default_if_absent(k, v);
            }
            Cow::Owned(ini)
        };
        let overrides = overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Entry::computed(*v)))
            .collect();
        Resolver {
            config,
            ini,
            overrides,
            defaults: OnceCell::new(),
        }
    }

    /// `parser.defaults()`: every `[DEFAULT]` value interpolated, where an
    /// empty result falls back to the raw value (paste's `get(...) or val`).
    fn defaults(&self) -> Result<&Dict, ConfigError> {
        if let Some(d) = self.defaults.get() {
            return Ok(d);
        }
        let mut defaults = BTreeMap::new();
        for (key, value) in self.ini.defaults().iter() {
            let expanded = self.ini.interpolate(DEFAULT_SECTION, key, value)?;
            let v = if expanded.is_empty() {
                value.raw.clone()
            } else {
                expanded
            };
            defaults.insert(key.to_owned(), Entry::read(v, value));
        }
        Ok(self.defaults.get_or_init(|| defaults))
    }

    /// The `global_conf` of the outermost lookup (`None` when the caller gave none).
    fn top_globals(&self) -> Option<&Dict> {
        (!self.overrides.is_empty()).then_some(&self.overrides)
    }

    fn paste_error(&self, message: String) -> ConfigError {
        ConfigError::Paste {
            path: self.config.path.clone(),
            message,
        }
    }

    /// An error about `section`, naming the file it is in.
    fn section_error(&self, section: &Section, what: &str) -> ConfigError {
        let at = match section.line() {
            Some(line) => format!("{}:{line}", section.source().display()),
            None => section.source().display().to_string(),
        };
        self.paste_error(format!("[{}] in {at}: {what}", section.name()))
    }

    /// `parser.get(section, option)`, remembering where the value was written.
    fn read(&self, section: &str, option: &str) -> Result<Entry, ConfigError> {
        match self.ini.get_raw(section, option) {
            Some(raw) => Ok(Entry::read(
                self.ini.interpolate(section, option, raw)?,
                raw,
            )),
            None => Ok(Entry::computed("")),
        }
    }

    /// `NamedConfigLoader.get_context`: resolve `name` and record it as `__name__`.
    fn context(
        &self,
        object_type: ObjectType,
        name: &str,
        global: Option<&Dict>,
        depth: usize,
    ) -> Result<Ctx, ConfigError> {
        if depth > MAX_USE_DEPTH {
            return Err(self.paste_error(format!(
                "section references ('use', 'pipeline') nest more than {MAX_USE_DEPTH} deep at {} in {} \
                 (does a section refer to itself?)",
                repr(name),
                self.config.path.display()
            )));
        }
        let mut ctx = if is_uri(name) {
            self.uri_context(name, global)?
        } else {
            self.section_context(object_type, name, global, depth)?
        };
        ctx.local
            .insert("__name__".to_owned(), Entry::computed(name));
        Ok(ctx)
    }

    /// `loadcontext` for a `scheme:...` name; only `egg:` can be resolved
    /// without Python.
    fn uri_context(&self, uri: &str, global: Option<&Dict>) -> Result<Ctx, ConfigError> {
        let (base, fragment) = match uri.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (uri, None),
        };
        let (scheme, spec) = base.split_once(':').unwrap_or((base, ""));
        match scheme.to_ascii_lowercase().as_str() {
            "egg" => {
                let entry = fragment.unwrap_or("main");
                if is_uri(entry) {
                    // paste's EggLoader hands an absolute name on again.
                    return self.uri_context(entry, global);
                }
                if spec.is_empty() || entry.is_empty() {
                    return Err(self.paste_error(format!(
                        "{} in {}: an egg reference is egg:DIST#ENTRY_POINT \
                         (for example egg:swift#proxy)",
                        repr(uri),
                        self.config.path.display()
                    )));
                }
                Ok(Ctx {
                    section: uri.to_owned(),
                    global: global.cloned().unwrap_or_default(),
                    local: Dict::new(),
                    kind: Kind::Egg {
                        dist: spec.to_owned(),
                        entry: entry.to_owned(),
                    },
                })
            }
            "config" | "config_dir" | "call" => Err(self.paste_error(format!(
                "{} in {}: {scheme}: references are not supported (they load other files \
                 or Python code); use egg:DIST#ENTRY_POINT or a section of this config",
                repr(uri),
                self.config.path.display()
            ))),
            _ => Err(self.paste_error(format!(
                "URI scheme not known: {} (from config, egg, call, config_dir) in {} \
                 (only egg: is supported)",
                repr(&scheme.to_ascii_lowercase()),
                self.config.path.display()
            ))),
        }
    }

    /// `ConfigLoader.find_config_section`.
    fn find_section(&self, object_type: ObjectType, name: &str) -> Result<&Section, ConfigError> {
        let mut possible: Vec<&Section> = Vec::new();
        for group in object_type.prefixes() {
            for prefix in *group {
                let found: Vec<&Section> = self
                    .ini
                    .sections()
                    .filter(|s| {
                        s.name()
                            .strip_prefix(prefix)
                            .and_then(|rest| rest.strip_prefix(':'))
                            .is_some_and(|rest| strip(rest) == name)
                    })
                    .collect();
                if !found.is_empty() {
                    possible.extend(found);
                    break;
                }
            }
        }
        match possible.as_slice() {
            [] => Err(self.paste_error(format!(
                "No section {} (prefixed by {}) found in config {}",
                repr(name),
                object_type.prefix_description(),
                self.config.path.display()
            ))),
            [one] => Ok(one),
            many => {
                let names: Vec<String> = many.iter().map(|s| repr(s.name())).collect();
                Err(self.paste_error(format!(
                    "Ambiguous section names [{}] for section {} (prefixed by {}) found in config {}",
                    names.join(", "),
                    repr(name),
                    object_type.prefix_description(),
                    self.config.path.display()
                )))
            }
        }
    }

    /// `ConfigLoader.get_context` for a section of this config.
    fn section_context(
        &self,
        object_type: ObjectType,
        name: &str,
        global: Option<&Dict>,
        depth: usize,
    ) -> Result<Ctx, ConfigError> {
        let section = self.find_section(object_type, name)?;
        let sname = section.name();
        let defaults = self.defaults()?;
        let mut global_conf = defaults.clone();
        if let Some(g) = global {
            global_conf.extend(g.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let mut local = Dict::new();
        let mut local_order: Vec<String> = Vec::new();
        let mut global_additions = Dict::new();
        let mut get_from_globals: Vec<(String, String, String)> = Vec::new();
        let options = self.ini.option_names(sname).unwrap_or_default();
        for option in options {
            if let Some(target) = option.strip_prefix("set ") {
                let target = strip(target).to_owned();
                let entry = self.read(sname, option)?;
                global_additions.insert(target.clone(), entry.clone());
                global_conf.insert(target, entry);
            } else if let Some(target) = option.strip_prefix("get ") {
                let target = strip(target).to_owned();
                let from = self.read(sname, option)?.value;
                get_from_globals.retain(|(t, _, _)| *t != target);
                get_from_globals.push((target, from, option.to_owned()));
            } else if !defaults.contains_key(option) {
                // A plain key that `[DEFAULT]` also has is skipped: DEFAULT wins.
                local.insert(option.to_owned(), self.read(sname, option)?);
                local_order.push(option.to_owned());
            }
        }
        for (target, from, option) in get_from_globals {
            let Some(value) = global_conf.get(&from) else {
                return Err(self.section_error(
                    section,
                    &format!(
                        "{}: there is no global setting {} to get (globals are [DEFAULT], \
                         'set' lines and the caller's overrides)",
                        repr(&format!("{option} = {from}")),
                        repr(&from)
                    ),
                ));
            };
            if !local.contains_key(&target) {
                local_order.push(target.clone());
            }
            local.insert(target, value.clone());
        }
        if local.contains_key("filter-with") {
            return Err(self.section_error(
                section,
                "'filter-with' is not supported; add the filter to the pipeline instead",
            ));
        }
        // paste checks that the named distributions are installed; there is
        // nothing to check against here, so the key is only dropped as paste does.
        local.remove("require");
        local_order.retain(|k| k != "require");

        let prefix = sname.split_once(':').map_or(sname, |(p, _)| p);
        let mut ctx = match prefix {
            "filter-app" => {
                return Err(self.section_error(
                    section,
                    "[filter-app:] sections are not supported; use a [pipeline:] section",
                ));
            }
            "composite" | "composit" => {
                return Err(self.section_error(
                    section,
                    "[composite:] sections are not supported; use a [pipeline:] or an [app:] section",
                ));
            }
            "pipeline" => {
                self.pipeline_context(section, local, &local_order, global_conf, depth)?
            }
            _ if local.contains_key("use") => {
                self.use_context(object_type, local, global_conf, global_additions, depth)?
            }
            _ => return Err(self.explicit_context_error(object_type, section, &local)),
        };
        sname.clone_into(&mut ctx.section);
        Ok(ctx)
    }

    /// `ConfigLoader._context_from_use`.
    fn use_context(
        &self,
        object_type: ObjectType,
        mut local: Dict,
        global_conf: Dict,
        global_additions: Dict,
        depth: usize,
    ) -> Result<Ctx, ConfigError> {
        let used = local.remove("use").map(|e| e.value).unwrap_or_default();
        let mut ctx = self.context(object_type, &used, Some(&global_conf), depth + 1)?;
        ctx.global.extend(global_additions);
        ctx.local.extend(local);
        // A used section does not replace the original `__file__`.
        if let Some(file) = global_conf.get("__file__") {
            ctx.global.insert("__file__".to_owned(), file.clone());
        }
        Ok(ctx)
    }

    /// `ConfigLoader._pipeline_app_context`.
    fn pipeline_context(
        &self,
        section: &Section,
        mut local: Dict,
        local_order: &[String],
        global_conf: Dict,
        depth: usize,
    ) -> Result<Ctx, ConfigError> {
        let at = section.source().display();
        let Some(pipeline) = local.remove("pipeline").map(|e| e.value) else {
            return Err(self.paste_error(format!(
                "The [{}] section in {at} is missing a 'pipeline' setting",
                section.name()
            )));
        };
        if !local.is_empty() {
            let extra: Vec<&str> = local_order
                .iter()
                .filter(|k| local.contains_key(k.as_str()))
                .map(String::as_str)
                .collect();
            return Err(self.paste_error(format!(
                "The [{}] pipeline section in {at} has extra (disallowed) settings: {}",
                section.name(),
                extra.join(", ")
            )));
        }
        let names: Vec<&str> = split_whitespace(&pipeline).collect();
        let Some((app_name, filter_names)) = names.split_last() else {
            return Err(self.paste_error(format!(
                "The [{}] section in {at} has an empty 'pipeline' setting; \
                 it must list filters and end with an app",
                section.name()
            )));
        };
        // paste resolves the app before the filters; errors come in that order.
        let app = self.context(ObjectType::App, app_name, Some(&global_conf), depth + 1)?;
        let filters = filter_names
            .iter()
            .map(|f| self.context(ObjectType::Filter, f, Some(&global_conf), depth + 1))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Ctx {
            section: section.name().to_owned(),
            global: global_conf,
            local: Dict::new(),
            kind: Kind::Pipeline {
                filters,
                app: Box::new(app),
            },
        })
    }

    /// `ConfigLoader._context_from_explicit`, which needs Python: only its
    /// errors are reproduced.
    fn explicit_context_error(
        &self,
        object_type: ObjectType,
        section: &Section,
        local: &Dict,
    ) -> ConfigError {
        let mut possible: Vec<(&str, &str)> = Vec::new();
        for group in object_type.protocols() {
            if let Some(p) = group.iter().find(|p| local.contains_key(**p)) {
                possible.push((p, local.get(*p).map_or("", |e| e.value.as_str())));
            }
        }
        match possible.as_slice() {
            [] => self.paste_error(format!(
                "No loader given in section {} in {}: add 'use = egg:swift#<entry point>'",
                repr(section.name()),
                section.source().display()
            )),
            [(protocol, value)] => self.section_error(
                section,
                &format!(
                    "{} is not supported (it loads Python code); use 'use = egg:DIST#ENTRY_POINT'",
                    repr(&format!("{protocol} = {value}"))
                ),
            ),
            many => {
                let list: Vec<String> = many
                    .iter()
                    .map(|(p, v)| format!("({}, {})", repr(p), repr(v)))
                    .collect();
                self.paste_error(format!(
                    "Multiple protocols given in section {} in {}: [{}]",
                    repr(section.name()),
                    section.source().display(),
                    list.join(", ")
                ))
            }
        }
    }
}

/// paste's `_absolute_re` (`^[a-zA-Z]+:`): a name with a URI scheme.
fn is_uri(name: &str) -> bool {
    match name.split_once(':') {
        Some((scheme, _)) => !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphabetic()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> PasteConfig {
        PasteConfig::parse(text, Path::new("/etc/swift/proxy-server.conf")).unwrap()
    }

    #[test]
    fn uri_detection_matches_paste() {
        assert!(is_uri("egg:swift#proxy"));
        assert!(is_uri("Config:x"));
        assert!(!is_uri("proxy-server"));
        assert!(!is_uri("egg2:x"));
        assert!(!is_uri(":x"));
    }

    #[test]
    fn default_beats_plain_key_but_set_beats_default() {
        let cfg = load(
            "[DEFAULT]\na = dflt\nb = dflt\n[app:main]\nuse = egg:swift#proxy\na = mine\nset b = mine\n",
        );
        let conf = cfg.app_config("main", &[]).unwrap();
        assert_eq!(conf.get("a"), Some("dflt"));
        assert_eq!(conf.get("b"), Some("mine"));
        assert_eq!(conf.get("__name__"), Some("main"));
        assert_eq!(conf.get("here"), Some("/etc/swift"));
        assert_eq!(conf.section(), "app:main");
    }

    #[test]
    fn bare_egg_without_fragment_is_entry_point_main() {
        let cfg = load("[app:main]\nuse = egg:swift\n");
        let p = cfg.pipeline("main", &[]).unwrap();
        assert_eq!(p.app.dist, "swift");
        assert_eq!(p.app.entry_point, "main");
        assert!(p.filters.is_empty());
    }

    #[test]
    fn use_loop_is_an_error_not_a_stack_overflow() {
        let cfg = load("[app:main]\nuse = other\n[app:other]\nuse = main\n");
        let err = cfg.app_config("main", &[]).unwrap_err().to_string();
        assert!(err.contains("nest more than"), "{err}");
    }
}
