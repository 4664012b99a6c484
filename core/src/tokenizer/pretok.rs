//! The pre-tokenizer of a byte-level BPE vocabulary, chosen by `tokenizer.ggml.pre`.
//!
//! Text is split by a sequence of regexes: each one splits every piece the previous one
//! left, and both the matches and the gaps between them become pieces. The tables and
//! the per-name flags follow llama.cpp (src/llama-vocab.cpp), which adapted the
//! upstream tokenizer.json patterns to regex engines without `(?i:...)`.

/// GPT-2's pattern as llama.cpp spells it, without the trailing `|\s+`: a lone whitespace
/// character that nothing matches still becomes a piece of its own, as a gap.
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";

const LLAMA3: &str = concat!(
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|",
    r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|",
    r"\s*[\r\n]+|\s+(?!\S)|\s+",
);

const QWEN2: &str = concat!(
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|",
    r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|",
    r"\s*[\r\n]+|\s+(?!\S)|\s+",
);

const QWEN35: &str = concat!(
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|",
    r"[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|",
    r"\s*[\r\n]+|\s+(?!\S)|\s+",
);

const SEED_CODER: &str = concat!(
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|",
    r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|",
    r"\s*[\r\n]+|\s+(?!\S)|\s+",
);

const BAILINGMOE: &str = concat!(
    r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|",
    r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|",
    r"\s*[\r\n]|\s+(?!\S)|\s+",
);

/// Upper/lower-case runs written with lookaheads (llama.cpp's form of `\p{Lu}` runs).
const TEKKEN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|",
    r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|",
    r"\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
);

const GPT4O: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+",
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|",
    r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*",
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|",
    r"\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
);

const BLOOM: &str = r" ?[^(\s|.,!?…。，、।۔،)]+";

const DEEPSEEK_CJK: &str = r"[一-龥ࠀ-一가-퟿]+";

const DEEPSEEK_LLM_LETTERS: &str = concat!(
    r"\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}",
    r"\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}",
    r"\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}",
    r"\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}",
    r"\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}",
    r"\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}",
    r"\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}",
    r"\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}",
    r"\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}",
    r"\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}",
    r"\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}",
    r"\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}",
    r"\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}",
    r"\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+",
);

const DEEPSEEK3_MAIN: &str = concat!(
    r##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|"##,
    r"[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
);

/// What a `tokenizer.ggml.pre` name selects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PreTokenizerSpec {
    /// The name the spec was chosen for (or the fallback's name).
    pub name: String,
    pub regexes: &'static [&'static str],
    /// Apply llama.cpp's `clean_spaces` pass when detokenizing.
    pub clean_spaces: bool,
    /// A whole pre-token that is itself in the vocabulary is emitted without merging.
    pub ignore_merges: bool,
    /// llama.cpp's default for `add_bos` with this pre-tokenizer (metadata may override).
    pub add_bos: bool,
    /// The family has no BOS token by default (GLM).
    pub no_default_bos: bool,
}

impl PreTokenizerSpec {
    fn new(name: &str, regexes: &'static [&'static str]) -> Self {
        Self {
            name: name.to_string(),
            regexes,
            clean_spaces: true,
            ignore_merges: false,
            add_bos: false,
            no_default_bos: false,
        }
    }

    fn keep_spaces(mut self) -> Self {
        self.clean_spaces = false;
        self
    }

    fn llama3_like(mut self) -> Self {
        self.ignore_merges = true;
        self.add_bos = true;
        self
    }
}

/// The pre-tokenizer for a `tokenizer.ggml.pre` value. A missing value selects
/// llama.cpp's "default" set; an unknown one falls back to GPT-2's pattern (llama.cpp
/// refuses such a file) with a warning.
pub(crate) fn spec_for(pre: Option<&str>) -> PreTokenizerSpec {
    const DEFAULT: &[&str] = &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"];
    const GPT2_SET: &[&str] = &[GPT2];
    const STARCODER: &[&str] = &[r"\p{N}", GPT2];
    const FALCON: &[&str] = &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, r"[0-9][0-9][0-9]"];
    const DEEPSEEK_LLM: &[&str] = &[
        r"[\r\n]",
        DEEPSEEK_LLM_LETTERS,
        r"\s?[!-/:-~！-／：-～‘-‟　-。]+",
        r"\s+$",
        DEEPSEEK_CJK,
        r"\p{N}+",
    ];
    const DEEPSEEK_CODER: &[&str] =
        &[r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", DEEPSEEK_CJK, r"\p{N}"];
    const DEEPSEEK3: &[&str] = &[r"\p{N}{1,3}", r"[一-龥぀-ゟ゠-ヿ]+", DEEPSEEK3_MAIN];
    const VIKING: &[&str] = &[BLOOM, r"\p{N}"];
    const CHAMELEON: &[&str] = &[
        r"<sentinel:[0-9]+>",
        r"(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
        r"([\t\n]|    |  )",
        r"\p{N}",
        r"[\p{P}!-/:-@\[-`{-~]",
        GPT2,
    ];

    let Some(name) = pre else {
        log::warn!("tokenizer.ggml.pre is missing: using llama.cpp's default pre-tokenizer");
        return PreTokenizerSpec::new("default", DEFAULT);
    };
    let spec = PreTokenizerSpec::new;
    match name {
        "default" => spec(name, DEFAULT),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" => spec(name, &[LLAMA3]).llama3_like(),
        "dbrx" | "smaug-bpe" => spec(name, &[LLAMA3]),
        "glm4" | "chatglm-bpe" => {
            PreTokenizerSpec { no_default_bos: true, ..spec(name, &[LLAMA3]) }
        }
        "deepseek-llm" => spec(name, DEEPSEEK_LLM).keep_spaces(),
        "deepseek-coder" => spec(name, DEEPSEEK_CODER).keep_spaces(),
        "deepseek-v3" => spec(name, DEEPSEEK3).keep_spaces(),
        "falcon" => spec(name, FALCON),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
        | "a.x-4.0" | "mellum" | "modern-bert" | "jina-v1-en" | "jina-v2-code" | "roberta-bpe"
        | "mpt" | "olmo" | "jais" | "exaone4" => spec(name, GPT2_SET),
        "trillion" | "granite-docling" => spec(name, GPT2_SET).keep_spaces(),
        "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => {
            spec(name, STARCODER)
        }
        "smollm" | "command-r" => spec(name, STARCODER).keep_spaces(),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "hunyuan" | "solar-open"
        | "grok-2" => spec(name, &[QWEN2]).keep_spaces(),
        "stablelm2" | "megrez" => spec(name, &[QWEN2]),
        "qwen35" => spec(name, &[QWEN35]).keep_spaces(),
        "poro-chat" => spec(name, &[BLOOM]).keep_spaces(),
        "bloom" | "gpt3-finnish" => spec(name, &[BLOOM]),
        "viking" => spec(name, VIKING).keep_spaces(),
        "tekken" => spec(name, &[TEKKEN]).keep_spaces().llama3_like(),
        "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => {
            spec(name, &[GPT4O]).keep_spaces()
        }
        "chameleon" => PreTokenizerSpec { add_bos: true, ..spec(name, CHAMELEON).keep_spaces() },
        "seed-coder" => spec(name, &[SEED_CODER]).keep_spaces(),
        "bailingmoe" | "bailingmoe2" | "llada-moe" => spec(name, &[BAILINGMOE]).keep_spaces(),
        other => {
            log::warn!(
                "unknown tokenizer.ggml.pre '{other}': falling back to the GPT-2 pre-tokenizer; \
                 tokenization may differ from the model's own"
            );
            spec(other, GPT2_SET)
        }
    }
}

#[cfg(test)]
const KNOWN_NAMES: &[&str] = &[
    "default",
    "llama3",
    "llama-v3",
    "llama-bpe",
    "falcon3",
    "falcon-h1",
    "pixtral",
    "midm-2.0",
    "lfm2",
    "dbrx",
    "smaug-bpe",
    "glm4",
    "chatglm-bpe",
    "deepseek-llm",
    "deepseek-coder",
    "deepseek-v3",
    "falcon",
    "gpt-2",
    "phi-2",
    "jina-es",
    "jina-de",
    "gigachat",
    "jina-v2-es",
    "jina-v2-de",
    "a.x-4.0",
    "mellum",
    "modern-bert",
    "jina-v1-en",
    "jina-v2-code",
    "roberta-bpe",
    "mpt",
    "olmo",
    "jais",
    "exaone4",
    "trillion",
    "granite-docling",
    "starcoder",
    "refact",
    "codeshell",
    "exaone",
    "minerva-7b",
    "mellum2",
    "smollm",
    "command-r",
    "qwen2",
    "deepseek-r1-qwen",
    "kormo",
    "f2llmv2",
    "hunyuan",
    "solar-open",
    "grok-2",
    "stablelm2",
    "megrez",
    "qwen35",
    "poro-chat",
    "bloom",
    "gpt3-finnish",
    "viking",
    "tekken",
    "gpt-4o",
    "llama4",
    "kanana2",
    "talkie",
    "minimax-m2",
    "chameleon",
    "seed-coder",
    "bailingmoe",
    "bailingmoe2",
    "llada-moe",
];

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::SplitDelimiterBehavior;
    use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
    use tokenizers::utils::SysRegex;

    #[test]
    fn every_known_pattern_compiles() {
        for &name in KNOWN_NAMES {
            let spec = spec_for(Some(name));
            assert_eq!(spec.name, name);
            for &pattern in spec.regexes {
                let regex = SplitPattern::Regex(pattern.into());
                let split = Split::new(regex, SplitDelimiterBehavior::Isolated, false);
                assert!(split.is_ok(), "{name}: {pattern:?} does not compile");
            }
        }
    }

    #[test]
    fn missing_and_unknown_names() {
        assert_eq!(spec_for(None).name, "default");
        assert_eq!(spec_for(None).regexes.len(), 4);
        let unknown = spec_for(Some("brand-new"));
        assert_eq!((unknown.name.as_str(), unknown.regexes), ("brand-new", &[GPT2][..]));
        assert!(spec_for(Some("llama-bpe")).ignore_merges && spec_for(Some("llama-bpe")).add_bos);
        assert!(!spec_for(Some("smollm")).clean_spaces && spec_for(Some("gpt-2")).clean_spaces);
        assert!(spec_for(Some("chatglm-bpe")).no_default_bos);
    }

    #[test]
    fn deepseek_letter_class_uses_the_compatibility_letters() {
        // Ohm (U+2126) and Kelvin (U+212A) signs, not Greek omega or ASCII K ranges.
        let regex = SysRegex::new(DEEPSEEK_LLM_LETTERS).expect("compiles");
        let whole = |text: &str| regex.find_iter(text).collect::<Vec<_>>() == [(0, text.len())];
        assert!(whole("\u{2126}") && whole("\u{212A}") && whole("\u{1F7D}") && whole(" abc"));
        assert!(!whole("\u{2125}") && !whole("1") && !whole("\u{4E00}") && !whole("\u{294}"));
    }
}
