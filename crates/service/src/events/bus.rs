//! The bus the relay publishes to: in-process, or Redis pub/sub shared by the replicas (see
//! [`crate::events`]).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::Event;
use super::hub::Hub;
use crate::error::{Error, Result};

/// The default Redis pub/sub channel every replica publishes to and listens on.
pub const CHANNEL: &str = "prima:events";

/// Where the relay publishes.
#[derive(Clone)]
pub enum Bus {
    /// Straight to this replica's hub (one process: the embedded default).
    InProcess,
    /// Redis pub/sub on a channel; every replica's listener feeds its own hub.
    Redis(redis::Client, String),
}

impl Bus {
    pub(super) async fn publish(&self, hub: &Hub, events: Vec<Event>) -> Result<()> {
        match self {
            Bus::InProcess => hub.deliver(events).await,
            Bus::Redis(client, channel) => {
                let message = serde_json::to_string(&events).map_err(Error::internal)?;
                let mut conn = client
                    .get_multiplexed_async_connection()
                    .await
                    .map_err(Error::internal)?;
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(message)
                    .query_async::<i64>(&mut conn)
                    .await
                    .map_err(Error::internal)?;
                Ok(())
            }
        }
    }
}

/// Listens on Redis and feeds the hub, reconnecting forever; after every (re)connection
/// the hub catches up from the outbox, so what was published while it was away arrives.
pub(super) async fn listen(client: redis::Client, channel: String, hub: Arc<Hub>) {
    loop {
        let result: Result<()> = async {
            let mut pubsub = client.get_async_pubsub().await.map_err(Error::internal)?;
            pubsub.subscribe(&channel).await.map_err(Error::internal)?;
            tracing::info!("listening for events on redis");
            hub.catch_up().await?;
            let mut messages = pubsub.on_message();
            while let Some(message) = messages.next().await {
                let text: String = message.get_payload().map_err(Error::internal)?;
                match serde_json::from_str::<Vec<Event>>(&text) {
                    Ok(events) => hub.deliver(events).await?,
                    Err(err) => tracing::warn!(error = %err, "ignoring a malformed event message"),
                }
            }
            Ok(())
        }
        .await;
        if let Err(err) = result {
            tracing::warn!(error = ?err, "event listener lost redis; reconnecting");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
