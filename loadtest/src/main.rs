//! `mcmp-loadtest`: the load generator and the simulators of the outside
//! world (SMSC, HTTP provider, webhook sink). It speaks only the wire
//! protocols and depends on no MCMP crate, so it can drive any deployment.
//!
//! The subcommands (`run`, `smsc`, `provider`, `sink`, `e2e`, `baseline`)
//! land with the routing, reports and bench-harness issues; until then the
//! binary only describes itself.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        None | Some("--help" | "-h") => {
            println!(
                "mcmp-loadtest {}: load generator and simulators for MCMP",
                env!("CARGO_PKG_VERSION")
            );
            println!("no subcommands yet: run, smsc, provider, sink, e2e and baseline are planned (see ARCHITECTURE.md)");
            Ok(())
        }
        Some("--version" | "-V") => {
            println!("mcmp-loadtest {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown subcommand {other:?}; see --help"),
    }
}
