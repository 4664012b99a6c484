//! The tokenizer on tiny vocabularies built in the test: byte-level BPE and
//! SentencePiece encoding, special-token splitting, end-of-generation rules, pieces,
//! decoding and streaming.

use joule_core::gguf::{Array, Metadata, Value};
use joule_core::tokenizer::{StreamDecoder, Tokenizer, VocabKind};

const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;
const BYTE: i32 = 6;

fn strings(v: &[String]) -> Value {
    Value::Array(Array::String(v.to_vec()))
}

/// GPT-2's byte-to-character table: printable bytes stand for themselves, the other 68
/// take U+0100 onwards in byte order.
fn byte_char(b: u8) -> char {
    let printable = |b: u32| matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable(b as u32) {
        return char::from(b);
    }
    let n = (0..b as u32).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + n).unwrap()
}

fn byte_level(s: &str) -> String {
    s.bytes().map(byte_char).collect()
}

/// A byte-level BPE vocabulary: a few special tokens, all 256 byte characters, and the
/// results of `merges` (given in plain text, spaces as ' ').
struct BpeVocab {
    tokens: Vec<String>,
    types: Vec<i32>,
    merges: Vec<String>,
}

impl BpeVocab {
    fn new(specials: &[(&str, i32)], merges: &[(&str, &str)]) -> Self {
        let mut v = BpeVocab { tokens: vec![], types: vec![], merges: vec![] };
        for &(text, ty) in specials {
            v.push(text.to_string(), ty);
        }
        for b in 0..=255u8 {
            v.push(byte_char(b).to_string(), 1);
        }
        for &(l, r) in merges {
            let (l, r) = (byte_level(l), byte_level(r));
            v.merges.push(format!("{l} {r}"));
            let merged = format!("{l}{r}");
            if !v.tokens.contains(&merged) {
                v.push(merged, 1);
            }
        }
        v
    }

    fn push(&mut self, text: String, ty: i32) {
        self.tokens.push(text);
        self.types.push(ty);
    }

    fn metadata(&self, pre: &str) -> Metadata {
        let mut md = Metadata::new();
        md.insert("tokenizer.ggml.model", Value::String("gpt2".into()));
        md.insert("tokenizer.ggml.pre", Value::String(pre.into()));
        md.insert("tokenizer.ggml.tokens", strings(&self.tokens));
        md.insert("tokenizer.ggml.token_type", Value::Array(Array::I32(self.types.clone())));
        md.insert("tokenizer.ggml.merges", strings(&self.merges));
        md.insert("tokenizer.ggml.bos_token_id", Value::U32(0));
        md.insert("tokenizer.ggml.eos_token_id", Value::U32(0));
        md
    }
}

fn id(tok: &Tokenizer, text: &str) -> u32 {
    tok.id_of(text).unwrap_or_else(|| panic!("{text:?} is not in the test vocabulary"))
}

/// Byte-level id of a plain-text token.
fn bid(tok: &Tokenizer, text: &str) -> u32 {
    id(tok, &byte_level(text))
}

const HELLO_WORLD: &[(&str, &str)] = &[
    ("h", "e"),
    ("l", "l"),
    ("he", "ll"),
    ("hell", "o"),
    (" ", "w"),
    ("o", "r"),
    (" w", "or"),
    (" wor", "l"),
    (" worl", "d"),
];

fn chat_bpe(pre: &str) -> Tokenizer {
    let specials = [
        ("<|endoftext|>", CONTROL),
        ("<|im_start|>", CONTROL),
        ("<|im_end|>", CONTROL),
        ("<tool>", USER_DEFINED),
    ];
    Tokenizer::from_gguf(&BpeVocab::new(&specials, HELLO_WORLD).metadata(pre)).unwrap()
}

#[test]
fn tokenizer_is_send_and_sync() {
    fn check<T: Send + Sync + Clone>() {}
    check::<Tokenizer>();
    check::<StreamDecoder>();
}

#[test]
fn bpe_merges_by_rank_within_pre_tokens() {
    let tok = chat_bpe("gpt-2");
    assert_eq!(tok.kind(), VocabKind::BytePairEncoding);
    assert_eq!(tok.pre_tokenizer(), Some("gpt-2"));
    let (hello, world) = (bid(&tok, "hello"), bid(&tok, " world"));
    assert_eq!(tok.encode("hello world", false).unwrap(), vec![hello, world]);
    // The regex splits "helloworld!" only at the '!': "world" without its space has no merge.
    let got = tok.encode("helloworld!", false).unwrap();
    let w = ["w", "or", "l", "d"].map(|t| bid(&tok, t));
    assert_eq!(got, [vec![hello], w.to_vec(), vec![bid(&tok, "!")]].concat());
    assert_eq!(tok.encode("", false).unwrap(), Vec::<u32>::new());
    assert_eq!(tok.decode(&got, false), "helloworld!");
}

#[test]
fn bpe_equal_ranks_merge_leftmost_first() {
    let tok = Tokenizer::from_gguf(&BpeVocab::new(&[], &[("a", "a")]).metadata("gpt-2")).unwrap();
    assert_eq!(tok.encode("aaa", false).unwrap(), vec![bid(&tok, "aa"), bid(&tok, "a")]);
}

#[test]
fn pre_tokenizer_choice_changes_the_split() {
    let vocab = BpeVocab::new(&[], &[("1", "2"), ("12", "3"), ("'", "s")]);
    // GPT-2 keeps digit runs together; SmolLM's pre-tokenizer splits every digit.
    let gpt2 = Tokenizer::from_gguf(&vocab.metadata("gpt-2")).unwrap();
    assert_eq!(gpt2.encode("123", false).unwrap(), vec![bid(&gpt2, "123")]);
    let smollm = Tokenizer::from_gguf(&vocab.metadata("smollm")).unwrap();
    assert_eq!(
        smollm.encode("123", false).unwrap(),
        ["1", "2", "3"].map(|t| bid(&smollm, t)).to_vec()
    );
    // Llama 3 groups digits by three and ignores merges for whole pre-tokens in the vocabulary.
    let llama3 = Tokenizer::from_gguf(&vocab.metadata("llama-bpe")).unwrap();
    assert!(llama3.add_bos(), "llama-bpe vocabularies add BOS by default");
    assert_eq!(llama3.encode("1231", false).unwrap(), vec![bid(&llama3, "123"), bid(&llama3, "1")]);
    // Contractions: GPT-2's "'s" is case-sensitive, Llama 3's adapted pattern is not.
    assert_eq!(gpt2.encode("'S", false).unwrap(), vec![bid(&gpt2, "'"), bid(&gpt2, "S")]);
    assert_eq!(llama3.encode("'S", false).unwrap().len(), 2);
    assert_eq!(llama3.encode("'s", false).unwrap(), vec![bid(&llama3, "'s")]);
    // An unknown name falls back to GPT-2's pattern instead of failing.
    let unknown = Tokenizer::from_gguf(&vocab.metadata("no-such-pre")).unwrap();
    assert_eq!(unknown.encode("123", false).unwrap(), vec![bid(&unknown, "123")]);
}

#[test]
fn control_tokens_are_parsed_only_on_request_user_defined_always() {
    let tok = chat_bpe("gpt-2");
    let (start, end, tool) = (id(&tok, "<|im_start|>"), id(&tok, "<|im_end|>"), id(&tok, "<tool>"));
    let (hello, nl) = (bid(&tok, "hello"), bid(&tok, "\n"));

    let text = "<|im_start|>hello\n<|im_end|>";
    assert_eq!(tok.encode(text, true).unwrap(), vec![start, hello, nl, end]);
    let plain = tok.encode(text, false).unwrap();
    assert!(!plain.contains(&start) && !plain.contains(&end));
    assert_eq!(tok.decode(&plain, false), text);

    // User-defined tokens are cut out of the text even without parse_special.
    assert_eq!(tok.encode("hello<tool>hello", false).unwrap(), vec![hello, tool, hello]);
    assert_eq!(tok.encode("<tool><tool>", false).unwrap(), vec![tool, tool]);
}

#[test]
fn longer_special_tokens_are_matched_first() {
    let specials = [("<a>", CONTROL), ("<a><b>", CONTROL), ("<b>", USER_DEFINED)];
    let tok = Tokenizer::from_gguf(&BpeVocab::new(&specials, &[]).metadata("gpt-2")).unwrap();
    let (a, ab, b) = (id(&tok, "<a>"), id(&tok, "<a><b>"), id(&tok, "<b>"));
    assert_eq!(tok.encode("<a><b><a><b><a>", true).unwrap(), vec![ab, ab, a]);
    assert_eq!(tok.encode("<b><a>x<a><b>", true).unwrap(), vec![b, a, bid(&tok, "x"), ab]);
    // Without parse_special only the user-defined <b> is a token.
    let got = tok.encode("<a><b>", false).unwrap();
    assert_eq!(got.last(), Some(&b));
    assert!(!got.contains(&a) && !got.contains(&ab));
}

#[test]
fn pieces_and_decoding() {
    let tok = chat_bpe("gpt-2");
    let (end, tool) = (id(&tok, "<|im_end|>"), id(&tok, "<tool>"));
    assert_eq!(tok.token_to_piece(bid(&tok, " world"), false), b" world");
    assert_eq!(tok.token_to_piece(end, false), b"");
    assert_eq!(tok.token_to_piece(end, true), b"<|im_end|>");
    assert_eq!(tok.token_to_piece(tool, false), b"<tool>");
    assert_eq!(tok.token_to_piece(u32::MAX, true), b"");
    // One byte of a multi-byte character is not UTF-8 on its own.
    assert_eq!(tok.token_to_piece(id(&tok, &byte_char(0xE4).to_string()), false), [0xE4]);
    let ids = tok.encode("hello<|im_end|>", true).unwrap();
    assert_eq!(tok.decode(&ids, true), "hello<|im_end|>");
    assert_eq!(tok.decode(&ids, false), "hello");
    assert_eq!(tok.token_text(end), Some("<|im_end|>"));
    assert_eq!(tok.token_text(u32::MAX), None);
}

#[test]
fn clean_spaces_follows_the_pre_tokenizer() {
    // GPT-2 style vocabularies clean " !" to "!" on decode; SmolLM's does not.
    for (pre, want) in [("gpt-2", "hello! it's"), ("smollm", "hello ! it 's")] {
        let tok = chat_bpe(pre);
        let pieces = ["hello", " ", "!", " ", "i", "t", " ", "'", "s"];
        let ids: Vec<u32> = pieces.iter().map(|t| bid(&tok, t)).collect();
        assert_eq!(tok.decode(&ids, false), want, "pre {pre}");
    }
}

#[test]
fn end_of_generation_set() {
    let specials = [
        ("<|endoftext|>", CONTROL),
        ("<|im_end|>", USER_DEFINED),
        ("<|fim_pad|>", CONTROL),
        ("<eom>", CONTROL),
        ("<|return|>", CONTROL),
        ("<|call|>", CONTROL),
        ("<|end|>", CONTROL),
    ];
    let vocab = BpeVocab::new(&specials, &[]);
    let mut md = vocab.metadata("gpt-2");
    md.insert("tokenizer.ggml.eos_token_id", Value::U32(0));
    md.insert("tokenizer.ggml.eom_token_id", Value::I32(3));
    let tok = Tokenizer::from_gguf(&md).unwrap();
    let eog: Vec<u32> = tok.eog_ids().collect();
    // eos, <|im_end|> by text, the FIM pad marker, eom by key, <|return|> and <|call|> by
    // text; <|end|> is dropped because gpt-oss style channels use it mid-message.
    assert_eq!(eog, vec![0, 1, 2, 3, 4, 5]);
    assert!(!tok.is_eog(6) && !tok.is_eog(7) && !tok.is_eog(u32::MAX));
    assert_eq!(tok.eot_id(), Some(0), "<|endoftext|> doubles as end of turn (lowest id wins)");
    // <|im_end|> was user-defined in the file and is now a control token: hidden, and
    // plain text unless special tokens are parsed.
    assert_eq!(tok.token_to_piece(1, false), b"");
    assert!(!tok.encode("<|im_end|>", false).unwrap().contains(&1));
    // <|end|> became user-defined: always matched and rendered.
    assert_eq!(tok.encode("<|end|>", false).unwrap(), vec![6]);
    assert_eq!(tok.token_to_piece(6, false), b"<|end|>");
}

#[test]
fn phi3_special_tokens_eat_following_whitespace() {
    let vocab = BpeVocab::new(&[("<|endoftext|>", CONTROL), ("<|user|>", CONTROL)], HELLO_WORLD);
    let mut md = vocab.metadata("gpt-2");
    md.insert("general.name", Value::String("Phi-3 Mini".into()));
    let tok = Tokenizer::from_gguf(&md).unwrap();
    let user = id(&tok, "<|user|>");
    assert_eq!(tok.encode("<|user|> \n hello", true).unwrap(), vec![user, bid(&tok, "hello")]);
    // <|endoftext|> is exempt.
    assert_eq!(tok.encode("<|endoftext|> ", true).unwrap(), vec![0, bid(&tok, " ")]);
}

/// A SentencePiece vocabulary: <unk>, <s>, </s>, the 256 byte tokens, then pieces with
/// the given scores and a user-defined newline.
fn spm(pieces: &[(&str, f32)], add_space_prefix: bool) -> Tokenizer {
    let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>"].map(String::from).to_vec();
    let mut types = vec![2, CONTROL, CONTROL];
    let mut scores = vec![0.0, 0.0, 0.0];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(BYTE);
        scores.push(0.0);
    }
    tokens.push("\n".into());
    types.push(USER_DEFINED);
    scores.push(0.0);
    tokens.push("<unused0>".into());
    types.push(UNUSED);
    scores.push(0.0);
    for &(p, s) in pieces {
        tokens.push(p.replace(' ', "\u{2581}"));
        types.push(1);
        scores.push(s);
    }
    let mut md = Metadata::new();
    md.insert("tokenizer.ggml.model", Value::String("llama".into()));
    md.insert("tokenizer.ggml.tokens", strings(&tokens));
    md.insert("tokenizer.ggml.scores", Value::Array(Array::F32(scores)));
    md.insert("tokenizer.ggml.token_type", Value::Array(Array::I32(types)));
    md.insert("tokenizer.ggml.add_space_prefix", Value::Bool(add_space_prefix));
    Tokenizer::from_gguf(&md).unwrap()
}

const HELLO_PIECES: &[(&str, f32)] = &[
    (" ", -10.0),
    ("h", -10.0),
    ("e", -10.0),
    ("l", -10.0),
    ("o", -10.0),
    (" h", -5.0),
    ("he", -1.0),
    ("ll", -2.0),
    ("hell", -3.0),
    ("hello", -4.0),
    (" hello", -4.5),
    ("a", -10.0),
    ("aa", -1.0),
];

fn sid(tok: &Tokenizer, text: &str) -> u32 {
    id(tok, &text.replace(' ', "\u{2581}"))
}

#[test]
fn spm_merges_highest_score_first() {
    let tok = spm(HELLO_PIECES, false);
    assert_eq!(tok.kind(), VocabKind::SentencePiece);
    assert_eq!((tok.bos_id(), tok.eos_id(), tok.unk_id()), (Some(1), Some(2), Some(0)));
    assert!(tok.add_bos() && !tok.add_eos());
    // "he" (-1) goes first, so " h" (-5) never forms and " hello" is reached.
    assert_eq!(tok.encode(" hello", false).unwrap(), vec![sid(&tok, " hello")]);
    assert_eq!(
        tok.encode("hello hello", false).unwrap(),
        vec![sid(&tok, "hello"), sid(&tok, " hello")]
    );
    // Equal scores: the leftmost pair merges first.
    assert_eq!(tok.encode("aaa", false).unwrap(), vec![sid(&tok, "aa"), sid(&tok, "a")]);
}

#[test]
fn spm_falls_back_to_bytes() {
    let tok = spm(HELLO_PIECES, false);
    let byte = |b: u8| id(&tok, &format!("<0x{b:02X}>"));
    // 中 is E4 B8 AD.
    assert_eq!(tok.encode("中", false).unwrap(), vec![byte(0xE4), byte(0xB8), byte(0xAD)]);
    assert_eq!(tok.token_to_piece(byte(0xE4), false), [0xE4]);
    let ids = tok.encode("he中", false).unwrap();
    assert_eq!(tok.decode(&ids, false), "he中");
    assert_eq!(tok.decode(&[byte(0xE4)], false), "\u{FFFD}");
}

#[test]
fn spm_space_prefix_and_special_tokens() {
    let tok = spm(HELLO_PIECES, true);
    let (bos, nl) = (id(&tok, "<s>"), id(&tok, "\n"));
    let hello = sid(&tok, " hello");
    assert_eq!(tok.encode("hello", false).unwrap(), vec![hello]);
    // Text after any special token (control or user-defined) gets the prefix again.
    assert_eq!(tok.encode("<s>hello\nhello", true).unwrap(), vec![bos, hello, nl, hello]);
    // Decoding drops the space the prefix added to the first token only.
    assert_eq!(tok.decode(&[hello, hello], false), "hello hello");
    assert_eq!(tok.decode(&[bos, hello], true), "<s> hello");
    assert_eq!(tok.token_to_piece(hello, false), b" hello");
    // An unused token renders as nothing even with special tokens shown.
    assert_eq!(tok.token_to_piece(id(&tok, "<unused0>"), true), b"");
    // Without the prefix flag nothing is added or removed.
    let bare = spm(HELLO_PIECES, false);
    assert_eq!(bare.encode("hello", false).unwrap(), vec![sid(&bare, "hello")]);
    assert_eq!(bare.decode(&[sid(&bare, " hello")], false), " hello");
}

#[test]
fn stream_holds_partial_characters_from_byte_tokens() {
    let tok = spm(HELLO_PIECES, true);
    let byte = |b: u8| id(&tok, &format!("<0x{b:02X}>"));
    let hello = sid(&tok, " hello");
    // " hello", then 中 (E4 B8 AD) and 🙂 (F0 9F 99 82) one byte token at a time.
    let ids = [
        hello,
        byte(0xE4),
        byte(0xB8),
        byte(0xAD),
        byte(0xF0),
        byte(0x9F),
        byte(0x99),
        byte(0x82),
        hello,
    ];
    let mut stream = StreamDecoder::new(&tok, false);
    let outs: Vec<String> = ids.iter().map(|&i| stream.push(i)).collect();
    assert_eq!(outs, ["hello", "", "", "中", "", "", "", "🙂", " hello"]);
    assert_eq!(stream.finish(), "");
    assert_eq!(outs.concat(), tok.decode(&ids, false));

    // After a prompt the first generated token keeps its space.
    let mut cont = StreamDecoder::continuing(&tok, false);
    assert_eq!(cont.push(hello), " hello");
}

#[test]
fn stream_replaces_bytes_that_cannot_form_a_character() {
    let tok = spm(HELLO_PIECES, false);
    let byte = |b: u8| id(&tok, &format!("<0x{b:02X}>"));
    let mut stream = StreamDecoder::new(&tok, false);
    assert_eq!(stream.push(byte(0xE4)), "");
    assert_eq!(stream.pending_bytes(), 1);
    // 'h' cannot continue E4: the lone byte becomes U+FFFD and 'h' comes through.
    assert_eq!(stream.push(sid(&tok, "h")), "\u{FFFD}h");
    assert_eq!(stream.push(byte(0xFF)), "\u{FFFD}");
    // A character still unfinished at the end.
    assert_eq!(stream.push(byte(0xF0)), "");
    assert_eq!(stream.push(byte(0x9F)), "");
    assert_eq!(stream.finish(), "\u{FFFD}");
    assert_eq!(stream.pending_bytes(), 0);
}

#[test]
fn stream_joins_byte_level_pieces_of_emoji_and_cjk() {
    // 🙂 = F0 9F 99 82 and 語 = E8 AA 9E as byte-level pieces split across tokens.
    let merges = [("\u{F0}", "\u{9F}"), ("\u{99}", "\u{82}"), ("\u{E8}", "\u{AA}")];
    let mut vocab = BpeVocab::new(&[("<|im_end|>", CONTROL)], &[]);
    let to_byte_level = |s: &str| -> String { s.chars().map(|c| byte_char(c as u8)).collect() };
    for (l, r) in merges {
        let (l, r) = (to_byte_level(l), to_byte_level(r));
        vocab.merges.push(format!("{l} {r}"));
        vocab.push(format!("{l}{r}"), 1);
    }
    let tok = Tokenizer::from_gguf(&vocab.metadata("gpt-2")).unwrap();
    let ids = tok.encode("🙂語", false).unwrap();
    assert_eq!(ids.len(), 4, "F0 9F | 99 82 | E8 AA | 9E: {ids:?}");
    let ids = [ids, tok.encode("<|im_end|>", true).unwrap()].concat();
    assert_eq!(ids.len(), 5);
    for render_special in [false, true] {
        let mut stream = StreamDecoder::new(&tok, render_special);
        let outs: Vec<String> = ids.iter().map(|&i| stream.push(i)).collect();
        let end = if render_special { "<|im_end|>" } else { "" };
        assert_eq!(outs, ["", "🙂", "", "語", end]);
        assert_eq!(outs.concat(), tok.decode(&ids, render_special));
    }
}
