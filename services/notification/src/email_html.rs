//! The HTML alternative of an e-mail: the message's title and text in a plain layout, every
//! value escaped by the template engine (minijinja with HTML auto-escaping), right to left for
//! Arabic (`dir="rtl"`, `lang="ar"`), left to right otherwise.

use std::sync::LazyLock;

use jamaa_proto::r#type::v1::Language;
use minijinja::{AutoEscape, Environment, context};

const LAYOUT: &str = r#"<!DOCTYPE html>
<html lang="{{ lang }}" dir="{{ dir }}">
<head><meta charset="utf-8"><title>{{ title }}</title></head>
<body style="font-family: Tahoma, Arial, sans-serif; text-align: {{ align }}; direction: {{ dir }};">
<h1 style="font-size: 1.2em;">{{ title }}</h1>
{% for paragraph in paragraphs %}<p>{{ paragraph }}</p>
{% endfor %}</body>
</html>
"#;

static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut environment = Environment::new();
    environment.set_auto_escape_callback(|_| AutoEscape::Html);
    environment
});

/// The HTML of a message titled `title` saying `body` in `language`.
pub fn render(title: &str, body: &str, language: Language) -> Result<String, minijinja::Error> {
    let rtl = matches!(language, Language::Ar | Language::Unspecified);
    let paragraphs: Vec<String> = body
        .split('\n')
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect();
    ENVIRONMENT.render_named_str(
        "email.html",
        LAYOUT,
        context! {
            lang => language.code(),
            dir => if rtl { "rtl" } else { "ltr" },
            align => if rtl { "right" } else { "left" },
            title => title,
            paragraphs => paragraphs,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arabic_is_right_to_left_and_values_are_escaped() {
        let html = render(
            "طلبكم <b>",
            "سطر أول\nمرحبا & <script>x</script>",
            Language::Ar,
        )
        .expect("renders");
        assert!(html.contains(r#"<html lang="ar" dir="rtl">"#), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("طلبكم &lt;b&gt;"), "{html}");
        assert!(html.contains("<p>سطر أول</p>"), "{html}");
    }

    #[test]
    fn french_is_left_to_right() {
        let html = render("Votre demande", "Reçue.", Language::Fr).expect("renders");
        assert!(html.contains(r#"<html lang="fr" dir="ltr">"#), "{html}");
    }
}
