//! The zone cache: each user's zone, with when it was resolved, in memory and (when the tenant is given a file)
//! on disk, so that a new process (each `rotavault rotate`, each daemon restart, each `check --connect`) in steady
//! state makes no zone lookup.
//!
//! The file is only a cache: it holds user names, zone URLs and times, never a secret; it is written whole to a
//! temporary file, synced and renamed, so a crash leaves the old file or the new one; a file that cannot be read
//! is ignored with a warning and replaced at the next write. Several processes may share it: each write re-reads
//! the file and changes only the one user it is about, so one process does not undo another's entries (a race
//! between two writes loses at most an entry, which costs one lookup).
//!
//! An entry is used until it is [`ZONE_LIFETIME`] old, and dropped at once when the zone fails a call (the callers
//! in `rest` and `soap` forget it, and the next call looks it up again and rewrites the file). The daemon looks up
//! again, off any rotation, every entry [`REFRESH_AFTER`] old ([`ZoneCache::aging`]), so that a rotation, whenever
//! it comes, finds its zones cached and makes no lookup.

use super::zone::Zone;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How long a resolved zone is used before it is looked up again. Zones move rarely and with notice (the AU data
/// centre in 2026), and a call that fails at a stale zone re-resolves at once anyway; the lifetime only bounds how
/// long an answer goes unchecked, so a day costs one lookup per user per day and nothing more.
pub(super) const ZONE_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How old an entry is when the daemon looks it up again ahead of its expiry: half its lifetime, so that a
/// refresh that fails once still has hours to succeed before a rotation would need a lookup of its own.
pub(super) const REFRESH_AFTER: Duration = Duration::from_secs(12 * 3600);

/// The file's layout, versioned so that a later layout is recognised rather than misread.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheFile {
    version: u32,
    /// By lower-cased user name.
    zones: BTreeMap<String, Entry>,
}

const FILE_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// The zone's REST base; the SOAP endpoint is derived from it again when read.
    rest: String,
    resolved_at: DateTime<Utc>,
}

/// Zones by lower-cased user name, each with the moment it was resolved.
#[derive(Debug, Default)]
pub(super) struct ZoneCache {
    file: Option<PathBuf>,
    entries: Mutex<BTreeMap<String, (Zone, DateTime<Utc>)>>,
}

impl ZoneCache {
    /// A cache kept in `file` as well as in memory when one is given; what the file holds already is read now.
    pub fn new(file: Option<PathBuf>) -> Self {
        let entries = file.as_deref().map(read).unwrap_or_default();
        Self { file, entries: Mutex::new(entries) }
    }

    pub fn get(&self, user: &str) -> Option<Zone> {
        self.get_at(user, Utc::now())
    }

    /// The zone of `user` if it was resolved less than [`ZONE_LIFETIME`] before `now`.
    pub fn get_at(&self, user: &str, now: DateTime<Utc>) -> Option<Zone> {
        let entries = self.lock();
        let (zone, at) = entries.get(&user.to_ascii_lowercase())?;
        fresh(*at, now).then(|| zone.clone())
    }

    /// The users whose entries are at least [`REFRESH_AFTER`] old at `now` (expired ones included): what a
    /// refresh looks up again. A user never resolved is not here: its first call looks it up.
    pub fn aging(&self, now: DateTime<Utc>) -> Vec<String> {
        let refresh_after = chrono::Duration::from_std(REFRESH_AFTER).unwrap_or(chrono::Duration::hours(12));
        let mut entries = self.lock();
        // Other processes' entries too: each of them is a zone some rotation will need.
        if let Some(path) = &self.file {
            for (user, entry) in read(path) {
                let newer = entries.get(&user).is_none_or(|(_, at)| *at < entry.1);
                if newer {
                    entries.insert(user, entry);
                }
            }
        }
        entries
            .iter()
            .filter(|(_, (_, at))| now - *at >= refresh_after)
            .map(|(user, _)| user.clone())
            .collect()
    }

    pub fn put(&self, user: &str, zone: Zone) {
        self.put_at(user, zone, Utc::now());
    }

    pub fn put_at(&self, user: &str, zone: Zone, at: DateTime<Utc>) {
        let key = user.to_ascii_lowercase();
        let mut entries = self.lock();
        entries.insert(key.clone(), (zone.clone(), at));
        self.write(&mut entries, &key, Some((zone, at)));
    }

    pub fn forget(&self, user: &str) {
        let key = user.to_ascii_lowercase();
        let mut entries = self.lock();
        entries.remove(&key);
        self.write(&mut entries, &key, None);
    }

    /// Re-reads the file, sets or removes `key` in it, writes it back, and takes the other processes' entries
    /// into memory. A failure is logged and otherwise ignored: the cache in memory still works.
    fn write(
        &self,
        entries: &mut BTreeMap<String, (Zone, DateTime<Utc>)>,
        key: &str,
        value: Option<(Zone, DateTime<Utc>)>,
    ) {
        let Some(path) = &self.file else { return };
        let mut merged = read(path);
        match value {
            Some(value) => merged.insert(key.to_owned(), value),
            None => merged.remove(key),
        };
        let file = CacheFile {
            version: FILE_VERSION,
            zones: merged
                .iter()
                .map(|(user, (zone, at))| (user.clone(), Entry { rest: zone.rest.clone(), resolved_at: *at }))
                .collect(),
        };
        match write_atomically(path, &file) {
            Ok(()) => *entries = merged,
            Err(e) => tracing::warn!(
                path = %path.display(),
                error = %e,
                "the zone cache file cannot be written; zones are kept in memory only"
            ),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, (Zone, DateTime<Utc>)>> {
        // Every change is one insert or remove, so a poisoned map is still consistent.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether a zone resolved at `at` may still be used at `now`. One resolved "in the future" (the clock went back)
/// is not trusted.
fn fresh(at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    (now - at).to_std().is_ok_and(|age| age < ZONE_LIFETIME)
}

/// The entries of the cache file; none when there is no file, and none (with a warning) when it cannot be read.
/// An entry whose URL is not acceptable as a zone (not https off this machine, say) is left out.
fn read(path: &Path) -> BTreeMap<String, (Zone, DateTime<Utc>)> {
    let ignored = |why: String| {
        tracing::warn!(path = %path.display(), %why, "the zone cache file is ignored; zones are looked up again");
        BTreeMap::new()
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return BTreeMap::new(),
        Err(e) => return ignored(e.to_string()),
    };
    let file: CacheFile = match serde_json::from_slice(&bytes) {
        Ok(file) => file,
        Err(e) => return ignored(format!("not a rotavault zone cache ({e})")),
    };
    if file.version != FILE_VERSION {
        return ignored(format!("version {} is not {FILE_VERSION}", file.version));
    }
    file.zones
        .into_iter()
        .filter_map(|(user, entry)| match Zone::from_rest_base(&entry.rest) {
            Ok(zone) => Some((user.to_ascii_lowercase(), (zone, entry.resolved_at))),
            Err(why) => {
                tracing::warn!(path = %path.display(), user, %why, "a zone cache entry is ignored");
                None
            }
        })
        .collect()
}

/// The cache file, written durably (`durable`): another process reads the old file or the new, never half.
fn write_atomically(path: &Path, file: &CacheFile) -> std::io::Result<()> {
    let body = serde_json::to_vec_pretty(file).map_err(std::io::Error::other)?;
    crate::durable::write(path, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(n: u8) -> Zone {
        Zone::from_rest_base(&format!("https://webservices{n}.autotask.net/atservicesrest/")).unwrap()
    }

    fn cache_file(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("zones").join("autotask.json")
    }

    #[test]
    fn cached_zones_expire_and_can_be_forgotten() {
        let cache = ZoneCache::new(None);
        let now = Utc::now();
        cache.put_at("A@x", zone(1), now);
        assert_eq!(cache.get_at("a@X", now), Some(zone(1)));
        cache.forget("a@x");
        assert_eq!(cache.get_at("a@x", now), None);
        cache.put_at("a@x", zone(1), now);
        let lifetime = chrono::Duration::from_std(ZONE_LIFETIME).unwrap();
        assert_eq!(cache.get_at("a@x", now + lifetime - chrono::Duration::seconds(1)), Some(zone(1)));
        assert_eq!(cache.get_at("a@x", now + lifetime), None, "an entry of the full lifetime is stale");
        assert_eq!(cache.get_at("a@x", now - chrono::Duration::minutes(5)), None, "nor one from the future");
    }

    #[test]
    fn a_second_cache_on_the_same_file_knows_the_zone_as_a_new_process_would() {
        let dir = tempfile::tempdir().unwrap();
        let first = ZoneCache::new(Some(cache_file(&dir)));
        first.put("a@x", zone(3));
        let second = ZoneCache::new(Some(cache_file(&dir)));
        assert_eq!(second.get("A@X"), Some(zone(3)));
        second.forget("a@x");
        assert_eq!(
            ZoneCache::new(Some(cache_file(&dir))).get("a@x"),
            None,
            "a forgotten zone leaves the file"
        );
    }

    #[test]
    fn an_entry_in_the_file_past_its_lifetime_is_looked_up_again() {
        let dir = tempfile::tempdir().unwrap();
        let old = Utc::now() - chrono::Duration::hours(25);
        ZoneCache::new(Some(cache_file(&dir))).put_at("a@x", zone(3), old);
        assert_eq!(ZoneCache::new(Some(cache_file(&dir))).get("a@x"), None);
    }

    #[test]
    fn processes_sharing_the_file_keep_each_others_entries() {
        let dir = tempfile::tempdir().unwrap();
        let one = ZoneCache::new(Some(cache_file(&dir)));
        let two = ZoneCache::new(Some(cache_file(&dir)));
        one.put("a@x", zone(1));
        two.put("b@x", zone(2));
        one.put("c@x", zone(3));
        let third = ZoneCache::new(Some(cache_file(&dir)));
        assert_eq!(
            [third.get("a@x"), third.get("b@x"), third.get("c@x")],
            [Some(zone(1)), Some(zone(2)), Some(zone(3))]
        );
        assert_eq!(one.get("b@x"), Some(zone(2)), "a write takes in what others wrote");
    }

    #[test]
    fn a_corrupt_file_is_ignored_and_replaced_at_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_file(&dir);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{not json").unwrap();
        let cache = ZoneCache::new(Some(path.clone()));
        assert_eq!(cache.get("a@x"), None);
        cache.put("a@x", zone(4));
        assert_eq!(ZoneCache::new(Some(path)).get("a@x"), Some(zone(4)));
    }

    #[test]
    fn the_file_holds_only_user_names_urls_and_times_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_file(&dir);
        ZoneCache::new(Some(path.clone())).put("A@x", zone(5));
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let entry = &json["zones"]["a@x"];
        assert_eq!(json["version"], 1);
        assert_eq!(entry["rest"], "https://webservices5.autotask.net/atservicesrest/");
        assert!(entry["resolved_at"].is_string());
        assert_eq!(entry.as_object().unwrap().len(), 2, "{json}");
        let names: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["autotask.json"]);
    }

    #[test]
    fn an_entry_with_a_url_that_is_no_acceptable_zone_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_file(&dir);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let body = serde_json::json!({"version": 1, "zones": {
            "a@x": {"rest": "http://evil.example/atservicesrest/", "resolved_at": Utc::now()},
            "b@x": {"rest": "https://webservices6.autotask.net/atservicesrest/", "resolved_at": Utc::now()},
        }});
        std::fs::write(&path, body.to_string()).unwrap();
        let cache = ZoneCache::new(Some(path));
        assert_eq!(cache.get("a@x"), None);
        assert_eq!(cache.get("b@x"), Some(zone(6)));
    }
}
