//! Typed reads of single TOML values for the loader: each getter reports a wrong type or an
//! out-of-range value once, at the value's span, and returns `None` so loading goes on and every
//! problem in a file is reported in one pass.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::ManagerChoice;
use super::address::check_jump;
use super::parse_duration;
use super::raw::{Ctx, Value, join};
use super::suggest::did_you_mean;

impl Ctx<'_> {
    pub(super) fn check_keys(&mut self, table: &DeTable<'_>, at: &str, allowed: &[&str]) {
        for (key, _) in table.iter() {
            let name = key.get_ref();
            if !allowed.contains(&name.as_ref()) {
                let full = join(at, name);
                let hint = did_you_mean(name, allowed);
                self.error(key.span(), &full, &format!("unknown key{hint}"));
            }
        }
    }

    pub(super) fn type_error(&mut self, value: &Value<'_>, key: &str, expected: &str) {
        let found = value.get_ref().type_str();
        self.error(
            value.span(),
            key,
            &format!("expected {expected}, found {found}"),
        );
    }

    pub(super) fn table<'a, 'i>(
        &mut self,
        t: &'a DeTable<'i>,
        at: &str,
        key: &str,
    ) -> Option<&'a DeTable<'i>> {
        let value = t.get(key)?;
        match value.get_ref() {
            DeValue::Table(table) => Some(table),
            _ => {
                self.type_error(value, &join(at, key), "a table");
                None
            }
        }
    }

    pub(super) fn string(
        &mut self,
        t: &DeTable<'_>,
        at: &str,
        key: &str,
    ) -> Option<Spanned<String>> {
        let value = t.get(key)?;
        match value.get_ref() {
            DeValue::String(s) => Some(Spanned::new(value.span(), s.to_string())),
            _ => {
                self.type_error(value, &join(at, key), "a string");
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, t: &DeTable<'_>, at: &str, key: &str) -> Option<bool> {
        let value = t.get(key)?;
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.type_error(value, &join(at, key), "true or false");
                None
            }
        }
    }

    pub(super) fn integer(&mut self, t: &DeTable<'_>, at: &str, key: &str) -> Option<i64> {
        let value = t.get(key)?;
        match value.get_ref() {
            DeValue::Integer(i) => {
                match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
                    Ok(n) => Some(n),
                    Err(_) => {
                        self.error(value.span(), &join(at, key), "number out of range");
                        None
                    }
                }
            }
            _ => {
                self.type_error(value, &join(at, key), "a whole number");
                None
            }
        }
    }

    pub(super) fn duration(
        &mut self,
        t: &DeTable<'_>,
        at: &str,
        key: &str,
        zero_ok: bool,
    ) -> Option<Duration> {
        let value = t.get(key)?;
        let parsed = match value.get_ref() {
            DeValue::Integer(i) => parse_duration(i.as_str()),
            DeValue::String(s) => parse_duration(s),
            other => Err(format!(
                "expected seconds or a duration such as \"90s\" or \"5m\", found {}",
                other.type_str()
            )),
        };
        match parsed {
            Ok(d) if d.is_zero() && !zero_ok => {
                self.error(value.span(), &join(at, key), "must be more than zero");
                None
            }
            Ok(d) => Some(d),
            Err(why) => {
                self.error(value.span(), &join(at, key), &why);
                None
            }
        }
    }

    pub(super) fn string_list(
        &mut self,
        t: &DeTable<'_>,
        at: &str,
        key: &str,
    ) -> Vec<(String, Range<usize>)> {
        let Some(value) = t.get(key) else {
            return Vec::new();
        };
        let full = join(at, key);
        match value.get_ref() {
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => out.push((s.to_string(), item.span())),
                        _ => self.type_error(item, &full, "a string"),
                    }
                }
                out
            }
            _ => {
                self.type_error(value, &full, "a list of strings");
                Vec::new()
            }
        }
    }

    pub(super) fn user(&mut self, t: &DeTable<'_>, at: &str) -> Option<String> {
        let user = self.string(t, at, "user")?;
        let valid = !user.get_ref().is_empty()
            && user
                .get_ref()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid {
            let msg = format!("'{}' is not a user name", user.get_ref());
            self.error(user.span(), &join(at, "user"), &msg);
            return None;
        }
        Some(user.into_inner())
    }

    pub(super) fn port(&mut self, t: &DeTable<'_>, at: &str) -> Option<u16> {
        let n = self.integer(t, at, "port")?;
        match u16::try_from(n) {
            Ok(port) if port > 0 => Some(port),
            _ => {
                let span = t.get("port").map_or(0..0, Spanned::span);
                self.error(
                    span,
                    &join(at, "port"),
                    &format!("{n} is not a port (1-65535)"),
                );
                None
            }
        }
    }

    pub(super) fn proxy_jump(&mut self, t: &DeTable<'_>, at: &str) -> Option<String> {
        let jump = self.string(t, at, "proxy_jump")?;
        match check_jump(jump.get_ref()) {
            Ok(()) => Some(jump.into_inner()),
            Err(why) => {
                self.error(jump.span(), &join(at, "proxy_jump"), &why);
                None
            }
        }
    }

    pub(super) fn manager(&mut self, t: &DeTable<'_>, at: &str) -> Option<ManagerChoice> {
        let m = self.string(t, at, "manager")?;
        let choice = match m.get_ref().as_str() {
            "auto" => ManagerChoice::Auto,
            "apt" => ManagerChoice::Apt,
            "dnf" => ManagerChoice::Dnf,
            "yum" => ManagerChoice::Yum,
            "none" => ManagerChoice::None,
            other => {
                let msg = format!(
                    "'{other}' is not a package manager (use auto, apt, dnf, yum or none){}",
                    did_you_mean(other, &["auto", "apt", "dnf", "yum", "none"])
                );
                self.error(m.span(), &join(at, "manager"), &msg);
                return None;
            }
        };
        Some(choice)
    }
}
