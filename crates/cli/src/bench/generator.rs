//! The deterministic generator of the benchmark's trajectories.
//!
//! Each [`Recipe`] describes a task on a fictional repository (its language, size, test
//! suite, dependencies) and the phases of the work (orient, reproduce, implement,
//! refactor, debug a running server, triage CI, verify, wrap up). The generator walks the
//! phases step by step, drawing from a seeded [`Rng`] what the agent does next from the
//! phase's mix of actions, and synthesising what each tool prints (see
//! [`super::tool_output`]). Tests fail until the fix lands, edits sometimes break the
//! build, the dev server's log grows with traffic: the results follow the work.
//!
//! `rswe bench context --generate DIR` writes the fixtures; the same code always writes
//! the same bytes (a test checks the committed fixtures against it).

use super::tool_output::{self, Lang, Module, Project, Run, TestRef, camel, editor_view, pascal, snippet, version};
use super::trajectory::{AssistantTurn, Rng, Step, ToolCall, ToolResult, Trajectory};
use serde_json::{Value, json};
use std::fmt::Write as _;

/// A part of the work, with its own mix of actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the code: directory views, searches, whole files.
    Orient,
    /// Making the failure happen: test runs, the server, the traceback's files.
    Reproduce,
    /// Edit, test, repeat.
    Implement,
    /// The same change across many files: searches, small edits, builds.
    Refactor,
    /// A running server: its log, requests against it, restarts.
    Debug,
    /// A failed CI run: its log, installs, the full suite.
    Triage,
    /// The whole suite, the linters, the type checker, the diff.
    Verify,
    /// Status, diff, the todo list closed.
    WrapUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    ViewFile,
    ViewRange,
    ViewDir,
    Search,
    FindFiles,
    Replace,
    Create,
    TestOne,
    TestAll,
    Build,
    Lint,
    GitStatus,
    GitDiff,
    GitLog,
    ShowConfig,
    Todo,
    Think,
    ServerStart,
    ServerLog,
    Curl,
    TailLog,
    CiLog,
    CiGrep,
    Install,
}

impl Action {
    fn read_only(self) -> bool {
        matches!(self, Action::ViewFile | Action::ViewRange | Action::Search | Action::FindFiles)
    }
}

fn mix(phase: Phase, server: bool) -> Vec<(Action, u32)> {
    use Action::*;
    let mut mix = match phase {
        Phase::Orient => {
            vec![(ViewFile, 5), (ViewRange, 2), (Search, 4), (FindFiles, 2), (GitLog, 1), (ShowConfig, 1), (Think, 1)]
        }
        Phase::Reproduce => vec![(TestOne, 3), (TestAll, 2), (ViewFile, 2), (ViewRange, 2), (Search, 1), (Think, 1)],
        Phase::Implement => vec![
            (ViewFile, 3),
            (ViewRange, 3),
            (Search, 3),
            (Replace, 6),
            (Create, 1),
            (TestOne, 3),
            (TestAll, 1),
            (Build, 1),
            (Think, 1),
            (Todo, 1),
        ],
        Phase::Refactor => {
            vec![(Search, 4), (ViewRange, 3), (ViewFile, 2), (Replace, 8), (Build, 3), (TestOne, 1), (Todo, 1)]
        }
        Phase::Debug => vec![
            (ServerLog, 3),
            (Curl, 3),
            (TailLog, 1),
            (ViewRange, 2),
            (Search, 2),
            (Replace, 2),
            (TestOne, 1),
            (Think, 1),
            (ServerStart, 1),
        ],
        Phase::Triage => {
            vec![(CiGrep, 3), (Install, 1), (TestAll, 2), (Search, 2), (ViewRange, 2), (Replace, 1), (Think, 1)]
        }
        Phase::Verify => vec![(TestAll, 3), (Lint, 2), (Build, 2), (Replace, 1), (ViewRange, 1), (GitDiff, 1)],
        Phase::WrapUp => vec![(GitStatus, 1), (GitDiff, 1)],
    };
    if server && matches!(phase, Phase::Implement | Phase::Reproduce) {
        mix.extend([(Curl, 1), (ServerLog, 1)]);
    }
    mix
}

/// A task on a fictional repository, and how the work on it goes.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub name: &'static str,
    pub description: &'static str,
    pub task: &'static str,
    pub final_text: &'static str,
    pub seed: u64,
    pub lang: Lang,
    pub project: &'static str,
    pub nouns: &'static [&'static str],
    /// Crates, packages or source areas.
    pub units: &'static [&'static str],
    pub modules: usize,
    pub module_lines: (usize, usize),
    pub tests_per_module: (usize, usize),
    pub deps: &'static [&'static str],
    /// How many modules the task is about.
    pub focus: usize,
    pub initially_failing: usize,
    /// Only small outputs: views of ranges, targeted quiet test runs, few search hits.
    pub small_outputs: bool,
    /// Large outputs: whole-suite verbose runs with backtraces, long logs, big files.
    pub large_outputs: bool,
    pub server: bool,
    pub phases: Vec<(Phase, usize)>,
}

impl Recipe {
    pub fn steps(&self) -> usize {
        self.phases.iter().map(|(_, n)| n).sum()
    }
}

const PY_DEPS: &[&str] = &[
    "fastapi",
    "pydantic",
    "sqlalchemy",
    "alembic",
    "httpx",
    "python-dateutil",
    "pytz",
    "click",
    "rich",
    "structlog",
    "uvicorn",
    "orjson",
    "tenacity",
    "jinja2",
    "boto3",
    "psycopg",
    "redis",
    "celery",
    "pytest",
    "pytest-asyncio",
    "mypy",
    "ruff",
    "freezegun",
    "hypothesis",
];
const RUST_DEPS: &[&str] = &[
    "proc-macro2",
    "unicode-ident",
    "quote",
    "syn",
    "libc",
    "cfg-if",
    "once_cell",
    "memchr",
    "serde",
    "serde_derive",
    "itoa",
    "ryu",
    "serde_json",
    "log",
    "pin-project-lite",
    "bytes",
    "futures-core",
    "tokio-macros",
    "mio",
    "socket2",
    "tokio",
    "smallvec",
    "parking_lot_core",
    "lock_api",
    "parking_lot",
    "scopeguard",
    "autocfg",
    "hashbrown",
    "equivalent",
    "indexmap",
    "tracing-core",
    "tracing-attributes",
    "tracing",
    "thiserror-impl",
    "thiserror",
    "anyhow",
    "regex-syntax",
    "aho-corasick",
    "regex-automata",
    "regex",
    "http",
    "httparse",
    "tower-service",
    "tower-layer",
    "tower",
    "hyper",
    "axum-core",
    "axum",
    "sqlx-core",
    "sqlx-macros",
    "sqlx",
    "chrono",
    "uuid",
    "rand_core",
    "rand",
    "sha2",
    "digest",
    "crc32fast",
    "zstd-sys",
    "zstd",
    "prost",
    "tonic",
    "clap_lex",
    "clap_builder",
    "clap_derive",
    "clap",
    "toml",
    "serde_spanned",
    "winnow",
    "dashmap",
    "arc-swap",
    "bitflags",
    "base64",
    "percent-encoding",
    "url",
    "idna",
    "form_urlencoded",
    "mime",
    "tokio-util",
    "h2",
    "rustls",
    "ring",
    "webpki-roots",
    "tracing-subscriber",
    "sharded-slab",
    "nu-ansi-term",
    "matchers",
];
const TS_DEPS: &[&str] = &[
    "express",
    "zod",
    "pg",
    "kysely",
    "date-fns",
    "csv-stringify",
    "pino",
    "ioredis",
    "jsonwebtoken",
    "bullmq",
    "undici",
    "lodash",
    "react",
    "react-dom",
    "@tanstack/react-query",
    "typescript",
    "jest",
    "ts-jest",
    "eslint",
    "tsx",
    "prettier",
    "supertest",
];
const GO_DEPS: &[&str] = &[
    "github.com/jackc/pgx/v5",
    "github.com/go-chi/chi/v5",
    "github.com/google/uuid",
    "go.uber.org/zap",
    "github.com/stretchr/testify",
    "github.com/aws/aws-sdk-go-v2",
    "github.com/prometheus/client_golang",
    "golang.org/x/sync",
    "github.com/redis/go-redis/v9",
    "google.golang.org/grpc",
    "google.golang.org/protobuf",
    "github.com/spf13/cobra",
    "github.com/golang-migrate/migrate/v4",
    "github.com/klauspost/compress",
];

/// The committed fixtures, shortest first.
pub fn recipes() -> Vec<Recipe> {
    vec![
        Recipe {
            name: "01-docs-flag-fix",
            description: "A small documentation fix: a wrong CLI flag in the README and in a command's help text. \
                          Twenty steps, only small outputs (ranges of files, a handful of search hits, a targeted \
                          quiet test run).",
            task: "The README and `invoicectl export --help` both say `--format=xlsx`, but the flag is \
                   `--output-format` and only `csv` and `json` exist. Please fix the docs and the help text.",
            final_text: "Fixed the documentation of the export flag: the README and the `export` command's help now \
                         name `--output-format` with its two values, `csv` and `json`. The CLI tests pass.",
            seed: 0x0d0c_5f1a_0001,
            lang: Lang::Python,
            project: "invoicectl",
            nouns: &["invoice", "customer", "export", "currency", "line_item", "statement"],
            units: &["invoicectl"],
            modules: 14,
            module_lines: (60, 320),
            tests_per_module: (3, 8),
            deps: &PY_DEPS[..10],
            focus: 2,
            initially_failing: 0,
            small_outputs: true,
            large_outputs: false,
            server: false,
            phases: vec![(Phase::Orient, 6), (Phase::Implement, 9), (Phase::Verify, 3), (Phase::WrapUp, 2)],
        },
        Recipe {
            name: "02-ci-failure-triage",
            description: "Triage of a red CI run on a large Python service: the failed jobs' logs (long), a fresh \
                          install, full verbose test runs of about 1,800 tests, then a small fix. Forty steps \
                          with large outputs.",
            task: "CI on main has been red since this morning (run 9876543210): the `test (3.12)` job fails. \
                   Find out why and fix it.",
            final_text: "CI failed because `python-dateutil` 2.9 changed how naive timestamps are parsed, which \
                         broke the statement period boundaries. I pinned the parsing to UTC explicitly in the \
                         statement module and added a regression test; the full suite passes locally (1,800+ tests).",
            seed: 0x0c1f_a11d_0002,
            lang: Lang::Python,
            project: "ledger",
            nouns: &["ledger", "account", "statement", "period", "payment", "refund", "currency", "journal"],
            units: &["ledger"],
            modules: 90,
            module_lines: (80, 700),
            tests_per_module: (12, 28),
            deps: PY_DEPS,
            focus: 4,
            initially_failing: 3,
            small_outputs: false,
            large_outputs: true,
            server: false,
            phases: vec![(Phase::Triage, 14), (Phase::Implement, 14), (Phase::Verify, 9), (Phase::WrapUp, 3)],
        },
        Recipe {
            name: "03-bugfix-timezone",
            description: "A bug fix in a Python billing service: due dates shift by a day across time zones. Sixty \
                          steps: orient, reproduce with pytest, fix and test in a loop, verify with the full suite, \
                          mypy and ruff.",
            task: "Invoices created after 23:00 in America/Los_Angeles get a due date one day too early. \
                   Find the cause, fix it and add a regression test.",
            final_text: "The due date was computed from the UTC date of `created_at` instead of the customer's \
                         local date. `billing/due_dates.py` now converts to the customer's zone first; two \
                         regression tests cover the evening case and daylight-saving changes. All tests, mypy and \
                         ruff pass.",
            seed: 0xb1_11ed_0003,
            lang: Lang::Python,
            project: "billing",
            nouns: &["invoice", "customer", "due_date", "payment", "currency", "tax_rate", "discount", "plan"],
            units: &["billing"],
            modules: 32,
            module_lines: (80, 700),
            tests_per_module: (8, 20),
            deps: PY_DEPS,
            focus: 4,
            initially_failing: 2,
            small_outputs: false,
            large_outputs: false,
            server: false,
            phases: vec![
                (Phase::Orient, 10),
                (Phase::Reproduce, 6),
                (Phase::Implement, 32),
                (Phase::Verify, 8),
                (Phase::WrapUp, 4),
            ],
        },
        Recipe {
            name: "04-debug-memory-leak",
            description: "Debugging a memory leak in a Rust HTTP service: the server runs in the background and its \
                          log is read again and again, load is generated with curl, the whole workspace's tests \
                          run with backtraces, big files are read whole. Ninety steps with large outputs.",
            task: "The `search-api` service's memory grows by ~200 MB an hour under load until it is OOM-killed. \
                   Reproduce it locally, find the leak and fix it.",
            final_text: "The leak was the per-request query cache: entries were keyed by the request id, so none was \
                         ever reused or evicted. The cache is now keyed by the normalised query with an LRU bound, \
                         and the shard readers drop their snapshots when a request ends. Memory stays flat under the \
                         load script; the workspace tests pass.",
            seed: 0x1eac_0004,
            lang: Lang::Rust,
            project: "search",
            nouns: &["query", "shard", "segment", "posting", "snapshot", "cursor", "cache", "document", "schema"],
            units: &["core", "index", "api", "store"],
            modules: 70,
            module_lines: (120, 900),
            tests_per_module: (10, 30),
            deps: RUST_DEPS,
            focus: 6,
            initially_failing: 1,
            small_outputs: false,
            large_outputs: true,
            server: true,
            phases: vec![
                (Phase::Orient, 10),
                (Phase::Reproduce, 12),
                (Phase::Debug, 40),
                (Phase::Implement, 16),
                (Phase::Verify, 10),
                (Phase::WrapUp, 2),
            ],
        },
        Recipe {
            name: "05-refactor-error-types",
            description: "A refactor across a Rust workspace: replace stringly errors with typed `thiserror` enums \
                          in four crates. 120 steps, mostly searches, small edits in many files and builds with \
                          compiler errors and warnings.",
            task: "Our library crates return `Result<T, String>` all over. Introduce proper error enums with \
                   thiserror in `core`, `index` and `store`, convert the call sites, and keep the API crate \
                   compiling. No behaviour change.",
            final_text: "Each library crate now has its own error enum (`CoreError`, `IndexError`, `StoreError`) \
                         with `#[from]` conversions; 140 call sites were converted and the API maps the enums to \
                         HTTP statuses as before. `cargo build`, `cargo clippy -D warnings` and the workspace tests \
                         pass.",
            seed: 0x7e_f4c7_0005,
            lang: Lang::Rust,
            project: "search",
            nouns: &["query", "shard", "segment", "posting", "snapshot", "cursor", "tokenizer", "document", "schema"],
            units: &["core", "index", "api", "store"],
            modules: 60,
            module_lines: (60, 900),
            tests_per_module: (4, 15),
            deps: RUST_DEPS,
            focus: 24,
            initially_failing: 0,
            small_outputs: false,
            large_outputs: false,
            server: false,
            phases: vec![(Phase::Orient, 14), (Phase::Refactor, 76), (Phase::Verify, 24), (Phase::WrapUp, 6)],
        },
        Recipe {
            name: "06-feature-csv-export",
            description: "A feature in a TypeScript service: CSV export of reports with streaming, filters and a \
                          new endpoint. 200 steps: orient, implement with many jest runs (the results go to \
                          stderr), tsc builds, a dev server debugged through its log, verify.",
            task: "Add CSV export to reports: `GET /api/v1/reports/:id/export.csv` should stream the report's rows \
                   with the same filters as the JSON endpoint, with a header row and RFC 4180 quoting. Add tests.",
            final_text: "Reports can be exported as CSV: a new streaming endpoint reuses the JSON endpoint's filter \
                         parsing, writes a header row and quotes fields per RFC 4180, and respects the row limit. \
                         New tests cover quoting, filters, empty reports and large reports; jest, tsc and eslint \
                         pass.",
            seed: 0xc57e_0006,
            lang: Lang::TypeScript,
            project: "reports",
            nouns: &["report", "column", "row", "filter", "export", "dataset", "widget", "schedule", "template"],
            units: &["reports", "export", "api", "datasets", "auth"],
            modules: 50,
            module_lines: (60, 650),
            tests_per_module: (5, 14),
            deps: TS_DEPS,
            focus: 10,
            initially_failing: 0,
            small_outputs: false,
            large_outputs: false,
            server: true,
            phases: vec![
                (Phase::Orient, 16),
                (Phase::Implement, 110),
                (Phase::Debug, 30),
                (Phase::Implement, 24),
                (Phase::Verify, 14),
                (Phase::WrapUp, 6),
            ],
        },
        Recipe {
            name: "07-migrate-storage-layer",
            description: "A long migration in a Go service: move the storage layer from raw SQL to a repository \
                          package with transactions, across eighty files, with a dev server checked through its \
                          log. 300 steps; without management the history outgrows a 200k window.",
            task: "Migrate the storage layer from the ad-hoc SQL in the handlers to the `repository` package \
                   (one repository per aggregate, transactions through `repository.Tx`). Keep the HTTP API \
                   unchanged and all tests green.",
            final_text: "All handlers now go through the repository package: nine repositories, transactions \
                         through `repository.Tx`, the raw SQL removed from the handlers. The API is unchanged (the \
                         handler tests pass untouched), `go vet` is clean, and the server runs against the local \
                         database.",
            seed: 0x5707_a6e0_0007,
            lang: Lang::Go,
            project: "fleet",
            nouns: &["vehicle", "driver", "route", "trip", "depot", "tenant", "lease", "invoice", "repository"],
            units: &["handlers", "repository", "domain", "billing", "dispatch", "auth"],
            modules: 80,
            module_lines: (80, 800),
            tests_per_module: (4, 12),
            deps: GO_DEPS,
            focus: 30,
            initially_failing: 0,
            small_outputs: false,
            large_outputs: false,
            server: true,
            phases: vec![
                (Phase::Orient, 20),
                (Phase::Refactor, 90),
                (Phase::Implement, 70),
                (Phase::Debug, 40),
                (Phase::Implement, 40),
                (Phase::Verify, 30),
                (Phase::WrapUp, 10),
            ],
        },
    ]
}

/// A small recipe for tests: a Python bug fix of `steps` steps with ordinary outputs.
#[cfg(test)]
pub fn test_recipe(steps: usize) -> Recipe {
    let mut recipe = recipes().swap_remove(2);
    recipe.name = "test-small";
    let orient = steps / 3;
    recipe.phases = vec![(Phase::Orient, orient), (Phase::Implement, steps - orient)];
    recipe
}

fn build_project(recipe: &Recipe, rng: &mut Rng) -> Project {
    let mut rng = rng.fork("project");
    let mut modules = Vec::with_capacity(recipe.modules);
    let mut project = Project {
        lang: recipe.lang,
        name: recipe.project.to_string(),
        nouns: recipe.nouns.to_vec(),
        modules: Vec::new(),
        deps: recipe.deps.iter().map(|d| (*d, version(&mut rng))).collect(),
    };
    let mut taken: Vec<String> = Vec::new();
    while modules.len() < recipe.modules {
        let unit = (rng.pick(recipe.units)).to_string();
        let a = rng.pick(recipe.nouns);
        let b = rng.pick(&["service", "store", "model", "rules", "format", "cache", "client", "sync", "views", "util"]);
        let mut name = if rng.chance(0.4) { a.to_string() } else { format!("{a}_{b}") };
        let mut key = format!("{unit}/{name}");
        if taken.contains(&key) {
            // Large projects run out of pairs: a third word, as real code bases do.
            name = format!("{name}_{}", rng.pick(&["v2", "legacy", "batch", "async", "http", "sql", "types"]));
            key = format!("{unit}/{name}");
            if taken.contains(&key) {
                continue;
            }
        }
        taken.push(key);
        let (path, test_path) = match recipe.lang {
            Lang::Rust => {
                let path = format!("crates/{unit}/src/{name}.rs");
                (path.clone(), path)
            }
            Lang::Python => (format!("src/{unit}/{name}.py"), format!("tests/test_{name}.py")),
            Lang::TypeScript => {
                let file = camel(&name);
                (format!("src/{unit}/{file}.ts"), format!("src/{unit}/{file}.test.ts"))
            }
            Lang::Go => (format!("internal/{unit}/{name}.go"), format!("internal/{unit}/{name}_test.go")),
        };
        let lines = rng.log_range(recipe.module_lines.0, recipe.module_lines.1);
        let mut module = Module { path, test_path, unit, name, lines, seed: rng.next_u64(), tests: Vec::new() };
        let count = rng.range(recipe.tests_per_module.0, recipe.tests_per_module.1);
        while module.tests.len() < count {
            let test = project.test_name(&mut rng, &module.name);
            if !module.tests.contains(&test) {
                module.tests.push(test);
            }
        }
        modules.push(module);
    }
    project.modules = modules;
    project
}

/// The state of the simulated session.
struct Session<'a> {
    recipe: &'a Recipe,
    project: Project,
    rng: Rng,
    steps: Vec<Step>,
    focus: Vec<usize>,
    failing: Vec<TestRef>,
    edited: Vec<String>,
    dirty: bool,
    built: bool,
    server: Option<u32>,
    servers_started: u32,
    clock: u64,
    todo_done: usize,
}

const TODO_ITEMS: &[&str] = &[
    "Read the code involved",
    "Reproduce the problem",
    "Make the change",
    "Cover it with tests",
    "Run the full suite and the linters",
    "Review the diff and summarise",
];

impl<'a> Session<'a> {
    fn new(recipe: &'a Recipe) -> Session<'a> {
        let mut rng = Rng::new(recipe.seed);
        let project = build_project(recipe, &mut rng);
        let mut focus: Vec<usize> = Vec::new();
        while focus.len() < recipe.focus.min(project.modules.len()) {
            let m = rng.below(project.modules.len());
            if !focus.contains(&m) {
                focus.push(m);
            }
        }
        let mut failing = Vec::new();
        for i in 0..recipe.initially_failing {
            let m = focus[i % focus.len()];
            let test = rng.below(project.modules[m].tests.len());
            failing.push(TestRef { module: m, test });
        }
        failing.sort();
        failing.dedup();
        Session {
            recipe,
            project,
            rng,
            steps: Vec::new(),
            focus,
            failing,
            edited: Vec::new(),
            dirty: false,
            built: false,
            server: None,
            servers_started: 0,
            clock: 0,
            todo_done: 0,
        }
    }

    fn pick_module(&mut self) -> usize {
        if self.rng.chance(0.8) { self.rng.pick(&self.focus) } else { self.rng.below(self.project.modules.len()) }
    }

    fn run(mut self) -> Trajectory {
        let total = self.recipe.steps();
        let phases = self.recipe.phases.clone();
        for (p, &(phase, count)) in phases.iter().enumerate() {
            let mut mix = mix(phase, self.recipe.server);
            if self.recipe.small_outputs {
                mix.retain(|(action, _)| *action != Action::Create);
            }
            for i in 0..count {
                if phase == Phase::Verify && i + 1 == count {
                    // The last full run of the verification passes.
                    self.failing.clear();
                }
                let forced = self.forced(phase, i, count, p == phases.len() - 1);
                let first = forced.unwrap_or_else(|| self.draw(&mix));
                let mut actions = vec![first];
                if forced.is_none() && first.read_only() {
                    let extra = if self.rng.chance(0.25) { 1 + usize::from(self.rng.chance(0.3)) } else { 0 };
                    for _ in 0..extra {
                        let next = self.draw(&mix);
                        if next.read_only() {
                            actions.push(next);
                        }
                    }
                }
                let progress = self.steps.len() as f64 / total as f64;
                self.step(phase, &actions, progress);
            }
            if phase == Phase::Verify {
                self.failing.clear();
            }
        }
        let final_text = if self.edited.is_empty() {
            self.recipe.final_text.to_string()
        } else {
            let mut files: Vec<&String> = self.edited.iter().collect();
            files.sort();
            files.dedup();
            let list: Vec<String> = files.iter().take(12).map(|f| format!("- `{f}`")).collect();
            let more = files.len().saturating_sub(12);
            format!(
                "{}\n\nFiles changed:\n{}{}",
                self.recipe.final_text,
                list.join("\n"),
                if more > 0 { format!("\n- and {more} more") } else { String::new() }
            )
        };
        Trajectory {
            name: self.recipe.name.to_string(),
            description: self.recipe.description.to_string(),
            task: self.recipe.task.to_string(),
            steps: self.steps,
            final_text,
        }
    }

    /// The action a phase's structure imposes at this step, if any.
    fn forced(&mut self, phase: Phase, i: usize, count: usize, last_phase: bool) -> Option<Action> {
        match (phase, i) {
            (Phase::Orient, 0) => Some(Action::ViewDir),
            (Phase::Orient, 1) | (Phase::Triage, 1) => Some(Action::Todo),
            (Phase::Triage, 0) => Some(Action::CiLog),
            (Phase::Reproduce, 0) | (Phase::Debug, 0) if self.recipe.server && self.server.is_none() => {
                Some(Action::ServerStart)
            }
            (Phase::Verify, n) if n + 1 == count => Some(Action::TestAll),
            (Phase::WrapUp, n) if n + 1 == count && last_phase => Some(Action::Todo),
            (Phase::WrapUp, 0) => Some(Action::GitStatus),
            _ => None,
        }
    }

    fn draw(&mut self, mix: &[(Action, u32)]) -> Action {
        let weights: Vec<u32> = mix
            .iter()
            .map(|&(action, w)| match action {
                Action::ServerLog | Action::Curl if self.server.is_none() => 0,
                _ => w,
            })
            .collect();
        mix[self.rng.weighted(&weights)].0
    }

    fn step(&mut self, phase: Phase, actions: &[Action], progress: f64) {
        let mut calls = Vec::new();
        let mut results = Vec::new();
        let mut texts = Vec::new();
        for &action in actions {
            let (call, result, text) = self.act(phase, action, progress);
            calls.push(call);
            results.push(result);
            texts.push(text);
        }
        let text = match texts.into_iter().flatten().next() {
            Some(text) if self.rng.chance(0.7) => Some(text),
            _ => None,
        };
        self.steps.push(Step { assistant: AssistantTurn { text, tool_calls: calls }, results });
    }

    fn call(name: &str, input: Value) -> ToolCall {
        ToolCall { name: name.to_string(), input }
    }

    fn result(tool: &str, text: String, is_error: bool) -> ToolResult {
        ToolResult { tool: tool.to_string(), text, is_error }
    }

    fn shell(command: String, run: &Run) -> (ToolCall, ToolResult) {
        let input = json!({ "command": command });
        (Self::call("shell", input), Self::result("shell", run.render(), run.exit_code != 0))
    }

    fn act(&mut self, phase: Phase, action: Action, progress: f64) -> (ToolCall, ToolResult, Option<String>) {
        let small = self.recipe.small_outputs;
        let large = self.recipe.large_outputs;
        match action {
            Action::ViewDir => {
                let mut entries: Vec<String> = Vec::new();
                let mut units: Vec<&str> = self.project.modules.iter().map(|m| m.unit.as_str()).collect();
                units.sort();
                units.dedup();
                for unit in &units {
                    entries.push(match self.project.lang {
                        Lang::Rust => format!("crates/{unit}/"),
                        Lang::Go => format!("internal/{unit}/"),
                        _ => format!("src/{unit}/"),
                    });
                }
                for name in ["README.md", "docs/", ".github/", "scripts/", "Makefile", ".gitignore"] {
                    entries.push(name.to_string());
                }
                entries.push(
                    match self.project.lang {
                        Lang::Rust => "Cargo.toml (2.1 KiB)",
                        Lang::Python => "pyproject.toml (1.8 KiB)",
                        Lang::TypeScript => "package.json (1.4 KiB)",
                        Lang::Go => "go.mod (1.2 KiB)",
                    }
                    .to_string(),
                );
                if !small {
                    for m in self.project.modules.iter().take(60) {
                        let dir = m.path.rsplit_once('/').map_or("", |(d, _)| d);
                        entries.push(format!(
                            "{dir}/{} ({:.1} KiB)",
                            m.path.rsplit('/').next().unwrap_or(""),
                            m.lines as f64 * 0.04
                        ));
                    }
                }
                entries.sort();
                let text = format!("/workspace (two levels deep):\n{}", entries.join("\n"));
                let call = Self::call("editor", json!({"command": "view", "path": "."}));
                (
                    call,
                    Self::result("editor", text, false),
                    Some("Let me look at the repository's layout first.".into()),
                )
            }
            Action::ViewFile if small => self.act(phase, Action::ViewRange, progress),
            Action::ViewFile => {
                let m = self.pick_module();
                let test_file = self.project.lang != Lang::Rust && self.rng.chance(0.25);
                let module = &self.project.modules[m];
                let path = if test_file { module.test_path.clone() } else { module.path.clone() };
                let lines = self.project.source(module, test_file);
                let text = editor_view(&path, &lines, None);
                let say = self.say_view(&path);
                (
                    Self::call("editor", json!({"command": "view", "path": path})),
                    Self::result("editor", text, false),
                    say,
                )
            }
            Action::ViewRange => {
                let m = self.pick_module();
                let module = &self.project.modules[m];
                let lines = self.project.source(module, false);
                let len = if small { self.rng.range(12, 50) } else { self.rng.log_range(30, 220) };
                let start = self.rng.range(1, lines.len().saturating_sub(len).max(1));
                let end = (start + len).min(lines.len());
                let path = module.path.clone();
                let text = editor_view(&path, &lines, Some((start, end)));
                let say = Some(format!("The part of `{path}` that matters is around line {start}."));
                (
                    Self::call("editor", json!({"command": "view", "path": path, "view_range": [start, end]})),
                    Self::result("editor", text, false),
                    say,
                )
            }
            Action::Search => {
                let noun = self.project.noun(&mut self.rng);
                let verb = self.rng.pick(&["parse", "load", "apply", "validate", "resolve", "build", "fetch"]);
                let pattern = match (self.project.lang, self.rng.below(4)) {
                    (Lang::Rust, 0) => format!("fn {verb}_{noun}"),
                    (Lang::Rust, 1) => "Result<.*, String>".to_string(),
                    (Lang::Python, 0) => format!("def {verb}_{noun}"),
                    (Lang::Go, 0) => format!("func .*{}", pascal(&format!("{verb}_{noun}"))),
                    (Lang::TypeScript, 0) => camel(&format!("{verb}_{noun}")),
                    (_, 2) => format!("{}Error", pascal(noun)),
                    (lang, _) => {
                        let field = self.rng.pick(&["status", "id", "total", "items", "created_at"]);
                        match lang {
                            Lang::Go => format!("{}\\.{}", camel(noun), pascal(field)),
                            Lang::TypeScript => format!("{}\\.{}", camel(noun), camel(field)),
                            _ => format!("{noun}\\.{field}"),
                        }
                    }
                };
                let hits = if small { self.rng.range(0, 8) } else { self.rng.log_range(1, 260) };
                let files: Vec<usize> = (0..6).map(|_| self.pick_module()).collect();
                let text = tool_output::search_results(&self.project, &mut self.rng, &pattern, hits, &files);
                let mut input = json!({"pattern": pattern});
                if self.rng.chance(0.4) {
                    input["glob"] = json!(match self.project.lang {
                        Lang::Rust => "*.rs",
                        Lang::Python => "*.py",
                        Lang::TypeScript => "*.ts",
                        Lang::Go => "*.go",
                    });
                }
                let say = Some(format!("Where else is `{pattern}` used?"));
                (Self::call("search", input), Self::result("search", text, false), say)
            }
            Action::FindFiles => {
                let noun = self.project.noun(&mut self.rng);
                let glob = format!("*{noun}*");
                let mut paths: Vec<&str> = self
                    .project
                    .modules
                    .iter()
                    .flat_map(|m| [m.path.as_str(), m.test_path.as_str()])
                    .filter(|p| p.contains(noun) || p.contains(&camel(noun)))
                    .collect();
                paths.sort();
                paths.dedup();
                let text = if paths.is_empty() { format!("No files match `{glob}`.") } else { paths.join("\n") };
                (Self::call("find_files", json!({"glob": glob})), Self::result("find_files", text, false), None)
            }
            Action::Replace => self.replace(),
            Action::Create => self.create(),
            Action::TestOne => {
                let m = self.pick_module();
                if self.dirty && matches!(self.project.lang, Lang::Rust | Lang::Go) && self.rng.chance(0.12) {
                    let errors = self.rng.range(1, 3);
                    let run = tool_output::build(&self.project, &mut self.rng, errors, false);
                    let command = self.project.test_command(Some(&self.project.modules[m]), false);
                    let (call, result) = Self::shell(command, &run);
                    return (call, result, Some("Running the tests of the module I changed.".into()));
                }
                self.progress_failures(phase);
                let failing = self.failing.clone();
                let run = if small {
                    let n = self.project.modules[m].tests.len();
                    let out = format!(
                        "{}{}\n{} passed in {:.2}s\n",
                        ".".repeat(n),
                        " ".repeat(60usize.saturating_sub(n)) + "[100%]",
                        n,
                        self.rng.unit() + 0.1
                    );
                    Run { stdout: out, stderr: String::new(), exit_code: 0, seconds: 1.2 }
                } else {
                    tool_output::test_run(&self.project, &mut self.rng, &[m], &failing, false, true)
                };
                let command = if small {
                    format!("python -m pytest {} -q", self.project.modules[m].test_path)
                } else {
                    self.project.test_command(Some(&self.project.modules[m]), true)
                };
                let (call, result) = Self::shell(command, &run);
                let say = Some(format!("Running the `{}` tests.", self.project.modules[m].name));
                (call, result, say)
            }
            Action::TestAll if small => self.act(phase, Action::TestOne, progress),
            Action::TestAll => {
                self.progress_failures(phase);
                let failing = self.failing.clone();
                let all: Vec<usize> = (0..self.project.modules.len()).collect();
                let fresh = !self.built && self.project.lang == Lang::Rust;
                self.built = true;
                let verbose = self.rng.chance(0.5);
                let run = tool_output::test_run(&self.project, &mut self.rng, &all, &failing, fresh, verbose);
                let mut command = self.project.test_command(None, verbose);
                if large && self.project.lang == Lang::Rust {
                    command = format!("RUST_BACKTRACE=1 {command}");
                }
                let (call, result) = Self::shell(command, &run);
                (call, result, Some("Running the whole test suite.".into()))
            }
            Action::Build => {
                let errors = if self.dirty && self.rng.chance(0.3) { self.rng.range(1, 5) } else { 0 };
                if errors == 0 {
                    self.dirty = false;
                }
                let fresh = !self.built;
                self.built = true;
                let run =
                    tool_output::build(&self.project, &mut self.rng, if small { 0 } else { errors }, fresh && !small);
                let command = match self.project.lang {
                    Lang::Rust => "cargo build --workspace --all-targets",
                    Lang::Python => "mypy src",
                    Lang::TypeScript => "npm run build",
                    Lang::Go => "go build ./... && go vet ./...",
                };
                let (call, result) = Self::shell(command.to_string(), &run);
                (call, result, Some("Checking that everything still compiles.".into()))
            }
            Action::Lint => {
                let findings = if small { 0 } else { self.rng.range(0, 8) };
                let run = tool_output::lint(&self.project, &mut self.rng, findings);
                let command = match self.project.lang {
                    Lang::Rust => "cargo clippy --workspace --all-targets -- -D warnings",
                    Lang::Python => "ruff check src tests",
                    Lang::TypeScript => "npm run lint",
                    Lang::Go => "go vet ./...",
                };
                let (call, result) = Self::shell(command.to_string(), &run);
                (call, result, Some("And the linter.".into()))
            }
            Action::GitStatus => {
                let mut out = String::from(
                    "On branch rswe/task\nChanges not staged for commit:\n  (use \"git add <file>...\" to update what will be committed)\n  (use \"git restore <file>...\" to discard changes in working directory)\n",
                );
                let mut files = self.edited.clone();
                files.sort();
                files.dedup();
                for f in &files {
                    let _ = writeln!(out, "\tmodified:   {f}");
                }
                out.push_str("\nno changes added to commit (use \"git add\" and/or \"git commit -a\")\n");
                let run = Run { stdout: out, stderr: String::new(), exit_code: 0, seconds: 0.05 };
                let (call, result) = Self::shell("git status".into(), &run);
                (call, result, None)
            }
            Action::GitDiff => {
                let mut files = self.edited.clone();
                files.sort();
                files.dedup();
                files.truncate(if small { 2 } else { 8 });
                let out = tool_output::git_diff(&self.project, &mut self.rng, &files);
                let run = Run { stdout: out, stderr: String::new(), exit_code: 0, seconds: 0.08 };
                let (call, result) = Self::shell("git --no-pager diff".into(), &run);
                (call, result, Some("Reviewing the diff.".into()))
            }
            Action::GitLog => {
                let mut out = String::new();
                for _ in 0..self.rng.range(12, 20) {
                    let sentence = self.project.sentence(&mut self.rng);
                    let _ = writeln!(
                        out,
                        "{} {} (#{})",
                        self.rng.hex(7),
                        sentence.trim_end_matches('.'),
                        self.rng.range(100, 2000)
                    );
                }
                let run = Run { stdout: out, stderr: String::new(), exit_code: 0, seconds: 0.04 };
                let (call, result) = Self::shell("git --no-pager log --oneline -20".into(), &run);
                (call, result, None)
            }
            Action::ShowConfig => {
                let path = match self.project.lang {
                    Lang::Rust => "Cargo.toml",
                    Lang::Python => "pyproject.toml",
                    Lang::TypeScript => "package.json",
                    Lang::Go => "go.mod",
                };
                let lines = self.project.file(path);
                let text = editor_view(path, &lines, None);
                (
                    Self::call("editor", json!({"command": "view", "path": path})),
                    Self::result("editor", text, false),
                    None,
                )
            }
            Action::Todo => self.todo(progress),
            Action::Think => {
                let mut thought = String::new();
                for _ in 0..self.rng.range(2, 6) {
                    thought.push_str(&self.project.sentence(&mut self.rng));
                    thought.push(' ');
                }
                let thought = thought.trim_end().to_string();
                (
                    Self::call("think", json!({"thought": thought})),
                    Self::result("think", "Thought recorded. Continue with the next step.".into(), false),
                    None,
                )
            }
            Action::ServerStart => self.server_start(),
            Action::ServerLog => {
                let id = self.server.unwrap_or(1);
                let lines = if large { self.rng.range(80, 260) } else { self.rng.range(15, 120) };
                let mut log = tool_output::server_log(&self.project, &mut self.rng, lines, &mut self.clock, true);
                // The shell tool shows the last 16 KiB of a background process's output.
                if log.len() > 16 * 1024 {
                    let mut cut = log.len() - 16 * 1024;
                    while !log.is_char_boundary(cut) {
                        cut += 1;
                    }
                    let from = log[cut..].find('\n').map_or(cut, |i| cut + i + 1);
                    log = log[from..].to_string();
                }
                let text = format!(
                    "The background process bg-{id}: still running.\nLatest output:\n{}\n[complete log: .rswe/outputs/bg-{id}.log]",
                    log.trim_end()
                );
                (
                    Self::call("shell", json!({"background_id": format!("bg-{id}"), "action": "log"})),
                    Self::result("shell", text, false),
                    Some("What does the server log say now?".into()),
                )
            }
            Action::Curl => {
                let noun = self.project.noun(&mut self.rng);
                let port = match self.project.lang {
                    Lang::Python => 8000,
                    Lang::TypeScript => 3000,
                    _ => 8080,
                };
                let path = format!("/api/v1/{}s?limit={}", noun.replace('_', "-"), self.rng.range(5, 50));
                let items = self.rng.log_range(1, 40);
                let mut body = String::from("[");
                for i in 0..items {
                    if i > 0 {
                        body.push(',');
                    }
                    let _ = write!(
                        body,
                        "{{\"id\":\"{}\",\"status\":\"{}\",\"total\":{},\"created_at\":\"2026-03-14T{:02}:{:02}:00Z\",\"items\":[{}]}}",
                        self.rng.hex(12),
                        self.rng.pick(&["active", "pending", "archived"]),
                        self.rng.range(0, 100_000),
                        self.rng.range(0, 23),
                        self.rng.range(0, 59),
                        self.rng.range(1, 9)
                    );
                }
                body.push(']');
                self.clock += 1000;
                let out = format!(
                    "HTTP/1.1 200 OK\ncontent-type: application/json\ncontent-length: {}\nx-request-id: {}\n\n{body}",
                    body.len(),
                    self.rng.hex(12)
                );
                let run = Run { stdout: out, stderr: String::new(), exit_code: 0, seconds: self.rng.unit() };
                let (call, result) = Self::shell(format!("curl -si 'http://localhost:{port}{path}'"), &run);
                (call, result, Some("Sending a request to the running server.".into()))
            }
            Action::TailLog => {
                let lines = if large { self.rng.range(600, 1500) } else { self.rng.range(150, 500) };
                let log = tool_output::server_log(&self.project, &mut self.rng, lines, &mut self.clock, true);
                let run = Run { stdout: log, stderr: String::new(), exit_code: 0, seconds: 0.1 };
                let id = self.server.unwrap_or(1);
                let (call, result) = Self::shell(format!("tail -n {lines} .rswe/outputs/bg-{id}.log"), &run);
                (call, result, Some("I need more of the server's history than the last screen.".into()))
            }
            Action::CiLog => self.ci_log(),
            Action::CiGrep => {
                let failing = self.failing.clone();
                let all: Vec<usize> = (0..self.project.modules.len()).collect();
                let run = tool_output::test_run(&self.project, &mut self.rng, &all, &failing, false, true);
                let pattern = self.rng.pick(&["FAILED", "Error", "assert", "Warning", "dateutil"]);
                let context = self.rng.range(0, 4);
                let lines: Vec<&str> = run.stdout.lines().collect();
                let mut out = String::new();
                let mut shown = 0;
                for (i, line) in lines.iter().enumerate() {
                    if line.contains(pattern) && shown < 150 {
                        for (j, l) in lines.iter().enumerate().take(i + context + 1).skip(i.saturating_sub(context)) {
                            let _ = writeln!(out, "{}{}{l}", j + 1, if j == i { ':' } else { '-' });
                        }
                        shown += 1;
                    }
                }
                let code = i32::from(out.is_empty());
                let run = Run { stdout: out, stderr: String::new(), exit_code: code, seconds: 1.9 };
                let (call, result) = Self::shell(
                    format!("gh run view 9876543210 --log-failed | grep -n -C {context} '{pattern}'"),
                    &run,
                );
                (call, result, Some(format!("Looking for `{pattern}` in the failed job's log.")))
            }
            Action::Install => {
                let stdout = self.install_output();
                let run = Run { stdout, stderr: "\n[notice] A new release of pip is available: 24.0 -> 24.2\n[notice] To update, run: pip install --upgrade pip\n".into(), exit_code: 0, seconds: 38.0 };
                let (call, result) = Self::shell("pip install -e '.[dev]'".into(), &run);
                (call, result, Some("Installing the project the way CI does.".into()))
            }
        }
    }

    fn install_output(&mut self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Obtaining file:///workspace\n  Installing build dependencies: started\n  Installing build dependencies: finished with status 'done'"
        );
        for (dep, v) in &self.project.deps {
            let wheel = dep.replace('-', "_");
            let _ = writeln!(
                out,
                "Collecting {dep}>={v}\n  Downloading {wheel}-{v}-py3-none-any.whl.metadata ({} kB)\nDownloading {wheel}-{v}-py3-none-any.whl ({} kB)",
                self.rng.range(2, 40),
                self.rng.range(20, 2000)
            );
        }
        let names: Vec<String> = self.project.deps.iter().map(|(d, v)| format!("{d}-{v}")).collect();
        let _ = writeln!(
            out,
            "Installing collected packages: {}\nSuccessfully installed {}",
            names.join(", "),
            names.join(" ")
        );
        out
    }

    fn say_view(&mut self, path: &str) -> Option<String> {
        let noun = self.project.noun(&mut self.rng);
        Some(match self.rng.below(3) {
            0 => format!("Let me read `{path}`."),
            1 => format!("Looking at how `{path}` handles the {}.", noun.replace('_', " ")),
            _ => format!("I need the whole of `{path}` to follow the control flow."),
        })
    }

    /// Tests get fixed as the work advances; an edit now and then breaks another one.
    fn progress_failures(&mut self, phase: Phase) {
        if !self.dirty {
            return;
        }
        if !self.failing.is_empty() && (self.rng.chance(0.35) || phase == Phase::Verify) {
            let i = self.rng.below(self.failing.len());
            self.failing.remove(i);
        } else if phase != Phase::Verify && self.rng.chance(0.12) {
            let m = self.rng.pick(&self.focus);
            let test = self.rng.below(self.project.modules[m].tests.len());
            let new = TestRef { module: m, test };
            if !self.failing.contains(&new) {
                self.failing.push(new);
                self.failing.sort();
            }
        }
    }

    fn replace(&mut self) -> (ToolCall, ToolResult, Option<String>) {
        let m = self.pick_module();
        let module = self.project.modules[m].clone();
        let lines = self.project.source(&module, false);
        let take = self.rng.range(1, 8);
        let at = self.rng.below(lines.len().saturating_sub(take).max(1));
        let old: Vec<String> = lines.iter().skip(at).take(take).cloned().collect();
        let depth = old.first().map_or(1, |l| (l.len() - l.trim_start().len()) / 4).clamp(1, 3);
        let mut new = old.clone();
        let n_added = self.rng.range(1, 10);
        let added = tool_output::code_lines(&self.project, &mut self.rng, depth, n_added);
        let cut = self.rng.below(new.len() + 1);
        let removed = self.rng.below(new.len() - cut + 1).min(2);
        new.splice(cut..cut + removed, added);
        let old_str = old.join("\n");
        let new_str = new.join("\n");
        let input = json!({"command": "str_replace", "path": module.path, "old_str": old_str, "new_str": new_str});
        let fails = self.rng.chance(0.06);
        let text = if fails {
            format!(
                "old_str was not found in {}; nothing was changed. The closest text is at line {}:\n{}\nView the file \
                 and copy the exact text, whitespace included.",
                module.path,
                at + 1,
                snippet(&lines, at + 1, 2)
            )
        } else {
            let mut updated = lines.clone();
            updated.splice(at..(at + take).min(updated.len()), new.iter().cloned());
            format!(
                "Edited {}. The region now reads:\n{}\nCheck that it is what you intended; undo_edit reverts it.",
                module.path,
                snippet(&updated, at + 1, new.len())
            )
        };
        if !fails {
            self.dirty = true;
            self.edited.push(module.path.clone());
        }
        let sentence = self.project.sentence(&mut self.rng);
        let say = Some(format!("Updating `{}`: {}", module.path, sentence.to_lowercase()));
        (Self::call("editor", input), Self::result("editor", text, fails), say)
    }

    fn create(&mut self) -> (ToolCall, ToolResult, Option<String>) {
        let m = self.rng.pick(&self.focus);
        let base = self.project.modules[m].clone();
        let suffix = self.rng.pick(&["stream", "writer", "repo", "checks", "fixtures", "errors", "format"]);
        let mut module = base.clone();
        module.name = format!("{}_{suffix}", base.name);
        module.path = match self.project.lang {
            Lang::Rust => format!("crates/{}/src/{}.rs", base.unit, module.name),
            Lang::Python => format!("src/{}/{}.py", base.unit, module.name),
            Lang::TypeScript => format!("src/{}/{}.ts", base.unit, camel(&module.name)),
            Lang::Go => format!("internal/{}/{}.go", base.unit, module.name),
        };
        module.lines = self.rng.log_range(30, 220);
        module.seed = self.rng.next_u64();
        module.tests.truncate(self.rng.range(1, 4));
        let lines = tool_output::new_file(&self.project, &module);
        let file_text = format!("{}\n", lines.join("\n"));
        let text =
            format!("Created {} ({} lines, {:.1} KiB).", module.path, lines.len(), file_text.len() as f64 / 1024.0);
        self.dirty = true;
        self.edited.push(module.path.clone());
        let input = json!({"command": "create", "path": module.path, "file_text": file_text});
        let say = Some(format!("A new module, `{}`, keeps this apart from the rest.", module.path));
        (Self::call("editor", input), Self::result("editor", text, false), say)
    }

    fn todo(&mut self, progress: f64) -> (ToolCall, ToolResult, Option<String>) {
        let done = ((progress * TODO_ITEMS.len() as f64) as usize).max(self.todo_done).min(TODO_ITEMS.len());
        self.todo_done = done;
        let finished = progress > 0.97;
        let items: Vec<Value> = TODO_ITEMS
            .iter()
            .enumerate()
            .map(|(i, content)| {
                let status = if finished || i < done {
                    "completed"
                } else if i == done {
                    "in_progress"
                } else {
                    "pending"
                };
                json!({"id": (i + 1).to_string(), "content": content, "status": status})
            })
            .collect();
        let mut text = String::from("Todo list updated:");
        for (i, content) in TODO_ITEMS.iter().enumerate() {
            let mark = if finished || i < done {
                "[x]"
            } else if i == done {
                "[>]"
            } else {
                "[ ]"
            };
            let _ = write!(text, "\n{mark} {content} ({})", i + 1);
        }
        (Self::call("todo", json!({"items": items})), Self::result("todo", text, false), None)
    }

    fn server_start(&mut self) -> (ToolCall, ToolResult, Option<String>) {
        self.servers_started += 1;
        let id = self.servers_started;
        self.server = Some(id);
        let command = match self.project.lang {
            Lang::Rust => format!("cargo run -p {}-api -- serve --port 8080", self.project.name),
            Lang::Python => format!("uvicorn {}.app:app --reload --port 8000", self.project.name),
            Lang::TypeScript => "npm run dev".to_string(),
            Lang::Go => "go run ./cmd/server -addr :8080".to_string(),
        };
        let mut first = String::new();
        match self.project.lang {
            Lang::Rust => {
                let mut sink = String::new();
                let run = tool_output::build(&self.project, &mut self.rng, 0, false);
                sink.push_str(&run.stderr);
                first.push_str(&sink);
                let _ = writeln!(
                    first,
                    "     Running `target/debug/{}-api serve --port 8080`\n2026-03-14T09:00:00.412Z  INFO {}_api: listening on 0.0.0.0:8080",
                    self.project.name, self.project.name
                );
            }
            Lang::Python => {
                first.push_str("INFO:     Will watch for changes in these directories: ['/workspace']\nINFO:     Uvicorn running on http://127.0.0.1:8000 (Press CTRL+C to quit)\nINFO:     Started reloader process [4121] using WatchFiles\nINFO:     Started server process [4123]\nINFO:     Waiting for application startup.\nINFO:     Application startup complete.\n");
            }
            Lang::TypeScript => {
                let _ = writeln!(
                    first,
                    "\n> {}@1.12.0 dev\n> tsx watch src/server.ts\n\n[server] listening on http://localhost:3000",
                    self.project.name
                );
            }
            Lang::Go => {
                first.push_str("{\"time\":\"2026-03-14T09:00:00.101Z\",\"level\":\"INFO\",\"msg\":\"connected to database\",\"pool\":10}\n{\"time\":\"2026-03-14T09:00:00.104Z\",\"level\":\"INFO\",\"msg\":\"listening\",\"addr\":\":8080\"}\n");
            }
        }
        let text = format!(
            "Started background process bg-{id}: `{command}`. It keeps running.\nOutput so far:\n{}\nRead its latest output with shell {{\"background_id\": \"bg-{id}\", \"action\": \"log\"}}; stop it with {{\"background_id\": \"bg-{id}\", \"action\": \"stop\"}}.",
            first.trim_end()
        );
        let input = json!({"command": command, "background": true});
        (
            Self::call("shell", input),
            Self::result("shell", text, false),
            Some("Starting the server in the background.".into()),
        )
    }

    fn ci_log(&mut self) -> (ToolCall, ToolResult, Option<String>) {
        let run_id = 9_876_543_210u64;
        let failing = self.failing.clone();
        let all: Vec<usize> = (0..self.project.modules.len()).collect();
        let run = tool_output::test_run(&self.project, &mut self.rng, &all, &failing, false, true);
        let install = self.install_output();
        let mut out = String::new();
        let mut clock = 0u64;
        let prefix = |step: &str, clock: u64| {
            format!(
                "test (3.12)\t{step}\t2026-03-14T07:{:02}:{:02}.{:07}Z ",
                10 + clock / 60_000 % 50,
                clock / 1000 % 60,
                clock % 10_000_000
            )
        };
        for line in install.lines() {
            clock += self.rng.range(1, 400) as u64;
            let _ = writeln!(out, "{}{line}", prefix("Install dependencies", clock));
        }
        for line in run.stdout.lines() {
            clock += self.rng.range(1, 40) as u64;
            let _ = writeln!(out, "{}{line}", prefix("Run tests", clock));
        }
        let _ = writeln!(out, "{}##[error]Process completed with exit code 1.", prefix("Run tests", clock));
        let cmd_run = Run { stdout: out, stderr: String::new(), exit_code: 0, seconds: 2.4 };
        let (call, result) = Self::shell(format!("gh run view {run_id} --log-failed"), &cmd_run);
        (call, result, Some("Reading the failed job's log.".into()))
    }
}

/// The trajectory a recipe describes.
pub fn generate(recipe: &Recipe) -> Trajectory {
    Session::new(recipe).run()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_valid() {
        let recipe = test_recipe(12);
        let a = generate(&recipe);
        let b = generate(&recipe);
        assert_eq!(a, b);
        assert_eq!(a.steps.len(), 12);
        a.check().unwrap();
    }

    #[test]
    fn views_number_lines_like_the_editor() {
        let recipe = &recipes()[2];
        let mut rng = Rng::new(recipe.seed);
        let project = build_project(recipe, &mut rng);
        let module = &project.modules[0];
        let lines = project.source(module, false);
        assert!(lines.len() >= module.lines / 2, "{} lines for {}", lines.len(), module.lines);
        let view = editor_view(&module.path, &lines, None);
        assert!(view.starts_with("     1\t"));
        let ranged = editor_view(&module.path, &lines, Some((2, 4)));
        assert!(ranged.starts_with("     2\t") && ranged.ends_with(&format!("[lines 2-4 of {}]", lines.len())));
        assert_eq!(project.source(module, false), lines, "a file reads the same every time");
    }
}
