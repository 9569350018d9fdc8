//! Two real `rotavault run` processes on one config and one file store: they never rotate the same job at the
//! same time (the per-job lock file), and neither loses or corrupts the other's writes (the store's lock).

use rotavault::store::file::{FileStore, IdentitySource};
use rotavault::store::{SecretRef, Store};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rotavault");
const JOBS: [&str; 2] = ["alpha", "beta"];

struct Daemon {
    child: Child,
    reader: Option<std::thread::JoinHandle<Vec<serde_json::Value>>>,
}

impl Daemon {
    fn start(config: &std::path::Path) -> Self {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(config)
            .args(["--log-format", "json", "run"])
            .env("ROTAVAULT_LOG", "rotavault=trace")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the daemon starts");
        let stderr = child.stderr.take().expect("stderr");
        let reader = std::thread::spawn(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| serde_json::from_str(&line).ok())
                .collect()
        });
        Self { child, reader: Some(reader) }
    }

    /// SIGTERM by PID, then everything it logged.
    fn stop(mut self) -> (Option<i32>, Vec<serde_json::Value>) {
        let status =
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
        let code = self.child.wait().expect("exits").code();
        let lines = self.reader.take().expect("reader").join().expect("reader thread");
        (code, lines)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field<'a>(line: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    line["fields"][name]
        .as_str()
        .or_else(|| line["span"][name].as_str())
        .or_else(|| line["spans"].as_array()?.iter().rev().find_map(|s| s[name].as_str()))
}

#[test]
fn two_daemons_never_rotate_one_job_at_once_and_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("store.key");
    let out = Command::new(BIN).args(["keygen", "--out"]).arg(&key).output().expect("keygen");
    assert!(out.status.success());
    let mut source = String::from(
        "state_dir = \"state\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[rotation]\nsettle = \"300ms\"\n\n[stores.local]\nkind = \"file\"\npath = \"secrets.age\"\n\
         identity_file = \"store.key\"\n\n[targets.shared]\nkind = \"generated\"\n",
    );
    for job in JOBS {
        source.push_str(&format!(
            "\n[jobs.{job}]\ntarget = \"shared\"\nstores = [ {{ store = \"local\", name = \"{job}\" }} ]\nschedule = \"* * * * * *\"\n"
        ));
    }
    let config = dir.path().join("config.toml");
    std::fs::write(&config, source).expect("config");

    let one = Daemon::start(&config);
    let two = Daemon::start(&config);
    // Let both run for a while: every second each wants to rotate both jobs. (A bound, not a measurement.)
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code_one, lines_one) = one.stop();
    let (code_two, lines_two) = two.stop();
    assert_eq!((code_one, code_two), (Some(0), Some(0)), "both stop cleanly on SIGTERM");

    // Per job, the [start, end] of every rotation from both processes, by rotation id.
    let mut spans: BTreeMap<(String, String), (Option<String>, Option<String>)> = BTreeMap::new();
    let mut completed: BTreeMap<String, usize> = BTreeMap::new();
    for (process, lines) in [("one", &lines_one), ("two", &lines_two)] {
        for line in lines {
            let message = line["fields"]["message"].as_str().unwrap_or_default();
            let (Some(job), Some(id)) = (field(line, "job"), field(line, "rotation_id")) else { continue };
            let at = line["timestamp"].as_str().map(str::to_owned);
            let entry = spans.entry((job.to_owned(), format!("{process}/{id}"))).or_default();
            match message {
                "rotation starts" => entry.0 = at,
                "rotation complete" => {
                    entry.1 = at;
                    *completed.entry(job.to_owned()).or_default() += 1;
                }
                _ => {}
            }
        }
        let failed = lines.iter().find(|l| l["fields"]["message"] == "rotation failed");
        assert!(
            failed.is_none(),
            "process {process}: a rotation failed (only `busy` skips are expected): {failed:?}"
        );
    }
    let rotated_by = |process: &str| spans.keys().filter(|(_, id)| id.starts_with(process)).count();
    // Both daemons wanted every job every second: the loser of each race either skipped it as busy or rotated it
    // after the winner. Either way there was contention for the lock to settle.
    let busy =
        lines_one.iter().chain(&lines_two).filter(|l| l["fields"]["message"] == "skipped: busy").count();
    let (by_one, by_two) = (rotated_by("one/"), rotated_by("two/"));
    eprintln!("rotations: one {by_one}, two {by_two}; busy skips {busy}; completed {completed:?}");
    assert!(by_one + by_two > 0, "nothing rotated");
    assert!(busy > 0 || (by_one > 0 && by_two > 0), "no contention happened, so the test proved nothing");

    for job in JOBS {
        let mut intervals: Vec<(String, String)> = spans
            .iter()
            .filter(|((j, _), _)| j == job)
            .filter_map(|(_, (start, end))| Some((start.clone()?, end.clone()?)))
            .collect();
        intervals.sort();
        assert!(!intervals.is_empty(), "{job} rotated");
        for pair in intervals.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "{job}: two rotations overlapped: {:?} and {:?}",
                pair[0],
                pair[1]
            );
        }
    }

    // Nothing lost: every completed rotation is one generation in the store, which still decrypts.
    let store =
        FileStore::open(dir.path().join("secrets.age"), IdentitySource::File(key)).expect("the store opens");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for job in JOBS {
        let current = rt
            .block_on(store.current(&SecretRef::new(job, job)))
            .expect("the store reads")
            .expect("a current value");
        assert_eq!(
            current.metadata.generation as usize, completed[job],
            "{job}: generations match rotations"
        );
        assert!(rt.block_on(store.pending(&SecretRef::new(job, job))).expect("reads").is_none());
    }
}
