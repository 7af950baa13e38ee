//! `mcmp`: the command line. Thin by design: it parses flags, resolves the
//! configuration (defaults < file < environment < flags) and calls
//! [`mcmp_api::serve`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mcmp_api::config::{Config, LogFormat};

/// mimalloc, unless built with `--features system-alloc` (to measure the
/// heap with heaptrack, which sees only the C allocator).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// MCMP — multi-channel business-messaging gateway.
#[derive(Parser)]
#[command(name = "mcmp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Configuration file (TOML); also `MCMP_CONFIG`.
        #[arg(long, env = "MCMP_CONFIG")]
        config: Option<PathBuf>,
        /// Listen address, e.g. 127.0.0.1:8080 (port 0 picks one).
        #[arg(long)]
        listen: Option<String>,
        /// Data directory (WAL, catalog, admin token).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Number of shards (0 = one per CPU).
        #[arg(long)]
        shards: Option<usize>,
        /// Register the demo customer, client, senders and routes.
        #[arg(long)]
        demo: bool,
        /// Truncate a WAL at mid-log corruption instead of refusing to start.
        #[arg(long)]
        repair_wal: bool,
        /// Log as JSON lines instead of human-readable text.
        #[arg(long)]
        log_json: bool,
    },
    /// Write-ahead log tools.
    Wal {
        #[command(subcommand)]
        command: WalCommand,
    },
    /// Write the final messages of a period (final time in [since, until))
    /// to stdout, one line per message, from the running server.
    Export {
        /// From (RFC 3339, inclusive).
        #[arg(long)]
        since: String,
        /// To (RFC 3339, exclusive).
        #[arg(long)]
        until: String,
        /// Only this customer (group code).
        #[arg(long)]
        customer: Option<String>,
        /// `jsonl` or `csv`.
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// The server's configuration (its listen address, admin token and
        /// data directory); also `MCMP_CONFIG`.
        #[arg(long, env = "MCMP_CONFIG")]
        config: Option<PathBuf>,
        /// The server's address (default: its `server.listen`).
        #[arg(long)]
        server: Option<String>,
        /// The server's data directory, for its `admin.token` (default:
        /// its `server.data-dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Console operators (SPEC §5.7), written to the data directory's
    /// catalog while the server is stopped (a running server: use `PUT
    /// /admin/v1/operators/{name}`).
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Validate a configuration file and print the resolved configuration.
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Create an operator or change its role and password. The password
    /// comes from `MCMP_OPERATOR_PASSWORD`, else the first line of stdin.
    Add {
        /// The login name.
        name: String,
        /// viewer, operator or admin.
        #[arg(long)]
        role: String,
        /// The data directory (default: the configuration's, else ./mcmp-data).
        #[arg(long, env = "MCMP_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Configuration file, for its data directory; also `MCMP_CONFIG`.
        #[arg(long, env = "MCMP_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum WalCommand {
    /// Print the records of a WAL directory (e.g. mcmp-data/wal/0).
    Inspect {
        /// The directory.
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    mcmp_engine::rt::no_huge_pages();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
            shards,
            demo,
            repair_wal,
            log_json,
        } => serve(
            config.as_deref(),
            listen,
            data_dir,
            shards,
            demo,
            repair_wal,
            log_json,
        ),
        Command::Wal {
            command: WalCommand::Inspect { dir },
        } => inspect(&dir),
        Command::CheckConfig { file } => check_config(&file),
        Command::Operator {
            command:
                OperatorCommand::Add {
                    name,
                    role,
                    data_dir,
                    config,
                },
        } => operator_add(config.as_deref(), data_dir, &name, &role),
        Command::Export {
            since,
            until,
            customer,
            format,
            config,
            server,
            data_dir,
        } => export(
            config.as_deref(),
            server,
            data_dir,
            (since, until, customer),
            &format,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(file: Option<&Path>) -> anyhow::Result<Config> {
    let mut config = match file {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    config.apply_env(|k| std::env::var(k).ok())?;
    Ok(config)
}

fn serve(
    file: Option<&Path>,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    shards: Option<usize>,
    demo: bool,
    repair_wal: bool,
    log_json: bool,
) -> anyhow::Result<()> {
    let mut config = load_config(file)?;
    if let Some(l) = listen {
        config.server.listen = l;
    }
    if let Some(d) = data_dir {
        config.server.data_dir = d;
    }
    if let Some(s) = shards {
        config.server.shards = s;
    }
    if log_json {
        config.log.format = LogFormat::Json;
    }
    config.validate()?;
    init_logging(&config);
    mcmp_api::serve(config, mcmp_api::ServeOptions { repair_wal, demo }).context("mcmp serve")
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MCMP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

fn inspect(dir: &Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let report = mcmp_storage::inspect(dir, |info, payload| {
        let what = match mcmp_engine::codec::Record::decode(info.kind, payload) {
            Ok(r) => format!("{r:?}"),
            Err(e) => format!("<{e}>"),
        };
        let _ = writeln!(
            out,
            "{} @{} lsn={} kind={} len={} {}",
            info.segment, info.offset, info.lsn, info.kind, info.len, what
        );
    })
    .with_context(|| format!("inspecting {}", dir.display()))?;
    writeln!(
        out,
        "{} records in {} segments",
        report.records, report.segments
    )?;
    Ok(())
}

fn export(
    file: Option<&Path>,
    server: Option<String>,
    data_dir: Option<PathBuf>,
    (since, until, customer): (String, String, Option<String>),
    format: &str,
) -> anyhow::Result<()> {
    let config = load_config(file)?;
    let format = mcmp_api::export::Format::parse(format)
        .ok_or_else(|| anyhow::anyhow!("--format must be jsonl or csv"))?;
    let data_dir = data_dir.unwrap_or_else(|| config.server.data_dir.clone());
    let token = match config.admin.token.clone().filter(|t| !t.is_empty()) {
        Some(t) => t,
        None => {
            let path = data_dir.join("admin.token");
            let t = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "reading the admin token {} (or set MCMP_ADMIN_TOKEN)",
                    path.display()
                )
            })?;
            t.trim().to_string()
        }
    };
    let addr = server.unwrap_or_else(|| config.server.listen.replace("0.0.0.0", "127.0.0.1"));
    let export = mcmp_api::export::Export {
        addr,
        token,
        since,
        until,
        customer,
        format,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let n = mcmp_api::export::run(&export, &mut out)?;
    std::io::Write::flush(&mut out)?;
    eprintln!("{n} messages exported");
    Ok(())
}

fn operator_add(
    file: Option<&Path>,
    data_dir: Option<PathBuf>,
    name: &str,
    role: &str,
) -> anyhow::Result<()> {
    let config = load_config(file)?;
    let data_dir = data_dir.unwrap_or_else(|| config.server.data_dir.clone());
    let password = match std::env::var("MCMP_OPERATOR_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    let role = mcmp_api::add_operator(&data_dir, name, role, &password)?;
    eprintln!("operator {name} ({role}) written to {}", data_dir.display());
    Ok(())
}

fn check_config(file: &Path) -> anyhow::Result<()> {
    let config = load_config(Some(file))?;
    config.validate()?;
    print!("{}", config.to_toml());
    Ok(())
}
