//! Who is on the other end of a request: the client's address, whether it used https, and the host
//! it asked for. `X-Forwarded-For`, `-Proto` and `-Host` are believed only from a peer listed in
//! `server.trusted_proxies`; from anyone else they are ignored, so a client cannot pick its own
//! throttle key, turn on `Secure` cookies or pass the same-origin check with a header of its choice.
//! Every reader of these (throttle, log, cookies, HSTS, origin check, webhook URL) asks here.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use ipnet::IpNet;

use crate::service::AppState;

/// The application state every handler runs with.
pub(crate) fn state(req: &HttpRequest) -> &AppState {
    req.app_data::<actix_web::web::Data<AppState>>()
        .expect("AppState is registered by app::start")
        .get_ref()
}

/// One year, the value browsers' preload rules ask for.
const HSTS: &str = "max-age=31536000";

/// The client as the appliance should see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Client {
    /// The real client's address; `None` only when the connection has no peer address (tests).
    pub addr: Option<IpAddr>,
    /// The client reached us over https (directly with built-in TLS, or through a trusted proxy).
    pub https: bool,
    /// The host the client asked for (`Host`, or a trusted proxy's `X-Forwarded-Host`).
    pub host: String,
}

impl Client {
    pub(crate) fn of(req: &HttpRequest) -> Client {
        let proxies = &state(req).trusted_proxies;
        let peer = req.peer_addr().map(|a| a.ip());
        let direct = Client {
            addr: peer,
            https: req.app_config().secure(),
            host: own_host(req),
        };
        match peer {
            Some(ip) if trusted(proxies, ip) => forwarded(req, proxies, direct),
            _ => direct,
        }
    }

    /// The scheme the client used.
    pub(crate) fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }
}

/// Whether cookies get `Secure` and responses HSTS: the client came over https, or
/// `server.public_url` says the appliance is reached over https.
pub(crate) fn secure(req: &HttpRequest) -> bool {
    let state = state(req);
    state.config.server.public_url.starts_with("https://") || Client::of(req).https
}

/// Adds `Strict-Transport-Security` to every response of a secure request.
pub(crate) async fn hsts(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let secure = secure(req.request());
    let mut response = next.call(req).await?;
    if secure {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    Ok(response)
}

fn trusted(proxies: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    proxies.iter().any(|net| net.contains(&ip))
}

/// An IPv4 peer on a dual-stack socket arrives as `::ffff:a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

fn own_host(req: &HttpRequest) -> String {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()))
        .unwrap_or_else(|| req.app_config().host().to_owned())
}

/// What a trusted proxy says. The client is the right-most address of `X-Forwarded-For` that is
/// not itself a trusted proxy (entries left of it could be forged by the client).
fn forwarded(req: &HttpRequest, proxies: &[IpNet], direct: Client) -> Client {
    let headers = req.headers();
    let text = |name: &str| -> Option<String> {
        let values: Vec<&str> = headers
            .get_all(name)
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    };
    let mut addr = direct.addr;
    if let Some(chain) = text("x-forwarded-for") {
        for hop in chain.rsplit(',').map(str::trim) {
            let Ok(ip) = hop.parse::<IpAddr>() else {
                // A hop we cannot read ends what can be believed.
                break;
            };
            addr = Some(canonical(ip));
            if !trusted(proxies, ip) {
                break;
            }
        }
    }
    let first = |list: String| list.split(',').next().unwrap_or_default().trim().to_owned();
    let https = text("x-forwarded-proto")
        .map(first)
        .map_or(direct.https, |p| p.eq_ignore_ascii_case("https"));
    let host = text("x-forwarded-host")
        .map(first)
        .filter(|h| !h.is_empty())
        .unwrap_or(direct.host);
    Client { addr, https, host }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_mapped_peers_match_ipv4_networks() {
        let nets: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(trusted(&nets, "::ffff:10.1.2.3".parse().unwrap()));
        assert!(!trusted(&nets, "11.1.2.3".parse().unwrap()));
    }
}
