//! The survey's output format: sections behind `@@name ARGS` marker lines, each optionally
//! closed by an `@@exit N` line giving the exit status of the command that printed it.
//!
//! One format for every part of the survey (inventory, package manager, compose stacks), so one
//! parser reads it. Text before the first marker is ignored; a marker a part did not print is
//! simply absent, which each reader treats as "not known", never as an empty answer.

/// One section: its name, the words after the name on the marker line, its body and, when the
/// part printed `@@exit N`, that status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Section {
    pub name: String,
    pub args: String,
    pub body: String,
    pub exit: Option<i32>,
}

impl Section {
    /// The error of the command that printed this section, named `step`: its exit status and
    /// the last lines it printed (where apt and dnf say what went wrong).
    pub(crate) fn failure(&self, step: &'static str) -> crate::pkg::Error {
        crate::pkg::Error::CommandFailed {
            step,
            code: self
                .exit
                .map_or_else(|| "unknown".into(), |c| c.to_string()),
            detail: crate::errors::last_lines(&self.body, 3),
        }
    }

    /// Exit 0, or no exit recorded (the part prints facts, not a command's result).
    pub(crate) fn succeeded(&self) -> bool {
        self.exit.is_none_or(|code| code == 0)
    }
}

/// A survey's output, split into sections in the order they were printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Sections(Vec<Section>);

/// The marker prefix. Doubled at-signs start no line that apt, dnf, docker or os-release print.
pub(crate) const MARKER: &str = "@@";

impl Sections {
    pub(crate) fn parse(text: &str) -> Sections {
        let mut sections: Vec<Section> = Vec::new();
        for line in text.lines() {
            let Some(marker) = line.strip_prefix(MARKER) else {
                if let Some(section) = sections.last_mut() {
                    section.body.push_str(line);
                    section.body.push('\n');
                }
                continue;
            };
            let (name, args) = marker.trim().split_once(' ').unwrap_or((marker.trim(), ""));
            if name == "exit" {
                if let Some(section) = sections.last_mut() {
                    section.exit = args.trim().parse().ok();
                }
                continue;
            }
            sections.push(Section {
                name: name.to_string(),
                args: args.trim().to_string(),
                ..Section::default()
            });
        }
        Sections(sections)
    }

    /// The first section called `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Section> {
        self.0.iter().find(|s| s.name == name)
    }

    /// Every section called `name`, in order.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.0.iter().filter(move |s| s.name == name)
    }

    /// The body of the first section called `name`; empty when it is absent.
    pub(crate) fn body(&self, name: &str) -> &str {
        self.get(name).map_or("", |s| s.body.as_str())
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Everything from the first section called `from` up to (not including) the first section
    /// after it called `to`, re-joined as text: for readers that take a whole block, like the
    /// inventory's own parser.
    pub(crate) fn text_between(&self, from: &str, to: &str) -> String {
        let mut out = String::new();
        let mut inside = false;
        for section in &self.0 {
            if section.name == from {
                inside = true;
            } else if inside && section.name == to {
                break;
            }
            if inside {
                out.push_str(MARKER);
                out.push_str(&section.name);
                if !section.args.is_empty() {
                    out.push(' ');
                    out.push_str(&section.args);
                }
                out.push('\n');
                out.push_str(&section.body);
            }
        }
        out
    }
}

/// Shell that prints the marker of section `name` (a literal word, never host data).
pub(crate) fn marker(name: &str) -> String {
    format!("echo '{MARKER}{name}'")
}

/// Shell that closes the current section with the exit status of the command just run.
pub(crate) const EXIT: &str = "echo \"@@exit $?\"";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sections_with_args_and_exit_codes() {
        let text = "noise\n@@fingerprint\nabc\n@@stack 0\nweb x\n@@exit 1\n@@uptime\n12.5 3\n";
        let s = Sections::parse(text);
        assert_eq!(s.body("fingerprint"), "abc\n");
        let stack = s.get("stack").unwrap();
        assert_eq!((stack.args.as_str(), stack.exit), ("0", Some(1)));
        assert!(!stack.succeeded());
        assert!(s.get("uptime").unwrap().succeeded());
        assert!(!s.has("pending"));
        assert_eq!(s.body("pending"), "");
    }

    #[test]
    fn text_between_rejoins_a_block() {
        let s = Sections::parse("@@inventory\n@@kernel\n6.1\n@@os-release\nID=debian\n@@apt\nx\n");
        assert_eq!(
            s.text_between("inventory", "apt"),
            "@@inventory\n@@kernel\n6.1\n@@os-release\nID=debian\n"
        );
    }
}
