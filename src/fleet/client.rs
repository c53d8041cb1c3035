//! The DDI client: the HTTP exchanges of the hawkBit Direct Device Integration API over
//! [`crate::net::http`]. \[io\]; [`authorization`] and [`feedback_url`] are pure.
//!
//! - `GET {url}/{tenant}/controller/v1/{id}` ([`Ddi::poll`]), the `deploymentBase` and
//!   `cancelAction` links it names ([`Ddi::deployment`], [`Ddi::cancel_action`]);
//! - `PUT …/configData` ([`Ddi::config_data`]);
//! - `POST …/deploymentBase/{action}/feedback` and `…/cancelAction/{action}/feedback`
//!   ([`Ddi::feedback`], [`Ddi::cancel_feedback`]).
//!
//! Every request carries `Authorization: TargetToken …` (`fleet.token`) or `GatewayToken …`
//! (`fleet.gateway-token`) when one is set, but only to the origin of `fleet.url`: a link the
//! server names on another origin is fetched without it. Replies are read up to
//! [`REPLY_MAX`] and parsed by [`super::ddi`]; a non-2xx status is an error that says the
//! status and the start of the server's text.

use std::path::Path;
use std::time::Duration;

use hyper::header::HeaderValue;
use hyper::Uri;
use serde_json::Value;

use super::ddi;
use crate::config::FleetConfig;
use crate::net::http::{self, redact, Request, Tls};

/// The largest reply read from the DDI API (a deployment with many artifacts is a few KiB).
pub const REPLY_MAX: usize = 1024 * 1024;
/// Deadline of a whole DDI exchange (head and body).
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The `Authorization` value for the configured token, if any. \[pure\]
pub fn authorization(config: &FleetConfig) -> Option<String> {
    match (&config.token, &config.gateway_token) {
        (Some(t), _) => Some(format!("TargetToken {t}")),
        (None, Some(t)) => Some(format!("GatewayToken {t}")),
        (None, None) => None,
    }
}

/// Where the feedback of action `action` goes: `{base}/deploymentBase/{action}/feedback`
/// (hawkBit's documented path; gooseBit serves the same). \[pure\]
pub fn feedback_url(base: &str, kind: &str, action: &str) -> String {
    format!("{base}/{kind}/{action}/feedback")
}

/// A DDI client for one controller on one server.
#[derive(Clone)]
pub struct Ddi {
    http: http::Client,
    base: String,
    origin: Uri,
    auth: Option<HeaderValue>,
}

impl std::fmt::Debug for Ddi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ddi").field("base", &redact(&self.base)).finish()
    }
}

impl Ddi {
    /// A client for `config`'s server as controller `controller_id`; a relative `fleet.ca` is
    /// in `files_dir`.
    ///
    /// # Errors
    /// No `fleet.url`, a URL that does not parse, TLS roots that cannot be read, a token that
    /// cannot be a header.
    pub fn new(config: &FleetConfig, controller_id: &str, files_dir: &Path) -> Result<Ddi, String> {
        let url =
            config.url.as_deref().ok_or("cannot poll the fleet server: fleet.url is not set")?;
        let origin = http::parse_url(url).map_err(|e| e.to_string())?;
        let http = http::Client::new(Tls {
            ca: config.ca.as_deref(),
            files_dir,
            ca_key: "fleet.ca",
            https: origin.scheme_str() == Some("https"),
        })?;
        let auth = authorization(config)
            .map(|v| {
                HeaderValue::from_str(&v)
                    .map_err(|_| "cannot use fleet.token: not valid in a header".to_string())
            })
            .transpose()?;
        let base = ddi::base_url(url, &config.tenant, controller_id);
        http::parse_url(&base).map_err(|e| e.to_string())?;
        Ok(Ddi { http, base, origin, auth })
    }

    /// The controller base URL without secrets.
    pub fn base(&self) -> String {
        redact(&self.base)
    }

    /// The shared HTTP client (downloads use it too).
    pub fn http(&self) -> &http::Client {
        &self.http
    }

    /// The `Authorization` header for `uri`: the token, only on the server's own origin.
    pub fn auth_for(&self, uri: &Uri) -> Option<&HeaderValue> {
        self.auth.as_ref().filter(|_| http::same_origin(&self.origin, uri))
    }

    fn request(&self, req: Request) -> Request {
        match self.auth_for(req.uri()).cloned() {
            Some(auth) => req.authorization(&auth),
            None => req,
        }
    }

    async fn exchange(&self, what: &str, req: Request) -> Result<hyper::body::Bytes, String> {
        let url = redact(&req.uri().to_string());
        let req = self.request(req);
        let fail = |e: http::Error| format!("cannot {what} {url}: {e}");
        let work = async {
            let res = self.http.request(req).await.map_err(fail)?;
            if !res.is_success() {
                let status = res.status;
                let text = res.text(512).await;
                let text = text.trim();
                return Err(format!(
                    "cannot {what} {url}: the server answered {status}{}",
                    if text.is_empty() { String::new() } else { format!(" ({text})") }
                ));
            }
            res.bytes(REPLY_MAX, EXCHANGE_TIMEOUT).await.map_err(fail)
        };
        match tokio::time::timeout(EXCHANGE_TIMEOUT, work).await {
            Ok(res) => res,
            Err(_) => Err(fail(http::Error::Timeout(EXCHANGE_TIMEOUT))),
        }
    }

    fn uri(&self, url: &str) -> Result<Uri, String> {
        http::parse_url(url).map_err(|e| e.to_string())
    }

    /// Polls the controller base.
    ///
    /// # Errors
    /// No answer, a non-2xx status, or a reply that is not the base document.
    pub async fn poll(&self) -> Result<ddi::Base, String> {
        let body = self.exchange("poll", Request::get(self.uri(&self.base)?)).await?;
        ddi::parse_base(&body).map_err(|e| e.to_string())
    }

    /// Reads the deployment at `href` (the base's `deploymentBase` link).
    ///
    /// # Errors
    /// As [`Ddi::poll`].
    pub async fn deployment(&self, href: &str) -> Result<ddi::Deployment, String> {
        let body = self.exchange("read the deployment at", Request::get(self.uri(href)?)).await?;
        ddi::parse_deployment(&body).map_err(|e| e.to_string())
    }

    /// Reads the cancel action at `href`.
    ///
    /// # Errors
    /// As [`Ddi::poll`].
    pub async fn cancel_action(&self, href: &str) -> Result<ddi::Cancel, String> {
        let body =
            self.exchange("read the cancel action at", Request::get(self.uri(href)?)).await?;
        ddi::parse_cancel(&body).map_err(|e| e.to_string())
    }

    /// Sends the device's attributes (`PUT …/configData`, a [`ddi::config_data`] document).
    ///
    /// # Errors
    /// No answer or a non-2xx status.
    pub async fn config_data(&self, doc: &Value) -> Result<(), String> {
        let uri = self.uri(&format!("{}/configData", self.base))?;
        self.exchange("send configData to", Request::put(uri).json(doc)).await.map(drop)
    }

    /// Sends feedback on deployment `action` (a [`ddi::proceeding`] or [`ddi::closed`] document).
    ///
    /// # Errors
    /// No answer or a non-2xx status.
    pub async fn feedback(&self, action: &str, doc: &Value) -> Result<(), String> {
        let uri = self.uri(&feedback_url(&self.base, "deploymentBase", action))?;
        self.exchange("send feedback to", Request::post(uri).json(doc)).await.map(drop)
    }

    /// Answers cancel action `id` (a [`ddi::cancel_answer`] document).
    ///
    /// # Errors
    /// No answer or a non-2xx status.
    pub async fn cancel_feedback(&self, id: &str, doc: &Value) -> Result<(), String> {
        let uri = self.uri(&feedback_url(&self.base, "cancelAction", id))?;
        self.exchange("send feedback to", Request::post(uri).json(doc)).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> FleetConfig {
        FleetConfig {
            url: Some(url.into()),
            ca: None,
            tenant: "DEFAULT".into(),
            controller_id: None,
            token: None,
            gateway_token: None,
            trusted_keys: None,
            enabled: true,
        }
    }

    #[test]
    fn tokens_become_hawkbit_authorization() {
        let mut c = config("http://h");
        assert_eq!(authorization(&c), None);
        c.gateway_token = Some("g".into());
        assert_eq!(authorization(&c).as_deref(), Some("GatewayToken g"));
        c.token = Some("t".into());
        assert_eq!(authorization(&c).as_deref(), Some("TargetToken t"));
    }

    #[test]
    fn the_token_goes_only_to_the_servers_origin() {
        let mut c = config("https://fleet.example:8443/");
        c.token = Some("s3cret".into());
        let dir = tempfile::tempdir().unwrap();
        // https needs roots; a CA file keeps the test off the system's store.
        let ca = rcgen::generate_simple_self_signed(vec!["fleet.example".into()]).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
        c.ca = Some("ca.pem".into());
        let ddi = Ddi::new(&c, "dev-1", dir.path()).unwrap();
        assert_eq!(ddi.base(), "https://fleet.example:8443/DEFAULT/controller/v1/dev-1");
        let same: Uri =
            "https://fleet.example:8443/DEFAULT/controller/v1/dev-1/download".parse().unwrap();
        assert!(ddi.auth_for(&same).is_some());
        for other in
            ["https://cdn.example/x", "http://fleet.example:8443/x", "https://fleet.example/x"]
        {
            assert!(ddi.auth_for(&other.parse().unwrap()).is_none(), "{other}");
        }
        assert!(!format!("{ddi:?}").contains("s3cret"));
    }

    #[test]
    fn feedback_goes_under_the_action() {
        assert_eq!(
            feedback_url("http://h/DEFAULT/controller/v1/d", "deploymentBase", "3"),
            "http://h/DEFAULT/controller/v1/d/deploymentBase/3/feedback"
        );
    }

    #[tokio::test]
    async fn a_server_error_says_its_status_and_text() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf).await;
            let body = "{\"detail\":\"Not Found\"}";
            let reply =
                format!("HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            s.write_all(reply.as_bytes()).await.unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        let ddi = Ddi::new(&config(&url), "d", dir.path()).unwrap();
        let err = ddi.poll().await.unwrap_err();
        assert_eq!(
            err,
            format!("cannot poll {url}/DEFAULT/controller/v1/d: the server answered 404 ({{\"detail\":\"Not Found\"}})")
        );
    }
}
