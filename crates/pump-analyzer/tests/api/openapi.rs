//! `/openapi.json` against reality: every documented operation is called, and every JSON answer
//! is validated against the schema documented for its status by a JSON Schema 2020-12 validator
//! (the `jsonschema` crate; OpenAPI 3.1 schemas are JSON Schema).

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, bet_on, spawn_app};

/// Validates `value` against `schema` (a schema of the document or a `$ref` into it) with a full
/// JSON Schema 2020-12 validator: the whole document is the root, so references resolve in it.
fn validate(schema: &Value, value: &Value, doc: &Value, at: &str) -> Result<(), String> {
    let mut root = doc.clone();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["$defs"] = json!({ "checked": schema });
    root["$ref"] = json!("#/$defs/checked");
    let validator = jsonschema::validator_for(&root).map_err(|e| format!("{at}: the schema does not compile: {e}"))?;
    let problems: Vec<String> =
        validator.iter_errors(value).map(|e| format!("{e} (at {})", e.instance_path())).collect();
    if problems.is_empty() { Ok(()) } else { Err(format!("{at}: {}", problems.join("; "))) }
}

fn template_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(a, b)| (a.starts_with('{') && !b.is_empty()) || a == b)
}

struct Checker<'a> {
    app: &'a TestApp,
    doc: Value,
    seen: HashSet<(String, String)>,
}

impl Checker<'_> {
    async fn call(&mut self, method: Method, path: &str, body: Option<Value>) -> Value {
        let bare = path.split('?').next().unwrap();
        let paths = self.doc["paths"].as_object().unwrap();
        let (template, item) = paths
            .iter()
            .filter(|(t, item)| template_matches(t, bare) && item.get(method.as_str().to_lowercase()).is_some())
            // Literal segments beat parameters (/runs/active before /runs/{id}).
            .min_by_key(|(t, _)| t.matches('{').count())
            .unwrap_or_else(|| panic!("{method} {path} is not documented"));
        let operation = &item[method.as_str().to_lowercase()];
        let response = if method == Method::GET {
            self.app.client.get(self.app.url(path)).send().await.unwrap()
        } else {
            let mut request = self.app.write(method.clone(), path).await;
            if let Some(body) = &body {
                request = request.json(body);
            }
            request.send().await.unwrap()
        };
        let status = response.status().as_u16().to_string();
        let documented = &operation["responses"][&status];
        assert!(!documented.is_null(), "{method} {path} answered {status}, which is not documented");
        self.seen.insert((method.as_str().to_lowercase(), template.clone()));
        let Some(schema) = documented["content"].get("application/json").map(|c| c["schema"].clone()) else {
            return Value::Null;
        };
        let value: Value = response.json().await.unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e})"));
        if let Err(problem) = validate(&schema, &value, &self.doc, "$") {
            panic!("{method} {path} ({status}) does not match its schema: {problem}");
        }
        value
    }
}

#[tokio::test]
async fn every_documented_operation_answers_as_documented() {
    let app = spawn_app(&[("INGEST_RATE_LIMIT", "0")]).await;
    let doc: Value = app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    // The validator itself refuses what does not match.
    let list = json!({"$ref": "#/components/schemas/StreamList"});
    assert!(validate(&list, &json!({"streams": [], "total": 0, "limit": 50, "offset": 0}), &doc, "$").is_ok());
    assert!(validate(&list, &json!({"streams": 5, "total": 0, "limit": 50, "offset": 0}), &doc, "$").is_err());
    assert!(
        validate(&list, &json!({"streams": [{"id": "x"}], "total": 0, "limit": 50, "offset": 0}), &doc, "$").is_err()
    );
    assert!(validate(&list, &json!({"total": 0, "limit": 50, "offset": 0}), &doc, "$").is_err());
    let mut c = Checker { app: &app, doc, seen: HashSet::new() };
    let get = Method::GET;

    c.call(get.clone(), "/healthz", None).await;
    c.call(get.clone(), "/metrics", None).await;
    c.call(get.clone(), "/api/config", None).await;
    c.call(get.clone(), "/api/session/info", None).await;
    c.call(get.clone(), "/api/session/csrf-token", None).await;
    let r = c.call(Method::POST, "/live/ingest", Some(bet_on("h", "c", "b1", 1, 400.02, "expert"))).await;
    let id = r["streamId"].as_str().unwrap().to_string();
    c.call(Method::POST, "/live/ingest", Some(json!([bet_on("h", "c", "b2", 9, 1.63, "expert"), {"bad": 1}]))).await;
    c.call(Method::POST, "/live/ingest", Some(json!({"id": "x"}))).await;
    c.call(get.clone(), "/live/streams", None).await;
    c.call(get.clone(), "/live/streams?limit=0", None).await;
    c.call(get.clone(), &format!("/live/streams/{id}"), None).await;
    c.call(get.clone(), "/live/streams/nope", None).await;
    c.call(get.clone(), &format!("/live/streams/{id}/bets?min_multiplier=1"), None).await;
    c.call(get.clone(), &format!("/live/streams/{id}/tail"), None).await;
    c.call(get.clone(), &format!("/live/streams/{id}/rounds"), None).await;
    c.call(get.clone(), &format!("/live/streams/{id}/cadence"), None).await;
    c.call(get.clone(), &format!("/live/streams/{id}/metrics?multipliers=400.02"), None).await;
    c.call(get.clone(), &format!("/live/streams/{id}/export.csv"), None).await;
    c.call(Method::PUT, &format!("/live/streams/{id}"), Some(json!({"notes": "n"}))).await;
    c.call(Method::PUT, &format!("/live/streams/{id}"), Some(json!({"notes": 1}))).await;
    c.call(Method::POST, "/live/seeds", Some(json!({"server_seed": "s"}))).await;
    c.call(get.clone(), "/live/seeds", None).await;
    let sim = c.call(Method::POST, "/simulations", Some(json!({"script": "game = 'pump';", "max_bets": 10}))).await;
    let sim_id = sim["id"].as_str().unwrap().to_string();
    c.call(Method::POST, "/simulations", Some(json!({"script": 1}))).await;
    c.call(get.clone(), "/simulations", None).await;
    c.call(get.clone(), "/simulations?limit=0", None).await;
    for _ in 0..100 {
        if c.call(get.clone(), &format!("/simulations/{sim_id}"), None).await["status"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    c.call(get.clone(), "/simulations/nope", None).await;
    c.call(Method::DELETE, &format!("/simulations/{sim_id}"), None).await;
    c.call(Method::DELETE, &format!("/simulations/{sim_id}"), None).await;
    let demo = c.call(Method::POST, "/live/demo", Some(json!({"rate": 50}))).await;
    let demo_id = demo["stream_id"].as_str().unwrap().to_string();
    c.call(Method::POST, "/live/demo", Some(json!({"rate": 0}))).await;
    c.call(get.clone(), "/live/demo", None).await;
    c.call(Method::PUT, &format!("/live/demo/{demo_id}"), Some(json!({"rate": 20}))).await;
    c.call(Method::PUT, "/live/demo/6f1c2d3e-0000-4000-8000-000000000000", Some(json!({"rate": 20}))).await;
    c.call(Method::DELETE, &format!("/live/demo/{demo_id}"), None).await;
    c.call(Method::POST, &format!("/live/demo/{demo_id}/reveal"), None).await;
    c.call(get.clone(), "/verify?server_seed=a&client_seed=b&nonce=1&difficulty=hard", None).await;
    c.call(get.clone(), "/verify?nonce=0", None).await;
    let run = json!({"server_seed": "a", "client_seed": "b", "start": 1, "end": 5000, "difficulty": "easy", "targets": [24.5, 1.0]});
    let run = c.call(Method::POST, "/runs", Some(run)).await;
    let run_id = run["id"].as_str().unwrap().to_string();
    c.call(get.clone(), "/runs?difficulty=easy", None).await;
    c.call(get.clone(), "/runs/active", None).await;
    c.call(get.clone(), &format!("/runs/{run_id}"), None).await;
    c.call(get.clone(), &format!("/runs/{run_id}/progress"), None).await;
    c.call(get.clone(), &format!("/runs/{run_id}/hits?limit=5"), None).await;
    c.call(get.clone(), &format!("/runs/{run_id}/export/hits.csv"), None).await;
    c.call(get.clone(), &format!("/runs/{run_id}/export/full.csv"), None).await;
    c.call(Method::POST, &format!("/runs/{run_id}/cancel"), None).await;
    c.call(Method::DELETE, &format!("/runs/{run_id}"), None).await;
    c.call(get.clone(), &format!("/runs/{run_id}"), None).await;
    c.call(Method::POST, "/api/session/validate-csrf", Some(json!({"csrf_token": "x"}))).await;
    c.call(Method::POST, "/api/session/extend", None).await;
    c.call(Method::POST, "/api/session/login", Some(json!({"password": "x"}))).await;
    c.call(Method::POST, "/api/session/logout", None).await;
    c.call(Method::DELETE, &format!("/live/streams/{id}"), None).await;
    c.call(Method::POST, "/api/session/clear", None).await;
    // SSE routes: only the status and content type are checked (the body never ends).
    for path in [
        format!("/live/streams/{}/events", "6f1c2d3e-0000-4000-8000-000000000000"),
        "/live/events?last_event_id=-1".into(),
    ] {
        c.call(get.clone(), &path, None).await;
    }
    let response = app.client.get(app.url("/live/events")).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    c.seen.insert(("get".into(), "/live/events".into()));

    let documented: HashSet<(String, String)> = c.doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |m| (m.clone(), path.clone())))
        .collect();
    let missing: Vec<_> = documented.difference(&c.seen).collect();
    assert!(missing.is_empty(), "documented but never exercised: {missing:?}");
}

/// The document names how each route is authorised, the ingest body in full, and the headers the
/// rate limit adds.
#[tokio::test]
async fn the_document_describes_security_the_ingest_body_and_rate_limit_headers() {
    let app = spawn_app(&[]).await;
    let doc: Value = app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["ingestToken"]["name"], "X-Ingest-Token");
    assert_eq!(schemes["sessionCookie"]["in"], "cookie");
    assert_eq!(schemes["csrfToken"]["name"], "X-CSRF-Token");
    let ingest = &doc["paths"]["/live/ingest"]["post"];
    assert_eq!(ingest["security"][0], json!({"ingestToken": []}));
    for header in ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit", "RateLimit-Policy"] {
        assert!(ingest["responses"]["200"]["headers"][header].is_object(), "{header}");
    }
    assert!(ingest["responses"]["429"]["headers"]["Retry-After"].is_object());
    assert!(ingest["responses"]["503"].is_object());
    let schemas = &doc["components"]["schemas"];
    let required = |name: &str| schemas[name]["required"].as_array().unwrap().clone();
    assert!(required("Bet").contains(&json!("serverSeedHashed")));
    assert!(required("Heartbeat").contains(&json!("roundResult")));
    assert_eq!(schemas["IngestBody"]["oneOf"].as_array().unwrap().len(), 3, "one item, an array, or {{bets}}");
    for path in ["/api/session/login", "/api/session/logout", "/simulations", "/live/demo"] {
        assert!(doc["paths"][path]["post"].is_object(), "{path}");
    }
    let write = &doc["paths"]["/runs"]["post"]["security"][0];
    assert_eq!(*write, json!({"sessionCookie": [], "csrfToken": []}));
    // Generated clients name their methods after operation ids: each must be unique.
    let mut ids = HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(ids.insert(id.to_string()), "{method} {path}: operationId {id} is used twice");
        }
    }
}
