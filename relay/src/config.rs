//! The relay's settings: flags or environment variables, validated once (pure).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use hyper::Uri;
use tasksub_client::{Client, ClientBuilder, MAX_BUFFERED_LIMIT};

/// The variable of the relay's log filter (`tracing_subscriber`'s `EnvFilter` syntax; default `info`).
pub const LOG_FILTER_VAR: &str = "RUST_LOG";

/// The settings the relay reads from the environment beside its flags' (most through the client), shown
/// after the flags in `-h` and `--help`. `help_names_every_setting_the_relay_reads` keeps it complete.
const ENVIRONMENT_HELP: &str = "\
Also read from the environment:
  TASKSUB_QUEUE_PREFIX           the stack's output QueuePrefix (default tasksub-): the queue is
                                 <prefix><task id>
  TASKSUB_TABLE                  the stack's output TableName: wait until the task's record is READY
                                 (subscribed) before relaying; unset: relay as soon as the queue exists
  TASKSUB_QUEUE_FIFO             true when the stack's topics are SNS FIFO topics (queue <prefix><task
                                 id>.fifo); default false
  ECS_CONTAINER_METADATA_URI_V4  set by ECS in every container (Fargate 1.4+, EC2 agent 1.39+): how the
                                 relay learns its task ID; outside ECS, set it to a task metadata
                                 endpoint
  RUST_LOG                       log filter (default info)
  AWS_REGION, AWS_ENDPOINT_URL, ...  the AWS SDK's own settings (ECS sets the region and the task
                                 role's credentials)";

/// Consume this ECS task's tasksub queue and POST each message to an app on localhost.
///
/// Every flag can also be set through the environment variable shown. Exit status: 0 clean drain,
/// 1 internal error, 2 bad configuration, 3 discovery or queue wait failed, 4 the app never became
/// healthy within --app-wait, 5 the health listener could not be bound.
#[derive(Debug, Clone, Parser)]
#[command(name = "tasksub-relay", version, after_help = ENVIRONMENT_HELP)]
pub struct Args {
    /// Where each message is POSTed; loopback only (127.0.0.0/8, ::1 or localhost), plain http.
    #[arg(long, env = "TASKSUB_RELAY_TARGET")]
    pub target: Option<String>,
    /// GET this URL until it answers 2xx before consuming (loopback only). Unset: do not wait.
    #[arg(long, env = "TASKSUB_RELAY_APP_HEALTH")]
    pub app_health: Option<String>,
    /// Give up (exit 4) when the app is not healthy after this long; 0 waits forever.
    #[arg(long, env = "TASKSUB_RELAY_APP_WAIT", default_value = "0", value_parser = parse_duration)]
    pub app_wait: Duration,
    /// Address of the relay's own health endpoint (`GET /healthz`: 200 only while consuming).
    #[arg(long, env = "TASKSUB_RELAY_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Deliveries in flight at once.
    #[arg(long, env = "TASKSUB_RELAY_CONCURRENCY", default_value_t = 10)]
    pub concurrency: usize,
    /// Most messages held beyond one per delivery: received ahead while every delivery is busy, so
    /// the app never waits for SQS (the relay holds fewer when fewer would be delivered before their
    /// first heartbeat). Default 50 per delivery in flight; 0 holds no more than free deliveries.
    #[arg(long, env = "TASKSUB_RELAY_MAX_BUFFERED")]
    pub max_buffered: Option<usize>,
    /// Longest wait for the app's answer to one POST (headers and body).
    #[arg(long, env = "TASKSUB_RELAY_REQUEST_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Messages with a larger body are not delivered (left for redelivery, then the DLQ).
    #[arg(long, env = "TASKSUB_RELAY_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Visibility timeout of each receive, renewed while a delivery is in flight.
    #[arg(long, env = "TASKSUB_RELAY_VISIBILITY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub visibility_timeout: Duration,
    /// After SIGTERM, how long in-flight deliveries may take before their messages are returned.
    #[arg(long, env = "TASKSUB_RELAY_DRAIN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// How long to wait for the task's queue (and READY when TASKSUB_TABLE is set).
    #[arg(long, env = "TASKSUB_RELAY_QUEUE_WAIT", default_value = "120s", value_parser = parse_duration)]
    pub queue_wait: Duration,
    /// How long one message may be held while the app answers 429/503, before it is left for redelivery.
    #[arg(long, env = "TASKSUB_RELAY_BACKPRESSURE_LIMIT", default_value = "60s", value_parser = parse_duration)]
    pub backpressure_limit: Duration,
    /// Attempts of one delivery when the app cannot be reached (connection refused or reset).
    #[arg(long, env = "TASKSUB_RELAY_CONNECT_ATTEMPTS", default_value_t = 3)]
    pub connect_attempts: u32,
    /// After a failed delivery (other status, timeout), keep the message hidden this long before it is
    /// redelivered, doubling per receive up to 15 min. Unset: it reappears when its visibility ends.
    #[arg(long, env = "TASKSUB_RELAY_FAILURE_BACKOFF", value_parser = parse_duration)]
    pub failure_backoff: Option<Duration>,
    /// Only ask the relay's own health endpoint (at --listen) and exit 0 when it answers 200, else 1:
    /// the container health check command (the image has no shell or curl).
    #[arg(long)]
    pub check_health: bool,
    /// Local runs (feature `local`): serve a stand-in task metadata endpoint for this task ARN instead
    /// of reading ECS_CONTAINER_METADATA_URI_V4.
    #[cfg(feature = "local")]
    #[arg(long)]
    pub task_arn: Option<String>,
}

/// A configuration error (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("bad configuration: {setting}: {reason}")]
pub struct ConfigError {
    /// The flag or variable at fault.
    pub setting: &'static str,
    /// Why.
    pub reason: String,
}

fn bad(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        reason: reason.into(),
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The POST target.
    pub target: Uri,
    /// The app's health URL, if any.
    pub app_health: Option<Uri>,
    /// Limit of the wait for the app (`None`: forever).
    pub app_wait: Option<Duration>,
    /// The relay's health listener.
    pub listen: SocketAddr,
    /// Deliveries at once.
    pub concurrency: usize,
    /// Messages held ahead of the deliveries (`None`: the client's default).
    pub max_buffered: Option<usize>,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Largest body delivered.
    pub max_body_bytes: usize,
    /// Visibility timeout.
    pub visibility_timeout: Duration,
    /// Drain window.
    pub drain_timeout: Duration,
    /// Queue wait limit.
    pub queue_wait: Duration,
    /// Longest hold of one message under backpressure.
    pub backpressure_limit: Duration,
    /// Attempts when the app is unreachable.
    pub connect_attempts: u32,
    /// Redelivery delay after a failure.
    pub failure_backoff: Option<Duration>,
}

impl Config {
    /// Validates the arguments.
    pub fn from_args(args: &Args) -> Result<Self, ConfigError> {
        let target = args
            .target
            .as_deref()
            .ok_or_else(|| bad("TASKSUB_RELAY_TARGET", "required (e.g. http://127.0.0.1:8080/messages)"))?;
        let target = loopback_url("TASKSUB_RELAY_TARGET", target)?;
        let app_health = match args.app_health.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(u) => Some(loopback_url("TASKSUB_RELAY_APP_HEALTH", u)?),
            None => None,
        };
        check_limits(args)?;
        // The health endpoint is for the container's own health check (which runs inside the task): it is
        // never exposed beyond loopback, whatever TASKSUB_RELAY_LISTEN says.
        if !args.listen.ip().is_loopback() {
            let reason = format!(
                "{} is not a loopback address: the health endpoint binds 127.0.0.1 or [::1] only",
                args.listen
            );
            return Err(bad("TASKSUB_RELAY_LISTEN", reason));
        }
        Ok(Self {
            target,
            app_health,
            app_wait: (!args.app_wait.is_zero()).then_some(args.app_wait),
            listen: args.listen,
            concurrency: args.concurrency,
            max_buffered: args.max_buffered,
            request_timeout: args.request_timeout,
            max_body_bytes: args.max_body_bytes,
            visibility_timeout: args.visibility_timeout,
            drain_timeout: args.drain_timeout,
            queue_wait: args.queue_wait,
            backpressure_limit: args.backpressure_limit,
            connect_attempts: args.connect_attempts,
            failure_backoff: args.failure_backoff,
        })
    }
}

impl Config {
    /// The client the relay consumes with: these settings, the rest (queue prefix, table, FIFO, metadata
    /// endpoint) from the environment.
    pub fn client_builder(&self) -> ClientBuilder {
        let mut builder = Client::builder()
            .max_concurrency(self.concurrency)
            .visibility_timeout(self.visibility_timeout)
            .drain_timeout(self.drain_timeout)
            .wait_limit(self.queue_wait)
            .handle_sigterm(false);
        if let Some(n) = self.max_buffered {
            builder = builder.max_buffered(n);
        }
        match self.failure_backoff {
            Some(b) => builder.retry_backoff(b, Duration::from_secs(900)),
            None => builder,
        }
    }
}

/// What the relay says about a client error: the client's own words, except where they advise a
/// `ClientBuilder` call, which a relay user cannot make; then the environment variable to set.
pub fn client_error_message(e: &tasksub_client::Error) -> String {
    if e.is_missing_env() && e.setting() == Some(tasksub_client::METADATA_URI_VAR) {
        return format!(
            "{var} is not set: ECS sets it in every container of a task (Fargate platform 1.4+, EC2 agent \
             1.39+); outside ECS, set {var} to a task metadata endpoint",
            var = tasksub_client::METADATA_URI_VAR
        );
    }
    aws_smithy_types::error::display::DisplayErrorContext(e).to_string()
}

/// The numeric limits, one row per setting; the first one broken is the error.
fn check_limits(args: &Args) -> Result<(), ConfigError> {
    let backoff_ok = args
        .failure_backoff
        .is_none_or(|b| !b.is_zero() && b <= Duration::from_secs(900));
    let visibility = Duration::from_secs(1)..=Duration::from_secs(12 * 3600);
    #[rustfmt::skip]
    let rows = [
        ((1..=1000).contains(&args.concurrency), "TASKSUB_RELAY_CONCURRENCY", "must be 1..=1000"),
        (args.max_buffered.is_none_or(|n| n <= MAX_BUFFERED_LIMIT), "TASKSUB_RELAY_MAX_BUFFERED", "must be at most 100000"),
        (!args.request_timeout.is_zero(), "TASKSUB_RELAY_REQUEST_TIMEOUT", "must be above zero"),
        (args.max_body_bytes > 0, "TASKSUB_RELAY_MAX_BODY_BYTES", "must be above zero"),
        (visibility.contains(&args.visibility_timeout), "TASKSUB_RELAY_VISIBILITY_TIMEOUT", "must be 1 s..=12 h"),
        (!args.queue_wait.is_zero(), "TASKSUB_RELAY_QUEUE_WAIT", "must be above zero"),
        (args.connect_attempts >= 1, "TASKSUB_RELAY_CONNECT_ATTEMPTS", "must be at least 1"),
        (backoff_ok, "TASKSUB_RELAY_FAILURE_BACKOFF", "must be above zero and at most 15 min"),
    ];
    match rows.into_iter().find(|(ok, ..)| !ok) {
        Some((_, setting, reason)) => Err(bad(setting, reason)),
        None => Ok(()),
    }
}

/// Parses `http://<loopback host>[:port]/path`; anything else is refused.
pub fn loopback_url(setting: &'static str, url: &str) -> Result<Uri, ConfigError> {
    let uri: Uri = url
        .trim()
        .parse()
        .map_err(|e| bad(setting, format!("not a URL ({e}): {url:?}")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => {
            return Err(bad(
                setting,
                format!("scheme {other:?} is not supported: use plain http to a loopback address"),
            ))
        }
        None => {
            return Err(bad(
                setting,
                format!("an absolute http:// URL is required, got {url:?}"),
            ))
        }
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(bad(setting, "credentials in the URL are not allowed"));
    }
    let host = uri.host().unwrap_or_default();
    if !is_loopback_host(host) {
        return Err(bad(
            setting,
            format!(
                "only loopback targets are allowed (127.0.0.0/8, [::1] or localhost), got host {host:?}: \
                 the relay delivers to an app in its own task"
            ),
        ));
    }
    Ok(pin_localhost(uri))
}

/// `localhost` becomes `127.0.0.1` once, here: the relay never resolves a name when it connects, so no
/// resolver configuration (hosts file, search domains) can send a message anywhere but loopback.
fn pin_localhost(uri: Uri) -> Uri {
    if !uri.host().is_some_and(|h| h.eq_ignore_ascii_case("localhost")) {
        return uri;
    }
    let authority = match uri.port_u16() {
        Some(port) => format!("127.0.0.1:{port}"),
        None => "127.0.0.1".to_owned(),
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    Uri::builder()
        .scheme("http")
        .authority(authority.as_str())
        .path_and_query(path)
        .build()
        .expect("an http URL with a loopback address")
}

fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `15`, `15s`, `500ms`, `2m`, `0.5s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (e.g. 15s, 500ms, 2m)"))?;
    if !value.is_finite() || value < 0.0 || value * scale > 86_400.0 {
        return Err(format!("out of range: {text:?}"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    use clap::CommandFactory;

    use super::*;

    fn args(target: &str) -> Args {
        Args::parse_from(["tasksub-relay", "--target", target])
    }

    #[test]
    fn loopback_targets_are_accepted() {
        for url in [
            "http://127.0.0.1:8080/messages",
            "http://localhost:3000/",
            "http://LOCALHOST/x",
            "http://[::1]:8080/m",
            "http://127.1.2.3/",
        ] {
            assert!(Config::from_args(&args(url)).is_ok(), "{url}");
        }
        // localhost is resolved once, at start, to 127.0.0.1: no name lookup at connect time
        let c = Config::from_args(&args("http://LocalHost:3000/messages?x=1")).unwrap();
        assert_eq!(c.target.to_string(), "http://127.0.0.1:3000/messages?x=1");
        assert_eq!(
            Config::from_args(&args("http://localhost")).unwrap().target.to_string(),
            "http://127.0.0.1/"
        );
        let mut a = args("http://127.0.0.1/");
        a.app_health = Some("http://localhost:8080/health".into());
        assert_eq!(
            Config::from_args(&a).unwrap().app_health.unwrap().to_string(),
            "http://127.0.0.1:8080/health"
        );
    }

    #[test]
    fn the_health_listener_is_loopback_only() {
        for listen in ["0.0.0.0:8081", "[::]:8081", "10.0.0.5:8081"] {
            let mut a = args("http://127.0.0.1/");
            a.listen = listen.parse().unwrap();
            let e = Config::from_args(&a).unwrap_err();
            assert_eq!(e.setting, "TASKSUB_RELAY_LISTEN", "{listen}: {e}");
        }
        for listen in ["127.0.0.1:8081", "[::1]:9000", "127.0.0.2:0"] {
            let mut a = args("http://127.0.0.1/");
            a.listen = listen.parse().unwrap();
            assert!(Config::from_args(&a).is_ok(), "{listen}");
        }
    }

    #[test]
    fn other_targets_are_configuration_errors() {
        for url in [
            "http://10.0.0.1:8080/messages",
            "http://example.com/",
            "http://169.254.170.2/v4",
            "https://127.0.0.1/",
            "127.0.0.1:8080/messages",
            "http://user:pw@127.0.0.1/",
            "http://localhost.example.com/",
            "http://0.0.0.0:8080/",
        ] {
            let e = Config::from_args(&args(url)).unwrap_err();
            assert_eq!(e.setting, "TASKSUB_RELAY_TARGET", "{url}: {e}");
        }
        let e = Config::from_args(&args("http://example.com/")).unwrap_err();
        assert!(e.to_string().contains("only loopback targets"), "{e}");
        let mut a = args("http://127.0.0.1/");
        a.app_health = Some("http://db.internal/health".into());
        assert_eq!(Config::from_args(&a).unwrap_err().setting, "TASKSUB_RELAY_APP_HEALTH");
        a.target = None;
        assert_eq!(Config::from_args(&a).unwrap_err().setting, "TASKSUB_RELAY_TARGET");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("15").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("0.5s").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn limits_are_checked() {
        let mut a = args("http://127.0.0.1/");
        a.concurrency = 0;
        assert_eq!(Config::from_args(&a).unwrap_err().setting, "TASKSUB_RELAY_CONCURRENCY");
        let mut a = args("http://127.0.0.1/");
        a.visibility_timeout = Duration::from_millis(10);
        assert_eq!(
            Config::from_args(&a).unwrap_err().setting,
            "TASKSUB_RELAY_VISIBILITY_TIMEOUT"
        );
        let mut a = args("http://127.0.0.1/");
        a.max_buffered = Some(MAX_BUFFERED_LIMIT + 1);
        assert_eq!(Config::from_args(&a).unwrap_err().setting, "TASKSUB_RELAY_MAX_BUFFERED");
        a.max_buffered = Some(0);
        assert_eq!(Config::from_args(&a).unwrap().max_buffered, Some(0));
        let c = Config::from_args(&args("http://127.0.0.1/")).unwrap();
        assert_eq!(c.max_buffered, None, "the client's default");
        assert_eq!(c.app_wait, None);
        assert_eq!(c.listen.to_string(), "127.0.0.1:8081");
    }

    fn sdk() -> aws_config::SdkConfig {
        let credentials = aws_sdk_sqs::config::Credentials::new("a", "b", None, None, "test");
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(credentials))
            .build()
    }

    /// The environment variables the relay's client reads when it is built, asked for by name.
    fn variables_the_client_reads() -> BTreeSet<String> {
        let asked = Arc::new(Mutex::new(BTreeSet::new()));
        let log = asked.clone();
        let lookup = move |name: &str| {
            log.lock().unwrap().insert(name.to_owned());
            let value = match name {
                "ECS_CONTAINER_METADATA_URI_V4" => "http://169.254.170.2/v4/abc",
                "TASKSUB_QUEUE_PREFIX" => "tasksub-x-",
                "TASKSUB_TABLE" => "records",
                "TASKSUB_QUEUE_FIFO" => "false",
                _ => return None,
            };
            Some(value.to_owned())
        };
        let cfg = Config::from_args(&args("http://127.0.0.1/")).unwrap();
        cfg.client_builder()
            .env_lookup(lookup)
            .build(&sdk())
            .expect("the client builds");
        let asked = asked.lock().unwrap().clone();
        asked
    }

    /// The words of a help text that look like environment variables.
    fn variables_named_in(help: &str) -> BTreeSet<String> {
        help.split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .filter(|w| w.len() > 2)
            .map(str::to_owned)
            .collect()
    }

    /// Issue #26: `--help` omitted the four variables the relay reads through the client. Every setting
    /// read from the environment (the flags' variables, the log filter, and each variable the client
    /// asks for while the relay builds it) must be named in `-h` and in `--help`.
    #[test]
    fn help_names_every_setting_the_relay_reads() {
        // GIVEN every variable the relay reads
        let mut read = variables_the_client_reads();
        for four in [
            "TASKSUB_QUEUE_PREFIX",
            "TASKSUB_TABLE",
            "TASKSUB_QUEUE_FIFO",
            "ECS_CONTAINER_METADATA_URI_V4",
        ] {
            assert!(read.contains(four), "the client was asked for {read:?}, not {four}");
        }
        let command = Args::command();
        read.extend(
            command
                .get_arguments()
                .filter_map(|a| a.get_env())
                .map(|v| v.to_string_lossy().into_owned()),
        );
        read.insert(LOG_FILTER_VAR.to_owned());
        // WHEN the help is rendered, short and long
        for (which, help) in [
            ("-h", command.clone().render_help().to_string()),
            ("--help", command.clone().render_long_help().to_string()),
        ] {
            // THEN each one is named
            let named = variables_named_in(&help);
            let missing: Vec<_> = read.difference(&named).collect();
            assert!(
                missing.is_empty(),
                "`tasksub-relay {which}` does not name {missing:?}:\n{help}"
            );
        }
    }

    /// The client's advice for a missing metadata endpoint is a `ClientBuilder` call; a relay user gets
    /// the variable to set instead.
    #[test]
    fn a_missing_metadata_endpoint_names_the_variable_not_the_builder() {
        let cfg = Config::from_args(&args("http://127.0.0.1/")).unwrap();
        let e = cfg.client_builder().env_lookup(|_| None).build(&sdk()).unwrap_err();
        assert!(e.is_missing_env(), "{e}");
        let text = client_error_message(&e);
        assert!(text.contains("ECS_CONTAINER_METADATA_URI_V4 is not set"), "{text}");
        assert!(!text.contains("ClientBuilder"), "{text}");
        let other = cfg
            .client_builder()
            .env_lookup(|name| (name == "ECS_CONTAINER_METADATA_URI_V4").then(|| "ftp://x".to_owned()))
            .build(&sdk())
            .unwrap_err();
        assert!(
            client_error_message(&other).contains("ECS_CONTAINER_METADATA_URI_V4"),
            "{other}"
        );
    }
}
