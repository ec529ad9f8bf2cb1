//! Who may talk to the relay: the `Host` every request names, and the Origin and token a WebSocket
//! carries before it becomes a session.
//!
//! A page's own origin is derived from `Host`, so `Host` is checked first, on every request: a DNS-rebinding
//! site (its own name, pointed at the relay's address) sends `Host: evil.example` and
//! `Origin: http://evil.example`, which look like a page's own. Only names the relay is known by pass:
//! IP literals (a browser that names an address has that address as its origin, no rebinding there),
//! `localhost` and its subdomains, `--public-host` and `--allow-host`.

use axum::http::header::{HOST, ORIGIN};
use axum::http::HeaderMap;

use crate::policy::PeerName;
use crate::Config;

/// Whether a request's `Host` names the relay; the reason, worded for the client, if not.
pub fn check_host(headers: &HeaderMap, config: &Config) -> Result<(), String> {
    let Some(value) = headers.get(HOST) else {
        // HTTP/1.0 without Host: nothing to rebind; hyper refuses HTTP/1.1 without one itself.
        return Ok(());
    };
    let host = value.to_str().unwrap_or("");
    let name = host_name(host);
    let known = name.parse::<std::net::IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || name.to_ascii_lowercase().ends_with(".localhost")
        || config
            .public_host
            .iter()
            .chain(&config.allow_hosts)
            .any(|allowed| host_name(allowed).eq_ignore_ascii_case(name));
    if known && !name.is_empty() {
        return Ok(());
    }
    let shown = PeerName(host);
    tracing::info!(host = %shown, "request for an unknown host name refused");
    Err(format!(
        "this relay is not known as \"{shown}\" (see --allow-host)\n"
    ))
}

/// The name in a `Host` value: without its port, an IPv6 address without its brackets.
fn host_name(host: &str) -> &str {
    let host = host.trim().trim_end_matches('.');
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(ip, _)| ip);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
            name.trim_end_matches('.')
        }
        _ => host,
    }
}

/// A browser always sends Origin on a WebSocket upgrade: it must be the page's own origin (same host as
/// the request, which [`check_host`] vouched for) or one the operator allowed. A request without Origin
/// is not from a browser page, so no other site's page can be riding on it; it is let in (the native
/// client and benchmarks send none) unless the operator asked for `--require-origin`.
pub fn check_origin(headers: &HeaderMap, config: &Config) -> Result<(), String> {
    let Some(origin) = headers.get(ORIGIN) else {
        if config.require_origin {
            return Err("this relay opens sessions for browser pages only (no Origin)\n".into());
        }
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let own = !host.is_empty()
        && (origin == format!("http://{host}") || origin == format!("https://{host}"));
    if own
        || config
            .allow_origins
            .iter()
            .any(|a| a.trim_end_matches('/') == origin)
    {
        Ok(())
    } else {
        let shown = PeerName(origin);
        tracing::info!(origin = %shown, "WebSocket from a foreign origin refused");
        Err(format!(
            "origin \"{shown}\" may not open a session here (see --allow-origin)\n"
        ))
    }
}

/// Whether the upgrade's query carries the operator's access token, when there is one. Compared in time
/// that does not depend on where the first wrong byte is.
pub fn check_token(query: Option<&str>, config: &Config) -> Result<(), String> {
    let Some(expected) = &config.access_token else {
        return Ok(());
    };
    let given = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .unwrap_or("");
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err("this relay needs an access token: open the page with ?token=... as your teacher or operator gave it\n".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(flags: &[&str]) -> Config {
        Config::with_flags(flags)
    }

    fn host(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, value.parse().unwrap());
        headers
    }

    #[test]
    fn only_names_the_relay_is_known_by_pass() {
        let plain = config(&[]);
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "[::1]:8080",
            "192.0.2.7:80",
            "localhost:8080",
            "LOCALHOST",
            "app.localhost:8080",
            "localhost.",
        ] {
            assert!(check_host(&host(ok), &plain).is_ok(), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "soket.example",
            "",
        ] {
            let why = check_host(&host(refused), &plain).unwrap_err();
            assert!(why.contains("--allow-host"), "{refused}: {why}");
        }
        let public = config(&[
            "--public-host",
            "soket.example",
            "--allow-host",
            "kelas.example",
        ]);
        for ok in ["soket.example", "Soket.Example:443", "kelas.example:8080"] {
            assert!(check_host(&host(ok), &public).is_ok(), "{ok}");
        }
        assert!(check_host(&host("evil.example"), &public).is_err());
        assert!(check_host(&HeaderMap::new(), &plain).is_ok(), "HTTP/1.0");
    }

    #[test]
    fn an_unknown_host_is_shown_without_its_control_characters() {
        let mut headers = HeaderMap::new();
        headers.insert(
            HOST,
            axum::http::HeaderValue::from_bytes(b"evil\texample").unwrap(),
        );
        let why = check_host(&headers, &config(&[])).unwrap_err();
        assert!(why.contains("evil\\texample"), "{why}");
    }

    #[test]
    fn an_origin_is_required_only_when_the_operator_asks() {
        let headers = host("127.0.0.1:8080");
        assert!(check_origin(&headers, &config(&[])).is_ok());
        let why = check_origin(&headers, &config(&["--require-origin"])).unwrap_err();
        assert!(why.contains("browser pages only"), "{why}");
        let mut page = headers.clone();
        page.insert(ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(check_origin(&page, &config(&["--require-origin"])).is_ok());
    }

    #[test]
    fn the_token_must_match_exactly() {
        let none = config(&[]);
        assert!(check_token(None, &none).is_ok());
        let locked = config(&["--access-token", "kopi-42"]);
        assert!(check_token(Some("token=kopi-42"), &locked).is_ok());
        assert!(check_token(Some("x=1&token=kopi-42"), &locked).is_ok());
        for wrong in [
            None,
            Some(""),
            Some("token=kopi-4"),
            Some("token=kopi-421"),
            Some("token=KOPI-42"),
        ] {
            let why = check_token(wrong, &locked).unwrap_err();
            assert!(why.contains("access token"), "{wrong:?}: {why}");
        }
    }
}
