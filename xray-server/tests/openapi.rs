//! `/openapi.json` cannot drift from the server: every route of the route table is in the spec
//! with the same method, path and query parameters, nothing else is, and actix serves each one.

use serde_json::Value;
use std::collections::BTreeSet;
use xray_server::http::openapi::spec_json;
use xray_server::http::ROUTES;
use xray_server::testing::{Backend, TestServer};

fn spec() -> Value {
    serde_json::from_str(spec_json()).expect("the spec is JSON")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// `(status, body, Allow header)` of `method url`.
fn call(agent: &ureq::Agent, method: &str, url: &str) -> (u16, Value, Option<String>) {
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .body(())
        .expect("a request");
    let mut res = agent.run(request).expect("the server answers");
    let allow = res
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = res.body_mut().read_to_string().expect("read body");
    // Not every route need answer JSON (a web page); those answer `null` here.
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (res.status().as_u16(), body, allow)
}

/// A concrete path for a pattern: `/runs/{run_id}` → `/runs/x`.
fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|seg| if seg.starts_with('{') { "x" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_route_is_in_the_spec_and_nothing_else() {
    let spec = spec();
    let in_spec: BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .expect("operations")
                .keys()
                .filter(|k| !matches!(k.as_str(), "parameters" | "summary" | "description"))
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let missing: Vec<_> = routed.difference(&in_spec).collect();
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}. Put `#[utoipa::path(...)]` on the \
         handler and add it to `paths(...)` of `ApiDoc` in xray-server/src/http/openapi.rs"
    );
    let extra: Vec<_> = in_spec.difference(&routed).collect();
    assert!(
        extra.is_empty(),
        "in /openapi.json but not served: {extra:?}. Add a `route!` line to `ROUTES` in \
         xray-server/src/http/mod.rs (or drop it from `ApiDoc`)"
    );
    assert_eq!(routed.len(), ROUTES.len(), "a route is listed twice");
}

#[test]
fn every_route_is_served_with_the_query_parameters_the_spec_names() {
    let server = TestServer::start(Backend::Sqlite);
    let agent = agent();
    let spec = spec();
    let mut checked = 0;
    for route in ROUTES {
        let method = route.method.to_ascii_uppercase();
        let path = concrete(route.path);
        let op = &spec["paths"][route.path][route.method];
        let documented: BTreeSet<String> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "query")
                    .map(|p| p["name"].as_str().expect("name").to_string())
                    .collect()
            })
            .unwrap_or_default();
        if route.path == "/openapi.json" {
            let (status, body, _) = call(&agent, &method, &server.at(&path));
            assert_eq!(status, 200);
            assert_eq!(body, spec, "the served spec is the generated one");
            continue;
        }
        // Served by its handler, not by the fallback's 404 or 405.
        let (status, body, _) = call(
            &agent,
            &method,
            &server.at(&format!("{path}?zz_not_a_parameter=1")),
        );
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            body["code"] != "method_not_allowed" && !message.starts_with("no endpoint"),
            "{method} {path}: the route is not served: {body}"
        );
        // A handler that checks its query string refuses the unknown parameter and lists the
        // ones it accepts: that list must be the spec's.
        if status == 400 && message.contains("unknown query parameter") {
            let accepted: BTreeSet<String> = match message.split_once("accepted: ") {
                Some((_, list)) => list.split(", ").map(str::to_string).collect(),
                None => BTreeSet::new(),
            };
            assert_eq!(
                accepted, documented,
                "{method} {}: the handler accepts these query parameters, the spec documents those",
                route.path
            );
            checked += 1;
        }
    }
    // Every endpoint of the API proper checks its query string (all but the spec itself).
    assert!(
        checked >= 8,
        "only {checked} routes checked their query parameters"
    );
}

#[test]
fn other_methods_on_known_paths_are_405_with_allow_and_unknown_paths_404() {
    let server = TestServer::start(Backend::Sqlite);
    let agent = agent();
    let (status, body, allow) = call(&agent, "DELETE", &server.at("/runs"));
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["code"], "method_not_allowed");
    assert_eq!(allow.as_deref(), Some("GET, POST"));
    let (status, body, allow) = call(&agent, "PUT", &server.at("/runs/abc/items/7"));
    assert_eq!(status, 405, "{body}");
    assert_eq!(allow.as_deref(), Some("GET"));
    let (status, body, _) = call(&agent, "GET", &server.at("/nowhere"));
    assert_eq!(status, 404, "{body}");
    let message = body["error"].as_str().expect("message");
    for route in ROUTES {
        let endpoint = format!("{} {}", route.method.to_ascii_uppercase(), route.path);
        assert!(
            message.contains(&endpoint),
            "{message} should list {endpoint}"
        );
    }
}

#[test]
fn the_spec_describes_the_custom_wire_types() {
    let spec = spec();
    assert!(spec["openapi"].as_str().expect("version").starts_with("3."));
    let schemas = &spec["components"]["schemas"];
    // A string id is a name: the same schema as `Name`, inline; an integer one is of i64's or
    // u64's range.
    assert_eq!(schemas["ItemId"]["oneOf"][0], schemas["Name"]);
    assert_eq!(
        schemas["ItemId"]["oneOf"][1],
        serde_json::json!({"type": "integer", "minimum": i64::MIN, "maximum": u64::MAX})
    );
    assert_eq!(schemas["Name"]["type"], "string");
    assert_eq!(schemas["Name"]["minLength"], 1);
    assert_eq!(schemas["Name"]["maxLength"], 512);
    assert_eq!(
        schemas["StepRecord"]["properties"]["rejections"]["propertyNames"],
        schemas["Name"]
    );
    let any = schemas["JsonText"]["type"]
        .as_array()
        .expect("JsonText types");
    assert!(
        any.len() >= 5 && !any.contains(&Value::from("null")),
        "{any:?}"
    );
    assert_eq!(
        schemas["StepType"]["enum"],
        serde_json::json!([
            "generate",
            "retrieve",
            "filter",
            "rank",
            "select",
            "transform"
        ])
    );
    assert_eq!(
        schemas["RunStarted"]["properties"]["started_at"]["format"],
        "date-time"
    );
    let events: Vec<&str> = schemas["Event"]["oneOf"]
        .as_array()
        .expect("Event is a oneOf")
        .iter()
        .map(|v| v["required"][0].as_str().expect("tag"))
        .collect();
    assert_eq!(events, ["run_started", "step_finished", "run_finished"]);
    for variant in schemas["Event"]["oneOf"].as_array().expect("variants") {
        assert_eq!(variant["additionalProperties"], false, "{variant}");
    }
    for name in ["RunStarted", "StepFinished", "RunFinished", "StepRecord"] {
        assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
    }
    assert_eq!(
        schemas["ApiErrorBody"]["required"],
        serde_json::json!(["code", "error"])
    );
    let status_param = spec["paths"]["/runs"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "status")
        .expect("status parameter")
        .clone();
    assert!(status_param["description"].is_string());
    // What the server does with parameters, said in the spec: an empty query value is absent,
    // times are RFC 3339 or dates, cursors have their shape, text holds no NUL.
    let runs_params = spec["paths"]["/runs"]["get"]["parameters"]
        .as_array()
        .expect("parameters");
    let param = |name: &str| {
        runs_params
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    assert!(runs_params.iter().all(|p| p["allowEmptyValue"] == true));
    let since = param("since");
    let since = match since["schema"].get("$ref").and_then(Value::as_str) {
        Some(r) => &schemas[r.rsplit('/').next().expect("name")],
        None => &since["schema"],
    };
    let formats: Vec<&Value> = since["oneOf"]
        .as_array()
        .expect("since is a oneOf")
        .iter()
        .map(|f| &f["format"])
        .collect();
    assert_eq!(formats, [&Value::from("date-time"), &Value::from("date")]);
    assert_eq!(param("pipeline")["schema"]["pattern"], "^[^\\u0000]*$");
    // The variants of an alert condition take no other fields, as the server reads them.
    for variant in schemas["AlertCondition"]["oneOf"]
        .as_array()
        .expect("variants")
    {
        assert_eq!(variant["additionalProperties"], false, "{variant}");
    }
}
