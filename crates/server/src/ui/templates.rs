//! The page templates, embedded in the binary, with HTML auto-escaping on.

use super::{assets, format, markdown};
use minijinja::{AutoEscape, Environment, Value};
use std::sync::LazyLock;

/// Every template, by name. Names end in `.html`: that turns auto-escaping on.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("macros.html", include_str!("../../templates/macros.html")),
    ("sessions.html", include_str!("../../templates/sessions.html")),
    ("new.html", include_str!("../../templates/new.html")),
    ("new_form.html", include_str!("../../templates/new_form.html")),
    ("session.html", include_str!("../../templates/session.html")),
    ("event.html", include_str!("../../templates/event.html")),
    ("tool_card.html", include_str!("../../templates/tool_card.html")),
    ("panels.html", include_str!("../../templates/panels.html")),
    ("costs.html", include_str!("../../templates/costs.html")),
    ("keys.html", include_str!("../../templates/keys.html")),
    ("error.html", include_str!("../../templates/error.html")),
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // Everything is HTML here, whatever the name says.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    match minijinja::syntax::SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build() {
        Ok(syntax) => env.set_syntax(syntax),
        Err(error) => tracing::error!(%error, "the template syntax is not valid"),
    }
    for (name, source) in TEMPLATES {
        if let Err(error) = env.add_template(name, source) {
            tracing::error!(template = name, %error, "a built-in template does not compile");
        }
    }
    // Our own URLs: nothing to escape, and `/` stays `/` for people reading the source.
    env.add_function("asset", |name: &str| safe(assets::url(name)));
    env.add_filter("usd", |cost: f64, unknown: Option<bool>| format::usd(cost, unknown.unwrap_or(false)));
    env.add_filter("markdown", |text: &str| safe(markdown::render(text)));
    env.add_filter("tokens", |n: u64| format::tokens(n));
    env.add_filter("duration", |ms: u64| format::duration(ms));
    env.add_filter("bytes", |n: u64| format::bytes(n));
    env.add_filter("reltime", |ms: i64| format::relative(ms, format::now_ms()));
    env.add_filter("iso", |ms: i64| format::iso(ms));
    env.add_filter("datetime", |ms: i64| format::datetime(ms));
    env
});

/// Renders a template, or says which and why it failed.
pub fn render(name: &str, context: Value) -> Result<String, String> {
    let template = ENV.get_template(name).map_err(|e| format!("template {name}: {e}"))?;
    template.render(context).map_err(|error| {
        let mut message = format!("template {name}: {error}");
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        message
    })
}

/// HTML that is already safe: sanitised Markdown, rendered fragments.
pub fn safe(html: String) -> Value {
    Value::from_safe_string(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        for (name, _) in TEMPLATES {
            assert!(ENV.get_template(name).is_ok(), "{name} does not compile: {:?}", ENV.get_template(name).err());
        }
    }

    #[test]
    fn values_are_escaped_and_safe_values_are_not() {
        let html = render(
            "error.html",
            minijinja::context! { title => "<b>x</b>", message => "<script>alert(1)</script>", status => 404 },
        )
        .unwrap();
        assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "{html}");
        assert!(!html.contains("<script>alert"), "{html}");
        let safe_value = minijinja::context! { inner => safe("<em>ok</em>".into()) };
        assert_eq!(ENV.render_str("{{ inner }}", minijinja::context! { inner => "<em>" }).unwrap(), "&lt;em&gt;");
        assert_eq!(ENV.render_str("{{ inner }}", safe_value).unwrap(), "<em>ok</em>");
    }
}
