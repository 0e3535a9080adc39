//! Keeps docs/openapi.json true: every documented route and status exists and answers
//! with a body that fits its schema, the request schema's required fields are exactly
//! the ones the parser requires, and undocumented methods are refused.

mod common;

use common::*;
use edge::http::{EdgeRequest, EdgeResponse};
use edge::ports::TwilioError;
use serde_json::{json, Value};
use shared::twilio::rest::TwilioApiError;

fn spec() -> Value {
    let text = include_str!("../../docs/openapi.json");
    serde_json::from_str(text).expect("docs/openapi.json is JSON")
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(spec, spec.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {reference}")))
        }
        None => schema,
    }
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}

/// The subset of JSON Schema the document uses; returns every violation with its path.
fn violations(spec: &Value, schema: &Value, value: &Value, path: &str) -> Vec<String> {
    let schema = resolve(spec, schema);
    let mut errors = Vec::new();
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let fitting = options.iter().filter(|o| violations(spec, o, value, path).is_empty()).count();
        if fitting != 1 {
            errors.push(format!("{path}: fits {fitting} of the oneOf options"));
        }
        return errors;
    }
    if let Some(kind) = schema.get("type") {
        let names: Vec<&str> = match kind {
            Value::String(s) => vec![s.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !names.iter().any(|n| type_matches(n, value)) {
            errors.push(format!("{path}: {value} is not of type {kind}"));
            return errors;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            errors.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_i64), value.as_i64()) {
        if n < min {
            errors.push(format!("{path}: {n} < {min}"));
        }
    }
    if let (Some(max), Some(n)) = (schema.get("maximum").and_then(Value::as_i64), value.as_i64()) {
        if n > max {
            errors.push(format!("{path}: {n} > {max}"));
        }
    }
    if let Some(object) = value.as_object() {
        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                errors.push(format!("{path}: missing required '{name}'"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (name, field) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(field_schema) => errors.extend(violations(spec, field_schema, field, &format!("{path}.{name}"))),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!("{path}: '{name}' is not in the schema"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (i, item) in list.iter().enumerate() {
            errors.extend(violations(spec, items, item, &format!("{path}[{i}]")));
        }
    }
    errors
}

/// Checks a real response against what the document promises for its route and status.
fn conforms(spec: &Value, path: &str, method: &str, response: &EdgeResponse) {
    let operation = &spec["paths"][path][method];
    assert!(operation.is_object(), "{method} {path} is not documented");
    let status = response.status.to_string();
    let documented = resolve(spec, &operation["responses"][&status]);
    assert!(documented.is_object(), "{method} {path} answered {status}, which is not documented");
    let schema = &documented["content"]["application/json"]["schema"];
    let body = response.json_body();
    let errors = violations(spec, schema, &body, "$");
    assert!(errors.is_empty(), "{method} {path} {status}: {errors:#?}\n{body}");
}

#[test]
fn every_documented_response_is_real_and_fits_its_schema() {
    let spec = spec();
    let edge = edge();
    let create = "/v1/calls";
    conforms(&spec, create, "post", &book(&edge, KEY_A, &booking()));
    let idempotent = |body: &Value| {
        send(
            &edge,
            EdgeRequest::new("POST", create)
                .header("Authorization", KEY_A)
                .header("Idempotency-Key", "k")
                .body(body.to_string()),
        )
    };
    let elsewhere = booking_to(&restaurant(1));
    assert_eq!(idempotent(&elsewhere).status, 201);
    conforms(&spec, create, "post", &idempotent(&elsewhere));
    let mut other = elsewhere.clone();
    other["reservation"]["party_size"] = json!(2);
    conforms(&spec, create, "post", &idempotent(&other));
    conforms(
        &spec,
        create,
        "post",
        &send(&edge, EdgeRequest::new("POST", create).header("Authorization", KEY_A).body("{")),
    );
    conforms(&spec, create, "post", &book(&edge, "Bearer wrong", &booking()));
    conforms(&spec, create, "post", &book(&edge, KEY_A, &json!({"restaurant": {}})));
    conforms(
        &spec,
        create,
        "post",
        &send(&edge, EdgeRequest::new("POST", create).header("Authorization", KEY_A).body(vec![b' '; 70_000])),
    );
    *edge.ports.twilio.refuse_with.borrow_mut() = Some(TwilioError::Api(TwilioApiError {
        code: 21211,
        message: "Invalid 'To'".into(),
        more_info: None,
        status: 400,
    }));
    conforms(&spec, create, "post", &book(&edge, KEY_A, &booking_to(&restaurant(2))));
    *edge.ports.twilio.refuse_with.borrow_mut() = None;
    // Refused destinations and callback URLs are 422s naming their field.
    for (field, value) in [("/restaurant/phone", "+19005551234"), ("/callback_url", "http://169.254.169.254/")] {
        let mut refused = booking();
        *refused.pointer_mut(field).unwrap() = json!(value);
        let response = book(&edge, KEY_A, &refused);
        assert_eq!(response.status, 422, "{field}");
        conforms(&spec, create, "post", &response);
    }

    let record = "/v1/calls/{call_id}";
    conforms(&spec, record, "get", &get(&edge, KEY_A, "call_0001"));
    conforms(&spec, record, "get", &get(&edge, KEY_A, "call_0404"));
    conforms(&spec, record, "get", &get(&edge, "Bearer wrong", "call_0001"));
    // A record with an outcome, a transcript, metrics and an error still fits.
    status(&edge, "call_0001", &[("CallSid", "CA1"), ("CallStatus", "in-progress"), ("AnsweredBy", "machine_start")]);
    for event in [
        json!({"id": "e0", "type": "stream_started", "stream_sid": "MZ1"}),
        json!({"id": "e1", "type": "transcript", "speaker": "agent", "text": "Hello", "at_ms": 10}),
    ] {
        internal(&edge, "POST", "/internal/calls/call_0001/events", &event.to_string());
    }
    let stats = json!({
        "first_agent_audio_ms": 1200, "reply_latencies_ms": [640, 900],
        "heard_latencies_ms": [652, 915], "worker_added_latencies_us": [48, 95], "barge_ins": 1,
        "model": "gpt-realtime-2.1", "transcription_model": "gpt-transcribe",
        "usage": {"responses": 2, "text_input_tokens": 900, "audio_input_tokens": 300, "cached_text_tokens": 512,
                  "cached_audio_tokens": 0, "text_output_tokens": 40, "audio_output_tokens": 400},
        "audio_in_ms": 9000, "audio_out_ms": 4000, "transcribed_ms": 3000, "estimated_cost_micro_usd": 35_000
    });
    internal(
        &edge,
        "POST",
        "/internal/calls/call_0001/events",
        &json!({"id": "e2", "type": "stream_ended", "reason": "agent_hung_up", "stats": stats}).to_string(),
    );
    // Completed once the stream has ended: the record is final (and sealed) from here.
    status(&edge, "call_0001", &[("CallSid", "CA1"), ("CallStatus", "completed"), ("CallDuration", "9")]);
    let with_metrics = get(&edge, KEY_A, "call_0001");
    assert_eq!(with_metrics.json_body()["metrics"], stats, "the record keeps what the worker measured");
    conforms(&spec, record, "get", &with_metrics);
    conforms(&spec, record, "get", &get(&edge, KEY_A, "call_0004"));

    let cancel = "/v1/calls/{call_id}/cancel";
    let cancel_request =
        |id: &str| EdgeRequest::new("POST", &format!("/v1/calls/{id}/cancel")).header("Authorization", KEY_A);
    conforms(&spec, cancel, "post", &send(&edge, cancel_request("call_0002")));
    conforms(&spec, cancel, "post", &send(&edge, cancel_request("call_0002")));
    conforms(&spec, cancel, "post", &send(&edge, cancel_request("call_0404")));

    let mut config = config();
    config.bookings_per_minute = 1;
    let limited = edge::app::Edge { config, ..common::edge() };
    conforms(&spec, create, "post", &book(&limited, KEY_A, &booking()));
    let rate_limited = book(&limited, KEY_A, &booking());
    assert_eq!(rate_limited.status, 429);
    conforms(&spec, create, "post", &rate_limited);

    // One live call per number, across keys; so many calls per number an hour.
    let mut hourly_config = common::config();
    hourly_config.calls_per_destination_per_hour = 2;
    let two_an_hour = edge::app::Edge { config: hourly_config, ..common::edge() };
    assert_eq!(book(&two_an_hour, KEY_A, &booking()).status, 201);
    let busy = book(&two_an_hour, KEY_B, &booking());
    assert_eq!((busy.status, error_code(&busy)), (429, "destination_busy".into()));
    conforms(&spec, create, "post", &busy);
    status(&two_an_hour, "call_0001", &[("CallSid", "CA1"), ("CallStatus", "busy")]);
    assert_eq!(book(&two_an_hour, KEY_B, &booking()).status, 201, "the line is free again");
    status(&two_an_hour, "call_0002", &[("CallSid", "CA2"), ("CallStatus", "busy")]);
    let hourly = book(&two_an_hour, KEY_B, &booking());
    assert_eq!((hourly.status, error_code(&hourly)), (429, "destination_rate_limited".into()));
    conforms(&spec, create, "post", &hourly);

    // A booking that waits for its call, and its record.
    let mut later = booking_to(&restaurant(3));
    later["call_at"] = json!("2026-11-25T18:00:00Z");
    let scheduled = book(&edge, KEY_A, &later);
    assert_eq!(scheduled.json_body()["status"], "scheduled");
    conforms(&spec, create, "post", &scheduled);
    let scheduled_id = scheduled.json_body()["call_id"].as_str().unwrap_or_default().to_owned();
    conforms(&spec, record, "get", &get(&edge, KEY_A, &scheduled_id));

    let list = "/v1/calls";
    let listing = |key: &str, query: &str| {
        send(&edge, EdgeRequest::new("GET", &format!("/v1/calls?{query}")).header("Authorization", key))
    };
    conforms(&spec, list, "get", &listing(KEY_A, "limit=2"));
    conforms(&spec, list, "get", &listing(KEY_A, "status=canceled"));
    conforms(&spec, list, "get", &listing(KEY_A, "limit=1000"));
    conforms(&spec, list, "get", &listing("Bearer wrong", ""));

    let delete =
        |id: &str| send(&edge, EdgeRequest::new("DELETE", &format!("/v1/calls/{id}")).header("Authorization", KEY_A));
    conforms(&spec, record, "delete", &delete(&scheduled_id));
    conforms(&spec, record, "delete", &delete("call_0001"));
    conforms(&spec, record, "delete", &delete("call_0001"));

    edge.ports.store.set_unavailable(true);
    conforms(&spec, create, "post", &book(&edge, KEY_A, &booking()));
    conforms(&spec, record, "get", &get(&edge, KEY_A, "call_0001"));
    conforms(&spec, list, "get", &listing(KEY_A, ""));
}

#[test]
fn documented_routes_exist_and_other_methods_are_refused() {
    let spec = spec();
    let edge = edge();
    book(&edge, KEY_A, &booking());
    for (path, operations) in spec["paths"].as_object().unwrap() {
        let concrete = path.replace("{call_id}", "call_0001");
        for method in ["get", "post", "put", "patch", "delete"] {
            let response = send(
                &edge,
                EdgeRequest::new(&method.to_uppercase(), &concrete)
                    .header("Authorization", KEY_A)
                    .body(booking().to_string()),
            );
            let code = response.json_body()["error"]["code"].clone();
            if operations.get(method).is_some() {
                assert_ne!(code, "no_route", "{method} {path}");
                assert_ne!(code, "method_not_allowed", "{method} {path}");
            } else {
                assert_eq!(response.status, 405, "{method} {path} is undocumented but answered {}", response.status);
            }
        }
    }
}

#[test]
fn the_request_schema_matches_what_the_parser_requires() {
    let spec = spec();
    let schema = resolve(&spec, &spec["components"]["schemas"]["BookingRequest"]).clone();
    let mut full = booking();
    full["calling_window"] = json!({"start": "00:00", "end": "24:00"});
    full["retry"] = json!({"max_attempts": 2, "interval_minutes": 5});
    assert_eq!(violations(&spec, &schema, &full, "$"), Vec::<String>::new());
    for (object_path, object_schema) in [
        ("", &schema),
        ("/restaurant", &schema["properties"]["restaurant"]),
        ("/reservation", &schema["properties"]["reservation"]),
        ("/calling_window", &schema["properties"]["calling_window"]),
        ("/retry", &schema["properties"]["retry"]),
    ] {
        let required: Vec<&str> = object_schema["required"]
            .as_array()
            .map_or_else(Vec::new, |r| r.iter().filter_map(Value::as_str).collect());
        for name in object_schema["properties"].as_object().unwrap().keys() {
            let mut body = full.clone();
            let parent = if object_path.is_empty() { &mut body } else { body.pointer_mut(object_path).unwrap() };
            parent.as_object_mut().unwrap().remove(name);
            let response = book(&edge(), KEY_A, &body);
            if required.contains(&name.as_str()) {
                assert_eq!(response.status, 422, "{object_path}/{name} is documented as required");
            } else {
                assert_eq!(
                    response.status,
                    201,
                    "{object_path}/{name} is documented as optional: {:?}",
                    response.json_body()
                );
            }
        }
    }
}
