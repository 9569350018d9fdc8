//! Zones: which Autotask data centre serves a user, found by `GET {lookup}V1.0/zoneInformation?user=` (no
//! credentials; cached in `zone_cache`), and what a zone URL must be to be used.
//!
//! Zones do move (the AU data centre moved in 2026), so nothing is hard-coded. The SOAP endpoint is derived from
//! the REST base (same scheme and host, path `/ATServices/1.6/atws.asmx`), so one lookup serves both APIs. Every
//! URL, configured or answered, must be https (plain http only to this machine, for the sandbox), and the REST
//! version is pinned here rather than taken from any URL.

const SOAP_PATH: &str = "/ATServices/1.6/atws.asmx";

/// The REST API version every path is built with. Autotask's `versioninformation` also lists `V2.0`, where
/// `zoneInformation` answers 404 and whose shapes rotavault was not written against; so the version is never
/// taken from a URL, an answer or a list, only from here.
pub(super) const REST_VERSION: &str = "V1.0";

/// `url` without a trailing API version segment (`…/atservicesrest/V2.0/` → `…/atservicesrest/`), so that a base
/// given or answered with a version still gets [`REST_VERSION`] and only it.
pub(super) fn without_version(url: &mut reqwest::Url) {
    let Some(last) = url.path_segments().and_then(|mut s| s.rfind(|s| !s.is_empty())) else {
        return;
    };
    let is_version = last.strip_prefix(['v', 'V']).is_some_and(|n| {
        !n.is_empty() && n.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    });
    if is_version {
        let trimmed = url.path().trim_end_matches('/');
        let parent = trimmed[..trimmed.len() - last.len()].to_owned();
        url.set_path(&parent);
    }
}

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
        let soap = soap_url(url.trim())?;
        let mut parsed =
            reqwest::Url::parse(url.trim()).map_err(|e| format!("the zone URL `{url}` is not a URL: {e}"))?;
        without_version(&mut parsed);
        let mut rest = String::from(parsed);
        // The wire page says the base ends in '/'; a base without one would make `V1.0/…` replace its last
        // segment, so one is added rather than trusting every zone to keep the convention.
        if !rest.ends_with('/') {
            rest.push('/');
        }
        Ok(Self { rest, soap })
    }
}

/// Whether `url` may carry Autotask calls: `https`, or plain `http` to this machine only (the sandbox). Every call
/// but the zone lookup carries a secret, and the zone lookup decides where those go, so a plain-http hop anywhere
/// off the machine would hand them to the network.
pub fn check_transport(url: &reqwest::Url) -> Result<(), String> {
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Err(format!("`{url}` has no host: expected an https URL"));
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "`{url}` is plain http: expected https (plain http only to a loopback address: 127.0.0.0/8, ::1 or \
             localhost, as the sandbox uses)"
        )),
        other => Err(format!("`{url}` is a {other} URL: expected https")),
    }
}

/// [`check_transport`] for a URL given as text (the config's `zone_lookup_url`).
pub fn check_zone_url(text: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| format!("`{text}` is not a URL ({e})"))?;
    check_transport(&url)
}

/// The SOAP 1.6 endpoint of a zone: the REST base's scheme and authority plus `/ATServices/1.6/atws.asmx`.
pub(super) fn soap_url(rest_base: &str) -> Result<String, String> {
    let mut url = reqwest::Url::parse(rest_base)
        .map_err(|e| format!("the zone URL `{rest_base}` is not a URL: {e}"))?;
    check_transport(&url).map_err(|why| format!("the zone URL {why}"))?;
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
    fn zone_urls_must_be_https_or_plain_http_to_a_loopback_address() {
        for good in [
            "https://webservices5.autotask.net/atservicesrest/",
            "http://127.0.0.1:8123/atservicesrest/",
            "http://127.8.9.10/atservicesrest/",
            "http://[::1]:9/atservicesrest/",
            "http://localhost:9/atservicesrest/",
            "http://LOCALHOST./atservicesrest/",
        ] {
            assert!(Zone::from_rest_base(good).is_ok(), "{good}");
            assert!(check_zone_url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://webservices5.autotask.net/atservicesrest/",
            "http://10.0.0.1/atservicesrest/",
            "http://[::2]/atservicesrest/",
            "http://localhost.example.com/atservicesrest/",
            "http://128.0.0.1/atservicesrest/",
        ] {
            let why = Zone::from_rest_base(bad).expect_err(bad);
            assert!(why.contains("plain http") && why.contains("expected https"), "{why}");
            assert!(why.contains(bad.trim_end_matches('/')), "names the URL: {why}");
            assert!(check_zone_url(bad).is_err(), "{bad}");
        }
        assert!(check_zone_url("ftp://x/").is_err_and(|w| w.contains("expected https")));
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
    fn a_zone_answered_with_a_version_still_gets_v1_0_only() {
        for answered in [
            "https://webservices3.autotask.net/atservicesrest/V2.0/",
            "https://webservices3.autotask.net/atservicesrest/v2.0",
            "https://webservices3.autotask.net/atservicesrest/V1.0/",
            "https://webservices3.autotask.net/atservicesrest/",
        ] {
            let zone = Zone::from_rest_base(answered).unwrap();
            assert_eq!(zone.rest, "https://webservices3.autotask.net/atservicesrest/", "{answered}");
        }
        let zone = Zone::from_rest_base("https://ws.example/api/v2beta/").unwrap();
        assert_eq!(zone.rest, "https://ws.example/api/v2beta/", "only a version segment is taken off");
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
}
