use super::*;
use proptest::prelude::*;

#[test]
fn replies_captured_from_a_real_goosebit() {
    let base = include_bytes!("../../../tests/fixtures/fleet/goosebit-base-deployment.json");
    let base = parse_base(base).unwrap();
    assert_eq!(base.sleep, Some(Duration::from_secs(10)));
    assert_eq!(
        base.deployment.as_deref(),
        Some("http://127.0.0.1:58697/DEFAULT/controller/v1/pocketses-ci-1/deploymentBase/1")
    );
    let d = include_bytes!("../../../tests/fixtures/fleet/goosebit-deployment.json");
    let d = parse_deployment(d).unwrap();
    assert_eq!((d.id.as_str(), d.download, d.update), ("1", Handling::Forced, Handling::Forced));
    assert_eq!((d.chunks[0].part.as_str(), d.chunks[0].version.as_str()), ("os", "1.0.1"));
    let a = &d.chunks[0].artifacts[0];
    assert_eq!((a.filename.as_str(), a.size), ("good.swu", Some(1304)));
    assert_eq!(
        a.hashes.strongest(),
        Some((HashAlgo::Sha1, "0ae9a7d48f0863ae0c0e11d5a97794cc5498e8d3".to_owned()))
    );
    assert_eq!(
        a.url.as_deref(),
        Some("http://127.0.0.1:58697/DEFAULT/controller/v1/pocketses-ci-1/download")
    );
}

#[test]
fn goosebit_registration_reply() {
    let reply = br#"{"config":{"polling":{"sleep":"00:00:10"}},"_links":{"configData":{"href":"http://127.0.0.1:8000/DEFAULT/controller/v1/dev1/configData"}}}"#;
    let base = parse_base(reply).unwrap();
    assert_eq!(base.sleep, Some(Duration::from_secs(10)));
    assert_eq!(
        base.config_data.as_deref(),
        Some("http://127.0.0.1:8000/DEFAULT/controller/v1/dev1/configData")
    );
    assert_eq!(base.deployment, None);
}

#[test]
fn hawkbit_reply_with_every_link_and_unknown_fields() {
    let reply = br#"{"config":{"polling":{"sleep":"12:00:00","extra":1}},"future":[1,2],
        "_links":{"deploymentBase":{"href":"https://h/t/controller/v1/d/deploymentBase/5?c=-2"},
        "cancelAction":{"href":"https://h/t/controller/v1/d/cancelAction/6"},
        "installedBase":{"href":"x"}}}"#;
    let base = parse_base(reply).unwrap();
    assert_eq!(base.sleep, Some(Duration::from_secs(12 * 3600)));
    assert!(base.deployment.unwrap().ends_with("deploymentBase/5?c=-2"));
    assert!(base.cancel.unwrap().ends_with("cancelAction/6"));
}

#[test]
fn empty_and_odd_bases() {
    assert_eq!(parse_base(b"{}").unwrap(), Base::default());
    assert_eq!(
        parse_base(br#"{"config":{"polling":{"sleep":"soon"}},"_links":{"deploymentBase":{}}}"#)
            .unwrap(),
        Base::default()
    );
    let e = parse_base(b"<html>").unwrap_err().to_string();
    assert!(
        e.starts_with("cannot read the controller base from the fleet server: expected value"),
        "{e}"
    );
    assert!(parse_base(b"\"x\"").is_err());
}

#[test]
fn sleeps() {
    assert_eq!(parse_sleep("00:05:00"), Some(Duration::from_secs(300)));
    assert_eq!(parse_sleep("100:00:01"), Some(Duration::from_secs(360_001)));
    for bad in
        ["", "5", "00:60:00", "00:00:60", "a:b:c", "-1:00:00", "00:00", "1:2:3:4", "+1:00:00"]
    {
        assert_eq!(parse_sleep(bad), None, "{bad}");
    }
}

#[test]
fn polling_jitter_stays_within_ten_percent() {
    let ten = Some(Duration::from_secs(100));
    assert_eq!(next_poll(ten, false, 0.0), Duration::from_secs(90));
    assert_eq!(next_poll(ten, false, 0.5), Duration::from_secs(100));
    assert!(next_poll(ten, false, 0.999_999) <= Duration::from_secs(110));
    assert_eq!(next_poll(ten, true, 0.0), ACTIVE_POLL);
    assert_eq!(next_poll(Some(Duration::ZERO), false, 0.5), MIN_SLEEP);
    assert_eq!(next_poll(None, false, 0.5), DEFAULT_SLEEP);
    assert_eq!(next_poll(Some(Duration::from_secs(10 * 86_400)), false, 0.5), MAX_SLEEP);
    assert_eq!(next_poll(ten, false, f64::NAN).as_secs() / 10, 9, "NaN clamps low, never panics");
}

#[test]
fn goosebit_deployment() {
    let reply = br#"{"id":"3","deployment":{"download":"forced","update":"forced","chunks":[{"part":"os","version":"1","name":"b.swu","artifacts":[{"filename":"b.swu","hashes":{"sha1":"16B2475B8CB19EC0CCCDD3611E60C652BE056DAB"},"size":1248,"_links":{"download":{"href":"http://127.0.0.1:8000/DEFAULT/controller/v1/dev1/download"}}}]}]}}"#;
    let d = parse_deployment(reply).unwrap();
    assert_eq!(d.id, "3");
    assert_eq!((d.download, d.update, d.window), (Handling::Forced, Handling::Forced, None));
    let a = &d.chunks[0].artifacts[0];
    assert_eq!(a.filename, "b.swu");
    assert_eq!(a.size, Some(1248));
    assert_eq!(
        a.hashes.strongest(),
        Some((HashAlgo::Sha1, "16b2475b8cb19ec0cccdd3611e60c652be056dab".to_owned()))
    );
    assert!(a.url.as_deref().unwrap().ends_with("/download"));
    assert!(d.may_install());
}

#[test]
fn hawkbit_deployment_with_window_numbers_and_http_links() {
    let sha256 = "a".repeat(64);
    let reply = format!(
        r#"{{"id":17,"deployment":{{"download":"attempt","update":"skip","maintenanceWindow":"unavailable",
        "chunks":[{{"part":"bApp","artifacts":[{{"filename":"x","size":6000000000,
        "hashes":{{"sha1":"{}","md5":"{}","sha256":"{sha256}"}},
        "_links":{{"download-http":{{"href":"http://h/x"}},"md5sum-http":{{"href":"http://h/x.MD5SUM"}}}}}}]}}]}},
        "actionHistory":{{"status":"x","messages":[]}}}}"#,
        "b".repeat(40),
        "c".repeat(32)
    );
    let d = parse_deployment(reply.as_bytes()).unwrap();
    assert_eq!(d.id, "17");
    assert_eq!(d.window, Some(Window::Unavailable));
    assert!(!d.may_install());
    let a = &d.chunks[0].artifacts[0];
    assert_eq!(a.size, Some(6_000_000_000));
    assert_eq!(a.hashes.strongest(), Some((HashAlgo::Sha256, sha256)));
    assert_eq!(a.url.as_deref(), Some("http://h/x"));
}

#[test]
fn hashes_fall_back_and_ignore_malformed_ones() {
    let h = |sha256: Option<&str>, sha1: Option<&str>, md5: Option<&str>| Hashes {
        sha256: sha256.map(Into::into),
        sha1: sha1.map(Into::into),
        md5: md5.map(Into::into),
    };
    let md5 = "d".repeat(32);
    assert_eq!(h(Some("short"), Some("zz"), Some(&md5)).strongest(), Some((HashAlgo::Md5, md5)));
    assert_eq!(h(None, None, None).strongest(), None);
}

#[test]
fn deployment_refusals() {
    for (reply, want) in [
        (&br#"{"deployment":{}}"#[..], "cannot read the deployment from the fleet server: no action id"),
        (br#"{"id":"1"}"#, "cannot read the deployment from the fleet server: no deployment"),
        (br#"null"#, "cannot read the deployment from the fleet server: invalid type: null, expected struct RawDeploymentBase at line 1 column 4"),
        (br#"{"id":"1","deployment":{"download":"sometimes"}}"#, "cannot read the deployment from the fleet server: unknown variant `sometimes`, expected one of `skip`, `attempt`, `forced` at line 1 column 46"),
        (br#"{"id":"1","deployment":{"chunks":[{"artifacts":[{"size":-1}]}]}}"#, "cannot read the deployment from the fleet server: invalid value: integer `-1`, expected u64 at line 1 column 58"),
    ] {
        assert_eq!(parse_deployment(reply).unwrap_err().to_string(), want);
    }
    let d = parse_deployment(br#"{"id":"1","deployment":{}}"#).unwrap();
    assert_eq!((d.download, d.update, d.chunks.len()), (Handling::Attempt, Handling::Attempt, 0));
}

#[test]
fn cancel_actions() {
    let c = parse_cancel(br#"{"id":"11","cancelAction":{"stopId":"10"}}"#).unwrap();
    assert_eq!(c, Cancel { id: "11".into(), stop_id: "10".into() });
    let c = parse_cancel(br#"{"id":11}"#).unwrap();
    assert_eq!(c.stop_id, "11");
    assert!(parse_cancel(b"{}").is_err());
    let ok = cancel_answer("T", Some(Stage::Downloading));
    assert_eq!(ok["status"]["execution"], "closed");
    assert_eq!(ok["status"]["result"]["finished"], "success");
    let no = cancel_answer("T", Some(Stage::Applying));
    assert_eq!(no["status"]["execution"], "rejected");
    assert_eq!(no["status"]["details"][0], "cannot cancel: the update is being applied by snapd");
    assert_eq!(cancel_answer("T", None)["status"]["execution"], "closed");
    assert!(!Stage::Rebooting.cancellable() && Stage::Verifying.cancellable());
}

#[test]
fn config_data_document() {
    let facts = Facts {
        brand: "acme".into(),
        model: "pocketses-pc".into(),
        model_revision: "2".into(),
        serial: Some("A1".into()),
        agent_version: "0.1.0".into(),
        sw_version: Some("1.0.1".into()),
        snaps: vec![("core22".into(), "1380".into()), ("pocketses".into(), "x1".into())],
    };
    assert_eq!(
        config_data(&facts),
        json!({"mode": "merge", "data": {"hw_boardname": "pocketses-pc", "hw_revision": "default",
            "sw_version": "1.0.1", "brand": "acme", "model": "pocketses-pc", "model_revision": "2",
            "serial": "A1", "pocketses_version": "0.1.0", "snap.core22": "1380", "snap.pocketses": "x1"}})
    );
    let bare = config_data(&Facts { serial: None, sw_version: None, ..facts });
    assert!(bare["data"].get("sw_version").is_none() && bare["data"].get("serial").is_none());
    assert!(bare["data"].as_object().unwrap().values().all(Value::is_string));
}

#[test]
fn controller_ids() {
    assert_eq!(default_controller_id(Some("A1-2"), "b", "m", "h"), "A1-2");
    assert_eq!(default_controller_id(None, "acme", "pc", "my host"), "acme-pc-my-host");
    assert_eq!(default_controller_id(Some(""), "a", "b/c", "h"), "a-b-c-h");
    assert_eq!(base_url("http://h:1/", "DEFAULT", "d"), "http://h:1/DEFAULT/controller/v1/d");
}

#[test]
fn feedback_documents() {
    let p = proceeding("20261129T231400", Some((45, 100)), &["Downloaded 45%".to_owned()]);
    assert_eq!(
        p,
        json!({"time": "20261129T231400", "status": {"execution": "proceeding",
            "result": {"finished": "none", "progress": {"cnt": 45, "of": 100}},
            "details": ["Downloaded 45%"]}})
    );
    let f = closed("T", false, &["cannot read bundle: signed by untrusted key X".to_owned()]);
    assert_eq!(f["status"]["result"]["finished"], "failure");
    assert_eq!(f["status"]["execution"], "closed");
    assert_eq!(closed("T", true, &[])["status"]["result"]["finished"], "success");
    assert_eq!(
        downloaded("T", &["waiting".to_owned()]),
        json!({"time": "T", "status": {"execution": "downloaded", "result": {"finished": "none"},
            "details": ["waiting"]}})
    );
}

#[test]
fn feedback_times() {
    assert_eq!(feedback_time(0), "19700101T000000");
    assert_eq!(feedback_time(1_796_081_640), "20261130T233400");
    assert_eq!(feedback_time(951_782_400), "20000229T000000");
    assert_eq!(feedback_time(4_107_542_399), "21000228T235959");
}

proptest! {
    #[test]
    fn arbitrary_replies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_base(&bytes);
        let _ = parse_deployment(&bytes);
        let _ = parse_cancel(&bytes);
    }

    #[test]
    fn jitter_is_bounded(secs in 1u64..86_400, r in 0.0f64..1.0) {
        let got = next_poll(Some(Duration::from_secs(secs)), false, r);
        let base = Duration::from_secs(secs);
        prop_assert!(got >= base.mul_f64(0.9) && got <= base.mul_f64(1.1));
    }
}
