//! "Did you mean" hints for unknown keys and names.

/// ` (did you mean 'x'?)` when a known word is close to `word`, else nothing.
pub(crate) fn did_you_mean(word: &str, known: &[&str]) -> String {
    hint(closest(word, known))
}

/// ` (did you mean 'x'?)` for a suggestion, nothing without one: the one wording of the hint.
pub(crate) fn hint(suggestion: Option<&str>) -> String {
    suggestion
        .map(|k| format!(" (did you mean '{k}'?)"))
        .unwrap_or_default()
}

/// The known word closest to `word`, if any is close enough to be what was meant.
///
/// Close means a small edit distance (transpositions count once, so `atp` finds `apt`) or a high
/// Jaro-Winkler similarity, which catches dropped letters in longer words (`adress` → `addr`).
pub(crate) fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let score = |k: &str| {
        let close_edit = edit_distance(word, k) <= 1.max(word.chars().count() / 4);
        let similar = jaro_winkler(word, k);
        let containing = word.len() >= 4 && (k.contains(word) || word.contains(k));
        if close_edit || containing || similar >= 0.8 {
            Some(similar + if close_edit { 1.0 } else { 0.0 })
        } else {
            None
        }
    };
    known
        .iter()
        .filter_map(|k| score(k).map(|s| (s, *k)))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// Optimal-string-alignment distance: Levenshtein where swapping two neighbours costs one.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

fn jaro_winkler(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let window = (a.len().max(b.len()) / 2).saturating_sub(1);
    let mut b_used = vec![false; b.len()];
    let mut a_matches = Vec::new();
    for (i, ca) in a.iter().enumerate() {
        let lo = i.saturating_sub(window);
        let hi = (i + window + 1).min(b.len());
        if let Some(j) = (lo..hi).find(|&j| !b_used[j] && b[j] == *ca) {
            b_used[j] = true;
            a_matches.push(*ca);
        }
    }
    let m = a_matches.len() as f64;
    if m == 0.0 {
        return 0.0;
    }
    let b_matches = b.iter().zip(&b_used).filter(|(_, u)| **u).map(|(c, _)| *c);
    let transpositions = a_matches
        .iter()
        .zip(b_matches)
        .filter(|(x, y)| **x != *y)
        .count() as f64
        / 2.0;
    let jaro = (m / a.len() as f64 + m / b.len() as f64 + (m - transpositions) / m) / 3.0;
    let prefix = a.iter().zip(&b).take(4).take_while(|(x, y)| x == y).count() as f64;
    jaro + prefix * 0.1 * (1.0 - jaro)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY_KEYS: &[&str] = &[
        "auto_reboot",
        "maintenance_window",
        "upgrade_mode",
        "allow_removals",
    ];
    const HOST_KEYS: &[&str] = &["name", "addr", "port", "user", "tags"];
    const TOP_KEYS: &[&str] = &[
        "daemon", "defaults", "groups", "host", "ssh", "fleet", "audit", "metrics", "keys",
    ];

    #[test]
    fn suggests_near_misses_only() {
        assert_eq!(
            did_you_mean("maintenance_windw", POLICY_KEYS),
            " (did you mean 'maintenance_window'?)"
        );
        assert_eq!(did_you_mean("colour", POLICY_KEYS), "");
        assert_eq!(
            did_you_mean("atp", &["auto", "apt"]),
            " (did you mean 'apt'?)"
        );
        assert_eq!(did_you_mean("adress", HOST_KEYS), " (did you mean 'addr'?)");
        assert_eq!(did_you_mean("fleets", TOP_KEYS), " (did you mean 'fleet'?)");
        assert_eq!(did_you_mean("zzz", TOP_KEYS), "");
    }
}
