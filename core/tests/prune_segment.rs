//! The `segment` pruning strategy: the tract path on a tiny ONNX graph this test writes
//! itself, the real all-MiniLM-L6-v2 (paraphrases score above unrelated pairs), a
//! missing embedding model (a clear error that changes nothing), and a pruned chat that
//! keeps its protected spans and the turn most relevant to the question.
//!
//! Real-model inputs: `$JOULE_MODEL_DIR` (default `core/../models`) with the SmolLM2
//! GGUF and `minilm/` (`joule fetch smollm2-135m`, `joule fetch minilm`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use joule_core::chat::ChatMessage;
use joule_core::engine::{Engine, EngineOptions, GenerateOptions};
use joule_core::prune::embed::{Embedder, cosine};
use joule_core::{Budget, Error, PruneOptions, Strategy};

fn model_dir() -> PathBuf {
    joule_core::engine::model_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
}

fn minilm_dir() -> PathBuf {
    let dir = model_dir().join(joule_core::prune::EMBED_SUBDIR);
    assert!(
        dir.join("model.onnx").is_file(),
        "{} is missing: run `joule fetch minilm` from the project root, or point \
         JOULE_MODEL_DIR at the directory that holds minilm/",
        dir.display()
    );
    dir
}

fn smollm2() -> PathBuf {
    let path = model_dir().join(joule_core::engine::DEFAULT_MODEL_FILE);
    assert!(path.is_file(), "{} is missing: run `joule fetch smollm2-135m`", path.display());
    path
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("joule-segment-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// --- A tiny ONNX graph, protobuf written by hand (tag, varint, length-delimited). ---

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn int_field(out: &mut Vec<u8>, field: u64, v: u64) {
    varint(out, field << 3);
    varint(out, v);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A ValueInfoProto: `name`, a tensor of `elem_type` (1 float, 7 int64) with these dims
/// (symbolic ones by name).
fn value_info(name: &str, elem_type: u64, dims: &[&str]) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in dims {
        let mut dim = Vec::new();
        match d.parse::<u64>() {
            Ok(n) => int_field(&mut dim, 1, n),
            Err(_) => bytes_field(&mut dim, 2, d.as_bytes()),
        }
        bytes_field(&mut shape, 1, &dim);
    }
    let mut tensor = Vec::new();
    int_field(&mut tensor, 1, elem_type);
    bytes_field(&mut tensor, 2, &shape);
    let mut ty = Vec::new();
    bytes_field(&mut ty, 1, &tensor);
    let mut info = Vec::new();
    bytes_field(&mut info, 1, name.as_bytes());
    bytes_field(&mut info, 2, &ty);
    info
}

/// Token states = rows of `table` gathered by `input_ids` (an embedding lookup, the first
/// op of BERT); `attention_mask` is an input as in a real export.
fn gather_model(table: &[[f32; 3]]) -> Vec<u8> {
    let mut init = Vec::new();
    int_field(&mut init, 1, table.len() as u64);
    int_field(&mut init, 1, 3);
    int_field(&mut init, 2, 1);
    bytes_field(&mut init, 8, b"table");
    let raw: Vec<u8> = table.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
    bytes_field(&mut init, 9, &raw);
    let mut axis = Vec::new();
    bytes_field(&mut axis, 1, b"axis");
    int_field(&mut axis, 3, 0);
    int_field(&mut axis, 20, 2); // AttributeType INT
    let mut node = Vec::new();
    bytes_field(&mut node, 1, b"table");
    bytes_field(&mut node, 1, b"input_ids");
    bytes_field(&mut node, 2, b"last_hidden_state");
    bytes_field(&mut node, 3, b"lookup");
    bytes_field(&mut node, 4, b"Gather");
    bytes_field(&mut node, 5, &axis);
    let mut graph = Vec::new();
    bytes_field(&mut graph, 1, &node);
    bytes_field(&mut graph, 2, b"tiny");
    bytes_field(&mut graph, 5, &init);
    bytes_field(&mut graph, 11, &value_info("input_ids", 7, &["batch", "sequence"]));
    bytes_field(&mut graph, 11, &value_info("attention_mask", 7, &["batch", "sequence"]));
    let out = value_info("last_hidden_state", 1, &["batch", "sequence", "3"]);
    bytes_field(&mut graph, 12, &out);
    let mut opset = Vec::new();
    int_field(&mut opset, 2, 13);
    let mut model = Vec::new();
    int_field(&mut model, 1, 8);
    bytes_field(&mut model, 7, &graph);
    bytes_field(&mut model, 8, &opset);
    model
}

const TINY_TOKENIZER: &str = r#"{"version":"1.0","truncation":null,"padding":null,
"added_tokens":[],"normalizer":null,"pre_tokenizer":{"type":"Whitespace"},
"post_processor":null,"decoder":null,
"model":{"type":"WordLevel","vocab":{"[UNK]":0,"cat":1,"kitten":2,"car":3,"truck":4},
"unk_token":"[UNK]"}}"#;

/// Rows: [UNK], cat, kitten, car, truck (cats along x, vehicles along y).
const TABLE: [[f32; 3]; 5] =
    [[0.0, 0.0, 1.0], [1.0, 0.1, 0.0], [0.9, 0.0, 0.1], [0.0, 1.0, 0.0], [0.1, 0.9, 0.0]];

fn tiny_embedder(name: &str) -> (Embedder, PathBuf) {
    let dir = temp_dir(name);
    std::fs::write(dir.join("model.onnx"), gather_model(&TABLE)).unwrap();
    std::fs::write(dir.join("tokenizer.json"), TINY_TOKENIZER).unwrap();
    (Embedder::load(&dir).unwrap(), dir)
}

fn unit(v: [f32; 3]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

#[test]
fn a_tiny_onnx_graph_runs_through_tract_with_mean_pooling_over_the_mask() {
    let (embedder, dir) = tiny_embedder("tiny");
    // Batched with padding: "cat" is padded to the width of "cat kitten truck".
    let v = embedder.embed(&["cat kitten truck", "cat", "car truck"]).unwrap();
    let mean = |rows: &[usize]| {
        let mut s = [0f32; 3];
        rows.iter().for_each(|&r| (0..3).for_each(|i| s[i] += TABLE[r][i] / rows.len() as f32));
        unit(s)
    };
    for (got, want) in v.iter().zip([mean(&[1, 2, 4]), mean(&[1]), mean(&[3, 4])]) {
        assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5), "{got:?} vs {want:?}");
    }
    let (cat, car, truck) = (&v[1], &v[2], &embedder.embed(&["truck"]).unwrap()[0]);
    assert!(cosine(car, truck) > cosine(cat, truck));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_bad_embedding_graph_is_a_clear_error() {
    let dir = temp_dir("bad");
    std::fs::write(dir.join("model.onnx"), b"not a protobuf at all").unwrap();
    std::fs::write(dir.join("tokenizer.json"), TINY_TOKENIZER).unwrap();
    let err = Embedder::load(&dir).unwrap_err();
    assert!(matches!(err, Error::EmbedModel { .. }), "{err}");
    assert!(err.to_string().contains("model.onnx"), "{err}");
    std::fs::write(dir.join("tokenizer.json"), "{").unwrap();
    assert!(matches!(Embedder::load(&dir), Err(Error::EmbedModel { .. })));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn minilm_scores_paraphrases_above_unrelated_pairs() {
    let embedder = Embedder::load(&minilm_dir()).unwrap();
    let pairs = [
        ("A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell."),
        (
            "How do I reset my password?",
            "I forgot my password, how can I change it?",
            "Cows eat grass.",
        ),
        (
            "The cat sleeps on the sofa.",
            "A kitten is napping on the couch.",
            "Rust compiles to machine code.",
        ),
    ];
    for (a, para, other) in pairs {
        let v = embedder.embed(&[a, para, other]).unwrap();
        let (close, far) = (cosine(&v[0], &v[1]), cosine(&v[0], &v[2]));
        assert!(close > far + 0.2, "{a:?}: paraphrase {close} vs unrelated {far}");
        let norm = v[0].iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "not unit length: {norm}");
    }
}

fn segment(budget: Budget) -> GenerateOptions {
    let prune = PruneOptions::new(Strategy::Segment, budget);
    GenerateOptions { max_tokens: Some(4), prune: Some(prune), ..Default::default() }
}

fn engine(embed_dir: Option<PathBuf>) -> Arc<Engine> {
    let options =
        EngineOptions { context: Some(2048), threads: Some(2), embed_dir, ..Default::default() };
    Engine::load(smollm2(), options).unwrap()
}

#[test]
fn a_missing_embedding_model_is_a_clear_error_that_changes_nothing() {
    let missing = Path::new("/nonexistent/joule-minilm").to_path_buf();
    let engine = engine(Some(missing.clone()));
    let mut session = engine.session().unwrap();
    let plain = GenerateOptions { max_tokens: Some(2), ..Default::default() };
    session.send("Some words about the weather today.", &plain, &mut |_| {}).unwrap();
    let (messages, cached) = (session.messages().to_vec(), session.cached_tokens().to_vec());
    let err = session.send("What about tomorrow?", &segment(Budget::Ratio(0.3)), &mut |_| {});
    let err = err.unwrap_err();
    assert!(matches!(&err, Error::EmbedModelMissing { path } if path.starts_with(&missing)));
    assert!(err.to_string().contains("joule fetch minilm"), "{err}");
    assert_eq!(session.messages(), &messages[..]);
    assert_eq!(session.cached_tokens(), &cached[..]);
    // The session still answers.
    session.send("And tomorrow?", &plain, &mut |_| {}).unwrap();
}

#[test]
fn segment_pruning_keeps_protected_spans_and_the_relevant_turn() {
    let engine = engine(None);
    assert_eq!(engine.embed_dir(), model_dir().join("minilm"));
    minilm_dir();
    let mut session = engine.session().unwrap();
    let system = "You are a helpful assistant.";
    session.push_message(ChatMessage::system(system));
    let filler = [
        "The football team won the match on Saturday after a late goal.",
        "I repainted the kitchen walls a pale shade of green last spring.",
        "The train to the coast leaves every hour from the central station.",
        "My grandmother grows tomatoes and beans in her small garden.",
    ];
    let needle = "My locker code at the gym is 4812, please remember it.";
    for (i, f) in filler.iter().enumerate() {
        session.push_message(ChatMessage::user(*f));
        session.push_message(ChatMessage::assistant("Noted."));
        if i == 2 {
            session.push_message(ChatMessage::user(needle));
            session.push_message(ChatMessage::assistant("Noted."));
        }
    }
    let question = "What is my gym locker code?";
    // The template's tokens (protected) are about half of this short chat: 70 % leaves
    // room for a few turns.
    let report = session.send(question, &segment(Budget::Ratio(0.7)), &mut |_| {}).unwrap();
    let pruning = report.pruning.as_ref().expect("a pruning report");
    assert_eq!(pruning.strategy, "segment");
    assert!(pruning.tokens_kept < pruning.tokens_in, "{pruning:?}");
    let tokens = &session.cached_tokens()[..report.prefill_tokens];
    let kept = engine.tokenizer().decode(tokens, false);
    for must in [system, needle, question] {
        assert!(kept.contains(must), "{must:?} was pruned from:\n{kept}");
    }
    let dropped = filler.iter().filter(|f| !kept.contains(*f)).count();
    assert!(dropped >= 1, "no unrelated turn dropped:\n{kept}");
}
