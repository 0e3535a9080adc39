//! wrangler.toml and the README's deploy steps checked against the edge's settings
//! (`edge/src/config.rs`): every `[vars]` name is a setting the edge reads, the secrets
//! wrangler.toml names are the ones the README has you put and the ones the edge needs,
//! and together they make a valid configuration. (`wrangler deploy --dry-run` on the same
//! file is sim/tests/deploy.rs.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use edge::config::EdgeConfig;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn vars() -> BTreeMap<String, String> {
    let wrangler: toml::Table = read("wrangler.toml").parse().expect("wrangler.toml parses");
    let vars = wrangler["vars"].as_table().expect("a [vars] table");
    vars.iter()
        .map(|(name, value)| {
            (name.clone(), value.as_str().unwrap_or_else(|| panic!("{name} is not a string")).to_owned())
        })
        .collect()
}

/// The upper-case names on the comment lines that follow the one naming the secrets.
fn secrets_in_comments(text: &str) -> BTreeSet<String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.starts_with('#') && l.contains("Secrets")).expect("a Secrets comment");
    lines[start + 1..]
        .iter()
        .take_while(|l| l.starts_with('#') && l.trim() != "#")
        .flat_map(|l| l.split(|c: char| !(c.is_ascii_uppercase() || c == '_')))
        .filter(|w| w.len() > 3 && w.contains('_'))
        .map(str::to_owned)
        .collect()
}

/// The names the README's deploy section has you `wrangler secret put`.
fn secrets_in_readme() -> BTreeSet<String> {
    read("README.md")
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("wrangler secret put "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn secret_value(name: &str) -> String {
    match name {
        "API_KEYS" => "key-one:whsec_0123456789abcdef01234567".to_owned(),
        _ => format!("{}-value", name.to_lowercase()),
    }
}

#[test]
fn wrangler_toml_and_its_secrets_make_a_valid_edge_configuration() {
    let vars = vars();
    let secrets = secrets_in_comments(&read("wrangler.toml"));
    assert_eq!(
        secrets,
        ["API_KEYS", "INTERNAL_SECRET", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"].map(str::to_owned).into(),
        "the secrets wrangler.toml's comment names"
    );
    for secret in &secrets {
        assert!(!vars.contains_key(secret), "{secret} is a secret: never in [vars]");
    }
    let read_names = Mutex::new(BTreeSet::new());
    let config = EdgeConfig::from_lookup(|name| {
        read_names.lock().unwrap().insert(name.to_owned());
        vars.get(name).cloned().or_else(|| secrets.contains(name).then(|| secret_value(name)))
    })
    .unwrap_or_else(|e| panic!("wrangler.toml's [vars] and secrets are not a valid configuration: {e}"));
    let read_names = read_names.into_inner().unwrap();
    for name in vars.keys().chain(&secrets) {
        assert!(read_names.contains(name), "{name} is set for the Worker but the edge never reads it");
    }
    assert_eq!(config.public_base_url, vars["PUBLIC_BASE_URL"]);
    // Each secret is needed: without it the configuration is refused, naming it.
    for missing in &secrets {
        let error = EdgeConfig::from_lookup(|name| {
            vars.get(name).cloned().or_else(|| (secrets.contains(name) && name != missing).then(|| secret_value(name)))
        })
        .expect_err(missing);
        assert!(error.to_string().contains(missing.as_str()), "{error}");
    }
}

#[test]
fn the_readme_puts_exactly_the_secrets_the_edge_needs() {
    assert_eq!(secrets_in_readme(), secrets_in_comments(&read("wrangler.toml")));
}

#[test]
fn wranglers_build_command_and_entry_point_are_the_repositorys() {
    let wrangler: toml::Table = read("wrangler.toml").parse().unwrap();
    let command = wrangler["build"]["command"].as_str().expect("[build] command");
    let script = root().join(command);
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&script).unwrap().permissions());
    assert!(mode & 0o111 != 0, "{command} is not executable");
    // scripts/build-edge writes what `main` names.
    assert_eq!(wrangler["main"].as_str(), Some("edge/build/worker/shim.mjs"));
    assert!(read(command).contains("worker-build --release"), "{command} no longer runs worker-build");
}
