#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `GitHubApi` against `FakeGitHub`.

use std::time::{Duration, UNIX_EPOCH};

use rswe_github::api::{GitHubApi, GitHubError, NewPullRequest};
use rswe_test_support::github::FakeGitHub;

async fn setup() -> (FakeGitHub, GitHubApi) {
    let github = FakeGitHub::start().await;
    github.add_repository("octo", "hello", "main", true);
    let api = GitHubApi::new(&github.api_url(), github.token()).unwrap();
    (github, api)
}

fn new_pull(head: &str) -> NewPullRequest {
    NewPullRequest {
        title: "Fix the thing".to_owned(),
        body: "Closes #3".to_owned(),
        head: head.to_owned(),
        base: "main".to_owned(),
        draft: true,
    }
}

#[tokio::test]
async fn repository_info_and_push_permission() {
    let (github, api) = setup().await;
    github.add_repository("octo", "readonly", "trunk", false);

    let repo = api.repository("octo", "hello").await.unwrap();
    assert_eq!((repo.owner.as_str(), repo.name.as_str()), ("octo", "hello"));
    assert_eq!(repo.default_branch, "main");
    assert!(repo.can_push);
    assert!(!repo.private);
    assert_eq!(repo.parent, None);
    assert_eq!(repo.html_url, "https://github.com/octo/hello");

    let repo = api.repository("octo", "readonly").await.unwrap();
    assert_eq!(repo.default_branch, "trunk");
    assert!(!repo.can_push);

    let call = &github.calls()[0];
    assert_eq!(call.method, "GET");
    assert_eq!(call.path, "/repos/octo/hello");
    assert_eq!(call.token.as_deref(), Some(github.token()));
    assert_eq!(call.accept.as_deref(), Some("application/vnd.github+json"));
    assert_eq!(call.api_version.as_deref(), Some("2022-11-28"));
    assert_eq!(call.user_agent.as_deref(), Some("rswe"));
}

#[tokio::test]
async fn api_url_with_a_trailing_slash_is_joined_onto() {
    let github = FakeGitHub::start().await;
    github.add_repository("octo", "hello", "main", true);
    let api = GitHubApi::new(&format!("{}/", github.api_url()), github.token()).unwrap();
    api.repository("octo", "hello").await.unwrap();
    assert_eq!(github.calls()[0].path, "/repos/octo/hello");
}

#[tokio::test]
async fn not_found_is_actionable() {
    let (_github, api) = setup().await;
    let error = api.repository("octo", "nope").await.unwrap_err();
    assert!(matches!(error, GitHubError::NotFound { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("octo/nope"), "{message}");
    assert!(message.contains("does not exist or the token cannot see it"), "{message}");
    assert!(message.contains("has access"), "{message}");
}

#[tokio::test]
async fn bad_token_is_unauthorized() {
    let (github, _) = setup().await;
    let api = GitHubApi::new(&github.api_url(), "ghp_wrongwrongwrong").unwrap();
    let error = api.repository("octo", "hello").await.unwrap_err();
    assert!(matches!(error, GitHubError::Unauthorized { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("GITHUB_TOKEN"), "{message}");
    assert!(message.contains("Bad credentials"), "{message}");
    assert!(!message.contains("ghp_wrong"), "{message}");
    assert_eq!(github.calls().len(), 1, "a 401 is not retried");
}

#[tokio::test]
async fn fork_then_repository_shows_parent() {
    let (github, api) = setup().await;
    github.set_user("rswe-bot");
    assert_eq!(api.authenticated_user().await.unwrap(), "rswe-bot");

    let fork = api.create_fork("octo", "hello", None).await.unwrap();
    assert_eq!(fork.full_name(), "rswe-bot/hello");
    assert_eq!(fork.parent, Some(("octo".to_owned(), "hello".to_owned())));

    let fork = api.repository("rswe-bot", "hello").await.unwrap();
    assert_eq!(fork.parent, Some(("octo".to_owned(), "hello".to_owned())));
    assert!(fork.can_push);

    let org_fork = api.create_fork("octo", "hello", Some("acme")).await.unwrap();
    assert_eq!(org_fork.full_name(), "acme/hello");
    let calls = github.calls();
    let fork_calls: Vec<_> = calls.iter().filter(|c| c.path == "/repos/octo/hello/forks").collect();
    assert_eq!(fork_calls.len(), 2);
    assert_eq!(fork_calls[0].method, "POST");
    assert_eq!(fork_calls[1].body["organization"], "acme");
}

#[tokio::test]
async fn pull_requests_are_created_found_and_not_duplicated() {
    let (github, api) = setup().await;
    assert_eq!(api.find_pull_request("octo", "hello", "rswe-bot:fix").await.unwrap(), None);

    let pull = api.create_pull_request("octo", "hello", &new_pull("rswe-bot:fix")).await.unwrap();
    assert_eq!(pull.number, 1);
    assert_eq!(pull.html_url, "https://github.com/octo/hello/pull/1");
    assert_eq!(pull.head, "rswe-bot:fix");
    assert_eq!(pull.base, "main");
    assert!(pull.draft);

    let stored = github.pull_requests();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].head, "rswe-bot:fix");
    assert_eq!(stored[0].base, "main");
    assert_eq!(stored[0].title, "Fix the thing");
    assert_eq!(stored[0].body, "Closes #3");
    assert!(stored[0].draft);
    let call = github.wait_for_call("POST", "/repos/octo/hello/pulls", Duration::from_secs(5)).await.unwrap();
    assert_eq!(call.body["head"], "rswe-bot:fix");
    assert_eq!(call.body["draft"], true);

    let error = api.create_pull_request("octo", "hello", &new_pull("rswe-bot:fix")).await.unwrap_err();
    match &error {
        GitHubError::Validation { errors, .. } => {
            assert_eq!(errors, &["A pull request already exists for rswe-bot:fix.".to_owned()]);
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    assert!(error.to_string().contains("A pull request already exists for rswe-bot:fix."), "{error}");
    assert_eq!(github.pull_requests().len(), 1);

    let found = api.find_pull_request("octo", "hello", "rswe-bot:fix").await.unwrap().unwrap();
    assert_eq!(found, pull);
    let find = github.calls().into_iter().rfind(|c| c.method == "GET").unwrap();
    assert_eq!(find.path, "/repos/octo/hello/pulls");
    assert_eq!(find.query.as_deref(), Some("head=rswe-bot%3Afix&state=open"));

    // A branch of the repository itself.
    let same = api.create_pull_request("octo", "hello", &new_pull("feature")).await.unwrap();
    assert_eq!(same.number, 2);
    let found = api.find_pull_request("octo", "hello", "feature").await.unwrap().unwrap();
    assert_eq!(found.number, 2);
}

#[tokio::test]
async fn comments_and_reactions_are_recorded() {
    let (github, api) = setup().await;
    let id = api.comment("octo", "hello", 7, "On it.").await.unwrap();
    api.react_to_comment("octo", "hello", id, "eyes").await.unwrap();

    let comments = github.comments();
    assert_eq!(comments.len(), 1);
    assert_eq!((comments[0].id, comments[0].number, comments[0].body.as_str()), (id, 7, "On it."));
    let reactions = github.reactions();
    assert_eq!(reactions.len(), 1);
    assert_eq!((reactions[0].comment_id, reactions[0].content.as_str()), (id, "eyes"));

    let call = github
        .wait_for_call("POST", &format!("/repos/octo/hello/issues/comments/{id}/reactions"), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(call.body["content"], "eyes");
    let call = github.wait_for_call("POST", "/repos/octo/hello/issues/7/comments", Duration::from_secs(5)).await;
    assert_eq!(call.unwrap().body["body"], "On it.");

    // Reacting again is harmless.
    api.react_to_comment("octo", "hello", id, "eyes").await.unwrap();
    assert_eq!(github.reactions().len(), 1);

    let error = api.react_to_comment("octo", "hello", 999_999, "eyes").await.unwrap_err();
    assert!(matches!(error, GitHubError::NotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn permission_levels() {
    let (github, api) = setup().await;
    for level in ["admin", "maintain", "write", "triage", "read"] {
        let login = format!("user-{level}");
        github.set_permission("octo", "hello", &login, level);
        assert_eq!(api.permission("octo", "hello", &login).await.unwrap(), level);
    }
    assert_eq!(api.permission("octo", "hello", "stranger").await.unwrap(), "none");
    let call = github.calls().pop().unwrap();
    assert_eq!(call.path, "/repos/octo/hello/collaborators/stranger/permission");
}

#[tokio::test]
async fn rate_limited_call_waits_for_the_reset() {
    let (github, api) = setup().await;
    github.rate_limit_next(1);
    let repo = api.repository("octo", "hello").await.unwrap();
    assert_eq!(repo.default_branch, "main");

    let calls = github.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].status, 403);
    assert_eq!(calls[1].status, 200);
    let reset = UNIX_EPOCH + Duration::from_secs(calls[0].rate_limit_reset.unwrap());
    assert!(calls[1].at >= reset, "retried at {:?}, before the reset {reset:?}", calls[1].at);
}

#[tokio::test]
async fn token_only_in_the_authorization_header() {
    let (github, api) = setup().await;
    let token = github.token().to_owned();
    api.repository("octo", "hello").await.unwrap();
    api.create_pull_request("octo", "hello", &new_pull("rswe-bot:fix")).await.unwrap();
    let id = api.comment("octo", "hello", 1, "hi").await.unwrap();
    api.react_to_comment("octo", "hello", id, "eyes").await.unwrap();

    let mut errors = vec![
        api.repository("octo", "missing").await.unwrap_err(),
        api.create_pull_request("octo", "hello", &new_pull("rswe-bot:fix")).await.unwrap_err(),
        api.comment("octo", "hello", 1, "").await.unwrap_err(),
    ];
    // Nothing listens on port 1.
    let unreachable = GitHubApi::new("http://127.0.0.1:1/api/v3", &token).unwrap();
    errors.push(unreachable.authenticated_user().await.unwrap_err());
    for error in &errors {
        assert!(!error.to_string().contains(&token), "{error}");
        assert!(!format!("{error:?}").contains(&token), "{error:?}");
    }
    assert!(!format!("{api:?}").contains(&token));

    for call in github.calls() {
        assert_eq!(call.token.as_deref(), Some(token.as_str()));
        assert!(!call.path.contains(&token));
        assert!(!call.query.unwrap_or_default().contains(&token));
        assert!(!call.body.to_string().contains(&token));
    }
}

#[tokio::test]
async fn server_errors_are_retried_only_when_harmless() {
    let (github, api) = setup().await;
    github.fail_next(2, 502);
    assert_eq!(api.repository("octo", "hello").await.unwrap().default_branch, "main");
    let statuses: Vec<u16> = github.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [502, 502, 200]);
    // Backoff: 0.5 s, then 1 s.
    let calls = github.calls();
    assert!(calls[2].at.duration_since(calls[0].at).unwrap() >= Duration::from_millis(1500));

    // A comment may have been posted before the 502: it is not repeated.
    github.fail_next(1, 502);
    let error = api.comment("octo", "hello", 1, "hello").await.unwrap_err();
    assert!(matches!(error, GitHubError::Http { status: 502, .. }), "{error:?}");
    assert_eq!(github.calls().iter().filter(|c| c.path.ends_with("/comments")).count(), 1);
    assert!(github.comments().is_empty());
}
