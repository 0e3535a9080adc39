//! The edge's deployment checked by the tool that deploys it: `wrangler deploy --dry-run`
//! on the repository's own wrangler.toml runs its `[build]` command (scripts/build-edge),
//! bundles the Worker and resolves its bindings, everything but the upload, with the
//! cached toolchain and no network, no account.
//! (https://developers.cloudflare.com/workers/wrangler/commands/#deploy: `--dry-run`
//! "compile a project without actually deploying to live servers", `--outdir` keeps the
//! bundle.)

use std::process::{Command, Stdio};

use sim::wrangler::{repo_root, toolchain_env};

/// A directory removed when the test ends.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// wrangler.toml's bindings and migrations, as written.
fn declared() -> toml::Table {
    std::fs::read_to_string(repo_root().join("wrangler.toml")).unwrap().parse().expect("wrangler.toml parses")
}

#[test]
fn wrangler_deploy_dry_run_builds_the_worker_and_lists_its_bindings() {
    let root = repo_root();
    let env = toolchain_env().unwrap();
    let node = &env["CONCIERGE_NODE22"];
    let wrangler = &env["CONCIERGE_WRANGLER"];
    let out = Scratch(std::env::temp_dir().join(format!("concierge-dry-run-{}", std::process::id())));
    let output = Command::new(node)
        .arg(wrangler)
        .args(["deploy", "--dry-run", "--outdir"])
        .arg(&out.0)
        .arg("--config")
        .arg(root.join("wrangler.toml"))
        .current_dir(&root)
        .envs(&env)
        // No account, no telemetry, no prompts.
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env_remove("CLOUDFLARE_API_TOKEN")
        .env_remove("CLOUDFLARE_ACCOUNT_ID")
        .env("XDG_CONFIG_HOME", root.join("target/wrangler-config"))
        .env("CI", "true")
        .stdin(Stdio::null())
        .output()
        .expect("running wrangler");
    let log = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "wrangler deploy --dry-run failed:\n{log}");
    assert!(log.contains("--dry-run: exiting now."), "{log}");

    // Every binding wrangler.toml declares, as wrangler resolved it.
    let line = |needle: &str| log.lines().find(|l| l.contains(needle)).map(str::to_owned);
    let config = declared();
    let kv = config["kv_namespaces"].as_array().unwrap();
    assert_eq!(kv.len(), 1);
    let binding = kv[0]["binding"].as_str().unwrap();
    assert_eq!(binding, "CALLS", "the edge reads KV through the CALLS binding");
    let kv_line = line(&format!("env.{binding}")).unwrap_or_else(|| panic!("no {binding} binding in:\n{log}"));
    assert!(kv_line.contains("KV Namespace"), "{kv_line}");
    let objects = config["durable_objects"]["bindings"].as_array().unwrap();
    let mut classes = Vec::new();
    for object in objects {
        let (name, class) = (object["name"].as_str().unwrap(), object["class_name"].as_str().unwrap());
        let found = line(&format!("env.{name} ({class})")).unwrap_or_else(|| panic!("no {name} binding in:\n{log}"));
        assert!(found.contains("Durable Object"), "{found}");
        classes.push(class.to_owned());
    }
    classes.sort();
    assert_eq!(classes, ["Arbiter", "CallKeeper"], "the edge's two Durable Object classes");

    // Each class is created by exactly one migration, SQLite-backed (the free plan's kind),
    // and tags are unique: a deployed migration is never edited, only followed.
    let mut migrated = Vec::new();
    let mut tags = Vec::new();
    for migration in config["migrations"].as_array().unwrap() {
        tags.push(migration["tag"].as_str().unwrap().to_owned());
        assert!(migration.get("new_classes").is_none(), "new classes are SQLite-backed: {migration}");
        for class in migration["new_sqlite_classes"].as_array().into_iter().flatten() {
            migrated.push(class.as_str().unwrap().to_owned());
        }
    }
    migrated.sort();
    assert_eq!(migrated, classes, "every Durable Object class is created by a migration, once");
    let mut unique = tags.clone();
    unique.dedup();
    assert_eq!(unique, tags);

    // The bundle holds the Worker and its WASM, and exports both classes.
    let mut files: Vec<_> = std::fs::read_dir(&out.0).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    let wasm = files.iter().find(|p| p.extension().is_some_and(|e| e == "wasm")).expect("a .wasm in the bundle");
    assert!(std::fs::metadata(wasm).unwrap().len() > 100_000, "{}", wasm.display());
    let script = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "js" || e == "mjs"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<String>();
    for class in &classes {
        assert!(script.contains(class), "the bundle does not export {class}");
    }
}
