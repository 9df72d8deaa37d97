//! Selections and the revocation list.

use std::sync::Arc;

use super::*;
use crate::topic::TopicSelector;

fn subscriber(id: &str, sub: Option<&str>, selectors: &[&str]) -> Subscriber {
    let mut subscriber = Subscriber::new(
        id.to_owned(),
        selectors.iter().map(|s| TopicSelector::new(s)).collect(),
        Vec::new(),
    );
    subscriber.identity = Identity {
        sub: sub.map(str::to_owned),
        jti: Some(format!("jti-{id}")),
        issued_at: Some(100),
    };
    subscriber
}

fn selection(edit: impl FnOnce(&mut Selection)) -> Selection {
    let mut selection = Selection::default();
    edit(&mut selection);
    selection
}

#[test]
fn a_selection_picks_by_subject_subscriber_subscription_and_topic() {
    let alice = subscriber(
        "urn:uuid:a",
        Some("alice"),
        &["https://example.com/books/1"],
    );
    let bob = subscriber(
        "urn:uuid:b",
        Some("bob"),
        &["https://example.com/books/{id}", "news"],
    );
    let anonymous = subscriber("urn:uuid:c", None, &["news"]);
    let picks = |s: &Selection| {
        let matches = s.matcher();
        [&alice, &bob, &anonymous]
            .iter()
            .filter(|x| matches(x))
            .map(|x| x.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        picks(&selection(|s| s.sub = Some("alice".into()))),
        ["urn:uuid:a"]
    );
    assert_eq!(
        picks(&selection(|s| s.subscriber = Some("urn:uuid:b".into()))),
        ["urn:uuid:b"]
    );
    let id = subscription_topic("news", "urn:uuid:c");
    assert_eq!(
        picks(&selection(|s| s.subscription = Some(id.clone()))),
        ["urn:uuid:c"]
    );
    // A full URL names the same subscription.
    let url = format!("https://hub.example.com{id}");
    assert_eq!(
        picks(&selection(|s| s.subscription = Some(url))),
        ["urn:uuid:c"]
    );
    // A template picks the streams subscribed to a topic it matches, and to itself.
    assert_eq!(
        picks(&selection(
            |s| s.topic = Some("https://example.com/books/{id}".into())
        )),
        ["urn:uuid:a", "urn:uuid:b"]
    );
    assert_eq!(
        picks(&selection(|s| s.topic = Some("news".into()))),
        ["urn:uuid:b", "urn:uuid:c"]
    );
    assert_eq!(picks(&selection(|s| s.topic = Some("*".into()))).len(), 3);
    // Several criteria: all of them.
    assert_eq!(
        picks(&selection(|s| {
            s.topic = Some("news".into());
            s.sub = Some("bob".into());
        })),
        ["urn:uuid:b"]
    );
    assert!(picks(&selection(|s| s.sub = Some("carol".into()))).is_empty());
    assert!(Selection::default().is_empty());
}

fn identity(sub: &str, jti: &str, issued_at: u64) -> Identity {
    Identity {
        sub: Some(sub.into()),
        jti: Some(jti.into()),
        issued_at: Some(issued_at),
    }
}

#[test]
fn revocations_refuse_until_they_end_and_by_issue_time() {
    let control = Control::new(Arc::new(Fanout::new(10)), 10);
    let now = now_secs();
    let revoke = |jti: Option<&str>, sub: Option<&str>, before: Option<u64>, until: u64| {
        control.apply(&Action::new(ActionKind::Revoke(Revocation {
            jti: jti.map(str::to_owned),
            sub: sub.map(str::to_owned),
            before,
            until,
        })))
    };
    revoke(Some("t1"), None, None, now + 60);
    assert!(control.is_revoked(&identity("alice", "t1", now)));
    assert!(!control.is_revoked(&identity("alice", "t2", now)));
    revoke(None, Some("bob"), Some(now - 5), now + 60);
    assert!(
        control.is_revoked(&identity("bob", "x", now - 10)),
        "issued before"
    );
    assert!(
        !control.is_revoked(&identity("bob", "y", now - 5)),
        "issued at `before`"
    );
    let no_iat = Identity {
        issued_at: None,
        ..identity("bob", "z", 0)
    };
    assert!(
        control.is_revoked(&no_iat),
        "no iat counts as issued before"
    );
    // A revocation that ended is forgotten, and one that ends in the past is not kept.
    revoke(Some("old"), None, None, now.saturating_sub(1));
    assert!(!control.is_revoked(&identity("alice", "old", now)));
    assert_eq!(control.revocation_count(), 2);
    // A later `before` for the same subject extends it.
    revoke(None, Some("bob"), Some(now + 1), now + 30);
    assert!(control.is_revoked(&identity("bob", "y", now - 5)));
    assert_eq!(control.revocation_count(), 2);
}

#[test]
fn a_full_revocation_list_refuses_new_revocations_but_not_updates() {
    let control = Control::new(Arc::new(Fanout::new(10)), 2);
    let now = now_secs();
    let action = |jti: &str, until: u64| {
        Action::new(ActionKind::Revoke(Revocation {
            jti: Some(jti.to_owned()),
            sub: None,
            before: None,
            until,
        }))
    };
    for (jti, until) in [("a", now + 10), ("b", now + 20)] {
        let action = action(jti, until);
        assert_eq!(control.check(&action), Ok(()));
        control.apply(&action);
    }
    assert_eq!(
        control.check(&action("c", now + 30)),
        Err(ControlError::Full { limit: 2 })
    );
    assert_eq!(control.check(&action("a", now + 40)), Ok(()), "an update");
    // Applied anyway (another node accepted it): the one ending first makes room.
    control.apply(&action("c", now + 30));
    assert_eq!(control.revocation_count(), 2);
    assert!(!control.is_revoked(&identity("x", "a", now)));
    assert!(control.is_revoked(&identity("x", "c", now)));
}

#[test]
fn actions_round_trip_as_json_and_results_are_remembered() {
    let action = Action::new(ActionKind::Disconnect(Selection {
        sub: Some("alice".into()),
        ..Selection::default()
    }));
    let json = serde_json::to_vec(&action).expect("serialize");
    let back: Action = serde_json::from_slice(&json).expect("deserialize");
    assert_eq!(back, action);
    let control = Control::new(Arc::new(Fanout::new(10)), 10);
    assert_eq!(control.result(&action.id), None);
    assert_eq!(control.apply(&action), 0);
    assert_eq!(control.result(&action.id), Some(0));
}
