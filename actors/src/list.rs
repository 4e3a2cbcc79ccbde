//! `netsvc list`: the services of the mesh, its groups, its nodes with their links, and who
//! subscribes to what.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use clap::{Args, Subcommand};
use netsvc::{Binding, GroupName, Node, NodeInfo, ProcessId, ServiceName};
use serde_json::json;

use crate::client::{nodes, print_json, CliError, ConnectArgs, Table};

/// Arguments of `netsvc list`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ListArgs {
    #[command(subcommand)]
    what: Option<What>,
    #[command(flatten)]
    services: ServicesArgs,
}

#[derive(Subcommand, Debug)]
enum What {
    /// The groups and their members.
    Groups(Common),
    /// The nodes, each link of each on a line with its counters.
    Nodes(Common),
    /// Who subscribes to which publisher, with which pattern and format, and whether
    /// conflated.
    Subscriptions(Common),
}

/// What every listing takes.
#[derive(Args, Debug)]
struct Common {
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(Args, Debug)]
struct ServicesArgs {
    /// Only the services with this name.
    #[arg(long)]
    name: Option<String>,
    /// Only the services in this group.
    #[arg(long)]
    group: Option<String>,
    #[command(flatten)]
    common: Common,
}

/// How long a node has to answer its introspection request.
const NODE_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs `netsvc list`.
pub(crate) async fn run(args: ListArgs) -> Result<(), CliError> {
    match args.what {
        None => services(args.services).await,
        Some(What::Groups(c)) => groups(c).await,
        Some(What::Nodes(c)) => list_nodes(c).await,
        Some(What::Subscriptions(c)) => subscriptions(c).await,
    }
}

/// The nodes of the mesh by process, for naming where a service lives.
struct Places {
    nodes: Vec<NodeInfo>,
    /// Each process's node name, and its address as the first link to it shows it.
    by_process: HashMap<ProcessId, (String, String)>,
}

impl Places {
    async fn of(node: &Node) -> Places {
        let nodes = nodes(node, NODE_TIMEOUT).await;
        let mut by_process = HashMap::new();
        for info in &nodes {
            by_process
                .entry(info.process)
                .or_insert_with(|| (info.node.clone(), String::new()));
            for link in &info.links {
                let entry = by_process
                    .entry(link.peer_process)
                    .or_insert_with(|| (link.peer_node.clone(), String::new()));
                if entry.1.is_empty() && link.side == netsvc::LinkSide::Accepted {
                    entry.1 = link.address.clone();
                }
            }
        }
        Places { nodes, by_process }
    }

    fn node(&self, process: ProcessId) -> &str {
        self.by_process.get(&process).map_or("?", |p| p.0.as_str())
    }

    /// Where a process is: the address its exchange server sees it at (empty for a server
    /// nobody connected to).
    fn location(&self, process: ProcessId) -> &str {
        self.by_process.get(&process).map_or("", |p| p.1.as_str())
    }

    /// The name of an agent of the mesh, from the nodes' service lists.
    fn service_name(&self, agent: netsvc::AgentId) -> Option<&str> {
        self.nodes
            .iter()
            .flat_map(|n| &n.services)
            .find(|s| s.agent == agent)
            .map(|s| s.name.as_str())
    }
}

async fn services(args: ServicesArgs) -> Result<(), CliError> {
    let name = args
        .name
        .as_deref()
        .map(ServiceName::new)
        .transpose()
        .map_err(|e| CliError::usage(format!("invalid --name: {e}")))?;
    let group = args
        .group
        .as_deref()
        .map(GroupName::new)
        .transpose()
        .map_err(|e| CliError::usage(format!("invalid --group: {e}")))?;
    let client = args.common.connect.join("netsvc-list").await?;
    let node = &client.node;
    let mut bindings: Vec<Binding> = match (&name, &group) {
        (Some(name), _) => node.lookup_name(name.clone()).await,
        (None, Some(group)) => node.lookup_group(group.clone()).await,
        (None, None) => node.services().await,
    };
    if let (Some(_), Some(group)) = (&name, &group) {
        let members = node.lookup_group(group.clone()).await;
        bindings.retain(|b| members.contains(b));
    }
    bindings.sort_by(|a, b| (a.name().as_str(), a.agent()).cmp(&(b.name().as_str(), b.agent())));
    let places = Places::of(node).await;
    let mut table = Table::new(vec![
        "NAME", "AGENT", "GROUPS", "AUDIENCE", "PROCESS", "NODE", "LOCATION",
    ]);
    for binding in &bindings {
        let groups: Vec<String> = node
            .groups_of(binding.agent())
            .await
            .iter()
            .map(|g| g.as_str().to_owned())
            .collect();
        let process = binding.process();
        if args.common.json {
            print_json(&json!({
                "name": binding.name().as_str(),
                "agent": binding.agent().to_string(),
                "groups": groups,
                "audience": binding.audience().as_str(),
                "process": process.to_string(),
                "node": places.node(process),
                "location": places.location(process),
            }));
        } else {
            table.row(vec![
                binding.name().as_str().to_owned(),
                short(&binding.agent().to_string()),
                groups.join(","),
                audience(binding.audience().as_str()),
                short(&process.to_string()),
                places.node(process).to_owned(),
                places.location(process).to_owned(),
            ]);
        }
    }
    if !args.common.json {
        println!("{}", table.render());
    }
    Ok(())
}

async fn groups(args: Common) -> Result<(), CliError> {
    let client = args.connect.join("netsvc-list").await?;
    let node = &client.node;
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for group in node.groups().await {
        let mut names: Vec<String> = node
            .lookup_group(group.clone())
            .await
            .iter()
            .map(|b| b.name().as_str().to_owned())
            .collect();
        names.sort();
        members.insert(group.as_str().to_owned(), names);
    }
    let mut table = Table::new(vec!["GROUP", "MEMBERS", "SERVICES"]);
    for (group, names) in &members {
        if args.json {
            print_json(&json!({ "group": group, "members": names }));
        } else {
            table.row(vec![
                group.clone(),
                names.len().to_string(),
                names.join(","),
            ]);
        }
    }
    if !args.json {
        println!("{}", table.render());
    }
    Ok(())
}

async fn list_nodes(args: Common) -> Result<(), CliError> {
    let client = args.connect.join("netsvc-list").await?;
    let me = client.node.process();
    let all = nodes(&client.node, NODE_TIMEOUT).await;
    let mut table = Table::new(vec![
        "NODE",
        "PROCESS",
        "SERVICES",
        "PEER",
        "SIDE",
        "ADDRESS",
        "GROUP",
        "TLS",
        "UP",
        "FRAMES IN",
        "FRAMES OUT",
        "BYTES IN",
        "BYTES OUT",
        "DROPPED",
    ]);
    for info in all.iter().filter(|n| n.process != me) {
        if args.json {
            print_json(&serde_json::to_value(info).unwrap_or_default());
            continue;
        }
        let head = |first: bool| -> Vec<String> {
            if first {
                vec![
                    info.node.clone(),
                    short(&info.process.to_string()),
                    info.services.len().to_string(),
                ]
            } else {
                vec![String::new(); 3]
            }
        };
        if info.links.is_empty() {
            let mut row = head(true);
            row.extend(std::iter::repeat_n(String::new(), 11));
            table.row(row);
        }
        for (i, link) in info.links.iter().enumerate() {
            let mut row = head(i == 0);
            let peer = if link.peer_process == me {
                format!("{} (this tool)", link.peer_node)
            } else {
                link.peer_node.clone()
            };
            row.extend([
                peer,
                format!("{:?}", link.side).to_lowercase(),
                link.address.clone(),
                link.group.clone(),
                if link.tls { "yes" } else { "no" }.to_owned(),
                format!("{:.1}s", link.up_ms as f64 / 1000.0),
                link.frames_in.to_string(),
                link.frames_out.to_string(),
                link.bytes_in.to_string(),
                link.bytes_out.to_string(),
                link.reports_dropped.to_string(),
            ]);
            table.row(row);
        }
    }
    if !args.json {
        println!("{}", table.render());
    }
    Ok(())
}

async fn subscriptions(args: Common) -> Result<(), CliError> {
    let client = args.connect.join("netsvc-list").await?;
    let places = Places::of(&client.node).await;
    let me = client.node.process();
    let mut table = Table::new(vec![
        "PUBLISHER",
        "PUBLISHER NODE",
        "SUBSCRIBER",
        "SUBSCRIBER NODE",
        "PATTERN",
        "FORMAT",
        "CONFLATED",
    ]);
    for info in places.nodes.iter().filter(|n| n.process != me) {
        for s in &info.subscriptions {
            let subscriber = if s.subscriber_name.is_empty() {
                places
                    .service_name(s.subscriber)
                    .filter(|n| !n.is_empty())
                    .map_or_else(
                        || format!("({})", short(&s.subscriber.to_string())),
                        str::to_owned,
                    )
            } else {
                s.subscriber_name.clone()
            };
            if args.json {
                print_json(&json!({
                    "publisher": s.publisher_name,
                    "publisher_agent": s.publisher.to_string(),
                    "publisher_node": info.node,
                    "subscriber": s.subscriber_name,
                    "subscriber_agent": s.subscriber.to_string(),
                    "subscriber_node": places.node(s.subscriber_process),
                    "pattern": s.pattern,
                    "format": format!("{:?}", s.format).to_lowercase(),
                    "conflated": s.conflated,
                }));
            } else {
                table.row(vec![
                    s.publisher_name.clone(),
                    info.node.clone(),
                    subscriber,
                    places.node(s.subscriber_process).to_owned(),
                    s.pattern.clone(),
                    format!("{:?}", s.format).to_lowercase(),
                    if s.conflated { "yes" } else { "no" }.to_owned(),
                ]);
            }
        }
    }
    if !args.json {
        println!("{}", table.render());
    }
    Ok(())
}

/// The first 8 characters of an identity: enough to tell a mesh's apart in a table.
pub(crate) fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

/// An audience as a table shows it: `*`, `process` for the empty one, or the group.
fn audience(audience: &str) -> String {
    match audience {
        "" => "process".to_owned(),
        other => other.to_owned(),
    }
}
