//! Stop strings: text is held back while it could still be the start of a stop string,
//! so the caller never sees any part of one.

/// Watches generated text for any of a set of stop strings.
#[derive(Debug, Clone, Default)]
pub struct StopStrings {
    stops: Vec<String>,
    pending: String,
}

impl StopStrings {
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            pending: String::new(),
        }
    }

    /// Adds `piece` and returns the text that is now safe to show, and whether a stop
    /// string was found (the text before it is returned; it and what follows are not).
    pub fn push(&mut self, piece: &str) -> (String, bool) {
        self.pending.push_str(piece);
        let first_match = self.stops.iter().filter_map(|s| self.pending.find(s.as_str())).min();
        if let Some(at) = first_match {
            let out = self.pending[..at].to_string();
            self.pending.clear();
            return (out, true);
        }
        let hold = self.longest_partial_suffix();
        let cut = self.pending.len() - hold;
        let out = self.pending[..cut].to_string();
        self.pending.drain(..cut);
        (out, false)
    }

    /// Releases text held back at the end of generation.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }

    /// Length in bytes of the longest suffix of `pending` that starts some stop string.
    fn longest_partial_suffix(&self) -> usize {
        let p = &self.pending;
        (1..=p.len())
            .rev()
            .filter(|&n| p.is_char_boundary(p.len() - n))
            .find(|&n| self.stops.iter().any(|s| s.len() > n && s.starts_with(&p[p.len() - n..])))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut m = StopStrings::new(&stops);
        let mut out = String::new();
        for p in pieces {
            let (text, hit) = m.push(p);
            out.push_str(&text);
            if hit {
                return (out, true);
            }
        }
        out.push_str(&m.finish());
        (out, false)
    }

    #[test]
    fn a_stop_split_across_pieces_is_never_shown() {
        assert_eq!(
            run(&["User:"], &["Hello", " Us", "er", ": more"]),
            ("Hello ".to_string(), true)
        );
    }

    #[test]
    fn a_false_start_is_released() {
        assert_eq!(run(&["User:"], &["Hello Us", "eless"]), ("Hello Useless".to_string(), false));
        assert_eq!(run(&["User:"], &["end U"]), ("end U".to_string(), false));
    }

    #[test]
    fn the_earliest_of_several_stops_wins_and_multibyte_is_safe() {
        assert_eq!(run(&["b", "ab"], &["xxab"]), ("xx".to_string(), true));
        assert_eq!(run(&["é!"], &["caf", "é", "?"]), ("café?".to_string(), false));
    }

    #[test]
    fn no_stops_passes_everything_through() {
        assert_eq!(run(&[], &["a", "b"]), ("ab".to_string(), false));
    }
}
