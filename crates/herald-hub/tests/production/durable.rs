//! Durable history in a data directory: it survives a restart, is bounded by size, and a
//! resume by ID gets exactly the rest.

use herald_hub::{Hub, HubConfig, JwtKey, Update};
use http::StatusCode;

use crate::common::{KEY, Stoppable, serve, serve_stoppable, subscribe};

fn durable(dir: &std::path::Path, size: usize) -> Hub {
    Hub::new(HubConfig {
        publisher_jwt: Some(JwtKey::new(KEY, "HS256")),
        anonymous: true,
        data_dir: Some(dir.to_owned()),
        history_size: size,
        ..HubConfig::default()
    })
    .expect("hub")
}

fn update(id: &str) -> Update {
    Update {
        id: id.to_owned(),
        ..Update::new(vec!["t".into()], format!("data {id}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_survives_a_restart_and_resumes_by_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let hub = durable(dir.path(), 5);
        for i in 0..8 {
            hub.publish(update(&format!("d{i}")))
                .await
                .expect("publish");
        }
    }
    // The first hub is gone (its store closed when dropped); a new one opens the same directory.
    let hub = durable(dir.path(), 5);
    let addr = serve(&hub).await;
    let mut all = subscribe(
        addr,
        "/.well-known/mercure?topic=t&lastEventID=earliest",
        &[],
    )
    .await;
    assert_eq!(all.status, StatusCode::OK);
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(all.event().await.last_event_id().to_owned());
    }
    assert_eq!(ids, ["d3", "d4", "d5", "d6", "d7"], "the last 5, in order");
    let mut rest = subscribe(
        addr,
        "/.well-known/mercure?topic=t",
        &[("last-event-id", "d5")],
    )
    .await;
    hub.publish(update("live")).await.expect("publish");
    let mut after = Vec::new();
    for _ in 0..3 {
        after.push(rest.event().await.last_event_id().to_owned());
    }
    assert_eq!(after, ["d6", "d7", "live"]);
}

fn aging(dir: &std::path::Path, max_age: std::time::Duration) -> Hub {
    Hub::new(HubConfig {
        publisher_jwt: Some(JwtKey::new(KEY, "HS256")),
        anonymous: true,
        data_dir: Some(dir.to_owned()),
        history_age: max_age,
        ..HubConfig::default()
    })
    .expect("hub")
}

/// The first event a subscriber replaying from the start of history gets; the hub is served
/// only for that, then shut down, so that the next hub can open the same store.
async fn first_in_history(hub: &Hub) -> String {
    let Stoppable { addr, stop, server } = serve_stoppable(hub).await;
    let mut all = subscribe(
        addr,
        "/.well-known/mercure?topic=t&lastEventID=earliest",
        &[],
    )
    .await;
    let first = all.event().await.last_event_id().to_owned();
    drop(all);
    let _ = stop.send(());
    server.await.expect("server task").expect("server");
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_age_prunes_the_store_on_write_and_on_reopen() {
    // Long enough that the fresh update cannot age out between its publish and the checks
    // below, even on a loaded machine; short enough for a test.
    let age = std::time::Duration::from_secs(2);
    let past_age = age + std::time::Duration::from_millis(500);
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let hub = aging(dir.path(), age);
        hub.publish(update("old")).await.expect("publish");
        tokio::time::sleep(past_age).await;
        // Writing prunes what has aged out, in the store as in memory.
        hub.publish(update("fresh")).await.expect("publish");
        assert_eq!(first_in_history(&hub).await, "fresh");
    }
    {
        // Reopened within the age, the store still holds the fresh update and not the old one.
        let hub = aging(dir.path(), age);
        hub.publish(update("after-reopen")).await.expect("publish");
        assert_eq!(first_in_history(&hub).await, "fresh");
    }
    tokio::time::sleep(past_age).await;
    // Reopened after everything aged out: nothing old is loaded, even with no write since.
    let hub = aging(dir.path(), age);
    hub.publish(update("marker")).await.expect("publish");
    assert_eq!(first_in_history(&hub).await, "marker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_id_is_one_entry_even_when_the_publishes_share_a_commit() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let hub = durable(dir.path(), 100);
        // Sent together, they reach the writer in one batch: the second waits for the first.
        let (a, b) = tokio::join!(hub.publish(update("same")), hub.publish(update("same")));
        assert_eq!(a.expect("first"), "same");
        assert_eq!(b.expect("the retry is answered as stored"), "same");
        let mut other = update("same");
        other.data = "another update".into();
        let (c, d) = tokio::join!(hub.publish(update("next")), hub.publish(other));
        c.expect("next");
        assert!(
            matches!(d, Err(herald_hub::transport::TransportError::DuplicateId(ref id)) if id == "same"),
            "{d:?}"
        );
    }
    let hub = durable(dir.path(), 100);
    let addr = serve(&hub).await;
    let mut all = subscribe(
        addr,
        "/.well-known/mercure?topic=t&lastEventID=earliest",
        &[],
    )
    .await;
    let first = all.event().await;
    let second = all.event().await;
    assert_eq!(
        [first.last_event_id(), second.last_event_id()],
        ["same", "next"],
        "stored once, after a restart too"
    );
}

/// A revocation (control API) is committed beside the history: a restarted hub still refuses
/// the revoked token, and forgets a revocation once it ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_survive_a_restart_until_they_end() {
    use herald_hub::control::{Action, ActionKind, Revocation, now_secs};
    let dir = tempfile::tempdir().expect("temp dir");
    let open = || {
        Hub::new(HubConfig {
            publisher_jwt: Some(JwtKey::new(KEY, "HS256")),
            subscriber_jwt: Some(JwtKey::new(KEY, "HS256")),
            data_dir: Some(dir.path().to_owned()),
            ..HubConfig::default()
        })
        .expect("hub")
    };
    let revoke = |jti: &str, until: u64| {
        Action::new(ActionKind::Revoke(Revocation {
            jti: Some(jti.to_owned()),
            sub: None,
            before: None,
            until,
        }))
    };
    {
        let hub = open();
        hub.control(revoke("long", now_secs() + 600))
            .await
            .expect("revoked");
        hub.control(revoke("short", now_secs() + 2))
            .await
            .expect("revoked");
        assert_eq!(hub.revocation_count(), 2);
    }
    let hub = open();
    assert_eq!(hub.revocation_count(), 2, "both in force after the restart");
    let Stoppable { addr, stop, server } = serve_stoppable(&hub).await;
    let token = |jti: &str| {
        herald_hub::dev::hs256_claims(
            KEY,
            &serde_json::json!({"mercure": {"subscribe": ["*"]}, "jti": jti}),
        )
        .expect("token")
    };
    let refused = crate::common::get(
        addr,
        "/.well-known/mercure?topic=t",
        &[("authorization", &format!("Bearer {}", token("long")))],
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("revoked"), "{}", refused.body);
    let _ = stop.send(());
    server.await.expect("joined").expect("served");
    drop(hub);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let hub = open();
    assert_eq!(
        hub.revocation_count(),
        1,
        "the ended revocation is forgotten"
    );
}
