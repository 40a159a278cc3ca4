//! Test support for tasksub: the moto emulator harness, event builders, the two worlds (fake and
//! moto) and the scenario suite that runs on both.
//!
//! # Layout
//! - [`ecs`]: moto's ECS for the sweeper: a cluster per test, Fargate tasks pinned at RUNNING.
//! - [`moto`]: find or start `moto_server` on 127.0.0.1 and build SDK config pointing at it.
//! - [`events`]: ECS task state change events as EventBridge delivers them; the public samples.
//! - [`world`]: a controller plus a way to observe records, queues, subscriptions and delivery.
//! - [`scenarios`]: the scenarios, generic over the world.
//! - [`sweep_world`], [`sweep_scenarios`]: the sweeper's worlds (a world plus ECS tasks) and scenarios.
//! - [`proxy`]: a fault-injecting proxy between the SDK and moto, which also enforces AWS rules moto lacks.
//! - [`fleet`]: 10,000 and 100,000 tasks under AWS's quotas in virtual time: scale-out, a deployment, a
//!   crash loop and the scheduled sweeper, on the fake (issue #23).
//! - [`converge`]: issue #21's cases (refusing topics, retired and added topics, unreadable records, two
//!   settings versions, changed topic settings, what others break) on the fake and on moto.
pub mod converge;
pub mod ecs;
pub mod events;
pub mod explore;
pub mod fleet;
pub mod moto;
pub mod proxy;
pub mod quota;
pub mod scenarios;
pub mod sweep_scenarios;
pub mod sweep_world;
pub mod world;
