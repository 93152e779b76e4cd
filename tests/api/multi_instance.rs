use crate::helpers::TestApp;
use serde_json::json;

/// Two instances on one database and one store behave as one service: a session made
/// on either works on both, and a revocation on one is seen by the other at once.
#[tokio::test]
async fn two_instances_accept_each_others_sessions() {
    let a = TestApp::spawn().await;
    let b = a.another_instance().await;
    assert_ne!(a.addr, b.addr);
    let token = a.login("demo", "manager").await;
    assert_eq!(b.me(&token).await.ok()["me"]["user"]["username"], "manager");

    let from_b = b.login("demo", "manager").await;
    let listed = a.gql("{ mySessions { id } }", json!({}), Some(&from_b)).await;
    assert_eq!(listed.ok()["mySessions"].as_array().unwrap().len(), 2);

    let r = b.gql("mutation { revokeOtherSessions }", json!({}), Some(&from_b)).await;
    assert_eq!(r.ok()["revokeOtherSessions"], 1);
    assert_eq!(a.me(&token).await.code(), Some("UNAUTHENTICATED"));
    assert_eq!(a.me(&from_b).await.ok()["me"]["user"]["username"], "manager");
}
