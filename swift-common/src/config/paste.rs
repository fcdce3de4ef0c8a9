//! paste.deploy semantics over [`super::ini`]. (Stub: being implemented.)

use std::path::{Path, PathBuf};

use super::{Conf, ConfigError};

/// A loaded paste.deploy config: one file, or a `.conf.d` directory.
#[derive(Debug)]
pub struct PasteConfig {
    path: PathBuf,
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
}

impl PasteConfig {
    /// Read a file or a `.conf.d` directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let _ = path;
        unimplemented!()
    }

    /// The path given to [`PasteConfig::load`], made absolute.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// paste's `appconfig(path, name=name)`.
    pub fn app_config(&self, name: &str, global_overrides: &[(&str, &str)]) -> Result<Conf, ConfigError> {
        let _ = (name, global_overrides);
        unimplemented!()
    }

    /// paste's `loadapp(path, name=name)`, resolved to components instead of objects.
    pub fn pipeline(&self, name: &str, global_overrides: &[(&str, &str)]) -> Result<Pipeline, ConfigError> {
        let _ = (name, global_overrides);
        unimplemented!()
    }
}
