//! fly.toml and the Dockerfile checked against the code, with what exists here (no
//! flyctl, no Docker): the port Fly sends traffic to is the one the worker listens on,
//! the health check and metrics paths are routes it serves, every `[env]` name and every
//! secret fly.toml names is a setting it reads (and together they make a valid
//! configuration), and the Dockerfile builds and runs this package's binary.
//! Field names: https://fly.io/docs/reference/configuration/

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use media_worker::config::MediaConfig;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn fly() -> toml::Table {
    let text = std::fs::read_to_string(root().join("fly.toml")).unwrap();
    text.parse().unwrap_or_else(|e| panic!("fly.toml does not parse: {e}"))
}

/// `[env]` as name → value.
fn fly_env(fly: &toml::Table) -> BTreeMap<String, String> {
    let env = fly["env"].as_table().expect("fly.toml has an [env] table");
    env.iter()
        .map(|(name, value)| {
            (name.clone(), value.as_str().unwrap_or_else(|| panic!("[env] {name} is not a string")).to_owned())
        })
        .collect()
}

/// The secrets fly.toml's header tells the operator to set (`fly secrets set`): the
/// upper-case names on the comment lines under "Secrets".
fn fly_secrets() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("fly.toml")).unwrap();
    let comments: Vec<&str> = text.lines().take_while(|l| l.starts_with('#')).collect();
    let start = comments.iter().position(|l| l.contains("Secrets")).expect("fly.toml's header names its secrets");
    comments[start + 1..]
        .iter()
        .take_while(|l| l.trim() != "#")
        .flat_map(|l| l.split(|c: char| !(c.is_ascii_uppercase() || c == '_')))
        .filter(|w| w.len() > 3 && w.contains('_'))
        .map(str::to_owned)
        .collect()
}

/// The worker's configuration from fly.toml's `[env]` and a value for each secret,
/// with the names it looked up.
fn deployed_config() -> (MediaConfig, BTreeSet<String>) {
    let fly = fly();
    let mut settings = fly_env(&fly);
    for secret in fly_secrets() {
        let value = match secret.as_str() {
            "REDIS_URL" => String::new(), // optional: the embedded store here
            _ => format!("{}-value", secret.to_lowercase()),
        };
        settings.insert(secret, value);
    }
    let read = Mutex::new(BTreeSet::new());
    let config = MediaConfig::from_lookup(|name| {
        read.lock().unwrap().insert(name.to_owned());
        settings.get(name).cloned()
    })
    .unwrap_or_else(|e| panic!("fly.toml's [env] and secrets do not make a valid configuration: {e}"));
    (config, read.into_inner().unwrap())
}

#[test]
fn every_env_name_and_secret_in_fly_toml_is_a_setting_the_worker_reads() {
    let (_, read) = deployed_config();
    // RUST_LOG is read by the log filter in main.rs, not by MediaConfig.
    let main = std::fs::read_to_string(root().join("media-worker/src/main.rs")).unwrap();
    assert!(main.contains("EnvFilter::try_from_default_env()"), "main.rs no longer reads RUST_LOG");
    for name in fly_env(&fly()).keys().filter(|n| *n != "RUST_LOG") {
        assert!(read.contains(name), "fly.toml sets {name}, which the media worker never reads");
    }
    let secrets = fly_secrets();
    for name in ["OPENAI_API_KEY", "INTERNAL_SECRET", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "REDIS_URL"] {
        assert!(secrets.iter().any(|s| s == name), "fly.toml's header does not name the secret {name}: {secrets:?}");
    }
    for name in &secrets {
        assert!(read.contains(name), "fly.toml names the secret {name}, which the media worker never reads");
    }
}

/// The names the README's deploy section has you `fly secrets set` (the command may
/// go on over lines ending in a backslash).
fn secrets_in_readme() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut lines = readme.lines().skip_while(|l| !l.trim_start().starts_with("fly secrets set "));
    let mut command = String::new();
    for line in lines.by_ref() {
        command.push_str(line.trim_end_matches('\\'));
        command.push(' ');
        if !line.trim_end().ends_with('\\') {
            break;
        }
    }
    assert!(!command.is_empty(), "the README does not `fly secrets set`");
    command
        .split_whitespace()
        .filter_map(|word| word.split_once('=').map(|(name, _)| name.to_owned()))
        .filter(|name| name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect()
}

#[test]
fn the_readme_sets_exactly_the_secrets_fly_toml_names() {
    let named: BTreeSet<String> = fly_secrets().into_iter().collect();
    assert_eq!(secrets_in_readme(), named);
}

#[test]
fn fly_sends_traffic_to_the_port_the_worker_listens_on_and_drains_within_kill_timeout() {
    let fly = fly();
    let (config, _) = deployed_config();
    let service = fly["http_service"].as_table().expect("[http_service]");
    assert_eq!(service["internal_port"].as_integer(), Some(i64::from(config.port)), "internal_port vs PORT");
    // Fly scrapes metrics from the same listener.
    assert_eq!(fly["metrics"]["port"].as_integer(), Some(i64::from(config.port)));
    // A SIGTERM drains live calls for DRAIN_SECONDS; Fly must not kill the machine first.
    assert_eq!(fly["kill_signal"].as_str(), Some("SIGTERM"));
    let kill_timeout = fly["kill_timeout"].as_integer().expect("kill_timeout in seconds");
    assert!(kill_timeout > config.drain_seconds as i64, "kill_timeout {kill_timeout} <= DRAIN_SECONDS");
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(dockerfile.lines().any(|l| l.trim() == format!("ENV PORT={}", config.port)), "Dockerfile's PORT");
    assert!(dockerfile.lines().any(|l| l.trim() == format!("EXPOSE {}", config.port)), "Dockerfile's EXPOSE");
}

#[tokio::test]
async fn the_health_check_and_metrics_paths_are_routes_the_worker_serves() {
    let fly = fly();
    let (config, _) = deployed_config();
    let checks = fly["http_service"]["checks"].as_array().expect("[[http_service.checks]]");
    assert!(!checks.is_empty());
    let mut paths: Vec<(String, String)> = checks
        .iter()
        .map(|c| {
            (c["method"].as_str().unwrap_or("GET").to_owned(), c["path"].as_str().expect("a check's path").to_owned())
        })
        .collect();
    paths.push(("GET".to_owned(), fly["metrics"]["path"].as_str().expect("[metrics] path").to_owned()));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let store = media_worker::server::open_store(&config).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(media_worker::server::run(listener, config, store, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    for (method, path) in paths {
        let method: reqwest::Method = method.parse().unwrap();
        let response = http.request(method.clone(), format!("http://{address}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{method} {path}");
    }
    // A path it does not serve is a 404, so the 200s above mean something.
    assert_eq!(http.get(format!("http://{address}/healthz")).send().await.unwrap().status(), 404);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[test]
fn the_dockerfile_builds_and_runs_this_packages_binary() {
    let fly = fly();
    assert_eq!(fly["build"]["dockerfile"].as_str(), Some("Dockerfile"));
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_media-worker")).file_name().unwrap().to_str().unwrap().to_owned();
    let package = env!("CARGO_PKG_NAME");
    let build = dockerfile.lines().find(|l| l.trim_start().starts_with("RUN cargo build")).expect("a cargo build step");
    assert!(build.contains("--release") && build.contains("--locked"), "{build}");
    assert!(build.contains(&format!("-p {package}")), "{build}");
    assert!(build.contains(&format!("target/release/{binary} /{binary}")), "{build}");
    assert!(dockerfile.contains(&format!("COPY --from=build /{binary} /usr/local/bin/{binary}")), "{dockerfile}");
    assert!(dockerfile.contains(&format!("ENTRYPOINT [\"/usr/local/bin/{binary}\"]")), "{dockerfile}");
    // The build context leaves out the (large, host-specific) build output.
    let ignored = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    assert!(ignored.lines().any(|l| l.trim() == "target"), ".dockerignore must leave out target/");
    // `--locked` needs the lock file and every workspace member in the context.
    assert!(!ignored.lines().any(|l| l.trim() == "Cargo.lock"));
    let workspace: toml::Table = std::fs::read_to_string(root().join("Cargo.toml")).unwrap().parse().unwrap();
    for member in workspace["workspace"]["members"].as_array().unwrap() {
        let member = member.as_str().unwrap();
        assert!(!ignored.lines().any(|l| l.trim().trim_end_matches('/') == member), "{member} is left out");
    }
}
