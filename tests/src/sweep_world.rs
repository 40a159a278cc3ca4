//! A world for the sweeper: a [`World`] plus ECS tasks (in the fake, or on moto's ECS) and raw queues.

use std::collections::BTreeMap;

use tasksub_core::event::TaskStatus;
use tasksub_core::reconcile::EcsTask;
use tasksub_core::settings::{vars, SweepSettings};
use tasksub_functions::aws::AwsTasks;
use tasksub_functions::fake::Fake;
use tasksub_functions::instrumented::Instrumented;
use tasksub_functions::ports::{QueueInspect, Tasks};
use tasksub_functions::sweeper::Sweeper;

use crate::ecs::EcsCluster;
use crate::events::Task;
use crate::moto::Moto;
use crate::world::{FakeWorld, MotoWorld, World, OUR_CLUSTER};

/// The group every sweeper world scopes to (`TASKSUB_SERVICE_GROUPS`).
pub const GROUP: &str = "service:orders";

/// A world the sweeper scenarios run on.
#[allow(async_fn_in_trait)]
pub trait SweepWorld {
    /// The event world (controller, observation).
    type W: World<P: QueueInspect + Clone>;
    /// The ECS port.
    type T: Tasks + Clone;
    /// The event world.
    fn world(&self) -> &Self::W;
    /// The ECS port, uninstrumented.
    fn tasks_port(&self) -> Self::T;
    /// The name of our cluster.
    fn cluster(&self) -> &str;
    /// A sweeper on the same backend with its own call log: `grace_seconds`, no pacing, no cap, no audit
    /// (an audit reads live tasks in sync: [`crate::sweep_scenarios::an_audit_repairs_a_hand_edit`]).
    fn sweeper(&self, grace_seconds: u64) -> Sweeper<Instrumented<<Self::W as World>::P>, Instrumented<Self::T>> {
        self.sweeper_with(SweepSettings {
            grace_seconds,
            min_interval_ms: 0,
            max_actions: 10_000,
            audit_per_run: 0,
            ..SweepSettings::default()
        })
    }
    /// A sweeper with these sweep settings.
    fn sweeper_with(
        &self,
        sweep: SweepSettings,
    ) -> Sweeper<Instrumented<<Self::W as World>::P>, Instrumented<Self::T>> {
        let w = self.world();
        Sweeper::with_ports(
            w.settings().clone(),
            sweep,
            Instrumented::new(w.calls().inner().clone()),
            Instrumented::new(self.tasks_port()),
        )
    }
    /// Starts `count` tasks in our cluster, in `group`; ECS says RUNNING (no event is sent).
    async fn start_tasks(&self, count: usize, group: &str) -> Vec<Task>;
    /// Stops a task; ECS says STOPPED (no event is sent).
    async fn stop_task(&self, task: &Task);
    /// A task in our cluster that ECS never ran (or forgot).
    fn unknown_task(&self) -> Task {
        let mut t = Task::new(self.cluster());
        t.group = Some(GROUP.to_owned());
        t
    }
    /// Creates a queue directly (no record), with tags; returns its URL.
    async fn make_queue(&self, name: &str, tags: &[(&str, &str)]) -> String;
    /// Whether a queue of this name exists.
    async fn queue_exists(&self, name: &str) -> bool;
    /// An operator sets a queue's policy by hand.
    async fn set_policy(&self, name: &str, policy: &str);
    /// A queue's policy.
    async fn policy(&self, name: &str) -> Option<String>;
}

/// The sweeper world in memory.
pub struct FakeSweepWorld {
    world: FakeWorld,
}

impl FakeSweepWorld {
    /// A fresh world scoped to [`GROUP`].
    pub fn new() -> Self {
        Self {
            world: FakeWorld::with(&[(vars::SERVICE_GROUPS, GROUP)]),
        }
    }
    /// The fake.
    pub fn fake(&self) -> &Fake {
        self.world.fake()
    }
}

impl Default for FakeSweepWorld {
    fn default() -> Self {
        Self::new()
    }
}

impl SweepWorld for FakeSweepWorld {
    type W = FakeWorld;
    type T = Fake;
    fn world(&self) -> &FakeWorld {
        &self.world
    }
    fn tasks_port(&self) -> Fake {
        self.fake().clone()
    }
    fn cluster(&self) -> &str {
        OUR_CLUSTER
    }
    async fn start_tasks(&self, count: usize, group: &str) -> Vec<Task> {
        (0..count)
            .map(|_| {
                let mut t = Task::new(OUR_CLUSTER);
                t.group = Some(group.to_owned());
                self.fake().put_task(EcsTask {
                    task_arn: t.arn.clone(),
                    cluster_arn: t.cluster.clone(),
                    group: t.group.clone(),
                    last_status: TaskStatus::Running,
                    desired_status: TaskStatus::Running,
                    version: Some(3),
                    created_at: Some(chrono::Utc::now()),
                    stopping_at: None,
                    stopped_at: None,
                });
                t
            })
            .collect()
    }
    async fn stop_task(&self, task: &Task) {
        let mut t = self
            .fake()
            .tasks()
            .into_iter()
            .find(|t| t.task_arn == task.arn)
            .expect("a started task");
        let now = chrono::Utc::now();
        t.last_status = TaskStatus::Stopped;
        t.desired_status = TaskStatus::Stopped;
        t.stopping_at = Some(now);
        t.stopped_at = Some(now);
        self.fake().put_task(t);
    }
    async fn make_queue(&self, name: &str, tags: &[(&str, &str)]) -> String {
        let tags: BTreeMap<String, String> = tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.fake().insert_tagged_queue(name, tags)
    }
    async fn queue_exists(&self, name: &str) -> bool {
        self.fake().queues().iter().any(|q| q.name == name)
    }
    async fn set_policy(&self, name: &str, policy: &str) {
        self.fake().edit_queue_attribute(name, "Policy", policy);
    }
    async fn policy(&self, name: &str) -> Option<String> {
        let q = self.fake().queues().into_iter().find(|q| q.name == name)?;
        q.attributes.get("Policy").cloned()
    }
}

/// The sweeper world on moto: its own cluster, topic, table and prefix.
pub struct MotoSweepWorld {
    world: MotoWorld,
    ecs: EcsCluster,
    sqs: aws_sdk_sqs::Client,
}

impl MotoSweepWorld {
    /// A fresh world: a cluster, then a topic, table and prefix scoped to it and to [`GROUP`].
    pub async fn new() -> Self {
        let sdk = Moto::get().sdk_config().await;
        let ecs = EcsCluster::new(&sdk).await;
        let world = MotoWorld::with(&[(vars::CLUSTERS, ecs.name()), (vars::SERVICE_GROUPS, GROUP)]).await;
        Self {
            sqs: aws_sdk_sqs::Client::new(&sdk),
            world,
            ecs,
        }
    }
    /// The cluster.
    pub fn ecs(&self) -> &EcsCluster {
        &self.ecs
    }
}

impl SweepWorld for MotoSweepWorld {
    type W = MotoWorld;
    type T = AwsTasks;
    fn world(&self) -> &MotoWorld {
        &self.world
    }
    fn tasks_port(&self) -> AwsTasks {
        AwsTasks::new(self.world.sdk())
    }
    fn cluster(&self) -> &str {
        self.ecs.name()
    }
    async fn start_tasks(&self, count: usize, group: &str) -> Vec<Task> {
        let mut out = Vec::new();
        let mut left = count;
        while left > 0 {
            let n = left.min(10);
            out.extend(self.ecs.run(n as i32, group).await);
            left -= n;
        }
        out
    }
    async fn stop_task(&self, task: &Task) {
        self.ecs.stop(task).await;
    }
    async fn make_queue(&self, name: &str, tags: &[(&str, &str)]) -> String {
        let mut req = self.sqs.create_queue().queue_name(name);
        for (k, v) in tags {
            req = req.tags(*k, *v);
        }
        req.send()
            .await
            .expect("CreateQueue")
            .queue_url()
            .expect("queue URL")
            .to_owned()
    }
    async fn set_policy(&self, name: &str, policy: &str) {
        let url = self
            .sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .expect("GetQueueUrl");
        self.sqs
            .set_queue_attributes()
            .queue_url(url.queue_url().expect("URL"))
            .attributes(aws_sdk_sqs::types::QueueAttributeName::Policy, policy)
            .send()
            .await
            .expect("SetQueueAttributes");
    }
    async fn policy(&self, name: &str) -> Option<String> {
        let url = self.sqs.get_queue_url().queue_name(name).send().await.ok()?;
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url.queue_url()?)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::Policy)
            .send()
            .await
            .ok()?;
        out.attributes()?
            .get(&aws_sdk_sqs::types::QueueAttributeName::Policy)
            .cloned()
    }
    async fn queue_exists(&self, name: &str) -> bool {
        self.sqs.get_queue_url().queue_name(name).send().await.is_ok()
    }
}
