//! `webhook`: POSTs each event (CONTRACT §7) as JSON.
//!
//! With a `secret`, the request carries `X-Accessgraph-Signature:
//! sha256=<hex HMAC-SHA256 of the exact body bytes>`. `X-Accessgraph-Delivery`
//! holds the event id, so a receiver can drop the replays a retry after an
//! unacknowledged success produces (delivery is at least once; the event id
//! makes it once in effect). The URL's path is never logged: webhook URLs
//! often carry their own secret there.

use super::{Sink, SinkError, TicketEvent};
use crate::http::{ClientOptions, HttpClient, Method};
use accessgraph_config::{Secret, WebhookSettings};
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// Header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "x-accessgraph-signature";
/// Header carrying the event id.
pub const DELIVERY_HEADER: &str = "x-accessgraph-delivery";
/// Header carrying the event kind.
pub const EVENT_HEADER: &str = "x-accessgraph-event";

/// POSTs events to a URL.
#[derive(Debug)]
pub struct WebhookSink {
    name: String,
    client: HttpClient,
    secret: Option<Secret>,
}

/// Client options for webhooks: the URL is the base, its path hidden.
pub fn webhook_client_options(url: &str) -> ClientOptions {
    ClientOptions {
        base_url: Some(url.to_string()),
        requests_per_second: 10,
        burst: 10,
        max_retries: 3,
        base_backoff: Duration::from_millis(250),
        max_backoff: Duration::from_secs(4),
        max_rate_limit_wait: Duration::from_secs(60),
        hide_url_path: true,
        ..ClientOptions::default()
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` keyed with `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a signature header in constant time (what a receiver does).
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_part) = header.strip_prefix("sha256=") else { return false };
    let Ok(expected) = hex::decode(hex_part) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return false };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

impl WebhookSink {
    /// Builds the sink from its settings (reads the secret).
    pub fn new(name: &str, settings: &WebhookSettings) -> Result<WebhookSink, SinkError> {
        let secret = settings
            .secret
            .as_ref()
            .map(|s| s.resolve())
            .transpose()
            .map_err(|e| SinkError::Config(format!("sink `{name}`: secret: {e}")))?;
        let client = HttpClient::new(webhook_client_options(&settings.url))?;
        Ok(WebhookSink::with_client(name, client, secret))
    }

    /// A sink using a prepared client (its `base_url` is the webhook URL).
    pub fn with_client(name: &str, client: HttpClient, secret: Option<Secret>) -> WebhookSink {
        WebhookSink { name: name.to_string(), client, secret }
    }
}

#[async_trait]
impl Sink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, event: &TicketEvent) -> Result<(), SinkError> {
        let body = serde_json::to_vec(event).map_err(|e| SinkError::Remote(format!("cannot encode event: {e}")))?;
        let signed = self.secret.as_ref().map(|s| signature(s.expose().as_bytes(), &body));
        let mut headers = vec![(DELIVERY_HEADER, event.event_id.as_str()), (EVENT_HEADER, event.event.as_str())];
        if let Some(signed) = &signed {
            headers.push((SIGNATURE_HEADER, signed.as_str()));
        }
        self.client.send_bytes_with_headers(Method::POST, "", &body, &headers).await?;
        Ok(())
    }
}
