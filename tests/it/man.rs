//! The man pages in docs/man are generated from the CLI definition; this test
//! fails when they are stale. `make man` regenerates them.
//!
//! Each page carries the command's own options and the global ones, the
//! synopsis as it is typed (`gpu-setup plan`), and EXIT STATUS,
//! ENVIRONMENT, FILES and SEE ALSO sections.

use std::fs;
use std::path::Path;

use clap::CommandFactory;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;
use gpu_setup::args::Cli;

/// What each command's exit codes mean.
fn exit_status(name: &str) -> Vec<(&'static str, &'static str)> {
    let error = "an error (a bad argument, a file that cannot be read or parsed, a refused or failed transaction); nothing was left half-done";
    match name {
        "plan" => vec![
            ("0", "success; with --detailed-exitcode, nothing would change"),
            ("1", "an error, or with --strict a warning-level finding (something that would still keep GPUs from working)"),
            ("2", "with --detailed-exitcode only: changes are pending"),
        ],
        "apply" => vec![
            ("0", "success, whether files changed or not"),
            ("1", "an error (every file is as it was), or with --strict a warning-level finding that remains after applying"),
        ],
        "doctor" => vec![("0", "no check failed"), ("1", "a check failed, or an error")],
        "heal" => vec![
            ("0", "the host is configured: nothing to do, repaired, or the NVIDIA toolkit is not installed (nothing to heal towards)"),
            ("1", error),
            ("2", "report mode (heal = \"report\" or --mode report): changes are pending; nothing was changed"),
        ],
        "" => vec![
            ("0", "success"),
            ("1", "an error (including bad arguments), a failed doctor check, or a warning with --strict"),
            ("2", "plan --detailed-exitcode or heal in report mode: changes are pending"),
        ],
        _ => vec![("0", "success"), ("1", error)],
    }
}

const ENVIRONMENT: [(&str, &str); 8] = [
    ("GPU_SETUP_LOG", "the default of --log-level"),
    ("NO_COLOR", "any non-empty value turns colour off with --color auto"),
    ("CONTAINERS_CONF", "Podman reads this file and no other containers.conf (with --root /): plan warns when gpu-setup's file is then not read"),
    ("CONTAINERS_CONF_OVERRIDE", "Podman 4.5+ reads this file after every other containers.conf"),
    ("XDG_CONFIG_HOME, HOME", "the user's containers.conf directory, read by rootless Podman and by root from Podman 5.0"),
    ("PATH", "where Podman looks runtimes up by name (doctor, warnings); where --sudo finds sudo"),
    ("SUDO_USER", "recorded in the journal as the user who ran sudo"),
    ("TMPDIR", "where --strategy cdi makes the private directory nvidia-ctk writes its spec into (default /tmp; refused when another user could replace it)"),
];

/// Day one and day thirty, as the README shows them.
const EXAMPLES: [(&str, &str); 14] = [
    ("gpu-setup plan", "what would change on this host, as diffs, and what would still keep GPUs from working"),
    ("gpu-setup plan --detailed-exitcode --strict", "for cron or fleet checks: 0 configured, 2 changes pending, 1 error or a warning that GPUs will not work"),
    ("gpu-setup plan --strategy cdi", "CDI instead of the hook (runs nvidia-ctk cdi generate; Podman 4.3 or later)"),
    ("gpu-setup --root /mnt/image plan", "a mounted image instead of this host (its own package database gives the versions)"),
    ("gpu-setup plan --out plan.json", "save the plan for review; then gpu-setup apply plan.json applies exactly that"),
    ("gpu-setup apply", "carry out the plan as one transaction, with backups and a journal"),
    ("gpu-setup apply --sudo", "the same from a user account, through sudo"),
    ("gpu-setup apply --state absent", "undo gpu-setup's configuration exactly, leaving what it never touched"),
    ("gpu-setup rollback", "undo the last applied transaction"),
    ("gpu-setup history --keep 50", "list transactions, pruning what no rollback or undo needs"),
    ("gpu-setup doctor", "why GPUs do or don't work in Podman here"),
    ("gpu-setup doctor --format json", "the same for scripts: exit 0 when no check fails"),
    ("gpu-setup heal --mode report", "what gpu-setup-heal.service checks after a package upgrade: exit 2 when the host drifted"),
    ("gpu-setup completions bash > /etc/bash_completion.d/gpu-setup", "install bash completion (the packages do it)"),
];

const FILES: [(&str, &str); 7] = [
    ("/etc/containers/containers.conf.d/99-nvidia.conf", "the drop-in holding the nvidia runtime entry (the default --containers-conf from Podman 3.3; before, /etc/containers/containers.conf)"),
    ("/etc/nvidia-container-runtime/config.toml", "the NVIDIA Container Toolkit's configuration (no-cgroups, debug logs)"),
    ("/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json", "the NVIDIA OCI prestart hook"),
    ("/etc/cdi/nvidia.yaml", "the CDI spec of --strategy cdi (unless NVIDIA's nvidia-cdi-refresh units own /var/run/cdi/nvidia.yaml)"),
    ("/var/lib/gpu-setup", "the journal: one directory per transaction with copies of every file before and after (0700); never removed by a package"),
    ("/etc/gpu-setup.toml", "the host's profile: its desired state, read under --root by every command (and the heal units and the Ansible module) when it exists; --no-profile ignores it, --profile FILE reads another"),
    ("/usr/share/doc/gpu-setup/examples/gpu-setup.toml", "the documented example profile"),
];

fn section(roff: &mut Roff, title: &str, items: &[(&str, &str)]) {
    roff.control("SH", [title]);
    for (term, text) in items {
        roff.control("TP", []);
        roff.text([bold(*term)]);
        roff.text([roman(*text)]);
    }
}

/// The man page of `cmd` (built, so its global options are there).
fn page(cmd: &clap::Command, name: &str, see_also: &[String]) -> Vec<u8> {
    let man = Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out).unwrap();
    man.render_name_section(&mut out).unwrap();
    man.render_synopsis_section(&mut out).unwrap();
    man.render_description_section(&mut out).unwrap();
    man.render_options_section(&mut out).unwrap();
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut out).unwrap();
    }
    if cmd.get_after_help().is_some() || cmd.get_after_long_help().is_some() {
        man.render_extra_section(&mut out).unwrap();
    }
    let mut roff = Roff::new();
    let examples: Vec<(&str, &str)> = EXAMPLES
        .iter()
        .filter(|(cmd, _)| {
            name.is_empty()
                || cmd.split_whitespace().nth(1) == Some(name)
                || cmd.contains(&format!(" {name} "))
        })
        .copied()
        .collect();
    if !examples.is_empty() {
        section(&mut roff, "EXAMPLES", &examples);
    }
    section(&mut roff, "EXIT STATUS", &exit_status(name));
    section(&mut roff, "ENVIRONMENT", &ENVIRONMENT);
    section(&mut roff, "FILES", &FILES);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(see_also.join(", "))]);
    roff.to_writer(&mut out).unwrap();
    man.render_version_section(&mut out).unwrap();
    out
}

/// Every page: `gpu-setup.1` and one per subcommand (`gpu-setup-plan.1`).
pub fn pages() -> Vec<(String, Vec<u8>)> {
    let mut cmd = Cli::command();
    // Builds the subcommands' names as typed ("gpu-setup plan") and gives
    // them the global options.
    cmd.build();
    let subs: Vec<clap::Command> = cmd.get_subcommands().cloned().collect();
    let sub_pages: Vec<String> = subs
        .iter()
        .map(|s| format!("gpu-setup-{}(1)", s.get_name()))
        .collect();
    let docs = ["podman(1)", "containers.conf(5)", "oci-hooks(5)"].map(String::from);
    let mut out = Vec::new();
    let see: Vec<String> = sub_pages.iter().chain(&docs).cloned().collect();
    out.push(("gpu-setup.1".to_owned(), page(&cmd, "", &see)));
    for sub in subs {
        let name = sub.get_name().to_owned();
        let own = format!("gpu-setup-{name}(1)");
        let see: Vec<String> = std::iter::once("gpu-setup(1)".to_owned())
            .chain(sub_pages.iter().filter(|p| **p != own).cloned())
            .chain(docs.iter().cloned())
            .collect();
        out.push((format!("gpu-setup-{name}.1"), page(&sub, &name, &see)));
    }
    out.push(("gpu-setup.toml.5".to_owned(), profile_page()));
    out
}

/// The profile's keys, each with the comment block above it in the
/// template (its one source) and its default.
fn profile_keys() -> Vec<(String, String, String)> {
    let template = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates/gpu-setup.toml"),
    )
    .unwrap();
    let mut keys = Vec::new();
    let mut block: Vec<String> = Vec::new();
    let mut header = true;
    for line in template.lines() {
        let Some(text) = line.strip_prefix('#') else {
            block.clear();
            header = false;
            continue;
        };
        let text = text.trim_start();
        match text.split_once(" = ") {
            Some((key, default))
                if !header && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
            {
                keys.push((key.to_owned(), default.to_owned(), block.join(" ")));
            }
            _ if !header => block.push(text.to_owned()),
            _ => {}
        }
    }
    keys
}

/// `gpu-setup.toml(5)`: the profile format, from the template.
fn profile_page() -> Vec<u8> {
    let mut roff = Roff::new();
    roff.control("TH", ["gpu-setup.toml", "5"]);
    roff.control("SH", ["NAME"]);
    roff.text([roman(
        "gpu-setup.toml - the desired state of a GPU host for gpu-setup",
    )]);
    roff.control("SH", ["DESCRIPTION"]);
    roff.text([roman(
        "A TOML file. Installed as /etc/gpu-setup.toml it is the host's desired state: every gpu-setup command (plan, apply, heal, doctor) and the Ansible module read it under --root when it exists; --profile FILE reads another file on the running system instead, and --no-profile none. Every key is optional: an unset key keeps the built-in default shown below, and command-line flags (or module arguments) win over the file. An unknown key, a wrong type or invalid TOML is an error naming the file, line and column. The file and the directory holding it must be owned by root (or the user running gpu-setup) and writable by no one else.",
    )]);
    roff.control("SH", ["KEYS"]);
    // From the one declaration of each setting (the template is checked
    // against it: the_profile_page_lists_every_key_the_profile_takes).
    for s in gpu_setup_plan::settings::SETTINGS {
        use gpu_setup_plan::settings::Kind;
        let kind = match s.kind {
            Kind::Text => "a string".to_owned(),
            Kind::Bool | Kind::Switch => "true or false".to_owned(),
            Kind::Choice(_) => s
                .choices()
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(" or "),
            Kind::Count => "a whole number".to_owned(),
        };
        // `"value"`, and the rest of a default that says more (`; ...`).
        let default = s.default.map_or("unset".to_owned(), |d| {
            let (value, more) = match d.split_once(';') {
                Some((value, more)) => (value, format!(";{more}")),
                None => (d, String::new()),
            };
            match s.kind {
                Kind::Text | Kind::Choice(_) => format!("\"{value}\"{more}"),
                _ => d.to_owned(),
            }
        });
        let also = match (s.flag, s.module) {
            (true, true) => format!("; flag --{}, module argument {}", s.flag_name(), s.key),
            (true, false) => format!("; flag --{}", s.flag_name()),
            _ => String::new(),
        };
        roff.control("TP", []);
        roff.text([
            bold(s.key),
            roman(format!(" ({kind}; default: {default}{also})")),
        ]);
        roff.text([roman(s.help)]);
    }
    roff.control("SH", ["FILES"]);
    section_items(&mut roff, &FILES[5..]);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman("gpu-setup(1), gpu-setup-plan(1), gpu-setup-heal(1)")]);
    let mut out = Vec::new();
    roff.to_writer(&mut out).unwrap();
    out
}

fn section_items(roff: &mut Roff, items: &[(&str, &str)]) {
    for (term, text) in items {
        roff.control("TP", []);
        roff.text([bold(*term)]);
        roff.text([roman(*text)]);
    }
}

#[test]
fn the_profile_page_lists_every_key_the_profile_takes() {
    // Every key of the settings (serde's names) is in the template, each
    // default parses as a profile of its own, and nothing else is there.
    let all: serde_json::Value = serde_json::to_value(gpu_setup_plan::Settings::default()).unwrap();
    let mut expected: Vec<String> = all.as_object().unwrap().keys().cloned().collect();
    expected.sort();
    let keys = profile_keys();
    let mut listed: Vec<String> = keys.iter().map(|(k, _, _)| k.clone()).collect();
    listed.sort();
    assert_eq!(listed, expected);
    for (key, default, text) in &keys {
        let layer = gpu_setup_plan::Settings::from_profile("t", &format!("{key} = {default}\n"))
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert!(!text.is_empty(), "{key} has no description");
        // The template shows the declared default (an example where the
        // setting has none).
        let declared = gpu_setup_plan::settings::Setting::get(key).unwrap();
        if let Some(d) = declared.default {
            let shown = d.split(';').next().unwrap();
            let mut want = gpu_setup_plan::Settings::default();
            want.set(key, shown).unwrap();
            assert_eq!(
                layer, want,
                "{key}: the template's {default} vs the declared {d}"
            );
        }
    }
}

#[test]
fn man_pages() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/man");
    let update = std::env::var_os("GPU_SETUP_UPDATE_DOCS").is_some();
    let pages = pages();
    if update {
        fs::create_dir_all(&dir).unwrap();
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "1" || e == "5") {
                fs::remove_file(path).unwrap();
            }
        }
    }
    for (file, out) in &pages {
        let path = dir.join(file);
        if update {
            fs::write(&path, out).unwrap();
        }
        let committed = fs::read(&path).unwrap_or_default();
        assert!(
            committed == *out,
            "docs/man/{file} is stale: run `make man`"
        );
    }
    // No page for a command that does not exist (no `gpu-setup-help`).
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected: Vec<String> = pages.into_iter().map(|(f, _)| f).collect();
    expected.sort();
    assert_eq!(
        names, expected,
        "docs/man holds exactly the generated pages"
    );
}

#[test]
fn subcommand_pages_read_as_one_program_with_its_global_options() {
    let pages = pages();
    let plan = pages.iter().find(|(f, _)| f == "gpu-setup-plan.1").unwrap();
    let text = String::from_utf8_lossy(&plan.1);
    assert!(
        text.contains("\\fBgpu\\-setup plan\\fR [OPTIONS]"),
        "synopsis as typed: {text}"
    );
    for needle in [
        "\\-\\-root",
        "\\-\\-format",
        "\\-\\-quiet",
        "\\-\\-strict",
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "SEE ALSO",
        "\\fI<DIR>\\fR",
    ] {
        assert!(text.contains(needle), "missing {needle:?}: {text}");
    }
    assert!(!pages.iter().any(|(f, _)| f.contains("help")));
}

/// Every `module::test_name` the docs cite (security.md's rules, testing.md,
/// heal.md's scenarios, ...) is a function in the source: a renamed or
/// removed test cannot leave a rule pointing at nothing.
#[test]
fn the_docs_cite_only_tests_that_exist() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    sources(&repo.join("crates"), &mut files);
    sources(&repo.join("tests"), &mut files);
    let mut functions = std::collections::BTreeSet::new();
    for f in &files {
        let text = fs::read_to_string(f).unwrap();
        for rest in text.split("fn ").skip(1) {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            functions.insert(name);
        }
    }
    let mut docs = vec![repo.join("README.md")];
    for entry in fs::read_dir(repo.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push(path);
        }
    }
    let mut cited = 0;
    for doc in docs {
        let text = fs::read_to_string(&doc).unwrap();
        for quoted in text.split('`').skip(1).step_by(2) {
            let parts: Vec<&str> = quoted.split("::").collect();
            let [module, .., name] = parts[..] else {
                continue;
            };
            let word = |s: &str| {
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            };
            // A test name: snake case with at least three words.
            if !word(module) || !word(name) || name.matches('_').count() < 2 {
                continue;
            }
            cited += 1;
            assert!(
                functions.contains(name),
                "{} cites `{quoted}`, which is no function in crates/ or tests/",
                doc.display()
            );
        }
    }
    assert!(
        cited > 30,
        "only {cited} citations found: the parser is off"
    );
}
