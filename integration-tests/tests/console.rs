//! The gateway's web console in a real headless browser: Debian's `chromium`, driven over
//! WebDriver by `chromedriver` and fantoccini, against a real `netsvc exchange`, the
//! calculator example, the publisher example and `netsvc gateway` behind HTTP Basic
//! authentication. The console must list the services, call `multiply(6, 7)` from its form
//! and show `42`, show a failure, show live reports of a subscription, and drop a service
//! whose process is killed. A screenshot is kept under the target directory.
//!
//! Every process listens on 127.0.0.1 with a free port and is killed by PID when the test
//! ends, passed or not (Chromium, a child of chromedriver, by the PIDs of the processes that
//! use the test's own profile directory); every wait is bounded. Without `/usr/bin/chromium`
//! and `/usr/bin/chromedriver` the test prints why and passes, unless
//! `NETSVC_REQUIRE_BROWSER=1` (CI as root, which installs them), which makes it fail.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use netsvc_integration_tests::{built_beside, free_port, start_exchange, start_gateway, Process};
use serde_json::{json, Value};

const NODE: &str = env!("CARGO_BIN_EXE_node");
/// Bound of the processes' start-up lines.
const WAIT: Duration = Duration::from_secs(20);
/// Bound of each wait for the page (generous: a loaded 2-core machine, a cold browser).
const PAGE_WAIT: Duration = Duration::from_secs(30);
/// Bound of the WebDriver session's start (Chromium's first start can be slow).
const SESSION_WAIT: Duration = Duration::from_secs(60);
/// Bound of the whole browser part of the test.
const TOTAL: Duration = Duration::from_secs(240);
/// How often a wait looks at the page again.
const POLL: Duration = Duration::from_millis(100);

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether the browser test can run here: if not, says why (and panics when
/// `NETSVC_REQUIRE_BROWSER=1`, so that CI cannot skip it unnoticed).
fn browser_available(test: &str) -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let reason = format!(
        "{} missing (apt-get install -y chromium chromium-driver)",
        missing.join(" and ")
    );
    if std::env::var("NETSVC_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!("{test}: NETSVC_REQUIRE_BROWSER=1 but the browser test cannot run: {reason}");
    }
    // Straight to the standard error, past the test harness's capture: a skip must show.
    let _ = writeln!(std::io::stderr(), "skipping {test}: {reason}");
    false
}

/// chromedriver and the Chromium it starts, cleaned up when dropped: chromedriver (its own
/// process group) by PID, then every process whose command line names this test's profile
/// directory (Chromium and its helpers) by PID, then the directory.
struct Browser {
    driver: Process,
    port: u16,
    profile: PathBuf,
}

impl Browser {
    /// chromedriver on a free port, ready for sessions.
    fn start() -> Browser {
        let profile = std::env::temp_dir().join(format!(
            "netsvc-console-chromium-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&profile).expect("a profile directory");
        let deadline = Instant::now() + WAIT;
        loop {
            let port = free_port();
            let mut command = Command::new(CHROMEDRIVER);
            command
                .arg(format!("--port={port}"))
                .env("RUST_LOG", "error")
                .process_group(0);
            let mut driver = Process::spawn(command);
            // A port picked free a moment ago can be taken meanwhile: then try another.
            loop {
                let seen = driver.seen().join("\n");
                if seen.contains("started successfully") {
                    return Browser {
                        driver,
                        port,
                        profile,
                    };
                }
                if seen.contains("not available") || seen.contains("Exiting") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "chromedriver did not start within {WAIT:?}: {seen}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(driver);
        }
    }

    /// A WebDriver session in headless Chromium with this test's empty profile.
    async fn session(&self) -> Result<Client, String> {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    "--window-size=1440,1200",
                    format!("--user-data-dir={}", self.profile.display()),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let webdriver = format!("http://127.0.0.1:{}", self.port);
        let mut builder = ClientBuilder::new(connector);
        builder.capabilities(caps);
        tokio::time::timeout(SESSION_WAIT, builder.connect(&webdriver))
            .await
            .map_err(|_| format!("no WebDriver session within {SESSION_WAIT:?}"))?
            .map_err(|e| format!("WebDriver session: {e}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = self.driver.pid();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{group}")])
            .status();
        let marker = self.profile.to_string_lossy().into_owned();
        for pid in processes_naming(&marker) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        // The processes may take a moment to go before their directory can.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !processes_naming(&marker).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The PIDs of the processes whose command line contains `marker`.
fn processes_naming(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(marker))
                .unwrap_or(false)
        })
        .collect()
}

/// Runs `script` (a function body; `arguments` are `args`) in the page until it returns
/// something other than `null`, `false` or `0`, for at most `limit`; what it returned.
async fn wait_for(
    client: &Client,
    what: &str,
    script: &str,
    args: Vec<Value>,
    limit: Duration,
) -> Result<Value, String> {
    let deadline = Instant::now() + limit;
    let mut last = Value::Null;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome = tokio::time::timeout(left.max(POLL), client.execute(script, args.clone()));
        match outcome.await {
            Ok(Ok(v)) if !matches!(v, Value::Null | Value::Bool(false)) && v != json!(0) => {
                return Ok(v)
            }
            Ok(Ok(v)) => last = v,
            Ok(Err(e)) => last = json!(e.to_string()),
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            return Err(format!("{what}: not within {limit:?} (last answer {last})"));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The element `css`, once it is there (bounded).
async fn element(client: &Client, css: &str) -> Result<fantoccini::elements::Element, String> {
    wait_for(
        client,
        &format!("element {css}"),
        "return document.querySelector(arguments[0]) !== null;",
        vec![json!(css)],
        PAGE_WAIT,
    )
    .await?;
    client
        .find(Locator::Css(css))
        .await
        .map_err(|e| format!("{css}: {e}"))
}

/// Clicks the element `css`.
async fn click(client: &Client, css: &str) -> Result<(), String> {
    element(client, css)
        .await?
        .click()
        .await
        .map_err(|e| format!("click {css}: {e}"))
}

/// Replaces the text of the input `css` with `text`.
async fn type_into(client: &Client, css: &str, text: &str) -> Result<(), String> {
    let input = element(client, css).await?;
    input
        .clear()
        .await
        .map_err(|e| format!("clear {css}: {e}"))?;
    input
        .send_keys(text)
        .await
        .map_err(|e| format!("type into {css}: {e}"))
}

/// The text of `css` once it equals `want` (bounded).
async fn text_becomes(client: &Client, css: &str, want: &str) -> Result<(), String> {
    wait_for(
        client,
        &format!("{css} showing {want:?}"),
        "const e = document.querySelector(arguments[0]);
         return e !== null && e.textContent.trim() === arguments[1];",
        vec![json!(css), json!(want)],
        PAGE_WAIT,
    )
    .await
    .map(|_| ())
}

/// Saves a screenshot of the page at `path`.
async fn screenshot(client: &Client, path: &Path) -> Result<(), String> {
    let png = tokio::time::timeout(PAGE_WAIT, client.screenshot())
        .await
        .map_err(|_| "screenshot: timed out".to_owned())?
        .map_err(|e| format!("screenshot: {e}"))?;
    std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))?;
    // Past the test harness's capture: the artifact's path shows on a passing run too.
    let _ = writeln!(std::io::stderr(), "console screenshot: {}", path.display());
    Ok(())
}

/// The processes the console looks at.
struct Mesh {
    _exchange: Process,
    _calculator: Process,
    publisher: Process,
    _gateway: Process,
    /// The console's URL with the credentials the gateway wants.
    url: String,
    _passwords: Scratch,
}

/// A file removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn mesh() -> Mesh {
    let netsvc = built_beside(NODE, "netsvc");
    let (mut exchange, addr) = start_exchange(&netsvc, WAIT);
    let calculator = Process::start(
        &built_beside(NODE, "examples/calculator"),
        &["--connect", &addr, "--serve"],
    );
    let mut publisher = Process::start(
        &built_beside(NODE, "examples/publisher"),
        &["--connect", &addr, "--interval", "0.3"],
    );
    publisher.expect_line("publisher: running as", WAIT);
    exchange.expect_count("connected:", 2, WAIT);
    let passwords = Scratch(
        std::env::temp_dir().join(format!("netsvc-console-passwords-{}", std::process::id())),
    );
    std::fs::write(&passwords.0, "ada:lovelace\n").expect("a password file");
    let file = passwords.0.to_string_lossy().into_owned();
    let (gateway, url) = start_gateway(&netsvc, &addr, &["--basic-auth-file", &file], WAIT);
    let url = url.replacen("http://", "http://ada:lovelace@", 1) + "/";
    Mesh {
        _exchange: exchange,
        _calculator: calculator,
        publisher,
        _gateway: gateway,
        url,
        _passwords: passwords,
    }
}

/// What the test does in the browser; the first thing that does not happen in time is the
/// error.
async fn scenario(client: &Client, mesh: &mut Mesh, shot: &Path) -> Result<(), String> {
    tokio::time::timeout(PAGE_WAIT, client.goto(&mesh.url))
        .await
        .map_err(|_| "the console did not load in time".to_owned())?
        .map_err(|e| format!("goto {}: {e}", mesh.url))?;
    // The services, live from the registry stream (behind Basic authentication).
    text_becomes(client, "#registry-state", "live").await?;
    element(client, "tr.service[data-name='calculator']").await?;
    element(client, "tr.service[data-name='publisher']").await?;
    text_becomes(
        client,
        "tr.service[data-name='calculator'] td.groups",
        "arithmetic",
    )
    .await?;
    // The nodes and their links, with counters.
    element(
        client,
        "#nodes .node[data-node='exchange'] tr.link td.frames",
    )
    .await?;

    // Open the calculator and call multiply(6, 7) from its form.
    click(client, "tr.service[data-name='calculator']").await?;
    text_becomes(client, "#service-title", "calculator").await?;
    let multiply = "form.method[data-method='multiply']";
    type_into(client, &format!("{multiply} input[name='a']"), "6").await?;
    type_into(client, &format!("{multiply} input[name='b']"), "7").await?;
    click(client, &format!("{multiply} button.call")).await?;
    text_becomes(client, &format!("{multiply} .outcome.ok pre.result"), "42").await?;
    // A failure shows its code, description and origin.
    let divide = "form.method[data-method='divide']";
    type_into(client, &format!("{divide} input[name='a']"), "1").await?;
    type_into(client, &format!("{divide} input[name='b']"), "0").await?;
    click(client, &format!("{divide} button.call")).await?;
    text_becomes(
        client,
        &format!("{divide} .outcome.failed dd.failure-code"),
        "100",
    )
    .await?;
    text_becomes(
        client,
        &format!("{divide} dd.failure-description"),
        "division by zero",
    )
    .await?;
    text_becomes(client, &format!("{divide} dd.failure-origin"), "calculator").await?;

    // Subscribe to the publisher's system.* reports: system.time comes live (never cached).
    type_into(client, "#sub-service", "publisher").await?;
    type_into(client, "#sub-pattern", "system.*").await?;
    click(client, "#sub-start").await?;
    wait_for(
        client,
        "three live system.time reports",
        "return document.querySelectorAll(
             '#reports li.report[data-subject=\"system.time\"]').length >= 3;",
        Vec::new(),
        PAGE_WAIT,
    )
    .await?;
    client
        .execute("window.scrollTo(0, 0);", Vec::new())
        .await
        .map_err(|e| format!("scroll: {e}"))?;
    screenshot(client, shot).await?;

    // The publisher's process is killed: it leaves the list.
    mesh.publisher.kill_hard();
    wait_for(
        client,
        "the killed publisher leaving the list",
        "return document.querySelector('tr.service[data-name=\"publisher\"]') === null;",
        Vec::new(),
        PAGE_WAIT,
    )
    .await?;
    element(client, "tr.service[data-name='calculator']").await?;
    Ok(())
}

#[test]
fn the_console_lists_calls_subscribes_and_follows_the_mesh_in_chromium() {
    let test = "the_console_lists_calls_subscribes_and_follows_the_mesh_in_chromium";
    if !browser_available(test) {
        return;
    }
    let mut mesh = mesh();
    let browser = Browser::start();
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console.png");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let outcome = runtime.block_on(async {
        let client = browser.session().await?;
        let outcome = tokio::time::timeout(TOTAL, scenario(&client, &mut mesh, &shot))
            .await
            .unwrap_or_else(|_| Err(format!("the scenario took over {TOTAL:?}")));
        if outcome.is_err() {
            let failed = shot.with_file_name("console-failed.png");
            let _ = screenshot(&client, &failed).await;
            if let Ok(Ok(page)) = tokio::time::timeout(PAGE_WAIT, client.source()).await {
                println!("page at the failure:\n{page}");
            }
        }
        // Ends the session: chromedriver quits Chromium (the Browser's drop makes sure).
        let _ = tokio::time::timeout(PAGE_WAIT, client.close()).await;
        outcome
    });
    drop(browser);
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
