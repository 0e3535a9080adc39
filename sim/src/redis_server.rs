//! A real `redis-server` for tests: on a free loopback port, no persistence, stopped on drop.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct RedisServer {
    pub url: String,
    pub port: u16,
    child: Child,
}

impl RedisServer {
    /// Starts redis-server and waits for its "Ready to accept connections" line.
    pub async fn start() -> anyhow::Result<RedisServer> {
        let port = crate::wrangler::free_port()?;
        RedisServer::start_on(port).await
    }

    /// Starts (or restarts) on a given port, so a test can bring Redis back where it was.
    pub async fn start_on(port: u16) -> anyhow::Result<RedisServer> {
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                "",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting redis-server (is it installed? scripts/test installs it)")?;
        let stdout = child.stdout.take().context("redis-server stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("Ready to accept connections") {
                    return true;
                }
            }
            false
        })
        .await;
        if !matches!(ready, Ok(true)) {
            bail!("redis-server did not become ready on port {port}");
        }
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(RedisServer { url: format!("redis://127.0.0.1:{port}"), port, child })
    }

    /// The redis-server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops the server now (a crash, from the clients' point of view).
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}
