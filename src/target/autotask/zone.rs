//! Zones: which Autotask data centre serves a user, found by `GET {lookup}v1.0/zoneInformation?user=` (no
//! credentials), and cached per user name.
//!
//! Zones do move (the AU data centre moved in 2026), so nothing is hard-coded: a cached zone is dropped after a
//! few hours, and at once when the zone answers a call with a connection failure or an unexplained 5xx (the
//! callers in `rest` and `soap` do that, once per call). The SOAP endpoint is derived from the REST base (same
//! scheme and host, path `/ATServices/1.6/atws.asmx`), so one lookup serves both APIs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Zones change rarely; a day-old answer is still worth re-checking.
const ZONE_TTL: Duration = Duration::from_secs(6 * 3600);

const SOAP_PATH: &str = "/ATServices/1.6/atws.asmx";

/// Where one user's calls go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Zone {
    /// The REST base, `url` of the zone lookup with its trailing slash; calls append `V1.0/…`.
    pub rest: String,
    /// The SOAP 1.6 endpoint.
    pub soap: String,
}

impl Zone {
    pub fn from_rest_base(url: &str) -> Result<Self, String> {
        let mut rest = url.trim().to_owned();
        // The wire page says the base ends in '/'; a base without one would make `V1.0/…` replace its last
        // segment, so one is added rather than trusting every zone to keep the convention.
        if !rest.ends_with('/') {
            rest.push('/');
        }
        let soap = soap_url(&rest)?;
        Ok(Self { rest, soap })
    }
}

/// The SOAP 1.6 endpoint of a zone: the REST base's scheme and authority plus `/ATServices/1.6/atws.asmx`.
pub(super) fn soap_url(rest_base: &str) -> Result<String, String> {
    let mut url = reqwest::Url::parse(rest_base).map_err(|e| format!("the zone URL is not a URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err("the zone URL is not an http(s) URL with a host".into());
    }
    url.set_path(SOAP_PATH);
    url.set_query(None);
    url.set_fragment(None);
    Ok(url.into())
}

/// The zone lookup's answer: `{"zoneName","url","webUrl","ci"}`; only `url` matters.
pub(super) fn parse_zone_information(body: &str) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct ZoneInformation {
        url: Option<String>,
    }
    let info: ZoneInformation = serde_json::from_str(body)
        .map_err(|e| format!("the zone lookup answered something that is not zone information ({e})"))?;
    match info.url {
        Some(url) if !url.trim().is_empty() => Ok(url),
        _ => Err("the zone lookup answered without a zone url".into()),
    }
}

/// Zones by lower-cased user name, each with the instant it was resolved.
#[derive(Debug, Default)]
pub(super) struct ZoneCache {
    entries: Mutex<HashMap<String, (Zone, Instant)>>,
}

impl ZoneCache {
    pub fn get(&self, user: &str) -> Option<Zone> {
        let entries = self.lock();
        let (zone, at) = entries.get(&user.to_ascii_lowercase())?;
        (at.elapsed() < ZONE_TTL).then(|| zone.clone())
    }

    pub fn put(&self, user: &str, zone: Zone) {
        self.lock().insert(user.to_ascii_lowercase(), (zone, Instant::now()));
    }

    pub fn forget(&self, user: &str) {
        self.lock().remove(&user.to_ascii_lowercase());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Zone, Instant)>> {
        // Every change is one insert or remove, so a poisoned map is still consistent.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soap_url_keeps_scheme_and_authority_only() {
        assert_eq!(
            soap_url("https://webservices5.autotask.net/atservicesrest/").unwrap(),
            "https://webservices5.autotask.net/ATServices/1.6/atws.asmx"
        );
        assert_eq!(
            soap_url("http://127.0.0.1:8123/sandbox/atservicesrest/?x=1").unwrap(),
            "http://127.0.0.1:8123/ATServices/1.6/atws.asmx"
        );
        assert!(soap_url("ftp://example.com/").is_err());
        assert!(soap_url("not a url").is_err());
    }

    #[test]
    fn zone_keeps_the_rest_base_and_adds_a_missing_slash() {
        let zone = Zone::from_rest_base("https://webservices3.autotask.net/atservicesrest/").unwrap();
        assert_eq!(zone.rest, "https://webservices3.autotask.net/atservicesrest/");
        assert_eq!(zone.soap, "https://webservices3.autotask.net/ATServices/1.6/atws.asmx");
        let zone = Zone::from_rest_base("https://webservices3.autotask.net/atservicesrest").unwrap();
        assert_eq!(zone.rest, "https://webservices3.autotask.net/atservicesrest/");
    }

    #[test]
    fn zone_information_is_parsed() {
        let body = r#"{"zoneName":"Pre-Release","url":"https://webservices3.autotask.net/atservicesrest/","webUrl":"https://ww3.autotask.net/","ci":123}"#;
        assert_eq!(
            parse_zone_information(body).unwrap(),
            "https://webservices3.autotask.net/atservicesrest/"
        );
        assert!(parse_zone_information(r#"{"zoneName":"x"}"#).is_err());
        assert!(parse_zone_information("<html>").is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn cached_zones_expire_and_can_be_forgotten() {
        let cache = ZoneCache::default();
        let zone = Zone::from_rest_base("https://ws1.example/atservicesrest/").unwrap();
        cache.put("A@x", zone.clone());
        assert_eq!(cache.get("a@X"), Some(zone.clone()));
        cache.forget("a@x");
        assert_eq!(cache.get("a@x"), None);
        cache.put("a@x", zone);
        tokio::time::advance(ZONE_TTL).await;
        assert_eq!(cache.get("a@x"), None);
    }
}
