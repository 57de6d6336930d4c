//! `GET /openapi.json`: the OpenAPI 3.1 description of every JSON route.
//!
//! Kept next to the code as one table of operations and one set of schemas; the API test suite
//! (`tests/api/openapi.rs`) sends real requests to every operation listed here and validates each
//! response body against the schema documented for its status, so the document cannot drift from
//! what the server does without a test failing.

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(document()) }))
}

/// Where a parameter goes.
#[derive(Clone, Copy)]
enum In {
    Path,
    Query,
}

struct Param {
    name: &'static str,
    location: In,
    kind: &'static str,
    required: bool,
}

const fn q(name: &'static str, kind: &'static str) -> Param {
    Param { name, location: In::Query, kind, required: false }
}
const fn rq(name: &'static str, kind: &'static str) -> Param {
    Param { name, location: In::Query, kind, required: true }
}
const ID: Param = Param { name: "id", location: In::Path, kind: "string", required: true };

/// One documented operation. Response schemas name a component (`"Error"`), or `""` for a body
/// that is not JSON (CSV, SSE).
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    summary: &'static str,
    params: &'static [Param],
    request: Option<&'static str>,
    pub responses: &'static [(u16, &'static str)],
}

const E: &str = "Error";
const SE: &str = "SessionError";

pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/healthz",
        summary: "Liveness and database check",
        params: &[],
        request: None,
        responses: &[(200, "Health")],
    },
    Operation {
        method: "post",
        path: "/live/ingest",
        summary: "Ingest one bet or heartbeat, or a batch",
        params: &[],
        request: Some("IngestBody"),
        responses: &[
            (200, "IngestResult"),
            (400, E),
            (401, E),
            (403, E),
            (408, E),
            (413, E),
            (422, E),
            (429, E),
            (503, E),
        ],
    },
    Operation {
        method: "get",
        path: "/live/streams",
        summary: "Streams, newest activity first",
        params: &[q("limit", "integer"), q("offset", "integer")],
        request: None,
        responses: &[(200, "StreamList"), (400, E)],
    },
    Operation {
        method: "get",
        path: "/live/streams/{id}",
        summary: "One stream with aggregates and recent bets",
        params: &[ID],
        request: None,
        responses: &[(200, "StreamDetail"), (404, E), (422, E)],
    },
    Operation {
        method: "put",
        path: "/live/streams/{id}",
        summary: "Set or clear a stream's notes",
        params: &[ID],
        request: Some("NotesUpdate"),
        responses: &[(200, "StreamSummary"), (400, E), (401, SE), (403, SE), (404, E), (422, E)],
    },
    Operation {
        method: "delete",
        path: "/live/streams/{id}",
        summary: "Delete a stream and its bets",
        params: &[ID],
        request: None,
        responses: &[(200, "StreamDeleted"), (401, SE), (403, SE), (404, E), (422, E)],
    },
    Operation {
        method: "get",
        path: "/live/streams/{id}/bets",
        summary: "A page of a stream's bets",
        params: &[
            ID,
            q("limit", "integer"),
            q("offset", "integer"),
            q("min_multiplier", "number"),
            q("difficulty", "string"),
            q("order", "string"),
        ],
        request: None,
        responses: &[(200, "BetPage"), (400, E), (404, E), (422, E)],
    },
    Operation {
        method: "get",
        path: "/live/streams/{id}/tail",
        summary: "Bets after an id, in id order",
        params: &[ID, q("since_id", "integer"), q("limit", "integer")],
        request: None,
        responses: &[(200, "Tail"), (400, E), (404, E), (422, E)],
    },
    Operation {
        method: "get",
        path: "/live/streams/{id}/rounds",
        summary: "Recent rounds for the pattern view",
        params: &[ID, q("since_nonce", "integer"), q("limit", "integer")],
        request: None,
        responses: &[(200, "Rounds"), (400, E), (404, E), (422, E)],
    },
    Operation {
        method: "get",
        path: "/live/streams/{id}/cadence",
        summary: "Tier cadence (hits are rounds at or above a tier)",
        params: &[ID, q("tiers", "string"), q("k", "integer"), q("band", "number"), q("difficulty", "string")],
        request: None,
        responses: &[(200, "Cadence"), (400, E), (404, E), (422, E)],
    },
    Operation {
        method: "get",
        path: "/live/streams/{id}/metrics",
        summary: "Gap statistics of pinned multipliers",
        params: &[ID, q("multipliers", "string"), q("difficulty", "string")],
        request: None,
        responses: &[(200, "MultiplierMetrics"), (400, E), (404, E), (422, E)],
    },
    Operation {
        method: "get",
        path: "/live/streams/{id}/export.csv",
        summary: "The stream's bets as CSV (streamed)",
        params: &[ID],
        request: None,
        responses: &[(200, ""), (404, E), (422, E)],
    },
    Operation {
        method: "get",
        path: "/live/streams/{id}/events",
        summary: "Server-Sent Events of one stream",
        params: &[ID, q("last_event_id", "integer")],
        request: None,
        responses: &[(200, ""), (400, E), (404, E), (422, E), (503, E)],
    },
    Operation {
        method: "get",
        path: "/live/events",
        summary: "Server-Sent Events of every stream (rounds=1: their round events too)",
        params: &[q("last_event_id", "integer"), q("rounds", "integer")],
        request: None,
        responses: &[(200, ""), (400, E), (503, E)],
    },
    Operation {
        method: "post",
        path: "/live/seeds",
        summary: "Reveal a server seed and verify its streams",
        params: &[],
        request: Some("SeedReveal"),
        responses: &[(200, "SeedRevealed"), (201, "SeedRevealed"), (400, E), (401, SE), (403, SE), (422, E)],
    },
    Operation {
        method: "post",
        path: "/live/demo",
        summary: "Start a demo stream fed live from the engine (body optional: {rate})",
        params: &[],
        request: Some("DemoRate"),
        responses: &[(201, "Demo"), (400, E), (401, SE), (403, SE), (422, E)],
    },
    Operation {
        method: "get",
        path: "/live/demo",
        summary: "Demo feeds of this server",
        params: &[],
        request: None,
        responses: &[(200, "DemoList")],
    },
    Operation {
        method: "put",
        path: "/live/demo/{id}",
        summary: "Set a demo's pace (rounds per second)",
        params: &[ID],
        request: Some("DemoRate"),
        responses: &[(200, "Demo"), (400, E), (401, SE), (403, SE), (404, E), (422, E)],
    },
    Operation {
        method: "delete",
        path: "/live/demo/{id}",
        summary: "Stop a demo's feed (the stream stays)",
        params: &[ID],
        request: None,
        responses: &[(200, "Demo"), (401, SE), (403, SE), (404, E), (422, E)],
    },
    Operation {
        method: "post",
        path: "/live/demo/{id}/reveal",
        summary: "Stop a demo and reveal its server seed: every recorded bet is verified",
        params: &[ID],
        request: None,
        responses: &[(200, "SeedRevealed"), (201, "SeedRevealed"), (401, SE), (403, SE), (404, E), (422, E)],
    },
    Operation {
        method: "get",
        path: "/live/seeds",
        summary: "Revealed seeds",
        params: &[],
        request: None,
        responses: &[(200, "SeedList")],
    },
    Operation {
        method: "get",
        path: "/verify",
        summary: "One nonce through the engine",
        params: &[
            rq("server_seed", "string"),
            rq("client_seed", "string"),
            rq("nonce", "integer"),
            rq("difficulty", "string"),
        ],
        request: None,
        responses: &[(200, "Verification"), (422, E)],
    },
    Operation {
        method: "post",
        path: "/runs",
        summary: "Scan a nonce range",
        params: &[],
        request: Some("RunRequest"),
        responses: &[(201, "Run"), (400, E), (401, SE), (403, SE), (409, E), (413, E), (422, E)],
    },
    Operation {
        method: "get",
        path: "/runs",
        summary: "Stored runs",
        params: &[q("limit", "integer"), q("offset", "integer"), q("search", "string"), q("difficulty", "string")],
        request: None,
        responses: &[(200, "RunList"), (400, E)],
    },
    Operation {
        method: "get",
        path: "/runs/active",
        summary: "Scans in progress",
        params: &[],
        request: None,
        responses: &[(200, "ActiveRuns")],
    },
    Operation {
        method: "post",
        path: "/simulations",
        summary: "Simulate an Antebot script against the engine (202; runs in the background)",
        params: &[],
        request: Some("SimulationRequest"),
        responses: &[(202, "SimulationStarted"), (400, E), (401, SE), (403, SE), (422, E)],
    },
    Operation {
        method: "get",
        path: "/simulations",
        summary: "Simulations, newest first",
        params: &[q("limit", "integer"), q("offset", "integer")],
        request: None,
        responses: &[(200, "SimulationList"), (400, E)],
    },
    Operation {
        method: "get",
        path: "/simulations/{id}",
        summary: "One simulation: progress, then its result",
        params: &[ID],
        request: None,
        responses: &[(200, "Simulation"), (404, E), (422, E)],
    },
    Operation {
        method: "delete",
        path: "/simulations/{id}",
        summary: "Cancel a running simulation, or delete a finished one",
        params: &[ID],
        request: None,
        responses: &[(200, "SimulationDeleted"), (401, SE), (403, SE), (404, E), (422, E)],
    },
    Operation {
        method: "get",
        path: "/runs/{id}",
        summary: "One run",
        params: &[ID],
        request: None,
        responses: &[(200, "Run"), (404, E), (422, E)],
    },
    Operation {
        method: "delete",
        path: "/runs/{id}",
        summary: "Delete a run (or cancel one in progress)",
        params: &[ID],
        request: None,
        responses: &[(200, "RunDeleted"), (401, SE), (403, SE), (404, E), (422, E)],
    },
    Operation {
        method: "get",
        path: "/runs/{id}/progress",
        summary: "Progress of a run",
        params: &[ID],
        request: None,
        responses: &[(200, "RunProgress"), (404, E), (422, E)],
    },
    Operation {
        method: "post",
        path: "/runs/{id}/cancel",
        summary: "Cancel a scan in progress",
        params: &[ID],
        request: None,
        responses: &[(202, "RunCancelled"), (401, SE), (403, SE), (404, E), (409, E), (422, E)],
    },
    Operation {
        method: "get",
        path: "/runs/{id}/hits",
        summary: "A page of a run's hits",
        params: &[ID, q("min_multiplier", "number"), q("limit", "integer"), q("offset", "integer")],
        request: None,
        responses: &[(200, "HitPage"), (400, E), (404, E), (422, E)],
    },
    Operation {
        method: "get",
        path: "/runs/{id}/export/hits.csv",
        summary: "A run's hits as CSV",
        params: &[ID],
        request: None,
        responses: &[(200, ""), (404, E), (422, E)],
    },
    Operation {
        method: "get",
        path: "/runs/{id}/export/full.csv",
        summary: "Every nonce of a run's range, recomputed, as CSV",
        params: &[ID],
        request: None,
        responses: &[(200, ""), (404, E), (422, E)],
    },
    Operation {
        method: "get",
        path: "/api/session/info",
        summary: "Session status (not counted as activity)",
        params: &[],
        request: None,
        responses: &[(200, "SessionInfo"), (401, SE)],
    },
    Operation {
        method: "get",
        path: "/api/session/csrf-token",
        summary: "The session's CSRF token",
        params: &[],
        request: None,
        responses: &[(200, "CsrfToken"), (401, SE)],
    },
    Operation {
        method: "post",
        path: "/api/session/extend",
        summary: "Reset the idle timer",
        params: &[],
        request: None,
        responses: &[(200, "SessionExtended"), (401, SE), (403, SE)],
    },
    Operation {
        method: "post",
        path: "/api/session/clear",
        summary: "End the session",
        params: &[],
        request: None,
        responses: &[(200, "SessionMessage"), (401, SE), (403, SE)],
    },
    Operation {
        method: "post",
        path: "/api/session/validate-csrf",
        summary: "Check a CSRF token (changes nothing)",
        params: &[],
        request: Some("CsrfCheck"),
        responses: &[(200, "CsrfValid"), (400, SE), (401, SE)],
    },
    Operation {
        method: "post",
        path: "/api/session/login",
        summary: "Log in with DASHBOARD_PASSWORD (the session id rotates)",
        params: &[],
        request: Some("Login"),
        responses: &[(200, "LoggedIn"), (400, SE), (401, SE), (403, SE), (404, SE), (429, SE), (503, SE)],
    },
    Operation {
        method: "post",
        path: "/api/session/logout",
        summary: "Log out (the session id rotates)",
        params: &[],
        request: None,
        responses: &[(200, "LoggedIn"), (401, SE), (403, SE)],
    },
    Operation {
        method: "get",
        path: "/api/config",
        summary: "What the dashboard needs to explain the setup",
        params: &[],
        request: None,
        responses: &[(200, "Config")],
    },
];

fn nullable(kind: &str) -> Value {
    json!({ "type": [kind, "null"] })
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties })
}

fn array_of(reference: &str) -> Value {
    json!({ "type": "array", "items": { "$ref": format!("#/components/schemas/{reference}") } })
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The component schemas.
pub fn schemas() -> Map<String, Value> {
    let n = || json!({ "type": "number" });
    let i = || json!({ "type": "integer" });
    let s = || json!({ "type": "string" });
    let b = || json!({ "type": "boolean" });
    let summary_fields = json!({
        "id": s(), "server_seed_hashed": s(), "client_seed": s(), "created_at": s(), "last_seen_at": s(),
        "total_bets": i(), "highest_multiplier": nullable("number"), "last_observed_nonce": nullable("integer"),
        "notes": nullable("string"), "verified": { "oneOf": [{ "type": "null" }, reference("Verified")] },
        "seed_revealed": b(), "rounds_count": i(), "demo": b(),
    });
    let summary_required = [
        "id",
        "server_seed_hashed",
        "client_seed",
        "created_at",
        "last_seen_at",
        "total_bets",
        "highest_multiplier",
        "last_observed_nonce",
        "notes",
        "verified",
    ];
    let mut detail_fields = summary_fields.clone();
    for (k, v) in json!({
        "lowest_multiplier": nullable("number"), "average_multiplier": nullable("number"), "total_amount": n(),
        "total_payout": n(), "difficulty_breakdown": { "type": "object", "additionalProperties": i() },
        "difficulty": nullable("string"), "server_seed": nullable("string"), "recent_bets": array_of("BetRecord"),
    })
    .as_object()
    .into_iter()
    .flatten()
    {
        detail_fields[k] = v.clone();
    }
    let mut detail_required: Vec<&str> = summary_required.to_vec();
    detail_required.extend([
        "lowest_multiplier",
        "average_multiplier",
        "total_amount",
        "total_payout",
        "difficulty_breakdown",
        "recent_bets",
    ]);
    let session_fields = json!({
        "session_id": s(), "created_at": s(), "last_activity": s(), "elapsed_seconds": i(),
        "remaining_seconds": i(), "is_active": b(),
    });
    let session_required =
        ["session_id", "created_at", "last_activity", "elapsed_seconds", "remaining_seconds", "is_active"];
    let entries = [
        (
            "Error",
            object(
                &["error", "detail"],
                json!({
                    "error": object(&["code", "message"], json!({ "code": s(), "message": s(), "field": nullable("string"), "errors": { "type": "array" } })),
                    "detail": s(),
                }),
            ),
        ),
        (
            "SessionError",
            object(
                &["status", "code", "message"],
                json!({ "status": { "const": "error" }, "code": s(), "message": s() }),
            ),
        ),
        ("Health", object(&["status"], json!({ "status": { "const": "ok" } }))),
        (
            "Bet",
            object(
                &["id", "nonce", "amount", "payout", "difficulty", "clientSeed", "serverSeedHashed"],
                json!({
                    "type": { "const": "bet" }, "id": { "type": "string", "minLength": 1, "maxLength": 128 },
                    "nonce": { "type": "integer", "minimum": 1 }, "amount": { "type": "number", "minimum": 0 },
                    "payout": { "type": "number", "minimum": 0 },
                    "difficulty": { "enum": ["easy", "medium", "hard", "expert"] },
                    "clientSeed": { "type": "string", "minLength": 1, "maxLength": 256 },
                    "serverSeedHashed": { "type": "string", "minLength": 1, "maxLength": 256 },
                    "roundResult": { "type": "number", "minimum": 0, "description": "the round's multiplier; one of roundResult / payoutMultiplier is required" },
                    "payoutMultiplier": { "type": "number", "minimum": 0 },
                    "roundTarget": { "type": "number", "exclusiveMinimum": 0 },
                    "dateTime": { "type": "string", "description": "ISO-8601; Z, offsets and naive (UTC) accepted" },
                }),
            ),
        ),
        (
            "Heartbeat",
            object(
                &["type", "nonce", "roundResult", "clientSeed", "serverSeedHashed"],
                json!({
                    "type": { "const": "heartbeat" }, "nonce": { "type": "integer", "minimum": 1 },
                    "roundResult": { "type": "number", "minimum": 0 },
                    "clientSeed": { "type": "string", "minLength": 1, "maxLength": 256 },
                    "serverSeedHashed": { "type": "string", "minLength": 1, "maxLength": 256 },
                }),
            ),
        ),
        ("IngestItem", json!({ "oneOf": [reference("Bet"), reference("Heartbeat")] })),
        (
            "IngestBody",
            json!({ "oneOf": [
                reference("IngestItem"),
                { "type": "array", "maxItems": 1000, "items": reference("IngestItem") },
                object(&["bets"], json!({ "bets": { "type": "array", "maxItems": 1000, "items": reference("IngestItem") } })),
            ] }),
        ),
        ("Login", object(&["password"], json!({ "password": s() }))),
        (
            "LoggedIn",
            object(
                &["status", "message", "csrf_token", "session"],
                json!({ "status": s(), "message": s(), "csrf_token": s(), "session": { "type": "object" } }),
            ),
        ),
        (
            "IngestResult",
            json!({ "type": "object", "properties": {
            "streamId": s(), "accepted": { "type": ["boolean", "integer"] }, "heartbeat": b(), "results": { "type": "array" },
            "duplicates": i(), "rejected": i() } }),
        ),
        (
            "Verified",
            object(
                &["checked", "matched", "mismatched", "first_mismatch"],
                json!({
                    "checked": i(), "matched": i(), "mismatched": i(), "pending": i(),
                    "first_mismatch": { "oneOf": [{ "type": "null" }, object(&["bet_id", "nonce", "round_result"], json!({
                        "bet_id": i(), "antebot_bet_id": s(), "nonce": i(), "difficulty": s(), "round_result": n(), "expected_multiplier": nullable("number") }))] },
                }),
            ),
        ),
        ("StreamSummary", object(&summary_required, summary_fields)),
        ("StreamDetail", object(&detail_required, detail_fields)),
        (
            "StreamList",
            object(
                &["streams", "total", "limit", "offset"],
                json!({ "streams": array_of("StreamSummary"), "total": i(), "limit": i(), "offset": i() }),
            ),
        ),
        (
            "StreamDeleted",
            object(
                &["deleted", "stream_id", "bets_deleted"],
                json!({ "deleted": b(), "stream_id": s(), "bets_deleted": i() }),
            ),
        ),
        ("NotesUpdate", object(&["notes"], json!({ "notes": nullable("string") }))),
        (
            "BetRecord",
            object(
                &[
                    "id",
                    "antebot_bet_id",
                    "received_at",
                    "date_time",
                    "nonce",
                    "amount",
                    "payout",
                    "payout_multiplier",
                    "difficulty",
                    "round_target",
                    "round_result",
                    "distance_prev",
                ],
                json!({ "id": i(), "stream_id": s(), "antebot_bet_id": s(), "received_at": s(), "date_time": nullable("string"), "nonce": i(),
                "amount": n(), "payout": n(), "payout_multiplier": n(), "difficulty": s(), "round_target": nullable("number"),
                "round_result": n(), "distance_prev": nullable("integer"), "verified": nullable("boolean"), "expected_multiplier": nullable("number") }),
            ),
        ),
        (
            "BetPage",
            object(
                &["bets", "total", "limit", "offset", "stream_id"],
                json!({ "bets": array_of("BetRecord"), "total": i(), "limit": i(), "offset": i(), "stream_id": s() }),
            ),
        ),
        (
            "Tail",
            object(
                &["bets", "last_id", "has_more"],
                json!({ "bets": array_of("BetRecord"), "last_id": i(), "has_more": b(), "stream_id": s() }),
            ),
        ),
        ("Round", object(&["nonce", "round_result"], json!({ "nonce": i(), "round_result": n() }))),
        (
            "Rounds",
            object(
                &["stream_id", "rounds"],
                json!({ "stream_id": s(), "rounds": array_of("Round"), "last_nonce": nullable("integer"), "last_observed_nonce": nullable("integer") }),
            ),
        ),
        (
            "TierCadence",
            object(
                &[
                    "tier",
                    "hits",
                    "last_hit_nonce",
                    "current_streak",
                    "expected_gap",
                    "delta_to_expected",
                    "last_gaps",
                    "mean_gap",
                    "median_gap",
                    "within_band",
                    "hit_rate_last_1000",
                ],
                json!({ "tier": n(), "hits": i(), "last_hit_nonce": nullable("integer"), "current_streak": nullable("integer"), "expected_gap": nullable("number"),
                "delta_to_expected": nullable("number"), "last_gaps": { "type": "array", "items": object(&["gap", "deviation", "nonce"], json!({ "gap": i(), "deviation": nullable("number"), "nonce": i() })) },
                "mean_gap": nullable("number"), "median_gap": nullable("number"), "within_band": i(), "hit_rate_last_1000": nullable("number"),
                "rounds_in_window": i(), "expected_hit_rate": n() }),
            ),
        ),
        (
            "Cadence",
            object(
                &["stream_id", "difficulty", "tiers"],
                json!({ "stream_id": s(), "difficulty": s(), "last_observed_nonce": nullable("integer"), "rounds_observed": i(), "k": i(), "band": n(), "tiers": array_of("TierCadence") }),
            ),
        ),
        (
            "PinnedMultiplier",
            object(
                &[
                    "multiplier",
                    "count",
                    "last_nonce",
                    "mean_gap",
                    "median_gap",
                    "p90_gap",
                    "max_gap",
                    "theoretical_mean_gap",
                ],
                json!({ "multiplier": n(), "count": i(), "last_nonce": nullable("integer"), "mean_gap": nullable("number"), "median_gap": nullable("number"),
                "p90_gap": nullable("number"), "max_gap": nullable("integer"), "theoretical_mean_gap": nullable("number"), "probability": nullable("number"), "current_gap": nullable("integer") }),
            ),
        ),
        (
            "MultiplierMetrics",
            object(
                &["stream_id", "difficulty", "multipliers"],
                json!({ "stream_id": s(), "difficulty": s(), "last_observed_nonce": nullable("integer"), "rounds_observed": i(), "multipliers": array_of("PinnedMultiplier") }),
            ),
        ),
        ("SeedReveal", object(&["server_seed"], json!({ "server_seed": s() }))),
        ("DemoRate", object(&[], json!({ "rate": i() }))),
        (
            "SimulationRequest",
            object(
                &["script"],
                json!({ "script": s(), "server_seed": s(), "client_seed": s(), "start_nonce": i(), "max_bets": i(), "balance": n(), "runs": i() }),
            ),
        ),
        ("SimulationStarted", object(&["id", "status"], json!({ "id": s(), "status": s() }))),
        (
            "Simulation",
            object(
                &["id", "status", "created_at", "request", "progress"],
                json!({ "id": s(), "status": s(), "created_at": s(), "finished_at": nullable("string"), "request": { "type": "object" },
                        "progress": object(&["bets", "of"], json!({ "bets": i(), "of": i() })), "result": { "type": "object" } }),
            ),
        ),
        (
            "SimulationList",
            object(
                &["simulations", "total", "limit", "offset"],
                json!({ "simulations": { "type": "array" }, "total": i(), "limit": i(), "offset": i() }),
            ),
        ),
        ("SimulationDeleted", object(&["id"], json!({ "id": s(), "status": s(), "deleted": b() }))),
        (
            "Demo",
            object(
                &["stream_id", "server_seed_hashed", "client_seed", "difficulty", "rate", "running", "last_nonce"],
                json!({ "stream_id": s(), "server_seed_hashed": s(), "client_seed": s(), "difficulty": s(), "rate": i(), "running": b(), "last_nonce": i() }),
            ),
        ),
        ("DemoList", object(&["demos"], json!({ "demos": array_of("Demo") }))),
        (
            "SeedRevealed",
            object(
                &["server_seed", "server_seed_hashed", "revealed_at", "streams"],
                json!({ "server_seed": s(), "server_seed_hashed": s(), "revealed_at": s(), "created": b(), "streams": { "type": "array" } }),
            ),
        ),
        (
            "SeedList",
            object(
                &["seeds"],
                json!({ "seeds": { "type": "array", "items": object(&["server_seed", "server_seed_hashed", "revealed_at", "streams"], json!({
            "server_seed": s(), "server_seed_hashed": s(), "revealed_at": s(), "streams": { "type": "array", "items": s() }, "first_seen": nullable("string"), "last_seen": nullable("string") })) }, "total": i() }),
            ),
        ),
        (
            "Verification",
            object(
                &["max_pumps", "max_multiplier", "pop_point", "permutation"],
                json!({ "max_pumps": i(), "max_multiplier": n(), "pop_point": i(), "permutation": { "type": "array", "items": i() }, "difficulty": s(), "nonce": i() }),
            ),
        ),
        (
            "RunRequest",
            object(
                &["server_seed", "client_seed", "start", "end", "difficulty", "targets"],
                json!({ "id": s(), "server_seed": s(), "client_seed": s(), "start": i(), "end": i(), "difficulty": s(), "targets": { "type": "array", "items": n() } }),
            ),
        ),
        (
            "RunHit",
            object(
                &["nonce", "max_pumps", "max_multiplier", "pop_point"],
                json!({ "nonce": i(), "max_pumps": i(), "max_multiplier": n(), "pop_point": i() }),
            ),
        ),
        (
            "Run",
            object(
                &[
                    "id",
                    "created_at",
                    "server_seed_sha256",
                    "server_seed",
                    "client_seed",
                    "nonce_start",
                    "nonce_end",
                    "difficulty",
                    "targets",
                    "duration_ms",
                    "engine_version",
                    "summary",
                ],
                json!({ "id": s(), "created_at": s(), "server_seed_sha256": s(), "server_seed": s(), "client_seed": s(), "nonce_start": i(), "nonce_end": i(), "difficulty": s(),
                "targets": { "type": "array", "items": n() }, "duration_ms": i(), "engine_version": s(),
                "summary": object(&["count", "max_multiplier", "median_multiplier", "counts_by_target", "top_max"], json!({ "count": i(), "max_multiplier": nullable("number"),
                    "median_multiplier": nullable("number"), "counts_by_target": { "type": "object", "additionalProperties": i() }, "top_max": array_of("RunHit") })) }),
            ),
        ),
        (
            "RunList",
            object(
                &["runs", "total", "limit", "offset"],
                json!({ "runs": array_of("Run"), "total": i(), "limit": i(), "offset": i() }),
            ),
        ),
        (
            "RunProgress",
            object(
                &["id", "status", "done", "total", "progress"],
                json!({ "id": s(), "status": s(), "done": i(), "total": i(), "progress": n(), "elapsed_ms": i() }),
            ),
        ),
        ("ActiveRuns", object(&["runs"], json!({ "runs": array_of("RunProgress") }))),
        ("RunCancelled", object(&["id", "cancelled"], json!({ "id": s(), "cancelled": b() }))),
        ("RunDeleted", object(&["deleted", "run_id"], json!({ "deleted": b(), "run_id": s(), "cancelled": b() }))),
        (
            "HitPage",
            object(
                &["hits", "total", "limit", "offset", "run_id"],
                json!({ "hits": array_of("RunHit"), "total": i(), "limit": i(), "offset": i(), "run_id": s() }),
            ),
        ),
        ("Session", object(&session_required, session_fields)),
        (
            "SessionInfo",
            object(
                &["status", "session"],
                json!({ "status": { "const": "success" }, "session": reference("Session") }),
            ),
        ),
        (
            "SessionExtended",
            object(
                &["status", "message", "session"],
                json!({ "status": { "const": "success" }, "message": s(), "session": reference("Session") }),
            ),
        ),
        ("SessionMessage", object(&["status", "message"], json!({ "status": { "const": "success" }, "message": s() }))),
        (
            "CsrfToken",
            object(&["status", "csrf_token"], json!({ "status": { "const": "success" }, "csrf_token": s() })),
        ),
        ("CsrfCheck", object(&["csrf_token"], json!({ "csrf_token": s() }))),
        ("CsrfValid", object(&["status", "valid"], json!({ "status": { "const": "success" }, "valid": b() }))),
        (
            "Config",
            object(
                &["status", "ingest_path", "token_required"],
                json!({ "status": s(), "ingest_path": s(), "token_required": b(), "rate_limit_per_minute": i(), "password_required": b() }),
            ),
        ),
    ];
    entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Who may call an operation: the ingest token for ingest; a session with its CSRF token for
/// writes (cookie-less scripts are served too while no dashboard password is set); reads are open
/// unless a dashboard password is set, then they need a logged-in session.
fn security(op: &Operation) -> Value {
    if op.path == "/live/ingest" {
        return json!([{ "ingestToken": [] }, {}]);
    }
    if op.method == "get" {
        return json!([{}, { "sessionCookie": [] }]);
    }
    json!([{ "sessionCookie": [], "csrfToken": [] }, {}])
}

/// The rate-limit headers every ingest answer carries (SPEC §2.4).
fn rate_limit_headers(refused: bool) -> Value {
    let integer = |description: &str| json!({ "schema": { "type": "integer" }, "description": description });
    let mut headers = json!({
        "X-RateLimit-Limit": integer("requests allowed per rolling minute"),
        "X-RateLimit-Remaining": integer("requests left in the window"),
        "X-RateLimit-Reset": integer("Unix time when the next request is allowed"),
        "RateLimit-Policy": { "schema": { "type": "string" }, "description": "IETF draft policy" },
        "RateLimit": { "schema": { "type": "string" }, "description": "IETF draft state" },
    });
    if refused {
        headers["Retry-After"] = integer("whole seconds until the next request is allowed (≥ 1)");
    }
    headers
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPERATIONS {
        let parameters: Vec<Value> = op
            .params
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "in": match p.location { In::Path => "path", In::Query => "query" },
                    "required": p.required,
                    "schema": { "type": p.kind },
                })
            })
            .collect();
        let mut responses = Map::new();
        for (status, schema) in op.responses {
            let content = match *schema {
                "" if op.path.ends_with(".csv") => json!({ "text/csv": { "schema": { "type": "string" } } }),
                "" => json!({ "text/event-stream": { "schema": { "type": "string" } } }),
                name => json!({ "application/json": { "schema": reference(name) } }),
            };
            responses
                .insert(status.to_string(), json!({ "description": format!("HTTP {status}"), "content": content }));
        }
        let mut operation = json!({ "summary": op.summary, "parameters": parameters, "responses": responses });
        operation["security"] = security(op);
        if op.path == "/live/ingest" {
            for (status, response) in operation["responses"].as_object_mut().into_iter().flatten() {
                if status == "200" || status == "429" || status == "422" {
                    response["headers"] = rate_limit_headers(status == "429");
                }
            }
        }
        if let Some(request) = op.request {
            operation["requestBody"] =
                json!({ "required": true, "content": { "application/json": { "schema": reference(request) } } });
        }
        let entry = paths.entry(op.path.to_string()).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Pump Analyzer",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Live Stake Pump bet ingest, streams, provably-fair engine, runs and browser sessions. \
                Writes from a browser need its session and X-CSRF-Token; cookie-less scripts are served directly unless \
                DASHBOARD_PASSWORD is set, then they log in. /live/ingest uses X-Ingest-Token, which authorises nothing else.",
        },
        "paths": paths,
        "components": { "schemas": schemas(), "securitySchemes": {
            "ingestToken": { "type": "apiKey", "in": "header", "name": "X-Ingest-Token",
                             "description": "INGEST_TOKEN; authorises POST /live/ingest and nothing else" },
            "sessionCookie": { "type": "apiKey", "in": "cookie", "name": "pump_session",
                               "description": "the browser session (HttpOnly), made by any page or /api/session/*" },
            "csrfToken": { "type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                           "description": "the session's CSRF token, on every write made with the session cookie" },
        } },
    })
}
