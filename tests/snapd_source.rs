//! The daemon's configuration service reading the fake snapd over REST or snapctl.

mod support;

use std::sync::Arc;

use pocketses::config::{self, Config, Settings, Source};
use pocketses::control::{ConfigService, Handler, LoadError, Request};
use pocketses::control::{ConfigValue, Via};
use pocketses::snapd::conf::ConfigSource;
use pocketses::snapd::snapctl::Snapctl;
use pocketses::snapd::socket::UnixTransport;
use pocketses::snapd::Client;
use serde_json::json;
use support::fake_snapd::{ErrorReply, FakeSnapd, COOKIE};

fn service(
    fake: &FakeSnapd,
    flags: Settings,
) -> (ConfigService, tokio::sync::watch::Receiver<Config>) {
    let loaded = config::load(&serde_json::Value::Null, &flags).expect("valid flags");
    let rest = Client::new(Arc::new(UnixTransport::new(fake.snapd_socket())));
    let ctl =
        Snapctl::new(Client::new(Arc::new(UnixTransport::new(fake.snapctl_socket()))), COOKIE);
    let (tx, rx) = tokio::sync::watch::channel(Config::default());
    (ConfigService::new(ConfigSource::new(rest, Some(ctl)), flags, loaded, tx), rx)
}

#[tokio::test]
async fn without_snapd_control_it_uses_snapctl() {
    let fake = FakeSnapd::start();
    fake.set_conf(json!({"interval": 42, "colour": "red"}));
    let (service, rx) = service(&fake, Settings::new());
    service.load().await.unwrap();
    assert_eq!(rx.borrow().interval, 42);
    assert_eq!(service.state().config_via, Some(Via::Snapctl));
    // snapctl only sees the keys pocketses asks for, so the unknown key is not listed.
    assert!(service.loaded().unknown.is_empty());
    assert!(fake.requests().iter().all(|r| r.socket == "snapctl"));
}

#[tokio::test]
async fn with_snapd_control_it_reads_the_whole_document_over_rest() {
    let fake = FakeSnapd::start();
    fake.connect("snapd-control", true);
    fake.set_conf(json!({"interval": 42, "colour": "red"}));
    let (service, rx) = service(&fake, vec![("port".to_string(), json!(1234))]);
    service.load().await.unwrap();
    assert_eq!(rx.borrow().interval, 42);
    assert_eq!(rx.borrow().port, 1234, "flags win over snapd");
    let state = service.state();
    assert_eq!(state.config_via, Some(Via::Rest));
    let port = state.config.iter().find(|v| v.key == "port").unwrap();
    assert_eq!(*port, ConfigValue { key: "port".into(), value: json!(1234), source: Source::Flag });
    assert_eq!(state.unknown_keys, ["colour"]);
}

#[tokio::test]
async fn rest_refused_falls_back_to_snapctl() {
    let fake = FakeSnapd::start();
    fake.connect("snapd-control", true);
    fake.fail(
        "GET",
        "/v2/snaps/pocketses/conf",
        ErrorReply::new(403, Some("login-required"), "access denied"),
    );
    fake.set_conf(json!({"interval": 7}));
    let (service, rx) = service(&fake, Settings::new());
    service.load().await.unwrap();
    assert_eq!(rx.borrow().interval, 7);
    assert_eq!(service.state().config_via, Some(Via::Snapctl));
}

#[tokio::test]
async fn invalid_stored_configuration_keeps_the_current_one() {
    let fake = FakeSnapd::start();
    fake.set_conf(json!({"interval": 0}));
    let (service, rx) = service(&fake, Settings::new());
    let err = service.load().await.unwrap_err();
    assert!(matches!(err, LoadError::Invalid(_)), "{err:?}");
    assert_eq!(rx.borrow().interval, 60);
}

#[tokio::test]
async fn source_and_reload_requests() {
    let fake = FakeSnapd::start();
    fake.set_conf(json!({"interval": 9}));
    let (service, rx) = service(&fake, Settings::new());
    let state = service.handle(Request::Source { snapd_control: Some(true) }).await.unwrap();
    assert_eq!(state["config-via"], "rest");
    service.handle(Request::Reload { config: None }).await.unwrap();
    assert_eq!(rx.borrow().interval, 9);
    assert!(fake.requests().iter().any(|r| r.path == "/v2/snaps/pocketses/conf"));
    let state = service.handle(Request::Source { snapd_control: None }).await.unwrap();
    assert_eq!(state["config-via"], "snapctl", "detected: snapd-control is not connected");
    let err =
        service.handle(Request::Reload { config: Some(json!({"port": "x"})) }).await.unwrap_err();
    assert_eq!(
        err,
        r#"cannot set "port": must be a TCP port from 1 to 65535, or 0 for any free port, not "x""#
    );
}
