//! `chat-gateway`: the whole gateway locally. See `chat-gateway --help`.

use clap::{Parser, Subcommand};
use local::{LocalError, Settings};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "chat-gateway",
    version,
    about = "The LINE and Meta webhook gateway in one process: ingress, queue, worker and bot, on SQLite."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// The SQLite database holding the queue and the idempotency records.
    #[arg(
        long,
        global = true,
        env = "GATEWAY_DATA",
        default_value = ".gateway/gateway.db"
    )]
    data: PathBuf,
    /// Accept and queue only; do not run the worker.
    #[arg(long)]
    no_worker: bool,
    /// Print no line per handled event.
    #[arg(long)]
    quiet: bool,
    /// Do not archive messages and media (on by default here; off by default in the template).
    #[arg(long)]
    no_archive: bool,
    /// Milliseconds a received message stays invisible before it is delivered again.
    #[arg(long, env = "LOCAL_VISIBILITY_TIMEOUT_MS", default_value_t = 30_000)]
    visibility_timeout_ms: u64,
    /// Receives before a message goes to the dead-letter state: a backstop, as on AWS; the worker
    /// dead-letters an event itself after MAX_ATTEMPTS (5) failed runs, with the reason.
    #[arg(long, global = true, env = "LOCAL_MAX_RECEIVES", default_value_t = 20)]
    max_receives: u32,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the webhook routes and run the worker (the default).
    Serve,
    /// Sign a JSON file with the configured secret and send it to a running gateway: an API
    /// Gateway event from events/ or a raw LINE or Meta webhook body.
    Send {
        file: PathBuf,
        #[arg(long, default_value = "http://127.0.0.1:3000")]
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

#[tokio::main]
async fn main() -> Result<(), LocalError> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
    let cli = Cli::parse();
    let args = cli.serve;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let settings = Settings {
                listen: args.listen,
                data: args.data,
                worker: !args.no_worker,
                visibility: Duration::from_millis(args.visibility_timeout_ms.max(1)),
                max_receives: args.max_receives,
                quiet: args.quiet,
                archive: !args.no_archive,
            };
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            local::serve(settings, shutdown).await
        }
        Command::Send { file, url } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| LocalError(format!("reading {}: {e}", file.display())))?;
            let outgoing = local::outgoing_from_file(&bytes)?;
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
        } => local::print_archive(&args.data, conversation.as_deref(), save_media.as_deref()).await,
        Command::DeadLetters => {
            let queue = open_queue(&args.data, args.max_receives)?;
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
            let queue = open_queue(&args.data, args.max_receives)?;
            let moved = queue
                .redrive(id)
                .await
                .map_err(|e| LocalError(e.to_string()))?;
            println!("{moved} event(s) back in the queue");
            Ok(())
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
