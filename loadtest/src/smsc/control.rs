//! The SMSC simulator's control API (HTTP/JSON on `--control`):
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /stats` | counters, plus `by_system_id` |
//! | `GET /messages` | every kept, reassembled message (with `tlvs`: its other optional parameters by tag, e.g. `{"0x1410":"BIZ-1"}`) |
//! | `POST /drop` `{"abrupt":bool}` | closes every connection: hangs up after answering every PDU read, or with `abrupt` cuts at once → `{"dropped":n}` |
//! | `POST /hold-answers` `{"hold":bool}` | while true, answers to accepted submits are held back until released, until their connection hangs up (`/drop`) or until the ESME unbinds; an abrupt drop loses them |
//! | `POST /refuse-binds` `{"refuse":bool}` | while true, binds get ESME_RBINDFAIL |
//! | `POST /throttle` `{"throttle":bool}` | while true, every submit_sm gets ESME_RTHROTTLED (counted in `throttled`) |
//! | `POST /reset` | clears counters, messages and the duplicate detector |

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::Smsc;
use crate::http::{self, Request, Response};
use crate::shutdown::Shutdown;

/// Serves the control API until `shutdown`.
pub async fn serve(smsc: Arc<Smsc>, listener: TcpListener, shutdown: Shutdown) {
    http::serve(listener, shutdown, move |req| {
        let smsc = smsc.clone();
        async move { handle(&smsc, &req) }
    })
    .await;
}

fn handle(smsc: &Smsc, req: &Request) -> Response {
    match (&req.method, req.path.as_str()) {
        (&Method::GET, "/stats") => http::json(StatusCode::OK, &stats(smsc)),
        (&Method::GET, "/messages") => {
            let state = smsc.state();
            let list: Vec<&super::state::Message> = state.messages().collect();
            http::json(StatusCode::OK, &json!(list))
        }
        (&Method::POST, "/drop") => {
            let abrupt = flag(&req.body, "abrupt").unwrap_or(false);
            let n = smsc.drop_all(abrupt);
            http::json(StatusCode::OK, &json!({ "dropped": n }))
        }
        (&Method::POST, "/refuse-binds") => match flag(&req.body, "refuse") {
            Some(refuse) => {
                smsc.set_refuse_binds(refuse);
                http::json(StatusCode::OK, &json!({ "refuse": refuse }))
            }
            None => http::error(StatusCode::BAD_REQUEST, "expected {\"refuse\": true|false}"),
        },
        (&Method::POST, "/hold-answers") => match flag(&req.body, "hold") {
            Some(hold) => {
                smsc.set_hold_answers(hold);
                http::json(StatusCode::OK, &json!({ "hold": hold }))
            }
            None => http::error(StatusCode::BAD_REQUEST, "expected {\"hold\": true|false}"),
        },
        (&Method::POST, "/throttle") => match flag(&req.body, "throttle") {
            Some(throttle) => {
                smsc.set_throttle_all(throttle);
                http::json(StatusCode::OK, &json!({ "throttle": throttle }))
            }
            None => http::error(
                StatusCode::BAD_REQUEST,
                "expected {\"throttle\": true|false}",
            ),
        },
        (&Method::POST, "/reset") => {
            smsc.state().reset();
            http::json(StatusCode::OK, &json!({ "reset": true }))
        }
        _ => http::error(StatusCode::NOT_FOUND, "no such control endpoint"),
    }
}

fn stats(smsc: &Smsc) -> Value {
    let state = smsc.state();
    let mut v = json!(state.counters);
    v["by_system_id"] = json!(state.by_system_id);
    v
}

/// The boolean `key` of a JSON object body.
fn flag(body: &[u8], key: &str) -> Option<bool> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get(key).and_then(Value::as_bool))
}
