//! The OpenAPI 3 spec, generated from the handlers' `#[utoipa::path]` attributes and the wire
//! types' schemas, served at `GET /openapi.json`. Schemas belong on the wire types, not here.

use actix_web::HttpResponse;
use std::sync::OnceLock;
use utoipa::OpenApi;

/// The spec: every endpoint of [`super::ROUTES`] (the spec test checks that they agree).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "X-Ray",
        description = "Why did the pipeline make that decision? Runs, steps, rejection reasons \
                       with exact counts and kept samples, decisions. Every error is \
                       `{\"code\", \"error\"}` with a message naming the field at fault."
    ),
    paths(
        super::handlers::health,
        super::handlers::health_probe,
        super::handlers::ingest,
        super::handlers::list_runs,
        super::handlers::post_run,
        super::handlers::get_run,
        super::handlers::item_fate,
        super::handlers::item_history,
        super::handlers::search_steps,
        super::insights::list_pipelines,
        super::insights::pipeline_stats,
        super::insights::pipeline_compare,
        super::run_steps::list_run_steps,
        super::run_steps::get_run_step,
        serve_spec,
        super::admin::create_alert,
        super::admin::list_alerts,
        super::admin::get_alert,
        super::admin::delete_alert,
        super::admin::alert_events,
        super::admin::retention,
        super::admin::sweep_now,
        super::otlp::export_traces,
    ),
    components(schemas(
        super::params::TimeParam,
        super::params::CursorParam,
        super::params::SelectorParam
    )),
    modifiers(&BearerKeys),
    security((), ("api_key" = [])),
    tags(
        (name = "write", description = "Record runs: complete runs or SDK event batches."),
        (name = "read", description = "Find runs and steps, and follow items."),
        (name = "meta", description = "Health and this spec."),
        (name = "alerts", description = "Alert rules, their firings and webhook deliveries."),
        (name = "admin", description = "Retention policies and sweeps."),
    )
)]
pub struct ApiDoc;

/// Declares the optional bearer API keys (see `http::auth`).
struct BearerKeys;

impl utoipa::Modify for BearerKeys {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "Needed only when the server has API keys configured: `ingest` keys for \
                         POST /runs and /ingest, `read` keys for GETs, `admin` keys for \
                         everything. Without one: 401; with one of another scope: 403.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The spec as JSON text, built once.
pub fn spec_json() -> &'static str {
    static SPEC: OnceLock<String> = OnceLock::new();
    SPEC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        serde_json::to_value(&doc)
            .map(|mut spec| {
                describe_parameter_rules(&mut spec);
                close_tagged_variants(&mut spec, &["AlertCondition"]);
                spec.to_string()
            })
            .unwrap_or_else(|e| format!("{{\"error\":\"cannot render the spec: {e}\"}}"))
    })
}

/// Marks each variant of these internally tagged enums as taking no other fields, as their
/// `#[serde(deny_unknown_fields)]` says (utoipa closes structs so, not the variants of an enum).
fn close_tagged_variants(spec: &mut serde_json::Value, enums: &[&str]) {
    for name in enums {
        let variants = spec
            .pointer_mut(&format!("/components/schemas/{name}/oneOf"))
            .and_then(|v| v.as_array_mut());
        for variant in variants.into_iter().flatten() {
            if let Some(variant) = variant.as_object_mut() {
                variant.insert("additionalProperties".into(), false.into());
            }
        }
    }
}

/// Says in the spec what [`super::params::Params`] does with every parameter, which utoipa's
/// parameter attributes cannot say: an empty query value counts as absent (`allowEmptyValue`;
/// not for a required one, where absent is an error),
/// and no text parameter may hold NUL (a pattern, where the parameter has none of its own).
fn describe_parameter_rules(spec: &mut serde_json::Value) {
    let Some(paths) = spec.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let operations = paths.values_mut().filter_map(|p| p.as_object_mut());
    for operation in operations.flat_map(|ops| ops.values_mut()) {
        let Some(parameters) = operation
            .get_mut("parameters")
            .and_then(|p| p.as_array_mut())
        else {
            continue;
        };
        for parameter in parameters.iter_mut().filter_map(|p| p.as_object_mut()) {
            let required = parameter.get("required") == Some(&true.into());
            if parameter.get("in").and_then(|i| i.as_str()) == Some("query") && !required {
                parameter.insert("allowEmptyValue".into(), true.into());
            }
            let Some(schema) = parameter.get_mut("schema").and_then(|s| s.as_object_mut()) else {
                continue;
            };
            let plain_text = schema.get("type").and_then(|t| t.as_str()) == Some("string")
                && !schema.contains_key("pattern")
                && !schema.contains_key("format")
                && !schema.contains_key("enum");
            if plain_text {
                schema.insert("pattern".into(), "^[^\\u0000]*$".into());
            }
        }
    }
}

/// `GET /openapi.json`: this API's OpenAPI 3 spec.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3 spec of this API.", content_type = "application/json", body = Object))
)]
pub async fn serve_spec() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(spec_json())
}
