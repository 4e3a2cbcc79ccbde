//! The NATS side of `compare`: its roles on the async-nats client (nats-server itself is
//! started by `nats_server.rs`).
//!
//! Configuration (the same for every NATS role):
//!
//! * one tokio **current-thread** runtime per process, like the single actix arbiter of every
//!   netsvc process;
//! * `subscription_capacity` raised from 65,536 to [`SUBSCRIPTION_CAPACITY`] messages (the
//!   pacing window keeps far fewer outstanding; the larger bound costs nothing, tokio's
//!   channel allocates as it fills) so that the client never drops a message as a slow
//!   consumer;
//! * `request_timeout(None)`: netsvc's endpoint has no timeout either, so neither side arms a
//!   timer per request (the driver bounds every run instead).
//!
//! Subjects: requests go to `bench.rr` (the responder echoes the body to the reply inbox);
//! reports to `bench.x`, subscribed as `bench.*`; acknowledgements to `ack.<index>`.
//!
//! `burst_unpaced` is the exception to the capacity above: its subscriber connects with
//! `subscription_capacity(--capacity)`, 65,536 (the client's default), so that the client
//! drops what does not fit as it would for any NATS user with a slow handler.

use std::time::Instant;

use async_nats::{Client, ConnectOptions, Subscriber, ToSubject};
use bytes::Bytes;
use futures_util::StreamExt;

use super::measure::{self, BurstTally, Tally};
use super::protocol::{
    unix_ns, BurstPublished, PublishOutcome, RoleArgs, RoleKind, BURST_PATTERN, END_PATTERN,
    END_SUBJECT, MARKER_EVERY, PATTERN, QUIET, ROLE_LIMIT, SETTLE,
};
use super::subjects::{self, SubjectTally};
use crate::pace::Pace;
use crate::payload::{checked_seq_of, payload, payload_of, seq_of, PAYLOAD_LEN};
use crate::roles::{ready, result, SETUP};

/// Bound of each async-nats subscription's channel, in messages.
const SUBSCRIPTION_CAPACITY: usize = 1 << 20;
/// Subject of the request/reply workloads.
const REQUEST_SUBJECT: &str = "bench.rr";
/// Prefix of acknowledgement subjects (`ack.<index>`).
const ACK_PREFIX: &str = "ack.";

/// Runs one NATS role.
pub(crate) async fn role(args: &RoleArgs) -> Result<(), String> {
    match args.kind {
        RoleKind::Exchange => {
            Err("NATS has no exchange role: compare starts nats-server".to_owned())
        }
        RoleKind::Relay => Err("the relay is a role of the raw side".to_owned()),
        RoleKind::Responder => responder(args).await,
        RoleKind::Requester => requester(args).await,
        RoleKind::Publisher => publisher(args).await,
        RoleKind::Subscriber if args.subjects > 0 => subject_subscribers(args).await,
        RoleKind::Subscriber => subscriber(args).await,
        RoleKind::BurstPublisher => burst_publisher(args).await,
        RoleKind::BurstSubscriber => burst_subscriber(args).await,
    }
}

/// Connects to nats-server with the benchmark's client configuration.
async fn connect(server: &str, tls: Option<&std::path::Path>) -> Result<Client, String> {
    connect_with(server, tls, SUBSCRIPTION_CAPACITY).await
}

/// [`connect`], with each subscription's channel bounded to `capacity` messages.
async fn connect_with(
    server: &str,
    tls: Option<&std::path::Path>,
    capacity: usize,
) -> Result<Client, String> {
    let mut options = ConnectOptions::new()
        .subscription_capacity(capacity.max(1))
        .request_timeout(None)
        .connection_timeout(SETUP);
    if let Some(dir) = tls {
        options = options
            .add_root_certificates(dir.join("ca.pem"))
            .require_tls(true);
    }
    options
        .connect(server)
        .await
        .map_err(|e| format!("cannot connect to nats-server at {server}: {e}"))
}

/// Subscribes to `subject` and flushes, so that the server has the subscription before the
/// role says `READY`.
async fn subscribe(client: &Client, subject: impl ToSubject) -> Result<Subscriber, String> {
    let subscription = client
        .subscribe(subject)
        .await
        .map_err(|e| format!("cannot subscribe: {e}"))?;
    flush(client).await?;
    Ok(subscription)
}

/// Sends everything the client has buffered.
async fn flush(client: &Client) -> Result<(), String> {
    client
        .flush()
        .await
        .map_err(|e| format!("cannot flush: {e}"))
}

/// Echoes every request on `bench.rr` to its reply subject, until killed.
async fn responder(args: &RoleArgs) -> Result<(), String> {
    let client = connect(&args.server, args.tls_dir.as_deref()).await?;
    let mut requests = subscribe(&client, REQUEST_SUBJECT).await?;
    ready("");
    while let Some(message) = requests.next().await {
        if let Some(reply) = message.reply {
            client
                .publish(reply, message.payload)
                .await
                .map_err(|e| format!("cannot reply: {e}"))?;
        }
    }
    Err("the request subscription ended".to_owned())
}

/// Warms up, then measures requests to `bench.rr`.
async fn requester(args: &RoleArgs) -> Result<(), String> {
    let client = connect(&args.server, args.tls_dir.as_deref()).await?;
    let client = &client;
    let call = |i: u64| async move {
        let message = client
            .request(REQUEST_SUBJECT, Bytes::from(payload(i)))
            .await
            .map_err(|e| format!("request {i} failed: {e}"))?;
        seq_of(&message.payload)
            .ok_or_else(|| format!("request {i}: response of {} bytes", message.payload.len()))
    };
    measure::requests(args, call).await
}

/// Publishes `--count` reports on `bench.x` (or the subjects of `--subjects`), paced by acknowledgements on `ack.*`. The
/// driver starts it once every subscriber is subscribed.
async fn publisher(args: &RoleArgs) -> Result<(), String> {
    let client = connect(&args.server, args.tls_dir.as_deref()).await?;
    let mut acks = subscribe(&client, format!("{ACK_PREFIX}*")).await?;
    ready("");
    let mut pace = Pace::new(args.count, args.window, args.subscribers);
    let subjects: Vec<async_nats::Subject> = args.subjects().into_iter().map(Into::into).collect();
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + ROLE_LIMIT;
    loop {
        for seq in pace.sendable() {
            publish_seq(&client, &subjects, seq, args.body_len).await?;
        }
        if pace.all_acked() {
            break;
        }
        let message = match tokio::time::timeout_at(deadline, acks.next()).await {
            Ok(Some(message)) => message,
            Ok(None) => return Err("the acknowledgement subscription ended".to_owned()),
            Err(_) => return Err(format!("not every report acknowledged: {:?}", pace.acked())),
        };
        let index = message
            .subject
            .strip_prefix(ACK_PREFIX)
            .and_then(|i| i.parse::<usize>().ok());
        let count = message
            .payload
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes);
        match (index, count) {
            (Some(index), Some(count)) if pace.ack(index, count) => {}
            _ => return Err(format!("bad acknowledgement on {}", message.subject)),
        }
    }
    result(&PublishOutcome::of(args, start.elapsed()))
}

/// Publishes report `seq` (a body of `body_len` bytes) on the `seq % len`-th of `subjects`.
async fn publish_seq(
    client: &Client,
    subjects: &[async_nats::Subject],
    seq: u64,
    body_len: usize,
) -> Result<(), String> {
    client
        .publish(
            subjects[(seq % subjects.len() as u64) as usize].clone(),
            Bytes::from(payload_of(seq, body_len)),
        )
        .await
        .map_err(|e| format!("cannot publish: {e}"))
}

/// Counts reports on `bench.*` and acknowledges them on `ack.<index>`.
async fn subscriber(args: &RoleArgs) -> Result<(), String> {
    let client = connect(&args.server, args.tls_dir.as_deref()).await?;
    let mut reports = subscribe(&client, PATTERN).await?;
    ready("");
    let ack_subject = format!("{ACK_PREFIX}{}", args.index);
    let mut tally = Tally::new(args.count, args.ack_every);
    let deadline = tokio::time::Instant::now() + ROLE_LIMIT;
    while !tally.complete() {
        let message = match tokio::time::timeout_at(deadline, reports.next()).await {
            Ok(Some(message)) => message,
            Ok(None) => return Err("the report subscription ended".to_owned()),
            Err(_) => {
                return Err(format!(
                    "only {} of {} reports received",
                    tally.received, args.count
                ))
            }
        };
        if let Some(count) = tally.record(checked_seq_of(&message.payload, args.body_len)) {
            client
                .publish(
                    ack_subject.clone(),
                    Bytes::copy_from_slice(&count.to_le_bytes()),
                )
                .await
                .map_err(|e| format!("cannot acknowledge: {e}"))?;
        }
    }
    flush(&client).await?;
    settle(&mut reports, |message| {
        tally.record(checked_seq_of(&message.payload, args.body_len));
    })
    .await;
    result(&tally.outcome())
}

/// Keeps counting for [`SETTLE`] after the last expected report: extra deliveries (a
/// duplicate, a report beyond the count) would show up in `record`.
async fn settle<S: futures_util::Stream + Unpin>(stream: &mut S, mut record: impl FnMut(S::Item)) {
    let settle = tokio::time::sleep(SETTLE);
    tokio::pin!(settle);
    loop {
        tokio::select! {
            _ = &mut settle => break,
            item = stream.next() => match item {
                Some(item) => record(item),
                None => break,
            },
        }
    }
}

/// The subscriber services `--services` of a subscriber process of `--subjects` (see
/// `subjects.rs`): one subscription per service, on this process's one connection, each
/// counted, checked and acknowledged (on `ack.<m>`) on its own; the result lists their
/// outcomes.
async fn subject_subscribers(args: &RoleArgs) -> Result<(), String> {
    let client = connect(&args.server, args.tls_dir.as_deref()).await?;
    let mut streams = Vec::new();
    let mut tallies = Vec::new();
    for (local, m) in args.services().enumerate() {
        let subscription = client
            .subscribe(subjects::pattern(m))
            .await
            .map_err(|e| format!("cannot subscribe: {e}"))?;
        streams.push(subscription.map(move |message| (local, message)));
        let tally = SubjectTally::new(m, args.count, args.subjects, args.ack_every);
        tallies.push((format!("{ACK_PREFIX}{m}"), tally));
    }
    flush(&client).await?;
    let mut reports = futures_util::stream::select_all(streams);
    ready("");
    let deadline = tokio::time::Instant::now() + ROLE_LIMIT;
    while !tallies.iter().all(|(_, tally)| tally.complete()) {
        let (local, message) = match tokio::time::timeout_at(deadline, reports.next()).await {
            Ok(Some(delivery)) => delivery,
            Ok(None) => return Err("the report subscriptions ended".to_owned()),
            Err(_) => {
                let received: Vec<u64> = tallies.iter().map(|(_, t)| t.received).collect();
                return Err(format!("only {received:?} reports received"));
            }
        };
        let (ack_subject, tally) = &mut tallies[local];
        let seq = checked_seq_of(&message.payload, PAYLOAD_LEN);
        if let Some(progress) = tally.record(&message.subject, seq) {
            client
                .publish(
                    ack_subject.clone(),
                    Bytes::copy_from_slice(&progress.to_le_bytes()),
                )
                .await
                .map_err(|e| format!("cannot acknowledge: {e}"))?;
        }
    }
    flush(&client).await?;
    settle(&mut reports, |(local, message)| {
        tallies[local].1.record(
            &message.subject,
            checked_seq_of(&message.payload, PAYLOAD_LEN),
        );
    })
    .await;
    let outcomes: Vec<_> = tallies.iter().map(|(_, tally)| tally.outcome()).collect();
    result(&outcomes)
}

/// The burst publisher of `burst_unpaced`: publishes `--count` reports over the subjects
/// `burst.s<j>` as fast as the client takes them, prints the `RESULT`, then publishes the
/// end marker every [`MARKER_EVERY`] until killed. The driver starts it once the subscriber
/// is subscribed.
async fn burst_publisher(args: &RoleArgs) -> Result<(), String> {
    let client = connect(&args.server, args.tls_dir.as_deref()).await?;
    ready("");
    let subjects: Vec<async_nats::Subject> = measure::burst_subjects(args.subjects.max(1))
        .into_iter()
        .map(Into::into)
        .collect();
    let start_unix_ns = unix_ns();
    for seq in 0..args.count {
        publish_seq(&client, &subjects, seq, args.body_len).await?;
    }
    flush(&client).await?;
    result(&BurstPublished {
        published: args.count,
        start_unix_ns,
        end_unix_ns: unix_ns(),
        dropped_at_publisher: None,
    })?;
    loop {
        tokio::time::sleep(MARKER_EVERY).await;
        client
            .publish(END_SUBJECT, Bytes::new())
            .await
            .map_err(|e| format!("cannot publish the end marker: {e}"))?;
        flush(&client).await?;
    }
}

/// The burst subscriber of `burst_unpaced`: subscriptions to `burst.*` and the end marker
/// on a connection whose subscriptions hold `--capacity` messages; every report handled
/// slowly and counted; ends [`QUIET`] after the end marker and the last report.
async fn burst_subscriber(args: &RoleArgs) -> Result<(), String> {
    let client = connect_with(&args.server, args.tls_dir.as_deref(), args.capacity).await?;
    let mut reports = client
        .subscribe(BURST_PATTERN)
        .await
        .map_err(|e| format!("cannot subscribe: {e}"))?;
    let mut ends = subscribe(&client, END_PATTERN).await?;
    ready("");
    let mut tally = BurstTally::new(args);
    let mut marker_seen = false;
    let mut last_activity = tokio::time::Instant::now();
    let deadline = tokio::time::Instant::now() + ROLE_LIMIT;
    loop {
        let quiet = tokio::time::sleep_until(last_activity + QUIET);
        tokio::select! {
            biased;
            message = reports.next() => {
                let message = message.ok_or("the report subscription ended")?;
                tally.record(&message.subject, &message.payload, 0);
                last_activity = tokio::time::Instant::now();
            }
            marker = ends.next() => {
                marker.ok_or("the end marker subscription ended")?;
                if !marker_seen {
                    marker_seen = true;
                    last_activity = tokio::time::Instant::now();
                }
            }
            () = quiet, if marker_seen => break,
            () = tokio::time::sleep_until(deadline) => {
                return Err(format!("no end of the burst within {ROLE_LIMIT:?}"));
            }
        }
    }
    result(&tally.outcome())
}
