//! Validates circuit configuration files (any kind `circuit::import`
//! reads, merged) and prints every error, or a summary and the warnings:
//! `cargo run -p circuit --example check -- FILE [FILE...]`.

fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: check <file> [<file>...]");
        std::process::exit(2);
    }
    match circuit::load_files(&paths) {
        Ok(m) => {
            println!(
                "{}: valid, {} circuits, {} sessions",
                paths.join(", "),
                m.circuits.len(),
                m.sessions().len()
            );
            for w in &m.warnings {
                println!("warning: {w}");
            }
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
