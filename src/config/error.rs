use std::fmt;
use std::path::PathBuf;

/// One problem in a config file, located precisely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// The dotted key the problem is about, e.g. `host.policy.maintenance_window.start`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: key '{}': {}",
            self.path.display(),
            self.line,
            self.column,
            self.key,
            self.message
        )
    }
}

/// Why no usable config came out of loading.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config '{}'", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_all(.0))]
    Invalid(Vec<Diagnostic>),
    #[error(
        "no config found (looked at {}); pass --config FILE or set TENDHOST_CONFIG",
        render_paths(.searched)
    )]
    NotFound { searched: Vec<PathBuf> },
}

fn render_all(diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

fn render_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| format!("'{}'", p.display())).collect();
    shown.join(", ")
}
