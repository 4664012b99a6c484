//! `joule eval endless`: a scripted chat much longer than the context with eviction on
//! (the running is in `joule_core::eval::endless`; this file parses and prints).

use std::path::PathBuf;

use clap::Args;
use joule_core::engine::{Engine, EngineOptions};
use joule_core::eval::{EndlessPlan, run_endless};
use joule_core::{EvictOptions, Precision};

#[derive(Args)]
pub struct EndlessArgs {
    /// GGUF model file (default: the SmolLM2-135M Q4_1 file).
    #[arg(short, long)]
    model: Option<PathBuf>,
    /// Context size in tokens.
    #[arg(short = 'c', long, default_value_t = 2048)]
    context: usize,
    /// Tokens (prefilled plus generated) before the planted fact is asked.
    #[arg(long, default_value_t = 20_000)]
    tokens: usize,
    /// Generated tokens per turn.
    #[arg(short = 'n', long, default_value_t = 200)]
    max_tokens: usize,
    /// First cache slots never evicted (attention sinks).
    #[arg(long, default_value_t = EvictOptions::default().sinks)]
    evict_sinks: usize,
    /// Compute threads (default: the performance cores).
    #[arg(short, long)]
    threads: Option<usize>,
    /// fast or exact.
    #[arg(long, default_value = "fast")]
    precision: String,
    /// System prompt that plants --fact (default: a secret word).
    #[arg(long)]
    system: Option<String>,
    /// The last question, which asks for the fact.
    #[arg(long)]
    question: Option<String>,
    /// What the last answer must contain.
    #[arg(long)]
    fact: Option<String>,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    json: bool,
}

/// The smallest context the scripted chat fits in: its system prompt, a question and
/// some answer.
const MIN_CONTEXT: usize = 256;

pub fn endless_eval(a: EndlessArgs) -> crate::CliResult {
    if a.context < MIN_CONTEXT {
        return Err(format!(
            "a context of {} tokens cannot hold the scripted chat's system prompt, a question \
             and an answer; give --context {MIN_CONTEXT} or more",
            a.context
        )
        .into());
    }
    if a.tokens == 0 || a.max_tokens == 0 {
        return Err("--tokens and --max-tokens must be at least 1".into());
    }
    let path = crate::model_path(a.model.as_deref())?;
    let options = EngineOptions {
        threads: a.threads,
        context: Some(a.context),
        precision: a.precision.parse::<Precision>()?,
        ..EngineOptions::default()
    };
    let engine = Engine::load(&path, options).map_err(crate::at_path(&path))?;
    let model = path.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let default = EndlessPlan::default();
    let plan = EndlessPlan {
        tokens: a.tokens,
        max_tokens: a.max_tokens,
        evict: EvictOptions { sinks: a.evict_sinks, ..EvictOptions::default() },
        system: a.system.unwrap_or(default.system),
        question: a.question.unwrap_or(default.question),
        fact: a.fact.unwrap_or(default.fact),
    };
    let r = run_endless(&engine, &model, &plan, &mut |turn, result| match result {
        Ok(r) => eprintln!("turn {turn}: {}", r.summary_line()),
        Err(e) => eprintln!("turn {turn}: error: {e}"),
    })?;
    if a.json {
        crate::output::outln!("{}", serde_json::to_string(&r)?)?;
    } else {
        let mib = |m: Option<f64>| m.map_or("n/a".to_string(), |m| format!("{m:.0} MiB"));
        crate::output::outln!(
            "{model}: {} turns, {} tokens through a {}-token context in {:.0} s ({} threads, {} kernels)",
            r.turns,
            r.tokens_total,
            r.context,
            r.seconds,
            engine.info().threads,
            Engine::kernel_name()
        )?;
        crate::output::outln!(
            "evicted {} tokens, dropped {} messages, {} errors; peak RSS {} at first fill, {} at the end",
            r.evicted_tokens,
            r.dropped_messages,
            r.errors,
            mib(r.peak_rss_mib_at_first_fill),
            mib(r.peak_rss_mib_at_end)
        )?;
        crate::output::outln!(
            "recall: {} (answer: {:?}); in a fresh session over the same turns: {}",
            if r.recall { "yes" } else { "no" },
            r.answer,
            if r.recall_fresh { "yes" } else { "no" }
        )?;
    }
    Ok(())
}
