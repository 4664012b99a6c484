//! Long-context tasks for `joule eval prune`, generated from templates with seeds: a pass
//! key hidden in filler text, one of several planted facts, and a detail from the first
//! turn of a 20-turn chat. Each case knows its answer, so accuracy needs no judge.

use serde::{Deserialize, Serialize};

use crate::chat::ChatMessage;

/// A task family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// A five-digit pass key at a depth of the filler; the prompt ends "The pass key is".
    Passkey,
    /// Four "X's favourite Y is Z" facts; one, at the depth, is asked.
    Facts,
    /// A code given in the first turn of a 20-turn chat, asked in the last.
    ChatRecall,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::Passkey => "passkey",
            Task::Facts => "facts",
            Task::ChatRecall => "chat_recall",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Task::Passkey, Task::Facts, Task::ChatRecall].into_iter().find(|t| t.name() == s)
    }
}

/// What the model is given: raw text to continue, or a conversation whose last message
/// is the question.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    Raw(String),
    Chat(Vec<ChatMessage>),
}

/// One generated case.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub prompt: Prompt,
    /// The answer is right when the generated text contains this.
    pub answer: String,
}

/// A small deterministic generator (SplitMix64): the same seed gives the same case on
/// every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Filler sentences: plain, repetitive, and free of numbers.
const FILLER: [&str; 6] = [
    "The river runs slowly past the old mill.",
    "In the morning the hills are quiet.",
    "A cart rolls along the dusty road.",
    "Birds sit in a row on the long fence.",
    "The baker opens the shop before dawn.",
    "Clouds drift over the fields and away.",
];

const NAMES: [&str; 8] = ["Lena", "Omar", "Priya", "Tomas", "Aiko", "Bruno", "Nadia", "Felix"];
const THINGS: [(&str, [&str; 6]); 4] = [
    ("fruit", ["plum", "mango", "fig", "pear", "kiwi", "apricot"]),
    ("colour", ["green", "violet", "orange", "teal", "crimson", "amber"]),
    ("animal", ["otter", "falcon", "badger", "lynx", "heron", "gecko"]),
    ("city", ["Lisbon", "Oslo", "Nairobi", "Kyoto", "Quito", "Tallinn"]),
];

/// Filler of about `sentences` sentences, starting at a seed-dependent sentence.
fn filler(rng: &mut Rng, sentences: usize) -> Vec<String> {
    let start = rng.below(FILLER.len());
    (0..sentences).map(|i| FILLER[(start + i) % FILLER.len()].to_string()).collect()
}

/// Inserts `needle` after the fraction `depth` of `sentences`.
fn plant(sentences: &mut Vec<String>, depth: f64, needle: String) {
    let at = ((sentences.len() as f64 * depth).round() as usize).min(sentences.len());
    sentences.insert(at, needle);
}

/// A case of `task` whose prompt has about `sentences` filler sentences (the caller
/// sizes it to a token length), with the asked detail at `depth` (0..=1).
pub fn case(task: Task, sentences: usize, depth: f64, seed: u64) -> Case {
    let mut rng = Rng(seed ^ ((task as u64) << 32));
    match task {
        Task::Passkey => passkey(&mut rng, sentences, depth),
        Task::Facts => facts(&mut rng, sentences, depth),
        Task::ChatRecall => chat_recall(&mut rng),
    }
}

fn passkey(rng: &mut Rng, sentences: usize, depth: f64) -> Case {
    let key = 10_000 + rng.below(90_000);
    let mut text = filler(rng, sentences);
    plant(&mut text, depth, format!("The pass key is {key}. Remember it: {key} is the pass key."));
    let prompt = format!(
        "A pass key is hidden somewhere in the text below. Read all of it and remember the \
         pass key: you will be asked for it at the end.\n\n{}\n\nWhat is the pass key? The \
         pass key is",
        text.join(" ")
    );
    Case { prompt: Prompt::Raw(prompt), answer: key.to_string() }
}

fn facts(rng: &mut Rng, sentences: usize, depth: f64) -> Case {
    let mut text = filler(rng, sentences);
    let first = rng.below(NAMES.len());
    let mut asked = None;
    // Four facts about four people and four kinds of thing; the asked one at `depth`,
    // the others spread evenly.
    for i in 0..4 {
        let name = NAMES[(first + i) % NAMES.len()];
        let (kind, values) = THINGS[i];
        let value = values[rng.below(values.len())];
        let at = if i == 0 { depth } else { (i as f64 + 0.5) / 4.0 };
        plant(&mut text, at, format!("{name}'s favourite {kind} is {value}."));
        if i == 0 {
            asked = Some((name, kind, value));
        }
    }
    let (name, kind, value) = asked.unwrap_or(("Lena", "fruit", "plum"));
    let prompt = format!(
        "Read the notes below; a question about one of the people in them follows.\n\n{}\n\n\
         Question: What is {name}'s favourite {kind}?\nAnswer: {name}'s favourite {kind} is",
        text.join(" ")
    );
    Case { prompt: Prompt::Raw(prompt), answer: value.to_string() }
}

/// Small talk for the middle turns.
const SMALL_TALK: [(&str, &str); 6] = [
    ("What should I cook tonight?", "A simple vegetable soup is warm and quick to make."),
    ("Any tip for sleeping better?", "Keep the room dark and go to bed at the same time."),
    ("How do I keep basil alive?", "Give it sun, water it when the soil is dry, pinch the tips."),
    ("Suggest a short walk route.", "Follow the river path to the bridge and come back."),
    ("What is a good stretch?", "Reach for your toes slowly and hold it for a few breaths."),
    ("How can I focus better?", "Work in short blocks with a break after each one."),
];

fn chat_recall(rng: &mut Rng) -> Case {
    let code = 1000 + rng.below(9000);
    let mut messages = vec![
        ChatMessage::user(format!("Please remember this: my locker code is {code}.")),
        ChatMessage::assistant(format!("Noted: your locker code is {code}.")),
    ];
    let start = rng.below(SMALL_TALK.len());
    for i in 0..18 {
        let (q, a) = SMALL_TALK[(start + i) % SMALL_TALK.len()];
        messages.push(ChatMessage::user(q));
        messages.push(ChatMessage::assistant(a));
    }
    messages.push(ChatMessage::user("What is my locker code? Answer with the number."));
    Case { prompt: Prompt::Chat(messages), answer: code.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_reproducible_and_hold_their_answer() {
        for task in [Task::Passkey, Task::Facts, Task::ChatRecall] {
            let a = case(task, 40, 0.5, 7);
            assert_eq!(a, case(task, 40, 0.5, 7));
            assert_ne!(a, case(task, 40, 0.5, 8));
            let text = match &a.prompt {
                Prompt::Raw(t) => t.clone(),
                Prompt::Chat(m) => m[..2].iter().map(|m| m.content.clone()).collect(),
            };
            assert!(text.contains(&a.answer), "{task:?}");
        }
    }

    #[test]
    fn the_needle_sits_at_its_depth() {
        for depth in [0.1, 0.5, 0.9] {
            let Prompt::Raw(text) = case(Task::Passkey, 100, depth, 1).prompt else { panic!() };
            let at = text.find("The pass key is").unwrap() as f64 / text.len() as f64;
            assert!((at - depth).abs() < 0.06, "depth {depth}: at {at}");
        }
    }
}
