//! The API contract, checked on every answer the suite receives: a proxy in front of each test
//! app forwards every request and checks the answer against the app's own `/openapi.json` (the
//! route and method declared, the status declared for them, the body valid against the
//! declared JSON schema). An answer that breaks it is replaced by a 599 naming the breach, and
//! the test fails when its app is dropped; so a handler returning a shape the document does not
//! declare fails the test that reached it.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode as ActixStatus;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use futures_util::TryStreamExt as _;
use serde_json::Value;

/// The declared API, compiled lazily.
pub struct Contract {
    doc: Value,
    /// Path templates, the most literal first.
    templates: Vec<String>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// Whether `path` fits `template` (`{name}` is one non-empty segment).
fn fits(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| if t.starts_with('{') { !p.is_empty() } else { t == p })
}

impl Contract {
    pub fn new(doc: Value) -> Self {
        let mut templates: Vec<String> = doc["paths"].as_object().expect("paths").keys().cloned().collect();
        templates.sort_by_key(|t| t.matches('{').count());
        Contract { doc, templates, validators: Mutex::new(HashMap::new()) }
    }

    fn validator(&self, key: &str, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        if let Some(v) = self.validators.lock().unwrap().get(key) {
            return Ok(v.clone());
        }
        let mut root = schema.clone();
        match root.as_object_mut() {
            // The document's components beside the schema: its `$ref`s resolve in this root.
            Some(obj) => {
                obj.insert("components".into(), self.doc["components"].clone());
            }
            None => return Err(format!("schema of {key} is not an object")),
        }
        let v = Arc::new(jsonschema::draft202012::new(&root).map_err(|e| format!("schema of {key}: {e}"))?);
        self.validators.lock().unwrap().insert(key.to_owned(), v.clone());
        Ok(v)
    }

    /// Whether this answer is one the document declares.
    pub fn check(&self, method: &str, path: &str, status: u16, content_type: &str, body: &[u8]) -> Result<(), String> {
        let method = method.to_ascii_lowercase();
        if method == "options" {
            return Ok(()); // CORS preflights: answered by the CORS layer, not API operations
        }
        let template = self.templates.iter().find(|t| fits(t, path)).map(String::as_str);
        let operation = template.and_then(|t| self.doc["paths"][t].get(&method));
        let (what, responses) = match (template, operation) {
            (Some(t), Some(op)) => (format!("{} {t}", method.to_uppercase()), &op["responses"]),
            // No such route (or method): only the not-found problem may answer.
            _ if status == 404 || status == 405 => {
                return self.check_body(
                    "not found",
                    "application/problem+json",
                    &schema_ref("Problem"),
                    content_type,
                    body,
                );
            }
            (Some(t), None) => return Err(format!("{} {t} is not declared", method.to_uppercase())),
            (None, _) => return Err(format!("{} {path}: no declared path matches", method.to_uppercase())),
        };
        let declared = responses.get(status.to_string()).or_else(|| responses.get("default"));
        let Some(declared) = declared else {
            return Err(format!("{what}: status {status} is not declared"));
        };
        let Some(content) = declared.get("content").and_then(Value::as_object) else {
            return if body.is_empty() {
                Ok(())
            } else {
                Err(format!("{what} {status}: a body where none is declared"))
            };
        };
        let media = content_type.split(';').next().unwrap_or_default().trim();
        let Some(declared_media) = content.get(media) else {
            let names: Vec<&String> = content.keys().collect();
            return Err(format!("{what} {status}: content type {media:?} is not declared ({names:?})"));
        };
        let schema = declared_media.get("schema").cloned().unwrap_or(Value::Null);
        self.check_body(&format!("{what} {status}"), media, &schema, content_type, body)
    }

    fn check_body(
        &self,
        what: &str,
        media: &str,
        schema: &Value,
        content_type: &str,
        body: &[u8],
    ) -> Result<(), String> {
        let actual = content_type.split(';').next().unwrap_or_default().trim();
        if actual != media {
            return Err(format!("{what}: content type {actual:?}, declared {media:?}"));
        }
        if !media.ends_with("json") || schema.is_null() {
            return Ok(());
        }
        let instance: Value =
            serde_json::from_slice(body).map_err(|e| format!("{what}: the body is not JSON ({e})"))?;
        let validator = self.validator(&format!("{what} {media}"), schema)?;
        let errors: Vec<String> =
            validator.iter_errors(&instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        if errors.is_empty() { Ok(()) } else { Err(format!("{what}: {} in {instance}", errors.join("; "))) }
    }
}

fn schema_ref(name: &str) -> Value {
    serde_json::json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The answers that broke the contract, in the order seen.
pub type Violations = Arc<Mutex<Vec<String>>>;

struct Proxy {
    upstream: String,
    http: reqwest::Client,
    contract: Arc<Contract>,
    violations: Violations,
}

/// Starts a checking proxy in front of `upstream` (`http://host:port`); its base URL.
pub async fn start(upstream: String, contract: Arc<Contract>, violations: Violations) -> String {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let proxy = web::Data::new(Proxy { upstream, http, contract, violations });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || App::new().app_data(proxy.clone()).default_service(web::to(forward)))
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}")
}

/// Headers that belong to one connection, not to the request or the answer.
fn hop_by_hop(name: &str) -> bool {
    matches!(name, "connection" | "keep-alive" | "transfer-encoding" | "content-length" | "te" | "upgrade")
}

async fn forward(req: HttpRequest, body: web::Bytes, proxy: web::Data<Proxy>) -> HttpResponse {
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
    // The Host header goes along: the app sees the address its caller used (its own origin).
    let mut out = proxy.http.request(method, format!("{}{target}", proxy.upstream));
    for (name, value) in req.headers() {
        if !hop_by_hop(name.as_str()) {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = match out.body(body.to_vec()).send().await {
        Ok(answer) => answer,
        Err(e) => return HttpResponse::BadGateway().body(format!("checking proxy: {e}")),
    };
    let status = answer.status().as_u16();
    let mut res = HttpResponse::build(ActixStatus::from_u16(status).unwrap());
    for (name, value) in answer.headers() {
        if !hop_by_hop(name.as_str()) {
            res.append_header((name.as_str(), value.as_bytes()));
        }
    }
    let content_type =
        answer.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let path = req.path().to_owned();
    if content_type.starts_with("text/event-stream") {
        if let Err(e) = proxy.contract.check(req.method().as_str(), &path, status, &content_type, b"") {
            return breach(&proxy, e);
        }
        return res.streaming(answer.bytes_stream().map_err(std::io::Error::other));
    }
    let bytes = match answer.bytes().await {
        Ok(b) => b,
        Err(e) => return HttpResponse::BadGateway().body(format!("checking proxy: {e}")),
    };
    match proxy.contract.check(req.method().as_str(), &path, status, &content_type, &bytes) {
        Ok(()) => res.body(bytes.to_vec()),
        Err(e) => breach(&proxy, e),
    }
}

fn breach(proxy: &Proxy, violation: String) -> HttpResponse {
    eprintln!("OpenAPI contract broken: {violation}");
    proxy.violations.lock().unwrap().push(violation.clone());
    HttpResponse::build(ActixStatus::from_u16(599).unwrap()).body(format!("OpenAPI contract broken: {violation}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> Contract {
        Contract::new(serde_json::from_str(spotauth_app::routes::openapi_json()).unwrap())
    }

    #[test]
    fn a_shape_the_document_does_not_declare_is_caught() {
        let c = contract();
        let me = br#"{"id":"7b0c5a43-2c4d-4c2e-9a53-7f8e8a1c2b3d","spotifyId":"alice","displayName":null,"isActive":true,"isPremium":true,"premiumSource":"profile","lastActive":"2026-12-04T10:00:00.000Z","createdAt":"2026-12-04T09:00:00.000Z","spotifyConnected":true,"reauthRequired":false}"#;
        c.check("GET", "/api/users/me", 200, "application/json", me).unwrap();
        let extra = String::from_utf8_lossy(me).replace("\"spotifyId\"", "\"accessToken\":\"BQ\",\"spotifyId\"");
        let missing = String::from_utf8_lossy(me).replace("\"isActive\":true,", "");
        let wrong = String::from_utf8_lossy(me).replace("\"isActive\":true", "\"isActive\":\"yes\"");
        for body in [extra, missing, wrong] {
            assert!(c.check("GET", "/api/users/me", 200, "application/json", body.as_bytes()).is_err(), "{body}");
        }
        let err = c.check("GET", "/api/users/me", 418, "application/json", me).unwrap_err();
        assert!(err.contains("status 418 is not declared"), "{err}");
        let err = c.check("PATCH", "/api/users/me", 200, "application/json", me).unwrap_err();
        assert!(err.contains("not declared"), "{err}");
        let err = c.check("GET", "/api/users/me", 200, "text/html", me).unwrap_err();
        assert!(err.contains("content type"), "{err}");
        let problem = br#"{"type":"urn:spotauth:problem:unauthenticated","title":"t","status":401,"code":"unauthenticated","requestId":"r"}"#;
        c.check("GET", "/api/users/me", 401, "application/problem+json", problem).unwrap();
        c.check("GET", "/nowhere", 404, "application/problem+json", problem).unwrap();
        assert!(c.check("GET", "/nowhere", 200, "application/json", b"{}").is_err());
        let no_code = br#"{"type":"x","title":"t","status":401}"#;
        assert!(c.check("GET", "/api/users/me", 401, "application/problem+json", no_code).is_err());
        c.check("DELETE", "/api/users/me/sessions/abc", 204, "", b"").unwrap();
        assert!(c.check("DELETE", "/api/users/me/sessions/abc", 204, "text/plain", b"x").is_err());
    }
}
