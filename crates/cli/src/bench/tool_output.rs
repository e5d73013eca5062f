//! What tools print, synthesised: source files, test runs, builds, lints, a dev server's
//! log, git, searches. Everything is drawn from a seeded [`Rng`] and a [`Project`] (a
//! fictional repository with modules, tests and dependencies), in the formats the real
//! tools use (cargo, pytest, jest, go test, tsc, mypy, ruff, clippy, git) and, for
//! rswe's own tools, exactly as rswe's editor, search and shell tools render them.

use super::trajectory::Rng;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
    TypeScript,
    Go,
}

/// One source module and its tests.
#[derive(Debug, Clone)]
pub struct Module {
    /// The source file, relative to the workspace.
    pub path: String,
    /// The file holding its tests (the source file itself for Rust's inline tests).
    pub test_path: String,
    /// The crate, package or area the module belongs to.
    pub unit: String,
    pub name: String,
    pub lines: usize,
    pub seed: u64,
    /// Test function names (for TypeScript, `it` descriptions).
    pub tests: Vec<String>,
}

/// A fictional repository.
#[derive(Debug, Clone)]
pub struct Project {
    pub lang: Lang,
    pub name: String,
    pub nouns: Vec<&'static str>,
    pub modules: Vec<Module>,
    pub deps: Vec<(&'static str, String)>,
}

const VERBS: &[&str] = &[
    "parse",
    "load",
    "store",
    "apply",
    "compute",
    "validate",
    "render",
    "resolve",
    "merge",
    "fetch",
    "build",
    "encode",
    "decode",
    "normalize",
    "flush",
    "collect",
    "split",
    "index",
    "lookup",
    "update",
    "remove",
    "insert",
    "refresh",
    "reconcile",
    "schedule",
    "export",
    "import",
    "filter",
    "group",
    "sort",
];
const VERBS_3RD: &[&str] = &[
    "parses",
    "loads",
    "stores",
    "applies",
    "computes",
    "validates",
    "renders",
    "resolves",
    "merges",
    "fetches",
    "builds",
    "encodes",
    "decodes",
    "normalizes",
    "flushes",
    "collects",
    "splits",
    "indexes",
    "finds",
    "updates",
    "removes",
    "inserts",
    "refreshes",
    "reconciles",
    "schedules",
    "exports",
    "imports",
    "filters",
    "groups",
    "sorts",
];
const FIELDS: &[&str] = &[
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "total",
    "count",
    "items",
    "metadata",
    "version",
    "owner",
    "limit",
    "offset",
    "kind",
    "source",
    "target",
    "checksum",
    "tags",
    "deadline",
    "retries",
    "region",
    "label",
];
const CONDITIONS: &[&str] = &[
    "when_empty",
    "with_unicode_names",
    "across_midnight",
    "with_zero_amount",
    "on_duplicate_id",
    "after_restart",
    "with_large_batch",
    "in_reverse_order",
    "without_optional_fields",
    "at_the_boundary",
    "with_stale_cache",
    "under_concurrent_writes",
    "with_invalid_input",
    "for_the_default_config",
    "with_trailing_whitespace",
    "when_the_limit_is_reached",
    "with_nested_groups",
    "after_a_timeout",
    "in_utc",
    "with_daylight_saving",
];
const ADJECTIVES: &[&str] =
    &["stale", "pending", "active", "archived", "partial", "default", "cached", "remote", "local", "expired"];

pub fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .filter(|p| !p.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or(String::new(), |c| c.to_ascii_uppercase().to_string() + chars.as_str())
        })
        .collect()
}

pub fn camel(snake: &str) -> String {
    let p = pascal(snake);
    let mut chars = p.chars();
    chars.next().map_or(String::new(), |c| c.to_ascii_lowercase().to_string() + chars.as_str())
}

/// A plausible version number.
pub fn version(rng: &mut Rng) -> String {
    format!("{}.{}.{}", rng.range(0, 4), rng.range(0, 40), rng.range(0, 25))
}

impl Project {
    pub fn noun(&self, rng: &mut Rng) -> &'static str {
        rng.pick(&self.nouns)
    }

    /// A sentence about the domain, for comments and docs.
    pub fn sentence(&self, rng: &mut Rng) -> String {
        let noun = self.noun(rng);
        let other = self.noun(rng);
        let field = rng.pick(FIELDS);
        match rng.below(8) {
            0 => format!("Returns the {noun} for `{field}`, or `None` when no {other} matches."),
            1 => format!(
                "The {noun} is {} before it is handed to the {other} store.",
                rng.pick(&["validated", "normalized", "deduplicated", "locked", "cloned"])
            ),
            2 => format!("Keep the {field} of each {noun} sorted: the {other} lookup relies on it."),
            3 => format!("A {} {noun} is skipped here and retried on the next {other} sync.", rng.pick(ADJECTIVES)),
            4 => format!("Merges the {noun}'s {field} into the {other}, newest first."),
            5 => format!("TODO: the {noun} {field} should come from the {other} config instead."),
            6 => format!("Every {noun} carries its {field}; a missing one is an error, not a default."),
            _ => format!("Splits a {noun} into {other} batches of at most `limit` items."),
        }
    }

    /// A test name in the language's convention.
    pub fn test_name(&self, rng: &mut Rng, module: &str) -> String {
        let verb = rng.pick(VERBS_3RD);
        let noun = self.noun(rng);
        let cond = rng.pick(CONDITIONS);
        match self.lang {
            Lang::Rust => format!("{verb}_{noun}_{cond}"),
            Lang::Python => format!("test_{verb}_{noun}_{cond}"),
            Lang::TypeScript => format!("{} {} {}", verb, noun.replace('_', " "), cond.replace('_', " ")),
            Lang::Go => format!("Test{}{}", pascal(module), pascal(&format!("{noun}_{cond}"))),
        }
    }

    pub fn module_by_path(&self, path: &str) -> Option<&Module> {
        self.modules.iter().find(|m| m.path == path || m.test_path == path)
    }

    /// The lines of a module's source file (or its test file), always the same for the
    /// same module.
    pub fn source(&self, module: &Module, test_file: bool) -> Vec<String> {
        let label = if test_file { "test" } else { "src" };
        let mut rng = Rng::new(module.seed).fork(label);
        let target = if test_file && module.test_path != module.path {
            (module.tests.len() * 14 + 20).min(900)
        } else {
            module.lines
        };
        let mut code = Code { rng: &mut rng, project: self, lines: Vec::new() };
        match self.lang {
            Lang::Rust => code.rust_file(module, target),
            Lang::Python if test_file => code.python_tests(module, target),
            Lang::Python => code.python_file(module, target),
            Lang::TypeScript if test_file => code.ts_tests(module, target),
            Lang::TypeScript => code.ts_file(module, target),
            Lang::Go if test_file => code.go_tests(module, target),
            Lang::Go => code.go_file(module, target),
        }
        code.lines
    }

    /// A file's lines: a module's source or tests, or a config file.
    pub fn file(&self, path: &str) -> Vec<String> {
        if let Some(module) = self.module_by_path(path) {
            return self.source(module, module.test_path == path && module.test_path != module.path);
        }
        let mut rng = Rng::new(path.len() as u64).fork(path);
        config_file(self, path, &mut rng)
    }

    pub fn test_command(&self, module: Option<&Module>, verbose: bool) -> String {
        match (self.lang, module) {
            (Lang::Rust, None) => "cargo test --workspace 2>&1".into(),
            (Lang::Rust, Some(m)) => format!("cargo test -p {}-{} {}::tests", self.name, m.unit, m.name),
            (Lang::Python, None) => (if verbose { "python -m pytest -v" } else { "python -m pytest" }).into(),
            (Lang::Python, Some(m)) => format!("python -m pytest {} -v", m.test_path),
            (Lang::TypeScript, None) => "npm test -- --verbose".into(),
            (Lang::TypeScript, Some(m)) => format!("npx jest {} --verbose", m.test_path),
            (Lang::Go, None) => (if verbose { "go test -v ./..." } else { "go test ./..." }).into(),
            (Lang::Go, Some(m)) => format!("go test -v ./internal/{}/ -run '{}'", m.unit, pascal(&m.name)),
        }
    }
}

fn config_file(project: &Project, path: &str, rng: &mut Rng) -> Vec<String> {
    let name = &project.name;
    let mut out: Vec<String> = Vec::new();
    if path.ends_with("Cargo.toml") {
        out.extend([
            "[package]".to_string(),
            format!("name = \"{name}\""),
            "version = \"0.4.2\"".into(),
            "edition = \"2021\"".into(),
            String::new(),
            "[dependencies]".into(),
        ]);
        for (dep, v) in project.deps.iter().take(18) {
            out.push(format!("{dep} = \"{v}\""));
        }
    } else if path.ends_with("pyproject.toml") {
        out.extend([
            "[project]".to_string(),
            format!("name = \"{name}\""),
            "version = \"2.3.0\"".into(),
            "requires-python = \">=3.10\"".into(),
            "dependencies = [".into(),
        ]);
        for (dep, v) in project.deps.iter().take(14) {
            out.push(format!("    \"{dep}>={v}\","));
        }
        out.extend([
            "]".to_string(),
            String::new(),
            "[tool.pytest.ini_options]".into(),
            "testpaths = [\"tests\"]".into(),
        ]);
        out.extend(["addopts = \"-ra\"".to_string(), String::new(), "[tool.ruff]".into(), "line-length = 100".into()]);
    } else if path.ends_with("package.json") {
        out.extend(["{".to_string(), format!("  \"name\": \"{name}\","), "  \"version\": \"1.12.0\",".into()]);
        out.extend(["  \"scripts\": {".to_string(), "    \"dev\": \"tsx watch src/server.ts\",".into()]);
        out.extend(["    \"build\": \"tsc -p .\",".to_string(), "    \"test\": \"jest\",".into()]);
        out.extend(["    \"lint\": \"eslint src\"".to_string(), "  },".into(), "  \"dependencies\": {".into()]);
        for (dep, v) in project.deps.iter().take(16) {
            out.push(format!("    \"{dep}\": \"^{v}\","));
        }
        out.extend(["  }".to_string(), "}".into()]);
    } else if path.ends_with("go.mod") {
        out.extend([format!("module github.com/acme/{name}"), String::new(), "go 1.22".into(), String::new()]);
        out.push("require (".into());
        for (dep, v) in project.deps.iter().take(16) {
            out.push(format!("\t{dep} v{v}"));
        }
        out.push(")".into());
    } else {
        // Markdown.
        out.push(format!("# {name}"));
        out.push(String::new());
        for _ in 0..rng.range(12, 40) {
            out.push(if rng.chance(0.2) { String::new() } else { project.sentence(rng) });
        }
    }
    out
}

/// Synthesises source code line by line.
struct Code<'a> {
    rng: &'a mut Rng,
    project: &'a Project,
    lines: Vec<String>,
}

impl Code<'_> {
    fn push(&mut self, depth: usize, text: impl AsRef<str>) {
        let indent = match self.project.lang {
            Lang::Go => "\t".repeat(depth),
            Lang::TypeScript => "  ".repeat(depth),
            _ => "    ".repeat(depth),
        };
        let text = text.as_ref();
        self.lines.push(if text.is_empty() { String::new() } else { format!("{indent}{text}") });
    }

    fn noun(&mut self) -> &'static str {
        self.project.noun(self.rng)
    }

    fn field(&mut self) -> &'static str {
        self.rng.pick(FIELDS)
    }

    fn verb(&mut self) -> &'static str {
        self.rng.pick(VERBS)
    }

    fn var(&mut self) -> String {
        let noun = self.noun();
        match self.rng.below(4) {
            0 => format!("{noun}s"),
            1 => format!("{}_{noun}", self.rng.pick(ADJECTIVES)),
            _ => noun.to_string(),
        }
    }

    fn name(&mut self, snake: &str) -> String {
        match self.project.lang {
            Lang::Rust | Lang::Python => snake.to_string(),
            Lang::TypeScript => camel(snake),
            Lang::Go => pascal(snake),
        }
    }

    fn comment(&mut self, depth: usize) {
        let sentence = self.project.sentence(self.rng);
        let mark = if self.project.lang == Lang::Python { "#" } else { "//" };
        self.push(depth, format!("{mark} {sentence}"));
    }

    /// An expression producing a value.
    fn expr(&mut self) -> String {
        let verb = self.verb();
        let noun = self.noun();
        let arg = self.var();
        let field = self.field();
        let method = self.name(&format!("{verb}_{noun}"));
        match self.project.lang {
            Lang::Rust => match self.rng.below(5) {
                0 => format!("self.{method}(&{arg})?"),
                1 => format!("{arg}.{field}.clone()"),
                2 => format!("self.{noun}s.get(&{arg}.{field}).cloned().unwrap_or_default()"),
                3 => format!("{arg}.iter().filter(|x| x.{field}.is_some()).count()"),
                _ => format!("{}::from_{field}(&{arg})?", pascal(noun)),
            },
            Lang::Python => match self.rng.below(5) {
                0 => format!("self.{method}({arg})"),
                1 => format!("{arg}.{field}"),
                2 => format!("self._{noun}s.get({arg}.{field}, None)"),
                3 => format!("[x for x in {arg} if x.{field} is not None]"),
                _ => format!("{}.from_{field}({arg})", pascal(noun)),
            },
            Lang::TypeScript => match self.rng.below(5) {
                0 => format!("await this.{method}({})", camel(&arg)),
                1 => format!("{}.{}", camel(&arg), camel(field)),
                2 => format!("this.{}s.get({}.{}) ?? null", camel(noun), camel(&arg), camel(field)),
                3 => format!("{}.filter((x) => x.{} !== undefined)", camel(&arg), camel(field)),
                _ => format!("{}.from{}({})", pascal(noun), pascal(field), camel(&arg)),
            },
            Lang::Go => match self.rng.below(4) {
                0 => format!("{}.{}", camel(&arg), pascal(field)),
                1 => format!("s.{}s[{}.{}]", camel(noun), camel(&arg), pascal(field)),
                2 => format!("len({}.{})", camel(&arg), pascal(field)),
                _ => format!("{}From{}({})", camel(noun), pascal(field), camel(&arg)),
            },
        }
    }

    fn statements(&mut self, depth: usize, budget: usize) {
        let start = self.lines.len();
        while self.lines.len() - start < budget {
            let left = budget - (self.lines.len() - start);
            let kind = if depth >= 4 || left < 4 { self.rng.below(4) } else { self.rng.below(9) };
            match kind {
                0 | 1 => self.assign(depth),
                2 => self.call(depth),
                3 => {
                    if self.rng.chance(0.4) {
                        self.comment(depth)
                    } else {
                        self.log(depth)
                    }
                }
                4 | 5 => self.if_block(depth, left),
                6 | 7 => self.for_block(depth, left),
                _ => self.match_block(depth, left),
            }
        }
    }

    fn assign(&mut self, depth: usize) {
        let var = self.var();
        let expr = self.expr();
        let line = match self.project.lang {
            Lang::Rust => format!("let {var} = {expr};"),
            Lang::Python => format!("{var} = {expr}"),
            Lang::TypeScript => format!("const {} = {expr};", camel(&var)),
            Lang::Go => format!("{} := {expr}", camel(&var)),
        };
        self.push(depth, line);
        if self.project.lang == Lang::Go && self.rng.chance(0.3) {
            let verb = self.verb();
            let noun = self.noun();
            self.push(depth, "if err != nil {");
            self.push(depth + 1, format!("return nil, fmt.Errorf(\"{verb} {noun}: %w\", err)"));
            self.push(depth, "}");
        }
    }

    fn call(&mut self, depth: usize) {
        let var = self.var();
        let verb = self.verb();
        let noun = self.noun();
        let line = match self.project.lang {
            Lang::Rust => format!("{var}.{verb}_{noun}(&mut self.{noun}s);"),
            Lang::Python => format!("self._{verb}_{noun}({var})"),
            Lang::TypeScript => format!("this.{}({});", camel(&format!("{verb}_{noun}")), camel(&var)),
            Lang::Go => format!("s.{}({})", camel(&format!("{verb}_{noun}")), camel(&var)),
        };
        self.push(depth, line);
    }

    fn log(&mut self, depth: usize) {
        let var = self.var();
        let field = self.field();
        let verb = self.verb();
        let line = match self.project.lang {
            Lang::Rust => format!("tracing::debug!({field} = ?{var}.{field}, \"{verb} done\");"),
            Lang::Python => format!("logger.debug(\"{verb} %s\", {var}.{field})"),
            Lang::TypeScript => format!("logger.debug(`{verb} ${{{}.{}}}`);", camel(&var), camel(field)),
            Lang::Go => format!("s.log.Debug(\"{verb}\", \"{field}\", {}.{})", camel(&var), pascal(field)),
        };
        self.push(depth, line);
    }

    fn open(&mut self, depth: usize, head: String) {
        let line = match self.project.lang {
            Lang::Python => format!("{head}:"),
            Lang::TypeScript => format!("{head} {{"),
            _ => format!("{head} {{"),
        };
        self.push(depth, line);
    }

    fn close(&mut self, depth: usize) {
        if self.project.lang != Lang::Python {
            self.push(depth, "}");
        }
    }

    fn if_block(&mut self, depth: usize, left: usize) {
        let var = self.var();
        let field = self.field();
        let n = self.rng.range(0, 100);
        let head = match self.project.lang {
            Lang::Rust => format!("if {var}.{field}.len() > {n}"),
            Lang::Python => format!("if len({var}.{field}) > {n}"),
            Lang::TypeScript => format!("if ({}.{}.length > {n})", camel(&var), camel(field)),
            Lang::Go => format!("if len({}.{}) > {n}", camel(&var), pascal(field)),
        };
        self.open(depth, head);
        let inner = self.rng.range(1, (left / 3).clamp(1, 6));
        self.statements(depth + 1, inner);
        if self.rng.chance(0.3) {
            match self.project.lang {
                Lang::Python => self.push(depth, "else:"),
                _ => self.push(depth, "} else {"),
            }
            self.statements(depth + 1, 1);
        }
        self.close(depth);
    }

    fn for_block(&mut self, depth: usize, left: usize) {
        let noun = self.noun();
        let coll = self.var();
        let head = match self.project.lang {
            Lang::Rust => format!("for {noun} in &{coll}"),
            Lang::Python => format!("for {noun} in {coll}"),
            Lang::TypeScript => format!("for (const {} of {})", camel(noun), camel(&coll)),
            Lang::Go => format!("for _, {} := range {}", camel(noun), camel(&coll)),
        };
        self.open(depth, head);
        let inner = self.rng.range(1, (left / 3).clamp(1, 6));
        self.statements(depth + 1, inner);
        self.close(depth);
    }

    fn match_block(&mut self, depth: usize, left: usize) {
        let var = self.var();
        let field = self.field();
        let ty = pascal(self.noun());
        let arms = self.rng.range(2, 4.min(left / 2).max(2));
        match self.project.lang {
            Lang::Rust => {
                self.push(depth, format!("match {var}.{field} {{"));
                for _ in 0..arms {
                    let adj = pascal(self.rng.pick(ADJECTIVES));
                    let expr = self.expr();
                    self.push(depth + 1, format!("{ty}Kind::{adj} => {expr},"));
                }
                self.push(depth + 1, "_ => {}");
                self.push(depth, "}");
            }
            Lang::Python => {
                self.push(depth, format!("match {var}.{field}:"));
                for _ in 0..arms {
                    let adj = self.rng.pick(ADJECTIVES).to_uppercase();
                    self.push(depth + 1, format!("case {ty}Kind.{adj}:"));
                    self.assign(depth + 2);
                }
            }
            Lang::TypeScript => {
                self.push(depth, format!("switch ({}.{}) {{", camel(&var), camel(field)));
                for _ in 0..arms {
                    let adj = self.rng.pick(ADJECTIVES);
                    let expr = self.expr();
                    self.push(depth + 1, format!("case '{adj}':"));
                    self.push(depth + 2, format!("return {expr};"));
                }
                self.push(depth + 1, "default:");
                self.push(depth + 2, "break;");
                self.push(depth, "}");
            }
            Lang::Go => {
                self.push(depth, format!("switch {}.{} {{", camel(&var), pascal(field)));
                for _ in 0..arms {
                    let adj = pascal(self.rng.pick(ADJECTIVES));
                    self.push(depth, format!("case {ty}{adj}:"));
                    self.assign(depth + 1);
                }
                self.push(depth, "}");
            }
        }
    }

    fn rust_file(&mut self, module: &Module, target: usize) {
        let sentence = self.project.sentence(self.rng);
        self.push(0, format!("//! {sentence}"));
        self.push(0, "");
        self.push(0, "use std::collections::{BTreeMap, HashMap};");
        self.push(0, "use std::sync::Arc;");
        for _ in 0..self.rng.range(1, 4) {
            let noun = self.noun();
            self.push(0, format!("use crate::{noun}::{{{}, {}Error}};", pascal(noun), pascal(noun)));
        }
        self.push(0, "use serde::{Deserialize, Serialize};");
        self.push(0, "");
        let test_lines = module.tests.len() * 9 + 5;
        let body_target = target.saturating_sub(test_lines).max(20);
        let ty = pascal(&module.name);
        while self.lines.len() < body_target {
            match self.rng.below(5) {
                0 => {
                    let sentence = self.project.sentence(self.rng);
                    self.push(0, format!("/// {sentence}"));
                    self.push(0, "#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]");
                    let noun = self.noun();
                    let line = format!(
                        "pub struct {}{} {{",
                        pascal(noun),
                        pascal(self.rng.pick(&["Entry", "State", "Record", "Options", "Batch"]))
                    );
                    self.push(0, line);
                    for _ in 0..self.rng.range(2, 7) {
                        let field = self.field();
                        let noun = self.noun();
                        let ty =
                            self.rng.pick(&["String", "u64", "Option<String>", "Vec<u32>", "bool", "i64"]).to_string();
                        let ty = if self.rng.chance(0.3) { format!("Vec<{}>", pascal(noun)) } else { ty };
                        self.push(1, format!("pub {field}: {ty},"));
                    }
                    self.push(0, "}");
                    self.push(0, "");
                }
                1 => {
                    self.push(0, "#[derive(Debug, Clone, Copy, PartialEq, Eq)]");
                    let noun = self.noun();
                    self.push(0, format!("pub enum {}Kind {{", pascal(noun)));
                    for _ in 0..self.rng.range(2, 5) {
                        let adj = pascal(self.rng.pick(ADJECTIVES));
                        self.push(1, format!("{adj},"));
                    }
                    self.push(0, "}");
                    self.push(0, "");
                }
                _ => {
                    self.push(0, format!("impl {ty} {{"));
                    for _ in 0..self.rng.range(1, 3) {
                        let verb = self.verb();
                        let noun = self.noun();
                        let arg = self.var();
                        let sentence = self.project.sentence(self.rng);
                        self.push(1, format!("/// {sentence}"));
                        let line = format!(
                            "pub fn {verb}_{noun}(&self, {arg}: &{}) -> Result<{}, {ty}Error> {{",
                            pascal(noun),
                            pascal(self.noun())
                        );
                        self.push(1, line);
                        let n = self.rng.log_range(3, 28);
                        self.statements(2, n);
                        let var = self.var();
                        self.push(2, format!("Ok({var})"));
                        self.push(1, "}");
                        self.push(0, "");
                    }
                    self.lines.pop();
                    self.push(0, "}");
                    self.push(0, "");
                }
            }
        }
        self.push(0, "#[cfg(test)]");
        self.push(0, "mod tests {");
        self.push(1, "use super::*;");
        for test in &module.tests {
            self.push(0, "");
            self.push(1, "#[test]");
            self.push(1, format!("fn {test}() {{"));
            let n = self.rng.range(2, 5);
            self.statements(2, n);
            let var = self.var();
            let field = self.field();
            self.push(2, format!("assert_eq!({var}.{field}, expected.{field});"));
            self.push(1, "}");
        }
        self.push(0, "}");
    }

    fn python_file(&mut self, module: &Module, target: usize) {
        let sentence = self.project.sentence(self.rng);
        self.push(0, format!("\"\"\"{sentence}\"\"\""));
        self.push(0, "");
        self.push(0, "from __future__ import annotations");
        self.push(0, "");
        self.push(0, "import logging");
        self.push(0, "from dataclasses import dataclass, field");
        self.push(0, "from datetime import datetime, timezone");
        for _ in 0..self.rng.range(1, 4) {
            let noun = self.noun();
            let line = format!("from {}.{noun} import {}", self.project.name, pascal(noun));
            self.push(0, line);
        }
        self.push(0, "");
        self.push(0, "logger = logging.getLogger(__name__)");
        self.push(0, "");
        let ty = pascal(&module.name);
        while self.lines.len() < target {
            self.push(0, "");
            if self.rng.chance(0.3) {
                self.push(0, "@dataclass");
                let noun = self.noun();
                let line =
                    format!("class {}{}:", pascal(noun), self.rng.pick(&["Entry", "State", "Record", "Options"]));
                self.push(0, line);
                for _ in 0..self.rng.range(2, 7) {
                    let field = self.field();
                    let ty = self.rng.pick(&["str", "int", "str | None", "list[int]", "bool", "datetime"]);
                    self.push(1, format!("{field}: {ty}"));
                }
                continue;
            }
            let line = format!("class {ty}{}:", self.rng.pick(&["", "Service", "Repository", "Manager"]));
            self.push(0, line);
            let sentence = self.project.sentence(self.rng);
            self.push(1, format!("\"\"\"{sentence}\"\"\""));
            for _ in 0..self.rng.range(1, 4) {
                self.push(0, "");
                let verb = self.verb();
                let noun = self.noun();
                let arg = self.var();
                let line = format!("def {verb}_{noun}(self, {arg}: {}) -> {}:", pascal(noun), pascal(self.noun()));
                self.push(1, line);
                let sentence = self.project.sentence(self.rng);
                self.push(2, format!("\"\"\"{sentence}\"\"\""));
                let n = self.rng.log_range(3, 26);
                self.statements(2, n);
                let var = self.var();
                self.push(2, format!("return {var}"));
            }
        }
    }

    fn python_tests(&mut self, module: &Module, _target: usize) {
        self.push(0, "import pytest");
        self.push(0, "");
        let line = format!("from {}.{} import {}", self.project.name, module.name, pascal(&module.name));
        self.push(0, line);
        self.push(0, "");
        for test in &module.tests {
            self.push(0, "");
            if self.rng.chance(0.2) {
                self.push(0, "@pytest.mark.parametrize(\"limit\", [1, 10, 1000])");
            }
            self.push(0, format!("def {test}():"));
            let n = self.rng.range(3, 9);
            self.statements(1, n);
            let var = self.var();
            let field = self.field();
            self.push(1, format!("assert {var}.{field} == expected.{field}"));
        }
    }

    fn ts_file(&mut self, module: &Module, target: usize) {
        for _ in 0..self.rng.range(2, 5) {
            let noun = self.noun();
            self.push(
                0,
                format!("import {{ {} }} from '../{}/{}';", pascal(noun), noun.replace('_', "-"), camel(noun)),
            );
        }
        self.push(0, "import { logger } from '../logger';");
        self.push(0, "");
        let ty = pascal(&module.name);
        while self.lines.len() < target {
            if self.rng.chance(0.3) {
                let noun = self.noun();
                let line = format!(
                    "export interface {}{} {{",
                    pascal(noun),
                    self.rng.pick(&["Options", "Row", "State", "Props"])
                );
                self.push(0, line);
                for _ in 0..self.rng.range(2, 7) {
                    let field = self.field();
                    let ty = self.rng.pick(&["string", "number", "string | null", "number[]", "boolean", "Date"]);
                    self.push(1, format!("{}: {ty};", camel(field)));
                }
                self.push(0, "}");
                self.push(0, "");
                continue;
            }
            let line = format!("export class {ty}{} {{", self.rng.pick(&["", "Service", "Store", "Builder"]));
            self.push(0, line);
            for _ in 0..self.rng.range(1, 4) {
                let verb = self.verb();
                let noun = self.noun();
                let arg = self.var();
                let sentence = self.project.sentence(self.rng);
                self.push(1, format!("/** {sentence} */"));
                let line = format!(
                    "async {}({}: {}): Promise<{}> {{",
                    camel(&format!("{verb}_{noun}")),
                    camel(&arg),
                    pascal(noun),
                    pascal(self.noun())
                );
                self.push(1, line);
                let n = self.rng.log_range(3, 24);
                self.statements(2, n);
                let var = self.var();
                self.push(2, format!("return {};", camel(&var)));
                self.push(1, "}");
                self.push(0, "");
            }
            self.lines.pop();
            self.push(0, "}");
            self.push(0, "");
        }
    }

    fn ts_tests(&mut self, module: &Module, _target: usize) {
        self.push(0, format!("import {{ {} }} from './{}';", pascal(&module.name), camel(&module.name)));
        self.push(0, "");
        self.push(0, format!("describe('{}', () => {{", module.name));
        for test in &module.tests {
            self.push(1, format!("it('{test}', async () => {{"));
            let n = self.rng.range(3, 9);
            self.statements(2, n);
            let var = self.var();
            let field = self.field();
            self.push(2, format!("expect({}.{}).toEqual(expected.{});", camel(&var), camel(field), camel(field)));
            self.push(1, "});");
            self.push(0, "");
        }
        self.push(0, "});");
    }

    fn go_file(&mut self, module: &Module, target: usize) {
        let line = format!("// Package {} {}", module.unit, self.project.sentence(self.rng).to_lowercase());
        self.push(0, line);
        self.push(0, format!("package {}", module.unit));
        self.push(0, "");
        self.push(0, "import (");
        self.push(1, "\"context\"");
        self.push(1, "\"fmt\"");
        self.push(1, "\"time\"");
        self.push(0, "");
        let line = format!("\"github.com/acme/{}/internal/{}\"", self.project.name, self.noun());
        self.push(1, line);
        self.push(0, ")");
        self.push(0, "");
        let ty = pascal(&module.name);
        while self.lines.len() < target {
            if self.rng.chance(0.3) {
                let noun = self.noun();
                let line = format!(
                    "type {}{} struct {{",
                    pascal(noun),
                    self.rng.pick(&["Entry", "State", "Record", "Options"])
                );
                self.push(0, line);
                for _ in 0..self.rng.range(2, 7) {
                    let field = self.field();
                    let ty = self.rng.pick(&["string", "int64", "*string", "[]int", "bool", "time.Time"]);
                    self.push(1, format!("{} {ty} `json:\"{field}\"`", pascal(field)));
                }
                self.push(0, "}");
                self.push(0, "");
                continue;
            }
            let verb = self.verb();
            let noun = self.noun();
            let arg = self.var();
            let name = pascal(&format!("{verb}_{noun}"));
            let sentence = self.project.sentence(self.rng);
            self.push(0, format!("// {name} {}", sentence.to_lowercase()));
            let line = format!(
                "func (s *{ty}) {name}(ctx context.Context, {} *{}) (*{}, error) {{",
                camel(&arg),
                pascal(noun),
                pascal(self.noun())
            );
            self.push(0, line);
            let n = self.rng.log_range(3, 26);
            self.statements(1, n);
            let var = self.var();
            self.push(1, format!("return {}, nil", camel(&var)));
            self.push(0, "}");
            self.push(0, "");
        }
    }

    fn go_tests(&mut self, module: &Module, _target: usize) {
        self.push(0, format!("package {}", module.unit));
        self.push(0, "");
        self.push(0, "import (");
        self.push(1, "\"context\"");
        self.push(1, "\"testing\"");
        self.push(0, ")");
        for test in &module.tests {
            self.push(0, "");
            self.push(0, format!("func {test}(t *testing.T) {{"));
            self.push(1, "ctx := context.Background()");
            let n = self.rng.range(3, 9);
            self.statements(1, n);
            let var = self.var();
            let field = self.field();
            self.push(
                1,
                format!(
                    "if got, want := {}.{}, expected.{}; got != want {{",
                    camel(&var),
                    pascal(field),
                    pascal(field)
                ),
            );
            self.push(2, "t.Fatalf(\"got %v, want %v\", got, want)");
            self.push(1, "}");
            self.push(0, "}");
        }
    }
}

/// A file as rswe's editor `view` shows it: numbered lines, a range when asked.
pub fn editor_view(path: &str, lines: &[String], range: Option<(usize, usize)>) -> String {
    let total = lines.len();
    let (first, last) = match range {
        Some((a, b)) => (a.clamp(1, total.max(1)), b.clamp(1, total.max(1))),
        None => (1, total),
    };
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate().take(last).skip(first - 1) {
        let _ = writeln!(out, "{:>6}\t{line}", i + 1);
    }
    if range.is_some() && last < total {
        let _ = write!(out, "[lines {first}-{last} of {total}]");
    } else {
        out.pop();
    }
    if out.is_empty() { format!("{path} is empty.") } else { out }
}

/// The `n` lines around `line` (1-based) as the editor's edit snippet shows them.
pub fn snippet(lines: &[String], line: usize, n: usize) -> String {
    let first = line.saturating_sub(4).max(1);
    let last = (line + n + 3).min(lines.len());
    let mut out = String::new();
    for (i, text) in lines.iter().enumerate().take(last).skip(first - 1) {
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = write!(out, "{:>6}\t{text}", i + 1);
    }
    out
}

/// The shell tool's rendering: status line, `stdout:` and `stderr:` sections.
pub fn shell_result(exit_code: i32, seconds: f64, stdout: &str, stderr: &str) -> String {
    let took = if seconds < 1.0 {
        format!("{} ms", (seconds * 1000.0).round() as u64)
    } else if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else {
        format!("{} min {} s", (seconds / 60.0) as u64, (seconds % 60.0) as u64)
    };
    let mut parts = vec![format!("exit code {exit_code} · {took}")];
    if !stdout.is_empty() {
        parts.push(format!("stdout:\n{}", stdout.trim_end_matches('\n')));
    }
    if !stderr.is_empty() {
        parts.push(format!("stderr:\n{}", stderr.trim_end_matches('\n')));
    }
    if stdout.is_empty() && stderr.is_empty() {
        parts.push("(no output)".into());
    }
    parts.join("\n")
}

/// A failing test of a run: the module and the test's index in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TestRef {
    pub module: usize,
    pub test: usize,
}

/// What a test run prints and whether it failed: (stdout, stderr, exit code, seconds).
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
    pub seconds: f64,
}

impl Run {
    pub fn render(&self) -> String {
        shell_result(self.exit_code, self.seconds, &self.stdout, &self.stderr)
    }
}

/// A test run over `modules` (indices into the project), with `failing` tests failing.
pub fn test_run(
    project: &Project,
    rng: &mut Rng,
    modules: &[usize],
    failing: &[TestRef],
    fresh_build: bool,
    verbose: bool,
) -> Run {
    let failing: Vec<TestRef> = failing.iter().copied().filter(|f| modules.contains(&f.module)).collect();
    match project.lang {
        Lang::Rust => cargo_test(project, rng, modules, &failing, fresh_build),
        Lang::Python => pytest(project, rng, modules, &failing, verbose),
        Lang::TypeScript => jest(project, rng, modules, &failing),
        Lang::Go => go_test(project, rng, modules, &failing, verbose),
    }
}

fn compiling_lines(project: &Project, fresh: bool, out: &mut String) {
    if fresh {
        for (dep, v) in &project.deps {
            let _ = writeln!(out, "   Compiling {dep} v{v}");
        }
    }
    let mut units: Vec<&str> = project.modules.iter().map(|m| m.unit.as_str()).collect();
    units.sort();
    units.dedup();
    for unit in units {
        let _ = writeln!(out, "   Compiling {}-{unit} v0.4.2 (/workspace/crates/{unit})", project.name);
    }
}

fn finished_line(rng: &mut Rng, fresh: bool, profile: &str, out: &mut String) {
    let secs = if fresh { rng.range(40, 160) as f64 } else { rng.range(2, 30) as f64 + rng.unit() };
    let _ = writeln!(out, "    Finished `{profile}` profile [unoptimized + debuginfo] target(s) in {secs:.2}s");
}

fn cargo_test(project: &Project, rng: &mut Rng, modules: &[usize], failing: &[TestRef], fresh: bool) -> Run {
    let mut stdout = String::new();
    let mut stderr = String::new();
    compiling_lines(project, fresh, &mut stderr);
    finished_line(rng, fresh, "test", &mut stderr);
    let mut by_unit: Vec<(&str, Vec<usize>)> = Vec::new();
    for &m in modules {
        let unit = project.modules[m].unit.as_str();
        match by_unit.iter_mut().find(|(u, _)| *u == unit) {
            Some((_, list)) => list.push(m),
            None => by_unit.push((unit, vec![m])),
        }
    }
    let mut passed_all = 0;
    let mut failed_all = 0;
    for (unit, mods) in &by_unit {
        let _ = writeln!(
            stderr,
            "     Running unittests src/lib.rs (target/debug/deps/{}_{unit}-{})",
            project.name,
            rng.hex(16)
        );
        let mut names: Vec<(String, bool)> = Vec::new();
        for &m in mods {
            let module = &project.modules[m];
            for (t, test) in module.tests.iter().enumerate() {
                let fails = failing.contains(&TestRef { module: m, test: t });
                names.push((format!("{}::tests::{test}", module.name), fails));
            }
        }
        names.sort();
        let _ = writeln!(stdout, "\nrunning {} tests", names.len());
        for (name, fails) in &names {
            let _ = writeln!(stdout, "test {name} ... {}", if *fails { "FAILED" } else { "ok" });
        }
        let failed: Vec<&String> = names.iter().filter(|(_, f)| *f).map(|(n, _)| n).collect();
        if !failed.is_empty() {
            stdout.push_str("\nfailures:\n");
            for name in &failed {
                rust_panic(project, rng, unit, name, &mut stdout);
            }
            stdout.push_str("\nfailures:\n");
            for name in &failed {
                let _ = writeln!(stdout, "    {name}");
            }
        }
        let passed = names.len() - failed.len();
        passed_all += passed;
        failed_all += failed.len();
        let _ = writeln!(
            stdout,
            "\ntest result: {}. {passed} passed; {} failed; {} ignored; 0 measured; 0 filtered out; finished in {:.2}s",
            if failed.is_empty() { "ok" } else { "FAILED" },
            failed.len(),
            rng.range(0, 2),
            rng.unit() * 3.0
        );
        if !failed.is_empty() {
            let _ = writeln!(stderr, "error: test failed, to rerun pass `-p {}-{unit} --lib`", project.name);
            break;
        }
        if rng.chance(0.5) {
            let _ = writeln!(stderr, "   Doc-tests {}_{unit}", project.name);
            let docs = rng.range(0, 12);
            let _ = writeln!(stdout, "\nrunning {docs} tests");
            for i in 0..docs {
                let _ = writeln!(
                    stdout,
                    "test crates/{unit}/src/{}.rs - {} (line {}) ... ok",
                    project.modules[mods[i % mods.len()]].name,
                    pascal(project.noun(rng)),
                    rng.range(10, 400)
                );
            }
            let _ = writeln!(
                stdout,
                "\ntest result: ok. {docs} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in {:.2}s",
                rng.unit() * 4.0
            );
        }
    }
    let _ = (passed_all, failed_all);
    let code = if failed_all > 0 { 101 } else { 0 };
    Run { stdout, stderr, exit_code: code, seconds: rng.range(3, 90) as f64 + rng.unit() }
}

fn rust_panic(project: &Project, rng: &mut Rng, unit: &str, name: &str, out: &mut String) {
    let module = name.split("::").next().unwrap_or("lib");
    let _ = writeln!(out, "\n---- {name} stdout ----");
    let line = rng.range(40, 700);
    let _ = writeln!(out, "\nthread '{name}' panicked at crates/{unit}/src/{module}.rs:{line}:{}:", rng.range(5, 40));
    let field = rng.pick(FIELDS);
    let noun = project.noun(rng);
    match rng.below(3) {
        0 => {
            let _ = writeln!(out, "assertion `left == right` failed: {noun} {field} mismatch");
            let _ = writeln!(out, "  left: {}", rng.range(0, 5000));
            let _ = writeln!(out, " right: {}", rng.range(0, 5000));
        }
        1 => {
            let _ = writeln!(
                out,
                "called `Result::unwrap()` on an `Err` value: {}Error {{ kind: Invalid{}, {field}: \"{}\" }}",
                pascal(noun),
                pascal(field),
                rng.hex(8)
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "index out of bounds: the len is {} but the index is {}",
                rng.range(0, 9),
                rng.range(9, 20)
            );
        }
    }
    let _ = writeln!(out, "stack backtrace:");
    let frames = [
        "rust_begin_unwind",
        "core::panicking::panic_fmt",
        "core::panicking::assert_failed_inner",
        "core::panicking::assert_failed",
    ];
    let mut n = 0;
    for frame in frames {
        let _ = writeln!(out, "{n:>4}: {frame}");
        let _ = writeln!(
            out,
            "             at /rustc/{}/library/core/src/panicking.rs:{}:{}",
            rng.hex(12),
            rng.range(60, 400),
            rng.range(5, 20)
        );
        n += 1;
    }
    for _ in 0..rng.range(3, 9) {
        let m = project.noun(rng);
        let v = rng.pick(VERBS);
        let _ = writeln!(out, "{n:>4}: {}_{unit}::{m}::{}::{v}_{m}", project.name, pascal(m));
        let _ = writeln!(out, "             at ./crates/{unit}/src/{m}.rs:{}:{}", rng.range(10, 800), rng.range(5, 40));
        n += 1;
    }
    let _ = writeln!(out, "{n:>4}: {}_{unit}::{name}::{{{{closure}}}}", project.name);
    let _ = writeln!(out, "note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.");
}

fn pytest(project: &Project, rng: &mut Rng, modules: &[usize], failing: &[TestRef], verbose: bool) -> Run {
    let mut out = String::new();
    let total: usize = modules.iter().map(|&m| project.modules[m].tests.len()).sum();
    out.push_str("============================= test session starts ==============================\n");
    let _ = writeln!(
        out,
        "platform linux -- Python 3.12.4, pytest-8.3.2, pluggy-1.5.0{}",
        if verbose { " -- /workspace/.venv/bin/python" } else { "" }
    );
    if verbose {
        out.push_str("cachedir: .pytest_cache\n");
    }
    out.push_str("rootdir: /workspace\nconfigfile: pyproject.toml\nplugins: cov-5.0.0, asyncio-0.23.8, xdist-3.6.1, mock-3.14.0\n");
    out.push_str("asyncio: mode=Mode.STRICT\n");
    let _ = writeln!(out, "{}collected {total} items\n", if verbose { "collecting ... " } else { "" });
    let mut done = 0;
    for &m in modules {
        let module = &project.modules[m];
        if !verbose {
            let _ = write!(out, "{} ", module.test_path);
        }
        for (t, test) in module.tests.iter().enumerate() {
            done += 1;
            let fails = failing.contains(&TestRef { module: m, test: t });
            let pct = done * 100 / total.max(1);
            if verbose {
                let status = if fails { "FAILED" } else { "PASSED" };
                let id = format!("{}::{test} {status}", module.test_path);
                let _ = writeln!(out, "{id:<74} [{pct:>3}%]");
            } else {
                out.push(if fails { 'F' } else { '.' });
            }
        }
        if !verbose {
            let _ = writeln!(out, "{:>width$}", format!("[{:>3}%]", done * 100 / total.max(1)), width = 8);
        }
    }
    if !failing.is_empty() {
        out.push_str("\n=================================== FAILURES ===================================\n");
        for f in failing {
            let module = &project.modules[f.module];
            let test = &module.tests[f.test];
            let _ = writeln!(out, "{:_^80}", format!(" {test} "));
            out.push('\n');
            let body = project.source(module, true);
            let start = rng.below(body.len().saturating_sub(12).max(1));
            for line in body.iter().skip(start).take(rng.range(6, 12)) {
                let _ = writeln!(out, "    {line}");
            }
            let field = rng.pick(FIELDS);
            let _ = writeln!(out, ">       assert result.{field} == expected.{field}");
            let a = rng.range(0, 900);
            let b = rng.range(0, 900);
            let _ = writeln!(out, "E       AssertionError: assert {a} == {b}");
            let _ = writeln!(
                out,
                "E        +  where {a} = {}(id={}, {field}={a}).{field}",
                pascal(project.noun(rng)),
                rng.range(1, 99)
            );
            out.push('\n');
            for _ in 0..rng.range(1, 4) {
                let m = &project.modules[rng.below(project.modules.len())];
                let line = rng.range(10, m.lines.max(11));
                let _ = writeln!(out, "{}:{line}: in {}_{}", m.path, rng.pick(VERBS), project.noun(rng));
                let _ = writeln!(out, "    return self._{}(value, strict=strict)", rng.pick(VERBS));
            }
            let _ = writeln!(out, "{}:{}: AssertionError", module.test_path, rng.range(10, 300));
            if rng.chance(0.5) {
                out.push_str("------------------------------ Captured log call -------------------------------\n");
                for _ in 0..rng.range(2, 8) {
                    let _ = writeln!(
                        out,
                        "DEBUG    {}.{}:{}.py:{} {}",
                        project.name,
                        module.name,
                        module.name,
                        rng.range(10, 400),
                        project.sentence(rng)
                    );
                }
            }
        }
    }
    let warnings = rng.range(0, 6);
    if warnings > 0 {
        out.push_str("=============================== warnings summary ===============================\n");
        for _ in 0..warnings {
            let (dep, _) = rng.pick_ref(&project.deps).clone();
            let _ = writeln!(out, ".venv/lib/python3.12/site-packages/{dep}/compat.py:{}", rng.range(10, 300));
            let _ = writeln!(
                out,
                "  /workspace/.venv/lib/python3.12/site-packages/{dep}/compat.py:{}: DeprecationWarning: datetime.datetime.utcnow() is deprecated and scheduled for removal in a future version. Use timezone-aware objects to represent datetimes in UTC: datetime.datetime.now(datetime.UTC).",
                rng.range(10, 300)
            );
            out.push('\n');
        }
        out.push_str("-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html\n");
    }
    if !failing.is_empty() {
        out.push_str("=========================== short test summary info ============================\n");
        for f in failing {
            let module = &project.modules[f.module];
            let _ = writeln!(
                out,
                "FAILED {}::{} - AssertionError: assert {} == {}",
                module.test_path,
                module.tests[f.test],
                rng.range(0, 900),
                rng.range(0, 900)
            );
        }
    }
    let secs = total as f64 * 0.02 + rng.unit() * 5.0;
    let summary = if failing.is_empty() {
        format!("{total} passed, {warnings} warnings in {secs:.2}s")
    } else {
        format!("{} failed, {} passed, {warnings} warnings in {secs:.2}s", failing.len(), total - failing.len())
    };
    let _ = writeln!(out, "{:=^80}", format!(" {summary} "));
    Run { stdout: out, stderr: String::new(), exit_code: i32::from(!failing.is_empty()), seconds: secs + 0.8 }
}

fn jest(project: &Project, rng: &mut Rng, modules: &[usize], failing: &[TestRef]) -> Run {
    let stdout = format!("\n> {}@1.12.0 test\n> jest --verbose\n", project.name);
    let mut err = String::new();
    let mut total = 0;
    let mut suites_failed = 0;
    for &m in modules {
        let module = &project.modules[m];
        let fails: Vec<usize> = failing.iter().filter(|f| f.module == m).map(|f| f.test).collect();
        let _ = writeln!(
            err,
            "{} {} ({:.3} s)",
            if fails.is_empty() { "PASS" } else { "FAIL" },
            module.test_path,
            rng.unit() * 6.0
        );
        suites_failed += usize::from(!fails.is_empty());
        let _ = writeln!(err, "  {}", module.name);
        for (t, test) in module.tests.iter().enumerate() {
            total += 1;
            let mark = if fails.contains(&t) { "✕" } else { "✓" };
            let _ = writeln!(err, "    {mark} {test} ({} ms)", rng.range(1, 60));
        }
        err.push('\n');
        for &t in &fails {
            let _ = writeln!(err, "  ● {} › {}\n", module.name, module.tests[t]);
            err.push_str("    expect(received).toEqual(expected) // deep equality\n\n    - Expected  - 2\n    + Received  + 2\n\n      Object {\n");
            for _ in 0..rng.range(2, 8) {
                let field = camel(rng.pick(FIELDS));
                let sign = rng.pick(&[" ", "-", "+"]);
                let _ = writeln!(err, "    {sign}   \"{field}\": {},", rng.range(0, 500));
            }
            err.push_str("      }\n\n");
            let body = project.source(module, true);
            let at = rng.range(1, body.len().max(2) - 1);
            for (i, line) in body.iter().enumerate().skip(at.saturating_sub(3)).take(5) {
                let marker = if i + 1 == at { ">" } else { " " };
                let _ = writeln!(err, "    {marker} {:>3} | {line}", i + 1);
            }
            let _ = writeln!(err, "\n      at Object.<anonymous> ({}:{}:{})\n", module.test_path, at, rng.range(5, 40));
        }
    }
    let failed = failing.len();
    let _ = writeln!(
        err,
        "Test Suites: {}{} passed, {} total",
        if suites_failed > 0 { format!("{suites_failed} failed, ") } else { String::new() },
        modules.len() - suites_failed,
        modules.len()
    );
    let _ = writeln!(
        err,
        "Tests:       {}{} passed, {total} total",
        if failed > 0 { format!("{failed} failed, ") } else { String::new() },
        total - failed
    );
    err.push_str("Snapshots:   0 total\n");
    let secs = total as f64 * 0.03 + rng.unit() * 4.0;
    let _ = writeln!(
        err,
        "Time:        {secs:.3} s\nRan all test suites{}.",
        if modules.len() == 1 { " matching the pattern" } else { "" }
    );
    Run { stdout, stderr: err, exit_code: i32::from(failed > 0), seconds: secs + 1.5 }
}

fn go_test(project: &Project, rng: &mut Rng, modules: &[usize], failing: &[TestRef], verbose: bool) -> Run {
    let mut out = String::new();
    let mut units: Vec<&str> = modules.iter().map(|&m| project.modules[m].unit.as_str()).collect();
    units.sort();
    units.dedup();
    let mut any_failed = false;
    for unit in units {
        let mut unit_failed = false;
        for &m in modules.iter().filter(|&&m| project.modules[m].unit == unit) {
            let module = &project.modules[m];
            for (t, test) in module.tests.iter().enumerate() {
                let fails = failing.contains(&TestRef { module: m, test: t });
                if verbose || fails {
                    let _ = writeln!(out, "=== RUN   {test}");
                }
                if fails {
                    let _ = writeln!(
                        out,
                        "    {}:{}: {} {}: got {}, want {}",
                        module.test_path.rsplit('/').next().unwrap_or(""),
                        rng.range(20, 400),
                        rng.pick(VERBS),
                        project.noun(rng),
                        rng.range(0, 99),
                        rng.range(0, 99)
                    );
                    let _ = writeln!(out, "--- FAIL: {test} ({:.2}s)", rng.unit() * 0.3);
                    unit_failed = true;
                } else if verbose {
                    let _ = writeln!(out, "--- PASS: {test} ({:.2}s)", rng.unit() * 0.05);
                }
            }
        }
        if unit_failed {
            let _ =
                writeln!(out, "FAIL\nFAIL\tgithub.com/acme/{}/internal/{unit}\t{:.3}s", project.name, rng.unit() * 2.0);
            any_failed = true;
        } else {
            if verbose {
                out.push_str("PASS\n");
            }
            let _ = writeln!(out, "ok  \tgithub.com/acme/{}/internal/{unit}\t{:.3}s", project.name, rng.unit() * 2.0);
        }
    }
    if any_failed {
        out.push_str("FAIL\n");
    }
    Run {
        stdout: out,
        stderr: String::new(),
        exit_code: i32::from(any_failed),
        seconds: rng.range(2, 40) as f64 + rng.unit(),
    }
}

/// A build or type check: warnings always, errors when `errors` > 0.
pub fn build(project: &Project, rng: &mut Rng, errors: usize, fresh: bool) -> Run {
    let warnings = rng.range(0, 6);
    let mut out = String::new();
    let module = |rng: &mut Rng| -> &Module { &project.modules[rng.below(project.modules.len())] };
    match project.lang {
        Lang::Rust => {
            let mut err = String::new();
            compiling_lines(project, fresh, &mut err);
            for i in 0..warnings + errors {
                let m = module(rng);
                let line = rng.range(10, m.lines.max(11));
                let var = project.noun(rng);
                let is_error = i >= warnings;
                if is_error {
                    let _ = writeln!(
                        err,
                        "error[E0308]: mismatched types\n  --> {}:{line}:{}\n   |",
                        m.path,
                        rng.range(5, 40)
                    );
                    let _ = writeln!(err, "{line:>3} |         let {var} = self.{}_{var}(&{var})?;", rng.pick(VERBS));
                    let _ = writeln!(
                        err,
                        "    |                     ^^^^^^^^^^^^^^^^^^^^ expected `{}`, found `Option<{}>`",
                        pascal(var),
                        pascal(var)
                    );
                    let _ = writeln!(
                        err,
                        "    |\n    = note: expected struct `{}`\n               found enum `Option<{}>`\n",
                        pascal(var),
                        pascal(var)
                    );
                } else {
                    let _ = writeln!(
                        err,
                        "warning: unused variable: `{var}`\n  --> {}:{line}:{}\n   |",
                        m.path,
                        rng.range(5, 40)
                    );
                    let _ = writeln!(err, "{line:>3} |     let {var} = {}.len();", project.noun(rng));
                    let _ = writeln!(
                        err,
                        "    |         ^^^^ help: if this is intentional, prefix it with an underscore: `_{var}`\n    |\n    = note: `#[warn(unused_variables)]` on by default\n"
                    );
                }
            }
            if errors > 0 {
                let _ = writeln!(
                    err,
                    "error: could not compile `{}-{}` (lib) due to {errors} previous errors; {warnings} warnings emitted",
                    project.name,
                    module(rng).unit
                );
            } else {
                finished_line(rng, fresh, "dev", &mut err);
            }
            Run {
                stdout: String::new(),
                stderr: err,
                exit_code: i32::from(errors > 0) * 101,
                seconds: rng.range(2, 60) as f64,
            }
        }
        Lang::Python => {
            for _ in 0..errors + warnings {
                let m = module(rng);
                let _ = writeln!(
                    out,
                    "{}:{}: error: Incompatible types in assignment (expression has type \"{} | None\", variable has type \"{}\")  [assignment]",
                    m.path,
                    rng.range(10, m.lines.max(11)),
                    pascal(project.noun(rng)),
                    pascal(project.noun(rng))
                );
            }
            let n = errors + warnings;
            if n > 0 {
                let _ = writeln!(
                    out,
                    "Found {n} errors in {} files (checked {} source files)",
                    n.min(3),
                    project.modules.len() * 2
                );
            } else {
                let _ = writeln!(out, "Success: no issues found in {} source files", project.modules.len() * 2);
            }
            Run { stdout: out, stderr: String::new(), exit_code: i32::from(n > 0), seconds: rng.range(3, 25) as f64 }
        }
        Lang::TypeScript => {
            out.push_str(&format!("\n> {}@1.12.0 build\n> tsc -p .\n\n", project.name));
            for _ in 0..errors {
                let m = module(rng);
                let _ = writeln!(
                    out,
                    "{}({},{}): error TS2322: Type '{} | undefined' is not assignable to type '{}'.",
                    m.path,
                    rng.range(10, m.lines.max(11)),
                    rng.range(3, 40),
                    pascal(project.noun(rng)),
                    pascal(project.noun(rng))
                );
                let _ = writeln!(out, "  Type 'undefined' is not assignable to type '{}'.", pascal(project.noun(rng)));
            }
            if errors > 0 {
                let _ = writeln!(out, "\nFound {errors} errors in {} files.", errors.min(3));
            }
            Run {
                stdout: out,
                stderr: String::new(),
                exit_code: i32::from(errors > 0) * 2,
                seconds: rng.range(4, 30) as f64,
            }
        }
        Lang::Go => {
            let mut err = String::new();
            if fresh {
                for (dep, v) in &project.deps {
                    let _ = writeln!(err, "go: downloading {dep} v{v}");
                }
            }
            if errors > 0 {
                let _ = writeln!(err, "# github.com/acme/{}/internal/{}", project.name, module(rng).unit);
                for _ in 0..errors {
                    let m = module(rng);
                    let _ = writeln!(
                        err,
                        "{}:{}:{}: cannot use {} (variable of type *{}) as {} value in argument to s.{}",
                        m.path.trim_start_matches("./"),
                        rng.range(10, m.lines.max(11)),
                        rng.range(2, 40),
                        project.noun(rng),
                        pascal(project.noun(rng)),
                        pascal(project.noun(rng)),
                        pascal(rng.pick(VERBS))
                    );
                }
            }
            Run {
                stdout: String::new(),
                stderr: err,
                exit_code: i32::from(errors > 0),
                seconds: rng.range(2, 40) as f64,
            }
        }
    }
}

/// A linter's findings.
pub fn lint(project: &Project, rng: &mut Rng, findings: usize) -> Run {
    let mut out = String::new();
    for _ in 0..findings {
        let m = &project.modules[rng.below(project.modules.len())];
        let line = rng.range(10, m.lines.max(11));
        let noun = project.noun(rng);
        match project.lang {
            Lang::Rust => {
                let _ = writeln!(
                    out,
                    "warning: this `if` has identical blocks\n  --> {}:{line}:{}\n   |",
                    m.path,
                    rng.range(5, 30)
                );
                let _ = writeln!(
                    out,
                    "{line:>3} |         if {noun}.is_empty() {{\n    |  _____________________^\n{:>3} | |             continue;\n{:>3} | |         }}\n    | |_________^\n    |",
                    line + 1,
                    line + 2
                );
                out.push_str("    = help: for further information visit https://rust-lang.github.io/rust-clippy/master/index.html#if_same_then_else\n\n");
            }
            Lang::Python => {
                let _ = writeln!(
                    out,
                    "{}:{line}:{}: {} `{noun}` {}",
                    m.path,
                    rng.range(1, 30),
                    rng.pick(&["F401 [*]", "E501", "B008", "UP007 [*]"]),
                    rng.pick(&[
                        "imported but unused",
                        "line too long (112 > 100)",
                        "do not perform function call in argument defaults",
                        "use `X | Y` for type annotations"
                    ])
                );
            }
            Lang::TypeScript => {
                let _ = writeln!(
                    out,
                    "/workspace/{}\n  {line}:{}  warning  '{}' is assigned a value but never used  @typescript-eslint/no-unused-vars\n",
                    m.path,
                    rng.range(3, 30),
                    camel(noun)
                );
            }
            Lang::Go => {
                let _ = writeln!(
                    out,
                    "{}:{line}:{}: printf: fmt.Errorf format %w has arg {noun} of wrong type",
                    m.path,
                    rng.range(3, 30)
                );
            }
        }
    }
    let (stdout, stderr) = match project.lang {
        Lang::Rust => {
            let mut err = String::new();
            let _ = writeln!(
                err,
                "    Checking {}-{} v0.4.2 (/workspace/crates/{})",
                project.name, project.modules[0].unit, project.modules[0].unit
            );
            err.push_str(&out);
            let _ = writeln!(
                err,
                "warning: `{}` (lib) generated {findings} warnings\n    Finished `dev` profile [unoptimized + debuginfo] target(s) in {:.2}s",
                project.name,
                rng.unit() * 20.0
            );
            (String::new(), err)
        }
        Lang::Python => {
            if findings > 0 {
                let _ =
                    writeln!(out, "Found {findings} errors.\n[*] {} fixable with the `--fix` option.", findings / 2);
            } else {
                out.push_str("All checks passed!\n");
            }
            (out, String::new())
        }
        Lang::TypeScript => {
            if findings > 0 {
                let _ = writeln!(out, "✖ {findings} problems (0 errors, {findings} warnings)");
            }
            (format!("\n> {}@1.12.0 lint\n> eslint src\n\n{out}", project.name), String::new())
        }
        Lang::Go => (String::new(), out),
    };
    let code = i32::from(findings > 0 && matches!(project.lang, Lang::Python | Lang::Go));
    Run { stdout, stderr, exit_code: code, seconds: rng.range(1, 20) as f64 + rng.unit() }
}

/// Lines a dev server logs: requests, application messages, now and then an error with
/// its stack trace.
pub fn server_log(project: &Project, rng: &mut Rng, lines: usize, clock: &mut u64, errors: bool) -> String {
    let mut out = String::new();
    let mut written = 0;
    while written < lines {
        *clock += rng.range(1, 900) as u64;
        let secs = *clock / 1000;
        let ts = format!(
            "2026-03-14T{:02}:{:02}:{:02}.{:03}Z",
            9 + (secs / 3600) % 12,
            (secs / 60) % 60,
            secs % 60,
            *clock % 1000
        );
        let noun = project.noun(rng);
        let method = rng.pick(&["GET", "GET", "GET", "POST", "PUT", "DELETE"]);
        let path = format!("/api/v1/{}s/{}", noun.replace('_', "-"), rng.range(1, 99_999));
        let status = if errors && rng.chance(0.04) { 500 } else { rng.pick(&[200, 200, 200, 201, 204, 304, 404, 422]) };
        let ms = rng.log_range(1, 2500);
        let req = rng.hex(12);
        match project.lang {
            Lang::Rust => {
                let _ = writeln!(
                    out,
                    "{ts}  INFO request{{method={method} uri={path} version=HTTP/1.1 request_id={req}}}: tower_http::trace::on_response: finished processing request latency={ms} ms status={status}"
                );
            }
            Lang::Python => {
                let _ = writeln!(
                    out,
                    "INFO:     172.18.0.{}:{} - \"{method} {path} HTTP/1.1\" {status} {}",
                    rng.range(2, 9),
                    rng.range(30000, 60000),
                    if status >= 500 { "Internal Server Error" } else { "OK" }
                );
            }
            Lang::TypeScript => {
                let _ = writeln!(
                    out,
                    "[server] {ts} {method} {path} {status} {ms}.{:03} ms - {}",
                    rng.below(1000),
                    rng.range(40, 9000)
                );
            }
            Lang::Go => {
                let _ = writeln!(
                    out,
                    "{{\"time\":\"{ts}\",\"level\":\"INFO\",\"msg\":\"request\",\"method\":\"{method}\",\"path\":\"{path}\",\"status\":{status},\"duration_ms\":{ms},\"request_id\":\"{req}\"}}"
                );
            }
        }
        written += 1;
        if rng.chance(0.25) {
            let sentence = project.sentence(rng);
            let level = rng.pick(&["DEBUG", "DEBUG", "INFO", "WARN"]);
            let _ = writeln!(out, "{ts} {level} {}::{noun}: {sentence} request_id={req}", project.name);
            written += 1;
        }
        if status == 500 {
            written += stack_trace(project, rng, &ts, &mut out);
        }
    }
    out
}

fn stack_trace(project: &Project, rng: &mut Rng, ts: &str, out: &mut String) -> usize {
    let noun = project.noun(rng);
    let frames = rng.range(6, 18);
    match project.lang {
        Lang::Python => {
            let _ = writeln!(out, "ERROR:    Exception in ASGI application\nTraceback (most recent call last):");
            for _ in 0..frames {
                let m = &project.modules[rng.below(project.modules.len())];
                let _ = writeln!(
                    out,
                    "  File \"/workspace/{}\", line {}, in {}_{}",
                    m.path,
                    rng.range(10, m.lines.max(11)),
                    rng.pick(VERBS),
                    project.noun(rng)
                );
                let _ = writeln!(out, "    return await self._{}(request)", rng.pick(VERBS));
            }
            let _ = writeln!(out, "KeyError: '{noun}_{}'", rng.pick(FIELDS));
            frames * 2 + 3
        }
        Lang::TypeScript => {
            let _ = writeln!(
                out,
                "[server] {ts} TypeError: Cannot read properties of undefined (reading '{}')",
                camel(rng.pick(FIELDS))
            );
            for _ in 0..frames {
                let m = &project.modules[rng.below(project.modules.len())];
                let _ = writeln!(
                    out,
                    "    at {}.{} (/workspace/{}:{}:{})",
                    pascal(noun),
                    camel(rng.pick(VERBS)),
                    m.path,
                    rng.range(10, m.lines.max(11)),
                    rng.range(3, 40)
                );
            }
            frames + 1
        }
        Lang::Rust => {
            let _ = writeln!(
                out,
                "{ts} ERROR {}::{noun}: handler failed error={}Error::Conflict {{ {}: \"{}\" }}",
                project.name,
                pascal(noun),
                rng.pick(FIELDS),
                rng.hex(8)
            );
            for i in 0..frames {
                let m = &project.modules[rng.below(project.modules.len())];
                let _ = writeln!(
                    out,
                    "  {i:>2}: {}_{}::{}::{}\n             at ./{}:{}:{}",
                    project.name,
                    m.unit,
                    m.name,
                    rng.pick(VERBS),
                    m.path,
                    rng.range(10, m.lines.max(11)),
                    rng.range(3, 40)
                );
            }
            frames * 2 + 1
        }
        Lang::Go => {
            let _ = writeln!(
                out,
                "{{\"time\":\"{ts}\",\"level\":\"ERROR\",\"msg\":\"handler panicked\",\"error\":\"runtime error: invalid memory address or nil pointer dereference\"}}\ngoroutine {} [running]:",
                rng.range(20, 900)
            );
            for _ in 0..frames {
                let m = &project.modules[rng.below(project.modules.len())];
                let _ = writeln!(
                    out,
                    "github.com/acme/{}/internal/{}.(*{}).{}(0xc000{}, {{0x{}, 0xc00{}}})\n\t/workspace/{}:{} +0x{}",
                    project.name,
                    m.unit,
                    pascal(&m.name),
                    pascal(rng.pick(VERBS)),
                    rng.hex(6),
                    rng.hex(6),
                    rng.hex(7),
                    m.path,
                    rng.range(10, m.lines.max(11)),
                    rng.hex(3)
                );
            }
            frames * 2 + 2
        }
    }
}

/// Matches of a search, as rswe's search tool prints them: `path:line: text`.
pub fn search_results(project: &Project, rng: &mut Rng, pattern: &str, hits: usize, files: &[usize]) -> String {
    if hits == 0 {
        return format!("No matches for `{pattern}`.");
    }
    // The text a line must contain to match, for patterns without wildcards.
    let plain = (!pattern.contains(".*")).then(|| pattern.replace("\\.", "."));
    let shown = hits.min(100);
    let mut lines = Vec::with_capacity(shown);
    let mut remaining = shown;
    // The files with hits: the ones given first, then the others in order.
    let mut order: Vec<usize> = Vec::new();
    for &f in files.iter().chain(&(0..project.modules.len()).collect::<Vec<_>>()) {
        let f = f % project.modules.len();
        if !order.contains(&f) {
            order.push(f);
        }
    }
    let mut i = 0;
    while remaining > 0 {
        let m = &project.modules[order[i % order.len()]];
        let source = project.source(m, false);
        let in_file = rng.range(1, remaining.min(8));
        // Lines of the file that match by themselves, then matching lines at other places.
        let mut found: Vec<(usize, String)> = source
            .iter()
            .enumerate()
            .filter(|(_, l)| plain.as_deref().is_some_and(|p| l.contains(p)))
            .map(|(n, l)| (n + 1, l.trim().to_string()))
            .take(in_file)
            .collect();
        while found.len() < in_file {
            let n = rng.range(1, source.len().max(1));
            if !found.iter().any(|(k, _)| *k == n) {
                found.push((n, matching_line(project, rng, pattern)));
            }
        }
        found.sort();
        for (n, text) in found {
            lines.push(format!("{}:{n}: {text}", m.path));
        }
        remaining = remaining.saturating_sub(in_file);
        i += 1;
    }
    let mut out = lines.join("\n");
    if hits > shown {
        let _ = write!(
            out,
            "\n[{} more matches not shown; narrow the pattern, path or glob, or raise max_results (at most 1000)]",
            hits - shown
        );
    }
    out
}

/// A line of code that `pattern` (one of the generator's search patterns) matches.
fn matching_line(project: &Project, rng: &mut Rng, pattern: &str) -> String {
    let noun = project.noun(rng);
    let other = project.noun(rng);
    let field = rng.pick(FIELDS);
    let lang = project.lang;
    if pattern.contains("Result<") {
        let verb = rng.pick(VERBS);
        return format!(
            "pub fn {verb}_{noun}(&self, {other}: &{}) -> Result<{}, String> {{",
            pascal(other),
            pascal(noun)
        );
    }
    if let Some(error) = pattern.strip_suffix("Error").filter(|_| !pattern.contains(' ')) {
        return match (lang, rng.below(3)) {
            (Lang::Rust, 0) => format!("use crate::{}::{{{error}, {error}Error}};", error.to_lowercase()),
            (Lang::Rust, 1) => format!("return Err({error}Error::Invalid{}({other}.{field}.clone()));", pascal(field)),
            (Lang::Rust, _) => format!("impl From<{error}Error> for ApiError {{"),
            (Lang::Python, 0) => format!("class {error}Error(Exception):"),
            (Lang::Python, 1) => format!("raise {error}Error(f\"invalid {field}: {{{other}.{field}!r}}\")"),
            (Lang::Python, _) => format!("except {error}Error as exc:"),
            (Lang::TypeScript, 0) => format!("export class {error}Error extends Error {{"),
            (Lang::TypeScript, _) => {
                format!("throw new {error}Error(`invalid {field}: ${{{}.{}}}`);", camel(other), camel(field))
            }
            (Lang::Go, 0) => format!("type {error}Error struct {{"),
            (Lang::Go, _) => {
                format!("return nil, &{error}Error{{{}: {}.{}}}", pascal(field), camel(other), pascal(field))
            }
        };
    }
    if let Some((subject, member)) = pattern.split_once("\\.") {
        let n = rng.range(0, 100);
        return match (lang, rng.below(3)) {
            (Lang::Rust, 0) => format!("let {other} = {subject}.{member}.clone();"),
            (Lang::Rust, 1) => format!("if {subject}.{member}.len() > {n} {{"),
            (Lang::Rust, _) => format!("{other}.{member} = {subject}.{member}.take();"),
            (Lang::Python, 0) => format!("if {subject}.{member} is None:"),
            (Lang::Python, 1) => format!("{other} = self._{other}s.get({subject}.{member})"),
            (Lang::Python, _) => format!("logger.debug(\"{other} %s\", {subject}.{member})"),
            (Lang::TypeScript, 0) => format!("const {} = {subject}.{member} ?? null;", camel(other)),
            (Lang::TypeScript, 1) => format!("if ({subject}.{member} === undefined) {{"),
            (Lang::TypeScript, _) => format!("this.{}s.set({subject}.{member}, {});", camel(other), camel(other)),
            (Lang::Go, 0) => format!("if {subject}.{member} == nil {{"),
            (Lang::Go, 1) => format!("{} := s.{}s[{subject}.{member}]", camel(other), camel(other)),
            (Lang::Go, _) => format!("s.log.Debug(\"{other}\", \"{field}\", {subject}.{member})"),
        };
    }
    // A function: its definition or a call.
    let name = pattern.rsplit([' ', '*']).next().unwrap_or(pattern);
    let define = rng.chance(0.3);
    match lang {
        Lang::Rust if define => {
            format!(
                "pub fn {name}(&self, {other}: &{}) -> Result<{}, {}Error> {{",
                pascal(other),
                pascal(noun),
                pascal(noun)
            )
        }
        Lang::Rust => format!("let {noun} = self.{name}(&{other})?;"),
        Lang::Python if define => format!("def {name}(self, {other}: {}) -> {}:", pascal(other), pascal(noun)),
        Lang::Python => format!("{noun} = self.{name}({other})"),
        Lang::TypeScript if define => {
            format!("async {name}({}: {}): Promise<{}> {{", camel(other), pascal(other), pascal(noun))
        }
        Lang::TypeScript => format!("const {} = await this.{name}({});", camel(noun), camel(other)),
        Lang::Go if define => format!(
            "func (s *Service) {name}(ctx context.Context, {} *{}) (*{}, error) {{",
            camel(other),
            pascal(other),
            pascal(noun)
        ),
        Lang::Go => format!("{}, err := s.{name}(ctx, {})", camel(noun), camel(other)),
    }
}

/// `git diff` of edits to `paths`.
pub fn git_diff(project: &Project, rng: &mut Rng, paths: &[String]) -> String {
    let mut out = String::new();
    for path in paths {
        let lines = project.file(path);
        let _ = writeln!(
            out,
            "diff --git a/{path} b/{path}\nindex {}..{} 100644\n--- a/{path}\n+++ b/{path}",
            rng.hex(7),
            rng.hex(7)
        );
        for _ in 0..rng.range(1, 4) {
            let at = rng.below(lines.len().saturating_sub(8).max(1));
            let removed = rng.range(0, 4);
            let added = rng.range(1, 7);
            let _ = writeln!(out, "@@ -{},{} +{},{} @@", at + 1, 6 + removed, at + 1, 6 + added);
            for line in lines.iter().skip(at).take(3) {
                let _ = writeln!(out, " {line}");
            }
            for line in lines.iter().skip(at + 3).take(removed) {
                let _ = writeln!(out, "-{line}");
            }
            for _ in 0..added {
                let mut code = Code { rng, project, lines: Vec::new() };
                code.statements(1, 1);
                for line in code.lines {
                    let _ = writeln!(out, "+{line}");
                }
            }
            for line in lines.iter().skip(at + 3 + removed).take(3) {
                let _ = writeln!(out, " {line}");
            }
        }
    }
    out
}

/// A few lines of new code for an edit, in the project's language.
pub fn code_lines(project: &Project, rng: &mut Rng, depth: usize, n: usize) -> Vec<String> {
    let mut code = Code { rng, project, lines: Vec::new() };
    code.statements(depth, n);
    code.lines
}

/// A whole new module, for `create`.
pub fn new_file(project: &Project, module: &Module) -> Vec<String> {
    project.source(module, false)
}
