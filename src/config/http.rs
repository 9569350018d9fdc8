//! `[http]`: where the daemon serves health, metrics and the job API, and the file that holds the rotate-now
//! token. The listener is on by default, on loopback only, at [`DEFAULT_LISTEN`]; `listen = ""` turns it off.

use super::document::Document;
use super::error::ConfigError;
use super::locate::KeyPath;
use super::validate::resolve_path;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Loopback only, on a port that no exporter holds in the Prometheus exporters' default-port list (9100-9999 is
/// full; the list goes on from 10000 in order), so a scrape config can name it without a clash.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:10318";

/// `[http]` as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpSchema {
    pub listen: Option<String>,
    pub token_file: Option<String>,
}

/// `[http]`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSettings {
    /// `None`: no HTTP server.
    pub listen: Option<SocketAddr>,
    /// The bearer token `POST /v1/jobs/{job}/rotate` requires; without one that endpoint is refused.
    pub token_file: Option<PathBuf>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self { listen: DEFAULT_LISTEN.parse().ok(), token_file: None }
    }
}

pub(super) fn build(
    doc: &Document<'_>,
    schema: HttpSchema,
    base: &Path,
) -> Result<HttpSettings, ConfigError> {
    let at = KeyPath::root().key("http");
    let listen = match schema.listen.as_deref() {
        None => HttpSettings::default().listen,
        Some("") => None,
        Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
            doc.error(
                &at.key("listen"),
                format!(
                    "`{text}` is not an address: expected IP:PORT such as `{DEFAULT_LISTEN}` (a name is not \
                     resolved), or \"\" to turn the HTTP server off"
                ),
            )
        })?),
    };
    let token_file = match &schema.token_file {
        Some(path) => Some(resolve_path(doc, &at.key("token_file"), path, base)?),
        None => None,
    };
    Ok(HttpSettings { listen, token_file })
}

/// The token file, for `check` to find.
pub(super) fn files(doc: &Document<'_>, http: &HttpSettings) -> Vec<super::NamedFile> {
    let Some(path) = &http.token_file else { return Vec::new() };
    let at = KeyPath::root().key("http").key("token_file");
    vec![super::NamedFile::at(doc, &at, path, "the bearer token of POST /v1/jobs/{job}/rotate")]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(http: &str) -> Result<crate::config::Config, ConfigError> {
        let source = format!(
            "{http}\n[stores.m]\nkind = \"memory\"\n[targets.g]\nkind = \"generated\"\n[jobs.j]\ntarget = \"g\"\n\
             stores = [ {{ store = \"m\", name = \"j\" }} ]\nmax_age = \"30d\"\n"
        );
        crate::config::parse(&source, Path::new("/etc/rotavault/config.toml"))
    }

    #[test]
    fn http_listens_on_loopback_at_the_default_port_unless_told_otherwise() {
        let default = parse("").expect("valid").http;
        assert_eq!(default.listen, Some("127.0.0.1:10318".parse().expect("addr")));
        assert_eq!(default.token_file, None);
        let off = parse("[http]\nlisten = \"\"\ntoken_file = \"token\"").expect("valid").http;
        assert_eq!(off, HttpSettings { listen: None, token_file: Some("/etc/rotavault/token".into()) });
    }

    #[test]
    fn a_listen_that_is_not_an_address_names_the_key_and_what_is_expected() {
        let err = parse("[http]\nlisten = \"localhost:80\"").expect_err("a name").to_string();
        assert!(err.contains("config.toml:2:") && err.contains("http.listen"), "{err}");
        assert!(err.contains("`localhost:80` is not an address: expected IP:PORT"), "{err}");
        let err = parse("[http]\nport = 1").expect_err("unknown key").to_string();
        assert!(err.contains("port"), "{err}");
    }
}
