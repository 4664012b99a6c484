//! The forward pass against a naive f64 transformer written here from the textbook
//! definitions, on tiny synthetic models: batching, chunked prefill, decode, GQA, Qwen2
//! biases and NEOX rope, cache truncation and eviction with positions kept.

use joule_core::Precision;
use joule_core::gguf::GgufFile;
use joule_core::model::kv_cache::KvType;
use joule_core::model::synthetic::{SyntheticSpec, synthetic_model};
use joule_core::model::{ForwardState, KvCache, Logits, Model, Probe, forward};
use joule_core::quant;
use joule_core::threads::ThreadPool;

/// One kept token of a layer's naive KV store: (position, k, v).
type NaiveSlot = (u32, Vec<f64>, Vec<f64>);

/// A transformer computed one token at a time in f64, with its own KV store.
struct Naive {
    file: GgufFile,
    spec: SyntheticSpec,
    /// Per layer, per kept token: (position, k, v).
    cache: Vec<Vec<NaiveSlot>>,
    next_pos: u32,
    /// Attention probabilities of the last step: per layer, per head.
    last_probs: Vec<Vec<Vec<f64>>>,
}

impl Naive {
    fn new(file: GgufFile, spec: SyntheticSpec) -> Self {
        let cache = vec![Vec::new(); spec.n_layers];
        Self { file, spec, cache, next_pos: 0, last_probs: Vec::new() }
    }

    fn tensor(&self, name: &str) -> (Vec<f64>, usize) {
        let (info, data) = self.file.tensor(name).unwrap();
        let mut out = vec![0f32; info.n_elements() as usize];
        quant::dequantize_row(info.ggml_type, data, &mut out).unwrap();
        (out.into_iter().map(f64::from).collect(), info.row_len())
    }

    fn matvec(&self, name: &str, x: &[f64]) -> Vec<f64> {
        let (w, n_in) = self.tensor(name);
        w.chunks(n_in).map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum()).collect()
    }

    fn gemma(&self) -> bool {
        self.spec.arch == "gemma3"
    }

    fn rmsnorm(&self, x: &[f64], name: &str) -> Vec<f64> {
        let (g, _) = self.tensor(name);
        // Per row of the weight's length (per head for q/k norms).
        x.chunks(g.len())
            .flat_map(|xr| {
                let ms = xr.iter().map(|v| v * v).sum::<f64>() / xr.len() as f64;
                let s = 1.0 / (ms + 1e-5).sqrt();
                xr.iter().zip(&g).map(move |(v, g)| v * s * g).collect::<Vec<_>>()
            })
            .collect()
    }

    fn rope(&self, x: &mut [f64], pos: u32, base: f64) {
        let hd = self.spec.n_embd / self.spec.n_head;
        let neox = self.spec.arch != "llama";
        for head in x.chunks_mut(hd) {
            for i in 0..hd / 2 {
                let theta = pos as f64 * base.powf(-2.0 * i as f64 / hd as f64);
                let (a, b) = if neox { (i, i + hd / 2) } else { (2 * i, 2 * i + 1) };
                let (x0, x1) = (head[a], head[b]);
                head[a] = x0 * theta.cos() - x1 * theta.sin();
                head[b] = x0 * theta.sin() + x1 * theta.cos();
            }
        }
    }

    /// Processes one token and returns its logits.
    fn step(&mut self, token: u32) -> Vec<f64> {
        let s = self.spec.clone();
        let hd = s.n_embd / s.n_head;
        let pos = self.next_pos;
        self.next_pos += 1;
        let (emb, d) = self.tensor("token_embd.weight");
        let mut x: Vec<f64> = emb[token as usize * d..(token as usize + 1) * d].to_vec();
        if self.gemma() {
            x.iter_mut().for_each(|v| *v *= (d as f64).sqrt());
        }
        self.last_probs.clear();
        for l in 0..s.n_layers {
            let n = |t: &str| format!("blk.{l}.{t}");
            let xb = self.rmsnorm(&x, &n("attn_norm.weight"));
            let mut q = self.matvec(&n("attn_q.weight"), &xb);
            let mut k = self.matvec(&n("attn_k.weight"), &xb);
            let mut v = self.matvec(&n("attn_v.weight"), &xb);
            if s.arch == "qwen2" {
                for (t, name) in
                    [(&mut q, "attn_q.bias"), (&mut k, "attn_k.bias"), (&mut v, "attn_v.bias")]
                {
                    let (b, _) = self.tensor(&n(name));
                    t.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                }
            }
            // Gemma 3: layers 0..5 of every 6 are local (window 4, rope base 10000).
            let local = self.gemma() && l % 6 < 5;
            let base = if self.gemma() && !local { 1e6 } else { 1e4 };
            if self.gemma() {
                q = self.rmsnorm(&q, &n("attn_q_norm.weight"));
                k = self.rmsnorm(&k, &n("attn_k_norm.weight"));
            }
            self.rope(&mut q, pos, base);
            self.rope(&mut k, pos, base);
            self.cache[l].push((pos, k, v));
            let visible: Vec<bool> =
                self.cache[l].iter().map(|(p, _, _)| !local || pos - p < 4).collect();
            let mut att = vec![0.0; s.n_embd];
            self.last_probs.push(Vec::new());
            for h in 0..s.n_head {
                let kvh = h / (s.n_head / s.n_head_kv);
                let qh = &q[h * hd..(h + 1) * hd];
                let scores: Vec<f64> = self.cache[l]
                    .iter()
                    .map(|(_, k, _)| {
                        qh.iter().zip(&k[kvh * hd..(kvh + 1) * hd]).map(|(a, b)| a * b).sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = scores
                    .iter()
                    .zip(&visible)
                    .map(|(s, &v)| if v { (s - max).exp() } else { 0.0 })
                    .collect();
                let z: f64 = e.iter().sum();
                self.last_probs[l].push(e.iter().map(|x| x / z).collect());
                for ((_, _, v), p) in self.cache[l].iter().zip(&e) {
                    for j in 0..hd {
                        att[h * hd + j] += p / z * v[kvh * hd + j];
                    }
                }
            }
            let mut o = self.matvec(&n("attn_output.weight"), &att);
            if self.gemma() {
                o = self.rmsnorm(&o, &n("post_attention_norm.weight"));
            }
            x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
            let xb = self.rmsnorm(&x, &n("ffn_norm.weight"));
            let g = self.matvec(&n("ffn_gate.weight"), &xb);
            let u = self.matvec(&n("ffn_up.weight"), &xb);
            let act = |g: f64| {
                if self.gemma() {
                    0.5 * g
                        * (1.0
                            + ((2.0 / std::f64::consts::PI).sqrt() * (g + 0.044715 * g * g * g))
                                .tanh())
                } else {
                    g / (1.0 + (-g).exp())
                }
            };
            let hcat: Vec<f64> = g.iter().zip(&u).map(|(&g, u)| act(g) * u).collect();
            let mut dn = self.matvec(&n("ffn_down.weight"), &hcat);
            if self.gemma() {
                dn = self.rmsnorm(&dn, &n("post_ffw_norm.weight"));
            }
            x.iter_mut().zip(&dn).for_each(|(a, b)| *a += b);
        }
        let xb = self.rmsnorm(&x, "output_norm.weight");
        let out = if s.tied_output { "token_embd.weight" } else { "output.weight" };
        self.matvec(out, &xb)
    }

    fn retain(&mut self, keep: &[bool]) {
        for layer in &mut self.cache {
            let mut i = 0;
            layer.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
    }
}

fn build(spec: &SyntheticSpec) -> (Model, GgufFile) {
    let bytes = synthetic_model(spec).unwrap().to_bytes();
    let file = GgufFile::from_bytes(&bytes).unwrap();
    (Model::load(file.clone(), Precision::Exact).unwrap(), file)
}

fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len());
    let worst = got.iter().zip(want).map(|(g, w)| (*g as f64 - w).abs()).fold(0.0, f64::max);
    assert!(worst < tol, "{what}: max |diff| {worst:e} >= {tol:e}");
}

const TOKENS: [u32; 13] = [5, 77, 256, 300, 3, 9, 200, 1, 258, 42, 42, 17, 99];

fn check_against_naive(spec: SyntheticSpec, batch: usize, threads: usize) {
    let (model, file) = build(&spec);
    let pool = ThreadPool::new(threads).unwrap();
    let mut naive = Naive::new(file, spec.clone());
    let want: Vec<Vec<f64>> = TOKENS.iter().map(|&t| naive.step(t)).collect();

    // The whole prompt in batches, every row's logits.
    let mut kv = KvCache::new(&model.config, 64).unwrap();
    let mut state = ForwardState::new(&model, batch);
    let mut row = 0;
    for chunk in TOKENS.chunks(batch) {
        forward(&model, &pool, &mut state, &mut kv, chunk, Logits::All).unwrap();
        for r in 0..chunk.len() {
            assert_close(state.logits_row(r), &want[row], 2e-4, &format!("batched row {row}"));
            row += 1;
        }
    }
    // Token by token, last logits only.
    let mut kv = KvCache::new(&model.config, 64).unwrap();
    for (i, &t) in TOKENS.iter().enumerate() {
        forward(&model, &pool, &mut state, &mut kv, &[t], Logits::Last).unwrap();
        assert_close(state.logits_row(0), &want[i], 2e-4, &format!("decode step {i}"));
    }
    assert_eq!(kv.tokens(), &TOKENS);
    assert_eq!(kv.next_position(), TOKENS.len() as u32);
}

#[test]
fn llama_with_gqa_matches_the_naive_model() {
    check_against_naive(SyntheticSpec::tiny(), 64, 1);
    check_against_naive(SyntheticSpec::tiny(), 4, 2);
}

#[test]
fn qwen2_biases_and_neox_rope_match_the_naive_model() {
    let spec = SyntheticSpec {
        arch: "qwen2".into(),
        n_head_kv: 1,
        tied_output: false,
        ..SyntheticSpec::tiny()
    };
    check_against_naive(spec, 5, 2);
}

#[test]
fn gemma3_sliding_windows_norms_and_gelu_match_the_naive_model() {
    // Six layers: five local (window 4, rope base 1e4) and one global (base 1e6).
    let spec =
        SyntheticSpec { arch: "gemma3".into(), n_layers: 6, n_head_kv: 1, ..SyntheticSpec::tiny() };
    check_against_naive(spec, 5, 2);
}

#[test]
fn truncation_and_eviction_keep_rope_positions_right() {
    let spec = SyntheticSpec::tiny();
    let (model, file) = build(&spec);
    let pool = ThreadPool::new(2).unwrap();
    let mut state = ForwardState::new(&model, 16);
    let mut kv = KvCache::new(&model.config, 32).unwrap();
    forward(&model, &pool, &mut state, &mut kv, &TOKENS[..8], Logits::None).unwrap();

    // Rewind to 5 tokens and continue differently: same as never having seen the rest.
    kv.truncate(5);
    forward(&model, &pool, &mut state, &mut kv, &[11, 12], Logits::Last).unwrap();
    let mut naive = Naive::new(file.clone(), spec.clone());
    for &t in &TOKENS[..5] {
        naive.step(t);
    }
    naive.step(11);
    assert_close(state.logits_row(0), &naive.step(12), 2e-4, "after truncate");

    // Evict slots 1 and 3: the rest keep their positions, the next token takes position 7.
    let keep = [true, false, true, false, true, true, true];
    kv.retain(&keep).unwrap();
    assert!(kv.retain(&[true]).is_err());
    assert_eq!(kv.positions(), &[0, 2, 4, 5, 6]);
    naive.retain(&keep);
    forward(&model, &pool, &mut state, &mut kv, &[40], Logits::Last).unwrap();
    assert_eq!(kv.positions(), &[0, 2, 4, 5, 6, 7]);
    assert_close(state.logits_row(0), &naive.step(40), 2e-4, "after eviction");
}

#[test]
fn bad_batches_are_errors_not_panics() {
    let (model, _) = build(&SyntheticSpec::tiny());
    let pool = ThreadPool::new(1).unwrap();
    let mut state = ForwardState::new(&model, 4);
    let mut kv = KvCache::new(&model.config, 6).unwrap();
    assert!(forward(&model, &pool, &mut state, &mut kv, &[], Logits::Last).is_err());
    assert!(forward(&model, &pool, &mut state, &mut kv, &[1, 2, 3, 4, 5], Logits::Last).is_err());
    assert!(forward(&model, &pool, &mut state, &mut kv, &[320], Logits::Last).is_err());
    forward(&model, &pool, &mut state, &mut kv, &[1, 2, 3, 4], Logits::Last).unwrap();
    let e = forward(&model, &pool, &mut state, &mut kv, &[1, 2, 3], Logits::Last).unwrap_err();
    assert!(matches!(e, joule_core::Error::ContextOverflow { needed: 3, available: 2, .. }), "{e}");
    assert_eq!(kv.len(), 4, "a refused batch leaves the cache as it was");
}

#[test]
fn probes_capture_attention_and_stop_after_a_prefix_of_layers() {
    let spec = SyntheticSpec::tiny();
    let (model, file) = build(&spec);
    let pool = ThreadPool::new(2).unwrap();
    let mut naive = Naive::new(file, spec.clone());
    let mut probs = Vec::new();
    for &t in &TOKENS[..6] {
        naive.step(t);
        probs.push(naive.last_probs.clone());
    }
    let mut state = ForwardState::new(&model, 8);
    state.set_probe(Probe { layers: None, attention_rows: 2, capture_from: 0, ..Probe::default() });
    let mut kv = KvCache::new(&model.config, 16).unwrap();
    forward(&model, &pool, &mut state, &mut kv, &TOKENS[..6], Logits::Last).unwrap();
    for (r, step_probs) in probs[4..6].iter().enumerate() {
        assert_eq!(step_probs.len(), spec.n_layers);
        for (l, layer_probs) in step_probs.iter().enumerate() {
            assert_eq!(layer_probs.len(), spec.n_head);
            for (h, want) in layer_probs.iter().enumerate() {
                let got = state.captured_attention(l, r, h, spec.n_head);
                assert_eq!(got.len(), 6);
                assert_close(
                    &got[..want.len()],
                    want,
                    1e-5,
                    &format!("layer {l} row {r} head {h}"),
                );
                assert!(got[want.len()..].iter().all(|&p| p == 0.0));
            }
        }
    }
    // A one-layer prefix: no logits, and the first layer's attention is the same.
    let mut kv = KvCache::new(&model.config, 16).unwrap();
    state.set_probe(Probe {
        layers: Some(1),
        attention_rows: 1,
        capture_from: 0,
        ..Probe::default()
    });
    forward(&model, &pool, &mut state, &mut kv, &TOKENS[..6], Logits::Last).unwrap();
    assert_eq!(state.logit_rows(), 0);
    assert_close(
        state.captured_attention(0, 0, 3, spec.n_head),
        &probs[5][0][3],
        1e-5,
        "prefix layer 0",
    );
}

/// Early exit after every layer reads the same residual stream as a full pass: the
/// surprisal of each next token equals -log_softmax of the full pass's logits; the
/// batch's last row has no next token, and more rows than the batch are an error.
#[test]
fn early_exit_surprisal_after_every_layer_is_the_full_pass_log_prob() {
    let spec = SyntheticSpec::tiny();
    let (model, _) = build(&spec);
    let pool = ThreadPool::new(2).unwrap();
    let mut state = ForwardState::new(&model, 16);
    let mut kv = KvCache::new(&model.config, 32).unwrap();
    forward(&model, &pool, &mut state, &mut kv, &TOKENS, Logits::All).unwrap();
    let want: Vec<f64> = (0..TOKENS.len() - 1)
        .map(|i| {
            -joule_core::sampling::log_softmax(state.logits_row(i))[TOKENS[i + 1] as usize] as f64
        })
        .collect();

    let mut kv = KvCache::new(&model.config, 32).unwrap();
    let exit = Probe { layers: Some(spec.n_layers), early_exit: true, ..Probe::default() };
    state.set_probe(exit);
    forward(&model, &pool, &mut state, &mut kv, &TOKENS, Logits::None).unwrap();
    let got = state.early_exit_surprisal(&model, &pool, &TOKENS[1..]).unwrap();
    assert_close(&got, &want, 1e-4, "surprisal after the last layer");
    assert!(state.early_exit_surprisal(&model, &pool, &[1; TOKENS.len() + 1]).is_err());

    // A prefix of the layers gives other, finite values.
    let mut kv = KvCache::new(&model.config, 32).unwrap();
    state.set_probe(Probe { layers: Some(1), early_exit: true, ..Probe::default() });
    forward(&model, &pool, &mut state, &mut kv, &TOKENS, Logits::None).unwrap();
    let early = state.early_exit_surprisal(&model, &pool, &TOKENS[1..]).unwrap();
    assert!(early.iter().all(|s| s.is_finite() && *s >= -1e-4), "{early:?}");
    assert_ne!(early, got);
}

/// A pooled probe keeps, per slot, the highest over layers and heads of the mean over
/// the captured rows: the same numbers as the stored rows, without storing them.
#[test]
fn a_pooled_probe_folds_the_captured_rows() {
    let spec = SyntheticSpec::tiny();
    let (model, _) = build(&spec);
    let pool = ThreadPool::new(2).unwrap();
    let mut state = ForwardState::new(&model, 16);
    let run_typed = |state: &mut ForwardState, pooled: bool, ty: KvType| {
        state.set_probe(Probe {
            layers: None,
            attention_rows: 3,
            capture_from: 1,
            pooled,
            ..Probe::default()
        });
        let mut kv = KvCache::with_type(&model.config, 16, ty).unwrap();
        forward(&model, &pool, state, &mut kv, &TOKENS[..5], Logits::None).unwrap();
        forward(&model, &pool, state, &mut kv, &TOKENS[5..], Logits::Last).unwrap();
        state.logits().to_vec()
    };
    let run = |state: &mut ForwardState, pooled: bool| run_typed(state, pooled, KvType::F32);
    let logits = run(&mut state, false);
    let mut want = vec![0.0f32; TOKENS.len()];
    for l in 1..spec.n_layers {
        for h in 0..spec.n_head {
            for (j, w) in want.iter_mut().enumerate() {
                let sum: f32 =
                    (0..3).map(|r| state.captured_attention(l, r, h, spec.n_head)[j]).sum();
                *w = w.max(sum * (1.0 / 3.0));
            }
        }
    }
    assert_eq!(run(&mut state, true), logits, "capturing changes nothing");
    assert_eq!(state.slot_scores(), want);
    assert!(want.iter().all(|&p| p > 0.0) && want.iter().all(|&p| p <= 1.0));
    // Other cache types capture from their keys converted to f32 (q8_0 needs heads of 32).
    run_typed(&mut state, true, KvType::F16);
    let worst =
        state.slot_scores().iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(worst < 1e-2, "f16 cache: max |diff| {worst}");
}

/// Decoding shares the work among threads by query head (a short cache the threads cannot
/// split evenly by KV head) or by segment of a long cache: the logits must keep every bit
/// whatever the thread count, at short and long depths (segments of 1,024 keys).
#[test]
fn decode_logits_are_the_same_bits_on_any_thread_count() {
    let spec =
        SyntheticSpec { arch: "gemma3".into(), n_layers: 6, n_head_kv: 1, ..SyntheticSpec::tiny() };
    let (model, _) = build(&spec);
    // Gemma's local layers see a window; the global layer sees the whole cache.
    let prompt: Vec<u32> = (0..2100u32).map(|i| (i * 7919 + 13) % 300).collect();
    let decode = |threads: usize, depth: usize| -> Vec<Vec<u32>> {
        let pool = ThreadPool::new(threads).unwrap();
        let mut state = ForwardState::new(&model, 256);
        let mut kv = KvCache::new(&model.config, 2200).unwrap();
        for chunk in prompt[..depth].chunks(256) {
            forward(&model, &pool, &mut state, &mut kv, chunk, Logits::None).unwrap();
        }
        TOKENS[4..]
            .iter()
            .map(|&t| {
                forward(&model, &pool, &mut state, &mut kv, &[t], Logits::Last).unwrap();
                state.logits_row(0).iter().map(|v| v.to_bits()).collect()
            })
            .collect()
    };
    for depth in [4, 2100] {
        let one = decode(1, depth);
        assert_eq!(decode(2, depth), one, "2 threads at depth {depth}");
        assert_eq!(decode(3, depth), one, "3 threads at depth {depth}");
    }
}

/// Gemma 3's sliding-window layers keep about two windows of slots: logits stay equal to
/// the naive model's (which keeps everything) across many shifts of the window, mixed
/// batch sizes, eviction below and above the window's first slot, and rewinds; a rewind
/// past what the window kept empties the cache instead of giving wrong logits.
#[test]
fn sliding_window_layers_keep_only_their_window() {
    // Six layers: five local with a window of 4 (so 8 slots each), one global.
    let spec =
        SyntheticSpec { arch: "gemma3".into(), n_layers: 6, n_head_kv: 1, ..SyntheticSpec::tiny() };
    let (model, file) = build(&spec);
    let pool = ThreadPool::new(2).unwrap();
    let mut state = ForwardState::new(&model, 8);
    let mut kv = KvCache::new(&model.config, 96).unwrap();
    let mut naive = Naive::new(file.clone(), spec.clone());
    let stream: Vec<u32> = (0..60u32).map(|i| (i * 37 + 11) % 300).collect();
    let mut at = 0;
    for (step, size) in [5, 1, 3, 7, 1, 1, 8, 2, 6, 1, 4].into_iter().enumerate() {
        let batch = &stream[at..at + size];
        forward(&model, &pool, &mut state, &mut kv, batch, Logits::All).unwrap();
        for (r, &t) in batch.iter().enumerate() {
            assert_close(
                state.logits_row(r),
                &naive.step(t),
                2e-4,
                &format!("step {step} row {r}"),
            );
        }
        at += size;
    }
    // The global layer reserved all 96 slots; the five windowed ones at most 2 windows
    // plus a batch (16 slots) each.
    let per_slot_and_layer =
        KvCache::new(&model.config, 96).unwrap().bytes_at_capacity() / (96 * 6);
    let bound = per_slot_and_layer * (96 + 5 * 16);
    assert!(kv.bytes_reserved() <= bound, "{} > {bound} bytes", kv.bytes_reserved());

    // Evict slots on both sides of the windowed layers' first slot, then continue.
    let keep: Vec<bool> = (0..kv.len()).map(|s| s % 5 != 1 && s != kv.len() - 3).collect();
    kv.retain(&keep).unwrap();
    naive.retain(&keep);
    for &t in &stream[at..at + 4] {
        forward(&model, &pool, &mut state, &mut kv, &[t], Logits::Last).unwrap();
        assert_close(state.logits_row(0), &naive.step(t), 2e-4, "after eviction");
    }

    // A short rewind is kept; a long one empties the cache.
    let len = kv.len();
    kv.truncate(len - 1);
    assert_eq!(kv.len(), len - 1);
    kv.truncate(3);
    assert_eq!(kv.len(), 0, "the windowed layers no longer hold what slot 3's successor sees");
    forward(&model, &pool, &mut state, &mut kv, &stream[..5], Logits::Last).unwrap();
    let mut fresh = Naive::new(file, spec);
    let want: Vec<f64> = stream[..5].iter().map(|&t| fresh.step(t)).last().unwrap();
    assert_close(state.logits_row(0), &want, 2e-4, "after the cache was emptied");
}
