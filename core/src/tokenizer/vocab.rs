//! The vocabulary read from `tokenizer.ggml.*` metadata: token texts, scores and
//! attributes, special token ids, flags, and the end-of-generation set, with the
//! defaults and text-based fix-ups llama.cpp applies when it loads a model.

use std::collections::BTreeSet;

use super::TokenizerError;
use super::attr::Attr;
use super::pretok::{self, PreTokenizerSpec};
use super::texts::TokenTexts;
use crate::gguf::{Array, Metadata, Value};

const KEY_MODEL: &str = "tokenizer.ggml.model";
const KEY_PRE: &str = "tokenizer.ggml.pre";
const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
const KEY_SCORES: &str = "tokenizer.ggml.scores";
const KEY_TOKEN_TYPE: &str = "tokenizer.ggml.token_type";

/// Which algorithm the vocabulary was trained for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VocabKind {
    /// `tokenizer.ggml.model = "gpt2"`: byte-level BPE with ranked merges.
    BytePairEncoding,
    /// `tokenizer.ggml.model = "llama"`: SentencePiece-style pieces merged by score,
    /// with `▁` for spaces and `<0xXX>` byte fallback.
    SentencePiece,
}

/// Special token ids; `None` where the vocabulary has none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SpecialIds {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub sep: Option<u32>,
    pub pad: Option<u32>,
    pub mask: Option<u32>,
    pub fim_pre: Option<u32>,
    pub fim_suf: Option<u32>,
    pub fim_mid: Option<u32>,
    pub fim_pad: Option<u32>,
    pub fim_rep: Option<u32>,
    pub fim_sep: Option<u32>,
}

/// Everything about the vocabulary except the BPE merge table.
#[derive(Debug)]
pub(crate) struct Vocab {
    pub kind: VocabKind,
    pub texts: TokenTexts,
    pub scores: Vec<f32>,
    pub attrs: Vec<Attr>,
    pub special: SpecialIds,
    pub eog: BTreeSet<u32>,
    /// Tokens matched verbatim in text before the model runs (control, user-defined and
    /// unknown ones), longest text first.
    pub special_cache: Vec<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
    pub clean_spaces: bool,
    /// The BPE pre-tokenizer (byte-level BPE only).
    pub pre: Option<PreTokenizerSpec>,
}

// Texts llama.cpp recognises when the metadata names no id (src/llama-vocab.cpp).
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<\u{FF5C}end\u{2581}of\u{2581}sentence\u{FF5C}>",
    "<end_of_utterance>",
];
const EOM_TEXTS: &[&str] = &["<|eom_id|>"];
const FIM_PRE_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<\u{FF5C}fim\u{2581}begin\u{FF5C}>",
    "<PRE>",
    "\u{2581}<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF_TEXTS: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<\u{FF5C}fim\u{2581}hole\u{FF5C}>",
    "<SUF>",
    "\u{2581}<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID_TEXTS: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<\u{FF5C}fim\u{2581}end\u{FF5C}>",
    "<MID>",
    "\u{2581}<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS: &[&str] =
    &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];

/// Token texts that end generation whatever the metadata says.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<\u{FF5C}end\u{2581}of\u{2581}sentence\u{FF5C}>",
    "[e~[",
];

/// gpt-oss channel markers that llama.cpp always treats as user-defined (rendered).
const ALWAYS_RENDERED: &[&str] = &["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"];

impl Vocab {
    pub fn from_metadata(md: &Metadata) -> Result<Vocab, TokenizerError> {
        let model = md.str(KEY_MODEL)?;
        let kind = match model {
            "gpt2" => VocabKind::BytePairEncoding,
            "llama" => VocabKind::SentencePiece,
            other => return Err(TokenizerError::UnsupportedModel { model: other.to_string() }),
        };
        let pre_name = md.str_opt(KEY_PRE)?;

        let tokens = md.string_array(KEY_TOKENS)?;
        if tokens.is_empty() {
            return Err(TokenizerError::EmptyVocabulary);
        }
        let n = tokens.len();
        if u32::try_from(n).is_err() {
            return Err(TokenizerError::VocabularyTooLarge { n_tokens: n });
        }
        let scores = read_scores(md, n)?;
        let mut attrs = read_attrs(md, n)?;
        let texts = TokenTexts::new(tokens)?;

        // Family defaults (llama.cpp's), then what the metadata says.
        let (mut special, mut add_bos, mut add_space_prefix, clean_spaces, pre) = match kind {
            VocabKind::SentencePiece => {
                let ids =
                    SpecialIds { bos: Some(1), eos: Some(2), unk: Some(0), ..Default::default() };
                (ids, true, true, false, None)
            }
            VocabKind::BytePairEncoding => {
                let spec = pretok::spec_for(pre_name);
                let bos = if spec.no_default_bos { None } else { Some(11) };
                let ids = SpecialIds { bos, eos: Some(11), ..Default::default() };
                (ids, spec.add_bos, false, spec.clean_spaces, Some(spec))
            }
        };
        if let Some(v) = md.bool_opt("tokenizer.ggml.add_space_prefix")? {
            add_space_prefix = v;
        }
        read_special_ids(md, n, &mut special)?;
        if let Some(v) = md.bool_opt("tokenizer.ggml.add_bos_token")? {
            add_bos = v;
        }
        let add_eos = md.bool_opt("tokenizer.ggml.add_eos_token")?.unwrap_or(false);
        let add_sep = md.bool_opt("tokenizer.ggml.add_sep_token")?.unwrap_or(false);
        for (flag, id, flag_key, id_key) in [
            (add_bos, special.bos, "tokenizer.ggml.add_bos_token", "tokenizer.ggml.bos_token_id"),
            (add_eos, special.eos, "tokenizer.ggml.add_eos_token", "tokenizer.ggml.eos_token_id"),
            (
                add_sep,
                special.sep,
                "tokenizer.ggml.add_sep_token",
                "tokenizer.ggml.seperator_token_id",
            ),
        ] {
            if flag && id.is_none() {
                return Err(TokenizerError::MissingSpecialToken { flag_key, id_key });
            }
        }

        find_special_by_text(&texts, &mut special, &mut attrs);
        let eog = end_of_generation_ids(&texts, &special, &mut attrs);

        let mut special_cache: Vec<u32> = (0..n as u32)
            .filter(|&id| {
                attrs[id as usize].any(Attr::CONTROL | Attr::USER_DEFINED | Attr::UNKNOWN)
            })
            .collect();
        // Stable: equal lengths keep id order (llama.cpp's sort leaves that order open).
        special_cache.sort_by_key(|&id| std::cmp::Reverse(texts.text(id).len()));

        apply_strip_attrs(md, pre_name, &texts, &special_cache, &mut attrs)?;

        Ok(Vocab {
            kind,
            texts,
            scores,
            attrs,
            special,
            eog,
            special_cache,
            add_bos,
            add_eos,
            add_space_prefix,
            clean_spaces,
            pre,
        })
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn id_of(&self, text: &str) -> Option<u32> {
        self.texts.id_of(text)
    }

    pub fn attr(&self, id: u32) -> Attr {
        self.attrs.get(id as usize).copied().unwrap_or(Attr::UNDEFINED)
    }
}

fn read_scores(md: &Metadata, n: usize) -> Result<Vec<f32>, TokenizerError> {
    let scores = match md.get(KEY_SCORES) {
        None => return Ok(vec![0.0; n]),
        Some(Value::Array(Array::F32(v))) => v.clone(),
        Some(Value::Array(Array::I32(v))) => v.iter().map(|&s| s as f32).collect(),
        Some(other) => {
            let found = match other {
                Value::Array(a) => a.elem_type().name(),
                v => v.value_type().name(),
            };
            let expected = "f32 or i32";
            return Err(TokenizerError::WrongArrayType { key: KEY_SCORES, expected, found });
        }
    };
    check_len(KEY_SCORES, scores.len(), n)?;
    Ok(scores)
}

fn read_attrs(md: &Metadata, n: usize) -> Result<Vec<Attr>, TokenizerError> {
    let Some(types) = md.int_array_opt(KEY_TOKEN_TYPE)? else {
        return Ok(vec![Attr::NORMAL; n]);
    };
    check_len(KEY_TOKEN_TYPE, types.len(), n)?;
    Ok(types.into_iter().map(Attr::from_token_type).collect())
}

fn check_len(key: &'static str, found: usize, expected: usize) -> Result<(), TokenizerError> {
    if found == expected {
        Ok(())
    } else {
        Err(TokenizerError::LengthMismatch { key, found, expected })
    }
}

fn read_special_ids(md: &Metadata, n: usize, ids: &mut SpecialIds) -> Result<(), TokenizerError> {
    let read = |key: &'static str, default: Option<u32>| -> Result<Option<u32>, TokenizerError> {
        let default = default.filter(|&d| (d as usize) < n);
        match md.int_opt::<i64>(&format!("tokenizer.ggml.{key}"))? {
            None => Ok(default),
            Some(id) if id >= 0 && (id as u64) < n as u64 => Ok(Some(id as u32)),
            Some(id) => Err(TokenizerError::SpecialIdOutOfRange { key, id, n_vocab: n }),
        }
    };
    ids.bos = read("bos_token_id", ids.bos)?;
    ids.eos = read("eos_token_id", ids.eos)?;
    ids.eot = read("eot_token_id", ids.eot)?;
    ids.eom = read("eom_token_id", ids.eom)?;
    ids.unk = read("unknown_token_id", ids.unk)?;
    ids.sep = read("seperator_token_id", ids.sep)?;
    ids.pad = read("padding_token_id", ids.pad)?;
    ids.mask = read("mask_token_id", ids.mask)?;
    ids.fim_pre = read("fim_pre_token_id", ids.fim_pre)?;
    ids.fim_suf = read("fim_suf_token_id", ids.fim_suf)?;
    ids.fim_mid = read("fim_mid_token_id", ids.fim_mid)?;
    ids.fim_pad = read("fim_pad_token_id", ids.fim_pad)?;
    ids.fim_rep = read("fim_rep_token_id", ids.fim_rep)?;
    ids.fim_sep = read("fim_sep_token_id", ids.fim_sep)?;
    // Older names for the first three FIM ids win when present, as in llama.cpp.
    ids.fim_pre = read("prefix_token_id", ids.fim_pre)?;
    ids.fim_suf = read("suffix_token_id", ids.fim_suf)?;
    ids.fim_mid = read("middle_token_id", ids.fim_mid)?;
    Ok(())
}

/// A token whose text marks it as special but whose type says otherwise is made a
/// control token (llama.cpp warns that such a file is probably wrong).
fn force_control(texts: &TokenTexts, attrs: &mut [Attr], id: u32) {
    let a = &mut attrs[id as usize];
    if !a.any(Attr::CONTROL) {
        log::debug!("token {id} '{}' looks like a control token: made one", texts.text(id));
        *a = a.with(Attr::CONTROL);
    }
}

/// End of turn/message and FIM ids the metadata does not give, found by their text.
fn find_special_by_text(texts: &TokenTexts, special: &mut SpecialIds, attrs: &mut [Attr]) {
    for (slot, list) in [
        (&mut special.eot, EOT_TEXTS),
        (&mut special.eom, EOM_TEXTS),
        (&mut special.fim_pre, FIM_PRE_TEXTS),
        (&mut special.fim_suf, FIM_SUF_TEXTS),
        (&mut special.fim_mid, FIM_MID_TEXTS),
        (&mut special.fim_pad, FIM_PAD_TEXTS),
        (&mut special.fim_rep, FIM_REP_TEXTS),
        (&mut special.fim_sep, FIM_SEP_TEXTS),
    ] {
        // The lowest id wins when several texts match (llama.cpp takes a hash map's first).
        if slot.is_none()
            && let Some(id) = list.iter().filter_map(|t| texts.id_of(t)).min()
        {
            *slot = Some(id);
            force_control(texts, attrs, id);
        }
    }
}

/// The end-of-generation set as llama.cpp builds it: FIM pad/repo/separator markers,
/// every token whose text is a known end marker, then EOS, EOT and EOM.
fn end_of_generation_ids(
    texts: &TokenTexts,
    special: &SpecialIds,
    attrs: &mut [Attr],
) -> BTreeSet<u32> {
    let fim = [special.fim_pad, special.fim_rep, special.fim_sep];
    let mut eog: BTreeSet<u32> = fim.into_iter().flatten().collect();
    for id in EOG_TEXTS.iter().filter_map(|t| texts.id_of(t)) {
        eog.insert(id);
        force_control(texts, attrs, id);
    }
    for id in ALWAYS_RENDERED.iter().filter_map(|t| texts.id_of(t)) {
        attrs[id as usize] = Attr::USER_DEFINED;
    }
    eog.extend([special.eos, special.eot, special.eom].into_iter().flatten());
    drop_conflicting_eog(texts, &mut eog, attrs);
    eog
}

/// llama.cpp's two exceptions to the text-based end-of-generation list: with gpt-oss
/// style channels `<|end|>` only ends a message, and with Gemma 4 tool calls `</s>` is text.
fn drop_conflicting_eog(texts: &TokenTexts, eog: &mut BTreeSet<u32>, attrs: &mut [Attr]) {
    let find = |eog: &BTreeSet<u32>, t: &str| eog.iter().copied().find(|&id| texts.text(id) == t);
    let has = |eog: &BTreeSet<u32>, t: &str| find(eog, t).is_some();
    let has_call = has(eog, "<|call|>") || has(eog, "<|calls|>");
    let (has_return, has_flush) = (has(eog, "<|return|>"), has(eog, "<|flush|>"));
    if has_call
        && (has_return || has_flush)
        && let Some(end) = find(eog, "<|end|>")
    {
        eog.remove(&end);
        attrs[end as usize] = Attr::USER_DEFINED;
    }
    if has(eog, "<|tool_response>")
        && let Some(s) = find(eog, "</s>")
    {
        eog.remove(&s);
        attrs[s as usize] = Attr::NORMAL;
    }
}

/// Whitespace stripping around some special tokens, set by model name as llama.cpp does.
fn apply_strip_attrs(
    md: &Metadata,
    pre: Option<&str>,
    texts: &TokenTexts,
    special_cache: &[u32],
    attrs: &mut [Attr],
) -> Result<(), TokenizerError> {
    let name = md.str_opt("general.name")?.unwrap_or("").to_lowercase();
    let arch = md.str_opt("general.architecture")?.unwrap_or("");
    let pre = pre.unwrap_or("");
    let contains_any = |s: &str, subs: &[&str]| subs.iter().any(|sub| s.contains(sub));
    let set = |text: &str, attr: Attr, on: bool, attrs: &mut [Attr]| {
        if let Some(id) = texts.id_of(text) {
            let a = &mut attrs[id as usize];
            *a = if on { a.with(attr) } else { a.without(attr) };
        }
    };
    if contains_any(pre, &["jina-v2-de", "jina-v2-es", "jina-v2-code"])
        || contains_any(arch, &["nomic-bert-moe", "jina-bert-v3"])
    {
        set("<mask>", Attr::LSTRIP, true, attrs);
    } else if contains_any(&name, &["phi-3", "phi3"]) {
        for &id in special_cache {
            attrs[id as usize] = attrs[id as usize].with(Attr::RSTRIP);
        }
        set("</s>", Attr::RSTRIP, true, attrs);
        for t in ["<unk>", "<s>", "<|endoftext|>"] {
            set(t, Attr::RSTRIP, false, attrs);
        }
    } else if name.contains("modern-bert") {
        set("[MASK]", Attr::LSTRIP, true, attrs);
    }
    Ok(())
}
