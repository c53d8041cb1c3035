//! Fuzzes what is ours in HTTP request handling: hyper parses the request line and headers,
//! then `publish::http::route` maps the method and the URI's path to a route, and a 404 or
//! 405 echoes the path or method into a JSON error body. Whatever the bytes hyper lets
//! through, routing and the error body never panic, and the body stays valid JSON.
//!
//! Input: the method's bytes, a space, the request target (as `http::Uri` parses it).
#![no_main]

use hyper::{Method, Uri};
use libfuzzer_sys::fuzz_target;
use pocketses::publish::http::{error_body, route, Route};

fuzz_target!(|data: &[u8]| {
    let (method, target) = match data.iter().position(|&b| b == b' ') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b"GET"[..], data),
    };
    let Ok(method) = Method::from_bytes(method) else { return };
    let Ok(uri) = Uri::try_from(target) else { return };
    let found = route(&method, uri.path());
    let message = match found {
        Route::NotFound => format!("no such endpoint: {}", uri.path()),
        Route::MethodNotAllowed => format!("method not allowed: {method}"),
        _ => return,
    };
    let body = error_body(&message);
    let parsed: serde_json::Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(err) => panic!("error body is not JSON: {err}: {body:?}"),
    };
    assert_eq!(parsed["error"].as_str(), Some(message.as_str()), "{body}");
});
