//! The load generator the query benchmarks share: `concurrency` clients posting one GraphQL body
//! in a loop; a warm-up, then a measured window. Only requests that complete inside the window
//! count (their latencies, their errors), so the rate is what was completed per second of the
//! window, not what was started.

use std::time::{Duration, Instant};

/// Seconds of load before the measured window.
pub const WARMUP_SECS: u64 = 2;

/// Where and what to post.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: String,
    pub token: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: serde_json::Value,
}

/// A running load.
pub struct Load {
    window_start: Instant,
    window_end: Instant,
    tasks: Vec<tokio::task::JoinHandle<(Vec<f64>, u64)>>,
}

impl Load {
    /// Starts `concurrency` clients: [`WARMUP_SECS`] of warm-up, then `seconds` measured.
    pub fn start(
        client: reqwest::Client,
        target: Target,
        concurrency: usize,
        seconds: u64,
    ) -> Load {
        let window_start = Instant::now() + Duration::from_secs(WARMUP_SECS);
        let window_end = window_start + Duration::from_secs(seconds);
        let tasks = (0..concurrency.max(1))
            .map(|_| {
                let (client, target) = (client.clone(), target.clone());
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut errors = 0u64;
                    while Instant::now() < window_end {
                        let started = Instant::now();
                        let mut request = client
                            .post(&target.url)
                            .bearer_auth(&target.token)
                            .json(&target.body);
                        for (name, value) in &target.headers {
                            request = request.header(*name, value);
                        }
                        // The body is read whole but not parsed: on a machine the server
                        // shares, parsing 1,550 objects per response would cost the generator
                        // more CPU than the server spends producing them.
                        let ok = match request.send().await {
                            Ok(response) if response.status().is_success() => {
                                response.bytes().await.is_ok_and(|body| succeeded(&body))
                            }
                            _ => false,
                        };
                        let finished = Instant::now();
                        if finished < window_start || finished > window_end {
                            continue;
                        }
                        latencies.push((finished - started).as_secs_f64() * 1000.0);
                        if !ok {
                            errors += 1;
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        Load {
            window_start,
            window_end,
            tasks,
        }
    }

    /// Waits until the measured window opens (read counters then).
    pub async fn window_started(&self) {
        tokio::time::sleep_until(self.window_start.into()).await;
    }

    /// Waits until the measured window closes (read counters then).
    pub async fn window_ended(&self) {
        tokio::time::sleep_until(self.window_end.into()).await;
    }

    /// Waits for the clients; the latencies (ms) of the requests completed in the window, and
    /// how many of those failed (a non-2xx status or `errors` in the body).
    pub async fn finish(self) -> anyhow::Result<(Vec<f64>, u64)> {
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in self.tasks {
            let (l, e) = task.await?;
            latencies.extend(l);
            errors += e;
        }
        Ok((latencies, errors))
    }
}

/// Whether a GraphQL response body answered with data and no `errors` entry.
fn succeeded(body: &[u8]) -> bool {
    body.starts_with(b"{\"data\"") && !body.windows(9).any(|w| w == b"\"errors\":")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_body_with_errors_is_not_a_success() {
        assert!(super::succeeded(br#"{"data":{"a":1}}"#));
        assert!(!super::succeeded(
            br#"{"errors":[{"message":"x"}],"data":null}"#
        ));
        assert!(!super::succeeded(br#"{"data":null,"errors":[]}"#));
        assert!(!super::succeeded(b"not json"));
    }
}
