//! `chat-gateway`'s rough edges, as a user met them before issue 16: `serve --listen` was refused,
//! errors printed as `Error: LocalError("…")`, a send to nobody did not ask whether the gateway
//! runs, `redrive --id <unknown>` exited 0, a visibility timeout that leaves handlers no time went
//! unmentioned, and the startup line listed `/meta` routes that answer 404.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_chat-gateway");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// Starts `serve` with `args` and `env`; returns its first stdout line and its stderr so far.
fn serve_first_line(args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let data = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut command = Command::new(BINARY);
    command
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--data")
        .arg(data.path().join("g.db"))
        .args(args)
        .env_remove("LINE_CHANNEL_SECRET")
        .env_remove("META_APP_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    let _ = BufReader::new(stdout).read_line(&mut line);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        && started.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let output = child.wait_with_output().expect("wait");
    (line, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn serve_takes_its_options_after_the_subcommand_and_names_only_live_routes() {
    let (line, _) = serve_first_line(&[], &[("META_APP_SECRET", "s")]);
    assert!(line.contains("chat gateway listening on"), "{line}");
    assert!(line.contains("GET /meta, POST /meta"), "{line}");
    assert!(line.contains("LINE off"), "{line}");
    assert!(!line.contains("POST /line"), "{line}");
}

#[test]
fn a_visibility_timeout_that_leaves_no_time_for_handlers_is_warned_about() {
    let (_, stderr) = serve_first_line(&["--visibility-timeout-ms", "800"], &[]);
    assert!(
        stderr.contains("warning: a visibility timeout of 800 ms"),
        "{stderr}"
    );
    let (_, stderr) = serve_first_line(&[], &[]);
    assert!(
        !stderr.contains("warning: a visibility timeout"),
        "{stderr}"
    );
}

#[test]
fn errors_are_sentences_with_a_failing_exit_status() {
    let port = free_port();
    let output = Command::new(BINARY)
        .args([
            "send",
            "--text",
            "hi",
            "--url",
            &format!("http://127.0.0.1:{port}"),
        ])
        .output()
        .expect("send");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("is the gateway running?"), "{stderr}");
    assert!(!stderr.contains("LocalError"), "{stderr}");

    let data = tempfile::tempdir().expect("tempdir");
    let output = Command::new(BINARY)
        .args(["redrive", "--id", "42", "--data"])
        .arg(data.path().join("g.db"))
        .output()
        .expect("redrive");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("chat-gateway: error: no dead letter has id 42"),
        "{stderr}"
    );
}
