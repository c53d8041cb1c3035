//! Push bodies written to the real stores and read back (support: tests/support/stores.rs).

mod support;

use support::stores::{Store, INFLUX_DB};

#[test]
fn stores_start_and_take_line_protocol() {
    let line = "cpu,host=h1 usage=12.5 1700000000000000000\n";
    if let Some(influx) = Store::influxdb() {
        let res = influx.post(&format!("/write?db={INFLUX_DB}"), &[], line.as_bytes());
        assert_eq!(res.status, 204, "{}", res.text());
        let points = influx.influx_points("cpu");
        assert_eq!(points.len(), 1, "{points:?}");
        assert_eq!(points[0].time_ns, 1_700_000_000_000_000_000);
        assert_eq!(points[0].tags["host"], "h1");
        assert_eq!(points[0].fields["usage"], 12.5);
    }
    if let Some(vm) = Store::victoria_metrics() {
        let now_ns =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let line = format!("cpu,host=h1 usage=12.5 {now_ns}\n");
        let res = vm.post("/write?db=x", &[], line.as_bytes());
        assert_eq!(res.status, 204, "{}", res.text());
        let series = vm.series(r#"{__name__="cpu_usage"}"#);
        assert_eq!(series.len(), 1, "{series:?}");
        assert_eq!(series[0].labels["host"], "h1");
        assert_eq!(series[0].samples, vec![(i64::try_from(now_ns / 1_000_000).unwrap(), 12.5)]);
    }
    if let Some(mut prom) = Store::prometheus() {
        assert!(prom.series(r#"{__name__="up"}"#).is_empty());
        prom.kill();
        assert!(!prom.is_running());
        prom.start();
        assert!(prom.is_running());
    }
}
