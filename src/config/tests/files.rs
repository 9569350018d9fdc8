//! The files a config names, for `check` to find: each listed with its key and place, and a missing one reported
//! there with its path.

use super::*;
use crate::config::NamedFile;

const FILES: &str = r#"[stores.local]
kind = "file"
path = "secrets.age"
identity_file = "store.key"

[stores.bao]
kind = "hashicorp_vault"
address = "https://vault.example.com:8200"
ca_file = "/etc/rotavault/vault-ca.pem"
auth = "approle"
role_id = "rotavault"
secret_id_file = "approle.secret-id"

[stores.k8s]
kind = "hashicorp_vault"
address = "https://vault.example.com:8200"
auth = "kubernetes"
role = "rotavault"

[targets.autotask]
kind = "autotask"
admin = { store = "local", name = "autotask/admin" }

[jobs.backup]
target = "autotask"
users = ["backup-api@example.com"]
integration_code_file = "backup.code"
stores = [ { store = "bao", name = "autotask/backup" } ]
max_age = "30d"
"#;

#[test]
fn every_named_file_is_listed_with_its_key_and_place_in_file_order() {
    let config = valid(FILES);
    let listed: Vec<(&str, Option<usize>, &Path)> =
        config.files.iter().map(|f| (f.key.as_str(), f.line, f.path.as_path())).collect();
    assert_eq!(
        listed,
        [
            ("stores.local.identity_file", Some(4), Path::new("/etc/rotavault/store.key")),
            ("stores.bao.ca_file", Some(9), Path::new("/etc/rotavault/vault-ca.pem")),
            ("stores.bao.secret_id_file", Some(12), Path::new("/etc/rotavault/approle.secret-id")),
            // Not written: the default path, reported at the store's table.
            (
                "stores.k8s.service_account_token_file",
                Some(14),
                Path::new("/var/run/secrets/kubernetes.io/serviceaccount/token")
            ),
            ("jobs.backup.integration_code_file", Some(27), Path::new("/etc/rotavault/backup.code")),
        ]
    );
}

#[test]
fn a_missing_file_is_a_config_error_at_its_key_naming_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let present = dir.path().join("present");
    std::fs::write(&present, "x").expect("write");
    let file = |path: &Path| NamedFile {
        key: "stores.bao.secret_id_file".into(),
        line: Some(12),
        column: Some(18),
        path: path.to_owned(),
        holds: "the AppRole secret id",
    };
    assert_eq!(file(&present).check(Path::new(FILE)), Ok(()));
    let missing = dir.path().join("missing");
    let err = file(&missing).check(Path::new(FILE)).expect_err("missing");
    assert_eq!(
        err.to_string(),
        format!(
            "{FILE}:12:18: stores.bao.secret_id_file: `{}` does not exist: expected a file holding the AppRole secret id",
            missing.display()
        )
    );
    let err = file(dir.path()).check(Path::new(FILE)).expect_err("a directory");
    assert!(err.message.contains("is a directory"), "{err}");
}

#[test]
fn the_http_token_file_is_listed_at_its_key_so_check_reports_it_missing() {
    let config = valid(&format!("[http]\nlisten = \"\"\ntoken_file = \"rotate.token\"\n\n{FILES}"));
    let token = config.files.iter().find(|f| f.key == "http.token_file").expect("the token file is listed");
    assert_eq!((token.line, token.path.as_path()), (Some(3), Path::new("/etc/rotavault/rotate.token")));
    let err = token.check(Path::new(FILE)).expect_err("not on this machine");
    assert!(err.to_string().starts_with(&format!("{FILE}:3:")), "{err}");
    assert!(
        err.to_string().contains("http.token_file") && err.to_string().contains("does not exist"),
        "{err}"
    );
}
