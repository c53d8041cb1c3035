//! `POST /v1/ingest`: `pocketses.metrics/v1` documents from spokes' `json` sinks, one per line,
//! forwarded through this daemon's push sinks. \[io\] for the body; the decisions
//! ([`check_head`], [`accept`]) are pure.
//!
//! The HTTP listener has already checked the credentials (`http.token`, `http.users.*`) when
//! they are set. The answers follow what the sinks of `push::policy` expect of a store:
//!
//! | request | answer |
//! |---|---|
//! | documents on disk in every running sink's spool | 200 `{"documents":N}` |
//! | `hub.ingest` is false | 404 |
//! | not POST | 405, `Allow: POST` |
//! | a `Content-Type` other than JSON or ndjson, any `Content-Encoding` | 415 |
//! | more than [`BODY_MAX`] bytes | 413 (a sink sends its batch in halves) |
//! | a line that is not a document | 400 naming the line and why (a sink moves the batch to `rejected/`) |
//! | no push sink is running to forward them ([`check_sinks`]) | 503 saying why, without `Retry-After` (the spoke backs off and keeps its data) |
//! | a sink cannot spool them (a failed append or sync, a feed full for `FORWARD_WAIT`) | 503 saying why, without `Retry-After` |
//! | the sinks do not have them on disk within [`FORWARD_WITHIN`] | 503, `Retry-After: 1` |
//!
//! A request is taken whole or not at all, so a sink that retries sends no duplicate. The 200
//! comes only after every running sink's appender appended and synced the documents
//! (`super::forward_stored`): the spoke drops them from its spool on that 200, so a hub that
//! crashes after it must still have them.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};

use super::document;
use super::spoke::TAG;
use super::{Figures, Forwarded, Sinks, Unstored};

/// The largest request body taken: a json sink's default batch of 60 snapshots is about 250 KB.
pub const BODY_MAX: usize = 8 << 20;
/// How long the sinks may take to have a request's snapshots on disk before the spoke is asked
/// to retry.
pub const FORWARD_WITHIN: Duration = Duration::from_secs(10);

/// What to answer. `body` is JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Status code.
    pub status: StatusCode,
    /// `{"documents":N}` or `{"error":"…"}`.
    pub body: String,
    /// Add `Allow: POST` (405).
    pub allow_post: bool,
    /// Add `Retry-After: 1` (503).
    pub retry: bool,
}

impl Answer {
    fn error(status: StatusCode, message: &str) -> Answer {
        Answer {
            status,
            body: crate::publish::http::error_body(message),
            allow_post: status == StatusCode::METHOD_NOT_ALLOWED,
            retry: status == StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Whether the request's head can be taken: ingest on, POST, JSON, not compressed, not too
/// large. \[pure\]
///
/// # Errors
/// The answer that refuses it.
pub fn check_head(
    enabled: bool,
    method: &Method,
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    content_length: Option<u64>,
) -> Result<(), Answer> {
    if !enabled {
        return Err(Answer::error(
            StatusCode::NOT_FOUND,
            "no such endpoint: /v1/ingest (hub.ingest is false)",
        ));
    }
    if method != Method::POST {
        return Err(Answer::error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method not allowed: {method} (POST documents to /v1/ingest)"),
        ));
    }
    let media = content_type.map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if let Some(media) = media.filter(|m| !m.is_empty()) {
        if !matches!(media.as_str(), "application/json" | "application/x-ndjson") {
            return Err(Answer::error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!(
                    "cannot take {media}: send pocketses.metrics/v1 documents as application/x-ndjson or application/json"
                ),
            ));
        }
    }
    if let Some(encoding) = content_encoding.filter(|e| !e.trim().eq_ignore_ascii_case("identity"))
    {
        return Err(Answer::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("cannot take Content-Encoding {encoding}: send the documents uncompressed"),
        ));
    }
    if content_length.is_some_and(|n| n > BODY_MAX as u64) {
        return Err(too_large());
    }
    Ok(())
}

/// Whether there is a push sink to forward documents to: taking them with none running would
/// answer 200 and drop them. \[pure\]
///
/// # Errors
/// 503 saying why, without `Retry-After`: a sink that is not configured does not come back in
/// a second, so the spoke's sink backs off and keeps the documents in its spool.
pub fn check_sinks(sinks: Sinks) -> Result<(), Answer> {
    let why = match sinks {
        Sinks { running: 1.., .. } => return Ok(()),
        Sinks { configured: 0, .. } => {
            "cannot forward documents: no push sink is configured on this hub (push.NAME.url)"
        }
        Sinks { .. } => {
            "cannot forward documents: no push sink is running on this hub (see pocketses status)"
        }
    };
    Err(Answer { retry: false, ..Answer::error(StatusCode::SERVICE_UNAVAILABLE, why) })
}

fn too_large() -> Answer {
    Answer::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("cannot take more than {BODY_MAX} bytes in one request"),
    )
}

/// The snapshots of a request body, each tagged `spoke=HOSTNAME` (or `spoke=unknown` when the
/// document has no host name) on top of the document's own tags. \[pure\]
///
/// # Errors
/// 400 naming the first line that is not a document, or when there is none.
pub fn accept(body: &[u8]) -> Result<Vec<Forwarded>, Answer> {
    let docs = document::parse_lines(body).map_err(|err| {
        Answer::error(StatusCode::BAD_REQUEST, &format!("cannot read documents: {err}"))
    })?;
    if docs.is_empty() {
        return Err(Answer::error(StatusCode::BAD_REQUEST, "cannot read documents: none sent"));
    }
    Ok(docs
        .into_iter()
        .map(|doc| {
            let mut tags = doc.tags;
            tags.retain(|(k, _)| k != TAG);
            let host = if doc.snapshot.hostname.is_empty() {
                "unknown".to_string()
            } else {
                doc.snapshot.hostname.clone()
            };
            tags.push((TAG.to_string(), host));
            Forwarded { snapshot: Arc::new(doc.snapshot), tags, receipt: None }
        })
        .collect())
}

/// Answers one request (its credentials already checked).
pub async fn handle(req: Request<Incoming>, figures: Option<&Figures>) -> Answer {
    let answer = take(req, figures).await;
    if let Some(figures) = figures {
        match &answer {
            Ok(n) => figures.count_ingest(*n, 0),
            Err(_) => figures.count_ingest(0, 1),
        }
    }
    match answer {
        Ok(n) => Answer { status: StatusCode::OK, body: taken(n), allow_post: false, retry: false },
        Err(refusal) => refusal,
    }
}

async fn take(req: Request<Incoming>, figures: Option<&Figures>) -> Result<u64, Answer> {
    let enabled = figures.is_some_and(|f| f.ingest().enabled);
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let length = header(CONTENT_LENGTH).and_then(|v| v.trim().parse::<u64>().ok());
    check_head(enabled, req.method(), header(CONTENT_TYPE), header(CONTENT_ENCODING), length)?;
    let forward = figures.and_then(Figures::forward).ok_or_else(|| {
        Answer::error(StatusCode::SERVICE_UNAVAILABLE, "the push sinks are not running")
    })?;
    check_sinks(figures.map(Figures::sinks).unwrap_or_default())?;
    let body = Limited::new(req.into_body(), BODY_MAX).collect().await.map_err(|err| {
        if err.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            too_large()
        } else {
            Answer::error(StatusCode::BAD_REQUEST, &format!("cannot read the request: {err}"))
        }
    })?;
    let items = accept(&body.to_bytes())?;
    store(&forward, items, FORWARD_WITHIN).await
}

/// Hands a request's snapshots to the sinks and answers only once every running sink has them
/// on disk (appended and synced, `super::forward_stored`): a 200 means that a crash of this hub
/// loses none of them, so the spoke may drop them from its own spool.
async fn store(
    forward: &tokio::sync::mpsc::Sender<Forwarded>,
    items: Vec<Forwarded>,
    within: Duration,
) -> Result<u64, Answer> {
    let n = items.len() as u64;
    super::forward_stored(forward, items, within).await.map(|()| n).map_err(unstored)
}

/// The answer when a request's snapshots are not known to be on disk: 503 either way, so the
/// spoke keeps them and sends them again (a sink that did store them gets them twice, which the
/// stores take as the same points). \[pure\]
pub fn unstored(why: Unstored) -> Answer {
    match why {
        // A failed append (a full disk, an I/O error) does not mend in a second: no
        // `Retry-After`, the spoke's sink backs off.
        Unstored::Failed(why) => Answer {
            retry: false,
            ..Answer::error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("cannot forward documents: {why}"),
            )
        },
        Unstored::Late => Answer::error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "cannot forward documents: the push sinks did not spool them within {} s; retry",
                FORWARD_WITHIN.as_secs()
            ),
        ),
    }
}

/// The body of a 200. \[pure\]
pub fn taken(n: u64) -> String {
    serde_json::json!({ "documents": n }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::encode::json;
    use crate::metrics::Snapshot;

    #[test]
    fn heads_are_refused_with_the_status_a_sink_understands() {
        let post = Method::POST;
        let ok = check_head(true, &post, Some("application/x-ndjson"), None, Some(10));
        assert_eq!(ok, Ok(()));
        assert!(check_head(true, &post, None, None, None).is_ok());
        assert!(check_head(
            true,
            &post,
            Some("application/json; charset=utf-8"),
            Some("identity"),
            None
        )
        .is_ok());
        let table = [
            (false, Method::POST, None, None, None, 404, "no such endpoint: /v1/ingest (hub.ingest is false)"),
            (true, Method::GET, None, None, None, 405, "method not allowed: GET (POST documents to /v1/ingest)"),
            (true, Method::POST, Some("text/plain"), None, None, 415, "cannot take text/plain: send pocketses.metrics/v1 documents as application/x-ndjson or application/json"),
            (true, Method::POST, None, Some("gzip"), None, 415, "cannot take Content-Encoding gzip: send the documents uncompressed"),
            (true, Method::POST, None, None, Some(BODY_MAX as u64 + 1), 413, "cannot take more than 8388608 bytes in one request"),
        ];
        for (enabled, method, ctype, encoding, length, status, message) in table {
            let answer = check_head(enabled, &method, ctype, encoding, length).unwrap_err();
            assert_eq!(answer.status.as_u16(), status, "{message}");
            assert_eq!(answer.body, crate::publish::http::error_body(message));
            assert_eq!(answer.allow_post, status == 405);
        }
    }

    #[test]
    fn documents_are_refused_while_no_sink_would_take_them() {
        let none = check_sinks(Sinks { configured: 0, running: 0 }).unwrap_err();
        assert_eq!(none.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!none.retry, "no Retry-After: the spoke backs off");
        assert_eq!(
            none.body,
            crate::publish::http::error_body(
                "cannot forward documents: no push sink is configured on this hub (push.NAME.url)"
            )
        );
        let failing = check_sinks(Sinks { configured: 2, running: 0 }).unwrap_err();
        assert!(failing.body.contains("no push sink is running on this hub"), "{}", failing.body);
        assert_eq!(check_sinks(Sinks { configured: 2, running: 1 }), Ok(()));
    }

    #[test]
    fn documents_are_tagged_with_their_host() {
        let a = json::encode(&Snapshot {
            timestamp: 1.0,
            hostname: "dev1".into(),
            ..Snapshot::default()
        });
        let b = json::encode(&Snapshot { timestamp: 2.0, ..Snapshot::default() });
        let b =
            format!("{},\"tags\":{{\"spoke\":\"forged\",\"site\":\"lab\"}}}}", &b[..b.len() - 1]);
        let items = accept(format!("{a}\n{b}\n").as_bytes()).unwrap();
        assert_eq!(items[0].tags, vec![("spoke".to_string(), "dev1".to_string())]);
        assert_eq!(
            items[1].tags,
            vec![
                ("site".to_string(), "lab".to_string()),
                ("spoke".to_string(), "unknown".to_string())
            ]
        );
        assert_eq!(items[1].snapshot.timestamp.round(), 2.0);
    }

    /// Two documents, as a spoke's json sink sends them.
    fn two_documents() -> Vec<Forwarded> {
        let doc = |t: f64| json::encode(&Snapshot { timestamp: t, ..Snapshot::default() });
        accept(format!("{}\n{}\n", doc(1.0), doc(2.0)).as_bytes()).unwrap()
    }

    /// A sink loop that takes what is forwarded and does `settle` with each receipt.
    fn sinks(
        settle: fn(crate::hub::receipt::Receipt),
    ) -> (tokio::sync::mpsc::Sender<Forwarded>, tokio::task::JoinHandle<usize>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Forwarded>(16);
        let task = tokio::spawn(async move {
            let mut n = 0;
            while let Some(mut item) = rx.recv().await {
                n += 1;
                if let Some(receipt) = item.receipt.take() {
                    settle(receipt);
                }
            }
            n
        });
        (tx, task)
    }

    /// The documents reached the sinks' feeds, but no appender has synced them (a slow disk,
    /// a crash about to happen): no 200, which would let the spoke drop them.
    #[tokio::test]
    async fn documents_queued_but_not_synced_are_not_answered_200() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Forwarded>(16);
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some(item) = rx.recv().await {
                held.push(item);
            }
            held.len()
        });
        let answer = store(&tx, two_documents(), Duration::from_millis(50)).await.unwrap_err();
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(answer.retry, "Retry-After: the sinks are slow, not broken");
        assert_eq!(
            answer.body,
            crate::publish::http::error_body(
                "cannot forward documents: the push sinks did not spool them within 10 s; retry"
            )
        );
        drop(tx);
        assert_eq!(holder.await.unwrap(), 2, "both reached the sinks");
    }

    #[tokio::test]
    async fn documents_are_answered_200_once_every_copy_is_stored() {
        let (tx, task) = sinks(|receipt| receipt.stored());
        assert_eq!(store(&tx, two_documents(), FORWARD_WITHIN).await, Ok(2));
        drop(tx);
        assert_eq!(task.await.unwrap(), 2);
    }

    /// A sink could not append them (a full disk): 503 saying why, without `Retry-After`, so
    /// the spoke's sink keeps them and backs off.
    #[tokio::test]
    async fn documents_a_sink_cannot_spool_are_refused_with_its_reason() {
        let (tx, task) = sinks(|receipt| {
            receipt.failed(
                "cannot spool snapshot for push sink vm: cannot write /s/00000001.seg: no space left on device",
            )
        });
        let answer = store(&tx, two_documents(), FORWARD_WITHIN).await.unwrap_err();
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!answer.retry);
        assert_eq!(
            answer.body,
            crate::publish::http::error_body(
                "cannot forward documents: cannot spool snapshot for push sink vm: cannot write /s/00000001.seg: no space left on device"
            )
        );
        drop(tx);
        task.await.unwrap();
    }

    #[test]
    fn a_bad_line_refuses_the_whole_request() {
        let a = json::encode(&Snapshot { timestamp: 1.0, ..Snapshot::default() });
        let err = accept(format!("{a}\nnot json\n").as_bytes()).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(
            err.body.contains("cannot read documents: line 2: not a pocketses.metrics/v1 document"),
            "{}",
            err.body
        );
        let none = accept(b"\n\n").unwrap_err();
        assert_eq!(none.body, crate::publish::http::error_body("cannot read documents: none sent"));
        assert_eq!(taken(3), r#"{"documents":3}"#);
    }
}
