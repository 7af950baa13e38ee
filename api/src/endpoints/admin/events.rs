//! `GET /admin/v1/events` (SPEC §5.7): the console's live figures as
//! server-sent events, one `stats` event a second, merged across shards.
//!
//! Bounded so a console never weighs on the engine: each shard computes
//! the figures once a second for all its streams together (from the
//! metrics' counters and gauges, never a walk over the messages), only
//! while at least one stream is open; a stream that does not keep up skips
//! events (a queue of [`STREAM_QUEUE`]); at most [`MAX_STREAMS`] streams are
//! open in the process (beyond, 503).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_channel::mpsc;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use mcmp_engine::{rt, ShardHandle};

use crate::context::{ApiState, ShardApi};
use crate::http::{self, Body};

/// Most event streams open in the process.
pub(crate) const MAX_STREAMS: usize = 256;

/// Events one stream may have waiting.
const STREAM_QUEUE: usize = 4;

/// How often the figures go out.
const EVERY: Duration = Duration::from_secs(1);

/// One shard's open streams.
#[derive(Default)]
pub(crate) struct EventHub {
    streams: RefCell<Vec<mpsc::Sender<Bytes>>>,
    running: Cell<bool>,
}

/// `GET /events`.
pub(crate) fn events(api: &ShardApi) -> Response<Body> {
    let open = &api.state.event_streams;
    if open.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
        open.fetch_sub(1, Ordering::SeqCst);
        return http::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            &format!("at most {MAX_STREAMS} event streams are open at once"),
        );
    }
    let (mut tx, rx) = mpsc::channel(STREAM_QUEUE);
    let _ = tx.try_send(Bytes::from_static(
        b": mcmp live figures, one stats event a second\n\n",
    ));
    api.events.streams.borrow_mut().push(tx);
    if !api.events.running.replace(true) {
        rt::spawn(tick(
            api.events.clone(),
            api.shard.clone(),
            api.state.clone(),
        ));
    }
    let mut resp = Response::new(Body::events(rx));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// Sends the figures to every open stream of this shard once a second,
/// until none is left (or the server drains).
async fn tick(hub: Rc<EventHub>, shard: ShardHandle, state: Arc<ApiState>) {
    loop {
        if state.engine.is_draining() {
            let gone = hub.streams.borrow_mut().drain(..).count();
            state.event_streams.fetch_sub(gone, Ordering::SeqCst);
        }
        if hub.streams.borrow().is_empty() {
            hub.running.set(false);
            return;
        }
        let figures = shard.live_figures().await;
        let event = Bytes::from(format!("event: stats\ndata: {figures}\n\n"));
        let mut gone = 0;
        hub.streams
            .borrow_mut()
            .retain_mut(|tx| match tx.try_send(event.clone()) {
                Err(e) if e.is_disconnected() => {
                    gone += 1;
                    false
                }
                // Delivered, or the stream is behind: this event is skipped.
                _ => true,
            });
        state.event_streams.fetch_sub(gone, Ordering::SeqCst);
        rt::sleep(EVERY).await;
    }
}
