//! The man pages in docs/man are generated from the CLI definition; this test
//! fails when they are stale. `make man` regenerates them.

use std::fs;
use std::path::Path;

use clap::CommandFactory;
use gpu_setup::args::Cli;

#[test]
fn man_pages() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/man");
    let cmd = Cli::command();
    let mut pages = vec![("gpu-setup.1".to_owned(), cmd.clone())];
    for sub in cmd.get_subcommands() {
        let name = format!("gpu-setup-{}", sub.get_name());
        // clap names are &'static str; a test may leak a few bytes.
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        pages.push((format!("{name}.1"), sub.clone().name(leaked)));
    }
    let update = std::env::var_os("GPU_SETUP_UPDATE_DOCS").is_some();
    for (file, page) in pages {
        let mut out = Vec::new();
        clap_mangen::Man::new(page).render(&mut out).unwrap();
        let path = dir.join(&file);
        if update {
            fs::create_dir_all(&dir).unwrap();
            fs::write(&path, &out).unwrap();
        }
        let committed = fs::read(&path).unwrap_or_default();
        assert!(committed == out, "docs/man/{file} is stale: run `make man`");
    }
}
