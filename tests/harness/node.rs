//! Node.js for the client tests that run real JavaScript clients (`tests/js`): the
//! graphql-ws client, Apollo Client, the headless browser pages, the GraphQL-over-HTTP
//! audit. Their packages are
//! installed from `tests/js/package-lock.json` (`npm ci --prefix tests/js`), by the first
//! test that needs them when `tests/js/node_modules` is missing or stale.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::process::Command;

const INSTALL: &str = "npm ci --prefix tests/js";

/// `tests/js`.
pub fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// Makes sure Node 20+ runs and the client's packages are installed, running `npm ci` (once
/// per test binary) when `tests/js/node_modules` lacks them or holds other versions than
/// `package-lock.json`; fails the test otherwise.
pub async fn ready() {
    static READY: tokio::sync::OnceCell<Result<(), String>> = tokio::sync::OnceCell::const_new();
    if let Err(problem) = READY.get_or_init(prepare_node).await {
        panic!("{problem}");
    }
}

async fn prepare_node() -> Result<(), String> {
    let version = Command::new("node")
        .arg("--version")
        .output()
        .await
        .map_err(|err| {
            format!(
                "the Node.js client tests need Node.js 20 or later on PATH (`node`: {err}); \
                 install it, then run `{INSTALL}`"
            )
        })?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|major| major.parse().ok())
        .unwrap_or(0);
    if major < 20 {
        return Err(format!(
            "the Node.js client tests need Node.js 20 or later, `node --version` says {version:?}"
        ));
    }
    let dir = js_dir();
    if installed(&dir) {
        return Ok(());
    }
    // Exactly the versions of package-lock.json, as CI installs them.
    let output = Command::new("npm")
        .args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(&dir)
        .output()
        .await
        .map_err(|err| {
            format!(
                "tests/js/node_modules is missing or stale and `npm` could not run ({err}); run `{INSTALL}`"
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "tests/js/node_modules is missing or stale and `npm ci` failed ({}); run `{INSTALL}`\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    if !installed(&dir) {
        return Err(format!(
            "`npm ci` left tests/js/node_modules without the packages of package-lock.json; run `{INSTALL}`"
        ));
    }
    Ok(())
}

/// Whether `node_modules` holds every package of `package-lock.json`, at its version.
fn installed(dir: &Path) -> bool {
    let read = |path: PathBuf| -> Option<Value> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    };
    let Some(lock) = read(dir.join("package-lock.json")) else {
        return false;
    };
    let Some(packages) = lock["packages"].as_object() else {
        return false;
    };
    packages
        .iter()
        .filter(|(path, _)| path.starts_with("node_modules/"))
        .all(|(path, locked)| {
            read(dir.join(path).join("package.json"))
                .is_some_and(|package| package["version"] == locked["version"])
        })
}

/// The Chromium the browser tests drive: `$CHROMIUM`, else `/usr/bin/chromium`. None when
/// it is not installed; then a browser test is skipped, unless `PRIMA_REQUIRE_BROWSER` is
/// set (as `.ci/run` sets it), when it fails.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("PRIMA_REQUIRE_BROWSER").is_none(),
        "PRIMA_REQUIRE_BROWSER is set and there is no Chromium at {} (install Debian's \
         `chromium` package, or set CHROMIUM)",
        path.display()
    );
    eprintln!(
        "skipped: no Chromium at {} (install Debian's `chromium` package, or set CHROMIUM)",
        path.display()
    );
    None
}

/// `node tests/js/<script> <args>`, its stdout and stderr piped, killed if dropped.
pub fn script(script: &str, args: &[&str]) -> tokio::process::Child {
    let dir = js_dir();
    Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .current_dir(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting node")
}

/// Waits (up to `timeout`) until the child prints `line` on stderr, and returns a task
/// that collects the rest of its stderr (with what came before) for the test's messages.
/// Panics with everything the child printed when it ends or times out first.
pub async fn until_stderr_line(
    child: &mut tokio::process::Child,
    line: &str,
    timeout: std::time::Duration,
) -> tokio::task::JoinHandle<String> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut early = Vec::new();
    let seen = tokio::time::timeout(timeout, async {
        while let Some(next) = stderr.next_line().await.expect("reading stderr") {
            if next == line {
                return true;
            }
            early.push(next);
        }
        false
    })
    .await;
    if seen != Ok(true) {
        let mut stdout = String::new();
        let _ = child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut stdout)
            .await;
        panic!(
            "the script did not print {line:?} ({seen:?}, {:?})\nstdout:\n{stdout}\nstderr:\n{}",
            child.try_wait(),
            early.join("\n")
        );
    }
    tokio::spawn(async move {
        let mut rest = early;
        while let Ok(Some(next)) = stderr.next_line().await {
            rest.push(next);
        }
        rest.join("\n")
    })
}

/// Waits (up to `timeout`) for a client script to end, fails the test with everything it
/// printed unless it exits 0, and returns its stdout. `stderr` is what
/// [`until_stderr_line`] keeps collecting, when the test read the start of it.
pub async fn finish(
    script: &str,
    child: tokio::process::Child,
    stderr: Option<tokio::task::JoinHandle<String>>,
    timeout: std::time::Duration,
) -> String {
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not exit within {timeout:?}"))
        .expect("waiting for node");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = match stderr {
        Some(rest) => rest.await.expect("reading stderr"),
        None => String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        output.status.success(),
        "{script} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    stdout
}

/// The one JSON line a client script printed.
pub fn json_line(script: &str, stdout: &str) -> Value {
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|err| panic!("{script}: not one JSON line ({err}): {stdout}"))
}

/// Runs `node tests/js/<script> <args>` to its end (at most `timeout`), fails the test
/// with everything it printed unless it exits 0, and returns the one JSON line it printed
/// on stdout.
pub async fn run_json(script: &str, args: &[&str], timeout: std::time::Duration) -> Value {
    let stdout = finish(script, self::script(script, args), None, timeout).await;
    json_line(script, &stdout)
}
