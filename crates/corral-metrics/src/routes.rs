//! What the metrics address answers, read-only: `/metrics` (Prometheus
//! text, or OpenMetrics on `Accept`), `/` the live dashboard with its
//! script and style, `/api/snapshot` the JSON the dashboard polls.

use crate::exposition::{self, Format};
use crate::http::{host_is_literal, Request, Response};
use crate::snapshot::Snapshot;

const INDEX: &str = include_str!("../dashboard/index.html");
const SCRIPT: &str = include_str!("../dashboard/dashboard.js");
const STYLE: &str = include_str!("../dashboard/dashboard.css");

/// Answer one request. `loopback`: the server listens on loopback, where
/// a `Host` that is not an address is a rebinding page (refused).
/// `snapshot(true)` includes each pool's recent history.
pub fn respond(
    req: &Request,
    loopback: bool,
    snapshot: &mut dyn FnMut(bool) -> Snapshot,
) -> Response {
    if loopback && !req.host.as_deref().is_none_or(host_is_literal) {
        return Response::text(421, "use the address (127.0.0.1:PORT), not a name");
    }
    match req.path.as_str() {
        "/metrics" => {
            let format = Format::from_accept(req.accept.as_deref());
            Response::new(
                200,
                format.content_type(),
                exposition::encode(&snapshot(false), format),
            )
        }
        "/api/snapshot" => {
            let history = req.query.split('&').any(|kv| kv == "history=1");
            Response::new(200, "application/json", snapshot(history).to_json())
        }
        "/" | "/index.html" => Response::new(200, "text/html; charset=utf-8", INDEX),
        "/dashboard.js" => Response::new(200, "text/javascript; charset=utf-8", SCRIPT),
        "/dashboard.css" => Response::new(200, "text/css; charset=utf-8", STYLE),
        _ => Response::text(404, "not found: /metrics, / (dashboard), /api/snapshot"),
    }
}
