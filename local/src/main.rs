//! `chat-gateway`: the whole gateway locally. See `chat-gateway --help`.

use clap::{Parser, Subcommand};
use local::{LocalError, Settings};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "chat-gateway",
    version,
    about = "The LINE and Meta webhook gateway in one process: ingress, queue, worker and bot, on SQLite.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `chat-gateway` alone serves, with these options.
    #[command(flatten)]
    serve: ServeArgs,
    #[command(flatten)]
    data: DataArgs,
}

/// Where the gateway keeps its state; every command reads it.
#[derive(clap::Args, Clone)]
struct DataArgs {
    /// The SQLite database holding the queue, the idempotency records and the archive.
    #[arg(
        long,
        global = true,
        env = "GATEWAY_DATA",
        default_value = ".gateway/gateway.db"
    )]
    data: PathBuf,
    /// Receives before a message goes to the dead-letter state: a backstop, as on AWS; the worker
    /// dead-letters an event itself after MAX_ATTEMPTS (5) failed runs, with the reason.
    #[arg(long, global = true, env = "LOCAL_MAX_RECEIVES", default_value_t = 20)]
    max_receives: u32,
}

#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Accept and queue only; do not run the worker.
    #[arg(long)]
    no_worker: bool,
    /// Print no line per handled event.
    #[arg(long)]
    quiet: bool,
    /// Do not archive messages and media (on by default here; off by default in the template).
    #[arg(long)]
    no_archive: bool,
    /// Answer the bot's calls with built-in fake LINE and Meta APIs and print what it sends (the
    /// playground). On by default when no access token is set; `--fake-apis=false` to call the
    /// real APIs.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    fake_apis: Option<bool>,
    /// Where handled events go: `bot` (the Rust bot of functions/worker), `https` (a Standard
    /// Webhooks receiver; its secrets in DESTINATION_SIGNING_SECRETS), `eventbridge` or `lambda`
    /// (AWS, or moto through AWS_ENDPOINT_URL).
    #[arg(long, env = "DESTINATION", default_value = "bot")]
    destination: String,
    /// The HTTPS destination's URL: https, or http to this machine.
    #[arg(long, env = "DESTINATION_URL")]
    destination_url: Option<String>,
    /// The registry of tenants (TOML or JSON; README "Many channels"): each tenant's LINE channel on
    /// /line/TENANT and Meta apps on /meta/TENANT. Read again every few seconds.
    #[arg(long, env = "GATEWAY_TENANTS", value_name = "FILE")]
    tenants: Option<PathBuf>,
    /// Milliseconds a received message stays invisible before it is delivered again.
    #[arg(long, env = "LOCAL_VISIBILITY_TIMEOUT_MS", default_value_t = 30_000)]
    visibility_timeout_ms: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the webhook routes and run the worker (the default).
    Serve(ServeArgs),
    /// Send a signed event to a running gateway: a file (an API Gateway event from events/ or a
    /// raw LINE or Meta webhook body), or a text message built from --text.
    Send {
        /// The file to send; its signature is replaced by one with the configured secret, unless
        /// it is deliberately wrong (events/line-wrong-signature.json stays wrong).
        #[arg(required_unless_present = "text", conflicts_with = "text")]
        file: Option<PathBuf>,
        /// Send a text message from a user instead of a file.
        #[arg(long)]
        text: Option<String>,
        /// The platform of a --text message.
        #[arg(long, value_enum, default_value_t = local::Platform::Line)]
        platform: local::Platform,
        /// The sender of a --text message (default: the demo user of events/).
        #[arg(long)]
        user: Option<String>,
        #[arg(long, env = "GATEWAY_URL", default_value = "http://127.0.0.1:3000")]
        url: String,
    },
    /// Read the archive: the conversations, or one conversation's messages and profiles.
    Archive {
        conversation: Option<String>,
        /// Also write the conversation's media files into this folder.
        #[arg(long)]
        save_media: Option<PathBuf>,
    },
    /// List the events in the dead-letter state.
    DeadLetters,
    /// Put dead-lettered events back in the queue: one by its id, or all.
    Redrive {
        #[arg(long)]
        id: Option<i64>,
    },
}

fn main() -> ExitCode {
    shared::heap::keep_freed_memory();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("chat-gateway: error: starting the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(Cli::parse())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chat-gateway: error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), LocalError> {
    // Requests, refusals (401, 413) and warnings are what a user needs to see when the LINE
    // console's Verify fails; the AWS SDK and HTTP crates stay quiet.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,ingress=info,settings=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
    let data = cli.data;
    match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Serve(args) => {
            let destination =
                shared::destinations::DestinationConfig::from_vars(|name| match name {
                    "DESTINATION" => Some(args.destination.clone()),
                    "DESTINATION_URL" => args.destination_url.clone(),
                    other => std::env::var(other).ok(),
                })
                .map_err(|e| LocalError(e.to_string()))?;
            let settings = Settings {
                destination,
                listen: args.listen,
                data: data.data,
                worker: !args.no_worker,
                visibility: Duration::from_millis(args.visibility_timeout_ms.max(1)),
                max_receives: data.max_receives,
                quiet: args.quiet,
                archive: !args.no_archive,
                fake_apis: args.fake_apis.unwrap_or_else(local::no_access_tokens),
                tenants: args.tenants,
            };
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            local::serve(settings, shutdown).await
        }
        Command::Send {
            file,
            text,
            platform,
            user,
            url,
        } => {
            let outgoing = match (file, text) {
                (Some(file), _) => {
                    let bytes = std::fs::read(&file)
                        .map_err(|e| LocalError(format!("reading {}: {e}", file.display())))?;
                    local::outgoing_from_file(&bytes)?
                }
                (None, Some(text)) => local::text_event(platform, &text, user.as_deref()),
                (None, None) => return Err(LocalError("give a FILE or --text".into())),
            };
            let (status, body) = local::send(&url, &outgoing).await?;
            println!("{status} {body}");
            if (200..300).contains(&status) {
                Ok(())
            } else {
                Err(LocalError(format!("the gateway answered {status}")))
            }
        }
        Command::Archive {
            conversation,
            save_media,
        } => local::print_archive(&data.data, conversation.as_deref(), save_media.as_deref()).await,
        Command::DeadLetters => {
            let queue = open_queue(&data.data, data.max_receives)?;
            let dead = queue
                .dead_letters()
                .await
                .map_err(|e| LocalError(e.to_string()))?;
            if dead.is_empty() {
                println!("no dead letters");
            }
            for letter in dead {
                println!(
                    "{:>6}  {:<5} {}  receives={} last_error={}  ({})",
                    letter.id,
                    letter.platform,
                    letter.key,
                    letter.receive_count,
                    letter.last_error.as_deref().unwrap_or("-"),
                    letter.conversation
                );
            }
            Ok(())
        }
        Command::Redrive { id } => {
            let queue = open_queue(&data.data, data.max_receives)?;
            let moved = queue
                .redrive(id)
                .await
                .map_err(|e| LocalError(e.to_string()))?;
            match (id, moved) {
                (Some(id), 0) => Err(LocalError(format!(
                    "no dead letter has id {id} (chat-gateway dead-letters lists them)"
                ))),
                _ => {
                    println!("{moved} event(s) back in the queue");
                    Ok(())
                }
            }
        }
    }
}

fn open_queue(
    data: &std::path::Path,
    max_receives: u32,
) -> Result<shared::adapters::sqlite::SqliteQueue, LocalError> {
    let db =
        shared::adapters::sqlite::SqliteDb::open(data).map_err(|e| LocalError(e.to_string()))?;
    Ok(shared::adapters::sqlite::SqliteQueue::new(db, max_receives))
}
