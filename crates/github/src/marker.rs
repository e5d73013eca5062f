//! The hidden marker rswe leaves in what it writes on GitHub (pull request bodies, comments), so a
//! later comment or review there finds the session it belongs to.

/// The marker for `session`: an HTML comment, invisible on GitHub.
pub fn session_marker(session: &str) -> String {
    format!("<!-- rswe:session={session} -->")
}

/// The session named by the first marker in `body`.
pub fn find_session(body: &str) -> Option<String> {
    const START: &str = "<!-- rswe:session=";
    let at = body.find(START)? + START.len();
    let rest = &body[at..];
    let end = rest.find(" -->")?;
    let id = &rest[..end];
    let plain =
        !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    plain.then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_is_found_again() {
        let body = format!("Fixes the parser.\n\nCloses #12\n\n{}", session_marker("0193abcd-ef01"));
        assert_eq!(find_session(&body).as_deref(), Some("0193abcd-ef01"));
    }

    #[test]
    fn text_without_a_plain_marker_names_no_session() {
        assert_eq!(find_session("no marker here"), None);
        assert_eq!(find_session("<!-- rswe:session= -->"), None);
        assert_eq!(find_session("<!-- rswe:session=a b\"c -->"), None);
        assert_eq!(find_session("<!-- rswe:session=abc"), None);
    }
}
