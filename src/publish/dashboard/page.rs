//! The dashboard's HTML, rendered on the server with every fact in it, so that it reads the same
//! with JavaScript off; the script then keeps it live from the SSE stream. \[pure\]
//!
//! Elements the script updates carry an `id` (or `data-check` for a check's row); the names are
//! the contract with `ui/app.js`. No inline script or style: the Content-Security-Policy forbids them.

use std::fmt::Write as _;

use super::assets;
use super::{Action, Checks, Device, FleetAction};
use crate::metrics::Snapshot;

/// Everything one page shows.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The latest snapshot, if one was collected.
    pub snapshot: Option<&'a Snapshot>,
    /// Model, serial, snaps.
    pub device: &'a Device,
    /// The latest check results.
    pub checks: Option<&'a Checks>,
    /// The remodel in progress, or the last one.
    pub action: &'a Action,
    /// The fleet action in progress, or the last one.
    pub fleet: &'a FleetAction,
}

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Seconds as "3 d 4 h", "4 h 5 min", "5 min" or "42 s": what a person reads at a glance.
#[allow(clippy::cast_possible_truncation)] // Whole seconds on purpose; `as` saturates, and NaN is 0.
pub fn duration(seconds: f64) -> String {
    let s = if seconds > 0.0 { seconds as u64 } else { 0 };
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// The CSS class of a check state.
pub fn state_class(state: &str) -> &'static str {
    match state {
        "OK" => "ok",
        "WARN" => "warn",
        "CRIT" => "crit",
        _ => "unknown",
    }
}

/// The CSS class of a snap's health status.
fn health_class(status: &str) -> &'static str {
    match status {
        "okay" => "ok",
        "waiting" | "blocked" => "warn",
        "error" => "crit",
        _ => "unknown",
    }
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "–".to_string()
    } else {
        escape(text)
    }
}

/// The whole page.
pub fn render(view: &View<'_>) -> String {
    let host = view.snapshot.map_or("", |s| s.hostname.as_str());
    let mut out = String::with_capacity(8192);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"color-scheme\" content=\"light dark\">\n\
<link rel=\"icon\" href=\"data:,\">\n\
<title>{title} · pocketses</title>\n\
<link rel=\"stylesheet\" href=\"{uplot_css}\">\n<link rel=\"stylesheet\" href=\"{app_css}\">\n\
<script src=\"{uplot_js}\" defer></script>\n<script src=\"{app_js}\" defer></script>\n\
</head>\n<body>\n<header>\n<h1 id=\"hostname\">{host}</h1>\n\
<p class=\"live\" id=\"live\" data-state=\"static\">static page</p>\n</header>\n<main>\n",
        title = if host.is_empty() { "device".to_string() } else { escape(host) },
        host = or_dash(host),
        uplot_css = assets::get("/ui/uplot.css").url(),
        app_css = assets::get("/ui/app.css").url(),
        uplot_js = assets::get("/ui/uplot.js").url(),
        app_js = assets::get("/ui/app.js").url(),
    );
    device(&mut out, view);
    checks(&mut out, view.checks);
    charts(&mut out);
    action(&mut out, view.action);
    fleet(&mut out, view.fleet);
    snaps(&mut out, view.device);
    let _ = write!(
        out,
        "</main>\n<footer>pocketses {} · <a href=\"/v1/metrics\">JSON</a> · \
<a href=\"/v1/history\">history</a> · <a href=\"/metrics\">Prometheus</a></footer>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    out
}

fn device(out: &mut String, view: &View<'_>) {
    let d = view.device;
    let uptime = view.snapshot.and_then(|s| s.uptime).map_or("–".to_string(), duration);
    let os = view
        .snapshot
        .and_then(|s| s.uname.as_ref())
        .map_or("–".to_string(), |u| escape(&format!("{} {}", u.sysname, u.release)));
    out.push_str("<section id=\"device\">\n<h2>Device</h2>\n<dl>\n");
    for (id, label, value) in [
        ("brand", "Brand", or_dash(&d.brand)),
        ("model", "Model", or_dash(&d.model)),
        ("grade", "Grade", or_dash(&d.grade)),
        ("revision", "Model revision", or_dash(&d.revision)),
        ("serial", "Serial", or_dash(d.serial.as_deref().unwrap_or_default())),
        ("uptime", "Uptime", uptime),
        ("kernel", "Kernel", os),
    ] {
        let _ = writeln!(out, "<div><dt>{label}</dt><dd id=\"{id}\">{value}</dd></div>");
    }
    out.push_str("</dl>\n");
    if let Some(problem) = &d.problem {
        let _ = writeln!(out, "<p class=\"note\" id=\"device-problem\">{}</p>", escape(problem));
    }
    out.push_str("</section>\n");
}

fn checks(out: &mut String, checks: Option<&Checks>) {
    let worst = checks.map_or("", |c| c.state.as_str());
    let _ = write!(
        out,
        "<section id=\"checks\">\n<h2>Checks <span id=\"checks-state\" class=\"badge {}\">{}</span></h2>\n\
<table>\n<thead><tr><th>Check</th><th>State</th><th>Value</th><th>Summary</th></tr></thead>\n<tbody id=\"checks-body\">\n",
        state_class(worst),
        if worst.is_empty() { "–".to_string() } else { escape(worst) },
    );
    for c in checks.map(|c| c.checks.as_slice()).unwrap_or_default() {
        let value = match c.value {
            Some(v) => escape(format!("{v:.1} {}", c.unit).trim_end()),
            None => "–".to_string(),
        };
        let flapping = if c.flapping { " (flapping)" } else { "" };
        let _ = writeln!(
            out,
            "<tr data-check=\"{check}\" class=\"{class}\"><td>{check}</td>\
<td><span class=\"badge {class}\">{state}{flapping}</span></td><td>{value}</td><td>{summary}</td></tr>",
            check = escape(&c.check),
            class = state_class(&c.state),
            state = escape(&c.state),
            summary = escape(&c.summary),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    if checks.is_none() {
        out.push_str("<p class=\"note\" id=\"checks-none\">No check results yet.</p>\n");
    }
    out.push_str("</section>\n");
}

fn charts(out: &mut String) {
    out.push_str("<section id=\"charts\">\n<h2>Last hour</h2>\n<div class=\"charts\">\n");
    for (id, title) in [
        ("cpu", "CPU use, %"),
        ("memory", "Memory use, %"),
        ("network", "Network, bytes/s"),
        ("filesystems", "Filesystem use, %"),
    ] {
        let _ = writeln!(
            out,
            "<figure class=\"chart\" id=\"chart-{id}\"><figcaption>{title}</figcaption></figure>"
        );
    }
    out.push_str(
        "</div>\n<noscript><p class=\"note\">The charts need JavaScript; \
<a href=\"/v1/history\">the same figures as JSON</a>.</p></noscript>\n</section>\n",
    );
}

fn action(out: &mut String, action: &Action) {
    out.push_str("<section id=\"action\">\n<h2>Remodel</h2>\n");
    let Some(change) = &action.change else {
        out.push_str("<p id=\"action-none\">No remodel since the daemon started.</p>\n");
        out.push_str("<div id=\"action-detail\" hidden>");
        action_detail(out, "", "", "", None);
        out.push_str("</div>\n</section>\n");
        return;
    };
    out.push_str("<div id=\"action-detail\">");
    let summary = format!("change {change}: {}", action.summary);
    let status = action.finished.as_deref().unwrap_or("in progress");
    action_detail(out, &summary, &action.step, status, action.percent());
    out.push_str("</div>\n</section>\n");
}

fn action_detail(out: &mut String, summary: &str, step: &str, status: &str, percent: Option<u8>) {
    let (value, label) = match percent {
        Some(p) => (format!(" value=\"{p}\""), format!("{p} %")),
        None => (String::new(), String::new()),
    };
    let _ = write!(
        out,
        "<p id=\"action-summary\">{}</p><p><span id=\"action-status\" class=\"badge\">{}</span> \
<span id=\"action-step\">{}</span></p><progress id=\"action-progress\" max=\"100\"{value}>{label}</progress>",
        escape(summary),
        escape(status),
        escape(step),
    );
}

fn fleet(out: &mut String, fleet: &FleetAction) {
    out.push_str("<section id=\"fleet\">\n<h2>Fleet update</h2>\n");
    let (hidden, none) = match &fleet.action {
        Some(_) => (" hidden", ""),
        None => ("", " hidden"),
    };
    let _ = write!(
        out,
        "<p id=\"fleet-none\"{hidden}>No fleet action since the daemon started.</p>\n\
<div id=\"fleet-detail\"{none}>"
    );
    let (value, label) = match fleet.progress {
        Some(p) => (format!(" value=\"{p}\""), format!("{p} %")),
        None => (String::new(), String::new()),
    };
    let class = match fleet.result.as_deref() {
        Some("success") => "ok",
        Some(_) => "crit",
        None if matches!(fleet.stage.as_str(), "failed" | "cancelled") => "warn",
        None => "unknown",
    };
    let _ = write!(
        out,
        "<p>action <span id=\"fleet-action\">{}</span>: <span id=\"fleet-stage\" class=\"badge {class}\">{}</span> \
<span id=\"fleet-result\">{}</span></p><progress id=\"fleet-progress\" max=\"100\"{value}>{label}</progress>\
<ul id=\"fleet-details\">",
        escape(fleet.action.as_deref().unwrap_or_default()),
        escape(&fleet.stage),
        escape(fleet.result.as_deref().unwrap_or_default()),
    );
    for line in &fleet.details {
        let _ = write!(out, "<li>{}</li>", escape(line));
    }
    out.push_str("</ul></div>\n</section>\n");
}

fn snaps(out: &mut String, device: &Device) {
    out.push_str(
        "<section id=\"snaps\">\n<h2>Snaps</h2>\n<table>\n<thead><tr><th>Snap</th><th>Version</th>\
<th>Revision</th><th>Health</th></tr></thead>\n<tbody>\n",
    );
    for snap in &device.snaps {
        let (status, message) = match &snap.health {
            Some(h) => (h.status.as_str(), h.message.as_str()),
            None => ("unknown", ""),
        };
        let message =
            if message.is_empty() { String::new() } else { format!(" {}", escape(message)) };
        let _ = writeln!(
            out,
            "<tr data-snap=\"{name}\"><td>{name}</td><td>{version}</td><td>{revision}</td>\
<td><span class=\"badge {class}\">{status}</span>{message}</td></tr>",
            name = escape(&snap.name),
            version = escape(&snap.version),
            revision = escape(&snap.revision),
            class = health_class(status),
            status = escape(status),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    if device.snaps.is_empty() {
        out.push_str(
            "<p class=\"note\">No snaps known (snapd was not asked or did not answer).</p>\n",
        );
    }
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::super::{CheckEntry, Health, SnapHealth};
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        for (seconds, want) in [
            (0.0, "0 s"),
            (42.9, "42 s"),
            (300.0, "5 min"),
            (3.0 * 3600.0 + 120.0, "3 h 2 min"),
            (2.0 * 86400.0 + 5.0 * 3600.0 + 59.0, "2 d 5 h"),
            (f64::NAN, "0 s"),
            (-5.0, "0 s"),
        ] {
            assert_eq!(duration(seconds), want, "{seconds}");
        }
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }

    fn device() -> Device {
        Device {
            brand: "acme".into(),
            model: "pocket<pc>".into(),
            grade: "signed".into(),
            revision: "3".into(),
            serial: Some("A1".into()),
            snaps: vec![
                SnapHealth {
                    name: "pocketses".into(),
                    version: "0.1".into(),
                    revision: "x1".into(),
                    health: Some(Health {
                        status: "error".into(),
                        message: "disk full".into(),
                        code: "disk".into(),
                    }),
                },
                SnapHealth {
                    name: "core22".into(),
                    version: "1".into(),
                    revision: "9".into(),
                    health: None,
                },
            ],
            problem: None,
        }
    }

    #[test]
    fn the_page_carries_every_fact_escaped() {
        let snapshot =
            Snapshot { hostname: "host-1".into(), uptime: Some(90_000.0), ..Snapshot::default() };
        let device = device();
        let mut checks = Checks::default();
        checks.update(CheckEntry {
            check: "filesystem:/var".into(),
            state: "CRIT".into(),
            value: Some(97.25),
            unit: "%".into(),
            summary: "/var is 97 % full".into(),
            ..CheckEntry::default()
        });
        let mut action = Action::default();
        action.apply(&serde_json::json!({"type":"progress","change":"5","summary":"Download","label":"core22","done":1,"total":4}));
        let mut fleet = FleetAction::default();
        fleet.apply(&serde_json::json!({"action":9,"stage":"downloading","progress":40,"details":["bundle <1.2>"],"result":null}));
        let html = render(&View {
            snapshot: Some(&snapshot),
            device: &device,
            checks: Some(&checks),
            action: &action,
            fleet: &fleet,
        });
        for want in [
            "<h1 id=\"hostname\">host-1</h1>",
            "<dd id=\"model\">pocket&lt;pc&gt;</dd>",
            "<dd id=\"brand\">acme</dd>",
            "<dd id=\"grade\">signed</dd>",
            "<dd id=\"revision\">3</dd>",
            "<dd id=\"serial\">A1</dd>",
            "<dd id=\"uptime\">1 d 1 h</dd>",
            "<span id=\"checks-state\" class=\"badge crit\">CRIT</span>",
            "<tr data-check=\"filesystem:/var\" class=\"crit\">",
            "<td>97.2 %</td>",
            "<progress id=\"action-progress\" max=\"100\" value=\"25\">25 %</progress>",
            "<p id=\"fleet-none\" hidden>",
            "action <span id=\"fleet-action\">9</span>: <span id=\"fleet-stage\" class=\"badge unknown\">downloading</span>",
            "<progress id=\"fleet-progress\" max=\"100\" value=\"40\">40 %</progress>",
            "<li>bundle &lt;1.2&gt;</li>",
            "<span class=\"badge crit\">error</span> disk full",
            "<span class=\"badge unknown\">unknown</span>",
            "name=\"viewport\"",
        ] {
            assert!(html.contains(want), "{want} not in:\n{html}");
        }
        // Nothing inline: the policy would refuse it.
        assert!(!html.contains("<script>") && !html.contains("style="), "{html}");
        assert!(
            html.contains(&format!("src=\"/ui/app.js?v={}\"", assets::get("/ui/app.js").digest()))
        );
    }

    #[test]
    fn an_empty_page_still_renders() {
        let html = render(&View {
            snapshot: None,
            device: &Device::default(),
            checks: None,
            action: &Action::default(),
            fleet: &FleetAction::default(),
        });
        assert!(html.contains("No check results yet."));
        assert!(html.contains("No remodel since the daemon started."));
        assert!(html.contains("<p id=\"fleet-none\">No fleet action since the daemon started.</p>"));
        assert!(html.contains("<div id=\"fleet-detail\" hidden>"));
        assert!(html.contains("<h1 id=\"hostname\">–</h1>"));
    }
}
