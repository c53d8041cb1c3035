//! `pocketses remodel`: pre-flight, drive and follow a remodel; `--watch` and `--abort` a change.
//!
//! This is the edge: it reads files, asks snapd for the device's facts, runs the pure
//! [`mod@super::plan`] and, only when the plan is accepted and `--check` is not given, posts the new
//! model and follows the change with a live view ([`LiveView`] on a terminal, plain lines
//! otherwise, JSON lines with `--json`). A refused pre-flight never posts.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::drive::{self, Record, Request};
use super::plan::{self, Context};
use super::view::{self, Outcome, RemodelEvent};
use crate::assertion::model::{self, Model};
use crate::gadget::{self, snapfile, Ruleset};
use crate::snapd::{multipart::SnapFile, Change, ChangeSelect, Client};

/// Flags of this command.
#[derive(Debug, clap::Args)]
pub struct RemodelArgs {
    /// The new model assertion (signed), e.g. uc22.model.
    #[arg(value_name = "NEW.model", required_unless_present_any = ["watch", "abort"])]
    pub model: Option<PathBuf>,
    /// Stop after the pre-flight and print the plan; nothing is sent to snapd.
    #[arg(long, conflicts_with_all = ["watch", "abort"])]
    pub check: bool,
    /// Remodel without the store, using the snaps and assertions given.
    #[arg(long)]
    pub offline: bool,
    /// A snap file to send with an offline remodel (repeatable).
    #[arg(long = "snap", value_name = "FILE", requires = "offline")]
    pub snaps: Vec<PathBuf>,
    /// An assertion file to send with an offline remodel (repeatable).
    #[arg(long = "assertion", value_name = "FILE", requires = "offline")]
    pub assertions: Vec<PathBuf>,
    /// The new gadget (gadget.yaml or gadget .snap) to check against the current layout.
    #[arg(long, value_name = "FILE")]
    pub gadget: Option<PathBuf>,
    /// The current gadget (default: `/snap/<gadget>/current/meta/gadget.yaml`).
    #[arg(long, value_name = "FILE")]
    pub current_gadget: Option<PathBuf>,
    /// One JSON object per line instead of the human view.
    #[arg(long)]
    pub json: bool,
    /// Follow an existing remodel change again.
    #[arg(long, value_name = "CHANGE_ID", conflicts_with_all = ["model", "abort"])]
    pub watch: Option<String>,
    /// Abort a remodel change that is still running.
    #[arg(long, value_name = "CHANGE_ID", conflicts_with_all = ["model", "watch"])]
    pub abort: Option<String>,
    /// Milliseconds between polls of the change.
    #[arg(long, hide = true, default_value_t = 500)]
    pub poll_ms: u64,
}

/// Exit code when the user detaches with Ctrl-C (the remodel goes on in snapd).
pub const EXIT_DETACHED: u8 = 130;

/// Runs the command.
///
/// # Errors
/// When a file cannot be read, snapd cannot be asked, or snapd refuses the request.
pub fn main(args: RemodelArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: RemodelArgs) -> anyhow::Result<ExitCode> {
    let client = Client::from_env();
    let poll = Duration::from_millis(args.poll_ms.max(1));
    if let Some(id) = &args.abort {
        return abort(&client, id, args.json).await;
    }
    if let Some(id) = &args.watch {
        return watch(&client, id, poll, args.json).await;
    }
    let Some(model_path) = &args.model else {
        anyhow::bail!("a new model assertion is required");
    };
    let input = Input {
        model: model_path.clone(),
        offline: args.offline,
        snaps: args.snaps.clone(),
        assertions: args.assertions.clone(),
        gadget: args.gadget.clone(),
        current_gadget: args.current_gadget.clone(),
    };
    let Preflight { request, current, target, ctx, gadget_checked, signature, store } =
        preflight(&client, &input).await?;
    let plan = match plan::plan(&current, &target, &ctx) {
        Ok(plan) => plan,
        Err(refusals) => {
            if args.json {
                println!("{}", RemodelEvent::Refused { refusals }.to_json());
            } else {
                print!("{}", plan::render_refusals(&refusals, plan::Origin::Preflight));
            }
            return Ok(ExitCode::from(1));
        }
    };
    let gadget_layout = match &gadget_checked {
        Some(path) => format!("gadget layout of {}: compatible with the current one", path.display()),
        // snapd does not check layouts on classic either (handlers_remodel.go:
        // checkGadgetRemodelCompatible returns at once when release.OnClassic).
        None if current.classic && current.kernel.is_none() => "gadget layout: not checked (a classic device's disk is not laid out by its gadget; snapd does not check it either)".to_string(),
        None => "gadget layout: not checked (give the new gadget with --gadget FILE or a gadget --snap)".to_string(),
    };
    if args.json {
        let event = RemodelEvent::Plan {
            plan: plan.clone(),
            gadget: gadget_checked.as_ref().map(|p| p.display().to_string()),
            gadget_layout,
            signature: signature.describe(),
            store: store.describe(),
        };
        println!("{}", event.to_json());
    } else {
        print!("{}", plan::render_plan(&plan));
        println!("{gadget_layout}");
        println!("{}", signature.describe());
        if let Some(line) = store.describe() {
            println!("{line}");
        }
    }
    if args.check {
        if !args.json {
            println!("pre-flight passed; run without --check to remodel");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let change_id = match drive::start(&client, &request).await {
        Ok(id) => id,
        Err(err) => {
            let kind = err.kind().map(|k| format!(" [{k}]")).unwrap_or_default();
            anyhow::bail!("{err}{kind}");
        }
    };
    {
        let path = drive::record_path();
        let record = Record {
            change: change_id.clone(),
            summary: plan.summary.clone(),
            target: format!("{}/{} rev {}", target.brand_id, target.model, target.revision),
            status: "Do".to_string(),
            ready: false,
            err: None,
        };
        if let Err(err) = drive::save_record(&path, &record) {
            eprintln!("warning: cannot record the remodel: {err:#}");
        }
    }
    watch(&client, &change_id, poll, args.json).await
}

/// What a pre-flight is given: the command's flags, or a fleet bundle's files.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// The new model assertion (signed).
    pub model: PathBuf,
    /// Remodel without the store.
    pub offline: bool,
    /// Snap files to send along (offline).
    pub snaps: Vec<PathBuf>,
    /// Assertion files to send along (offline).
    pub assertions: Vec<PathBuf>,
    /// The new gadget to check against the current layout (else a gadget among `snaps`).
    pub gadget: Option<PathBuf>,
    /// The current gadget (default: `/snap/<gadget>/current/meta/gadget.yaml`).
    pub current_gadget: Option<PathBuf>,
}

/// The pre-flight for callers other than the command (fleet bundles): `Ok((plan, request))`
/// when snapd would accept the remodel, every refusal otherwise. Nothing is posted.
///
/// # Errors
/// When a file cannot be read or snapd cannot be asked for the device's facts.
pub async fn check(
    client: &Client,
    input: &Input,
) -> anyhow::Result<Result<(plan::Plan, Request), Vec<plan::Refusal>>> {
    let Preflight { request, current, target, ctx, .. } = preflight(client, input).await?;
    Ok(plan::plan(&current, &target, &ctx).map(|plan| (plan, request)))
}

/// What the pre-flight gathered.
struct Preflight {
    request: Request,
    current: Model,
    target: Model,
    ctx: Context,
    /// The new gadget whose layout was checked, if one was given.
    gadget_checked: Option<PathBuf>,
    /// What became of the new model's signature.
    signature: Signature,
    /// What the store said about the snaps the remodel installs from it.
    store: StoreCheck,
}

/// The new model's signature, checked where its chain of trust is at hand.
enum Signature {
    /// Verified up to a trusted root; the references checked.
    Verified(Vec<String>),
    /// The signing key is not at hand (not built in, not in snapd, not given with --assertion).
    NotAtHand(String),
    /// The chain is at hand and does not check out.
    Failed(String),
}

impl Signature {
    fn describe(&self) -> String {
        match self {
            Signature::Verified(chain) => format!("signature: verified ({})", chain.join(" <- ")),
            Signature::NotAtHand(why) => {
                format!("signature: not verified here ({why}); snapd verifies it when it sets the model")
            }
            Signature::Failed(err) => format!("signature: does not verify: {err}"),
        }
    }
}

/// Checks the new model's chain of trust with snapd's built-in roots, the keys snapd already has
/// for the model's authority, and the assertions given with `--assertion`.
async fn verify_signature(
    client: &Client,
    model: &crate::assertion::Assertion,
    given: Vec<crate::assertion::Assertion>,
) -> Signature {
    use crate::assertion::trust::Database;
    let mut db = Database::builtin();
    db.add(given);
    // Keys snapd already has for this authority (the usual case when the brand does not change),
    // and up the chain to a self-signed root: snapd holds one only as its own trust root (a
    // snapd built with other roots, such as snapd's test keys, trusts what pocketses does not
    // have built in).
    let mut next = Some((model.sign_key_id().to_string(), model.authority_id().to_string()));
    for _ in 0..MAX_CHAIN {
        let Some((key_id, authority)) = next.take() else { break };
        let keys = fetch_assertions(client, "account-key", "public-key-sha3-384", &key_id).await;
        let accounts = fetch_assertions(client, "account", "account-id", &authority).await;
        for key in &keys {
            if crate::assertion::trust::is_self_signed_key(key) {
                let own = accounts.iter().filter(|a| a.header_str("account-id") == authority);
                db.trust(std::iter::once(key.clone()).chain(own.cloned()));
            } else if next.is_none() {
                next = Some((key.sign_key_id().to_string(), key.authority_id().to_string()));
            }
        }
        db.add(keys);
        db.add(accounts);
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let now = crate::assertion::time::Timestamp::from_unix(secs);
    match db.verify_chain(model, now) {
        Ok(links) => Signature::Verified(links.into_iter().map(|l| l.reference).collect()),
        Err(err) if err.0.starts_with("no matching public key") => Signature::NotAtHand(err.0),
        Err(err) => Signature::Failed(err.0),
    }
}

/// How many links up from the model `verify_signature` asks snapd for (model → brand key →
/// root key is two; snapd's own chains are no longer).
const MAX_CHAIN: usize = 4;

/// The assertions of one type snapd has for one header value (none when snapd has none or
/// cannot be asked: the signature is then reported as not verified here).
async fn fetch_assertions(
    client: &Client,
    kind: &str,
    header: &str,
    value: &str,
) -> Vec<crate::assertion::Assertion> {
    match client.assertions(kind, &[(header, value)]).await {
        Ok(found) => crate::assertion::decode_stream(found.text.as_bytes()).unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// Gathers everything the plan needs: the new model, the device's facts, the gadget check.
async fn preflight(client: &Client, args: &Input) -> anyhow::Result<Preflight> {
    let model_path = args.model.as_path();
    let text = std::fs::read_to_string(model_path)
        .with_context(|| format!("cannot read model assertion {}", model_path.display()))?;
    let assertion =
        crate::assertion::decode(text.as_bytes()).map_err(
            |err| match crate::assertion::unsigned(text.as_bytes()) {
                Some(unsigned) => anyhow::anyhow!(
                    "cannot read model assertion: {}",
                    unsigned.explain(&model_path.display().to_string())
                ),
                None => anyhow::anyhow!("cannot decode new model assertion: {err}"),
            },
        )?;
    let target = plan::target_model(&assertion).map_err(anyhow::Error::msg)?;

    let current_text = client.model().await.context("cannot get the current model from snapd")?;
    let current_assertion = crate::assertion::decode(current_text.as_bytes())
        .map_err(|err| anyhow::anyhow!("cannot decode the current model assertion: {err}"))?;
    // snapd already accepted the current model: view it without validating it.
    let current = model::view(current_assertion.headers());

    let in_progress = client
        .changes(ChangeSelect::InProgress, None)
        .await
        .context("cannot list snapd's changes")?;
    let has_serial = match client.serial().await {
        Ok(_) => true,
        Err(err) if err.is_not_found() => false,
        Err(err) => return Err(err).context("cannot ask snapd for the serial"),
    };
    let info = client.system_info().await.context("cannot get snapd's system information")?;

    let mut snaps = Vec::new();
    let mut new_gadget = args.gadget.clone();
    for path in &args.snaps {
        // Not read here: the file is streamed to snapd when the remodel is posted.
        std::fs::File::open(path)
            .with_context(|| format!("cannot read snap {}", path.display()))?;
        if new_gadget.is_none() && snapfile::is_gadget_snap(path)? {
            new_gadget = Some(path.clone());
        }
        let filename =
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        snaps.push(SnapFile { filename, path: path.clone() });
    }
    let mut assertions = Vec::new();
    for path in &args.assertions {
        assertions.push(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read assertion {}", path.display()))?,
        );
    }

    let mut chain = Vec::new();
    for (path, text) in args.assertions.iter().zip(&assertions) {
        let stream = crate::assertion::decode_stream(text.as_bytes())
            .map_err(|err| anyhow::anyhow!("cannot decode assertion {}: {err}", path.display()))?;
        chain.extend(stream);
    }
    let signature = verify_signature(client, &assertion, chain).await;
    let mut ctx = Context {
        seeded: !in_progress.iter().any(|c| c.kind == "seed"),
        has_serial,
        offline: args.offline,
        local_snaps: !snaps.is_empty(),
        classic_boot: info.on_classic
            && current.kernel.is_none()
            && plan::refuses_classic_boot_remodel(&info.version),
        known_revision: None,
        conflicting_change: in_progress
            .iter()
            .find(|c| c.kind != "seed")
            .map(|c| (c.id.clone(), c.kind.clone())),
        gadget_problems: Vec::new(),
        no_offline_remodel: (!plan::supports_offline_remodel(&info.version))
            .then(|| info.version.clone()),
        signature_problem: match &signature {
            Signature::Failed(err) => Some(err.clone()),
            _ => None,
        },
        store_missing: Vec::new(),
    };
    let store = if args.offline { StoreCheck::default() } else { ask_store(client, &target).await };
    ctx.store_missing.clone_from(&store.missing);
    if let Some(new_gadget) = &new_gadget {
        ctx.gadget_problems = gadget_problems(args, &current, new_gadget)?;
    }
    let request = Request { model: text, offline: args.offline, assertions, snaps };
    Ok(Preflight { request, current, target, ctx, gadget_checked: new_gadget, signature, store })
}

/// What snapd's store said about the snaps an online remodel installs from it
/// ([`plan::store_installs`]).
#[derive(Debug, Default)]
struct StoreCheck {
    /// Snaps the store has.
    found: Vec<String>,
    /// Snaps the store does not have (`snap-not-found`): snapd will refuse the remodel.
    missing: Vec<String>,
    /// Snaps snapd could not look up, and why (no network, a store without the endpoint).
    unknown: Vec<(String, String)>,
}

impl StoreCheck {
    /// One line for the plan, when any snap comes from the store.
    fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.found.is_empty() {
            parts.push(format!("has {}", self.found.join(", ")));
        }
        if !self.missing.is_empty() {
            parts.push(format!("has no {}", self.missing.join(", ")));
        }
        for (name, why) in &self.unknown {
            parts.push(format!(
                "not asked about {name} ({why}); snapd asks it when the remodel starts"
            ));
        }
        (!parts.is_empty()).then(|| format!("store: {}", parts.join("; ")))
    }
}

/// Asks snapd's store (`GET /v2/find?name=…`, through snapd) for every snap the remodel would
/// install from it. Never fails: what cannot be asked is listed as unknown.
async fn ask_store(client: &Client, target: &Model) -> StoreCheck {
    let mut out = StoreCheck::default();
    let installed: Vec<String> = match client.snaps().await {
        Ok(snaps) => snaps.into_iter().map(|s| s.name).collect(),
        Err(err) => {
            let why = format!("cannot list the installed snaps: {err}");
            out.unknown = target.snaps.iter().map(|s| (s.name.clone(), why.clone())).collect();
            return out;
        }
    };
    for name in plan::store_installs(target, &installed) {
        match client.find_name(&name).await {
            Ok(()) => out.found.push(name),
            Err(err) if err.is_kind(crate::snapd::kind::SNAP_NOT_FOUND) => {
                out.missing.push(name);
            }
            Err(err) => out.unknown.push((name, err.to_string())),
        }
    }
    out
}

fn gadget_problems(
    args: &Input,
    current: &Model,
    new_gadget: &Path,
) -> anyhow::Result<Vec<gadget::Incompatibility>> {
    let ruleset = if current.is_extended() { Ruleset::Uc20 } else { Ruleset::Uc16 };
    let current_path = match &args.current_gadget {
        Some(path) => path.clone(),
        None => {
            let Some(name) = current.gadget.as_ref().map(|s| s.name.clone()) else {
                anyhow::bail!("cannot check the gadget: the current model names no gadget");
            };
            PathBuf::from(format!("/snap/{name}/current/meta/gadget.yaml"))
        }
    };
    let old = snapfile::load(&current_path, ruleset).with_context(|| {
        "cannot check the gadget layout (give the current one with --current-gadget FILE)"
    })?;
    let new = snapfile::load(new_gadget, ruleset)?;
    Ok(gadget::check_compatible(&old, &new))
}

async fn abort(client: &Client, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let change = match client.abort_change(id).await {
        Ok(change) => change,
        // snapd's own message already says what failed ("cannot abort change N with nothing pending").
        Err(err @ crate::snapd::Error::Api { .. }) => anyhow::bail!("{err}"),
        Err(err) => return Err(err).with_context(|| format!("cannot abort change {id}")),
    };
    if json {
        let event = RemodelEvent::Abort {
            change: id.to_string(),
            status: change.status.as_str().to_string(),
        };
        println!("{}", event.to_json());
    } else {
        println!(
            "abort requested for change {id} ({}): snapd now undoes what was done",
            change.summary
        );
        println!("follow it with: pocketses remodel --watch {id}");
    }
    Ok(ExitCode::SUCCESS)
}

/// How events reach the user.
enum Sink {
    Json,
    Plain,
    Live(LiveView),
}

impl Sink {
    fn on(&mut self, event: &RemodelEvent, change: &Change) {
        match self {
            Sink::Json => println!("{}", event.to_json()),
            Sink::Plain => {
                if let Some(line) = view::render_line(event) {
                    println!("{line}");
                }
            }
            Sink::Live(live) => live.on(event, change),
        }
    }
}

/// The terminal view: one line per task transition above a progress bar per running task.
pub struct LiveView {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
}

impl Default for LiveView {
    fn default() -> Self {
        LiveView {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            bars: HashMap::new(),
        }
    }
}

impl LiveView {
    fn on(&mut self, event: &RemodelEvent, change: &Change) {
        if let Some(line) = view::render_line(event) {
            let _ = self.multi.println(line);
        }
        match event {
            RemodelEvent::Task { id, status, .. } if status != "Doing" => {
                if let Some(bar) = self.bars.remove(id) {
                    bar.finish_and_clear();
                }
            }
            RemodelEvent::Progress { id, summary, label, done, total, .. } => {
                let bytes = change.tasks.iter().any(|t| &t.id == id && t.kind == "download-snap");
                let bar = self.bars.entry(id.clone()).or_insert_with(|| {
                    let template = if bytes {
                        "  {msg} [{bar:30}] {bytes}/{total_bytes}"
                    } else {
                        "  {msg} [{bar:30}] {pos}/{len}"
                    };
                    let style = ProgressStyle::with_template(template)
                        .unwrap_or_else(|_| ProgressStyle::default_bar());
                    let bar = self.multi.add(ProgressBar::new(*total));
                    bar.set_style(style.progress_chars("=> "));
                    bar
                });
                bar.set_length(*total);
                bar.set_position(*done);
                bar.set_message(if label.is_empty() { summary.clone() } else { label.clone() });
            }
            RemodelEvent::Finished { .. } => {
                for (_, bar) in self.bars.drain() {
                    bar.finish_and_clear();
                }
            }
            _ => {}
        }
    }
}

async fn watch(client: &Client, id: &str, poll: Duration, json: bool) -> anyhow::Result<ExitCode> {
    let mut sink = if json {
        Sink::Json
    } else if std::io::stdout().is_terminal() {
        Sink::Live(LiveView::default())
    } else {
        Sink::Plain
    };
    let mut emit = |event: &RemodelEvent, change: &Change| sink.on(event, change);
    let followed = tokio::select! {
        res = drive::follow(client, id, poll, &mut emit) => Some(res),
        _ = tokio::signal::ctrl_c() => None,
    };
    if let Sink::Live(live) = &mut sink {
        for (_, bar) in live.bars.drain() {
            bar.finish_and_clear();
        }
    }
    let change = match followed {
        None => {
            if json {
                println!("{}", RemodelEvent::Detached { change: id.to_string() }.to_json());
            } else {
                println!("detached: the remodel goes on in snapd");
                println!("follow it again with: pocketses remodel --watch {id}");
                println!("or abort it with:     pocketses remodel --abort {id}");
            }
            return Ok(ExitCode::from(EXIT_DETACHED));
        }
        // snapd's own message says what is wrong (`cannot find change with id "N"`).
        Some(Err(err @ crate::snapd::Error::Api { .. })) => anyhow::bail!("{err}"),
        Some(Err(err)) => return Err(err).with_context(|| format!("cannot follow change {id}")),
        Some(Ok(change)) => change,
    };
    {
        let path = drive::record_path();
        if let Err(err) = drive::update_record(&path, &change) {
            eprintln!("warning: cannot update the remodel record: {err:#}");
        }
    }
    if !json {
        print!("{}", view::render_outcome(&change));
    }
    Ok(match view::outcome(&change) {
        Outcome::Done => ExitCode::SUCCESS,
        Outcome::Undone | Outcome::Failed => ExitCode::from(1),
    })
}
