//! The course: the lesson files `www/lessons/NN-id.toml`, checked and compiled into `www/course.json`,
//! which the page reads. Their format is `www/lessons/README.md`, written for teachers; this file is its
//! reader and must agree with it.
//!
//! Each file is parsed once, with serde, into the types of the file as written (`LessonFile` and below:
//! every field the format knows, `deny_unknown_fields` so a misspelt one is an error, the required ones as
//! `Option` so that a missing one is reported with its place), then checked and turned into the types of
//! `course.json` (`Course` and below), whose serde shape is the page's JavaScript's API: renaming a field
//! breaks the page. Markdown becomes HTML here (tables and strikethrough; raw HTML is shown as text, never
//! passed through), so the page inserts it as it is; code (`starter`, `solution`, `stdin`, `setup`,
//! `script`) and titles stay verbatim.
//!
//! Every mistake in every file is reported at once, each naming the file and the field, such as
//! `www/lessons/20-echo.toml: exercise 1: program "server.py": missing field `solution``.

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::path::Path;

use anyhow::{bail, Context, Result};
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use serde::{Deserialize, Serialize};

use crate::tools;

/// The seconds a client program may run when the check does not say.
const DEFAULT_TIMEOUT: u32 = 10;
/// The most a check may give a client program.
const MAX_TIMEOUT: u32 = 60;

/// Checks every lesson in `www/lessons/` and writes `www/course.json`, unless it holds that already (so
/// its date says when the course last changed).
pub fn build() -> Result<()> {
    let www = tools::root().join("www");
    let course = compile(&www.join("lessons"))?;
    let exercises: usize = course.lessons.iter().map(|l| l.exercises.len()).sum();
    let summary = format!("{} lessons, {exercises} exercises", course.lessons.len());
    if write_if_changed(&course, &www.join("course.json"))? {
        println!("==> www/course.json: {summary}");
    } else {
        println!("==> www/course.json is up to date ({summary})");
    }
    Ok(())
}

/// Writes `course` as JSON to `out` if that is not what `out` holds; true if it wrote.
fn write_if_changed(course: &Course, out: &Path) -> Result<bool> {
    let mut json = serde_json::to_string(course)?;
    json.push('\n');
    if std::fs::read(out).is_ok_and(|old| old == json.as_bytes()) {
        return Ok(false);
    }
    std::fs::write(out, json).with_context(|| format!("writing {}", out.display()))?;
    Ok(true)
}

/// Reads and checks every `*.toml` in `dir`, in the order of their names; other files (the README) are
/// not lessons. Fails with every mistake found, one a line, each starting with its file's path (relative
/// to the workspace root when it is inside).
fn compile(dir: &Path) -> Result<Course> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    files.sort();
    let root = tools::root();
    let mut lessons = Vec::new();
    let mut problems = Vec::new();
    // Lesson id → the file that has it: the id is the lesson's address, so two files may not share it.
    let mut ids: HashMap<String, String> = HashMap::new();
    for path in files {
        let shown = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let source = std::fs::read_to_string(&path).with_context(|| format!("reading {shown}"))?;
        match lesson(&name, &source) {
            Ok(lesson) => {
                if let Some(first) = ids.insert(lesson.id.clone(), name.clone()) {
                    problems.push(format!(
                        "{shown}: the lesson id `{}` is the id of {first} already: rename one of them",
                        lesson.id
                    ));
                }
                lessons.push(lesson);
            }
            Err(list) => problems.extend(list.into_iter().map(|p| format!("{shown}: {p}"))),
        }
    }
    match problems.as_slice() {
        [] => Ok(Course { lessons }),
        [one] => bail!("{one}"),
        many => bail!(
            "{} mistakes in the lessons (www/lessons/README.md describes their format):\n{}",
            many.len(),
            many.join("\n")
        ),
    }
}

/// One lesson file, `name` being its file name: the lesson, or every mistake in it (without the file).
fn lesson(name: &str, source: &str) -> Result<Lesson, Vec<String>> {
    let mut problems = Problems::default();
    let id = lesson_id(name);
    if id.is_none() {
        problems.add(
            "",
            "the file name must be `NN-id.toml`: two digits, `-`, then the lesson's id in lower case \
             letters, digits and `-`, such as `35-simple-server.toml`",
        );
    }
    let file: LessonFile = match toml::from_str(source) {
        Ok(file) => file,
        Err(e) => {
            problems.add("", e.to_string().trim_end());
            return Err(problems.0);
        }
    };
    let title = problems.text(file.title, "", "title");
    let html = problems
        .text(file.text, "", "text")
        .map(|t| t.map(markdown));
    if file.exercise.is_empty() {
        problems.add("", "no `[[exercise]]`: a lesson has at least one");
    }
    let exercises: Vec<Option<Exercise>> = file
        .exercise
        .into_iter()
        .enumerate()
        .map(|(i, exercise)| problems.exercise(exercise, &format!("exercise {}: ", i + 1)))
        .collect();
    match (id, title, html, exercises.into_iter().collect()) {
        (Some(id), Some(title), Some(html), Some(exercises)) if problems.0.is_empty() => {
            Ok(Lesson {
                id: id.to_owned(),
                file: name.to_owned(),
                title,
                html,
                exercises,
            })
        }
        _ => Err(problems.0),
    }
}

/// The lesson id in a file name `NN-id.toml`, if it is one.
fn lesson_id(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".toml")?;
    let (number, id) = stem.split_at_checked(2)?;
    let id = id.strip_prefix('-')?;
    let valid = number.bytes().all(|b| b.is_ascii_digit())
        && !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    valid.then_some(id)
}

/// True for a program's file name: letters, digits, `_` and `-`, then `.py`.
fn valid_program_name(name: &str) -> bool {
    name.strip_suffix(".py").is_some_and(|stem| {
        !stem.is_empty()
            && stem
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// Lesson Markdown as HTML. Raw HTML becomes text (a block of it a paragraph), so a lesson cannot put
/// markup or script in the page that Markdown does not make.
fn markdown(source: String) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let events = Parser::new_ext(&source, options).map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        Event::Start(Tag::HtmlBlock) => Event::Start(Tag::Paragraph),
        Event::End(TagEnd::HtmlBlock) => Event::End(TagEnd::Paragraph),
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html.truncate(html.trim_end().len());
    html
}

/// The mistakes found in one file so far, each with its place (`exercise 1: title: `).
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    /// Notes `what` at `at`, which is empty or ends in `: `.
    fn add(&mut self, at: &str, what: impl Display) {
        self.0.push(format!("{at}{what}"));
    }

    /// `value`, noting that `field` is missing if it is.
    fn required<T>(&mut self, value: Option<T>, at: &str, field: &str) -> Option<T> {
        if value.is_none() {
            self.add(at, format_args!("missing field `{field}`"));
        }
        value
    }

    /// `value`, noting that `field` is missing or holds nothing but blanks.
    fn non_empty(&mut self, value: Option<String>, at: &str, field: &str) -> Option<String> {
        let value = self.required(value, at, field)?;
        if value.trim().is_empty() {
            self.add(at, format_args!("`{field}` is empty"));
            return None;
        }
        Some(value)
    }

    /// A text in both languages, each there and not empty.
    fn text(
        &mut self,
        value: Option<BilingualFile<String>>,
        at: &str,
        field: &str,
    ) -> Option<Bilingual<String>> {
        let value = self.required(value, at, field)?;
        let at = format!("{at}{field}: ");
        let id = self.non_empty(value.id, &at, "id");
        let en = self.non_empty(value.en, &at, "en");
        Some(Bilingual { id: id?, en: en? })
    }

    /// The hints: as many in each language, at least one, none empty.
    fn hints(
        &mut self,
        value: Option<BilingualFile<Vec<String>>>,
        at: &str,
    ) -> Option<Bilingual<Vec<String>>> {
        let value = self.required(value, at, "hints")?;
        let at = format!("{at}hints: ");
        let id = self.required(value.id, &at, "id");
        let en = self.required(value.en, &at, "en");
        let (id, en) = (id?, en?);
        if id.len() != en.len() {
            self.add(
                &at,
                format_args!("{} in \"id\" but {} in \"en\"", id.len(), en.len()),
            );
            return None;
        }
        if id.is_empty() {
            self.add(&at, "none: give at least one, in both languages");
            return None;
        }
        let before = self.0.len();
        for (language, hints) in [("id", &id), ("en", &en)] {
            for (i, hint) in hints.iter().enumerate() {
                if hint.trim().is_empty() {
                    self.add(
                        &at,
                        format_args!("hint {} in \"{language}\" is empty", i + 1),
                    );
                }
            }
        }
        (self.0.len() == before).then_some(Bilingual { id, en })
    }

    /// One `[[exercise]]`, `at` naming it.
    fn exercise(&mut self, file: ExerciseFile, at: &str) -> Option<Exercise> {
        let title = self.text(file.title, at, "title");
        let task = self.text(file.task, at, "task").map(|t| t.map(markdown));
        let hints = self
            .hints(file.hints, at)
            .map(|h| h.map(|hints| hints.into_iter().map(markdown).collect()));
        if file.program.is_empty() {
            self.add(
                at,
                "no `[[exercise.program]]`: an exercise has at least one",
            );
        }
        let mut names = HashSet::new();
        let programs: Option<Vec<Program>> = file
            .program
            .into_iter()
            .enumerate()
            .map(|(i, program)| {
                let place = match &program.name {
                    Some(name) => format!("{at}program {name:?}: "),
                    None => format!("{at}program {}: ", i + 1),
                };
                if let Some(name) = &program.name {
                    if !names.insert(name.clone()) {
                        self.add(
                            &place,
                            "another program of this exercise has that name already",
                        );
                    }
                }
                self.program(program, &place)
            })
            .collect();
        let check = self.required(file.check, at, "check");
        let check = check.and_then(|check| self.check(check, &format!("{at}check: ")));
        Some(Exercise {
            title: title?,
            task: task?,
            hints: hints?,
            programs: programs?,
            check: check?,
        })
    }

    /// One `[[exercise.program]]`, `at` naming it.
    fn program(&mut self, file: ProgramFile, at: &str) -> Option<Program> {
        let name = self.required(file.name, at, "name");
        let name = name.filter(|name| {
            let valid = valid_program_name(name);
            if !valid {
                self.add(
                    at,
                    "`name` must be a file name of letters, digits, `_` and `-` ending in `.py`",
                );
            }
            valid
        });
        let role = self.required(file.role, at, "role");
        let role = role.and_then(|role| match role.as_str() {
            "server" => Some(Role::Server),
            "client" => Some(Role::Client),
            other => {
                self.add(
                    at,
                    format_args!("`role` must be \"server\" or \"client\", not {other:?}"),
                );
                None
            }
        });
        let starter = self.required(file.starter, at, "starter");
        let solution = self.required(file.solution, at, "solution");
        Some(Program {
            name: name?,
            role: role?,
            starter: starter?,
            solution: solution?,
            stdin: file.stdin,
        })
    }

    /// The `[exercise.check]`, `at` naming it.
    fn check(&mut self, file: CheckFile, at: &str) -> Option<Check> {
        let timeout = match file.timeout {
            None => Some(DEFAULT_TIMEOUT),
            Some(seconds) => match u32::try_from(seconds) {
                Ok(seconds @ 1..=MAX_TIMEOUT) => Some(seconds),
                _ => {
                    self.add(
                        at,
                        format_args!(
                            "`timeout` is {seconds}: give whole seconds from 1 to {MAX_TIMEOUT}"
                        ),
                    );
                    None
                }
            },
        };
        let script = self.non_empty(file.script, at, "script");
        Some(Check {
            timeout: timeout?,
            setup: file.setup,
            script: script?,
        })
    }
}

// The lesson file as written (`www/lessons/README.md`).

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LessonFile {
    title: Option<BilingualFile<String>>,
    /// Markdown.
    text: Option<BilingualFile<String>>,
    #[serde(default)]
    exercise: Vec<ExerciseFile>,
}

/// `field.id` (Bahasa Indonesia) and `field.en` (English).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BilingualFile<T> {
    id: Option<T>,
    en: Option<T>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExerciseFile {
    title: Option<BilingualFile<String>>,
    /// Markdown.
    task: Option<BilingualFile<String>>,
    /// Markdown, each.
    hints: Option<BilingualFile<Vec<String>>>,
    #[serde(default)]
    program: Vec<ProgramFile>,
    check: Option<CheckFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgramFile {
    name: Option<String>,
    role: Option<String>,
    starter: Option<String>,
    solution: Option<String>,
    stdin: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckFile {
    timeout: Option<i64>,
    setup: Option<String>,
    script: Option<String>,
}

// `www/course.json`: what the page's JavaScript reads.

/// The whole course, its lessons in the order of their file names.
#[derive(Serialize, Debug)]
struct Course {
    lessons: Vec<Lesson>,
}

#[derive(Serialize, Debug)]
struct Lesson {
    /// From the file name: the lesson's address, `#/lesson/<id>`.
    id: String,
    /// The file name, `NN-id.toml`.
    file: String,
    title: Bilingual<String>,
    /// The lesson's `text`, as HTML.
    html: Bilingual<String>,
    exercises: Vec<Exercise>,
}

/// A text in Bahasa Indonesia (`id`) and English (`en`).
#[derive(Serialize, Debug, PartialEq)]
struct Bilingual<T> {
    id: T,
    en: T,
}

impl<T> Bilingual<T> {
    fn map<U>(self, f: impl Fn(T) -> U) -> Bilingual<U> {
        Bilingual {
            id: f(self.id),
            en: f(self.en),
        }
    }
}

#[derive(Serialize, Debug)]
struct Exercise {
    title: Bilingual<String>,
    /// HTML.
    task: Bilingual<String>,
    /// HTML, each; as many in each language.
    hints: Bilingual<Vec<String>>,
    programs: Vec<Program>,
    check: Check,
}

#[derive(Serialize, Debug)]
struct Program {
    name: String,
    role: Role,
    starter: String,
    solution: String,
    /// What `input()` reads when Check runs the program; `null` for none.
    stdin: Option<String>,
}

/// How Check runs a program.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Role {
    /// Started, then waited for until it listens.
    Server,
    /// Run until it ends, at most the check's `timeout`.
    Client,
}

#[derive(Serialize, Debug)]
struct Check {
    /// Seconds, 1 to [`MAX_TIMEOUT`].
    timeout: u32,
    setup: Option<String>,
    script: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest lesson there is, with `solution` on the line after `{extra_program}` and
    /// `{extra_check}` inside the check.
    const MINIMAL: &str = r#"
title.id = "Judul"
title.en = "Title"
text.id = "Teks *ini*."
text.en = "This *text*."

[[exercise]]
title.id = "Latihan"
title.en = "Exercise"
task.id = "Tulis `server`."
task.en = "Write a `server`."
hints.id = ["Petunjuk"]
hints.en = ["A hint"]

[[exercise.program]]
name = "server.py"
role = "server"
starter = "import socket\n"
solution = '''
import socket
print("hi\n")
'''

[exercise.check]
script = "import soket_check as check"
"#;

    /// A folder holding `files` (name, content).
    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        dir
    }

    /// The error of compiling one file `name` holding `source`.
    fn error(name: &str, source: &str) -> String {
        let dir = folder(&[(name, source)]);
        format!("{:#}", compile(dir.path()).unwrap_err())
    }

    #[test]
    fn a_minimal_lesson_compiles_to_the_json_the_page_reads() {
        let dir = folder(&[("10-first.toml", MINIMAL), ("README.md", "not a lesson")]);
        let course = compile(dir.path()).unwrap();
        let json: serde_json::Value = serde_json::to_value(&course).unwrap();
        let expected = serde_json::json!({"lessons": [{
            "id": "first",
            "file": "10-first.toml",
            "title": {"id": "Judul", "en": "Title"},
            "html": {"id": "<p>Teks <em>ini</em>.</p>", "en": "<p>This <em>text</em>.</p>"},
            "exercises": [{
                "title": {"id": "Latihan", "en": "Exercise"},
                "task": {"id": "<p>Tulis <code>server</code>.</p>",
                         "en": "<p>Write a <code>server</code>.</p>"},
                "hints": {"id": ["<p>Petunjuk</p>"], "en": ["<p>A hint</p>"]},
                "programs": [{
                    "name": "server.py",
                    "role": "server",
                    "starter": "import socket\n",
                    "solution": "import socket\nprint(\"hi\\n\")\n",
                    "stdin": null,
                }],
                "check": {"timeout": 10, "setup": null, "script": "import soket_check as check"},
            }],
        }]});
        assert_eq!(json, expected);
        // The fields in the order of the format, as the page's authors read them.
        let text = serde_json::to_string(&course).unwrap();
        assert!(
            text.starts_with(r#"{"lessons":[{"id":"first","file":"10-first.toml","title":{"id":"#),
            "{text}"
        );
    }

    #[test]
    fn lessons_come_in_the_order_of_their_file_names() {
        let dir = folder(&[("20-second.toml", MINIMAL), ("05-first.toml", MINIMAL)]);
        let ids: Vec<String> = compile(dir.path())
            .unwrap()
            .lessons
            .into_iter()
            .map(|l| l.id)
            .collect();
        assert_eq!(ids, ["first", "second"]);
    }

    #[test]
    fn the_course_is_written_only_when_it_changed() {
        let dir = folder(&[("10-first.toml", MINIMAL)]);
        let out = dir.path().join("course.json");
        let course = compile(dir.path()).unwrap();
        assert!(write_if_changed(&course, &out).unwrap());
        assert!(!write_if_changed(&course, &out).unwrap());
        let written: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(written["lessons"][0]["id"], "first");
    }

    #[test]
    fn a_missing_solution_names_the_file_the_exercise_and_the_program() {
        let source = MINIMAL.replace("solution = '''", "stdin = '''");
        let message = error("20-echo.toml", &source);
        assert!(
            message.ends_with(
                "20-echo.toml: exercise 1: program \"server.py\": missing field `solution`"
            ),
            "{message}"
        );
    }

    #[test]
    fn a_missing_text_names_its_language() {
        let message = error("20-echo.toml", &MINIMAL.replace("task.en = ", "# "));
        assert!(
            message.ends_with("20-echo.toml: exercise 1: task: missing field `en`"),
            "{message}"
        );
        let message = error("20-echo.toml", &MINIMAL.replace("title.id = \"Judul\"", ""));
        assert!(
            message.ends_with("20-echo.toml: title: missing field `id`"),
            "{message}"
        );
        let message = error("20-echo.toml", &MINIMAL.replace("\"Title\"", "\" \""));
        assert!(
            message.ends_with("20-echo.toml: title: `en` is empty"),
            "{message}"
        );
    }

    #[test]
    fn an_unknown_field_is_an_error_naming_file_and_field() {
        let message = error("20-echo.toml", &MINIMAL.replace("starter =", "stater ="));
        assert!(message.contains("20-echo.toml: "), "{message}");
        assert!(message.contains("unknown field `stater`"), "{message}");
        assert!(message.contains("line 18"), "{message}");
    }

    #[test]
    fn hints_must_be_as_many_in_both_languages() {
        let source = MINIMAL.replace(r#"["A hint"]"#, r#"["One", "Two"]"#);
        let message = error("20-echo.toml", &source);
        assert!(
            message.ends_with("20-echo.toml: exercise 1: hints: 1 in \"id\" but 2 in \"en\""),
            "{message}"
        );
        let source = MINIMAL
            .replace(r#"["A hint"]"#, "[]")
            .replace(r#"["Petunjuk"]"#, "[]");
        let message = error("20-echo.toml", &source);
        assert!(message.contains("exercise 1: hints: none"), "{message}");
    }

    #[test]
    fn a_file_name_must_be_two_digits_and_an_id() {
        for name in [
            "echo.toml",
            "1-echo.toml",
            "10-Echo.toml",
            "10_echo.toml",
            "10-.toml",
        ] {
            let message = error(name, MINIMAL);
            assert!(
                message.ends_with(&format!(
                    "/{name}: the file name must be `NN-id.toml`: two \
                    digits, `-`, then the lesson's id in lower case letters, digits and `-`, such \
                    as `35-simple-server.toml`"
                )),
                "{name}: {message}"
            );
        }
    }

    #[test]
    fn two_lessons_may_not_share_an_id() {
        let dir = folder(&[("10-echo.toml", MINIMAL), ("20-echo.toml", MINIMAL)]);
        let message = format!("{:#}", compile(dir.path()).unwrap_err());
        assert!(
            message
                .contains("20-echo.toml: the lesson id `echo` is the id of 10-echo.toml already"),
            "{message}"
        );
    }

    #[test]
    fn a_role_is_server_or_client() {
        let message = error("20-echo.toml", &MINIMAL.replace("\"server\"", "\"Server\""));
        assert!(
            message.ends_with(
                "exercise 1: program \"server.py\": `role` must be \"server\" or \"client\", not \"Server\""
            ),
            "{message}"
        );
    }

    #[test]
    fn two_programs_of_an_exercise_may_not_share_a_name() {
        let program = "[[exercise.program]]\nname = \"server.py\"\nrole = \"client\"\n\
                       starter = \"\"\nsolution = \"\"\n\n[exercise.check]";
        let message = error(
            "20-echo.toml",
            &MINIMAL.replace("[exercise.check]", program),
        );
        assert!(
            message.ends_with(
                "exercise 1: program \"server.py\": another program of this exercise has that name already"
            ),
            "{message}"
        );
    }

    #[test]
    fn a_program_name_is_a_python_file_name() {
        for name in ["server", "my server.py", ".py", "../server.py", "server.PY"] {
            let source = MINIMAL.replace("\"server.py\"", &format!("{name:?}"));
            let message = error("20-echo.toml", &source);
            assert!(
                message.contains("`name` must be a file name"),
                "{name}: {message}"
            );
        }
        for name in ["server.py", "Echo_2-client.py"] {
            assert!(valid_program_name(name), "{name}");
        }
    }

    #[test]
    fn a_timeout_is_from_1_to_60_seconds() {
        for timeout in ["0", "61", "-5"] {
            let source = MINIMAL.replace("script =", &format!("timeout = {timeout}\nscript ="));
            let message = error("20-echo.toml", &source);
            assert!(
                message.ends_with(&format!(
                    "exercise 1: check: `timeout` is {timeout}: give whole seconds from 1 to 60"
                )),
                "{message}"
            );
        }
        let dir = folder(&[(
            "10-first.toml",
            &MINIMAL.replace("script =", "timeout = 60\nsetup = \"pass\"\nscript ="),
        )]);
        let check = &compile(dir.path()).unwrap().lessons[0].exercises[0].check;
        assert_eq!((check.timeout, check.setup.as_deref()), (60, Some("pass")));
    }

    #[test]
    fn a_lesson_needs_an_exercise_and_an_exercise_a_program_and_a_check() {
        let cut = MINIMAL.find("[[exercise]]").unwrap();
        let message = error("20-echo.toml", &MINIMAL[..cut]);
        assert!(message.ends_with("20-echo.toml: no `[[exercise]]`: a lesson has at least one"));
        let program = MINIMAL.find("[[exercise.program]]").unwrap();
        let check = MINIMAL.find("[exercise.check]").unwrap();
        let source = format!("{}{}", &MINIMAL[..program], &MINIMAL[check..]);
        let message = error("20-echo.toml", &source);
        assert!(message
            .ends_with("exercise 1: no `[[exercise.program]]`: an exercise has at least one"));
        let message = error("20-echo.toml", &MINIMAL[..check]);
        assert!(
            message.ends_with("exercise 1: missing field `check`"),
            "{message}"
        );
    }

    #[test]
    fn a_toml_syntax_error_names_the_file_and_the_line() {
        let message = error(
            "20-echo.toml",
            &MINIMAL.replace("role = \"server\"", "role = server"),
        );
        assert!(
            message.contains("20-echo.toml: TOML parse error at line 17"),
            "{message}"
        );
    }

    #[test]
    fn every_mistake_of_every_file_is_reported_at_once() {
        let dir = folder(&[
            ("10-one.toml", &MINIMAL.replace("solution =", "solutoin =")),
            (
                "20-two.toml",
                &MINIMAL
                    .replace("task.en = ", "# ")
                    .replace("\"server\"", "\"host\""),
            ),
        ]);
        let message = format!("{:#}", compile(dir.path()).unwrap_err());
        assert!(
            message.starts_with("3 mistakes in the lessons"),
            "{message}"
        );
        assert!(
            message.contains("10-one.toml: TOML parse error"),
            "{message}"
        );
        assert!(
            message.contains("20-two.toml: exercise 1: task: missing field `en`"),
            "{message}"
        );
        assert!(
            message.contains("20-two.toml: exercise 1: program \"server.py\": `role`"),
            "{message}"
        );
    }

    #[test]
    fn raw_html_in_markdown_comes_out_as_text() {
        let html = markdown("Hi <script>alert(1)</script> *there*".to_owned());
        assert_eq!(
            html,
            "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt; <em>there</em></p>"
        );
        let html = markdown("<div onclick=\"x()\">\n<b>bold</b>\n</div>\n".to_owned());
        assert_eq!(
            html,
            "<p>&lt;div onclick=\"x()\"&gt;\n&lt;b&gt;bold&lt;/b&gt;\n&lt;/div&gt;\n</p>"
        );
        let html = markdown("| a | b |\n|---|---|\n| ~~x~~ | <i>y</i> |".to_owned());
        assert!(
            html.contains("<table>") && html.contains("<del>x</del>"),
            "{html}"
        );
        assert!(html.contains("&lt;i&gt;y&lt;/i&gt;"), "{html}");
    }

    #[test]
    fn the_lessons_of_the_repository_build() {
        let course = compile(&tools::root().join("www").join("lessons")).unwrap();
        for lesson in &course.lessons {
            assert!(
                !lesson.exercises.is_empty(),
                "{} has no exercise",
                lesson.file
            );
        }
    }
}
