//! Unit tests of what needs no server: URLs, settings, and what `new` refuses before it sends anything.

use super::client::Http;
use super::*;

fn settings(address: &str) -> VaultSettings {
    VaultSettings::new(address, VaultAuth::TokenFile(PathBuf::from("/nonexistent/token")))
}

#[test]
fn defaults_are_the_documented_ones() {
    let s = settings("http://127.0.0.1:8200");
    assert_eq!((s.mount.as_str(), s.pending_suffix.as_str(), s.namespace), ("secret", "-pending", None));
    match VaultAuth::kubernetes("rotavault") {
        VaultAuth::Kubernetes { mount, token_file, .. } => {
            assert_eq!(mount, "kubernetes");
            assert_eq!(token_file, PathBuf::from(DEFAULT_KUBERNETES_TOKEN));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn urls_keep_a_path_prefix_and_encode_each_segment() {
    let http = Http::new(&settings("https://proxy.example/vault/")).expect("an http client");
    let url = http.url(&["secret", "data"], Some("team a/app?x#y"));
    assert_eq!(url.as_str(), "https://proxy.example/vault/v1/secret/data/team%20a/app%3Fx%23y");
}

#[test]
fn bad_addresses_and_ca_files_are_invalid() {
    for address in ["not a url", "ftp://vault:21", "mailto:x@y"] {
        let err = Http::new(&settings(address)).expect_err(address);
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    }
    let dir = tempfile::tempdir().expect("a tempdir");
    let garbage = dir.path().join("ca.pem");
    std::fs::write(&garbage, "not a certificate").expect("write");
    for ca in [garbage, dir.path().join("missing.pem")] {
        let mut s = settings("https://127.0.0.1:8200");
        s.ca_file = Some(ca.clone());
        let err = Http::new(&s).expect_err("a bad ca_file");
        assert!(matches!(err, StoreError::Invalid { .. }) && err.to_string().contains("ca_file"), "{err:?}");
    }
}

#[tokio::test]
async fn a_missing_token_file_is_unauthenticated_and_names_the_file() {
    let err = VaultStore::new(settings("http://127.0.0.1:9")).await.expect_err("no token file");
    assert!(matches!(err, StoreError::Unauthenticated { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/token"), "{err}");
}
