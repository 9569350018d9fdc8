//! A config's `[jobs.NAME]` sections, found by their header lines, so that a config of 10,000 jobs is parsed a few
//! jobs at a time instead of holding every job's spanned tree at once: the `toml` crate's parse of a whole
//! document peaks at about 5 KB per job (its tokens, its events, its tables), and that peak stayed resident for the
//! daemon's life.
//!
//! [`split`] only proposes: each job's run of lines, from a `[jobs.NAME…]` (or `[[jobs.NAME…]]`) header to the
//! next header of another job or of anything else, and the rest of the file with where each of its pieces lies,
//! so that every line and column can still be told. The caller parses each part on its own and keeps the result
//! only when every part parses, the rest defines no job, each run defines exactly its own job and no job twice,
//! and the whole validates; anything else is read again as one document, which gives the error exactly as
//! before. That makes the header test safe to be simple: a line that only looks like a header (inside a
//! multi-line string or array) leaves the part that opened the string or array unterminated, which fails to
//! parse. Every piece of the rest after the first starts at a header, so the rest means what those lines mean in
//! the file.

use std::ops::Range;

/// The parts of a config: each job's run of lines, and the rest of the file (the text between the runs, with
/// where each piece of it lies in the file).
pub(super) struct Split {
    pub jobs: Vec<(String, Range<usize>)>,
    pub rest: String,
    /// (offset in `rest`, offset in the file) at the start of each piece of `rest`.
    pub pieces: Vec<(usize, usize)>,
}

/// The parts of `source`, or `None` when it has no job section. A job found in two runs is left for the caller
/// to notice (it reads two jobs of one name).
pub(super) fn split(source: &str) -> Option<Split> {
    let mut jobs: Vec<(String, Range<usize>)> = Vec::new();
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
        if let Some((current, from)) = open.take() {
            jobs.push((current.to_owned(), from..start));
        }
        open = name.map(|name| (name, start));
    }
    if let Some((current, from)) = open {
        jobs.push((current.to_owned(), from..source.len()));
    }
    if jobs.is_empty() {
        return None;
    }
    let mut rest = String::new();
    let mut pieces = vec![(0, 0)];
    let mut from = 0;
    let ends = jobs.iter().map(|(_, range)| (range.start, range.end)).chain([(source.len(), source.len())]);
    for (until, next) in ends {
        if until > from {
            if !rest.is_empty() {
                pieces.push((rest.len(), from));
            } else {
                pieces[0] = (0, from);
            }
            rest.push_str(&source[from..until]);
        }
        from = next;
    }
    Some(Split { jobs, rest, pieces })
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
    fn each_job_is_one_run_of_lines_and_the_rest_knows_where_its_pieces_lie() {
        let source = "state_dir = \"s\"\n[jobs.a]\nx = 1\n[jobs.a.secret]\ny = 2\n[stores.s]\nkind = \"memory\"\n\
                      [jobs.b]\nz = \"é\"\n[notify.n]\n";
        let split = split(source).expect("two jobs");
        let names: Vec<&str> = split.jobs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(&source[split.jobs[0].1.clone()], "[jobs.a]\nx = 1\n[jobs.a.secret]\ny = 2\n");
        assert_eq!(&source[split.jobs[1].1.clone()], "[jobs.b]\nz = \"é\"\n");
        assert_eq!(split.rest, "state_dir = \"s\"\n[stores.s]\nkind = \"memory\"\n[notify.n]\n");
        for &(in_rest, in_source) in &split.pieces {
            let line = split.rest[in_rest..].lines().next().expect("a line");
            assert!(source[in_source..].starts_with(line), "{line:?} is not at {in_source}");
        }
        assert_eq!(split.pieces.len(), 3);
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
