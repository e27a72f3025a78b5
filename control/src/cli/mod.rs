//! `msee-cli`'s renderings beyond the plain views: the az-shaped tables
//! ([`az`]), the usage and availability reports ([`reports`]); and the
//! verbs that run longer than one request: [`capture`] (dropped frames to
//! pcapng) and [`top`] (the live view). The binary only parses arguments.
pub mod az;
pub mod capture;
pub mod reports;
pub mod top;

/// A table: columns as wide as their widest cell, the last one unpadded.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out += c;
            } else {
                out += &format!("{c:<w$}  ");
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(
        header
            .iter()
            .map(std::string::ToString::to_string)
            .collect(),
    );
    for r in rows {
        out += &line(r);
    }
    out
}
