//! `forklift-bench fanout`: one fork streamed to many `forkProgress` subscribers (`docs/performance.md`).
//!
//! A server process holds a synthetic template; this process starts one fork through
//! `forkTenant`, opens `subscribers` WebSocket connections (`graphql-transport-ws`, a JWT in
//! `connection_init`) and subscribes each to the run. The server holds the run just before its
//! first phase (the `pause:before_phase:1` fork hook) until every subscriber is attached, so
//! every event after that is delivered live to all of them at once. The delivery lag of an
//! event is the time its bytes reached the subscriber's socket (the kernel's receive stamp,
//! [`arrival`](super::arrival)) minus its `at` (both this machine's clock), over every
//! (subscriber, event) pair after the hold. The load generator shares the server's cores: when
//! it is saturated it reads later than the bytes arrived, so the time it read each event is
//! measured too and printed beside (a dashboard on another machine reads at arrival).
//!
//! With `--replicas 2` (PostgreSQL) two server processes share the database: the fork runs on
//! the first and every subscriber is connected to the second, which follows the run through the
//! stored events and `LISTEN/NOTIFY`. With `--slow-percent N`, N % of the subscribers read
//! slowly (a 4 KiB receive buffer, [`SLOW_READ`] between messages); the lag figures are the
//! other subscribers', and the server's slow-consumer closes (4029) are counted.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::{
    Message, client::IntoClientRequest, http::HeaderValue, protocol::WebSocketConfig,
};

use super::{
    BenchServer, Memory, Scratch, admin_token, arrival::Stamped, backend_name, percentile,
    synthetic_template,
};
use forklift::{
    bootstrap,
    config::Config,
    http::ws::{SLOW_CONSUMER_CLOSE, delivery::DELIVERY_NICE},
    runtimes::LazyRuntime,
};

/// What to run.
#[derive(Clone, Debug)]
pub struct FanoutOptions {
    /// WebSocket subscribers.
    pub subscribers: usize,
    /// Template size in rows.
    pub rows: usize,
    /// Server processes: 1, or 2 (PostgreSQL: the fork on one, the subscribers on the other).
    pub replicas: usize,
    /// Percentage of subscribers that read slowly.
    pub slow_percent: usize,
}

/// Forks of the same template with nobody watching, each on a fresh server: a single one varies
/// too much between runs on a shared machine to be the baseline.
pub const ALONE_RUNS: usize = 3;

/// How long before the hold's end the counters are read.
const HOLD_MARGIN: Duration = Duration::from_millis(300);

/// How long a slow subscriber waits between the messages it reads.
pub const SLOW_READ: Duration = Duration::from_millis(50);

/// What one fan-out run measured.
#[derive(Clone, Debug)]
pub struct FanoutMeasurement {
    pub subscribers: usize,
    /// Server processes (the subscribers on the last one).
    pub replicas: usize,
    /// Subscribers that read slowly, and how many of them the server closed as slow (4029).
    pub slow: usize,
    pub slow_disconnects: usize,
    /// Subscribers closed as slow among the others (should be none).
    pub other_disconnects: usize,
    /// Events in the run (the last subscriber's count).
    pub events: usize,
    /// Subscribers that received every event in order, ending with `RUN_FINISHED`.
    pub complete: usize,
    /// (subscriber, event) pairs delivered live, after the hold.
    pub deliveries: usize,
    /// From an event's `at` to its arrival at the subscriber's socket.
    pub lag_p50_ms: f64,
    pub lag_p99_ms: f64,
    pub lag_max_ms: f64,
    /// From an event's `at` to when this load generator read it (its own wait for a core
    /// included).
    pub read_lag_p99_ms: f64,
    /// Per event, the lag of the first socket it reached, at p99: the part of the lag before
    /// the sweep over the sockets (publishing, the shared execution, the delivery window).
    pub first_lag_p99_ms: f64,
    /// The watched fork from its first phase to its end, and the same fork of the same template
    /// with nobody watching (the median of [`ALONE_RUNS`], each the first fork of a fresh
    /// server process, as the watched one is), in milliseconds.
    pub watched_ms: f64,
    pub unwatched_ms: f64,
    /// The subscribers' server before any subscriber, with every subscriber attached, and its
    /// peak.
    pub server_idle: Memory,
    pub server_attached: Memory,
    pub server_peak_mb: f64,
    /// CPU the subscribers' server spent from the end of the hold until every stream ended,
    /// without its fork runtime's (the delivery's cost), and what this load generator spent
    /// meanwhile reading the streams, in milliseconds.
    pub delivery_cpu_ms: f64,
    pub generator_cpu_ms: f64,
    /// CPU of the fork runtime during the watched fork, and per fork alone (the median), in
    /// milliseconds: equal figures with a longer watched fork mean it waited for a core.
    pub watched_fork_cpu_ms: f64,
    pub alone_fork_cpu_ms: f64,
    /// The server's own view (`forklift_subscription_delivery_seconds`, from serialisation to
    /// the flushed write, live events only): the share of (subscriber, event) pairs flushed
    /// within 100 ms, and the bucket bounds that hold half and 99% of them, in milliseconds.
    pub server_within_100ms: f64,
    pub server_p50_le_ms: f64,
    pub server_p99_le_ms: f64,
    /// The share of the deliveries that arrived within 100 ms (the lag figures' view), and
    /// that were read here within 100 ms.
    pub within_100ms: f64,
    pub read_within_100ms: f64,
}

/// The buckets of the server's delivery histogram: (upper bound in seconds, cumulative count).
async fn delivery_buckets(addr: &str) -> anyhow::Result<Vec<(f64, f64)>> {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await?
        .text()
        .await?;
    let prefix = "forklift_subscription_delivery_seconds_bucket{le=\"";
    Ok(text
        .lines()
        .filter_map(|line| {
            let (le, count) = line.strip_prefix(prefix)?.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.parse().ok()?))
        })
        .collect())
}

/// From the growth of the delivery histogram between `before` and `after`: (share within
/// 100 ms, bucket bound holding half, bucket bound holding 99%), bounds in milliseconds.
fn server_view(before: &[(f64, f64)], after: &[(f64, f64)]) -> (f64, f64, f64) {
    let grown: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| {
            let was = before
                .iter()
                .find(|(b, _)| b == le)
                .map_or(0.0, |(_, n)| *n);
            (*le, n - was)
        })
        .collect();
    let total = grown.last().map_or(0.0, |(_, n)| *n).max(1.0);
    let bound = |q: f64| {
        grown
            .iter()
            .find(|(_, n)| *n >= q * total)
            .map_or(f64::INFINITY, |(le, _)| le * 1000.0)
    };
    let within = grown
        .iter()
        .find(|(le, _)| (*le - 0.1).abs() < 1e-9)
        .map_or(0.0, |(_, n)| n / total);
    (within, bound(0.5), bound(0.99))
}

impl FanoutMeasurement {
    /// Server memory per attached, idle subscriber, in KiB.
    pub fn kib_per_subscriber(&self) -> f64 {
        (self.server_attached.rss_mb - self.server_idle.rss_mb).max(0.0) * 1024.0
            / self.subscribers.max(1) as f64
    }
}

/// How one subscriber ended.
enum Ending {
    /// The stream completed.
    Complete,
    /// The server closed the socket as a slow consumer.
    Slow,
}

const PROGRESS: &str = "subscription($id: ID!) { forkProgress(runId: $id) { seq kind at } }";

/// One event as a subscriber saw it.
struct Sighting {
    seq: i64,
    kind: &'static str,
    /// The event's own time.
    at: DateTime<Utc>,
    /// When its bytes reached the socket (the read's time where the kernel gave no stamp).
    arrived: DateTime<Utc>,
    /// When the load generator read it.
    read: DateTime<Utc>,
}

/// What one subscriber saw, in order.
type Seen = Vec<Sighting>;

/// Room reserved for a subscriber's events before the stream starts: growing 2,000 vectors
/// while events arrive would make the load generator fault in fresh pages on the cores the
/// server needs.
const EVENTS_RESERVED: usize = 256;

/// The kinds the measurement reads; any other kind is kept as `OTHER` (no allocation per event).
fn kind_of(kind: &str) -> &'static str {
    match kind {
        "PHASE_STARTED" => "PHASE_STARTED",
        "RUN_FINISHED" => "RUN_FINISHED",
        _ => "OTHER",
    }
}

/// A server message, read only as far as the measurement needs (no JSON tree per message).
#[derive(serde::Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    payload: Option<FramePayload<'a>>,
}

#[derive(serde::Deserialize)]
struct FramePayload<'a> {
    #[serde(borrow)]
    data: Option<FrameData<'a>>,
}

#[derive(serde::Deserialize)]
struct FrameData<'a> {
    #[serde(rename = "forkProgress", borrow)]
    fork_progress: Option<FrameEvent<'a>>,
}

#[derive(serde::Deserialize)]
struct FrameEvent<'a> {
    seq: i64,
    kind: &'a str,
    at: &'a str,
}

async fn subscribe(
    url: String,
    token: String,
    run: String,
    slow: bool,
    connecting: Arc<Semaphore>,
    attached: tokio::sync::mpsc::Sender<()>,
) -> anyhow::Result<(Seen, Ending)> {
    let mut request = url.as_str().into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    // Connections open a few dozen at a time, as a fleet of dashboards would reconnect.
    let permit = connecting.acquire_owned().await?;
    let host = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let tcp = tokio::net::TcpSocket::new_v4()?;
    if slow {
        tcp.set_recv_buffer_size(4096)?;
    }
    let (stream, arrivals) = Stamped::new(tcp.connect(host.parse()?).await?)?;
    // The load generator shares the server's cores: a dashboard's small read buffer (the
    // default 128 KiB is zero-filled before every read) and no JSON tree per message keep it
    // from measuring itself.
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let (mut socket, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    let send = |message: Value| Message::Text(message.to_string().into());
    socket
        .send(send(json!({ "type": "connection_init",
            "payload": { "Authorization": format!("Bearer {token}") } })))
        .await?;
    socket
        .send(send(json!({ "id": "1", "type": "subscribe",
            "payload": { "query": PROGRESS, "variables": { "id": run } } })))
        .await?;
    let mut seen = Seen::with_capacity(EVENTS_RESERVED);
    let mut permit = Some(permit);
    while let Some(message) = socket.next().await {
        let text = match message? {
            Message::Text(text) => text,
            Message::Close(Some(frame)) if u16::from(frame.code) == SLOW_CONSUMER_CLOSE => {
                return Ok((seen, Ending::Slow));
            }
            Message::Close(frame) => anyhow::bail!("closed: {frame:?}"),
            _ => continue,
        };
        let read = Utc::now();
        let frame: Frame<'_> = serde_json::from_str(&text)?;
        match frame.kind {
            "next" => {
                let event = frame
                    .payload
                    .and_then(|p| p.data)
                    .and_then(|d| d.fork_progress)
                    .ok_or_else(|| anyhow::anyhow!("an event without forkProgress: {text}"))?;
                let at = DateTime::parse_from_rfc3339(event.at)
                    .map_err(|_| anyhow::anyhow!("an event without `at`: {text}"))?;
                seen.push(Sighting {
                    seq: event.seq,
                    kind: kind_of(event.kind),
                    at: at.with_timezone(&Utc),
                    arrived: arrivals.last().unwrap_or(read),
                    read,
                });
                if permit.take().is_some() {
                    let _ = attached.send(()).await;
                } else if slow {
                    tokio::time::sleep(SLOW_READ).await;
                }
            }
            "complete" => return Ok((seen, Ending::Complete)),
            "connection_ack" | "ping" | "pong" => continue,
            _ => anyhow::bail!("unexpected message: {text}"),
        }
    }
    anyhow::bail!("the socket ended without `complete`")
}

/// Runs the fan-out: a template of about `rows` rows, one fork, `subscribers` subscribers on
/// one replica or on a second one.
pub async fn run(base: &Config, options: &FanoutOptions) -> anyhow::Result<FanoutMeasurement> {
    let subscribers = options.subscribers;
    anyhow::ensure!((1..=2).contains(&options.replicas), "--replicas: 1 or 2");
    anyhow::ensure!(
        options.replicas == 1 || !base.is_sqlite(),
        "--replicas 2 needs PostgreSQL (SQLite is one process)"
    );
    let scratch = Scratch::create(base, "fanout").await?;
    let config = scratch.config();
    let (state, _, _) = synthetic_template(&config, options.rows).await?;
    bootstrap::ensure_tenant(&state, "bench-fanout", "Bench fan-out", "TENANT").await?;
    for i in 1..=ALONE_RUNS {
        let slug = format!("bench-unwatched-{i}");
        bootstrap::ensure_tenant(&state, &slug, &format!("Bench unwatched {i}"), "TENANT").await?;
    }
    let token = admin_token(&state, &config)?;
    let _ = state.db.clone().close().await;

    // The hold must outlast attaching every subscriber; the bench checks that it did.
    let hold_ms = 5_000 + 20 * subscribers as u64;
    let failpoint = format!("pause:before_phase:1:{hold_ms}");
    let server = BenchServer::start(&config, &[("FORKLIFT_FORK_FAILPOINT", &failpoint)]).await?;
    let watchers = if options.replicas == 2 {
        Some(BenchServer::start(&config, &[]).await?)
    } else {
        None
    };
    let watched_server = watchers.as_ref().unwrap_or(&server);
    let run = start_fork(&server.addr, &token, "bench-fanout").await?;
    // The counters are read just before the hold ends: the held fork's thread wakes every
    // 20 ms meanwhile, which is not the fork's cost, and replays to the subscribers are done.
    let hold_ends = tokio::time::Instant::now() + Duration::from_millis(hold_ms);
    let server_idle = watched_server.memory();

    let started = std::time::Instant::now();
    let connecting = Arc::new(Semaphore::new(64));
    let (attached_tx, mut attached_rx) = tokio::sync::mpsc::channel(subscribers.max(1));
    let url = format!("ws://{}/graphql/ws", watched_server.addr);
    // Every k-th subscriber is slow.
    let slow_every =
        (options.slow_percent > 0).then(|| (100 / options.slow_percent.min(100)).max(1));
    // The dashboards stand in for browsers on other machines: on this one they run as low as
    // the server's delivery, taking only the CPU that the fork, requests and the database leave.
    let dashboards = LazyRuntime::new("dashboards", 2, DELIVERY_NICE);
    let dashboards_runtime = dashboards.handle()?;
    let tasks: Vec<_> = (0..subscribers)
        .map(|i| {
            let slow = slow_every.is_some_and(|k| i % k == k - 1);
            let task = dashboards_runtime.spawn(subscribe(
                url.clone(),
                token.clone(),
                run.clone(),
                slow,
                connecting.clone(),
                attached_tx.clone(),
            ));
            (slow, task)
        })
        .collect();
    drop(attached_tx);
    let mut attached = 0;
    while attached < subscribers && attached_rx.recv().await.is_some() {
        attached += 1;
    }
    let all_attached = Utc::now();
    let attach_ms = started.elapsed().as_millis() as u64;
    let server_attached = watched_server.memory();
    anyhow::ensure!(
        attached == subscribers,
        "only {attached} of {subscribers} subscribers attached"
    );
    anyhow::ensure!(
        attach_ms < hold_ms,
        "attaching took {attach_ms} ms, longer than the {hold_ms} ms hold: lags would include replays"
    );

    tokio::time::sleep_until(hold_ends - HOLD_MARGIN).await;
    let buckets_before = delivery_buckets(&watched_server.addr).await?;
    let fork_cpu_before = server.fork_cpu_seconds();
    let cpu_before = (
        watched_server.cpu_seconds() - watched_server.fork_cpu_seconds(),
        super::cpu_seconds_of("self"),
    );
    let (mut lags, mut read_lags) = (Vec::new(), Vec::new());
    // Per event, the lag of the first socket it reached: what came before the sweep over the
    // sockets (the fork's publishing, the shared execution, the delivery window).
    let mut first_arrivals = std::collections::HashMap::new();
    let (mut complete, mut events) = (0, 0);
    let (mut slow, mut slow_disconnects, mut other_disconnects) = (0, 0, 0);
    let mut watched_ms = 0.0;
    for (is_slow, task) in tasks {
        slow += usize::from(is_slow);
        let Ok(Ok(Ok((seen, ending)))) = tokio::time::timeout(Duration::from_secs(300), task).await
        else {
            continue; // counted as not complete
        };
        if matches!(ending, Ending::Slow) {
            if is_slow {
                slow_disconnects += 1;
            } else {
                other_disconnects += 1;
            }
            continue;
        }
        let in_order = seen
            .iter()
            .enumerate()
            .all(|(i, sighting)| sighting.seq == i as i64 + 1);
        if in_order && seen.last().is_some_and(|s| s.kind == "RUN_FINISHED") {
            complete += 1;
        }
        events = events.max(seen.len());
        if watched_ms == 0.0 {
            let times: Vec<(&str, DateTime<Utc>)> = seen.iter().map(|s| (s.kind, s.at)).collect();
            watched_ms = phases_to_end_ms(&times);
        }
        if is_slow {
            continue; // the lag figures are the others'
        }
        for sighting in seen.iter().filter(|s| s.at > all_attached) {
            let lag = ms_between(sighting.at, sighting.arrived);
            lags.push(lag);
            read_lags.push(ms_between(sighting.at, sighting.read));
            let first = first_arrivals.entry(sighting.seq).or_insert(lag);
            *first = first.min(lag);
        }
    }
    let mut first_lags: Vec<f64> = first_arrivals.into_values().collect();
    first_lags.sort_by(|a, b| a.total_cmp(b));
    let delivery_cpu_ms =
        (watched_server.cpu_seconds() - watched_server.fork_cpu_seconds() - cpu_before.0) * 1000.0;
    let generator_cpu_ms = (super::cpu_seconds_of("self") - cpu_before.1) * 1000.0;
    lags.sort_by(|a, b| a.total_cmp(b));
    read_lags.sort_by(|a, b| a.total_cmp(b));
    let (server_within_100ms, server_p50_le_ms, server_p99_le_ms) = server_view(
        &buckets_before,
        &delivery_buckets(&watched_server.addr).await?,
    );
    let share_within_100ms = |lags: &[f64]| {
        lags.iter().filter(|lag| **lag <= 100.0).count() as f64 / lags.len().max(1) as f64
    };
    let (within_100ms, read_within_100ms) =
        (share_within_100ms(&lags), share_within_100ms(&read_lags));
    let server_peak_mb = watched_server.memory().peak_mb;
    let watched_fork_cpu_ms = (server.fork_cpu_seconds() - fork_cpu_before) * 1000.0;
    server.stop().await;
    if let Some(watchers) = watchers {
        watchers.stop().await;
    }

    // The same fork with nobody watching, each on a fresh server without the hold: like the
    // watched one, the first fork of its process (its pool and statement caches cold).
    let mut alone = Vec::with_capacity(ALONE_RUNS);
    let mut alone_fork_cpu = Vec::with_capacity(ALONE_RUNS);
    for i in 1..=ALONE_RUNS {
        let quiet = BenchServer::start(&config, &[]).await?;
        let fork_cpu = quiet.fork_cpu_seconds();
        let unwatched = start_fork(&quiet.addr, &token, &format!("bench-unwatched-{i}")).await?;
        alone.push(wait_for_run(&quiet.addr, &token, &unwatched).await?);
        alone_fork_cpu.push((quiet.fork_cpu_seconds() - fork_cpu) * 1000.0);
        quiet.stop().await;
    }
    alone.sort_by(|a, b| a.total_cmp(b));
    alone_fork_cpu.sort_by(|a, b| a.total_cmp(b));
    let unwatched_ms = alone[ALONE_RUNS / 2];
    let alone_fork_cpu_ms = alone_fork_cpu[ALONE_RUNS / 2];

    let measurement = FanoutMeasurement {
        subscribers,
        replicas: options.replicas,
        slow,
        slow_disconnects,
        other_disconnects,
        events,
        complete,
        deliveries: lags.len(),
        lag_p50_ms: percentile(&lags, 0.50),
        lag_p99_ms: percentile(&lags, 0.99),
        lag_max_ms: lags.last().copied().unwrap_or_default(),
        read_lag_p99_ms: percentile(&read_lags, 0.99),
        first_lag_p99_ms: percentile(&first_lags, 0.99),
        watched_ms,
        unwatched_ms,
        server_idle,
        server_attached,
        server_peak_mb,
        delivery_cpu_ms,
        generator_cpu_ms,
        watched_fork_cpu_ms,
        alone_fork_cpu_ms,
        server_within_100ms,
        server_p50_le_ms,
        server_p99_le_ms,
        within_100ms,
        read_within_100ms,
    };
    scratch.drop_it().await;
    print(base, &measurement);
    Ok(measurement)
}

/// One GraphQL request to the bench server, as the platform admin; the JSON body.
async fn graphql(addr: &str, token: &str, query: &str, variables: Value) -> anyhow::Result<Value> {
    Ok(reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await?
        .json()
        .await?)
}

/// Starts a fork of the template into `target` through the API; its run id.
async fn start_fork(addr: &str, token: &str, target: &str) -> anyhow::Result<String> {
    let response = graphql(
        addr,
        token,
        "mutation($t: String!) { forkTenant(input: {target: $t}) { id } }",
        json!({ "t": target }),
    )
    .await?;
    Ok(response["data"]["forkTenant"]["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("forkTenant failed: {response}"))?
        .to_string())
}

/// Milliseconds from `from` to `to`.
fn ms_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or_default() as f64 / 1000.0
}

/// Milliseconds from the first `PHASE_STARTED` to `RUN_FINISHED`, by the events' own times.
fn phases_to_end_ms(events: &[(&str, DateTime<Utc>)]) -> f64 {
    let first = events.iter().find(|(k, _)| *k == "PHASE_STARTED");
    let last = events.iter().find(|(k, _)| *k == "RUN_FINISHED");
    match (first, last) {
        (Some((_, a)), Some((_, b))) => ms_between(*a, *b),
        _ => 0.0,
    }
}

/// Polls `forkRun` until the run ends; [`phases_to_end_ms`] of its stored events.
async fn wait_for_run(addr: &str, token: &str, run: &str) -> anyhow::Result<f64> {
    for _ in 0..6000 {
        let response = graphql(
            addr,
            token,
            "query($id: ID!) { forkRun(id: $id) { status forkEvents { kind at } } }",
            json!({ "id": run }),
        )
        .await?;
        let status = response["data"]["forkRun"]["status"]
            .as_str()
            .unwrap_or_default();
        if !matches!(status, "PENDING" | "RUNNING") {
            anyhow::ensure!(status == "FINISHED", "the unwatched fork ended {status}");
            let events: Vec<(String, DateTime<Utc>)> = response["data"]["forkRun"]["forkEvents"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| {
                    let at = DateTime::parse_from_rfc3339(e["at"].as_str()?).ok()?;
                    Some((e["kind"].as_str()?.to_string(), at.with_timezone(&Utc)))
                })
                .collect();
            let events: Vec<(&str, DateTime<Utc>)> =
                events.iter().map(|(k, at)| (k.as_str(), *at)).collect();
            return Ok(phases_to_end_ms(&events));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the unwatched fork did not end within 5 minutes")
}

fn print(base: &Config, m: &FanoutMeasurement) {
    println!(
        "fork progress fanned out on {}: {} subscribers on {}, {} events each ({} build)",
        backend_name(base),
        m.subscribers,
        if m.replicas == 2 {
            "a second replica (the fork on the first)"
        } else {
            "the fork's replica"
        },
        m.events,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "{:>11} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12} {:>11} {:>10} {:>8} {:>9} {:>9} {:>9} {:>13} {:>16} {:>17} {:>26}",
        "complete",
        "delivered",
        "lag p50",
        "lag p99",
        "lag max",
        "first p99",
        "read p99",
        "watched ms",
        "alone ms",
        "ratio",
        "idle MiB",
        "KiB/sub",
        "peak MiB",
        "slow closed",
        "delivery CPU ms",
        "generator CPU ms",
        "fork CPU ms watched/alone"
    );
    println!(
        "{:>11} {:>10} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>12.2} {:>11.1} {:>10.1} {:>7.2}× {:>9.1} {:>9.1} {:>9.1} {:>13} {:>16.0} {:>17.0} {:>26}",
        format!("{}/{}", m.complete, m.subscribers),
        m.deliveries,
        m.lag_p50_ms,
        m.lag_p99_ms,
        m.lag_max_ms,
        m.first_lag_p99_ms,
        m.read_lag_p99_ms,
        m.watched_ms,
        m.unwatched_ms,
        m.watched_ms / m.unwatched_ms.max(0.001),
        m.server_idle.rss_mb,
        m.kib_per_subscriber(),
        m.server_peak_mb,
        format!(
            "{}/{} (+{} others)",
            m.slow_disconnects, m.slow, m.other_disconnects
        ),
        m.delivery_cpu_ms,
        m.generator_cpu_ms,
        format!("{:.0}/{:.0}", m.watched_fork_cpu_ms, m.alone_fork_cpu_ms),
    );
    println!(
        "within 100 ms: {:.1}% arrived at the sockets, {:.1}% read by this load generator; {:.1}% flushed by the server (its histogram: p50 ≤ {} ms, p99 ≤ {} ms)",
        m.within_100ms * 100.0,
        m.read_within_100ms * 100.0,
        m.server_within_100ms * 100.0,
        m.server_p50_le_ms,
        m.server_p99_le_ms,
    );
}

#[cfg(test)]
mod tests {
    use super::server_view;

    #[test]
    fn the_server_view_reads_the_histograms_growth() {
        let before = [
            (0.05, 10.0),
            (0.1, 10.0),
            (0.25, 10.0),
            (f64::INFINITY, 10.0),
        ];
        // 100 more: 60 within 50 ms, 30 more within 100 ms, 9 within 250 ms, 1 beyond.
        let after = [
            (0.05, 70.0),
            (0.1, 100.0),
            (0.25, 109.0),
            (f64::INFINITY, 110.0),
        ];
        let (within, p50, p99) = server_view(&before, &after);
        assert!((within - 0.9).abs() < 1e-9, "{within}");
        assert_eq!(p50, 50.0);
        assert_eq!(p99, 250.0);
    }
}
