//! Test helper shared by the transports' session tests: drive one session
//! on the current shard and collect the events it reports.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{Outbound, SessionEvent, SessionEvents, SessionQueue};
use crate::notify::LocalNotify;
use crate::rt;

/// How long a session test waits for its condition.
const TEST_DEADLINE: Duration = Duration::from_secs(15);

/// Starts a session with `start(queue, events, stop)` (a queue of
/// `capacity`), pushes `messages`, checks `until(events)` every 5 ms until
/// it holds or 15 s passed, stops the session and returns the events with
/// whether `until` held.
pub(crate) async fn drive<Fut>(
    start: impl FnOnce(Rc<SessionQueue>, SessionEvents, Rc<LocalNotify>) -> Fut,
    capacity: usize,
    messages: Vec<Outbound>,
    mut until: impl FnMut(&[SessionEvent]) -> bool,
) -> (Vec<SessionEvent>, bool)
where
    Fut: Future<Output = ()> + 'static,
{
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    let events: SessionEvents = Rc::new(move |e| sink.borrow_mut().push(e));
    let queue = Rc::new(SessionQueue::new(capacity));
    let stop = Rc::new(LocalNotify::default());
    let task = rt::spawn_task(start(queue.clone(), events, stop.clone()));
    for m in messages {
        queue.push(m).expect("room");
    }
    let deadline = Instant::now() + TEST_DEADLINE;
    let mut held = false;
    while Instant::now() < deadline {
        if until(&seen.borrow()) {
            held = true;
            break;
        }
        rt::sleep(Duration::from_millis(5)).await;
    }
    stop.notify();
    task.await;
    let events = seen.borrow().clone();
    (events, held)
}
