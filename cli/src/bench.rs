//! `joule bench`: llama-bench-compatible throughput tables (pp/tg cases, threads,
//! repetitions; markdown, JSON or CSV), with peak RSS and the kernel path.

use std::path::{Path, PathBuf};

use clap::Args;
use joule_core::KvType;
use joule_core::Precision;
use joule_core::engine::bench::{BenchCase, BenchSetup, mean_std, run_case_metered};
use joule_core::engine::bench_profile::{CaseProfile, profile_case};
use joule_core::engine::{Engine, EngineOptions, peak_rss_bytes};
use serde::Serialize;

use crate::output::outln;

#[derive(Args)]
pub struct BenchArgs {
    /// Model files (repeatable; default: the SmolLM2-135M Q4_1 file).
    #[arg(short, long)]
    model: Vec<PathBuf>,
    /// Prompt lengths to process, comma-separated (0 to skip).
    #[arg(short = 'p', long = "n-prompt", value_delimiter = ',', default_value = "512")]
    n_prompt: Vec<usize>,
    /// Generation lengths, comma-separated (0 to skip).
    #[arg(short = 'n', long = "n-gen", value_delimiter = ',', default_value = "128")]
    n_gen: Vec<usize>,
    /// Thread counts, comma-separated (default: the performance cores).
    #[arg(short, long, value_delimiter = ',')]
    threads: Vec<usize>,
    /// Timed repetitions per case (after one warm-up).
    #[arg(short, long = "repetitions", default_value_t = 5)]
    r: usize,
    /// Prompt tokens per batch.
    #[arg(short, long = "batch-size", default_value_t = 512)]
    batch: usize,
    /// fast (8-bit activations, integer kernels) or exact (f32 activations), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [Precision::default()])]
    precision: Vec<Precision>,
    /// Depths, comma-separated: tokens already in the KV cache before each case
    /// (llama-bench's `-d`; the depth prefill is not timed).
    #[arg(short = 'd', long = "n-depth", value_delimiter = ',', default_value = "0")]
    n_depth: Vec<usize>,
    /// KV cache type: f32, f16 or q8_0 (default: f16 on the fast path, f32 on exact).
    #[arg(long = "kv-type")]
    kv_type: Option<KvType>,
    /// Output format: md, json or csv.
    #[arg(short, long, default_value = "md")]
    output: String,
    #[command(flatten)]
    energy: crate::EnergyArgs,
    /// Also measure memory read bandwidth per thread count and report each tg case as a
    /// fraction of the bandwidth ceiling (bandwidth ÷ weight bytes per token).
    #[arg(long)]
    bandwidth: bool,
    /// Also profile one more repetition of each case: time per operation per pass (decode
    /// token or prefill batch), bytes read and GB/s (a `profile` field in JSON).
    #[arg(long)]
    profile: bool,
    /// pp cases: score the prompt with this pruning strategy (early-layer, self-info) and
    /// prefill only what it keeps, or prefill it all and compress the cache (snapkv); t/s
    /// counts every prompt token, scoring included.
    #[arg(long)]
    prune: Option<String>,
    /// With --prune: the budget, a ratio (0.25 or 25%) or a number of tokens.
    #[arg(long, default_value = "0.25", requires = "prune")]
    keep: String,
    /// With --prune: the filter (early-layer) or exit (self-info) layer.
    #[arg(long, requires = "prune")]
    prune_layer: Option<usize>,
    /// tg cases: generate in a cache of this many slots, evicting the oldest after the
    /// sinks whenever it fills (as `--evict` does in a chat); eviction time is timed.
    #[arg(long)]
    evict_context: Option<usize>,
    /// With --evict-context: first cache slots never evicted.
    #[arg(long, default_value_t = joule_core::EvictOptions::default().sinks, requires = "evict_context")]
    evict_sinks: usize,
}

impl BenchArgs {
    fn setup(&self, depth: usize) -> crate::CliResult<BenchSetup> {
        let prune = match &self.prune {
            Some(s) => {
                let strategy = joule_core::Strategy::parse(s)?.with_layer(self.prune_layer);
                let budget = joule_core::Budget::parse(&self.keep)?;
                Some(joule_core::PruneOptions::new(strategy, budget))
            }
            None => None,
        };
        let evict = self.evict_context.map(|context| {
            let opts = joule_core::EvictOptions { sinks: self.evict_sinks, ..Default::default() };
            (opts, context)
        });
        Ok(BenchSetup { depth, prune, evict })
    }
}

/// One result row; field names follow llama-bench's JSON where they apply.
#[derive(Serialize)]
struct Row {
    model_filename: String,
    model_type: String,
    model_size: u64,
    model_n_params: u64,
    n_batch: usize,
    n_threads: usize,
    n_prompt: usize,
    n_gen: usize,
    n_depth: usize,
    test: String,
    avg_ns: u64,
    stddev_ns: u64,
    avg_ts: f64,
    stddev_ts: f64,
    samples_ns: Vec<u64>,
    samples_ts: Vec<f64>,
    kernel: String,
    precision: String,
    peak_rss_bytes: Option<u64>,
    kv_type: String,
    /// KV cache bytes of the slots the case ends with (depth plus the case's tokens).
    kv_bytes: usize,
    /// Mean joules per token over the repetitions, and how they were obtained.
    joules_per_token: Option<f64>,
    avg_watts: Option<f64>,
    energy_method: String,
    energy_source: String,
    /// Weight bytes read per generated token.
    weight_bytes_per_token: u64,
    /// Measured read bandwidth (bytes/s) with these threads, when asked for.
    read_bandwidth: Option<f64>,
    /// avg_ts × weight bytes per token ÷ read bandwidth (tg cases).
    bandwidth_fraction: Option<f64>,
    /// pp with --prune: prompt tokens prefilled after scoring.
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_kept: Option<usize>,
    /// tg with --evict-context: cache slots evicted per repetition.
    #[serde(skip_serializing_if = "Option::is_none")]
    evicted_tokens: Option<usize>,
    /// Time per operation of one extra repetition (with --profile).
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<CaseProfile>,
}

pub fn bench(a: BenchArgs) -> crate::CliResult {
    if !["md", "json", "csv"].contains(&a.output.as_str()) {
        return Err(format!("unknown output format '{}' (md, json, csv)", a.output).into());
    }
    let models = if a.model.is_empty() { vec![crate::model_path(None)?] } else { a.model.clone() };
    let threads = if a.threads.is_empty() {
        vec![joule_core::engine::performance_cores()]
    } else {
        a.threads.clone()
    };
    let cases = cases(&a)?;
    if a.output == "md" {
        print_md_header(a.bandwidth)?;
    }
    let mut rows = Vec::new();
    for path in &models {
        for &precision in &a.precision {
            for &t in &threads {
                let engine = load_engine(&a, path, precision, t)?;
                for &case in &cases {
                    for &depth in &a.n_depth {
                        let row = measure(&a, &engine, path, case, depth)?;
                        // With --bandwidth the rows are printed once the ceiling is known.
                        if !a.bandwidth {
                            print_row(&a.output, &row, rows.is_empty())?;
                        }
                        rows.push(row);
                    }
                }
            }
        }
    }
    if a.bandwidth {
        add_bandwidth(&mut rows, &threads)?;
        for (i, row) in rows.iter().enumerate() {
            print_row(&a.output, row, i == 0)?;
        }
    }
    if a.output == "json" {
        outln!("{}", serde_json::to_string_pretty(&rows)?)?;
    } else {
        for row in &rows {
            if let Some(p) = &row.profile {
                print_profile(row, p)?;
            }
        }
    }
    Ok(())
}

/// One case's profile as a markdown table.
fn print_profile(row: &Row, p: &CaseProfile) -> crate::CliResult {
    let unit = if row.n_gen > 0 { "token" } else { "batch" };
    outln!(
        "\nprofile: {} threads {} (per {unit}, {} passes): measured {:.3} ms, operations {:.3} ms ({:.1} %)\n",
        row.n_threads,
        p.test,
        p.passes,
        p.measured_ms,
        p.profiled_ms,
        p.coverage * 100.0
    )?;
    outln!("| operation | calls | ms | share | MB read | GB/s |")?;
    outln!("| --- | ---: | ---: | ---: | ---: | ---: |")?;
    for o in &p.ops {
        outln!(
            "| {} | {:.0} | {:.3} | {:.1} % | {} | {} |",
            o.op,
            o.calls,
            o.ms,
            o.share * 100.0,
            if o.bytes > 0 { format!("{:.2}", o.bytes as f64 / 1e6) } else { "-".into() },
            o.gb_per_s.map_or("-".into(), |g| format!("{g:.1}"))
        )?;
    }
    Ok(())
}

/// The -p and -n cases, prompts first; at least one.
fn cases(a: &BenchArgs) -> crate::CliResult<Vec<BenchCase>> {
    let prompts = a.n_prompt.iter().filter(|&&n| n > 0).map(|&n| BenchCase::Prompt(n));
    let gens = a.n_gen.iter().filter(|&&n| n > 0).map(|&n| BenchCase::Generate(n));
    let cases: Vec<BenchCase> = prompts.chain(gens).collect();
    if cases.is_empty() {
        return Err("nothing to measure: every -p and -n value is 0; give a prompt length \
                    (-p 512) or a generation length (-n 128) above 0"
            .into());
    }
    Ok(cases)
}

fn print_md_header(bandwidth: bool) -> crate::CliResult {
    let (extra, align) =
        if bandwidth { (" share of bandwidth ceiling |", " ---: |") } else { ("", "") };
    outln!(
        "| model | size | params | kernel | precision | threads | test | t/s | J/token | peak RSS |{extra}"
    )?;
    outln!("| --- | ---: | ---: | --- | --- | ---: | --- | ---: | ---: | ---: |{align}")
}

fn load_engine(
    a: &BenchArgs,
    path: &Path,
    precision: Precision,
    threads: usize,
) -> crate::CliResult<std::sync::Arc<Engine>> {
    let options = EngineOptions {
        threads: Some(threads),
        precision,
        batch: a.batch,
        // Each case's session grows its own cache to the depth and tokens it needs.
        context: Some(64),
        kv_type: a.kv_type,
        energy: a.energy.config()?,
        ..EngineOptions::default()
    };
    Ok(Engine::load(path, options).map_err(crate::at_path(path))?)
}

/// One case at one depth: timed repetitions and their energy readings, as a row.
fn measure(
    a: &BenchArgs,
    engine: &std::sync::Arc<Engine>,
    path: &Path,
    case: BenchCase,
    depth: usize,
) -> crate::CliResult<Row> {
    let info = engine.info();
    let setup = a.setup(depth)?;
    let (times, readings) = run_case_metered(engine, case, &setup, a.r.max(1))?;
    let tokens = case_tokens(case) as f64;
    let jpt: Vec<f64> = readings.iter().map(|r| r.joules / tokens).collect();
    let watts: Vec<f64> = readings.iter().map(|r| r.avg_watts).collect();
    let (avg_ts, stddev_ts) = times.mean_std();
    let ns: Vec<f64> = times.seconds.iter().map(|s| s * 1e9).collect();
    let (avg_ns, stddev_ns) = mean_std(&ns);
    let main_type = info
        .tensor_types
        .iter()
        .filter(|(k, _)| *k != "F32")
        .max_by_key(|(_, n)| **n)
        .map(|(k, _)| k.clone())
        .unwrap_or_default();
    let mut test = if depth > 0 { format!("{} @ d{depth}", case.name()) } else { case.name() };
    if let (Some(p), Some(kept)) = (&setup.prune, times.prompt_kept) {
        test += &format!(" {} {}: {kept} kept", p.strategy.name(), p.budget);
    }
    let evicted = setup.evict.filter(|_| matches!(case, BenchCase::Generate(_)));
    if let Some((_, context)) = evicted {
        test += &format!(" in {context} slots: {} evicted", times.evicted_tokens);
    }
    // A window without samples says so, whatever the other windows got.
    let method = readings
        .iter()
        .find(|r| r.method == joule_core::energy::Method::NoData)
        .or(readings.first())
        .map_or("none".into(), |r| r.method.name().into());
    Ok(Row {
        model_filename: path.display().to_string(),
        model_type: format!("{} {} {main_type}", info.architecture, human_params(info.parameters)),
        model_size: info.file_bytes,
        model_n_params: info.parameters,
        n_batch: a.batch,
        n_threads: info.threads,
        n_prompt: if let BenchCase::Prompt(n) = case { n } else { 0 },
        n_gen: if let BenchCase::Generate(n) = case { n } else { 0 },
        n_depth: depth,
        test,
        avg_ns: avg_ns as u64,
        stddev_ns: stddev_ns as u64,
        avg_ts,
        stddev_ts,
        samples_ns: ns.iter().map(|&x| x as u64).collect(),
        samples_ts: times.tokens_per_s(),
        kernel: info.kernel.clone(),
        precision: info.precision.clone(),
        peak_rss_bytes: peak_rss_bytes(),
        kv_type: info.kv_type.clone(),
        kv_bytes: engine.kv_bytes(evicted.map_or(depth + case_tokens(case), |(_, c)| c)),
        joules_per_token: (!jpt.is_empty()).then(|| mean_std(&jpt).0),
        avg_watts: (!watts.is_empty()).then(|| mean_std(&watts).0),
        energy_method: method,
        energy_source: readings.first().map_or(String::new(), |r| r.source.description.clone()),
        weight_bytes_per_token: engine.decode_weight_bytes(),
        read_bandwidth: None,
        bandwidth_fraction: None,
        prompt_kept: times.prompt_kept,
        evicted_tokens: evicted.map(|_| times.evicted_tokens),
        profile: if a.profile { Some(profile_case(engine, case, &setup)?) } else { None },
    })
}

/// Read bandwidth per thread count, and each tg row's share of that ceiling. Measured
/// after every case, so no case's peak RSS includes the 1 GiB buffer.
fn add_bandwidth(rows: &mut [Row], threads: &[usize]) -> crate::CliResult {
    for &t in threads {
        let bw = joule_core::engine::bench::read_bandwidth(t, 1 << 30, 5)?;
        eprintln!(
            "read bandwidth with {t} threads: {:.1} GB/s (1 GiB buffer, 64-bit sums, median of 5)",
            bw / 1e9
        );
        for row in rows.iter_mut().filter(|r| r.n_threads == t) {
            row.read_bandwidth = Some(bw);
            if row.n_gen > 0 {
                row.bandwidth_fraction = Some(row.avg_ts * row.weight_bytes_per_token as f64 / bw);
            }
        }
    }
    Ok(())
}

fn case_tokens(case: BenchCase) -> usize {
    match case {
        BenchCase::Prompt(n) | BenchCase::Generate(n) => n,
    }
}

/// Prints one row in the chosen format (`json` rows are printed together at the end).
fn print_row(output: &str, row: &Row, first: bool) -> crate::CliResult {
    match output {
        "md" => outln!("{}", md_row(row)),
        "csv" => {
            if first {
                outln!(
                    "model_filename,model_type,model_size,n_threads,test,avg_ts,stddev_ts,kernel,precision,peak_rss_bytes,joules_per_token,energy_method,n_depth,kv_type,kv_bytes"
                )?;
            }
            outln!(
                "{},{},{},{},{},{:.3},{:.3},{},{},{},{},{},{},{},{}",
                row.model_filename,
                row.model_type,
                row.model_size,
                row.n_threads,
                row.test,
                row.avg_ts,
                row.stddev_ts,
                row.kernel,
                row.precision,
                row.peak_rss_bytes.map_or(String::new(), |b| b.to_string()),
                row.joules_per_token.map_or(String::new(), |j| format!("{j:.5}")),
                row.energy_method,
                row.n_depth,
                row.kv_type,
                row.kv_bytes,
            )
        }
        _ => Ok(()),
    }
}

fn md_row(r: &Row) -> String {
    let name = std::path::Path::new(&r.model_filename)
        .file_name()
        .map_or(r.model_filename.clone(), |n| n.to_string_lossy().into_owned());
    format!(
        "| {} | {:.1} MiB | {} | {} | {} (KV {}) | {} | {} | {:.2} ± {:.2} | {} | {} |",
        name,
        r.model_size as f64 / (1 << 20) as f64,
        human_params(r.model_n_params),
        r.kernel,
        r.precision,
        r.kv_type,
        r.n_threads,
        r.test,
        r.avg_ts,
        r.stddev_ts,
        match r.joules_per_token {
            Some(j) if r.energy_method != "none" && r.energy_method != "no data" =>
                format!("{j:.4} ({})", r.energy_method),
            _ => "-".into(),
        },
        r.peak_rss_bytes
            .map_or("n/a".into(), |b| format!("{:.0} MiB", b as f64 / (1 << 20) as f64)),
    ) + &r.bandwidth_fraction.map_or(String::new(), |f| format!(" {:.0} % |", f * 100.0))
}

fn human_params(n: u64) -> String {
    if n >= 1_000_000_000 {
        format!("{:.2}B", n as f64 / 1e9)
    } else {
        format!("{:.0}M", n as f64 / 1e6)
    }
}
