//! Stores and targets: names, identities, and paths relative to the config file.

use super::*;
use crate::config::StoreConfig;
use crate::store::file::IdentitySource;

#[test]
fn relative_paths_are_resolved_against_the_config_files_directory() {
    let source = r#"state_dir = "state"

[stores.relative]
kind = "file"
path = "secrets.age"
identity_file = "keys/store.key"

[stores.absolute]
kind = "file"
path = "/srv/secrets.age"
identity_credential = "rotavault-store-key"
"#;
    let config = valid_without_jobs(source);
    assert_eq!(config.state_dir, Path::new("/etc/rotavault/state"));
    match &config.stores["relative"] {
        StoreConfig::File { path, identity } => {
            assert_eq!(path, Path::new("/etc/rotavault/secrets.age"));
            assert!(
                matches!(identity, IdentitySource::File(p) if p == Path::new("/etc/rotavault/keys/store.key")),
                "{identity:?}"
            );
        }
        other => panic!("expected a file store, got {other:?}"),
    }
    match &config.stores["absolute"] {
        StoreConfig::File { path, identity } => {
            assert_eq!(path, Path::new("/srv/secrets.age"));
            assert!(
                matches!(identity, IdentitySource::Credential(n) if n == "rotavault-store-key"),
                "{identity:?}"
            );
        }
        other => panic!("expected a file store, got {other:?}"),
    }
    assert_eq!(config.stores["absolute"].kind(), "file");

    // A config file named relative to the working directory keeps its paths relative to that same directory.
    let config = crate::config::parse_at(
        source,
        Path::new("deploy/rotavault.toml"),
        now(),
        crate::config::Jobs::Optional,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.state_dir, Path::new("deploy/state"));
}

#[test]
fn a_file_store_needs_exactly_one_identity() {
    let both = r#"[stores.local]
kind = "file"
path = "secrets.age"
identity_file = "store.key"
identity_credential = "rotavault-store-key"
"#;
    error(
        both,
        5,
        "stores.local.identity_credential",
        &["both `identity_file` and `identity_credential` are set: expected exactly one"],
    );
    let neither = "\n[stores.local]\nkind = \"file\"\npath = \"secrets.age\"\n";
    error(
        neither,
        2,
        "stores.local",
        &["no identity: expected exactly one of `identity_file`", "`identity_credential`"],
    );
}

#[test]
fn a_credential_name_is_a_file_name() {
    let source = "[stores.local]\nkind = \"file\"\npath = \"s.age\"\nidentity_credential = \"../etc/key\"\n";
    error(source, 4, "stores.local.identity_credential", &["not a systemd credential name"]);
}

#[test]
fn an_empty_path_is_refused() {
    let source = "[stores.local]\nkind = \"file\"\npath = \"\"\nidentity_file = \"k\"\n";
    error(source, 3, "stores.local.path", &["not a path"]);
}

#[test]
fn names_are_limited_to_file_name_characters() {
    let source = MINIMAL.replace("[stores.local]", "[stores.\"my store\"]");
    let err = error(&source, 1, "stores.\"my store\"", &["store name has a character other than", "1 to 64"]);
    assert_eq!(err.column, Some(9), "at the name itself");

    let long = "j".repeat(65);
    let source = format!("{MINIMAL}\n[jobs.{long}]\ntarget = \"shared\"\nmax_age = \"1d\"\n");
    error(&source, 12, &format!("jobs.{long}"), &["job name has 65 characters"]);

    let source = MINIMAL.replace("[targets.shared]", "[targets.\"..\"]");
    error(&source, 4, "targets.\"..\"", &["target name names a directory"]);

    let source = MINIMAL
        .replace("[targets.shared]", "[targets.\"gen.v2_A-1\"]")
        .replace("target = \"shared\"", "target = \"gen.v2_A-1\"");
    valid(&source);
}

#[test]
fn a_target_kind_without_settings_accepts_no_other_key() {
    let source = MINIMAL.replace("kind = \"generated\"", "kind = \"generated\"\nlength = 12");
    error(&source, 6, "targets.shared.length", &["unknown key `length`", "expected `kind`"]);
}

const AWS: &str = r#"[stores.aws]
kind = "aws_secrets_manager"
region = "eu-west-1"
kms_key_id = "alias/rotavault"
tags = { team = "msp" }

[targets.shared]
kind = "generated"

[jobs.webhook]
target = "shared"
stores = [ { store = "aws", name = "rotavault/webhook" } ]
max_age = "30d"
"#;

#[test]
fn an_aws_store_loads_with_its_settings() {
    let config = valid(AWS);
    let crate::config::StoreConfig::AwsSecretsManager(aws) = &config.stores["aws"] else { panic!("aws") };
    assert_eq!(aws.region.as_deref(), Some("eu-west-1"));
    assert_eq!(aws.kms_key_id.as_deref(), Some("alias/rotavault"));
    assert_eq!(aws.tags["team"], "msp");
    assert_eq!(aws.endpoint_url, None);
}

#[test]
fn aws_settings_and_secret_names_are_checked() {
    error(&AWS.replace("eu-west-1", "EU West"), 3, "stores.aws.region", &["not an AWS region"]);
    error(
        &AWS.replace("team = \"msp\"", "managed-by = \"me\""),
        5,
        "stores.aws.tags.managed-by",
        &["reserved"],
    );
    error(
        &AWS.replace("team = \"msp\"", "rotavault-job = \"other\""),
        5,
        "stores.aws.tags.rotavault-job",
        &["reserved", "`rotavault-job`"],
    );
    error(
        &AWS.replace("region = \"eu-west-1\"", "endpoint_url = \"localhost:5000\""),
        3,
        "stores.aws.endpoint_url",
        &["not a URL"],
    );
    error(
        &AWS.replace("rotavault/webhook", "has space"),
        12,
        "jobs.webhook.stores[0].name",
        &["AWS Secrets Manager"],
    );
    error(
        &AWS.replace("region = \"eu-west-1\"", "access_key = \"AKIA\""),
        3,
        "stores.aws.access_key",
        &["never"],
    );
    let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rotavault/webhook-AbCdEf";
    valid(&AWS.replace("rotavault/webhook", arn));
}

const AZURE: &str = r#"[stores.kv]
kind = "azure_key_vault"
vault_url = "https://contoso-kv.vault.azure.net"
identity = "client_secret"
tenant_id = "contoso.onmicrosoft.com"
client_id = "0f0f0f0f-1111-2222-3333-444455556666"
client_secret_file = "azure.secret"
set_expiry = true

[targets.shared]
kind = "generated"

[jobs.webhook]
target = "shared"
stores = [ { store = "kv", name = "webhook-signing" } ]
max_age = "30d"
"#;

#[test]
fn an_azure_store_loads_with_its_identity() {
    let config = valid(AZURE);
    let crate::config::StoreConfig::AzureKeyVault(kv) = &config.stores["kv"] else { panic!("azure") };
    assert_eq!(kv.vault_url, "https://contoso-kv.vault.azure.net");
    assert!(kv.set_expiry);
    assert_eq!(
        kv.identity,
        crate::config::AzureIdentityConfig::ClientSecret {
            tenant_id: "contoso.onmicrosoft.com".into(),
            client_id: "0f0f0f0f-1111-2222-3333-444455556666".into(),
            secret_file: "/etc/rotavault/azure.secret".into(),
        }
    );
    let managed = valid(
        &AZURE
            .replace("identity = \"client_secret\"\n", "")
            .replace("client_secret_file = \"azure.secret\"\n", ""),
    );
    let crate::config::StoreConfig::AzureKeyVault(kv) = &managed.stores["kv"] else { panic!("azure") };
    assert!(matches!(
        kv.identity,
        crate::config::AzureIdentityConfig::ManagedIdentity { client_id: Some(_) }
    ));
}

#[test]
fn azure_settings_and_secret_names_are_checked() {
    error(
        &AZURE.replace("https://contoso-kv", "http://contoso-kv"),
        3,
        "stores.kv.vault_url",
        &["https only"],
    );
    error(
        &AZURE.replace("client_secret_file = \"azure.secret\"\n", ""),
        1,
        "stores.kv",
        &["`client_secret_file`"],
    );
    error(
        &AZURE.replace("webhook-signing", "webhook/signing"),
        15,
        "jobs.webhook.stores[0].name",
        &["Key Vault"],
    );
    let long = "a".repeat(120);
    error(&AZURE.replace("webhook-signing", &long), 15, "jobs.webhook.stores[0].name", &["119"]);
    valid(&AZURE.replace("webhook-signing", &"a".repeat(119)));
    error(
        &AZURE.replace("set_expiry = true", "tags = { state = \"x\" }"),
        8,
        "stores.kv.tags.state",
        &["reserved"],
    );
    error(
        &AZURE.replace("set_expiry = true", "client_secret = \"hunter2\""),
        8,
        "stores.kv.client_secret",
        &["never"],
    );
}

const VAULT: &str = r#"[stores.bao]
kind = "hashicorp_vault"
address = "https://vault.example.com:8200"
namespace = "admin/msp"
ca_file = "vault-ca.pem"
auth = "approle"
role_id = "rotavault"
secret_id_file = "approle.secret"

[targets.shared]
kind = "generated"

[jobs.webhook]
target = "shared"
stores = [ { store = "bao", name = "webhooks/signing-key" } ]
max_age = "30d"
"#;

#[test]
fn a_vault_store_loads_with_its_auth() {
    let config = valid(VAULT);
    let crate::config::StoreConfig::HashicorpVault(bao) = &config.stores["bao"] else { panic!("vault") };
    assert_eq!(bao.mount, "secret");
    assert_eq!(bao.pending_suffix, "-pending");
    assert_eq!(bao.namespace.as_deref(), Some("admin/msp"));
    assert_eq!(bao.ca_file.as_deref(), Some(std::path::Path::new("/etc/rotavault/vault-ca.pem")));
    assert_eq!(
        bao.auth,
        crate::config::VaultAuthConfig::AppRole {
            mount: "approle".into(),
            role_id: "rotavault".into(),
            secret_id_file: "/etc/rotavault/approle.secret".into(),
        }
    );
}

#[test]
fn vault_settings_are_checked() {
    error(
        &VAULT.replace("https://vault.example.com:8200", "vault:8200"),
        3,
        "stores.bao.address",
        &["not a server address"],
    );
    error(
        &VAULT.replace("secret_id_file = \"approle.secret\"\n", ""),
        1,
        "stores.bao",
        &["`secret_id_file`"],
    );
    error(&VAULT.replace("auth = \"approle\"", "auth = \"userpass\""), 6, "stores.bao.auth", &["`token`"]);
    error(&VAULT.replace("role_id = \"rotavault\"", "token = \"s.abc\""), 7, "stores.bao.token", &["never"]);
    let k8s = VAULT.replace(
        "auth = \"approle\"\nrole_id = \"rotavault\"\nsecret_id_file = \"approle.secret\"",
        "auth = \"kubernetes\"\nrole = \"rotavault\"",
    );
    let config = valid(&k8s);
    let crate::config::StoreConfig::HashicorpVault(bao) = &config.stores["bao"] else { panic!("vault") };
    assert!(
        matches!(&bao.auth, crate::config::VaultAuthConfig::Kubernetes { mount, .. } if mount == "kubernetes")
    );
}
