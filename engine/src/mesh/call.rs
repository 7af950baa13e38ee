//! Requests that wait for an answer from another shard (CORE.md rule 4).
//!
//! A request carries a [`Reply`]; [`ask`] builds it, posts it to one shard
//! and waits for the answer; [`ask_all`] posts one to every shard before it
//! waits for any, so a fan-out costs one round trip, not one per shard, and
//! gives the answers in shard order. Both are generic over [`Post`], the
//! one thing they need from the shard driver, so they are tested here with
//! a stand-in.

use futures_channel::oneshot;

use super::MeshClosed;

/// The answer channel a request carries.
pub type Reply<R> = oneshot::Sender<R>;

/// Delivers messages to shards: the shard driver (which handles a message
/// for itself inline), or a test stand-in.
#[allow(async_fn_in_trait)] // used on one core; no Send bound is wanted
pub trait Post<M> {
    /// Number of shards.
    fn shards(&self) -> usize;

    /// Delivers `msg` to shard `to`, waiting for room in its inbox.
    async fn post(&self, to: usize, msg: M) -> Result<(), MeshClosed>;
}

/// Posts the request `make` builds around its reply to shard `to` and
/// waits for the answer. `MeshClosed` when the shard is gone or dropped the
/// request unanswered.
pub async fn ask<M, R>(
    via: &impl Post<M>,
    to: usize,
    make: impl FnOnce(Reply<R>) -> M,
) -> Result<R, MeshClosed> {
    let (reply, answer) = oneshot::channel();
    via.post(to, make(reply)).await?;
    answer.await.map_err(|_| MeshClosed)
}

/// Posts the request `make` builds to every shard, then waits for every
/// answer; one result per shard, in shard order.
pub async fn ask_all<M, R>(
    via: &impl Post<M>,
    mut make: impl FnMut(Reply<R>) -> M,
) -> Vec<Result<R, MeshClosed>> {
    let n = via.shards();
    let mut pending = Vec::with_capacity(n);
    for to in 0..n {
        let (reply, answer) = oneshot::channel();
        pending.push(via.post(to, make(reply)).await.map(|()| answer));
    }
    let mut answers = Vec::with_capacity(n);
    for p in pending {
        answers.push(match p {
            Ok(answer) => answer.await.map_err(|_| MeshClosed),
            Err(closed) => Err(closed),
        });
    }
    answers
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use futures_lite::future::block_on;

    use super::*;

    /// Three shards; shard 1 is closed. Requests are kept, not answered, so
    /// the test sees that every post happens before any answer is awaited.
    #[derive(Default)]
    struct Stand {
        posted: RefCell<Vec<(usize, Reply<usize>)>>,
    }

    impl Post<Reply<usize>> for Stand {
        fn shards(&self) -> usize {
            3
        }

        async fn post(&self, to: usize, msg: Reply<usize>) -> Result<(), MeshClosed> {
            if to == 1 {
                return Err(MeshClosed);
            }
            self.posted.borrow_mut().push((to, msg));
            Ok(())
        }
    }

    #[test]
    fn ask_all_posts_to_every_shard_first_and_answers_in_shard_order() {
        let stand = Stand::default();
        let answers = block_on(async {
            let all = ask_all(&stand, |reply| reply);
            futures_lite::pin!(all);
            // The first poll posts everything, then waits for answers.
            assert!(futures_lite::future::poll_once(&mut all).await.is_none());
            let posted: Vec<(usize, Reply<usize>)> = stand.posted.borrow_mut().drain(..).collect();
            assert_eq!(posted.iter().map(|p| p.0).collect::<Vec<_>>(), vec![0, 2]);
            // Answered in reverse order; the results still come in shard order.
            for (to, reply) in posted.into_iter().rev() {
                let _ = reply.send(to * 10);
            }
            all.await
        });
        assert_eq!(answers, vec![Ok(0), Err(MeshClosed), Ok(20)]);
    }

    #[test]
    fn ask_reports_a_closed_shard_and_an_unanswered_request() {
        let stand = Stand::default();
        assert_eq!(block_on(ask(&stand, 1, |reply| reply)), Err(MeshClosed));
        let dropped = block_on(async {
            let one = ask(&stand, 2, |reply| reply);
            futures_lite::pin!(one);
            assert!(futures_lite::future::poll_once(&mut one).await.is_none());
            stand.posted.borrow_mut().clear(); // the request is dropped
            one.await
        });
        assert_eq!(dropped, Err(MeshClosed));
    }
}
