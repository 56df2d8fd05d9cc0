//! Writes a synthetic capture with planted identifiers (see `tattle_analysis::testgen`).
//!
//! ```sh
//! cargo run --release -p tattle-analysis --features testgen --example gen_capture -- \
//!     --shape many-flows --size 1G > many.pcap
//! # 10 GB through a pipe, never on disk:
//! cargo run … --example gen_capture -- --shape many-flows --size 10G | tattle analyze - --id imei=356938035643809
//! ```
//! Prints on stderr what was planted (by `kind:encoding:location`, the count of flows) so the
//! analysis can be checked against it.

use std::io::{BufWriter, Write};

use tattle_analysis::testgen::{Generator, IMEI, PHONE, Shape};

fn usage() -> ! {
    eprintln!(
        "usage: gen_capture [--shape phone|many-flows] [--size N[K|M|G]] [--seed N] [-o FILE]\n\
         writes a pcap to FILE or stdout; planted: imei={IMEI}, phone_number={PHONE}"
    );
    std::process::exit(2);
}

fn size(text: &str) -> Option<u64> {
    let (num, mult) = match text.char_indices().last()? {
        (i, 'K' | 'k') => (&text[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&text[..i], 1 << 20),
        (i, 'G' | 'g') => (&text[..i], 1 << 30),
        _ => (text, 1),
    };
    num.parse::<f64>().ok().map(|n| (n * mult as f64) as u64)
}

fn main() -> std::io::Result<()> {
    let mut shape = Shape::ManyFlows;
    let mut target = 100u64 << 20;
    let mut seed = 0x7a77_1e00_0000_0007u64;
    let mut out: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--shape" => {
                shape = match value().as_str() {
                    "phone" => Shape::Phone,
                    "many-flows" => Shape::ManyFlows,
                    _ => usage(),
                }
            }
            "--size" => target = size(&value()).unwrap_or_else(|| usage()),
            "--seed" => seed = value().parse().unwrap_or_else(|_| usage()),
            "-o" => out = Some(value()),
            _ => usage(),
        }
    }
    let sink: Box<dyn Write> = match &out {
        Some(path) => Box::new(std::fs::File::create(path)?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut g = Generator::with_shape(seed, shape);
    let w = g.write(BufWriter::with_capacity(1 << 20, sink), target)?;
    let (bytes, frames) = (w.bytes(), w.frames());
    drop(w.into_inner());
    eprintln!("{bytes} bytes, {frames} frames");
    let mut by_form: std::collections::BTreeMap<String, u64> = Default::default();
    for p in &g.plants {
        *by_form
            .entry(format!("{}:{}:{}", p.kind, p.encoding, p.location))
            .or_default() += 1;
    }
    for (form, n) in by_form {
        eprintln!("planted {form} in {n} flows");
    }
    for (ending, n) in &g.endings {
        eprintln!("flows ending {ending}: {n}");
    }
    Ok(())
}
