//! A config's `[jobs.NAME]` sections, found by their header lines, so that a config of 10,000 jobs is parsed a few
//! jobs at a time instead of holding every job's spanned tree at once: the `toml` crate's parse of a whole
//! document peaks at about 5 KB per job (its tokens, its events, its tables), and that peak stayed resident for the
//! daemon's life.
//!
//! [`split`] only proposes: each job's run of lines, from a `[jobs.NAME…]` (or `[[jobs.NAME…]]`) header to the
//! next header of another job or of anything else, and the rest of the file with where each of its pieces lies,
//! so that every line and column can still be told. Runs are parsed in groups of adjacent ones. The caller keeps
//! the result only when every part parses, the rest defines no job, no job is read twice (a job in two runs), and
//! the whole validates; anything else is read again as one document, which gives the error exactly as
//! before. That makes the header test safe to be simple: a line that only looks like a header (inside a
//! multi-line string or array) leaves the part that opened the string or array unterminated, which fails to
//! parse. Every piece of the rest after the first starts at a header, so the rest means what those lines mean in
//! the file.

use std::ops::Range;

/// The parts of a config: its job sections in groups, and the rest of the file (the text between the sections,
/// with where each piece of it lies in the file).
pub(super) struct Split {
    /// Adjacent job sections, at most [`GROUP`] jobs each: the text of each group is `[jobs.NAME…]` sections and
    /// nothing else, so it parses to a `jobs` table and nothing else.
    pub groups: Vec<Range<usize>>,
    pub rest: String,
    /// (offset in `rest`, offset in the file) at the start of each piece of `rest`.
    pub pieces: Vec<(usize, usize)>,
}

/// The most job runs parsed together: a few hundred KB of tree at most, and the parse's own set-up paid once per
/// group rather than once per job.
const GROUP: usize = 64;

/// The parts of `source`, or `None` when it has no job section. A job found in two runs is left for the caller
/// to notice (it reads two jobs of one name, or half a job).
pub(super) fn split(source: &str) -> Option<Split> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    let mut open: Option<(&str, usize)> = None;
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let text = line.trim_start_matches([' ', '\t']);
        if !text.starts_with('[') {
            continue;
        }
        let name = job_of_header(text);
        if let (Some((current, _)), Some(name)) = (open, name)
            && current == name
        {
            continue;
        }
        if let Some((_, from)) = open.take() {
            runs.push(from..start);
        }
        open = name.map(|name| (name, start));
    }
    if let Some((_, from)) = open {
        runs.push(from..source.len());
    }
    if runs.is_empty() {
        return None;
    }
    let mut groups: Vec<(Range<usize>, usize)> = Vec::new();
    for run in &runs {
        match groups.last_mut() {
            Some((group, count)) if group.end == run.start && *count < GROUP => {
                group.end = run.end;
                *count += 1;
            }
            _ => groups.push((run.clone(), 1)),
        }
    }
    let mut rest = String::new();
    let mut pieces = Vec::new();
    let mut from = 0;
    for (until, next) in runs.iter().map(|run| (run.start, run.end)).chain([(source.len(), source.len())]) {
        if until > from {
            pieces.push((rest.len(), from));
            rest.push_str(&source[from..until]);
        }
        from = next;
    }
    if pieces.is_empty() {
        pieces.push((0, 0));
    }
    Some(Split { groups: groups.into_iter().map(|(group, _)| group).collect(), rest, pieces })
}

/// The job a header line opens (`[jobs.NAME]`, `[jobs.NAME.sub]`, `[[jobs.NAME.list]]`), for a bare NAME. Any
/// other spelling is left to the rest of the file, where a `jobs` table sends the whole file to the one-document
/// parse.
fn job_of_header(line: &str) -> Option<&str> {
    let inner = line.strip_prefix("[[").or_else(|| line.strip_prefix('['))?;
    let after = inner.strip_prefix("jobs.")?;
    let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))?;
    (end > 0 && matches!(after.as_bytes()[end], b'.' | b']')).then(|| &after[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_names_its_job_only_when_spelled_plainly() {
        assert_eq!(job_of_header("[jobs.api]\n"), Some("api"));
        assert_eq!(job_of_header("[jobs.api-2.secret]\n"), Some("api-2"));
        assert_eq!(job_of_header("[[jobs.api.after_rotation]]\n"), Some("api"));
        assert_eq!(job_of_header("[jobs]\n"), None);
        assert_eq!(job_of_header("[jobs.\"a.b\"]\n"), None);
        assert_eq!(job_of_header("[ jobs.api ]\n"), None);
        assert_eq!(job_of_header("[stores.jobs]\n"), None);
        assert_eq!(job_of_header("[jobs.api\n"), None);
    }

    #[test]
    fn adjacent_jobs_are_one_group_and_the_rest_knows_where_its_pieces_lie() {
        let source = "state_dir = \"s\"\n[jobs.a]\nx = 1\n[jobs.a.secret]\ny = 2\n[stores.s]\nkind = \"memory\"\n\
                      [jobs.b]\nz = \"é\"\n[notify.n]\n";
        let split = split(source).expect("two jobs");
        let groups: Vec<&str> = split.groups.iter().map(|g| &source[g.clone()]).collect();
        assert_eq!(groups, ["[jobs.a]\nx = 1\n[jobs.a.secret]\ny = 2\n", "[jobs.b]\nz = \"é\"\n"]);
        assert_eq!(split.rest, "state_dir = \"s\"\n[stores.s]\nkind = \"memory\"\n[notify.n]\n");
        for &(in_rest, in_source) in &split.pieces {
            let line = split.rest[in_rest..].lines().next().expect("a line");
            assert!(source[in_source..].starts_with(line), "{line:?} is not at {in_source}");
        }
        assert_eq!(split.pieces.len(), 3);
    }

    #[test]
    fn a_group_holds_at_most_group_jobs() {
        let source: String =
            (0..2 * GROUP + 1).map(|i| format!("[jobs.j{i}]\nx = {i}\n[jobs.j{i}.s]\n")).collect();
        let split = split(&source).expect("jobs");
        let sizes: Vec<usize> =
            split.groups.iter().map(|g| source[g.clone()].matches("x = ").count()).collect();
        assert_eq!(sizes, [GROUP, GROUP, 1]);
        assert_eq!(split.groups.last().map(|g| g.end), Some(source.len()));
    }

    #[test]
    fn a_file_of_jobs_only_has_an_empty_rest() {
        let split = split("[jobs.a]\nx = 1\n").expect("one job");
        assert_eq!(split.rest, "");
        assert_eq!(split.pieces, [(0, 0)]);
    }

    #[test]
    fn a_file_without_job_sections_is_left_to_the_whole_parse() {
        assert!(split("[stores.s]\nkind = \"memory\"\n").is_none());
        assert!(split("[jobs]\na = { target = \"t\" }\n").is_none());
    }
}
