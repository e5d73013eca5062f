#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `GitHubApi` against `FakeGitHub`.

use std::time::{Duration, UNIX_EPOCH};

use rswe_github::api::{GitHubApi, GitHubError, NewPullRequest, User};
use rswe_test_support::github::{FakeGitHub, PLACEHOLDER_SHA, user_id};

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

#[tokio::test]
async fn accounts_have_stable_ids() {
    let (github, api) = setup().await;
    let me = api.authenticated_user_id().await.unwrap();
    assert_eq!(me, User { login: "rswe-bot".to_owned(), id: user_id("rswe-bot") });
    let other = api.user("octocat").await.unwrap();
    assert_eq!(other, User { login: "octocat".to_owned(), id: user_id("octocat") });
    assert_eq!(api.user("octocat").await.unwrap().id, other.id);
    assert_ne!(other.id, me.id);

    // Public accounts need no token.
    let anonymous = GitHubApi::anonymous(&github.api_url()).unwrap();
    let bot = anonymous.user("my-app[bot]").await.unwrap();
    assert_eq!(bot.login, "my-app[bot]");
    let call = github.calls().pop().unwrap();
    assert_eq!(call.path, "/users/my-app%5Bbot%5D");
    assert_eq!(call.token, None);
    let error = anonymous.repository("octo", "hello").await.unwrap_err();
    assert!(matches!(error, GitHubError::Unauthorized { .. }), "{error:?}");
}

#[tokio::test]
async fn repositories_give_their_clone_url() {
    let (github, api) = setup().await;
    assert_eq!(api.repository("octo", "hello").await.unwrap().clone_url, "https://github.com/octo/hello.git");
    github.set_clone_url("octo", "hello", "http://127.0.0.1:9/octo/hello.git");
    assert_eq!(api.repository("octo", "hello").await.unwrap().clone_url, "http://127.0.0.1:9/octo/hello.git");
}

#[tokio::test]
async fn pull_request_details() {
    let (github, api) = setup().await;
    api.create_fork("octo", "hello", None).await.unwrap();
    let pull = api.create_pull_request("octo", "hello", &new_pull("rswe-bot:fix")).await.unwrap();

    let detail = api.pull_request("octo", "hello", pull.number).await.unwrap();
    assert_eq!(detail.number, pull.number);
    assert_eq!(detail.html_url, pull.html_url);
    assert_eq!(detail.state, "open");
    assert_eq!(detail.title, "Fix the thing");
    assert_eq!(detail.body, "Closes #3");
    assert!(detail.draft);
    assert!(!detail.merged);
    assert_eq!(detail.head_ref, "fix");
    assert_eq!(detail.head_sha, PLACEHOLDER_SHA);
    assert_eq!(detail.head_repository.as_deref(), Some("rswe-bot/hello"));
    assert_eq!(detail.base_ref, "main");

    let sha = "a".repeat(40);
    github.set_pull_head_sha("octo", "hello", pull.number, &sha);
    assert_eq!(api.pull_request("octo", "hello", pull.number).await.unwrap().head_sha, sha);

    let same = api.create_pull_request("octo", "hello", &new_pull("feature")).await.unwrap();
    let detail = api.pull_request("octo", "hello", same.number).await.unwrap();
    assert_eq!(detail.head_repository.as_deref(), Some("octo/hello"));
    assert_eq!(detail.head_ref, "feature");
    assert_eq!(github.calls().pop().unwrap().path, format!("/repos/octo/hello/pulls/{}", same.number));

    let error = api.pull_request("octo", "hello", 99).await.unwrap_err();
    assert!(matches!(error, GitHubError::NotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn review_comments_are_paged_and_replied_to() {
    let (github, api) = setup().await;
    let first = github.add_review_comment("octo", "hello", 4, "alice", "Rename this.", "src/lib.rs", Some(12));
    for i in 1..150 {
        github.add_review_comment("octo", "hello", 4, "bob", &format!("nit {i}"), "README.md", None);
    }
    // On another pull request: not listed.
    let elsewhere = github.add_review_comment("octo", "hello", 5, "alice", "Elsewhere", "a.rs", Some(1));

    let comments = api.review_comments("octo", "hello", 4).await.unwrap();
    assert_eq!(comments.len(), 150);
    assert_eq!(comments[0].id, first);
    assert_eq!(comments[0].user, "alice");
    assert_eq!(comments[0].body, "Rename this.");
    assert_eq!(comments[0].path, "src/lib.rs");
    assert_eq!(comments[0].line, Some(12));
    assert_eq!(comments[0].in_reply_to_id, None);
    assert_eq!(comments[0].html_url, format!("https://github.com/octo/hello/pull/4#discussion_r{first}"));
    assert!(comments[0].created_at.ends_with('Z'), "{}", comments[0].created_at);
    assert_eq!(comments[149].body, "nit 149");
    assert_eq!(comments[149].line, None);
    let pages: Vec<_> = github.calls().into_iter().filter_map(|c| c.query).collect();
    assert_eq!(pages, ["per_page=100", "per_page=100&page=2"]);

    let reply = api.reply_to_review_comment("octo", "hello", 4, first, "Done.").await.unwrap();
    let call = github.calls().pop().unwrap();
    assert_eq!((call.method.as_str(), call.status), ("POST", 201));
    assert_eq!(call.path, format!("/repos/octo/hello/pulls/4/comments/{first}/replies"));
    assert_eq!(call.body, serde_json::json!({"body": "Done."}));
    let comments = api.review_comments("octo", "hello", 4).await.unwrap();
    let listed = comments.iter().find(|c| c.id == reply).unwrap();
    assert_eq!((listed.user.as_str(), listed.body.as_str()), ("rswe-bot", "Done."));
    assert_eq!((listed.in_reply_to_id, listed.path.as_str(), listed.line), (Some(first), "src/lib.rs", Some(12)));
    let stored = github.review_comments();
    assert_eq!(stored.last().unwrap().in_reply_to_id, Some(first));

    for (number, id) in [(4, 999_999), (4, elsewhere)] {
        let error = api.reply_to_review_comment("octo", "hello", number, id, "Done.").await.unwrap_err();
        assert!(matches!(error, GitHubError::NotFound { .. }), "{error:?}");
    }
    assert_eq!(github.review_comments().len(), 152);
}

#[tokio::test]
async fn reviews_are_listed() {
    let (github, api) = setup().await;
    let approved = github.add_review("octo", "hello", 4, "alice", "APPROVED", "");
    let changes = github.add_review("octo", "hello", 4, "bob", "CHANGES_REQUESTED", "Please add a test.");
    github.add_review("octo", "hello", 5, "bob", "COMMENTED", "Other PR");
    let reviews = api.reviews("octo", "hello", 4).await.unwrap();
    assert_eq!(reviews.len(), 2);
    assert_eq!((reviews[0].id, reviews[0].user.as_str(), reviews[0].state.as_str()), (approved, "alice", "APPROVED"));
    assert_eq!(reviews[0].body, "");
    assert_eq!((reviews[1].id, reviews[1].body.as_str()), (changes, "Please add a test."));
    let call = github.calls().pop().unwrap();
    assert_eq!(
        (call.path.as_str(), call.query.as_deref()),
        ("/repos/octo/hello/pulls/4/reviews", Some("per_page=100"))
    );
}

#[tokio::test]
async fn issues_and_their_comments() {
    let (github, api) = setup().await;
    github.add_issue("octo", "hello", 10, "It crashes", "Steps: run it.", false);
    let issue = api.issue("octo", "hello", 10).await.unwrap();
    assert_eq!((issue.number, issue.title.as_str(), issue.body.as_str()), (10, "It crashes", "Steps: run it."));
    assert!(!issue.is_pull_request);
    assert_eq!((issue.state.as_str(), issue.html_url.as_str()), ("open", "https://github.com/octo/hello/issues/10"));
    assert_eq!(issue.author, "octocat");

    // Issues and pull requests share one sequence of numbers.
    let pull = api.create_pull_request("octo", "hello", &new_pull("feature")).await.unwrap();
    assert_eq!(pull.number, 11);
    let as_issue = api.issue("octo", "hello", 11).await.unwrap();
    assert!(as_issue.is_pull_request);
    assert_eq!(as_issue.html_url, "https://github.com/octo/hello/pull/11");
    assert_eq!(as_issue.author, "rswe-bot", "opened with the token");
    assert_eq!(as_issue.title, "Fix the thing");
    let error = api.issue("octo", "hello", 12).await.unwrap_err();
    assert!(matches!(error, GitHubError::NotFound { .. }), "{error:?}");

    let theirs = github.add_issue_comment("octo", "hello", 10, "alice", "Any news?");
    let mine = api.comment("octo", "hello", 10, "Looking.").await.unwrap();
    let comments = api.issue_comments("octo", "hello", 10).await.unwrap();
    assert_eq!(comments.len(), 2);
    assert_eq!((comments[0].id, comments[0].user.as_str(), comments[0].body.as_str()), (theirs, "alice", "Any news?"));
    assert_eq!(comments[0].html_url, format!("https://github.com/octo/hello/issues/10#issuecomment-{theirs}"));
    assert!(comments[0].created_at.starts_with("20"), "{}", comments[0].created_at);
    assert_eq!((comments[1].id, comments[1].user.as_str()), (mine, "rswe-bot"));

    // Someone else's comment takes reactions too.
    api.react_to_comment("octo", "hello", theirs, "eyes").await.unwrap();
    assert_eq!(github.reactions()[0].comment_id, theirs);
}

#[tokio::test]
async fn lists_stop_after_five_pages() {
    let (github, api) = setup().await;
    for i in 0..520 {
        github.add_issue_comment("octo", "hello", 3, "alice", &format!("comment {i}"));
    }
    let comments = api.issue_comments("octo", "hello", 3).await.unwrap();
    assert_eq!(comments.len(), 500);
    assert_eq!(comments[499].body, "comment 499");
    assert_eq!(github.calls().len(), 5);
}

#[tokio::test]
async fn check_runs_by_ref() {
    let (github, api) = setup().await;
    let sha = "b".repeat(40);
    let build = github.add_check_run("octo", "hello", &sha, "build", "completed", Some("success"), "ok");
    let test = github.add_check_run("octo", "hello", &sha, "test", "in_progress", None, "");
    github.add_check_run("octo", "hello", "feature/x", "lint", "queued", None, "");

    let runs = api.check_runs("octo", "hello", &sha).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!((runs[0].id, runs[0].name.as_str(), runs[0].status.as_str()), (build, "build", "completed"));
    assert_eq!(runs[0].conclusion.as_deref(), Some("success"));
    assert!(runs[0].html_url.contains(&build.to_string()), "{}", runs[0].html_url);
    assert!(!runs[0].details_url.is_empty());
    assert!(runs[0].title.is_some());
    assert_eq!((runs[1].id, runs[1].conclusion.as_deref(), runs[1].title.as_deref()), (test, None, None));
    let call = github.calls().pop().unwrap();
    assert_eq!(call.path, format!("/repos/octo/hello/commits/{sha}/check-runs"));
    assert_eq!(call.query.as_deref(), Some("per_page=100&page=1"));

    github.update_check_run(test, "completed", Some("failure"));
    let runs = api.check_runs("octo", "hello", &sha).await.unwrap();
    assert_eq!((runs[1].status.as_str(), runs[1].conclusion.as_deref()), ("completed", Some("failure")));

    // A branch with a slash is one path segment.
    let runs = api.check_runs("octo", "hello", "feature/x").await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].name, "lint");
    assert_eq!(github.calls().pop().unwrap().path, "/repos/octo/hello/commits/feature%2Fx/check-runs");
    assert!(api.check_runs("octo", "hello", "main").await.unwrap().is_empty());
}

#[tokio::test]
async fn job_logs_follow_the_redirect_and_keep_the_end() {
    let (github, api) = setup().await;
    let log = "line 1\nline 2\nerror: naïve assumption\n";
    let job = github.add_check_run("octo", "hello", "main", "test", "completed", Some("failure"), log);

    assert_eq!(api.job_log("octo", "hello", job, 10_000).await.unwrap(), log);
    let calls = github.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].path, format!("/repos/octo/hello/actions/jobs/{job}/logs"));
    assert_eq!(calls[0].status, 302);
    assert_eq!(calls[1].path, format!("/_logs/{job}"));
    assert_eq!(calls[1].status, 200);

    assert_eq!(api.job_log("octo", "hello", job, 8).await.unwrap(), "umption\n");
    // The cut would fall inside "ï" (two bytes): it moves past it.
    let from_i = &log[log.find('ï').unwrap()..];
    let cut = api.job_log("octo", "hello", job, from_i.len() - 1).await.unwrap();
    assert_eq!(cut, &from_i[2..]);

    // Not an Actions job (or not visible): no log.
    assert_eq!(api.job_log("octo", "hello", 424_242, 100).await.unwrap(), "");
}
