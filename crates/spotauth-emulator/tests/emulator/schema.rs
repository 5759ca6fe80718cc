//! Every JSON object the emulator's Web API returns validates against Spotify's published OpenAPI
//! schema (`shared/spotify/web-api-openapi.yml`), checked by a small validator for the JSON Schema
//! subset the file uses.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use spotauth_emulator::{Fault, FaultTarget};

use crate::common::*;

const SPEC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/spotify/web-api-openapi.yml");

/// Keywords that only annotate.
const ANNOTATIONS: &[&str] =
    &["description", "example", "examples", "deprecated", "title", "format", "discriminator", "default", "readOnly"];

struct Spec {
    root: Value,
}

fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let text = std::fs::read_to_string(SPEC_PATH).unwrap_or_else(|e| {
            panic!("Spotify's OpenAPI file is missing at {SPEC_PATH} ({e}); the repository must sit beside shared/")
        });
        let root: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {SPEC_PATH}: {e}"));
        Spec { root }
    })
}

impl Spec {
    fn pointer(&self, reference: &str) -> &Value {
        let ptr = reference.strip_prefix('#').unwrap_or_else(|| panic!("only local $refs are supported: {reference}"));
        self.root.pointer(ptr).unwrap_or_else(|| panic!("unresolvable $ref {reference}"))
    }

    /// The `application/json` schema of a response object (following its `$ref`).
    fn response_schema<'a>(&'a self, response: &'a Value) -> &'a Value {
        let response = match response.get("$ref").and_then(Value::as_str) {
            Some(r) => self.pointer(r),
            None => response,
        };
        response
            .pointer("/content/application~1json/schema")
            .unwrap_or_else(|| panic!("response without an application/json schema: {response}"))
    }

    /// The schema of `paths[path][method].responses[status]`.
    fn operation_response(&self, path: &str, method: &str, status: u16) -> &Value {
        let escaped = path.replace('~', "~0").replace('/', "~1");
        let response = self
            .root
            .pointer(&format!("/paths/{escaped}/{method}/responses/{status}"))
            .unwrap_or_else(|| panic!("no {status} response for {method} {path} in the spec"));
        self.response_schema(response)
    }

    fn component_response(&self, name: &str) -> &Value {
        self.response_schema(self.pointer(&format!("#/components/responses/{name}")))
    }

    fn validate(&self, schema: &Value, value: &Value) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        self.check(schema, value, "$", &mut errors);
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    fn check(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        let Some(obj) = schema.as_object() else {
            errors.push(format!("{at}: schema is not an object: {schema}"));
            return;
        };
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            self.check(self.pointer(r), value, at, errors);
        }
        if value.is_null() && obj.get("nullable") == Some(&Value::Bool(true)) {
            return;
        }
        for (keyword, arg) in obj {
            match keyword.as_str() {
                "$ref" | "nullable" | "properties" | "additionalProperties" => {}
                k if ANNOTATIONS.contains(&k) || k.starts_with("x-") => {}
                "type" => {
                    let ty = arg.as_str().unwrap_or_default();
                    let ok = match ty {
                        "object" => value.is_object(),
                        "array" => value.is_array(),
                        "string" => value.is_string(),
                        "boolean" => value.is_boolean(),
                        "integer" => value.is_i64() || value.is_u64(),
                        "number" => value.is_number(),
                        other => {
                            errors.push(format!("{at}: unsupported type {other}"));
                            true
                        }
                    };
                    if !ok {
                        errors.push(format!("{at}: expected {ty}, got {value}"));
                    }
                }
                "required" => {
                    if let Some(map) = value.as_object() {
                        for name in arg.as_array().into_iter().flatten().filter_map(Value::as_str) {
                            if !map.contains_key(name) {
                                errors.push(format!("{at}: missing required property `{name}`"));
                            }
                        }
                    }
                }
                "items" => {
                    for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                        self.check(arg, item, &format!("{at}[{i}]"), errors);
                    }
                }
                "enum" => {
                    if !arg.as_array().is_some_and(|a| a.contains(value)) {
                        errors.push(format!("{at}: {value} not in enum {arg}"));
                    }
                }
                "minimum" => {
                    if let (Some(v), Some(min)) = (value.as_f64(), arg.as_f64())
                        && v < min
                    {
                        errors.push(format!("{at}: {v} < minimum {min}"));
                    }
                }
                "maximum" => {
                    if let (Some(v), Some(max)) = (value.as_f64(), arg.as_f64())
                        && v > max
                    {
                        errors.push(format!("{at}: {v} > maximum {max}"));
                    }
                }
                "allOf" => {
                    for sub in arg.as_array().into_iter().flatten() {
                        self.check(sub, value, at, errors);
                    }
                }
                "anyOf" | "oneOf" => {
                    let passing = arg
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|sub| {
                            let mut e = Vec::new();
                            self.check(sub, value, at, &mut e);
                            e.is_empty()
                        })
                        .count();
                    let ok = if keyword == "oneOf" { passing == 1 } else { passing >= 1 };
                    if !ok {
                        errors.push(format!("{at}: {passing} alternatives of {keyword} match"));
                    }
                }
                other => errors.push(format!("{at}: unsupported schema keyword `{other}`")),
            }
        }
        if let Some(map) = value.as_object() {
            let props = obj.get("properties").and_then(Value::as_object);
            for (name, v) in map {
                match (props.and_then(|p| p.get(name)), obj.get("additionalProperties")) {
                    (Some(sub), _) => self.check(sub, v, &format!("{at}.{name}"), errors),
                    (None, Some(Value::Bool(false))) => {
                        errors.push(format!("{at}: property `{name}` not allowed"));
                    }
                    (None, Some(extra)) if extra.is_object() => {
                        self.check(extra, v, &format!("{at}.{name}"), errors);
                    }
                    _ => {}
                }
            }
        }
    }
}

fn assert_valid(schema: &Value, value: &Value, what: &str) {
    if let Err(errors) = spec().validate(schema, value) {
        panic!("{what} does not match Spotify's schema:\n{}\nvalue: {value}", errors.join("\n"));
    }
}

fn assert_invalid(schema: &Value, value: &Value, what: &str) {
    assert!(spec().validate(schema, value).is_err(), "{what} should be rejected: {value}");
}

async fn body(resp: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(resp.status(), status);
    resp.json().await.unwrap()
}

#[test]
fn validator_can_fail() {
    let spec = spec();
    let user = spec.pointer("#/components/schemas/PrivateUserObject");
    let good = json!({"id": "a", "type": "user", "followers": {"href": null, "total": 1}, "images": []});
    assert_valid(user, &good, "a minimal user");
    assert_invalid(user, &json!({"id": "a", "followers": "x"}), "followers as a string");
    assert_invalid(user, &json!({"id": 5}), "a numeric id");
    assert_invalid(user, &json!({"images": [{"url": "u"}]}), "an image without height/width");
    assert_invalid(user, &json!({"explicit_content": {"filter_enabled": "yes"}}), "a non-boolean filter");
    assert_invalid(user, &json!([]), "an array");
    let unauthorized = spec.component_response("Unauthorized");
    assert_valid(unauthorized, &json!({"error": {"status": 401, "message": "m"}}), "an error");
    assert_invalid(unauthorized, &json!({"error": {"message": "no status"}}), "an error without status");
    assert_invalid(unauthorized, &json!({"error": {"status": 200, "message": "m"}}), "an error with status 200");
    assert_invalid(unauthorized, &json!({"error": "invalid_token"}), "an OAuth-style error");
    assert_invalid(unauthorized, &json!({"message": "m"}), "no error field");
}

#[tokio::test]
async fn web_api_bodies_match_the_published_schema() {
    let spec = spec();
    let me_200 = spec.operation_response("/me", "get", 200);
    let me_401 = spec.operation_response("/me", "get", 401);
    let me_403 = spec.operation_response("/me", "get", 403);
    let me_429 = spec.operation_response("/me", "get", 429);
    let player_403 = spec.operation_response("/me/player", "get", 403);
    let player_429 = spec.operation_response("/me/player", "get", 429);
    let play_403 = spec.operation_response("/me/player/play", "put", 403);
    let not_found = spec.component_response("NotFound");
    let error_object = spec.pointer("#/components/schemas/ErrorObject");

    // Extended Quota profile, with and without account_id.
    let emu = start(config()).await;
    let alice = login(&emu, "alice").await;
    let bob = login(&emu, "bob").await;
    let carol = login(&emu, "carol").await;
    for t in [&alice, &bob, &carol] {
        let me = body(api_get(&emu, "/me", &s(t, "access_token")).await, StatusCode::OK).await;
        assert!(me.get("product").is_some());
        assert_valid(me_200, &me, "GET /v1/me (Extended Quota)");
    }
    // 401s.
    assert_valid(me_401, &body(api_get(&emu, "/me", "BQbogus").await, StatusCode::UNAUTHORIZED).await, "401 invalid");
    emu.expire_access_tokens("bob");
    assert_valid(
        me_401,
        &body(api_get(&emu, "/me", &s(&bob, "access_token")).await, StatusCode::UNAUTHORIZED).await,
        "401 expired",
    );
    // Player errors.
    let carol_at = s(&carol, "access_token");
    let b = body(api_get(&emu, "/me/player", &carol_at).await, StatusCode::FORBIDDEN).await;
    assert_valid(player_403, &b, "403 PREMIUM_REQUIRED (GET /me/player)");
    let b = body(api_put(&emu, "/me/player/play", &carol_at).await, StatusCode::FORBIDDEN).await;
    assert_valid(play_403, &b, "403 PREMIUM_REQUIRED (PUT /me/player/play)");
    let b = body(api_put(&emu, "/me/player/play", &s(&alice, "access_token")).await, StatusCode::NOT_FOUND).await;
    assert_valid(not_found, &b, "404 NO_ACTIVE_DEVICE");
    // 429s, with and without reason.
    emu.inject_fault(Fault::rate_limited(FaultTarget::Me, 1)).unwrap();
    let b = body(api_get(&emu, "/me", &carol_at).await, StatusCode::TOO_MANY_REQUESTS).await;
    assert_valid(me_429, &b, "429");
    emu.inject_fault(Fault::quota_exceeded(FaultTarget::Player, 1)).unwrap();
    let b = body(api_get(&emu, "/me/player", &carol_at).await, StatusCode::TOO_MANY_REQUESTS).await;
    assert_valid(player_429, &b, "429 QUOTA_EXCEEDED");
    // 5xx bodies carry an ErrorObject too.
    emu.inject_fault(Fault::server_error(FaultTarget::Me, 502)).unwrap();
    let b = body(api_get(&emu, "/me", &carol_at).await, StatusCode::BAD_GATEWAY).await;
    assert_valid(error_object, &b["error"], "502 error object");

    // Development Mode profile and 403 for users off the allow-list.
    let emu = start(dev_config(&["alice"])).await;
    let alice = login(&emu, "alice").await;
    let me = body(api_get(&emu, "/me", &s(&alice, "access_token")).await, StatusCode::OK).await;
    assert!(me.get("product").is_none());
    assert_valid(me_200, &me, "GET /v1/me (Development Mode)");
    let bob = login(&emu, "bob").await;
    let b = body(api_get(&emu, "/me", &s(&bob, "access_token")).await, StatusCode::FORBIDDEN).await;
    assert_valid(me_403, &b, "403 not allow-listed");
    let b = body(api_get(&emu, "/me/player", &s(&bob, "access_token")).await, StatusCode::FORBIDDEN).await;
    assert_valid(player_403, &b, "403 not allow-listed (player)");
    // Slow answers are still valid bodies.
    emu.inject_fault(Fault::slow(FaultTarget::Me, Duration::from_millis(50))).unwrap();
    let me = body(api_get(&emu, "/me", &s(&alice, "access_token")).await, StatusCode::OK).await;
    assert_valid(me_200, &me, "slow GET /v1/me");
}

#[tokio::test]
async fn connect_bodies_match_the_published_schema() {
    let spec = spec();
    let devices_200 = spec.operation_response("/me/player/devices", "get", 200);
    let player_200 = spec.operation_response("/me/player", "get", 200);
    let device_object = spec.pointer("#/components/schemas/DeviceObject");
    let not_found = spec.component_response("NotFound");
    let bad_request = spec.component_response("BadRequest");
    let play_403 = spec.operation_response("/me/player/play", "put", 403);

    let emu = start(config()).await;
    let alice = s(&login(&emu, "alice").await, "access_token");
    let carol = s(&login(&emu, "carol").await, "access_token");
    let a1 = device(&emu, &alice, "Alice's laptop").await;
    let a2 = device(&emu, &alice, "Alice's phone").await;

    let list = body(api_get(&emu, "/me/player/devices", &alice).await, StatusCode::OK).await;
    assert_valid(devices_200, &list, "GET /v1/me/player/devices");
    for d in list["devices"].as_array().unwrap() {
        assert_valid(device_object, d, "DeviceObject");
    }
    // A track list, then a context with an offset: both states are CurrentlyPlayingContextObjects.
    for play in [
        json!({ "uris": ["spotify:track:abc"] }),
        json!({ "context_uri": "spotify:playlist:xyz", "offset": { "uri": "spotify:track:playlistxyz03" } }),
    ] {
        let resp = api_put_json(&emu, &format!("/me/player/play?device_id={a1}"), &alice, &play).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let state = body(api_get(&emu, "/me/player", &alice).await, StatusCode::OK).await;
        assert_valid(player_200, &state, "GET /v1/me/player");
        assert_eq!(state["item"]["type"], "track");
    }
    let e = body(
        api_put_json(&emu, "/me/player", &alice, &json!({ "device_ids": [a1, a2] })).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_valid(bad_request, &e, "400 for two device ids");
    let e = body(api_put_json(&emu, "/me/player/play?device_id=nope", &alice, &json!({})).await, StatusCode::NOT_FOUND)
        .await;
    assert_valid(not_found, &e, "404 Device not found");
    let e = body(api_put(&emu, "/me/player/pause", &carol).await, StatusCode::FORBIDDEN).await;
    assert_valid(play_403, &e, "403 PREMIUM_REQUIRED (pause)");
}
