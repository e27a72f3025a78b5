//! Validates a circuit configuration file and prints every error, or a
//! summary and the warnings: `cargo run -p circuit --example check -- FILE`.

fn main() {
    let path = std::env::args().nth(1).expect("usage: check <file>");
    match circuit::load_file(&path) {
        Ok(m) => {
            println!(
                "{path}: valid, {} circuits, {} sessions",
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
