//! The one function that makes a value safe to put into a remote `sh` command line.
//!
//! Every package name, path or option that reaches a shell goes through [`quote`]; callers never
//! build quoting of their own.

/// Quotes `value` as a single POSIX shell word.
///
/// Safe words (letters, digits and `-_./:=+@%,`) are returned as they are so commands stay
/// readable in logs; anything else is wrapped in single quotes, with embedded single quotes
/// written as `'\''`. Newlines, `$( )`, backticks and `;` are inert inside single quotes.
pub fn quote(value: &str) -> String {
    let safe = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=+@%,".contains(c));
    if safe {
        return value.to_string();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for c in value.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_plain_words_readable() {
        assert_eq!(quote("openssl"), "openssl");
        assert_eq!(quote("libc6:amd64=2.36-9"), "libc6:amd64=2.36-9");
        assert_eq!(quote("/opt/stacks/media"), "/opt/stacks/media");
    }

    #[test]
    fn wraps_everything_else_in_single_quotes() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("a\nb"), "'a\nb'");
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a plain `sh`, to prove the quoting
    fn round_trips_through_a_real_shell() {
        let hostile = [
            "x; touch /tmp/tendhost-pwned",
            "$(touch /tmp/tendhost-pwned)",
            "`touch /tmp/tendhost-pwned`",
            "it's \"quoted\"",
            "line\nbreak",
            "back\\slash",
            "*",
            "-n",
        ];
        for value in hostile {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", quote(value)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), value);
        }
    }
}
