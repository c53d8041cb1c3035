//! Fuzzes the reading of snapd's replies through the real client: `snapd::Client` and
//! `Snapctl` run over a transport that answers every request with the fuzzed reply, so the
//! envelope decoder (`snapd::envelope::decode`), the typed results (`into_sync` into
//! `SystemInfo`, `Snap`, `Change`, `Connections`, warnings, headers), change ids, the
//! assertion-text path and snapctl's reply mapping all see it. Nothing may panic, and every
//! error must display as text.
//!
//! Input: byte 0 picks the call, byte 1 the HTTP status, byte 2 the content type and the
//! assertions count; the rest is the body.
#![no_main]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use pocketses::remodel::view;
use pocketses::snapd::conf::{ConfigSource, Via};
use pocketses::snapd::snapctl::Snapctl;
use pocketses::snapd::{ChangeSelect, Client, Error, Request, Response, Transport};

const STATUSES: [u16; 10] = [200, 202, 400, 401, 403, 404, 409, 500, 503, 0];
const CONTENT_TYPES: [Option<&str>; 4] = [
    Some("application/json"),
    Some("application/x.ubuntu.assertion"),
    Some("application/x.ubuntu.assertion; bundle=y"),
    None,
];

struct Canned(Response);

impl Transport for Canned {
    fn round_trip(
        &self,
        _req: Request,
    ) -> Pin<Box<dyn Future<Output = Result<Response, Error>> + Send + '_>> {
        let res = self.0.clone();
        Box::pin(async move { Ok(res) })
    }

    fn describe(&self) -> String {
        "fuzz".to_string()
    }
}

fn shown<T>(res: Result<T, Error>) -> Option<T> {
    match res {
        Ok(v) => Some(v),
        Err(err) => {
            let _ = (err.to_string(), err.kind(), err.status(), err.is_retryable());
            None
        }
    }
}

async fn call(pick: u8, client: Client) {
    match pick % 20 {
        0 => {
            let _ = shown(client.system_info().await);
        }
        1 => {
            let _ = shown(client.snaps().await);
        }
        2 => {
            let _ = shown(client.snap("pocketses").await);
        }
        3 => {
            let _ = shown(client.get_conf("pocketses", &[]).await);
        }
        4 => {
            let _ = shown(client.get_conf("pocketses", &["interval", "http.port"]).await);
        }
        5 => {
            let _ = shown(client.set_conf("pocketses", &serde_json::Map::new()).await);
        }
        6 => {
            let _ = shown(client.model().await);
        }
        7 => {
            let _ = shown(client.serial().await);
        }
        8 => {
            let _ = shown(client.model_headers(pick & 0x80 != 0).await);
        }
        9 => {
            for change in shown(client.changes(ChangeSelect::All, None).await).unwrap_or_default() {
                let _ = (view::outcome(&change), view::render_outcome(&change));
            }
        }
        10 | 11 => {
            if let Some(change) = shown(client.change("1").await) {
                for event in view::diff(None, &change) {
                    let _ = view::render_line(&event);
                }
                let _ = view::render_outcome(&change);
            }
        }
        12 => {
            let _ = shown(client.abort_change("1").await);
        }
        13 => {
            let _ = shown(client.is_connected("pocketses", "snapd-control").await);
        }
        14 => {
            let _ = shown(client.assertions("model", &[("series", "16")]).await);
        }
        15 => {
            let _ = shown(client.warnings(pick & 0x80 != 0).await);
        }
        16 => {
            let _ = shown(client.post_model("type: model\n", false).await);
        }
        17 => {
            let ctl = Snapctl::new(client, "fuzz");
            let _ = shown(ctl.get(&["interval"]).await);
            let _ = shown(ctl.model().await);
            let _ = shown(ctl.system_mode().await);
            let _ = shown(ctl.services().await);
        }
        18 => {
            let source = ConfigSource::new(client.clone(), Some(Snapctl::new(client, "fuzz")));
            let _ = shown(source.detect().await);
            let _ = shown(source.document(Via::Snapctl).await);
            let _ = shown(source.document(Via::Rest).await);
        }
        _ => {
            if let Some(env) = shown(client.call(Request::get("/v2/x")).await) {
                let _ = shown(env.into_change_id());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [pick, status, kind, body @ ..] = data else { return };
    let response = Response {
        status: STATUSES[usize::from(*status) % STATUSES.len()],
        content_type: CONTENT_TYPES[usize::from(*kind) % CONTENT_TYPES.len()].map(str::to_string),
        assertions_count: (kind & 0x80 != 0).then_some(usize::from(*kind & 0x7f)),
        body: body.to_vec(),
    };
    let client = Client::new(Arc::new(Canned(response)));
    RUNTIME.with(|runtime| runtime.block_on(call(*pick, client)));
});

thread_local! {
    // One runtime for all inputs: building one per input would dominate the time.
    static RUNTIME: tokio::runtime::Runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => panic!("cannot start a runtime: {err}"),
    };
}
