//! A conversation: its messages, its KV cache (reused across turns, so a new turn only
//! prefills what changed), streaming output, and a cancel flag another thread can set.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::Engine;
use super::cache_map::CacheMap;
use super::evict::{EvictOptions, Fit, answer_room, common_prefix};
use super::report::{StopReason, TurnReport, peak_rss_bytes, rate};
use super::stop::StopStrings;
use super::turn::{TurnWindows, prefill};
use crate::chat::ChatMessage;
use crate::error::{Error, Result};
use crate::kernels;
use crate::model::{ForwardState, KvCache, Logits, forward};
use crate::prune::{self, Protected, PruneOptions, PruneReport, Strategy};
use crate::sampling::{Sampler, SamplingParams};
use crate::tokenizer::StreamDecoder;

/// Per-turn options.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerateOptions {
    /// Limit of generated tokens (None: the engine's default).
    pub max_tokens: Option<usize>,
    /// Generation stops before any of these strings; they are not shown.
    pub stop: Vec<String>,
    /// Prefill only the prompt tokens a pruning strategy keeps (None: every token).
    pub prune: Option<PruneOptions>,
    /// Keep going past the context: drop the oldest turns before prefill and evict the
    /// oldest cache slots when decoding fills it (None: `Error::ContextOverflow` and
    /// `StopReason::ContextFull`). Chat turns drop turns; every call evicts while decoding.
    pub evict: Option<EvictOptions>,
}

/// Cancels a session's generation from any thread. Checked between tokens (and between
/// prefill batches); the turn then ends with `StopReason::Cancelled`.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn clear(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// One conversation with a model.
pub struct Session {
    pub(super) engine: Arc<Engine>,
    pub(super) kv: KvCache,
    /// The token sequence the cache's slots stand for (longer than them after pruning).
    pub(super) map: CacheMap,
    pub(super) state: ForwardState,
    pub(super) sampler: Sampler,
    pub(super) messages: Vec<ChatMessage>,
    cancel: CancelFlag,
    /// The logits being sampled (a copy the sampler may modify), sized once.
    logits: Vec<f32>,
    /// Decode-time evictions so far (each remakes `map`).
    pub(super) evictions: u64,
}

/// What the decode step produced.
struct Decoded {
    text: String,
    tokens: Vec<u32>,
    stop_reason: StopReason,
    first_token_at: Option<Instant>,
    /// Cache slots evicted to keep decoding.
    evicted: usize,
}

/// What one turn produced.
struct TurnOutput {
    text: String,
    tokens: Vec<u32>,
    report: TurnReport,
}

impl Session {
    pub(super) fn new(engine: Arc<Engine>) -> Result<Self> {
        let kv = KvCache::with_type(&engine.model().config, engine.context(), engine.kv_type())?;
        let sampler = Sampler::new(engine.options().sampling.clone());
        Self::from_parts(engine, kv, sampler, Vec::new())
    }

    /// A session over an existing cache, sampler and conversation (a restored one).
    pub(super) fn from_parts(
        engine: Arc<Engine>,
        kv: KvCache,
        sampler: Sampler,
        messages: Vec<ChatMessage>,
    ) -> Result<Self> {
        let state = ForwardState::new(engine.model(), engine.options().batch.min(engine.context()));
        let logits = vec![0.0; engine.model().config.n_vocab];
        let map = CacheMap::of_cache(kv.tokens());
        let cancel = CancelFlag::default();
        Ok(Self { engine, kv, map, state, sampler, messages, cancel, logits, evictions: 0 })
    }

    /// A handle that cancels this session's current or next generation.
    pub fn cancel_flag(&self) -> CancelFlag {
        self.cancel.clone()
    }

    pub fn messages(&self) -> &[ChatMessage] {
        &self.messages
    }

    /// Tokens held in the KV cache.
    pub fn context_used(&self) -> usize {
        self.kv.len()
    }

    /// The tokens the KV cache holds, in order: what the model has seen (a pruned
    /// prompt's kept tokens only).
    pub fn cached_tokens(&self) -> &[u32] {
        self.kv.tokens()
    }

    /// The rope positions of [`Session::cached_tokens`] (a SnapKV-compressed prompt's
    /// slots keep the positions they were prefilled at, with gaps where slots were dropped).
    pub fn cached_positions(&self) -> &[u32] {
        self.kv.positions()
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Replaces the sampling settings (and restarts the random sequence at their seed).
    pub fn set_sampling(&mut self, params: SamplingParams) -> Result<()> {
        params.validate()?;
        self.sampler = Sampler::new(params);
        Ok(())
    }

    /// Appends a message without generating (restoring a saved conversation). The cache
    /// catches up at the next turn.
    pub fn push_message(&mut self, message: ChatMessage) {
        self.messages.push(message);
    }

    /// Sets the system prompt (first message of the conversation), replacing any
    /// earlier one. Takes effect at the next turn.
    pub fn add_system(&mut self, text: &str) {
        match self.messages.first_mut() {
            Some(m) if m.role == "system" => m.content = text.to_string(),
            _ => self.messages.insert(0, ChatMessage::system(text)),
        }
    }

    /// Forgets the conversation and empties the cache.
    pub fn reset(&mut self) {
        self.messages.clear();
        self.kv.clear();
        self.map = CacheMap::default();
        self.cancel.clear();
    }

    /// Sends a user message and streams the assistant's answer through `on_text`.
    /// The conversation keeps both messages; a cancelled turn keeps what was generated
    /// (or nothing, if cancelled before the first token). On error the conversation is
    /// unchanged.
    pub fn send(
        &mut self,
        user: &str,
        opts: &GenerateOptions,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<TurnReport> {
        self.send_message(ChatMessage::user(user), opts, on_text)
    }

    /// Like [`send`](Self::send) for any message (e.g. a system prompt as the first).
    pub fn send_message(
        &mut self,
        message: ChatMessage,
        opts: &GenerateOptions,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<TurnReport> {
        let start = Instant::now();
        if let Some(e) = &opts.evict {
            e.validate()?;
        }
        let mut conversation = self.messages.clone();
        conversation.push(message);
        let prompt = self.engine.template().render(&conversation, true)?;
        let mut tokens = self.prompt_tokens(&prompt)?;
        let fit = match &opts.evict {
            Some(_) => {
                let max_tokens = opts.max_tokens.unwrap_or(self.engine.options().max_tokens);
                let room = answer_room(max_tokens, self.kv.capacity());
                self.fit_conversation(&mut conversation, &mut tokens, room)?
            }
            None => Fit::default(),
        };
        let spans = match &opts.prune {
            Some(p) => self.message_spans(&conversation, &tokens, p)?,
            None => Vec::new(),
        };
        let out = self.run_turn(start, &tokens, &spans, &fit, opts, on_text)?;
        if out.report.generated_tokens > 0 || out.report.stop_reason != StopReason::Cancelled {
            conversation.push(ChatMessage::assistant(&out.text));
            self.messages = conversation;
        }
        Ok(out.report)
    }

    /// Continues raw text with no chat template (base models, completion tasks). The
    /// cache is reused where `prompt` starts like the previous call's tokens.
    pub fn complete(
        &mut self,
        prompt: &str,
        opts: &GenerateOptions,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<TurnReport> {
        let start = Instant::now();
        let tokens = self.prompt_tokens(prompt)?;
        Ok(self.run_turn(start, &tokens, &[], &Fit::default(), opts, on_text)?.report)
    }

    /// Continues a prompt given as token ids (no template, no BOS added) and returns the
    /// report and the generated ids (the end-of-generation token is not included).
    pub fn complete_tokens(
        &mut self,
        tokens: &[u32],
        opts: &GenerateOptions,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<(TurnReport, Vec<u32>)> {
        if tokens.is_empty() {
            return Err(Error::InvalidArgument("the prompt is empty".into()));
        }
        let out = self.run_turn(Instant::now(), tokens, &[], &Fit::default(), opts, on_text)?;
        Ok((out.report, out.tokens))
    }

    /// Tokens of a rendered prompt: special tokens parsed, BOS added when the model
    /// wants it and the template did not write it.
    pub(super) fn prompt_tokens(&self, prompt: &str) -> Result<Vec<u32>> {
        let tok = self.engine.tokenizer();
        let mut tokens = tok.encode(prompt, true)?;
        if let Some(bos) = tok.bos_id().filter(|_| tok.add_bos())
            && tokens.first() != Some(&bos)
        {
            tokens.insert(0, bos);
        }
        if tokens.is_empty() {
            return Err(Error::InvalidArgument("the prompt is empty".into()));
        }
        Ok(tokens)
    }

    /// One turn: fit the prompt in the cache, prune and prefill what is new, decode,
    /// report. `spans` are protected from pruning (token ranges of `tokens`); `fit` says
    /// what making the prompt fit dropped and which leading tokens eviction keeps.
    fn run_turn(
        &mut self,
        start: Instant,
        tokens: &[u32],
        spans: &[std::ops::Range<usize>],
        fit: &Fit,
        opts: &GenerateOptions,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<TurnOutput> {
        if let Some(e) = &opts.evict {
            e.validate()?;
        }
        let engine = Arc::clone(&self.engine);
        let reused = self.reuse_prefix(tokens)?;
        let new = &tokens[reused..];

        // Prefill (its energy window closes when the first token is known), after the
        // pruning's scoring, which the time to first token includes.
        let mut windows = TurnWindows::begin(engine.energy_meter());
        let prefill_start = Instant::now();
        let cancel = self.cancel.clone();
        let cancelled = || cancel.is_cancelled();
        let compress =
            opts.prune.as_ref().filter(|p| matches!(p.strategy, Strategy::SnapKv { .. }));
        let (run, pruning) = if let Some(p) = compress {
            // SnapKV prefills every new token, then compresses the cache.
            match self.prefill_compressed(new, reused, spans, p, &cancelled)? {
                Some(done) => done,
                None => return Ok(self.finish_cancelled(start, tokens.len(), reused)),
            }
        } else {
            let (run, pruning) = self.prune_new(new, reused, spans, opts.prune.as_ref())?;
            let (model, pool) = (engine.model(), engine.pool());
            if !prefill(model, pool, &mut self.state, &mut self.kv, &run, &cancelled)? {
                return Ok(self.finish_cancelled(start, tokens.len(), reused));
            }
            (run, pruning)
        };
        let prefill_ms = ms_since(prefill_start);

        let decode_from = self.kv.len();
        let evictions = self.evictions;
        let decoded = self.decode(&engine, opts, fit.pinned, &mut windows, on_text);
        // An eviction remade the map of the cache as it was then.
        let mapped = if self.evictions == evictions { decode_from } else { self.map.slots() };
        self.map.push_cached(&self.kv.tokens()[mapped.min(self.kv.len())..]);
        let decoded = decoded?;
        self.cancel.clear();
        let energy = windows.finish(run.len(), decoded.tokens.len())?;

        let end = Instant::now();
        let first = decoded.first_token_at.unwrap_or(end);
        let decode_ms = (end - first).as_secs_f64() * 1000.0;
        let (prefilled, generated) = (run.len(), decoded.tokens.len());
        Ok(TurnOutput {
            text: decoded.text,
            tokens: decoded.tokens,
            report: TurnReport {
                prompt_tokens: tokens.len(),
                reused_tokens: reused,
                prefill_tokens: prefilled,
                generated_tokens: generated,
                stop_reason: decoded.stop_reason,
                time_to_first_token_ms: (first - start).as_secs_f64() * 1000.0,
                prefill_ms,
                prefill_tokens_per_s: rate(prefilled, prefill_ms),
                decode_ms,
                decode_tokens_per_s: rate(generated.saturating_sub(1), decode_ms),
                total_ms: ms_since(start),
                energy,
                pruning,
                evicted_tokens: fit.dropped_tokens + decoded.evicted,
                dropped_messages: fit.dropped_messages,
                ..self.base_report()
            },
        })
    }

    /// Keeps the cached prefix `tokens` starts with (at least the last prompt token is
    /// run again, since its logits start the answer) and returns its length in tokens.
    /// A prompt that does not fit the context fails before anything changes.
    fn reuse_prefix(&mut self, tokens: &[u32]) -> Result<usize> {
        let capacity = self.kv.capacity();
        // After an eviction (or a cancelled prefill) the map no longer describes the
        // cache; the cache holds exactly its own tokens at consecutive positions or, when
        // slots were dropped in between (a SnapKV-compressed prompt the map no longer
        // describes), nothing reusable.
        if self.map.slots() != self.kv.len() {
            if self.kv.len() != self.kv.next_position() as usize {
                self.kv.clear();
            }
            self.map = CacheMap::of_cache(self.kv.tokens());
        }
        let mut limit = tokens.len() - 1;
        if self.map.is_complete() {
            // A map made from the cache's own tokens (a restored session) knows of no
            // dropped tokens: trust it up to the first slot whose position skips some.
            let positions = self.kv.positions();
            let gap = (0..positions.len()).find(|&i| positions[i] as usize != i);
            limit = limit.min(gap.unwrap_or(limit));
        }
        let (reused, slots) = self.map.reusable(tokens, limit);
        // Pruning scores the new tokens in the cache, so they must all fit.
        if slots + tokens.len() - reused > capacity {
            return Err(Error::ContextOverflow {
                needed: tokens.len() - reused,
                available: capacity - slots,
                context: capacity,
                used: slots,
            });
        }
        // A sliding-window cache may keep less than asked (see `KvCache::truncate`).
        self.kv.truncate(slots);
        if self.kv.len() == slots {
            self.map.truncate(reused);
            Ok(reused)
        } else {
            self.kv.clear();
            self.map = CacheMap::default();
            Ok(0)
        }
    }

    /// The tokens to prefill out of the prompt's `new` part (which follows `reused`
    /// tokens), recorded in the map: all of them, or those pruning keeps. When the
    /// scoring pass cost a sliding-window cache its reused slots, they are run again.
    fn prune_new(
        &mut self,
        new: &[u32],
        reused: usize,
        spans: &[std::ops::Range<usize>],
        opts: Option<&PruneOptions>,
    ) -> Result<(Vec<u32>, Option<PruneReport>)> {
        let Some(opts) = opts else {
            self.map.push(new, &vec![true; new.len()]);
            return Ok((new.to_vec(), None));
        };
        let started = Instant::now();
        let engine = Arc::clone(&self.engine);
        let tokenizer = engine.tokenizer();
        let protected = self.protected(new, reused, spans);
        let (model, pool) = (engine.model(), engine.pool());
        let before = self.kv.tokens().to_vec();
        let units = prune::sentence_units(new, |t| tokenizer.token_to_piece(t, true));
        let segment = segment_input(&engine, new, reused, spans, &units, opts);
        let kv = &mut self.kv;
        let keep = prune::choose(
            model,
            pool,
            &mut self.state,
            kv,
            new,
            &protected,
            &units,
            segment.as_ref(),
            opts,
        )?;
        let mut run = before[self.kv.len()..].to_vec();
        run.extend(new.iter().zip(&keep).filter(|(_, k)| **k).map(|(t, _)| *t));
        self.map.push(new, &keep);
        let report = PruneReport {
            strategy: opts.strategy.name().to_string(),
            budget: opts.budget.to_string(),
            tokens_in: new.len(),
            tokens_kept: keep.iter().filter(|k| **k).count(),
            scoring_ms: ms_since(started),
        };
        Ok((run, Some(report)))
    }

    /// Prefills the prompt's `new` part (after `reused` tokens) and compresses its cache
    /// slots SnapKV's way, recording in the map which tokens kept a slot; None when
    /// cancelled between batches.
    fn prefill_compressed(
        &mut self,
        new: &[u32],
        reused: usize,
        spans: &[std::ops::Range<usize>],
        opts: &PruneOptions,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<(Vec<u32>, Option<PruneReport>)>> {
        let engine = Arc::clone(&self.engine);
        let protected = self.protected(new, reused, spans);
        let (model, pool, state, kv) =
            (engine.model(), engine.pool(), &mut self.state, &mut self.kv);
        let compress = prune::snapkv::prefill_compress;
        let Some(done) = compress(model, pool, state, kv, new, &protected, opts, cancelled)? else {
            return Ok(None);
        };
        self.map.push(new, &done.keep);
        let report = PruneReport {
            strategy: opts.strategy.name().to_string(),
            budget: opts.budget.to_string(),
            tokens_in: new.len(),
            tokens_kept: done.keep.iter().filter(|k| **k).count(),
            scoring_ms: done.scoring_ms,
        };
        Ok(Some((new.to_vec(), Some(report))))
    }

    /// The protected tokens of the prompt's `new` part (after `reused` tokens): special
    /// tokens and the parts of `spans` (ranges of the whole prompt) that fall in it.
    fn protected(&self, new: &[u32], reused: usize, spans: &[std::ops::Range<usize>]) -> Protected {
        let tokenizer = self.engine.tokenizer();
        let mut protected = Protected::with_specials(new, |t| tokenizer.is_special(t));
        for s in spans {
            protected.span(s.start.saturating_sub(reused)..s.end.saturating_sub(reused));
        }
        protected
    }

    /// Token ranges of `tokens` (the rendered `conversation`) that pruning keeps: the
    /// system prompt and (unless `opts` says not to) the latest message, found where renderings of shorter
    /// conversations stop matching.
    fn message_spans(
        &self,
        conversation: &[ChatMessage],
        tokens: &[u32],
        opts: &PruneOptions,
    ) -> Result<Vec<std::ops::Range<usize>>> {
        let template = self.engine.template();
        let matched = |messages: &[ChatMessage]| -> Result<usize> {
            let text = template.render(messages, false)?;
            Ok(common_prefix(&self.prompt_tokens(&text)?, tokens))
        };
        let mut spans = Vec::new();
        let n = conversation.len();
        if opts.protect_latest_message {
            let start = if n > 1 { matched(&conversation[..n - 1])? } else { 0 };
            spans.push(start..tokens.len());
        }
        if conversation.first().is_some_and(|m| m.role == "system") {
            spans.push(0..matched(&conversation[..1])?);
        }
        Ok(spans)
    }

    /// Samples from the prefill's logits, then one forward pass per token, streaming
    /// text (held back while it may be the start of a stop string) until a stop reason.
    /// With eviction on, a full cache evicts its oldest slots after the first `pinned`.
    fn decode(
        &mut self,
        engine: &Engine,
        opts: &GenerateOptions,
        pinned: usize,
        windows: &mut TurnWindows<'_>,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Decoded> {
        let (model, pool, tokenizer) = (engine.model(), engine.pool(), engine.tokenizer());
        let max_tokens = opts.max_tokens.unwrap_or(engine.options().max_tokens);
        // The answer continues the prompt: its first token keeps a leading space.
        let mut decoder = StreamDecoder::continuing(tokenizer, false);
        let mut stops = StopStrings::new(&opts.stop);
        let mut out = Decoded {
            text: String::new(),
            tokens: Vec::new(),
            stop_reason: StopReason::MaxTokens,
            first_token_at: None,
            evicted: 0,
        };
        let mut emit = |piece: &str, text: &mut String| {
            if !piece.is_empty() {
                text.push_str(piece);
                on_text(piece);
            }
        };
        out.stop_reason = loop {
            if out.tokens.len() >= max_tokens {
                break StopReason::MaxTokens;
            }
            self.logits.copy_from_slice(self.state.logits_row(0));
            let token = self.sampler.sample(&mut self.logits, self.kv.tokens());
            if out.first_token_at.is_none() {
                out.first_token_at = Some(Instant::now());
                windows.first_token()?;
            }
            if tokenizer.is_eog(token) {
                break StopReason::EndOfGeneration;
            }
            out.tokens.push(token);
            let (safe, hit) = stops.push(&decoder.push(token));
            emit(&safe, &mut out.text);
            if hit {
                break StopReason::StopString;
            }
            if self.cancel.is_cancelled() {
                break StopReason::Cancelled;
            }
            if out.tokens.len() >= max_tokens {
                break StopReason::MaxTokens;
            }
            if self.kv.free() == 0 {
                let evicted = match &opts.evict {
                    Some(e) => self.evict_oldest(e, pinned)?,
                    None => 0,
                };
                if evicted == 0 {
                    break StopReason::ContextFull;
                }
                out.evicted += evicted;
            }
            forward(model, pool, &mut self.state, &mut self.kv, &[token], Logits::Last)?;
        };
        if out.stop_reason != StopReason::StopString {
            let (safe, hit) = stops.push(&decoder.finish());
            emit(&safe, &mut out.text);
            if !hit {
                emit(&stops.finish(), &mut out.text);
            }
        }
        Ok(out)
    }

    fn finish_cancelled(
        &mut self,
        start: Instant,
        prompt_tokens: usize,
        reused: usize,
    ) -> TurnOutput {
        self.cancel.clear();
        TurnOutput {
            text: String::new(),
            tokens: Vec::new(),
            report: TurnReport {
                prompt_tokens,
                reused_tokens: reused,
                stop_reason: StopReason::Cancelled,
                total_ms: ms_since(start),
                ..self.base_report()
            },
        }
    }

    /// A report with the session-wide fields filled and the per-turn ones zero.
    fn base_report(&self) -> TurnReport {
        TurnReport {
            prompt_tokens: 0,
            reused_tokens: 0,
            prefill_tokens: 0,
            generated_tokens: 0,
            stop_reason: StopReason::Cancelled,
            time_to_first_token_ms: 0.0,
            prefill_ms: 0.0,
            prefill_tokens_per_s: 0.0,
            decode_ms: 0.0,
            decode_tokens_per_s: 0.0,
            total_ms: 0.0,
            peak_rss_bytes: peak_rss_bytes(),
            context_used: self.kv.len(),
            context_size: self.kv.capacity(),
            threads: self.engine.pool().n_threads(),
            kernel: kernels::kernels().name.to_string(),
            precision: self.engine.options().precision.name().to_string(),
            kv_type: self.kv.kv_type().name().to_string(),
            kv_bytes: self.kv.bytes_reserved(),
            energy: None,
            pruning: None,
            evicted_tokens: 0,
            dropped_messages: 0,
        }
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// The text the segment strategy ranks (None for the other strategies): each unit's,
/// and the question's, which is the latest message (the span of `spans` that ends the
/// prompt) or, without one, the prompt's last `keep_last` tokens. Special tokens are
/// left out: they are template, not content.
fn segment_input<'e>(
    engine: &'e Engine,
    new: &[u32],
    reused: usize,
    spans: &[std::ops::Range<usize>],
    units: &[std::ops::Range<usize>],
    opts: &PruneOptions,
) -> Option<prune::SegmentInput<'e>> {
    if opts.strategy != prune::Strategy::Segment {
        return None;
    }
    let tokenizer = engine.tokenizer();
    let piece = |t: u32| {
        if tokenizer.is_special(t) { Vec::new() } else { tokenizer.token_to_piece(t, false) }
    };
    let end = reused + new.len();
    let latest = spans
        .iter()
        .find(|s| s.end == end && s.start >= reused)
        .map(|s| s.start - reused..s.end - reused);
    let query = prune::query_range(new.len(), latest, opts.keep_last);
    Some(prune::SegmentInput {
        cache: engine.embed_cache(),
        dir: engine.embed_dir(),
        unit_texts: prune::unit_texts(new, units, piece),
        query: prune::text_of(&new[query], piece),
    })
}
