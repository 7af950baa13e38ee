//! A shard-local wake-up flag: one task waits, any task of the same shard
//! notifies. `!Send` by construction (it is only ever used on one core).

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// One waiter, many notifiers, all on one shard.
#[derive(Default)]
pub struct LocalNotify {
    notified: Cell<bool>,
    waker: RefCell<Option<Waker>>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl LocalNotify {
    /// Marks the flag and wakes the waiter, if any.
    pub fn notify(&self) {
        self.notified.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Waits until notified, then clears the flag.
    pub async fn notified(&self) {
        poll_fn(|cx| {
            if self.notified.replace(false) {
                Poll::Ready(())
            } else {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

impl LocalNotify {
    /// Sleeps for `duration` unless notified first; returns whether it was
    /// notified (a session's back-off that a stop must cut short).
    pub async fn sleep_unless_notified(&self, duration: std::time::Duration) -> bool {
        futures_lite::future::or(
            async {
                crate::rt::sleep(duration).await;
                false
            },
            async {
                self.notified().await;
                true
            },
        )
        .await
    }
}
