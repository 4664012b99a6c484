//! Endless chat: a scripted conversation much longer than the context, with eviction on.
//! A system prompt plants a fact; user turns ask for long answers until a number of
//! tokens has gone through the model; the last turn asks for the fact. Reports errors,
//! what was evicted, peak memory when the context first filled and at the end, and
//! whether the answer still holds the fact.

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::EvalResult;
use crate::engine::{Engine, EvictOptions, GenerateOptions, TurnReport};
use crate::sampling::SamplingParams;

/// The fact the system prompt plants, and the question that asks for it.
pub const SECRET_WORD: &str = "pineapple";
pub const SYSTEM_PROMPT: &str = "You are a helpful assistant. The user's secret word is \
     pineapple. When the user asks for the secret word, answer with it.";
pub const RECALL_QUESTION: &str = "What is my secret word?";

/// User turns, in a loop: each asks for a longish answer.
pub const PROMPTS: &[&str] = &[
    "Explain in detail how a steam engine works.",
    "Write a long story about a lighthouse keeper and a storm.",
    "Describe the water cycle step by step, with examples.",
    "Give me a detailed plan for learning to play the guitar.",
    "Explain how the internet sends a message from one computer to another.",
    "Describe a day in the life of a medieval blacksmith.",
    "Explain why the seasons change on Earth.",
    "Write a detailed recipe for bread, with tips for beginners.",
    "Describe how bees make honey and why they matter for farming.",
    "Explain the main causes and effects of the industrial revolution.",
    "Write a long letter from a sailor to his family at home.",
    "Explain how a computer processor executes a program.",
];

/// What to run.
#[derive(Debug, Clone)]
pub struct EndlessPlan {
    /// Tokens (prefilled plus generated, over all turns) after which the fact is asked.
    pub tokens: usize,
    /// Generated-token limit of each turn.
    pub max_tokens: usize,
    pub evict: EvictOptions,
    /// The system prompt, which plants `fact`; the last question asks for it.
    pub system: String,
    pub question: String,
    pub fact: String,
}

impl Default for EndlessPlan {
    fn default() -> Self {
        Self {
            tokens: 20_000,
            max_tokens: 200,
            evict: EvictOptions::default(),
            system: SYSTEM_PROMPT.into(),
            question: RECALL_QUESTION.into(),
            fact: SECRET_WORD.into(),
        }
    }
}

/// The outcome, as `joule eval endless --json` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndlessReport {
    pub model: String,
    pub context: usize,
    /// Turns run, the recall question included (failed ones too).
    pub turns: usize,
    /// Prompt tokens prefilled plus tokens generated, over all turns.
    pub tokens_total: usize,
    pub evicted_tokens: usize,
    pub dropped_messages: usize,
    /// Peak RSS after the first turn that evicted or filled the context (None: never
    /// happened, or the platform does not report it).
    pub peak_rss_mib_at_first_fill: Option<f64>,
    pub peak_rss_mib_at_end: Option<f64>,
    /// The largest cache use any turn reported (at most `context`).
    pub max_context_used: usize,
    /// Turns that returned an error (the run goes on after one).
    pub errors: usize,
    /// The first error's message.
    pub first_error: Option<String>,
    /// Whether the last answer contains the planted fact (case ignored).
    pub recall: bool,
    pub answer: String,
    /// The same question over the same remaining conversation in a fresh session (no
    /// evicted slots): tells the eviction's harm from the model's own limits.
    pub recall_fresh: bool,
    pub answer_fresh: String,
    pub seconds: f64,
}

/// Runs the conversation with greedy sampling; `progress` sees each turn's number and
/// report (or error).
pub fn run_endless(
    engine: &Arc<Engine>,
    model: &str,
    plan: &EndlessPlan,
    progress: &mut dyn FnMut(usize, &crate::Result<TurnReport>),
) -> EvalResult<EndlessReport> {
    let started = Instant::now();
    let mut session = engine.session()?;
    session.set_sampling(SamplingParams::default())?;
    session.add_system(&plan.system);
    let opts = GenerateOptions {
        max_tokens: Some(plan.max_tokens.max(1)),
        evict: Some(plan.evict),
        ..Default::default()
    };
    let mut report = EndlessReport {
        model: model.to_string(),
        context: engine.context(),
        turns: 0,
        tokens_total: 0,
        evicted_tokens: 0,
        dropped_messages: 0,
        peak_rss_mib_at_first_fill: None,
        peak_rss_mib_at_end: None,
        max_context_used: 0,
        errors: 0,
        first_error: None,
        recall: false,
        answer: String::new(),
        recall_fresh: false,
        answer_fresh: String::new(),
        seconds: 0.0,
    };
    let mut filled = false;
    // Errors that let no token through would loop forever: stop after a few in a row.
    let mut failed_in_a_row = 0;
    let mut asked = false;
    while !asked {
        asked = report.tokens_total >= plan.tokens || failed_in_a_row >= 3;
        let prompt = if asked { &plan.question } else { PROMPTS[report.turns % PROMPTS.len()] };
        let mut text = String::new();
        let result = session.send(prompt, &opts, &mut |t| text.push_str(t));
        report.turns += 1;
        progress(report.turns, &result);
        match result {
            Ok(r) => {
                failed_in_a_row = 0;
                report.tokens_total += r.prefill_tokens + r.generated_tokens;
                report.evicted_tokens += r.evicted_tokens;
                report.dropped_messages += r.dropped_messages;
                report.max_context_used = report.max_context_used.max(r.context_used);
                let rss = r.peak_rss_bytes.map(mib);
                let evicted = r.evicted_tokens > 0 || r.dropped_messages > 0;
                if !filled && (evicted || r.context_used >= r.context_size) {
                    filled = true;
                    report.peak_rss_mib_at_first_fill = rss;
                }
                report.peak_rss_mib_at_end = rss;
            }
            Err(e) => {
                failed_in_a_row += 1;
                report.errors += 1;
                report.first_error.get_or_insert_with(|| e.to_string());
            }
        }
        if asked {
            report.recall = text.to_lowercase().contains(&plan.fact.to_lowercase());
            report.answer = text;
        }
    }
    // The conversation as it stood before the question, asked afresh.
    let mut fresh = engine.session()?;
    fresh.set_sampling(SamplingParams::default())?;
    let mut earlier = session.messages().to_vec();
    if earlier.last().is_some_and(|m| m.role == "assistant") {
        earlier.truncate(earlier.len() - 2);
    }
    earlier.into_iter().for_each(|m| fresh.push_message(m));
    let mut text = String::new();
    if fresh.send(&plan.question, &opts, &mut |t| text.push_str(t)).is_ok() {
        report.recall_fresh = text.to_lowercase().contains(&plan.fact.to_lowercase());
        report.answer_fresh = text;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}
