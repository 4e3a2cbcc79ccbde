//! `netsvc describe SERVICE`: what a service exports (methods with parameter names and
//! types) and publishes (subjects, with their subscriber counts and whether a value is
//! cached), from its answer to the reserved `$describe` request.

use clap::Args;
use netsvc::ServiceDescriptor;

use crate::client::{print_json, seconds, service_name, CliError, ConnectArgs, Exit, Table};

/// Arguments of `netsvc describe`.
#[derive(Args, Debug)]
pub(crate) struct DescribeArgs {
    /// The service, by name; every service of that name is described.
    service: String,
    /// Seconds to wait for each answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    timeout: f64,
    /// One JSON descriptor per line instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Runs `netsvc describe`.
pub(crate) async fn run(args: DescribeArgs) -> Result<(), CliError> {
    let name = service_name("service name", &args.service)?;
    let timeout = seconds("--timeout", args.timeout, false)?;
    let client = args.connect.join("netsvc-describe").await?;
    let bindings = client.node.lookup_name(name.clone()).await;
    if bindings.is_empty() {
        return Err(CliError {
            exit: Exit::of(&netsvc::Failure::new(
                netsvc::ErrorCode::CLIENT_SERVICE_UNAVAILABLE,
                "",
            )),
            message: format!("no service named {:?}", name.as_str()),
        });
    }
    for (i, binding) in bindings.iter().enumerate() {
        let descriptor = client
            .node
            .endpoint(binding)
            .with_timeout(timeout)
            .describe()
            .await?;
        if args.json {
            print_json(&serde_json::to_value(&descriptor).unwrap_or_default());
        } else {
            if i > 0 {
                println!();
            }
            print!("{}", render(&descriptor));
        }
    }
    Ok(())
}

/// A descriptor as people read it.
pub(crate) fn render(d: &ServiceDescriptor) -> String {
    let mut out = d.name.as_str().to_owned();
    if let Some(agent) = d.agent {
        out.push_str(&format!(" (agent {agent})"));
    }
    out.push('\n');
    if d.methods.is_empty() {
        out.push_str("methods: none\n");
    } else {
        out.push_str("methods:\n");
        let mut table = Table::new(vec!["SIGNATURE", "DOC"]);
        for m in &d.methods {
            table.row(vec![m.signature(), m.doc.clone().unwrap_or_default()]);
        }
        out.push_str(&indent(&table.render()));
    }
    if d.subjects.is_empty() {
        out.push_str("subjects: none\n");
    } else {
        out.push_str("subjects:\n");
        let mut table = Table::new(vec!["SUBJECT", "CACHED", "SUBSCRIBERS"]);
        for s in &d.subjects {
            table.row(vec![
                s.subject.as_str().to_owned(),
                if s.cached { "yes" } else { "no" }.to_owned(),
                s.subscribers.to_string(),
            ]);
        }
        out.push_str(&indent(&table.render()));
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_lists_signatures_with_docs_and_subjects_with_counts() {
        let d: ServiceDescriptor = serde_json::from_value(serde_json::json!({
            "name": "calculator",
            "methods": [
                {"name": "multiply", "params": [{"name": "a", "type": "i64"}, {"name": "b", "type": "i64"}],
                 "returns": "i64", "fallible": false, "delayed": false, "doc": "Multiplies two integers."},
                {"name": "reset", "params": [], "returns": "()", "fallible": false, "delayed": false, "doc": null}
            ],
            "subjects": [{"subject": "system.ctime", "cached": true, "subscribers": 2}]
        }))
        .unwrap();
        let text = render(&d);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "calculator");
        assert_eq!(lines[1], "methods:");
        assert!(
            lines[3].contains("multiply(a: i64, b: i64) -> i64"),
            "{text}"
        );
        assert!(lines[3].ends_with("Multiplies two integers."), "{text}");
        assert!(lines[4].trim() == "reset()", "{text}");
        assert_eq!(lines[5], "subjects:");
        assert!(
            lines[7].split_whitespace().eq(["system.ctime", "yes", "2"]),
            "{text}"
        );
    }
}
