//! Discovery: which task am I? One HTTP GET to the ECS task metadata endpoint v4.
//!
//! Resolution order of the endpoint: [`crate::ClientBuilder::metadata_uri`], then the environment
//! variable `ECS_CONTAINER_METADATA_URI_V4` (injected by ECS into every container: Fargate platform
//! 1.4+, EC2 agent 1.39+). The client asks `{uri}/task` and reads `TaskARN`; if it was pointed at a
//! container document (`{uri}` itself) it falls back to the Docker label `com.amazonaws.ecs.task-arn`.
//!
//! The endpoint is plain HTTP on a link-local address, so the client is hyper's HTTP/1 client with no
//! TLS; each attempt has a connect timeout and a whole-response read timeout, and connection errors,
//! timeouts and 5xx answers are retried a few times with backoff.

use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use tasksub_core::naming::TaskArn;

use crate::backoff::Backoff;
use crate::error::{Error, Kind};

/// The environment variable ECS sets to the metadata endpoint of this container.
pub const METADATA_URI_VAR: &str = "ECS_CONTAINER_METADATA_URI_V4";
/// Docker label holding the task ARN in a container metadata document.
pub const TASK_ARN_LABEL: &str = "com.amazonaws.ecs.task-arn";
/// Default time to establish the TCP connection to the metadata endpoint.
pub const METADATA_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time to receive the whole response once connected.
pub const METADATA_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of attempts (the first one included).
pub const METADATA_ATTEMPTS: u32 = 3;
/// Delay between attempts.
const METADATA_RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(2));
/// Largest metadata response accepted. A task document is a few KiB; anything above this is not one,
/// and is reported at once ([`crate::Error::is_metadata_invalid`]), never retried.
pub const METADATA_MAX_BYTES: usize = 1 << 20;

/// How to reach the metadata endpoint.
#[derive(Debug, Clone)]
pub(crate) struct MetadataEndpoint {
    pub base: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub attempts: u32,
}

/// Why one attempt failed.
enum Attempt {
    Retryable {
        status: Option<u16>,
        timed_out: bool,
        source: Option<crate::BoxError>,
    },
    Fatal(Error),
}

impl MetadataEndpoint {
    /// `{base}/task`.
    pub(crate) fn task_uri(&self) -> String {
        format!("{}/task", self.base.trim_end_matches('/'))
    }

    /// `{base}/task` as a URI; only `http://host...` is accepted (the endpoint has no TLS).
    fn uri(&self) -> Result<hyper::Uri, Error> {
        self.task_uri()
            .parse()
            .ok()
            .filter(|u: &hyper::Uri| u.scheme_str() == Some("http") && u.host().is_some())
            .ok_or_else(|| Error::invalid_config(METADATA_URI_VAR, format!("{:?} is not an http:// URI", self.base)))
    }

    /// Checks the endpoint URI without any I/O.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        self.uri().map(|_| ())
    }

    /// Fetches `{base}/task` and returns the task ARN (as given, and parsed), retrying transient
    /// failures.
    pub(crate) async fn task_arn(&self) -> Result<(String, TaskArn), Error> {
        let uri_text = self.task_uri();
        let uri = self.uri()?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(self.connect_timeout));
        let client: HttpClient<HttpConnector, Empty<Bytes>> =
            HttpClient::builder(TokioExecutor::new()).build(connector);
        let mut rng = fastrand::Rng::new();
        let attempts = self.attempts.max(1);
        for attempt in 1..=attempts {
            match self.once(&client, &uri).await {
                Ok(body) => return parse_task_arn(&body).map_err(|e| e.at(&uri_text)),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retryable {
                    status,
                    timed_out,
                    source,
                }) if attempt == attempts => {
                    let e = Error::new(Kind::MetadataUnreachable {
                        uri: uri_text,
                        attempts,
                        status,
                        timed_out,
                    });
                    return Err(match source {
                        Some(s) => e.with_source(s),
                        None => e,
                    });
                }
                Err(Attempt::Retryable { status, timed_out, .. }) => {
                    tracing::debug!(action = "metadata", attempt, ?status, timed_out, "task metadata retry");
                    tokio::time::sleep(pause_after(attempt, &mut rng)).await;
                }
            }
        }
        unreachable!("the last attempt always returns")
    }

    async fn once(&self, client: &HttpClient<HttpConnector, Empty<Bytes>>, uri: &hyper::Uri) -> Result<Bytes, Attempt> {
        let exchange = async {
            let response = client.get(uri.clone()).await.map_err(|e| Attempt::Retryable {
                status: None,
                timed_out: false,
                source: Some(e.into()),
            })?;
            let status = response.status();
            if status.is_server_error() {
                return Err(Attempt::Retryable {
                    status: Some(status.as_u16()),
                    timed_out: false,
                    source: None,
                });
            }
            if !status.is_success() {
                return Err(Attempt::Fatal(Error::new(Kind::MetadataUnreachable {
                    uri: uri.to_string(),
                    attempts: 1,
                    status: Some(status.as_u16()),
                    timed_out: false,
                })));
            }
            read_body(response, uri).await
        };
        match tokio::time::timeout(self.read_timeout + self.connect_timeout, exchange).await {
            Ok(result) => result,
            Err(elapsed) => Err(Attempt::Retryable {
                status: None,
                timed_out: true,
                source: Some(elapsed.into()),
            }),
        }
    }
}

/// The body of a successful response, within [`METADATA_MAX_BYTES`] (a larger one is fatal).
async fn read_body(response: hyper::Response<hyper::body::Incoming>, uri: &hyper::Uri) -> Result<Bytes, Attempt> {
    let too_large = || {
        Attempt::Fatal(Error::new(Kind::MetadataInvalid {
            uri: uri.to_string(),
            reason: format!("the response is larger than the {METADATA_MAX_BYTES}-byte limit"),
        }))
    };
    let declared = response
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > METADATA_MAX_BYTES as u64) {
        return Err(too_large());
    }
    let body = Limited::new(response.into_body(), METADATA_MAX_BYTES);
    body.collect().await.map(|c| c.to_bytes()).map_err(|e| {
        if e.is::<http_body_util::LengthLimitError>() {
            too_large()
        } else {
            Attempt::Retryable {
                status: None,
                timed_out: false,
                source: Some(e),
            }
        }
    })
}

/// The pause after failed attempt `attempt` (1-based): the backoff's first step after the first failure.
fn pause_after(attempt: u32, rng: &mut fastrand::Rng) -> Duration {
    METADATA_RETRY.delay(attempt - 1, rng)
}

/// A metadata document without a usable task ARN (the URI is added by the caller).
#[derive(Debug)]
pub(crate) struct Unusable {
    reason: String,
    source: Option<crate::BoxError>,
}

impl Unusable {
    fn at(self, uri: &str) -> Error {
        let e = Error::new(Kind::MetadataInvalid {
            uri: uri.to_owned(),
            reason: self.reason,
        });
        match self.source {
            Some(s) => e.with_source(s),
            None => e,
        }
    }
}

/// Reads the task ARN from a task document (`TaskARN`) or a container document (the
/// `com.amazonaws.ecs.task-arn` label), and parses it with the shared naming contract.
pub(crate) fn parse_task_arn(body: &[u8]) -> Result<(String, TaskArn), Unusable> {
    let doc: serde_json::Value = serde_json::from_slice(body).map_err(|e| Unusable {
        reason: "the response is not JSON".into(),
        source: Some(e.into()),
    })?;
    if !doc.is_object() {
        return Err(Unusable {
            reason: "the response is not a JSON object".into(),
            source: None,
        });
    }
    let arn = doc
        .get("TaskARN")
        .and_then(|v| v.as_str())
        .or_else(|| doc.get("Labels")?.get(TASK_ARN_LABEL)?.as_str())
        .ok_or_else(|| Unusable {
            reason: format!("no TaskARN field and no {TASK_ARN_LABEL:?} label"),
            source: None,
        })?;
    match TaskArn::parse(arn) {
        Ok(parsed) => Ok((arn.to_owned(), parsed)),
        Err(e) => Err(Unusable {
            reason: format!("{arn:?} is not a task ARN"),
            source: Some(e.into()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use tasksub_core::naming::{QueueName, QueuePrefix};

    use super::*;

    fn samples() -> Vec<(String, Vec<u8>)> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/task-metadata-v4");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("fixtures/task-metadata-v4")
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn every_recorded_sample_gives_a_task_and_its_queue_name() {
        let all = samples();
        assert!(all.len() >= 11, "expected the recorded samples, found {}", all.len());
        for (name, body) in all {
            let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let expected = match doc.get("TaskARN") {
                Some(arn) => arn.as_str().unwrap().to_owned(),
                None => {
                    assert!(
                        name.contains("container-metadata"),
                        "{name}: only container documents lack TaskARN"
                    );
                    doc["Labels"][TASK_ARN_LABEL].as_str().unwrap().to_owned()
                }
            };
            let (text, arn) = parse_task_arn(&body).unwrap_or_else(|e| panic!("{name}: {}", e.reason));
            assert_eq!(text, expected, "{name}");
            assert!(expected.ends_with(&format!("/{}", arn.task_id)), "{name}");
            assert!(arn.cluster.is_some(), "{name}: every v4 sample uses the new ARN format");
            let queue = QueueName::for_task(&QueuePrefix::default(), &arn.task_id, false).unwrap();
            assert_eq!(queue.as_str(), format!("tasksub-{}", arn.task_id), "{name}");
        }
    }

    #[test]
    fn container_documents_use_the_task_arn_label() {
        let body = std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../fixtures/task-metadata-v4/fargate-container-metadata-docs.json"),
        )
        .unwrap();
        let (_, arn) = parse_task_arn(&body).unwrap();
        assert_eq!(arn.task_id.as_str(), "cd189a933e5849daa93386466019ab50");
        assert_eq!(arn.cluster.as_deref(), Some("default"));
    }

    #[test]
    fn retries_pause_200_ms_then_double() {
        let ms = Duration::from_millis;
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..50 {
            let first = pause_after(1, &mut rng);
            assert!(first >= ms(100) && first <= ms(200), "{first:?}");
            let second = pause_after(2, &mut rng);
            assert!(second >= ms(200) && second <= ms(400), "{second:?}");
        }
    }

    #[test]
    fn old_format_arns_parse_too() {
        let body = br#"{"Cluster":"default","TaskARN":"arn:aws:ecs:us-east-1:111122223333:task/b99d40b3-5176-4f71-9a52-9dbd6f1cebef"}"#;
        let (_, arn) = parse_task_arn(body).unwrap();
        assert_eq!(arn.cluster, None);
        assert_eq!(arn.task_id.as_str(), "b99d40b3-5176-4f71-9a52-9dbd6f1cebef");
    }

    #[test]
    fn unusable_documents_say_why() {
        let rows: [(&[u8], &str); 5] = [
            (b"<html>", "not JSON"),
            (b"[1,2]", "not a JSON object"),
            (b"{\"Cluster\":\"default\"}", "no TaskARN field"),
            (
                b"{\"TaskARN\":\"arn:aws:ecs:us-east-1:1:container/x\"}",
                "is not a task ARN",
            ),
            (b"{\"TaskARN\":42}", "no TaskARN field"),
        ];
        for (body, reason) in rows {
            let e = parse_task_arn(body).unwrap_err();
            assert!(
                e.reason.contains(reason),
                "{:?}: {}",
                String::from_utf8_lossy(body),
                e.reason
            );
            assert!(e.at("http://x/task").is_metadata_invalid());
        }
    }
}
