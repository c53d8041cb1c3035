//! Pre-flight of a remodel: current model + target model + device facts → a [`Plan`] or every
//! [`Refusal`] snapd would give. \[pure\]
//!
//! The rules and their wording are snapd's `devicestate.Remodel` (in its order) and
//! `ClassifyRemodel`; a gadget layout problem (found by [`crate::gadget::check_compatible`] and
//! passed in through [`Context::gadget_problems`]) is the error the change would end with.
//! Nothing here talks to snapd: the caller gathers the [`Context`].

use std::fmt::Write as _;

use crate::assertion::model::Model;
use crate::assertion::Assertion;
use crate::gadget::Incompatibility;

/// What the plan needs from a model assertion.
///
/// Built from a decoded assertion with [`ModelFacts::from_assertion`]; it reads headers only,
/// the assertion module owns parsing and validation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelFacts {
    /// `brand-id`.
    pub brand_id: String,
    /// `model`.
    pub model: String,
    /// `series`.
    pub series: String,
    /// `architecture`.
    pub architecture: String,
    /// `classic: true`.
    pub classic: bool,
    /// `grade`: `None` for a pre-UC20 model (snapd's "unset").
    pub grade: Option<String>,
    /// `base`: empty for UC16 (the `core` snap).
    pub base: String,
    /// `store`: empty for the global store.
    pub store: String,
    /// `revision`.
    pub revision: u64,
    /// Every snap the model names, essential snaps first.
    pub snaps: Vec<ModelSnap>,
}

/// A snap named by a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSnap {
    /// Snap name.
    pub name: String,
    /// `app`, `base`, `gadget`, `kernel`, `core` or `snapd`.
    pub type_: String,
    /// `default-channel` (UC20+) or the track of `kernel=`/`gadget=` (UC16/18), if given.
    pub channel: Option<String>,
    /// `required` or `optional`.
    pub presence: String,
}

impl ModelFacts {
    /// Validates a decoded assertion as a model (the assertion module's rules) and reads its facts.
    ///
    /// # Errors
    /// When it is not a model, or every problem snapd would find in it.
    pub fn from_assertion(assertion: &Assertion) -> Result<ModelFacts, String> {
        if assertion.type_name() != "model" {
            return Err(format!("new model is not a model assertion: {}", assertion.type_name()));
        }
        let model = Model::from_assertion(assertion).map_err(|problems| {
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            format!("cannot decode new model assertion: {}", list.join("; "))
        })?;
        Ok(ModelFacts::from(&model))
    }

    /// Reads the facts of the device's current model as snapd serves it, without validating it
    /// (snapd already accepted it).
    pub fn from_current(assertion: &Assertion) -> ModelFacts {
        ModelFacts::from(&crate::assertion::model::view(assertion.headers()))
    }
    /// The snap of one type (`kernel`, `gadget`), if the model names one.
    pub fn snap_of_type(&self, type_: &str) -> Option<&ModelSnap> {
        self.snaps.iter().find(|s| s.type_ == type_)
    }

    /// The boot base: `base`, or `core` on UC16.
    pub fn boot_base(&self) -> &str {
        if self.base.is_empty() {
            "core"
        } else {
            &self.base
        }
    }

    fn grade_text(&self) -> &str {
        self.grade.as_deref().unwrap_or("unset")
    }
}

impl From<&Model> for ModelFacts {
    fn from(model: &Model) -> ModelFacts {
        let snaps = model
            .snaps
            .iter()
            .map(|snap| {
                let channel = [&snap.default_channel, &snap.pinned_track]
                    .into_iter()
                    .find(|c| !c.is_empty())
                    .cloned();
                ModelSnap {
                    name: snap.name.clone(),
                    type_: if snap.snap_type.is_empty() {
                        "app".to_string()
                    } else {
                        snap.snap_type.clone()
                    },
                    channel,
                    presence: if snap.presence.is_empty() {
                        "required".to_string()
                    } else {
                        snap.presence.clone()
                    },
                }
            })
            .collect();
        ModelFacts {
            brand_id: model.brand_id.clone(),
            model: model.model.clone(),
            series: model.series.clone(),
            architecture: model.architecture.clone(),
            classic: model.classic,
            grade: if model.grade.is_empty() { None } else { Some(model.grade.clone()) },
            base: model.base.clone(),
            store: model.store.clone(),
            revision: model.revision,
            snaps,
        }
    }
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
    /// The device boots classically (a classic model without a kernel).
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
}

/// How snapd classifies the remodel (`ClassifyRemodel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Same brand, model and store: new revision or contents.
    Update,
    /// Same brand and model, another store.
    StoreSwitch,
    /// Another brand or model: the device registers again for a new serial.
    Reregistration,
}

impl Kind {
    /// What it means, in plain words.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Update => "update (same brand, model and store)",
            Kind::StoreSwitch => "store switch (same brand and model, new store)",
            Kind::Reregistration => {
                "re-registration (new brand or model: the device asks for a new serial)"
            }
        }
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

/// What changes between two models.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "what", rename_all = "kebab-case")]
pub enum Difference {
    /// The model revision.
    Revision {
        /// Current.
        from: u64,
        /// Target.
        to: u64,
    },
    /// Brand or model name.
    Identity {
        /// Current `brand/model`.
        from: String,
        /// Target `brand/model`.
        to: String,
    },
    /// The store.
    Store {
        /// Current (empty: global store).
        from: String,
        /// Target.
        to: String,
    },
    /// An essential snap (kernel, gadget, boot base, snapd) is replaced by another one.
    Replaced {
        /// `kernel`, `gadget`, `base`, `snapd`.
        role: String,
        /// Current snap.
        from: String,
        /// Target snap.
        to: String,
        /// Target channel.
        channel: Option<String>,
    },
    /// A snap's channel changes.
    Channel {
        /// Snap name.
        name: String,
        /// Current channel.
        from: Option<String>,
        /// Target channel.
        to: Option<String>,
    },
    /// A snap's presence changes.
    Presence {
        /// Snap name.
        name: String,
        /// Current presence.
        from: String,
        /// Target presence.
        to: String,
    },
    /// The target model names a snap the current one does not.
    Added {
        /// Snap name.
        name: String,
        /// Channel.
        channel: Option<String>,
        /// `required` (installed by the remodel) or `optional`.
        presence: String,
    },
    /// The current model names a snap the target does not (snapd leaves it installed).
    Dropped {
        /// Snap name.
        name: String,
    },
}

/// What the remodel will do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    /// snapd's classification.
    pub kind: Kind,
    /// The summary snapd will give the change.
    pub summary: String,
    /// Everything that differs, identity first, then essential snaps, then the rest.
    pub differences: Vec<Difference>,
}

/// Checks a remodel from `current` to `target` as snapd will, and lists what will change.
///
/// # Errors
/// Every refusal, in snapd's order (snapd reports only the first).
pub fn plan(
    current: &ModelFacts,
    target: &ModelFacts,
    ctx: &Context,
) -> Result<Plan, Vec<Refusal>> {
    let kind = classify(current, target);
    let refusals = refusals(current, target, ctx, kind);
    if !refusals.is_empty() {
        return Err(refusals);
    }
    let summary = if current.brand_id == target.brand_id && current.model == target.model {
        format!("Refresh model assertion from revision {} to {}", current.revision, target.revision)
    } else {
        format!("Remodel device to {}/{} ({})", target.brand_id, target.model, target.revision)
    };
    Ok(Plan { kind, summary, differences: differences(current, target) })
}

/// snapd's `ClassifyRemodel`.
pub fn classify(current: &ModelFacts, target: &ModelFacts) -> Kind {
    if current.brand_id != target.brand_id || current.model != target.model {
        Kind::Reregistration
    } else if current.store != target.store {
        Kind::StoreSwitch
    } else {
        Kind::Update
    }
}

fn post(message: &str, reason: &str) -> Refusal {
    Refusal {
        snapd: format!("cannot remodel device: {message}"),
        reason: reason.to_string(),
        stage: Stage::Post,
    }
}

fn refusals(current: &ModelFacts, target: &ModelFacts, ctx: &Context, kind: Kind) -> Vec<Refusal> {
    let mut out = Vec::new();
    if !ctx.seeded {
        out.push(post(
            "cannot remodel until fully seeded",
            "the device is still installing the snaps of its seed; wait until `snap wait system seed.loaded` returns",
        ));
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
    let serial_exempt = ctx.offline && kind == Kind::Update;
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
        if current.grade.is_none() {
            out.push(post(
                "cannot remodel from pre-UC20 to UC20+ models",
                "a UC16/UC18 device cannot become UC20+ by remodel (the disk layout differs); reinstall it",
            ));
        } else {
            out.push(post(
                &format!(
                    "cannot remodel from grade {} to grade {}",
                    current.grade_text(),
                    target.grade_text()
                ),
                &format!("the new model must keep `grade: {}`", current.grade_text()),
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
    if ctx.offline && kind == Kind::Reregistration {
        out.push(post(
            "cannot remodel offline to different brand ID / model yet",
            "a new brand or model needs a new serial from the brand's serial vault, which needs the network: remodel online",
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

fn differences(current: &ModelFacts, target: &ModelFacts) -> Vec<Difference> {
    let mut out = Vec::new();
    if current.brand_id != target.brand_id || current.model != target.model {
        out.push(Difference::Identity {
            from: format!("{}/{}", current.brand_id, current.model),
            to: format!("{}/{}", target.brand_id, target.model),
        });
    }
    if current.revision != target.revision {
        out.push(Difference::Revision { from: current.revision, to: target.revision });
    }
    if current.store != target.store {
        out.push(Difference::Store { from: current.store.clone(), to: target.store.clone() });
    }
    let mut handled: Vec<&str> = Vec::new();
    for role in ["kernel", "gadget", "base", "snapd"] {
        let pick = |m: &'_ ModelFacts| -> Option<ModelSnap> {
            if role == "base" {
                m.snaps.iter().find(|s| s.name == m.boot_base()).cloned()
            } else {
                m.snap_of_type(role).cloned()
            }
        };
        let (Some(from), Some(to)) = (pick(current), pick(target)) else { continue };
        if from.name != to.name {
            handled.push(leak(&current.snaps, &from.name));
            handled.push(leak(&target.snaps, &to.name));
            out.push(Difference::Replaced {
                role: role.to_string(),
                from: from.name,
                to: to.name,
                channel: to.channel,
            });
        }
    }
    for to in &target.snaps {
        if handled.contains(&to.name.as_str()) {
            continue;
        }
        match current.snaps.iter().find(|s| s.name == to.name) {
            None => out.push(Difference::Added {
                name: to.name.clone(),
                channel: to.channel.clone(),
                presence: to.presence.clone(),
            }),
            Some(from) => {
                if from.channel != to.channel {
                    out.push(Difference::Channel {
                        name: to.name.clone(),
                        from: from.channel.clone(),
                        to: to.channel.clone(),
                    });
                }
                if from.presence != to.presence {
                    out.push(Difference::Presence {
                        name: to.name.clone(),
                        from: from.presence.clone(),
                        to: to.presence.clone(),
                    });
                }
            }
        }
    }
    for from in &current.snaps {
        if !handled.contains(&from.name.as_str())
            && !target.snaps.iter().any(|s| s.name == from.name)
        {
            out.push(Difference::Dropped { name: from.name.clone() });
        }
    }
    out
}

/// Returns the name as borrowed from the list (so `handled` can hold `&str` of both models).
fn leak<'a>(snaps: &'a [ModelSnap], name: &str) -> &'a str {
    snaps.iter().find(|s| s.name == name).map(|s| s.name.as_str()).unwrap_or_default()
}

fn channel_text(channel: Option<&String>) -> String {
    channel.map_or_else(|| "the default channel".to_string(), |c| c.to_string())
}

/// The plan as the user reads it after `--check`.
pub fn render_plan(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "remodel: {}", plan.kind.describe());
    let _ = writeln!(out, "change summary: {}", plan.summary);
    if plan.differences.is_empty() {
        let _ = writeln!(out, "no differences: the models name the same snaps and channels");
        return out;
    }
    let _ = writeln!(out, "what changes:");
    for diff in &plan.differences {
        let line = match diff {
            Difference::Identity { from, to } => {
                format!("model {from} -> {to} (new serial requested)")
            }
            Difference::Revision { from, to } => format!("model revision {from} -> {to}"),
            Difference::Store { from, to } => {
                let name = |s: &str| {
                    if s.is_empty() {
                        "global store".to_string()
                    } else {
                        format!("store {s}")
                    }
                };
                format!("{} -> {}", name(from), name(to))
            }
            Difference::Replaced { role, from, to, channel } => {
                format!("{role} {from} -> {to} (from {})", channel_text(channel.as_ref()))
            }
            Difference::Channel { name, from, to } => {
                format!(
                    "{name}: channel {} -> {}",
                    channel_text(from.as_ref()),
                    channel_text(to.as_ref())
                )
            }
            Difference::Presence { name, from, to } => format!("{name}: {from} -> {to}"),
            Difference::Added { name, channel, presence } => {
                format!("add {name} ({presence}, from {})", channel_text(channel.as_ref()))
            }
            Difference::Dropped { name } => {
                format!("{name} is no longer in the model (snapd leaves it installed)")
            }
        };
        let _ = writeln!(out, "  - {line}");
    }
    out
}

/// Refusals as the user reads them: snapd's words, then why and what to do.
pub fn render_refusals(refusals: &[Refusal]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "pre-flight: snapd would refuse this remodel; nothing was sent to snapd");
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

    fn uc22(revision: u64) -> ModelFacts {
        let snap = |name: &str, type_: &str, channel: &str| ModelSnap {
            name: name.to_string(),
            type_: type_.to_string(),
            channel: Some(channel.to_string()),
            presence: "required".to_string(),
        };
        ModelFacts {
            brand_id: "canonical".to_string(),
            model: "ubuntu-core-22-amd64".to_string(),
            series: "16".to_string(),
            architecture: "amd64".to_string(),
            classic: false,
            grade: Some("signed".to_string()),
            base: "core22".to_string(),
            store: String::new(),
            revision,
            snaps: vec![
                snap("pc", "gadget", "22/stable"),
                snap("pc-kernel", "kernel", "22/stable"),
                snap("core22", "base", "latest/stable"),
                snap("snapd", "snapd", "latest/stable"),
            ],
        }
    }

    fn ready() -> Context {
        Context { seeded: true, has_serial: true, ..Context::default() }
    }

    fn refusal_texts(current: &ModelFacts, target: &ModelFacts, ctx: &Context) -> Vec<String> {
        match plan(current, target, ctx) {
            Ok(plan) => panic!("expected refusals, got {plan:?}"),
            Err(refusals) => refusals.into_iter().map(|r| r.snapd).collect(),
        }
    }

    #[test]
    fn classify_like_snapd() {
        let a = uc22(1);
        let mut b = uc22(2);
        assert_eq!(classify(&a, &b), Kind::Update);
        b.store = "brand-store".to_string();
        assert_eq!(classify(&a, &b), Kind::StoreSwitch);
        b.model = "other".to_string();
        assert_eq!(classify(&a, &b), Kind::Reregistration);
    }

    #[test]
    fn refusals_in_snapds_order_with_its_wording() {
        let current = uc22(3);
        let mut target = uc22(2);
        target.architecture = "arm64".to_string();
        target.grade = Some("dangerous".to_string());
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
        uc16.grade = None;
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
        uc18.grade = None;
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
        let err = ModelFacts::from_assertion(&assertion).expect_err("invalid");
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
        .assert_eq(&render_refusals(&refusals));
    }

    #[test]
    fn plan_lists_what_changes() {
        let mut uc20 = uc22(1);
        uc20.model = "ubuntu-core-20-amd64".to_string();
        uc20.base = "core20".to_string();
        uc20.snaps = vec![
            ModelSnap {
                name: "pc".into(),
                type_: "gadget".into(),
                channel: Some("20/stable".into()),
                presence: "required".into(),
            },
            ModelSnap {
                name: "pc-kernel".into(),
                type_: "kernel".into(),
                channel: Some("20/stable".into()),
                presence: "required".into(),
            },
            ModelSnap {
                name: "core20".into(),
                type_: "base".into(),
                channel: Some("latest/stable".into()),
                presence: "required".into(),
            },
            ModelSnap {
                name: "snapd".into(),
                type_: "snapd".into(),
                channel: Some("latest/stable".into()),
                presence: "required".into(),
            },
            ModelSnap {
                name: "htop".into(),
                type_: "app".into(),
                channel: Some("latest/stable".into()),
                presence: "optional".into(),
            },
        ];
        let mut target = uc22(1);
        target.snaps.push(ModelSnap {
            name: "pocketses".into(),
            type_: "app".into(),
            channel: Some("latest/edge".into()),
            presence: "required".into(),
        });
        let plan = plan(&uc20, &target, &ready()).expect("plan");
        expect![[r#"
            remodel: re-registration (new brand or model: the device asks for a new serial)
            change summary: Remodel device to canonical/ubuntu-core-22-amd64 (1)
            what changes:
              - model canonical/ubuntu-core-20-amd64 -> canonical/ubuntu-core-22-amd64 (new serial requested)
              - base core20 -> core22 (from latest/stable)
              - pc: channel 20/stable -> 22/stable
              - pc-kernel: channel 20/stable -> 22/stable
              - add pocketses (required, from latest/edge)
              - htop is no longer in the model (snapd leaves it installed)
        "#]]
        .assert_eq(&render_plan(&plan));
    }

    #[test]
    fn update_summary() {
        let plan = plan(&uc22(1), &uc22(2), &ready()).expect("plan");
        assert_eq!(plan.kind, Kind::Update);
        assert_eq!(plan.summary, "Refresh model assertion from revision 1 to 2");
        assert_eq!(plan.differences, [Difference::Revision { from: 1, to: 2 }]);
    }

    #[test]
    fn facts_from_a_real_model_assertion() {
        let text = "type: model\nauthority-id: canonical\nseries: 16\nbrand-id: canonical\nmodel: ubuntu-core-22-amd64\narchitecture: amd64\nbase: core22\ngrade: signed\nsnaps:\n  -\n    default-channel: 22/stable\n    id: UqFziVZDHLSyO3TqSWgNBoAdHbLI4dAH\n    name: pc\n    type: gadget\n  -\n    default-channel: 22/stable\n    id: pYVQrBcKmBa0mZ4CCN7ExT6jH8rY1hza\n    name: pc-kernel\n    type: kernel\n  -\n    default-channel: latest/stable\n    id: amcUKQILKXHHTlmSa7NMdnXSx02dNeeT\n    name: core22\n    type: base\n  -\n    default-channel: latest/stable\n    id: PMrrV4ml8uWuEUDBT8dSGnKUYbevVhc4\n    name: snapd\n    type: snapd\ntimestamp: 2022-04-04T10:40:41+00:00\nsign-key-sha3-384: 9tydnLa6MTJ-jaQTFUXEwHl1yRx7ZS4K5cyFDhYDcPzhS7uyEkDxdUjg9g08BtNn\n\nAcLBXAQAAQoABgUCYkqzWQAA\n";
        let assertion = crate::assertion::decode(text.as_bytes()).expect("decode");
        let facts = ModelFacts::from_assertion(&assertion).expect("facts");
        assert_eq!(facts.grade.as_deref(), Some("signed"));
        assert_eq!(facts.revision, 0);
        assert_eq!(
            facts.snap_of_type("gadget").map(|s| s.channel.clone()),
            Some(Some("22/stable".to_string()))
        );
        assert_eq!(facts.snaps.len(), 4);
    }
}
