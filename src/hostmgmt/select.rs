//! Host selection (DESIGN.md §3): names, `--tag` (AND), `--group` (OR), `--exclude`; none
//! means every host. Unknown names, tags and groups are errors, not empty selections.

use crate::cli::Selectors;
use crate::config::{Config, HostConfig};

#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("no host named '{0}' in the config")]
    UnknownHost(String),
    #[error("no group named '{0}' in the config")]
    UnknownGroup(String),
    #[error("no host has the tag '{0}'")]
    UnknownTag(String),
    #[error("the selection matches no host")]
    Empty,
}

/// The hosts `names` + `select` pick out of `config`, in config order.
pub fn select_hosts<'a>(
    config: &'a Config,
    names: &[String],
    select: &Selectors,
) -> Result<Vec<&'a HostConfig>, SelectError> {
    for name in names.iter().chain(&select.exclude) {
        if config.host(name).is_none() {
            return Err(SelectError::UnknownHost(name.clone()));
        }
    }
    for group in &select.groups {
        if !config.groups.contains_key(group) {
            return Err(SelectError::UnknownGroup(group.clone()));
        }
    }
    let tags = config.tags();
    if let Some(tag) = select.tags.iter().find(|t| !tags.contains(&t.as_str())) {
        return Err(SelectError::UnknownTag(tag.clone()));
    }
    let chosen: Vec<&HostConfig> = config
        .hosts
        .iter()
        .filter(|h| names.is_empty() || names.iter().any(|n| *n == *h.name))
        .filter(|h| select.tags.iter().all(|t| h.tags.contains(t)))
        .filter(|h| {
            select.groups.is_empty()
                || select
                    .groups
                    .iter()
                    .any(|g| config.groups.get(g).is_some_and(|m| m.contains(&h.name)))
        })
        .filter(|h| !select.exclude.iter().any(|x| *x == *h.name))
        .collect();
    if chosen.is_empty() {
        return Err(SelectError::Empty);
    }
    Ok(chosen)
}
