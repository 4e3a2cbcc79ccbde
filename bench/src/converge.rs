//! `converge`: how fast a mesh learns a large registry, and what it costs in memory.
//!
//! One process (the announcer) spawns N idle services (`idle.0` … `idle.{N-1}`), then joins an
//! exchange hub; a second client of the hub (the watcher) counts the services as its registry
//! learns them. The figure is the time from the announcer's connection attempt to the
//! watcher's registry holding all N (both clocks are this machine's wall clock). Memory: the
//! announcer's resident set grows by the idle services (KiB per local service), the watcher's
//! by the entries (KiB per remote entry), each measured on its own process around that step.
//! The floor of the first is a bare actix actor: a fourth process spawns N of them (no
//! netsvc), measured the same way (KiB per bare actix actor).
//!
//! No NATS equivalent exists. The baseline is what the wire allows: the bytes the watcher's
//! link actually received, in as many frames, streamed through the raw TCP relay of
//! `compare` (its `relay` role) from one connection of this driver to another.
//!
//! ```text
//! cargo run --release -p netsvc-bench -- converge [--services 10000,100000] [--json] [--quick]
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use netsvc::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::procs::{decode, Proc};
use crate::roles::{ready, result, SETUP};
use crate::soak::rss::rss_kib;

/// Options of `converge`.
#[derive(Debug, Args)]
pub(crate) struct ConvergeArgs {
    /// Registry sizes to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000, 100_000])]
    services: Vec<usize>,
    /// One JSON object per size instead of the table.
    #[arg(long)]
    json: bool,
    /// A small size only (1,000), for smoke tests.
    #[arg(long)]
    quick: bool,
    /// Longest the watcher may take, in seconds.
    #[arg(long, default_value_t = 120)]
    limit: u64,
}

/// Which process of `converge` this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ConvergeRole {
    /// The exchange hub.
    Hub,
    /// Spawns the services and joins the hub.
    Announcer,
    /// Joins the hub first and counts what it learns.
    Watcher,
    /// Spawns bare actix actors: the floor of an idle service's memory.
    Bare,
}

/// Options of the hidden `converge-role` subcommand.
#[derive(Debug, Args)]
pub(crate) struct ConvergeRoleArgs {
    /// Which process.
    #[arg(long, value_enum)]
    role: ConvergeRole,
    /// The hub's address (announcer, watcher).
    #[arg(long, default_value = "")]
    server: String,
    /// How many services.
    #[arg(long, default_value_t = 0)]
    services: usize,
}

/// The announcer's `READY` detail.
#[derive(Debug, Serialize, Deserialize)]
struct Announced {
    /// Unix nanoseconds when it started connecting.
    connect_ns: u128,
    /// Resident set growth over spawning the services, KiB.
    spawn_kib: u64,
    /// Time to spawn them, seconds.
    spawn_s: f64,
}

/// The watcher's `RESULT`.
#[derive(Debug, Serialize, Deserialize)]
struct Learned {
    /// Unix nanoseconds when its registry held every service.
    done_ns: u128,
    /// Resident set growth from before the first announcement to then, KiB.
    learn_kib: u64,
    /// Frames and bytes its link received by then.
    frames_in: u64,
    bytes_in: u64,
}

/// The bare actors' `RESULT`.
#[derive(Debug, Serialize, Deserialize)]
struct Bare {
    /// Resident set growth over spawning the actors, KiB.
    spawn_kib: u64,
}

/// One size's figures.
#[derive(Debug, Serialize)]
struct Outcome {
    workload: String,
    services: usize,
    converge_s: f64,
    raw_s: f64,
    netsvc_to_raw: f64,
    kib_per_remote_entry: f64,
    kib_per_local_service: f64,
    kib_per_bare_actor: f64,
    spawn_s: f64,
    frames: u64,
    bytes: u64,
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn own_rss() -> Result<u64, String> {
    rss_kib(std::process::id())
}

/// Runs `converge`.
pub(crate) fn run(args: &ConvergeArgs) -> ExitCode {
    let sizes = if args.quick {
        vec![1_000]
    } else {
        args.services.clone()
    };
    let mut ok = true;
    if !args.json {
        println!("| services | converge (s) | raw relay (s) | ÷ raw | KiB / remote entry | KiB / idle local service | KiB / bare actix actor | spawn (s) |");
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    }
    for n in sizes {
        match converge(n, Duration::from_secs(args.limit)) {
            Ok(o) => {
                if args.json {
                    println!("{}", serde_json::to_string(&o).unwrap_or_default());
                } else {
                    println!(
                        "| {} | {:.3} | {:.3} | {:.1} | {:.2} | {:.2} | {:.2} | {:.3} |",
                        o.services,
                        o.converge_s,
                        o.raw_s,
                        o.netsvc_to_raw,
                        o.kib_per_remote_entry,
                        o.kib_per_local_service,
                        o.kib_per_bare_actor,
                        o.spawn_s
                    );
                }
            }
            Err(e) => {
                eprintln!("converge {n}: {e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn role_proc(name: &str, args: &[String]) -> Result<Proc, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut all = vec!["converge-role".to_owned()];
    all.extend(args.iter().cloned());
    Proc::start_role(&exe, name.to_owned(), all, false)
}

fn converge(n: usize, limit: Duration) -> Result<Outcome, String> {
    let mut hub = role_proc("hub", &["--role".into(), "hub".into()])?;
    let server = hub.expect("READY", SETUP)?;
    let common = |role: &str| {
        vec![
            "--role".to_owned(),
            role.to_owned(),
            "--server".to_owned(),
            server.clone(),
            "--services".to_owned(),
            n.to_string(),
        ]
    };
    let mut watcher = role_proc("watcher", &common("watcher"))?;
    watcher.expect("READY", SETUP)?;
    let mut announcer = role_proc("announcer", &common("announcer"))?;
    let announced: Announced = decode("announcer", &announcer.expect("READY", limit)?)?;
    let learned: Learned = decode("watcher", &watcher.expect("RESULT", limit)?)?;
    drop((announcer, watcher, hub));
    let converge_s = learned.done_ns.saturating_sub(announced.connect_ns) as f64 / 1e9;
    let raw_s = raw_stream(learned.frames_in, learned.bytes_in)?;
    let mut bare = role_proc("bare", &common("bare"))?;
    let floor: Bare = decode("bare", &bare.expect("RESULT", limit)?)?;
    drop(bare);
    Ok(Outcome {
        workload: format!("registry_converge_{n}"),
        services: n,
        converge_s,
        raw_s,
        netsvc_to_raw: converge_s / raw_s.max(1e-9),
        kib_per_remote_entry: learned.learn_kib as f64 / n as f64,
        kib_per_local_service: announced.spawn_kib as f64 / n as f64,
        kib_per_bare_actor: floor.spawn_kib as f64 / n as f64,
        spawn_s: announced.spawn_s,
        frames: learned.frames_in,
        bytes: learned.bytes_in,
    })
}

/// Seconds to stream `frames` frames of `bytes` bytes in all (4-byte big-endian length
/// prefixes included in neither) through `compare`'s raw relay, receiver connected first.
fn raw_stream(frames: u64, bytes: u64) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let args = [
        "role",
        "relay",
        "--system",
        "raw",
        "--listen",
        "127.0.0.1:0",
    ];
    let mut relay = Proc::start_role(&exe, "raw relay".to_owned(), args, false)?;
    let listen = relay.expect("READY", SETUP)?;
    let frames = frames.max(1);
    let size = usize::try_from((bytes / frames).max(1)).unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build a tokio runtime: {e}"))?;
    let elapsed = runtime.block_on(async {
        let connect = || async {
            let s = tokio::net::TcpStream::connect(&listen)
                .await
                .map_err(|e| format!("cannot connect to the relay: {e}"))?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            Ok::<_, String>(s)
        };
        let mut receiver = connect().await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut sender = connect().await?;
        let started = Instant::now();
        let send = async move {
            let mut frame = Vec::with_capacity(4 + size);
            frame.extend_from_slice(&(size as u32).to_be_bytes());
            frame.resize(4 + size, 7);
            let mut batch = Vec::with_capacity(64 * 1024);
            for _ in 0..frames {
                batch.extend_from_slice(&frame);
                if batch.len() >= 60 * 1024 {
                    sender.write_all(&batch).await.map_err(|e| e.to_string())?;
                    batch.clear();
                }
            }
            sender.write_all(&batch).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(sender)
        };
        let receive = async move {
            let want = frames * (4 + size as u64);
            let mut got = 0u64;
            let mut buf = vec![0u8; 64 * 1024];
            while got < want {
                let n = receiver.read(&mut buf).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err(format!("the relay closed after {got} of {want} bytes"));
                }
                got += n as u64;
            }
            Ok::<_, String>(())
        };
        let (sent, received) = tokio::join!(send, receive);
        let _sender = sent?;
        received?;
        Ok::<_, String>(started.elapsed())
    })?;
    drop(relay);
    Ok(elapsed.as_secs_f64())
}

/// Runs one `converge` process.
pub(crate) fn run_role(args: &ConvergeRoleArgs) -> ExitCode {
    crate::roles::main(|| {
        actix_rt::System::new().block_on(async {
            match args.role {
                ConvergeRole::Hub => hub().await,
                ConvergeRole::Announcer => announcer(&args.server, args.services).await,
                ConvergeRole::Watcher => watcher(&args.server, args.services).await,
                ConvergeRole::Bare => bare(args.services).await,
            }
        })
    })
}

async fn hub() -> Result<(), String> {
    let node = Node::new("hub");
    let exchange = netsvc::Exchange::new(&node);
    let addr = exchange
        .listen("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    ready(&addr.to_string());
    std::future::pending::<()>().await;
    Ok(())
}

/// An idle service: it has a name and does nothing.
#[derive(Service)]
struct Idle;
impl Service for Idle {}

async fn announcer(server: &str, n: usize) -> Result<(), String> {
    let node = Node::new("announcer");
    let before = own_rss()?;
    let started = Instant::now();
    let mut spawned = Vec::with_capacity(n);
    for i in 0..n {
        let name = netsvc::ServiceName::new(format!("idle.{i}")).map_err(|e| e.to_string())?;
        spawned.push(node.spawn_with(Idle, netsvc::ServiceOptions::named(name)));
    }
    // Let every actor start before measuring.
    while node.services().await.len() < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let spawn_s = started.elapsed().as_secs_f64();
    let spawn_kib = own_rss()?.saturating_sub(before);
    let connect_ns = now_ns();
    let _exchange = crate::mesh::join(&node, server, None).await?;
    let announced = Announced {
        connect_ns,
        spawn_kib,
        spawn_s,
    };
    ready(&serde_json::to_string(&announced).map_err(|e| e.to_string())?);
    std::future::pending::<()>().await;
    drop(spawned);
    Ok(())
}

/// A bare actix actor: the floor of [`Idle`]'s memory.
struct BareActor(std::rc::Rc<std::cell::Cell<usize>>);

impl actix::Actor for BareActor {
    type Context = actix::Context<Self>;
    fn started(&mut self, _: &mut Self::Context) {
        self.0.set(self.0.get() + 1);
    }
}

/// Spawns `n` bare actors, as [`announcer`] spawns its services (their addresses kept), and
/// tells how much the resident set grew once they all started.
async fn bare(n: usize) -> Result<(), String> {
    use actix::Actor;
    // The same start as the announcer's, whose node exists before its services.
    let _node = Node::new("bare");
    let started = std::rc::Rc::new(std::cell::Cell::new(0));
    let before = own_rss()?;
    let mut actors = Vec::with_capacity(n);
    for _ in 0..n {
        actors.push(BareActor(started.clone()).start());
    }
    while started.get() < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let spawn_kib = own_rss()?.saturating_sub(before);
    result(&Bare { spawn_kib })?;
    std::future::pending::<()>().await;
    drop(actors);
    Ok(())
}

/// Counts the `idle.*` services the registry learns.
#[derive(Service)]
struct Counter {
    want: usize,
    seen: usize,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Service for Counter {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.subscribe_registry();
    }
    fn availability(&mut self, event: RegistryEvent, _ctx: &mut ServiceContext<Self>) {
        if event.group.is_none()
            && event.status == netsvc::Status::Available
            && event.binding.name().as_str().starts_with("idle.")
        {
            self.seen += 1;
            if self.seen == self.want {
                if let Some(done) = self.done.take() {
                    let _ = done.send(());
                }
            }
        }
    }
}

async fn watcher(server: &str, n: usize) -> Result<(), String> {
    let node = Node::new("watcher");
    let (tx, rx) = tokio::sync::oneshot::channel();
    node.spawn(Counter {
        want: n,
        seen: 0,
        done: Some(tx),
    });
    let _exchange = crate::mesh::join(&node, server, None).await?;
    let before = own_rss()?;
    ready("");
    rx.await.map_err(|_| "the counter stopped".to_owned())?;
    let done_ns = now_ns();
    let learn_kib = own_rss()?.saturating_sub(before);
    let info = node
        .introspect(node.process())
        .await
        .map_err(|e| e.to_string())?;
    let link = info.links.first().ok_or("no link")?;
    result(&Learned {
        done_ns,
        learn_kib,
        frames_in: link.frames_in,
        bytes_in: link.bytes_in,
    })?;
    std::future::pending::<()>().await;
    Ok(())
}
