//! `[lease]`: the file lock by default, the Kubernetes Lease with its timings, and what replicas refuse.

use super::*;
use crate::config::{KubernetesLease, LeaseConfig};
use std::time::Duration;

/// A store every replica reaches, for the configs with a Kubernetes lease.
const SHARED_STORE: &str = r#"[stores.bao]
kind = "hashicorp_vault"
address = "https://bao.internal:8200"
auth = "kubernetes"
role = "rotavault"
"#;

#[test]
fn without_a_lease_section_the_lease_is_the_file_lock() {
    assert_eq!(valid_without_jobs("").lease, LeaseConfig::File);
    assert_eq!(valid_without_jobs("[lease]\nkind = \"file\"\n").lease, LeaseConfig::File);
}

#[test]
fn a_kubernetes_lease_has_the_lease_terms_of_kubernetes_clients_by_default() {
    let config = valid_without_jobs(&format!("{SHARED_STORE}\n[lease]\nkind = \"kubernetes\"\n"));
    assert_eq!(
        config.lease,
        LeaseConfig::Kubernetes(KubernetesLease {
            name: "rotavault".into(),
            namespace: None,
            duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        })
    );
    let config = valid_without_jobs(&format!(
        "{SHARED_STORE}\n[lease]\nkind = \"kubernetes\"\nname = \"rv-prod\"\nnamespace = \"secrets\"\n\
         duration = \"1m\"\nrenew_deadline = \"40s\"\nretry_period = \"5s\"\n"
    ));
    let LeaseConfig::Kubernetes(lease) = config.lease else { panic!("a Kubernetes lease") };
    assert_eq!((lease.name.as_str(), lease.namespace.as_deref()), ("rv-prod", Some("secrets")));
    assert_eq!(lease.duration, Duration::from_secs(60));
}

#[test]
fn a_leader_must_give_up_before_a_standby_may_take_over() {
    let head = format!("{SHARED_STORE}\n[lease]\nkind = \"kubernetes\"\n");
    let at = |n: usize| head.lines().count() + n;
    let source = format!("{head}duration = \"10s\"\nrenew_deadline = \"10s\"\n");
    let err = parse_at(&source, Path::new(FILE), now(), Jobs::Optional).expect_err("deadline not shorter");
    assert_eq!((err.line, err.key.as_deref()), (Some(at(2)), Some("lease.renew_deadline")), "{err}");
    assert!(err.message.contains("expected less than `duration`"), "{err}");
    let source = format!("{head}retry_period = \"10s\"\n");
    let err = parse_at(&source, Path::new(FILE), now(), Jobs::Optional).expect_err("retry not shorter");
    assert_eq!(err.key.as_deref(), Some("lease.retry_period"), "{err}");
    assert!(err.message.contains("expected less than `renew_deadline`"), "{err}");
    let source = format!("{head}duration = \"2h\"\n");
    let err = parse_at(&source, Path::new(FILE), now(), Jobs::Optional).expect_err("too long");
    assert!(err.message.contains("expected at most 10m"), "{err}");
}

#[test]
fn lease_names_and_namespaces_are_kubernetes_names() {
    let source = format!("{SHARED_STORE}\n[lease]\nkind = \"kubernetes\"\nname = \"Rota_Vault\"\n");
    let err = parse_at(&source, Path::new(FILE), now(), Jobs::Optional).expect_err("bad name");
    assert_eq!(err.key.as_deref(), Some("lease.name"), "{err}");
    assert!(err.message.contains("`Rota_Vault` is not a Kubernetes name"), "{err}");
}

#[test]
fn kubernetes_settings_without_the_kubernetes_kind_are_refused() {
    let err =
        parse_at("[lease]\nnamespace = \"x\"\n", Path::new(FILE), now(), Jobs::Optional).expect_err("file");
    assert_eq!((err.line, err.key.as_deref()), (Some(2), Some("lease.namespace")), "{err}");
    assert!(err.message.contains("expected `kind = \"kubernetes\"` with it"), "{err}");
}

#[test]
fn replicas_refuse_a_store_that_lives_on_one_replica() {
    let source = "[stores.local]\nkind = \"memory\"\n\n[lease]\nkind = \"kubernetes\"\n";
    let err = parse_at(source, Path::new(FILE), now(), Jobs::Optional).expect_err("memory store");
    assert_eq!((err.line, err.key.as_deref()), (Some(2), Some("stores.local.kind")), "{err}");
    assert!(err.message.contains("lives on one replica only"), "{err}");
    assert!(err.message.contains("aws_secrets_manager, azure_key_vault or hashicorp_vault"), "{err}");
}

#[test]
fn the_configs_shipped_for_kubernetes_load_with_a_kubernetes_lease() {
    let shipped = [
        ("deploy/kubernetes/config.toml", include_str!("../../../deploy/kubernetes/config.toml")),
        (
            "deploy/kubernetes/examples/vault-kubernetes-auth/config.toml",
            include_str!("../../../deploy/kubernetes/examples/vault-kubernetes-auth/config.toml"),
        ),
        (
            "deploy/kubernetes/examples/azure-workload-identity/config.toml",
            include_str!("../../../deploy/kubernetes/examples/azure-workload-identity/config.toml"),
        ),
        (
            "deploy/helm/rotavault/files/config.toml",
            include_str!("../../../deploy/helm/rotavault/files/config.toml"),
        ),
    ];
    for (name, source) in shipped {
        let config = parse_at(source, Path::new(name), now(), Jobs::Required)
            .unwrap_or_else(|e| panic!("{name} does not load: {e}"));
        assert!(matches!(config.lease, LeaseConfig::Kubernetes(_)), "{name}: {:?}", config.lease);
        assert!(config.http.listen.is_some_and(|a| !a.ip().is_loopback()), "{name}: the probes reach it");
    }
}
