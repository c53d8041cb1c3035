//! Pre-flight of a remodel: current model + target model + device facts → a [`Plan`] or every
//! [`Refusal`] snapd would give. \[pure\]
//!
//! The rules and their wording are snapd's `devicestate.Remodel`, in its order; a gadget layout
//! problem (found by [`crate::gadget::check_compatible`] and passed in through
//! [`Context::gadget_problems`]) is the error the change would end with.
//! What changes and how snapd classifies it is not decided here: that is
//! [`crate::assertion::model::diff`], which `pocketses model diff` prints with the same words.
//! Nothing here talks to snapd: the caller gathers the [`Context`].

use std::fmt::Write as _;

use crate::assertion::model::{self, Model, ModelDiff, RemodelKind};
use crate::assertion::Assertion;
use crate::gadget::Incompatibility;

/// Validates a decoded assertion as the new model of a remodel (the assertion module's rules).
///
/// # Errors
/// When it is not a model, or every problem snapd would find in it.
pub fn target_model(assertion: &Assertion) -> Result<Model, String> {
    if assertion.type_name() != "model" {
        return Err(format!("new model is not a model assertion: {}", assertion.type_name()));
    }
    Model::from_assertion(assertion).map_err(|problems| {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        format!("cannot decode new model assertion: {}", list.join("; "))
    })
}

/// Facts about the device and the request that snapd's checks depend on.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The device finished seeding.
    pub seeded: bool,
    /// The device has a serial assertion.
    pub has_serial: bool,
    /// The remodel is offline (`--offline`).
    pub offline: bool,
    /// Local snaps are given (`--snap`).
    pub local_snaps: bool,
    /// The device boots classically (a classic model without a kernel) and its snapd refuses to
    /// remodel such a device ([`refuses_classic_boot_remodel`]).
    pub classic_boot: bool,
    /// The highest revision of the target brand/model the device knows, when it knows one
    /// other than the current model (`findKnownRevisionOfModel`).
    pub known_revision: Option<u64>,
    /// A change that must run alone is in progress: `(id, kind)`.
    pub conflicting_change: Option<(String, String)>,
    /// Problems between the current and the new gadget layout, when the new gadget was given.
    pub gadget_problems: Vec<Incompatibility>,
    /// Why the new model's signature does not check out, when its chain of trust was at hand.
    pub signature_problem: Option<String>,
    /// snapd's version when it has no offline remodel ([`supports_offline_remodel`]).
    pub no_offline_remodel: Option<String>,
    /// Snaps the remodel must install from the store ([`store_installs`]) that the store does
    /// not have (snapd's `GET /v2/find?name=…` answered `snap-not-found`), in the model's order.
    pub store_missing: Vec<String>,
}

/// The snaps an online remodel to `target` installs from the store, in the order snapd 2.57's
/// `remodelTasks` asks for them: every snap of the new model that is not installed (`installed`:
/// the device's snap names), essential ones (kernel, base, gadget) first, then the required
/// ones. The snapd snap and UC16's core are left out (`remodelTasks` does not install them), and
/// so are optional snaps (snapd installs only required ones).
pub fn store_installs(target: &Model, installed: &[String]) -> Vec<String> {
    target
        .snaps
        .iter()
        .filter(|s| s.presence == "required" && !matches!(s.snap_type.as_str(), "snapd" | "core"))
        .filter(|s| !installed.contains(&s.name))
        .map(|s| s.name.clone())
        .collect()
}

/// Whether a snapd of this version refuses every remodel of a classically booting device
/// ("cannot remodel from classic (non-hybrid) model").
///
/// snapd 2.57 has no such check: its `devicestate.Remodel` goes from the serial check straight
/// to series, grade and architecture (Debian's 2.57.6 source, and a real remodel of a classic
/// test-brand device in tests/spread/remodel/). Later snapd checks `IsClassicBoot()`; the
/// release that added it is not pinned down here, so any version after 2.57, and a version
/// that cannot be read, is taken to refuse.
pub fn refuses_classic_boot_remodel(snapd_version: &str) -> bool {
    let mut parts = snapd_version.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    match (major, minor) {
        (Some(major), Some(minor)) => (major, minor) > (2, 57),
        _ => true,
    }
}

/// Whether a snapd of this version does offline remodels (`POST /v2/model` with `"offline"` or
/// the multipart form): snapd 2.61.2 added them ("Support offline remodeling" in its changelog).
/// An older snapd reads only `new-model` from the JSON body (snapd 2.57.6,
/// `daemon/api_model.go`: `postModelData`), so it would quietly remodel *online*, and it cannot
/// read the multipart form at all. A version that cannot be read is taken to support them.
pub fn supports_offline_remodel(snapd_version: &str) -> bool {
    let nums: Vec<u32> = snapd_version
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map_while(|p| p.parse::<u32>().ok())
        .collect();
    match nums.as_slice() {
        [major, minor, rest @ ..] => {
            (*major, *minor, rest.first().copied().unwrap_or(0)) >= (2, 61, 2)
        }
        _ => true,
    }
}

impl Context {
    /// A device that stands in the way of nothing: seeded, registered, no change in progress,
    /// nothing else known. Against it, [`plan`] refuses only what the two models alone decide
    /// (`pocketses model diff`).
    pub fn models_only() -> Context {
        Context { seeded: true, has_serial: true, ..Context::default() }
    }
}

/// When snapd refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// `POST /v2/model` answers 400: nothing starts.
    Post,
    /// The change starts, downloads, then fails and undoes itself.
    Change,
}

/// One reason snapd would refuse the remodel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    /// snapd's text, as the user would see it.
    pub snapd: String,
    /// The reason in plain words, and what to do.
    pub reason: String,
    /// When snapd would refuse.
    pub stage: Stage,
}

/// What the remodel will do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    /// snapd's classification (`ClassifyRemodel`).
    pub kind: RemodelKind,
    /// The summary snapd will give the change.
    pub summary: String,
    /// Everything that differs.
    pub diff: ModelDiff,
}

/// Checks a remodel from `current` to `target` as snapd will, and lists what will change.
///
/// # Errors
/// Every refusal, in snapd's order (snapd reports only the first).
pub fn plan(current: &Model, target: &Model, ctx: &Context) -> Result<Plan, Vec<Refusal>> {
    let diff = model::diff(current, target);
    let refusals = refusals(current, target, ctx, diff.kind);
    if !refusals.is_empty() {
        return Err(refusals);
    }
    let summary = if current.brand_id == target.brand_id && current.model == target.model {
        format!("Refresh model assertion from revision {} to {}", current.revision, target.revision)
    } else {
        format!("Remodel device to {}/{} ({})", target.brand_id, target.model, target.revision)
    };
    Ok(Plan { kind: diff.kind, summary, diff })
}

/// `grade` as snapd prints it: "unset" for a pre-UC20 model.
fn grade_text(model: &Model) -> &str {
    if model.grade.is_empty() {
        "unset"
    } else {
        &model.grade
    }
}

fn post(message: &str, reason: &str) -> Refusal {
    Refusal {
        snapd: format!("cannot remodel device: {message}"),
        reason: reason.to_string(),
        stage: Stage::Post,
    }
}

fn refusals(current: &Model, target: &Model, ctx: &Context, kind: RemodelKind) -> Vec<Refusal> {
    let mut out = Vec::new();
    if !ctx.seeded {
        out.push(post(
            "cannot remodel until fully seeded",
            "the device is still installing the snaps of its seed; wait until `snap wait system seed.loaded` returns",
        ));
    }
    if let (true, Some(version)) = (ctx.offline, &ctx.no_offline_remodel) {
        out.push(Refusal {
            snapd: format!(
                "cannot remodel offline: snapd {version} has no offline remodel (snapd 2.61.2 added it)"
            ),
            reason: "this snapd would ignore --offline and use the store (with --snap it cannot read the request at all); remodel without --offline, or update snapd first".to_string(),
            stage: Stage::Post,
        });
    }
    if !ctx.offline && ctx.local_snaps {
        out.push(post(
            "cannot do an online remodel with provided local snaps or components",
            "local snap files are only used by an offline remodel: add --offline, or drop --snap",
        ));
    }
    let same_identity = current.brand_id == target.brand_id && current.model == target.model;
    let known = ctx.known_revision.or(if same_identity { Some(current.revision) } else { None });
    if let Some(known) = known {
        if target.revision < known {
            out.push(post(
                &format!(
                    "cannot remodel to older revision {} of model {}/{} than last revision {known} known to the device",
                    target.revision, target.brand_id, target.model
                ),
                "model revisions only go forward: sign the new model with a revision at least as high as the device's",
            ));
        }
    }
    let serial_exempt = ctx.offline && kind == RemodelKind::Update;
    if !ctx.has_serial && !serial_exempt {
        out.push(post(
            "cannot remodel without a serial",
            "the device has no serial assertion yet (it has not registered with its brand's serial vault); only an offline remodel to the same brand and model works without one",
        ));
    }
    if current.series != target.series {
        out.push(post(
            "cannot remodel to different series yet",
            "the new model must keep `series: 16`",
        ));
    }
    if ctx.classic_boot {
        out.push(post(
            "cannot remodel from classic (non-hybrid) model",
            "a classic system without a model kernel cannot be remodelled",
        ));
    }
    if current.classic != target.classic {
        out.push(post(
            "cannot remodel across classic and non-classic models",
            "the new model must keep the `classic` header of the current one",
        ));
    }
    if current.grade != target.grade {
        if current.grade.is_empty() {
            out.push(post(
                "cannot remodel from pre-UC20 to UC20+ models",
                "a UC16/UC18 device cannot become UC20+ by remodel (the disk layout differs); reinstall it",
            ));
        } else {
            out.push(post(
                &format!(
                    "cannot remodel from grade {} to grade {}",
                    grade_text(current),
                    grade_text(target)
                ),
                &format!("the new model must keep `grade: {}`", grade_text(current)),
            ));
        }
    }
    if target.base.is_empty() && !current.base.is_empty() {
        out.push(post(
            "cannot remodel from UC18+ (using snapd snap) system back to UC16 system (using core snap)",
            "the new model must name a base",
        ));
    }
    if current.architecture != target.architecture {
        out.push(post(
            "cannot remodel to different architectures yet",
            &format!("the new model must keep `architecture: {}`", current.architecture),
        ));
    }
    if current.base.is_empty() && !target.base.is_empty() {
        out.push(post(
            "cannot remodel from core to bases yet",
            "a UC16 device (core snap) cannot move to a base by remodel",
        ));
    }
    if let Some((id, change_kind)) = &ctx.conflicting_change {
        let message = match change_kind.as_str() {
            "transition-ubuntu-core" => {
                "ubuntu-core to core transition in progress, no other changes allowed until this is done".to_string()
            }
            "transition-to-snapd-snap" => {
                "transition to snapd snap in progress, no other changes allowed until this is done".to_string()
            }
            "remodel" => "remodeling in progress, no other changes allowed until this is done".to_string(),
            "create-recovery-system" => {
                "creating recovery system in progress, no other changes allowed until this is done".to_string()
            }
            other => format!(
                "other changes in progress (conflicting change {other:?}), change \"remodel\" not allowed until they are done"
            ),
        };
        out.push(post(
            &message,
            &format!(
                "change {id} ({change_kind}) must finish first: follow it with `snap watch {id}`"
            ),
        ));
    }
    if ctx.offline && kind == RemodelKind::Reregistration {
        out.push(post(
            "cannot remodel offline to different brand ID / model yet",
            "a new brand or model needs a new serial from the brand's serial vault, which needs the network: remodel online",
        ));
    }
    // Then `remodelTasks`: each snap to install is looked up in the store
    // (`snapstate.InstallWithDeviceContext`); the store's "name-not-found" is
    // `store.ErrSnapNotFound`, which `POST /v2/model` returns as is.
    if !ctx.offline && !ctx.store_missing.is_empty() {
        let names: Vec<String> = ctx.store_missing.iter().map(|n| format!("{n:?}")).collect();
        let (subject, pronoun) = match names.as_slice() {
            [one] => (format!("the snap {one}"), "it"),
            _ => (format!("the snaps {}", names.join(", ")), "them"),
        };
        out.push(post(
            "snap not found",
            &format!(
                "the new model requires {subject}, which the device does not have and its store does not have either (snapd's GET /v2/find?name=… answers \"snap not found\"); publish {pronoun} in the brand's store, or leave {pronoun} out of the model"
            ),
        ));
    }
    if let Some(problem) = &ctx.signature_problem {
        out.push(Refusal {
            snapd: problem.clone(),
            reason: "snapd checks the new model's signature when it sets the model, at the end of the change, and would fail there; sign the model with a key registered for the brand".to_string(),
            stage: Stage::Change,
        });
    }
    if let Some(first) = ctx.gadget_problems.first() {
        out.push(Refusal {
            snapd: first.snapd_error(),
            reason: format!(
                "snapd accepts the request, downloads the snaps, then fails at \"Mount snap\" of the new gadget and undoes everything; fix: {}",
                first.fix()
            ),
            stage: Stage::Change,
        });
    }
    out
}

/// The plan as the user reads it after `--check`: the same lines as `pocketses model diff`, and
/// the summary snapd will give the change.
pub fn render_plan(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "remodel: {}", plan.kind.describe());
    let _ = writeln!(out, "change summary: {}", plan.summary);
    out.push_str(&model::render_changes(&plan.diff));
    out
}

/// What the refusals were judged from, for the line above them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `remodel`: the device's facts and both models.
    Preflight,
    /// `model diff`: the two models alone.
    Models,
}

/// Refusals as the user reads them: snapd's words, then why and what to do.
pub fn render_refusals(refusals: &[Refusal], origin: Origin) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        match origin {
            Origin::Preflight => {
                "pre-flight: snapd would refuse this remodel; nothing was sent to snapd"
            }
            Origin::Models => {
                "snapd would refuse this remodel (judged from the two models; the device may add reasons):"
            }
        }
    );
    for refusal in refusals {
        let when = match refusal.stage {
            Stage::Post => "at once",
            Stage::Change => "during the change",
        };
        let _ = writeln!(out, "- {} ({when})", refusal.snapd);
        let _ = writeln!(out, "  why: {}", refusal.reason);
    }
    out
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;
    use crate::gadget;

    /// A model assertion's text: a UC22 model named `model`, with `base` and these snaps
    /// (`name`, `type`, `default-channel`, `presence`).
    fn text(model: &str, base: &str, snaps: &[(&str, &str, &str, &str)]) -> String {
        let mut out = format!(
            "type: model\nauthority-id: canonical\nseries: 16\nbrand-id: canonical\nmodel: {model}\narchitecture: amd64\nbase: {base}\ngrade: signed\nsnaps:\n"
        );
        for (name, type_, channel, presence) in snaps {
            out.push_str(&format!(
                "  -\n    default-channel: {channel}\n    name: {name}\n    presence: {presence}\n    type: {type_}\n"
            ));
        }
        out.push_str("timestamp: 2022-04-04T10:40:41+00:00\nsign-key-sha3-384: 9tydnLa6MTJ-jaQTFUXEwHl1yRx7ZS4K5cyFDhYDcPzhS7uyEkDxdUjg9g08BtNn\n\nAAAA\n");
        out
    }

    fn view(text: &str) -> Model {
        model::view(crate::assertion::decode(text.as_bytes()).expect("decode").headers())
    }

    const UC22_SNAPS: &[(&str, &str, &str, &str)] = &[
        ("pc", "gadget", "22/stable", "required"),
        ("pc-kernel", "kernel", "22/stable", "required"),
        ("core22", "base", "latest/stable", "required"),
        ("snapd", "snapd", "latest/stable", "required"),
    ];

    fn uc22(revision: u64) -> Model {
        let mut m = view(&text("ubuntu-core-22-amd64", "core22", UC22_SNAPS));
        m.revision = revision;
        m
    }

    fn ready() -> Context {
        Context { seeded: true, has_serial: true, ..Context::default() }
    }

    fn refusal_texts(current: &Model, target: &Model, ctx: &Context) -> Vec<String> {
        match plan(current, target, ctx) {
            Ok(plan) => panic!("expected refusals, got {plan:?}"),
            Err(refusals) => refusals.into_iter().map(|r| r.snapd).collect(),
        }
    }

    #[test]
    fn the_plan_takes_the_kind_of_the_model_diff() {
        let a = uc22(1);
        let mut b = uc22(2);
        assert_eq!(plan(&a, &b, &ready()).expect("plan").kind, RemodelKind::Update);
        b.store = "brand-store".to_string();
        assert_eq!(plan(&a, &b, &ready()).expect("plan").kind, RemodelKind::StoreSwitch);
        b.model = "other".to_string();
        assert_eq!(plan(&a, &b, &ready()).expect("plan").kind, RemodelKind::Reregistration);
    }

    #[test]
    fn models_only_refuses_what_the_models_decide() {
        let mut arm64 = uc22(1);
        arm64.architecture = "arm64".to_string();
        arm64.model = "other".to_string();
        assert_eq!(
            refusal_texts(&uc22(1), &arm64, &Context::models_only()),
            ["cannot remodel device: cannot remodel to different architectures yet"]
        );
        assert!(plan(&uc22(1), &uc22(2), &Context::models_only()).is_ok());
    }

    #[test]
    fn refusals_in_snapds_order_with_its_wording() {
        let current = uc22(3);
        let mut target = uc22(2);
        target.architecture = "arm64".to_string();
        target.grade = "dangerous".to_string();
        target.series = "18".to_string();
        let ctx = Context { seeded: false, local_snaps: true, ..Context::default() };
        assert_eq!(
            refusal_texts(&current, &target, &ctx),
            [
                "cannot remodel device: cannot remodel until fully seeded",
                "cannot remodel device: cannot do an online remodel with provided local snaps or components",
                "cannot remodel device: cannot remodel to older revision 2 of model canonical/ubuntu-core-22-amd64 than last revision 3 known to the device",
                "cannot remodel device: cannot remodel without a serial",
                "cannot remodel device: cannot remodel to different series yet",
                "cannot remodel device: cannot remodel from grade signed to grade dangerous",
                "cannot remodel device: cannot remodel to different architectures yet",
            ]
        );
    }

    #[test]
    fn pre_uc20_and_base_rules() {
        let mut uc16 = uc22(1);
        uc16.grade = String::new();
        uc16.base = String::new();
        let target = uc22(1);
        assert_eq!(
            refusal_texts(&uc16, &target, &ready()),
            [
                "cannot remodel device: cannot remodel from pre-UC20 to UC20+ models",
                "cannot remodel device: cannot remodel from core to bases yet",
            ]
        );
        let mut uc18 = uc22(1);
        uc18.grade = String::new();
        let mut back = uc18.clone();
        back.base = String::new();
        assert_eq!(
            refusal_texts(&uc18, &back, &ready()),
            ["cannot remodel device: cannot remodel from UC18+ (using snapd snap) system back to UC16 system (using core snap)"]
        );
        let mut classic = uc22(1);
        classic.classic = true;
        assert_eq!(
            refusal_texts(&uc22(1), &classic, &ready()),
            ["cannot remodel device: cannot remodel across classic and non-classic models"]
        );
    }

    #[test]
    fn offline_remodels_need_snapd_2_61_2() {
        for old in ["2.57.6-1+deb12u1", "2.61.1", "2.61", "2.60.4", "1.99.9"] {
            assert!(!supports_offline_remodel(old), "{old}");
        }
        for new in ["2.61.2", "2.62", "2.65-fake", "2.66.1+24.04", "3.0", "", "unknown"] {
            assert!(supports_offline_remodel(new), "{new}");
        }
    }

    #[test]
    fn an_old_snapd_refuses_offline_remodels_before_anything_else_is_sent() {
        let ctx = Context {
            offline: true,
            no_offline_remodel: Some("2.57.6".into()),
            ..Context::models_only()
        };
        let refusals = plan(&uc22(1), &uc22(2), &ctx).unwrap_err();
        assert_eq!(refusals.len(), 1);
        assert_eq!(
            refusals[0].snapd,
            "cannot remodel offline: snapd 2.57.6 has no offline remodel (snapd 2.61.2 added it)"
        );
        // Online, the same snapd is fine.
        let online = Context { offline: false, ..ctx };
        assert!(plan(&uc22(1), &uc22(2), &online).is_ok());
    }

    #[test]
    fn snapd_after_2_57_refuses_classic_boot_remodels() {
        for old in ["2.57.6-1+deb12u1", "2.57", "2.54.3", "1.9"] {
            assert!(!refuses_classic_boot_remodel(old), "{old}");
        }
        for new in ["2.58", "2.61.2", "2.66.1+24.04", "3.0", "", "unknown", "2"] {
            assert!(refuses_classic_boot_remodel(new), "{new}");
        }
    }

    #[test]
    fn serial_is_needed_except_offline_updates() {
        let no_serial = Context { seeded: true, ..Context::default() };
        assert_eq!(
            refusal_texts(&uc22(1), &uc22(2), &no_serial),
            ["cannot remodel device: cannot remodel without a serial"]
        );
        let offline = Context { offline: true, ..no_serial.clone() };
        assert!(plan(&uc22(1), &uc22(2), &offline).is_ok());
        let mut other = uc22(1);
        other.model = "other".to_string();
        assert_eq!(
            refusal_texts(&uc22(1), &other, &offline),
            [
                "cannot remodel device: cannot remodel without a serial",
                "cannot remodel device: cannot remodel offline to different brand ID / model yet",
            ]
        );
    }

    #[test]
    fn equal_revision_is_allowed_and_known_revision_counts() {
        assert!(plan(&uc22(2), &uc22(2), &ready()).is_ok());
        let ctx = Context { known_revision: Some(5), ..ready() };
        let mut other = uc22(4);
        other.model = "other".to_string();
        assert_eq!(
            refusal_texts(&uc22(1), &other, &ctx),
            ["cannot remodel device: cannot remodel to older revision 4 of model canonical/other than last revision 5 known to the device"]
        );
    }

    #[test]
    fn bad_signature_is_a_change_time_refusal() {
        let ctx = Context {
            signature_problem: Some("failed signature verification: x".to_string()),
            ..ready()
        };
        let refusals = plan(&uc22(1), &uc22(2), &ctx).expect_err("refused");
        assert_eq!(refusals.len(), 1);
        assert_eq!(refusals[0].snapd, "failed signature verification: x");
        assert_eq!(refusals[0].stage, Stage::Change);
    }

    #[test]
    fn invalid_target_models_are_errors_in_snapds_words() {
        let text = "type: model\nauthority-id: brand\nseries: 16\nbrand-id: brand\nmodel: Pocketses\narchitecture: amd64\nbase: core22\ntimestamp: 2024-01-05T09:00:00+00:00\nsign-key-sha3-384: Jv8_JiHiIzJVcO9M55pPdqSDWUvuhfDIBJUS-3VW7F_idjix7Ul8YntbmAlGLbcz\n\nAAAA\n";
        let assertion = crate::assertion::decode(text.as_bytes()).expect("decode");
        let err = target_model(&assertion).expect_err("invalid");
        assert!(err.starts_with("cannot decode new model assertion: "), "{err}");
        assert!(err.contains("uppercase"), "{err}");
    }

    #[test]
    fn conflicting_change_is_refused() {
        let ctx = Context {
            conflicting_change: Some(("7".to_string(), "remodel".to_string())),
            ..ready()
        };
        assert_eq!(
            refusal_texts(&uc22(1), &uc22(2), &ctx),
            ["cannot remodel device: remodeling in progress, no other changes allowed until this is done"]
        );
    }

    #[test]
    fn gadget_problem_is_a_change_time_refusal_with_the_fix() {
        let read = |name: &str| {
            let path = format!("{}/tests/fixtures/gadget/{name}", env!("CARGO_MANIFEST_DIR"));
            gadget::parse(&std::fs::read_to_string(path).expect("fixture"), gadget::Ruleset::Uc20)
                .expect("parse")
        };
        let ctx = Context {
            gadget_problems: gadget::check_compatible(
                &read("pc-20.yaml"),
                &read("pc-22-size-only.yaml"),
            ),
            ..ready()
        };
        let refusals = plan(&uc22(1), &uc22(2), &ctx).expect_err("refused");
        expect![[r#"
            pre-flight: snapd would refuse this remodel; nothing was sent to snapd
            - cannot remodel to an incompatible gadget: incompatible layout change: incompatible structure #4 ("ubuntu-save") change: new valid structure size range [33554432, 33554432] is not compatible with current ([16777216, 16777216]) (during the change)
              why: snapd accepts the request, downloads the snaps, then fails at "Mount snap" of the new gadget and undoes everything; fix: give "ubuntu-save" `min-size: 16M` and `size: 32M`: the partition on disk is not resized, so the new gadget must accept its current size (16M) as a minimum
        "#]]
        .assert_eq(&render_refusals(&refusals, Origin::Preflight));
    }

    #[test]
    fn plan_lists_what_changes() {
        let uc20 = view(&text(
            "ubuntu-core-20-amd64",
            "core20",
            &[
                ("pc", "gadget", "20/stable", "required"),
                ("pc-kernel", "kernel", "20/stable", "required"),
                ("core20", "base", "latest/stable", "required"),
                ("snapd", "snapd", "latest/stable", "required"),
                ("htop", "app", "latest/stable", "optional"),
            ],
        ));
        let mut snaps = UC22_SNAPS.to_vec();
        snaps.push(("pocketses", "app", "latest/edge", "required"));
        let target = view(&text("ubuntu-core-22-amd64", "core22", &snaps));
        let plan = plan(&uc20, &target, &ready()).expect("plan");
        expect![[r#"
            remodel: re-registration (new brand or model: the device asks for a new serial)
            change summary: Remodel device to canonical/ubuntu-core-22-amd64 (0)
            what changes:
              - model: ubuntu-core-20-amd64 -> ubuntu-core-22-amd64
              - base: core20 -> core22
              - display-name: ubuntu-core-20-amd64 -> ubuntu-core-22-amd64
              - snap pc-kernel: default-channel: 20/stable -> 22/stable
              - snap pc: default-channel: 20/stable -> 22/stable
              - add core22 (required, from latest/stable)
              - add pocketses (required, from latest/edge)
              - core20 is no longer in the model (snapd leaves it installed)
              - htop is no longer in the model (snapd leaves it installed)
        "#]]
        .assert_eq(&render_plan(&plan));
    }

    #[test]
    fn update_summary() {
        let plan = plan(&uc22(1), &uc22(2), &ready()).expect("plan");
        assert_eq!(plan.kind, RemodelKind::Update);
        assert_eq!(plan.summary, "Refresh model assertion from revision 1 to 2");
        assert_eq!(plan.diff.headers.len(), 1);
        assert_eq!(
            plan.diff.header("revision").map(|c| (c.old.as_str(), c.new.as_str())),
            Some(("1", "2"))
        );
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn store_installs_are_the_required_snaps_not_installed_essential_first() {
        let mut snaps = UC22_SNAPS.to_vec();
        snaps.push(("htop", "app", "latest/stable", "optional"));
        snaps.push(("pocketses", "app", "latest/edge", "required"));
        snaps.push(("extra", "app", "latest/stable", "required"));
        let target = view(&text("ubuntu-core-22-amd64", "core22", &snaps));
        // Nothing installed: kernel, base, gadget (snapd's order), then the required apps;
        // never the snapd snap, never an optional snap.
        assert_eq!(
            store_installs(&target, &[]),
            names(&["pc-kernel", "core22", "pc", "pocketses", "extra"])
        );
        let installed = names(&["snapd", "pc", "pc-kernel", "core22", "pocketses"]);
        assert_eq!(store_installs(&target, &installed), names(&["extra"]));
    }

    #[test]
    fn store_installs_of_a_classic_model_are_its_required_snaps() {
        let text = "type: model\nauthority-id: developer1\nseries: 16\nbrand-id: developer1\nmodel: pocketses-classic\nrevision: 2\nclassic: true\narchitecture: amd64\ngadget: pocketses-test-gadget\nrequired-snaps:\n  - core22\n  - remodel-extra\n  - remodel-missing\ntimestamp: 2026-01-02T00:00:00Z\nsign-key-sha3-384: Jv8_JiHiIzJVcO9M55pPdqSDWUvuhfDIBJUS-3VW7F_idjix7Ul8YntbmAlGLbcz\n\nAAAA\n";
        let target = view(text);
        let installed = names(&["snapd", "core22", "pocketses-test-gadget", "pocketses"]);
        assert_eq!(
            store_installs(&target, &installed),
            names(&["remodel-extra", "remodel-missing"])
        );
    }

    #[test]
    fn a_snap_the_store_lacks_is_snapds_snap_not_found() {
        let ctx = Context { store_missing: names(&["remodel-missing"]), ..ready() };
        let refusals = plan(&uc22(1), &uc22(2), &ctx).expect_err("refused");
        expect![[r#"
            pre-flight: snapd would refuse this remodel; nothing was sent to snapd
            - cannot remodel device: snap not found (at once)
              why: the new model requires the snap "remodel-missing", which the device does not have and its store does not have either (snapd's GET /v2/find?name=… answers "snap not found"); publish it in the brand's store, or leave it out of the model
        "#]]
        .assert_eq(&render_refusals(&refusals, Origin::Preflight));
        let two = Context { store_missing: names(&["a", "b"]), ..ready() };
        let refusals = plan(&uc22(1), &uc22(2), &two).expect_err("refused");
        assert_eq!(refusals.len(), 1, "snapd stops at the first: one refusal for all");
        assert!(refusals[0].reason.contains(r#"the snaps "a", "b""#), "{}", refusals[0].reason);
    }

    #[test]
    fn the_store_refusal_comes_after_snapds_own_checks_and_never_offline() {
        let ctx = Context {
            store_missing: names(&["x"]),
            conflicting_change: Some(("7".to_string(), "remodel".to_string())),
            ..ready()
        };
        assert_eq!(
            refusal_texts(&uc22(1), &uc22(2), &ctx),
            [
                "cannot remodel device: remodeling in progress, no other changes allowed until this is done",
                "cannot remodel device: snap not found"
            ]
        );
        let offline = Context { store_missing: names(&["x"]), offline: true, ..ready() };
        assert!(plan(&uc22(1), &uc22(2), &offline).is_ok());
    }
}
