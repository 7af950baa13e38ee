//! `baseline`: a bare hyper server answering `202 Accepted` with an empty
//! body to every request. Run on the same machine as the product, it gives
//! the machine's own HTTP ceiling, so a run can state its figures as ratios
//! (`run --baseline-secs`, DESIGN §9) instead of absolute numbers that mean
//! little across machines.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::StatusCode;

use crate::http;
use crate::shutdown::Shutdown;

/// Flags of `mcmp-loadtest baseline`.
#[derive(Debug, Clone, clap::Args)]
pub struct BaselineArgs {
    /// HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
}

/// Binds `addr` and serves 202s in a task until `shutdown`; returns the
/// address bound.
pub async fn start(addr: SocketAddr, shutdown: Shutdown) -> anyhow::Result<SocketAddr> {
    let (listener, local) = http::bind(addr).await?;
    tokio::spawn(http::serve(listener, shutdown, |_req| async {
        let mut resp = hyper::Response::new(Full::new(Bytes::new()));
        *resp.status_mut() = StatusCode::ACCEPTED;
        resp
    }));
    Ok(local)
}

/// Runs the server until `shutdown`.
pub async fn run(args: BaselineArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let addr = start(args.listen, shutdown.clone()).await?;
    crate::ready("baseline", addr);
    shutdown.wait().await;
    Ok(())
}
