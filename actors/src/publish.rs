//! `netsvc publish --as NAME SUBJECT JSON`: a service owned by the command line publishes a
//! JSON report (or several), so that a script can feed the mesh.

use std::time::Duration;

use clap::Args;
use netsvc::prelude::*;
use netsvc::{ServiceOptions, Subject};

use crate::call::parse_arg;
use crate::client::{seconds, service_name, CliError, ConnectArgs};

/// Arguments of `netsvc publish`.
#[derive(Args, Debug)]
pub(crate) struct PublishArgs {
    /// The name of the publishing service.
    #[arg(long = "as", value_name = "NAME")]
    name: String,
    /// The subject.
    subject: String,
    /// The content, a JSON value (a bare word that is not JSON is a string).
    content: String,
    /// `forever` (cached until the service ends), `none` (not cached) or a number of seconds.
    #[arg(long, default_value = "forever")]
    lifetime: String,
    /// How many reports to publish.
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Seconds between two reports.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    interval: f64,
    /// Seconds to stay after the last report, so that subscribers that come meanwhile get
    /// the cached value; the service and its cached reports end with the command.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    linger: f64,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// The lifetime of `--lifetime`.
pub(crate) fn parse_lifetime(text: &str) -> Result<Lifetime, CliError> {
    match text {
        "forever" => Ok(Lifetime::Forever),
        "none" => Ok(Lifetime::None),
        seconds => seconds
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .map(Lifetime::For)
            .ok_or_else(|| {
                CliError::usage(format!(
                    "--lifetime must be forever, none or a number of seconds, got {text:?}"
                ))
            }),
    }
}

/// The service of `netsvc publish`: publishes `count` reports, `interval` apart, then
/// stays `linger` and shuts the node down.
#[derive(Service)]
struct Publisher {
    subject: Subject,
    content: serde_json::Value,
    lifetime: Lifetime,
    left: u64,
    interval: Duration,
    linger: Duration,
}

impl Service for Publisher {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        self.publish(ctx);
    }

    fn timer(&mut self, _: &str, ctx: &mut ServiceContext<Self>) {
        self.publish(ctx);
    }
}

impl Publisher {
    fn publish(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.publish_report(self.subject.clone(), self.content.clone(), self.lifetime);
        println!("published {} {}", self.subject.as_str(), self.content);
        self.left -= 1;
        if self.left > 0 {
            ctx.start_timer("next", self.interval);
        } else {
            ctx.schedule_shutdown(Some(self.linger));
        }
    }
}

/// Runs `netsvc publish`.
pub(crate) async fn run(args: PublishArgs) -> Result<(), CliError> {
    let name = service_name("--as", &args.name)?;
    let subject = Subject::new(&args.subject)
        .map_err(|e| CliError::usage(format!("invalid subject {:?}: {e}", args.subject)))?;
    let content = parse_arg(&args.content)?;
    let lifetime = parse_lifetime(&args.lifetime)?;
    if args.count == 0 {
        return Err(CliError::usage("--count must be at least 1"));
    }
    let interval = seconds("--interval", args.interval, true)?;
    // A zero delay would mean "the node's default shutdown delay".
    let linger = seconds("--linger", args.linger, true)?.max(Duration::from_millis(1));
    let client = args.connect.join("netsvc-publish").await?;
    client.node.monitor_signals();
    client.node.spawn_with(
        Publisher {
            subject,
            content,
            lifetime,
            left: args.count,
            interval,
            linger,
        },
        ServiceOptions::named(name),
    );
    client.node.shutdown_complete().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_forever_none_or_seconds() {
        assert_eq!(parse_lifetime("forever").unwrap(), Lifetime::Forever);
        assert_eq!(parse_lifetime("none").unwrap(), Lifetime::None);
        assert_eq!(
            parse_lifetime("2.5").unwrap(),
            Lifetime::For(Duration::from_millis(2500))
        );
        for bad in ["-1", "soon", ""] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }
}
