//! ECS on moto, for the sweeper's scenarios: a cluster per test, Fargate tasks pinned at RUNNING until
//! stopped.
//!
//! moto needs a subnet and a security group that exist in its EC2 (in a VPC with DNS hostnames), a
//! container `memory`, and its task state machine switched to manual: otherwise every DescribeTasks moves
//! a task one step towards STOPPED. That switch is global for the server and is set once per process and
//! never reset (other tests share the server). EC2 is reached with a few raw Query calls, which spares the
//! build the EC2 SDK.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;

use aws_sdk_ecs::types::{
    AwsVpcConfiguration, Compatibility, ContainerDefinition, LaunchType, NetworkConfiguration, NetworkMode,
};

use crate::events::Task;
use crate::moto::{unique, Moto};

/// One POST to moto; returns the status code and the body.
fn post(path: &str, content_type: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let endpoint = Moto::get().endpoint();
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host).expect("connect to moto");
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).expect("send to moto");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read from moto");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// One EC2 Query call (form-encoded, unsigned: moto routes on the credential scope and checks no signature).
fn ec2(params: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.replace('%', "%25")
            .replace('/', "%2F")
            .replace(' ', "%20")
            .replace('=', "%3D")
    };
    let mut body = String::from("Version=2016-11-15");
    for (k, v) in params {
        body.push_str(&format!("&{}={}", enc(k), enc(v)));
    }
    let auth =
        "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0";
    let (status, text) = post(
        "/",
        "application/x-www-form-urlencoded; charset=utf-8",
        &[("Authorization", auth)],
        &body,
    );
    assert_eq!(status, 200, "EC2 {params:?}: {text}");
    text
}

fn xml_value(body: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = body.find(&open).unwrap_or_else(|| panic!("no <{tag}> in {body}")) + open.len();
    let end = body[start..].find(&format!("</{tag}>")).expect("closing tag") + start;
    body[start..end].to_owned()
}

/// The subnet and security group every test's tasks use (made once per process), with the task state
/// machine pinned.
fn network() -> &'static (String, String) {
    static NET: OnceLock<(String, String)> = OnceLock::new();
    NET.get_or_init(|| {
        let (status, text) = post(
            "/moto-api/state-manager/set-transition",
            "application/json",
            &[],
            r#"{"model_name":"ecs::task","transition":{"progression":"manual","times":1000000}}"#,
        );
        assert!(status < 300, "set-transition: {status} {text}");
        let vpc = xml_value(&ec2(&[("Action", "CreateVpc"), ("CidrBlock", "10.77.0.0/16")]), "vpcId");
        ec2(&[
            ("Action", "ModifyVpcAttribute"),
            ("VpcId", &vpc),
            ("EnableDnsHostnames.Value", "true"),
        ]);
        let subnet = xml_value(
            &ec2(&[
                ("Action", "CreateSubnet"),
                ("VpcId", &vpc),
                ("CidrBlock", "10.77.1.0/24"),
                ("AvailabilityZone", "us-east-1a"),
            ]),
            "subnetId",
        );
        let sg = xml_value(
            &ec2(&[
                ("Action", "CreateSecurityGroup"),
                ("GroupName", &unique("tasksub-sweep-sg")),
                ("GroupDescription", "tasksub sweeper tests"),
                ("VpcId", &vpc),
            ]),
            "groupId",
        );
        (subnet, sg)
    })
}

/// A cluster of its own on moto, and a Fargate task definition.
#[derive(Debug, Clone)]
pub struct EcsCluster {
    client: aws_sdk_ecs::Client,
    name: String,
    arn: String,
    task_definition: String,
}

impl EcsCluster {
    /// Creates the cluster (a unique name: moto matches clusters by substring, so the `-c` end keeps one
    /// name from containing another).
    pub async fn new(sdk: &aws_config::SdkConfig) -> Self {
        let _ = network();
        let client = aws_sdk_ecs::Client::new(sdk);
        let name = format!("{}-c", unique("swp"));
        let out = client
            .create_cluster()
            .cluster_name(&name)
            .send()
            .await
            .expect("CreateCluster");
        let arn = out
            .cluster()
            .and_then(|c| c.cluster_arn())
            .expect("cluster ARN")
            .to_owned();
        let td = client
            .register_task_definition()
            .family("tasksub-sweep")
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image("busybox")
                    .memory(128)
                    .build(),
            )
            .send()
            .await
            .expect("RegisterTaskDefinition");
        let task_definition = td
            .task_definition()
            .and_then(|t| t.task_definition_arn())
            .expect("task definition ARN")
            .to_owned();
        Self {
            client,
            name,
            arn,
            task_definition,
        }
    }

    /// The cluster name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cluster ARN.
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// Runs `count` Fargate tasks in `group`; they stay RUNNING until stopped.
    pub async fn run(&self, count: i32, group: &str) -> Vec<Task> {
        let (subnet, sg) = network();
        let vpc = AwsVpcConfiguration::builder()
            .subnets(subnet)
            .security_groups(sg)
            .build()
            .expect("awsvpc configuration");
        let out = self
            .client
            .run_task()
            .cluster(&self.name)
            .task_definition(&self.task_definition)
            .launch_type(LaunchType::Fargate)
            .count(count)
            .group(group)
            .network_configuration(NetworkConfiguration::builder().awsvpc_configuration(vpc).build())
            .send()
            .await
            .expect("RunTask");
        let tasks: Vec<Task> = out
            .tasks()
            .iter()
            .map(|t| {
                let arn = t.task_arn().expect("task ARN").to_owned();
                Task {
                    id: arn.rsplit('/').next().unwrap().to_owned(),
                    arn,
                    cluster: self.arn.clone(),
                    group: Some(group.to_owned()),
                }
            })
            .collect();
        assert_eq!(tasks.len(), count as usize, "RunTask placed every task");
        tasks
    }

    /// Stops a task: it is STOPPED/STOPPED at once (no event is emitted).
    pub async fn stop(&self, task: &Task) {
        self.client
            .stop_task()
            .cluster(&self.name)
            .task(&task.arn)
            .reason("tasksub sweeper test")
            .send()
            .await
            .expect("StopTask");
    }
}
