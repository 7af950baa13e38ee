//! Graceful shutdown for the simulators.
//!
//! Protocol: [`Shutdown::new`] returns the handle every task keeps a clone
//! of and the trigger; [`Shutdown::wait`] resolves once the trigger fired
//! (or was dropped). `main` fires it on SIGINT, SIGTERM or when
//! `--duration` elapses; tasks then stop accepting and return.

use std::time::Duration;

use tokio::sync::watch;

/// A cloneable handle that resolves when the simulator must stop.
#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// The side that fires the shutdown.
#[derive(Debug)]
pub struct Trigger {
    tx: watch::Sender<bool>,
}

impl Shutdown {
    /// A new handle and its trigger.
    pub fn new() -> (Shutdown, Trigger) {
        let (tx, rx) = watch::channel(false);
        (Shutdown { rx }, Trigger { tx })
    }

    /// Resolves once shutdown has been triggered.
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        // An error means the trigger is gone, which also means stop.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

impl Trigger {
    /// Fires the shutdown.
    pub fn fire(&self) {
        let _ = self.tx.send(true);
    }
}

/// Waits for SIGINT, SIGTERM or `duration` (when given), whichever is first.
pub async fn signal_or_deadline(duration: Option<Duration>) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let deadline = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
        () = deadline => {}
    }
    Ok(())
}
