//! `GET /v1/calls`: an API key's calls, newest first, a page at a time. Each call's
//! keeper publishes, beside the record, one entry in its key's list ([`crate::keys::index`])
//! carrying a [`CallSummary`] as KV metadata, so a page is one KV `list` and no record
//! reads. Filters are applied to the entries a store page returns; a page may therefore
//! hold fewer than `limit` calls while `has_more` is still true. Sans-IO: the query is
//! parsed and the entries filtered here; the store only lists keys.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::call::{CallRecord, CallStatus};
use shared::events::OutcomeResult;

use crate::error::ApiError;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;
/// KV metadata holds at most 1,024 bytes: the restaurant's name is cut to this many characters.
const NAME_CHARS: usize = 80;

/// What the list shows of one call (and what KV keeps as the entry's metadata).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSummary {
    pub call_id: String,
    pub status: CallStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub restaurant_name: String,
    pub date: String,
    pub time: String,
    pub party_size: u32,
    /// Whether the restaurant confirmed the booking; null until the call has an outcome.
    pub confirmed: Option<bool>,
    pub confirmation_number: Option<String>,
}

impl CallSummary {
    pub fn of(record: &CallRecord) -> CallSummary {
        let reservation = &record.request.reservation;
        CallSummary {
            call_id: record.call_id.clone(),
            status: record.status,
            created_at: record.created_at,
            updated_at: record.updated_at,
            restaurant_name: record.request.restaurant.name.chars().take(NAME_CHARS).collect(),
            date: reservation.date.clone(),
            time: reservation.time.clone(),
            party_size: reservation.party_size,
            confirmed: record.outcome.as_ref().map(|o| o.result == OutcomeResult::Confirmed),
            confirmation_number: record.outcome.as_ref().and_then(|o| o.confirmation_number.clone()),
        }
    }
}

/// One page of a key's list as the store returns it: entries in list order, and the
/// store's cursor for the next page (`None` at the end).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexPage {
    pub entries: Vec<CallSummary>,
    pub cursor: Option<String>,
}

/// A parsed `GET /v1/calls` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub limit: u32,
    pub cursor: Option<String>,
    pub status: Option<CallStatus>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

impl ListQuery {
    /// Parses `limit`, `cursor`, `status`, `created_after`, `created_before` from form
    /// pairs; anything else, or a value out of range, is a 422 naming the parameter.
    pub fn parse(pairs: &[(String, String)]) -> Result<ListQuery, ApiError> {
        let invalid = |field: &str, message: String| ApiError::InvalidField { field: field.to_owned(), message };
        let mut query =
            ListQuery { limit: DEFAULT_LIMIT, cursor: None, status: None, created_after: None, created_before: None };
        for (name, value) in pairs {
            let value = value.trim();
            match name.as_str() {
                "limit" => {
                    query.limit = value.parse().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                        invalid("limit", format!("limit must be a whole number from 1 to {MAX_LIMIT}"))
                    })?;
                }
                "cursor" if !value.is_empty() => query.cursor = Some(value.to_owned()),
                "cursor" => {}
                "status" => {
                    let status = CallStatus::ALL.into_iter().find(|s| s.as_str() == value);
                    query.status = Some(status.ok_or_else(|| {
                        let known: Vec<&str> = CallStatus::ALL.iter().map(|s| s.as_str()).collect();
                        invalid("status", format!("status must be one of {}", known.join(", ")))
                    })?);
                }
                "created_after" | "created_before" => {
                    let at = DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&Utc)).map_err(|_| {
                        invalid(name, format!("{name} must be an RFC 3339 time such as 2027-01-15T00:00:00Z"))
                    })?;
                    if name == "created_after" {
                        query.created_after = Some(at);
                    } else {
                        query.created_before = Some(at);
                    }
                }
                other => {
                    return Err(invalid(
                        other,
                        format!(
                            "unknown parameter '{other}'; use limit, cursor, status, created_after, created_before"
                        ),
                    ))
                }
            }
        }
        Ok(query)
    }

    /// Whether a call in the list passes the filters.
    pub fn admits(&self, summary: &CallSummary) -> bool {
        self.status.is_none_or(|s| s == summary.status)
            && self.created_after.is_none_or(|t| summary.created_at >= t)
            && self.created_before.is_none_or(|t| summary.created_at < t)
    }

    /// Whether `summary` and every call after it in the list (older ones) were created
    /// before `created_after`: the list can stop there.
    pub fn past_the_end(&self, summary: &CallSummary) -> bool {
        self.created_after.is_some_and(|t| summary.created_at < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        shared::twilio::form::parse(query.as_bytes())
    }

    #[test]
    fn a_query_is_parsed_with_defaults_and_every_bad_value_named() {
        let query = ListQuery::parse(&pairs("")).expect("empty is fine");
        assert_eq!((query.limit, query.status, query.cursor), (DEFAULT_LIMIT, None, None));
        let query = ListQuery::parse(&pairs("limit=5&status=no_answer&created_after=2027-01-01T00:00:00Z&cursor=abc"))
            .expect("valid");
        assert_eq!(query.limit, 5);
        assert_eq!(query.status, Some(CallStatus::NoAnswer));
        assert_eq!(query.cursor.as_deref(), Some("abc"));
        assert_eq!(query.created_after.map(|t| t.to_rfc3339()).as_deref(), Some("2027-01-01T00:00:00+00:00"));
        for (bad, field) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=x", "limit"),
            ("status=done", "status"),
            ("created_before=yesterday", "created_before"),
            ("sort=asc", "sort"),
        ] {
            match ListQuery::parse(&pairs(bad)) {
                Err(ApiError::InvalidField { field: named, .. }) => assert_eq!(named, field, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
