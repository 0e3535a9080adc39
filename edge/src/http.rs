//! The request and response the handlers see: plain data, so the same route table runs
//! under workerd and in native tests.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeRequest {
    pub method: String,
    /// Path without the query, e.g. `/v1/calls/abc`.
    pub path: String,
    /// Raw query string without `?`, or empty.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl EdgeRequest {
    pub fn new(method: &str, path_and_query: &str) -> EdgeRequest {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        EdgeRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> EdgeRequest {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> EdgeRequest {
        self.body = body.into();
        self
    }

    /// A header's value, matched case-insensitively.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The path and query as sent.
    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Sent as `Retry-After` (a 429 says when to come back).
    pub retry_after_seconds: Option<u32>,
}

impl EdgeResponse {
    pub fn json(status: u16, value: &serde_json::Value) -> EdgeResponse {
        EdgeResponse {
            status,
            content_type: "application/json",
            body: value.to_string().into_bytes(),
            retry_after_seconds: None,
        }
    }

    pub fn xml(body: String) -> EdgeResponse {
        EdgeResponse { status: 200, content_type: "text/xml", body: body.into_bytes(), retry_after_seconds: None }
    }

    /// A finished `text/event-stream` body (Server-Sent Events).
    pub fn event_stream(body: String) -> EdgeResponse {
        EdgeResponse {
            status: 200,
            content_type: "text/event-stream",
            body: body.into_bytes(),
            retry_after_seconds: None,
        }
    }

    pub fn empty(status: u16) -> EdgeResponse {
        EdgeResponse { status, content_type: "text/plain", body: Vec::new(), retry_after_seconds: None }
    }

    pub fn json_body(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}
