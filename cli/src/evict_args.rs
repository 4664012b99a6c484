//! `--evict` and `--evict-sinks` of `run` and `chat`: keep a conversation going past the
//! context (the oldest turns leave before prefill; a full cache evicts its oldest slots
//! while decoding).

use clap::Args;
use joule_core::EvictOptions;

#[derive(Args, Clone)]
pub struct EvictArgs {
    /// Keep going past the context: drop the oldest turns, evict the oldest cache slots.
    #[arg(long)]
    evict: bool,
    /// With --evict: first cache slots never evicted (attention sinks).
    #[arg(long, default_value_t = EvictOptions::default().sinks, requires = "evict")]
    evict_sinks: usize,
}

impl EvictArgs {
    pub fn options(&self) -> Option<EvictOptions> {
        self.evict.then(|| EvictOptions { sinks: self.evict_sinks, ..EvictOptions::default() })
    }
}
