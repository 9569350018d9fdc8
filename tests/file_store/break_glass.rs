//! Break-glass: the plain `age` tool, given the store's key file, recovers every secret from its file. Run with the
//! real tool (`scripts/test` installs Debian's `age` package); the test fails, never skips, without it.

use super::*;
use std::process::Command;

#[tokio::test]
async fn age_decrypts_every_secrets_file_with_the_key_file_and_finds_every_value() {
    let setup = Setup::new();
    let store = setup.open();
    let names = ["autotask/api-user", "svc", "a b/ü"];
    for (n, name) in names.iter().enumerate() {
        rotate(&store, name, &format!("old-value-{n}"), 1).await;
        rotate(&store, name, &format!("cur-value-{n}"), 2).await;
    }
    let id = RotationId::new();
    store
        .stage(&secret("svc"), &SecretValue::new("pending-value-1"), &id, &meta(Some(&id), 3))
        .await
        .expect("stage");

    let mut found = String::new();
    let mut files = 0;
    for entry in fs::read_dir(&setup.path).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|x| x != "age") {
            continue;
        }
        files += 1;
        let out = match Command::new("age").arg("-d").arg("-i").arg(&setup.key).arg(&path).output() {
            Ok(out) => out,
            Err(e) => panic!(
                "cannot run `age` ({e}): install it (Debian: `apt-get install age`; scripts/test does this) to \
                 test break-glass recovery"
            ),
        };
        assert!(out.status.success(), "age -d {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
        found.push_str(&String::from_utf8(out.stdout).expect("UTF-8"));
    }
    assert_eq!(files, names.len());
    for n in 0..names.len() {
        for value in [format!("old-value-{n}"), format!("cur-value-{n}")] {
            assert!(found.contains(&value), "{value} recovered");
        }
    }
    assert!(found.contains("pending-value-1"));
}
