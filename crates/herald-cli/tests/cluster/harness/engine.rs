//! The engines a scenario runs on: each test body takes an [`Engine`] and is run once on Redis
//! and once on NATS JetStream ([`on_each_engine!`](crate::on_each_engine)), so that both keep
//! the same promises. What differs between them (how to reach the machine's server, how to
//! start one of the test's own, how to read the log or cut the readers off) lives here.

use super::nats::{PrivateNats, SharedNats};
use super::redis::{PrivateRedis, SharedRedis, kill_readers, stream_ids};

/// A shared-log engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    Redis,
    Nats,
}

/// Runs each named scenario (a `fn(Engine)` of the module) as a test on Redis
/// (`on_redis::name`) and on NATS (`on_nats::name`).
#[macro_export]
macro_rules! on_each_engine {
    ($($scenario:ident),* $(,)?) => {
        mod on_redis {
            $(#[test] fn $scenario() { super::$scenario($crate::harness::engine::Engine::Redis) })*
        }
        mod on_nats {
            $(#[test] fn $scenario() { super::$scenario($crate::harness::engine::Engine::Nats) })*
        }
    };
}

/// The machine's server of an engine, under a fresh prefix cleaned up at the end.
pub(crate) enum Shared {
    Redis(SharedRedis),
    Nats(SharedNats),
}

impl Shared {
    /// The machine's server, or `None` (the test is skipped) when its variable is not set
    /// outside CI.
    pub(crate) fn get(engine: Engine) -> Option<Shared> {
        match engine {
            Engine::Redis => SharedRedis::get().map(Shared::Redis),
            Engine::Nats => SharedNats::get().map(Shared::Nats),
        }
    }

    /// What `--transport` takes.
    pub(crate) fn url(&self) -> &str {
        match self {
            Shared::Redis(redis) => &redis.url,
            Shared::Nats(nats) => &nats.url,
        }
    }

    /// What `--transport-prefix` takes.
    pub(crate) fn prefix(&self) -> &str {
        match self {
            Shared::Redis(redis) => &redis.prefix,
            Shared::Nats(nats) => &nats.prefix,
        }
    }

    /// The updates' log: offsets and update IDs, oldest first.
    pub(crate) fn log(&self) -> Vec<(u64, String)> {
        match self {
            Shared::Redis(redis) => stream_ids(
                &mut redis.connection(),
                &format!("{{{}}}:updates", redis.prefix),
            ),
            Shared::Nats(nats) => nats.log(),
        }
    }

    /// The update IDs of the log, oldest first.
    pub(crate) fn log_ids(&self) -> Vec<String> {
        self.log().into_iter().map(|(_, id)| id).collect()
    }
}

/// A server of the test's own, to stop, pause and restart.
pub(crate) enum Private {
    Redis(PrivateRedis),
    Nats(PrivateNats),
}

impl Private {
    /// A private server, running; `None` (the test is skipped) when the server's program is
    /// not on the PATH outside CI.
    pub(crate) fn start(engine: Engine) -> Option<Private> {
        let mut private = Private::reserve(engine)?;
        private.launch();
        Some(private)
    }

    /// A private server on a free port, not started yet.
    pub(crate) fn reserve(engine: Engine) -> Option<Private> {
        match engine {
            Engine::Redis => PrivateRedis::reserve().map(Private::Redis),
            Engine::Nats => PrivateNats::reserve().map(Private::Nats),
        }
    }

    /// What `--transport` takes.
    pub(crate) fn url(&self) -> String {
        match self {
            Private::Redis(redis) => redis.url(),
            Private::Nats(nats) => nats.url(),
        }
    }

    /// What `--transport-prefix` takes.
    pub(crate) fn prefix(&self) -> &str {
        match self {
            Private::Redis(redis) => &redis.prefix,
            Private::Nats(nats) => &nats.prefix,
        }
    }

    /// Starts the server and waits until it answers.
    pub(crate) fn launch(&mut self) {
        match self {
            Private::Redis(redis) => redis.launch(),
            Private::Nats(nats) => {
                nats.launch();
                nats.wait_jetstream();
            }
        }
    }

    /// Stops the server; its data is gone (it comes back empty).
    pub(crate) fn stop(&mut self) {
        match self {
            Private::Redis(redis) => redis.stop(),
            Private::Nats(nats) => nats.stop(),
        }
    }

    /// Freezes the server (SIGSTOP).
    pub(crate) fn pause(&self) {
        match self {
            Private::Redis(redis) => redis.pause(),
            Private::Nats(nats) => nats.pause(),
        }
    }

    /// Thaws the server (SIGCONT).
    pub(crate) fn resume(&self) {
        match self {
            Private::Redis(redis) => redis.resume(),
            Private::Nats(nats) => nats.resume(),
        }
    }

    /// The updates' log: offsets and update IDs, oldest first.
    pub(crate) fn log_ids(&self) -> Vec<String> {
        let log = match self {
            Private::Redis(redis) => stream_ids(
                &mut redis.connection(),
                &format!("{{{}}}:updates", redis.prefix),
            ),
            Private::Nats(nats) => nats.log(),
        };
        log.into_iter().map(|(_, id)| id).collect()
    }

    /// Cuts the nodes' readers off where they read (Redis: their connections killed; NATS:
    /// their consumers deleted), so that they must start again from where they were; how many.
    pub(crate) fn cut_readers(&self) -> usize {
        match self {
            Private::Redis(redis) => kill_readers(&mut redis.connection()),
            Private::Nats(nats) => nats.delete_consumers(),
        }
    }

    /// Cuts every connection of the nodes, publishers' and readers' alike (Redis: `CLIENT
    /// KILL TYPE normal`; NATS: the server restarted, its store kept); how many were cut, if
    /// the engine tells.
    pub(crate) fn cut_everything(&mut self) -> usize {
        match self {
            Private::Redis(redis) => redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("normal")
                .arg("SKIPME")
                .arg("yes")
                .query::<usize>(&mut redis.connection())
                .expect("CLIENT KILL"),
            Private::Nats(nats) => {
                nats.halt("TERM");
                nats.launch();
                nats.wait_jetstream();
                1
            }
        }
    }
}
