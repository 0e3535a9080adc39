//! Runs the edge Worker for real: `wrangler dev` (workerd, local KV and Durable Objects,
//! their alarms included) on a loopback port, configured with `--var`s, serving the
//! Worker scripts/build-edge built. Tests talk to it over HTTP exactly as Twilio, the
//! media worker and users would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// A cold machine builds the Worker inside `wrangler dev` first.
const START_DEADLINE: Duration = Duration::from_secs(900);

pub struct WranglerDev {
    pub base_url: String,
    child: Child,
    log: Arc<Mutex<String>>,
    /// Its config and local KV state.
    _instance: TempDir,
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The environment `scripts/edge-toolchain` prints (installing the tools when missing).
pub fn toolchain_env() -> anyhow::Result<BTreeMap<String, String>> {
    let root = repo_root();
    let output = std::process::Command::new(root.join("scripts/edge-toolchain"))
        .current_dir(&root)
        .stderr(Stdio::inherit())
        .output()
        .context("running scripts/edge-toolchain")?;
    if !output.status.success() {
        bail!("scripts/edge-toolchain failed");
    }
    let mut env = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if let Some((key, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            let value = value.trim_matches('"').replace("$PATH", &std::env::var("PATH").unwrap_or_default());
            env.insert(key.to_owned(), value);
        }
    }
    Ok(env)
}

/// Tests starting side by side build the Worker once.
static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A copy of wrangler.toml for one `wrangler dev`, written into `dir`: no `[build]` (the
/// Worker is built once, by scripts/build-edge, before tests run), `main` made
/// absolute. Builds if needed. Each instance has its own copy because wrangler dev
/// watches its config file and reloads (dropping requests in flight) when it is written.
fn test_config(root: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let shim = root.join("edge/build/worker/shim.mjs");
    {
        let _building = BUILD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !shim.exists() {
            let status = std::process::Command::new(root.join("scripts/build-edge")).current_dir(root).status()?;
            if !status.success() {
                bail!("scripts/build-edge failed");
            }
        }
    }
    let original = std::fs::read_to_string(root.join("wrangler.toml")).context("reading wrangler.toml")?;
    let mut config = String::new();
    let mut in_build = false;
    for line in original.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            in_build = trimmed == "[build]";
        }
        if in_build {
            continue;
        }
        if trimmed.starts_with("main = ") {
            config.push_str(&format!("main = {:?}\n", shim.display().to_string()));
        } else {
            config.push_str(line);
            config.push('\n');
        }
    }
    // Whatever an earlier, killed run on the same port left behind.
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let path = dir.join("wrangler.toml");
    std::fs::write(&path, config)?;
    Ok(path)
}

/// A loopback port free right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl WranglerDev {
    /// Starts `wrangler dev` on `port` with these vars and waits until it serves.
    pub async fn start(port: u16, vars: &[(&str, String)]) -> anyhow::Result<WranglerDev> {
        let root = repo_root();
        let env = toolchain_env()?;
        let node = env.get("CONCIERGE_NODE22").context("CONCIERGE_NODE22 not set by edge-toolchain")?;
        let wrangler = env.get("CONCIERGE_WRANGLER").context("CONCIERGE_WRANGLER not set by edge-toolchain")?;
        let instance = TempDir(std::env::temp_dir().join(format!("concierge-wrangler-{port}")));
        let config = test_config(&root, &instance.0)?;
        let inspector = free_port()?;
        let mut command = Command::new(node);
        command
            .arg(wrangler)
            .arg("dev")
            .arg("--config")
            .arg(&config)
            .args(["--ip", "127.0.0.1", "--port", &port.to_string(), "--inspector-port", &inspector.to_string()])
            .args(["--local", "--show-interactive-dev-session=false", "--persist-to"])
            .arg(instance.0.join("state"));
        for (key, value) in vars {
            command.arg("--var").arg(format!("{key}:{value}"));
        }
        command
            .current_dir(&root)
            .envs(&env)
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("XDG_CONFIG_HOME", root.join("target/wrangler-config"))
            .env("CI", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so workerd (wrangler's child) goes down with it.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().context("starting wrangler dev")?;
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, mut ready) = watch::channel(false);
        let ready_tx = Arc::new(ready_tx);
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child.stderr.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            let ready_tx = ready_tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.contains("Ready on") {
                        ready_tx.send_replace(true);
                    }
                    if let Ok(mut log) = log.lock() {
                        log.push_str(&line);
                        log.push('\n');
                    }
                }
            });
        }
        let waited = tokio::time::timeout(START_DEADLINE, async {
            loop {
                if *ready.borrow_and_update() {
                    return true;
                }
                if ready.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await;
        let dev = WranglerDev { base_url: format!("http://127.0.0.1:{port}"), child, log, _instance: instance };
        match waited {
            Ok(true) => Ok(dev),
            _ => bail!("wrangler dev did not become ready:\n{}", dev.log()),
        }
    }

    /// Everything wrangler printed so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for WranglerDev {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            // Negative pid: the whole group (wrangler, esbuild, workerd).
            let _ = std::process::Command::new("kill").args(["-TERM", "--", &format!("-{pid}")]).status();
        }
    }
}
