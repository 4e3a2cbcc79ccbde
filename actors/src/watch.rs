//! `netsvc watch registry` and `netsvc watch reports SERVICE PATTERN`: live, until Ctrl-C,
//! `--count N` or `--duration S`.

use std::collections::HashMap;
use std::pin::Pin;
use std::time::Duration;

use clap::{Args, Subcommand};
use futures_core::Stream;
use netsvc::{Format, Node, ProcessId, RegistryEvent, Report, Status};
use serde_json::json;

use crate::client::{seconds, service_name, CliError, Client, ConnectArgs};
use crate::list::short;

/// Arguments of `netsvc watch`.
#[derive(Args, Debug)]
pub(crate) struct WatchArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug)]
enum What {
    /// Services available and withdrawn, groups joined and left: the current state first.
    Registry(Common),
    /// Reports of every service named SERVICE matching PATTERN: cached ones first.
    Reports(ReportsArgs),
}

#[derive(Args, Debug)]
struct Common {
    /// Stop after this many events or reports.
    #[arg(long)]
    count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(Args, Debug)]
struct ReportsArgs {
    /// The publishing service, by name (every service of that name, now and later).
    service: String,
    /// The subject pattern: `*` any run of characters, `?` one character.
    pattern: String,
    #[command(flatten)]
    common: Common,
}

/// Runs `netsvc watch`.
pub(crate) async fn run(args: WatchArgs) -> Result<(), CliError> {
    match args.what {
        What::Registry(common) => registry(common).await,
        What::Reports(args) => reports(args).await,
    }
}

/// The next item of `stream`, or `None` when it ended.
async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
}

/// Prints each item of `stream` with `print` until the stream ends, `--count` items were
/// printed, `--duration` passed or Ctrl-C.
async fn follow<S: Stream + Unpin>(
    mut stream: S,
    (common, duration): (&Common, Option<Duration>),
    client: &mut Client,
    mut print: impl AsyncFnMut(S::Item),
) -> Result<(), CliError> {
    let deadline = duration.map(|d| tokio::time::Instant::now() + d);
    let until = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let lost = client.lost();
    tokio::pin!(lost);
    let mut printed = 0u64;
    while common.count.is_none_or(|n| printed < n) {
        tokio::select! {
            item = next(&mut stream) => match item {
                Some(item) => {
                    print(item).await;
                    printed += 1;
                }
                None => break,
            },
            _ = &mut until => break,
            _ = &mut interrupted => break,
            error = &mut lost => return Err(error),
        }
    }
    Ok(())
}

/// `--duration`, checked before anything else is done.
fn duration(common: &Common) -> Result<Option<Duration>, CliError> {
    common
        .duration
        .map(|s| seconds("--duration", s, true))
        .transpose()
}

/// Node names by process, asked of each process once (the mesh may grow while watching).
struct NodeNames {
    node: Node,
    known: HashMap<ProcessId, String>,
}

impl NodeNames {
    async fn of(&mut self, process: ProcessId) -> String {
        if let Some(name) = self.known.get(&process) {
            return name.clone();
        }
        let call = self.node.introspect(process);
        // A node that does not answer is not asked again: "?" stays its name here.
        let name = match tokio::time::timeout(Duration::from_millis(1500), call).await {
            Ok(Ok(info)) => info.node,
            _ => "?".to_owned(),
        };
        self.known.insert(process, name.clone());
        name
    }
}

async fn registry(common: Common) -> Result<(), CliError> {
    let duration = duration(&common)?;
    let mut client = common.connect.join("netsvc-watch").await?;
    let stream = client.node.watch_registry();
    let mut names = NodeNames {
        node: client.node.clone(),
        known: HashMap::new(),
    };
    let json = common.json;
    follow(
        stream,
        (&common, duration),
        &mut client,
        async |event: RegistryEvent| {
            let b = &event.binding;
            let node = names.of(b.process()).await;
            let what = match (&event.group, event.status) {
                (None, Status::Available) => "available",
                (None, Status::Withdrawn) => "withdrawn",
                (Some(_), Status::Available) => "joined",
                (Some(_), Status::Withdrawn) => "left",
            };
            let group = event.group.as_ref().map(|g| g.as_str().to_owned());
            if json {
                println!(
                    "{}",
                    json!({
                        "event": what,
                        "name": b.name().as_str(),
                        "agent": b.agent().to_string(),
                        "group": group,
                        "process": b.process().to_string(),
                        "node": node,
                    })
                );
            } else {
                let group = group.map_or_else(String::new, |g| format!(" group {g:?}"));
                println!(
                    "{what:<9} {} {}{group} (process {}, node {node})",
                    b.name().as_str(),
                    short(&b.agent().to_string()),
                    short(&b.process().to_string()),
                );
            }
        },
    )
    .await
}

async fn reports(args: ReportsArgs) -> Result<(), CliError> {
    let service = service_name("service name", &args.service)?;
    let pattern = netsvc::SubjectPattern::new(&args.pattern)
        .map_err(|e| CliError::usage(format!("invalid pattern {:?}: {e}", args.pattern)))?;
    let common = args.common;
    let duration = duration(&common)?;
    let mut client = common.connect.join("netsvc-watch").await?;
    let stream = client
        .node
        .watch_reports(service, pattern, Format::Json)
        .map_err(|e| CliError::usage(e.to_string()))?;
    let json = common.json;
    follow(
        stream,
        (&common, duration),
        &mut client,
        async |report: Report| {
            let content = report
                .content()
                .to_json()
                .unwrap_or_else(|e| json!({ "undecodable": e.to_string() }));
            let publisher = report.publisher();
            let pattern = report.pattern().map(|p| p.as_str().to_owned());
            if json {
                println!(
                    "{}",
                    json!({
                        "publisher": publisher.name().as_str(),
                        "agent": publisher.agent().to_string(),
                        "subject": report.subject().as_str(),
                        "pattern": pattern,
                        "content": content,
                    })
                );
            } else {
                println!(
                    "{}/{} {} [{}] {content}",
                    publisher.name().as_str(),
                    short(&publisher.agent().to_string()),
                    report.subject().as_str(),
                    pattern.unwrap_or_default(),
                );
            }
        },
    )
    .await
}
