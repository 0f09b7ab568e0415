//! The PostgreSQL listener: one dedicated connection per process `LISTEN`s for stored fork
//! events of any replica and rings the hub's doorbell, so a subscriber on this replica follows a
//! fork running on another at once. The stored events stay the log: a notification only says
//! "read again", so one missed while reconnecting costs nothing — after every reconnect every
//! follower is woken to catch up.

use std::{sync::Arc, time::Duration};

use sea_orm::sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use uuid::Uuid;

use crate::state::AppState;

/// The notification channel.
pub const CHANNEL: &str = "forklift_fork_events";

/// The `application_name` of the listener connection (operators and tests find it by name).
pub const APPLICATION_NAME: &str = "forklift-listener";

async fn connect(url: &str) -> anyhow::Result<PgListener> {
    let options: PgConnectOptions = url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_with(options.application_name(APPLICATION_NAME))
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Runs the listener until the process stops, reconnecting with backoff.
pub fn spawn(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            match connect(&state.config.database_url).await {
                Ok(mut listener) => {
                    backoff = Duration::from_millis(100);
                    // Anything stored while we were not listening: everyone re-reads.
                    state.hub.ring(Uuid::nil());
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(notification)) => {
                                if let Ok(run) = Uuid::parse_str(notification.payload()) {
                                    state.hub.ring(run);
                                }
                            }
                            Ok(None) => {
                                tracing::warn!(
                                    "fork event listener lost its connection; reconnecting"
                                );
                                state.hub.ring(Uuid::nil());
                            }
                            Err(err) => {
                                tracing::warn!(error = %err, "fork event listener failed; reconnecting");
                                break;
                            }
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "fork event listener cannot connect"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    })
}
