//! `concierge-demo --serve` as a person runs it: started as a child process, it prints
//! where everything listens and a `ready:` line; the `concierge` CLI books against it,
//! each booking answered as its restaurant's name says; SIGINT (Ctrl-C) stops all of it:
//! the process exits, every port it listed is closed and no child process remains.
//!
//! The CLI is the workspace's `concierge` binary, built beside this package's binaries
//! (`cargo test --workspace` builds both; alone: `cargo build -p concierge-cli`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Generous: a busy machine may take a while to start the stack or run a call.
const DEADLINE: Duration = Duration::from_secs(120);

fn cli() -> PathBuf {
    let path = std::path::Path::new(env!("CARGO_BIN_EXE_concierge-demo")).with_file_name("concierge");
    assert!(path.is_file(), "{} is not built: cargo build -p concierge-cli", path.display());
    path
}

/// Loopback ports named in the text.
fn ports(text: &str) -> Vec<u16> {
    let mut ports: Vec<u16> = text
        .split("127.0.0.1:")
        .skip(1)
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The processes whose parent is `pid`, from /proc.
fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
        let Some((_, after)) = stat.rsplit_once(") ") else { continue };
        let parent = after.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if parent == Some(pid) {
            found.push(child);
        }
    }
    found
}

/// Running: present in /proc and not a zombie.
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, after)| !after.starts_with('Z')),
        Err(_) => false,
    }
}

async fn book(url: &str, restaurant: &str, phone: &str) -> std::process::Output {
    let date = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let args = [
        "book",
        "--restaurant",
        restaurant,
        "--phone",
        phone,
        "--date",
        &date,
        "--time",
        "19:30",
        "--party-size",
        "4",
        "--name",
        "Ada Lovelace",
        "--timezone",
        "America/Los_Angeles",
        "--wait",
    ];
    let run = Command::new(cli())
        .args(args)
        .env("CONCIERGE_URL", url)
        .env("CONCIERGE_API_KEY", demo::API_KEY)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(DEADLINE, run).await.expect("the booking did not finish").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_bookings_by_restaurant_and_ctrl_c_stops_everything() {
    cli();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_concierge-demo"))
        .args(["--serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = serve.id().unwrap();
    let mut lines = BufReader::new(serve.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    let url = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("ready: ") {
                return url.to_owned();
            }
            banner.push_str(&line);
            banner.push('\n');
        }
        panic!("--serve exited before it was ready:\n{banner}")
    })
    .await
    .expect("--serve was not ready in time");
    // The rest of its output, for the checks after it stops.
    let rest = tokio::spawn(async move {
        let mut text = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });

    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(banner.contains(&format!("API key                 {}", demo::API_KEY)), "{banner}");
    assert!(banner.contains(&format!("curl -sS {url}/v1/calls ")), "{banner}");
    assert!(banner.contains(&format!("export CONCIERGE_URL={url} ")), "{banner}");
    assert!(banner.contains("\"fully booked\""), "{banner}");
    let listed = ports(&banner);
    // The edge, the media worker, the fake Twilio, the fake OpenAI and the webhook
    // endpoint, and redis-server when installed.
    let with_redis = demo::serve::redis_installed();
    assert_eq!(listed.len(), if with_redis { 6 } else { 5 }, "{banner}");
    let kids = children(pid);
    if with_redis {
        let redis_pid: u32 = banner
            .split("(pid ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no redis-server pid in:\n{banner}"));
        assert!(kids.contains(&redis_pid), "redis-server {redis_pid} is not a child of {pid}: {kids:?}");
    }

    // Two bookings at once, each answered as its restaurant's name says (two numbers:
    // a number takes one call at a time).
    let (confirmed, declined) =
        tokio::join!(book(&url, "Chez Panisse", "+15105485525"), book(&url, "Fully Booked Diner", "+15105485526"));
    let out = String::from_utf8_lossy(&confirmed.stdout);
    assert_eq!(confirmed.status.code(), Some(0), "{out}\n{}", String::from_utf8_lossy(&confirmed.stderr));
    assert!(out.contains("restaurant: Chez Panisse, good evening."), "{out}");
    assert!(out.contains("Confirmation: A73X"), "{out}");
    let out = String::from_utf8_lossy(&declined.stdout);
    assert_eq!(declined.status.code(), Some(2), "{out}\n{}", String::from_utf8_lossy(&declined.stderr));
    assert!(out.contains("Outcome: declined"), "{out}");
    let call_id = out.lines().next().unwrap().trim().to_owned();

    // Ctrl-C.
    let status = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(DEADLINE, serve.wait()).await.expect("--serve did not stop").unwrap();
    assert!(exit.success(), "{exit:?}");
    let rest = rest.await.unwrap();
    // What it showed while it ran: the scenario each call got.
    assert!(rest.contains(&format!("{call_id}  Fully Booked Diner: fully-booked")), "{rest}");
    assert!(rest.trim_end().ends_with("stopped"), "{rest}");

    for port in listed {
        let refused = std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2));
        assert!(refused.is_err(), "port {port} still open after --serve stopped");
    }
    let left: Vec<u32> = kids.into_iter().filter(|&kid| running(kid)).collect();
    assert!(left.is_empty(), "processes --serve started still run: {left:?}");
}

#[tokio::test]
async fn a_port_already_taken_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let run = Command::new(env!("CARGO_BIN_EXE_concierge-demo"))
        .args(["--serve", "--port", &port])
        .env("RUST_BACKTRACE", "0")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(DEADLINE, run).await.expect("--serve did not give up").unwrap();
    assert_eq!(output.status.code(), Some(1));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains(&format!("binding the edge's port {port} (taken? --port picks another)")), "{error}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("ready:"));
}
