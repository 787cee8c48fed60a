//! GROUP BY LEVEL: a series' path as its group shows it. The series whose paths agree at the given
//! levels (and in their measurement) share one output column per function, `count(root.sg.*.s1)`,
//! whose accumulators are merged window by window.

/// `path` as GROUP BY LEVEL shows it: nodes other than root, the measurement and those at `levels`
/// become `*` (the measurement too for `count(*)`), e.g. `root.sg.d1.s1` at level 1 is
/// `root.sg.*.s1`.
pub(super) fn level_path(path: &str, levels: &[u32], count_star: bool) -> String {
    let nodes = crate::paths::split(path);
    let last = nodes.len().saturating_sub(1);
    let mut out = String::with_capacity(path.len());
    for (k, node) in nodes.iter().enumerate() {
        if k > 0 {
            out.push('.');
        }
        let kept = k == 0
            || (k < last && u32::try_from(k).is_ok_and(|k| levels.contains(&k)))
            || (k == last && !count_star);
        if kept {
            out.push_str(&crate::paths::join(&[node]));
        } else {
            out.push('*');
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::level_path;

    #[test]
    fn level_paths_keep_root_the_measurement_and_the_given_levels() {
        assert_eq!(level_path("root.sg.d1.s1", &[1], false), "root.sg.*.s1");
        assert_eq!(level_path("root.sg.d1.s1", &[0], false), "root.*.*.s1");
        assert_eq!(
            level_path("root.ln.wf01.wt01.status", &[1, 3], false),
            "root.ln.*.wt01.status"
        );
        // count(*) hides the measurement too; a level past the device is the measurement's own.
        assert_eq!(
            level_path("root.ln.wf01.wt01.status", &[2], true),
            "root.*.wf01.*.*"
        );
        assert_eq!(level_path("root.sg.d1.s1", &[3, 9], false), "root.*.*.s1");
        // Back-quoted nodes stay quoted.
        assert_eq!(
            level_path("root.sg.`d.1`.s1", &[2], false),
            "root.*.`d.1`.s1"
        );
    }
}
