//! The HTTP client for the public API (docs/openapi.json).

use std::time::Duration;

use serde_json::Value;

/// Why a request did not give the answer asked for.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API answered with its error document `{"error": {"code", "message", "field"?}}`.
    #[error("{status} {code}: {message}{}", field.as_ref().map(|f| format!(" (field `{f}`)")).unwrap_or_default())]
    Refused { status: u16, code: String, message: String, field: Option<String> },
    /// An answer that is not the API's: a proxy, a wrong URL.
    #[error("unexpected answer {status} from {url}: {body}")]
    Unexpected { status: u16, url: String, body: String },
    // The cause follows in the error chain (`{:#}`), without the URL repeated.
    #[error("cannot reach {url}")]
    Network { url: String, source: reqwest::Error },
}

impl ClientError {
    /// Worth trying again: the network or a server-side failure, not a refusal.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Network { .. } => true,
            ClientError::Refused { status, .. } | ClientError::Unexpected { status, .. } => *status >= 500,
        }
    }
}

pub struct Client {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base: &str, key: &str) -> anyhow::Result<Client> {
        // No overall timeout: the event stream is long-lived by design. TCP keepalive
        // finds a peer that vanished without closing, whatever the server sends.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .tcp_keepalive(Duration::from_secs(30))
            .build()?;
        Ok(Client { base: base.trim_end_matches('/').to_owned(), key: key.to_owned(), http })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /v1/calls`: the created call (`call_id`, `status`, `links`).
    pub async fn book(&self, booking: &Value, idempotency_key: Option<&str>) -> Result<Value, ClientError> {
        let url = self.url("/v1/calls");
        let mut request = self.http.post(&url).bearer_auth(&self.key).json(booking);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        json_body(&url, request.send().await).await
    }

    /// `GET /v1/calls/{id}`: the record.
    pub async fn get(&self, call_id: &str) -> Result<Value, ClientError> {
        let url = self.url(&format!("/v1/calls/{call_id}"));
        json_body(&url, self.http.get(&url).bearer_auth(&self.key).send().await).await
    }

    /// `POST /v1/calls/{id}/cancel`: the record after the cancel.
    pub async fn cancel(&self, call_id: &str) -> Result<Value, ClientError> {
        let url = self.url(&format!("/v1/calls/{call_id}/cancel"));
        json_body(&url, self.http.post(&url).bearer_auth(&self.key).send().await).await
    }

    /// `GET /v1/calls?…`: one page, `{"data", "has_more", "next_cursor"}`.
    pub async fn list(&self, query: &[(&str, String)]) -> Result<Value, ClientError> {
        let url = self.url("/v1/calls");
        json_body(&url, self.http.get(&url).query(query).bearer_auth(&self.key).send().await).await
    }

    /// `DELETE /v1/calls/{id}`: `{"call_id", "deleted": true, "recording_deleted"}`.
    pub async fn delete(&self, call_id: &str) -> Result<Value, ClientError> {
        let url = self.url(&format!("/v1/calls/{call_id}"));
        json_body(&url, self.http.delete(&url).bearer_auth(&self.key).send().await).await
    }

    /// `GET /v1/calls/{id}/events`, from after `last_event_id`: the open stream.
    pub async fn events(&self, call_id: &str, last_event_id: Option<u64>) -> Result<reqwest::Response, ClientError> {
        let url = self.url(&format!("/v1/calls/{call_id}/events"));
        let mut request = self.http.get(&url).bearer_auth(&self.key).header("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|source| ClientError::Network { url: url.clone(), source: source.without_url() })?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(refusal(&url, response).await)
        }
    }
}

/// A call id as the API issues them (`call_…`): letters, digits, `_` and `-`. Checked
/// before it goes into a path, so a typed `/`, `?` or `..` cannot reach another route.
pub fn is_call_id(call_id: &str) -> bool {
    !call_id.is_empty()
        && call_id.len() <= 128
        && call_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

async fn json_body(url: &str, sent: Result<reqwest::Response, reqwest::Error>) -> Result<Value, ClientError> {
    let response = sent.map_err(|source| ClientError::Network { url: url.to_owned(), source: source.without_url() })?;
    if !response.status().is_success() {
        return Err(refusal(url, response).await);
    }
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|source| ClientError::Network { url: url.to_owned(), source: source.without_url() })?;
    serde_json::from_str(&body).map_err(|_| ClientError::Unexpected { status, url: url.to_owned(), body: clip(&body) })
}

/// The API's error document, or the raw answer when it is not one.
async fn refusal(url: &str, response: reqwest::Response) -> ClientError {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let error = serde_json::from_str::<Value>(&body).ok().map(|v| v["error"].clone());
    match error {
        Some(error) if error["code"].is_string() => ClientError::Refused {
            status,
            code: error["code"].as_str().unwrap_or_default().to_owned(),
            message: error["message"].as_str().unwrap_or_default().to_owned(),
            field: error["field"].as_str().map(str::to_owned),
        },
        _ => ClientError::Unexpected { status, url: url.to_owned(), body: clip(&body) },
    }
}

fn clip(body: &str) -> String {
    match body.char_indices().nth(300) {
        Some((end, _)) => format!("{}…", &body[..end]),
        None => body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_call_ids_go_into_a_path() {
        assert!(is_call_id("call_01HX-ab"));
        for bad in ["", "..", "call/x", "call?x", "call x", "call%2F"] {
            assert!(!is_call_id(bad), "{bad}");
        }
    }

    #[test]
    fn refusals_name_the_field() {
        let error = ClientError::Refused {
            status: 422,
            code: "invalid_field".into(),
            message: "must be HH:MM".into(),
            field: Some("reservation.time".into()),
        };
        assert_eq!(error.to_string(), "422 invalid_field: must be HH:MM (field `reservation.time`)");
    }
}
