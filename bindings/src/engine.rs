//! `JouleEngine`: a loaded model shared by any number of chat sessions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use joule_core::energy::{EnergyConfig, EnergySource};
use joule_core::engine::{self, Engine, KvType, Precision};

use crate::error::JouleError;
use crate::probe::{EnergyProbe, ProbeAdapter};
use crate::records::SamplingOptions;
use crate::session::ChatSession;

/// Energy metering of every turn.
#[derive(Debug, Clone, uniffi::Record)]
pub struct EnergyOptions {
    /// "auto" (RAPL, sysfs battery, the app's probe, else an estimate), "platform" (the
    /// app's probe only), "rapl", "battery", "estimate", "none" or "trace:FILE".
    #[uniffi(default = "auto")]
    pub source: String,
    /// Seconds of idle baseline measured at load (blocks that long).
    #[uniffi(default = 0.0)]
    pub baseline_s: f64,
    #[uniffi(default = false)]
    pub subtract_baseline: bool,
    /// How often the probe or battery is read.
    #[uniffi(default = 100)]
    pub sample_interval_ms: u32,
}

impl Default for EnergyOptions {
    fn default() -> Self {
        Self {
            source: "auto".into(),
            baseline_s: 0.0,
            subtract_baseline: false,
            sample_interval_ms: 100,
        }
    }
}

/// Load-time options; every field has a default.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct EngineOptions {
    /// Tokens of context per session (None: min(model's, 4096)).
    #[uniffi(default = None)]
    pub context: Option<u32>,
    /// Compute threads (None: the performance cores).
    #[uniffi(default = None)]
    pub threads: Option<u32>,
    /// "fast" (8-bit activations, the default) or "exact".
    #[uniffi(default = None)]
    pub precision: Option<String>,
    /// KV cache type: "f32", "f16" or "q8_0" (None: f16 on the fast path, f32 on exact).
    #[uniffi(default = None)]
    pub kv_type: Option<String>,
    /// Accept a `context` above the model's trained length (quality degrades past it).
    #[uniffi(default = false)]
    pub allow_long_context: bool,
    /// Default limit of generated tokens per turn (None: 512).
    #[uniffi(default = None)]
    pub max_tokens: Option<u32>,
    /// Sampling of new sessions (None: greedy).
    #[uniffi(default = None)]
    pub sampling: Option<SamplingOptions>,
    #[uniffi(default)]
    pub energy: EnergyOptions,
}

/// What a loaded model is.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct EngineInfo {
    pub name: String,
    pub architecture: String,
    pub parameters: u64,
    pub file_bytes: u64,
    /// Tensor count per quantization type, e.g. {"Q4_1": 210, "F32": 61}.
    pub quant_types: HashMap<String, u64>,
    pub layers: u64,
    pub context_train: u64,
    pub context: u64,
    pub threads: u64,
    pub kernel: String,
    pub precision: String,
    pub has_chat_template: bool,
    /// The energy source in words, when metering is on.
    pub energy_source: Option<String>,
}

#[derive(uniffi::Object)]
pub struct JouleEngine {
    pub(crate) engine: Arc<Engine>,
}

#[uniffi::export]
impl JouleEngine {
    /// Maps and checks the model file; `probe` is the app's battery sensor, used when
    /// the energy source is "platform" (or "auto" finds nothing better).
    #[uniffi::constructor(default(probe = None))]
    pub fn load(
        path: String,
        options: EngineOptions,
        probe: Option<Arc<dyn EnergyProbe>>,
    ) -> Result<Arc<Self>, JouleError> {
        crate::guard("load", || {
            let core = core_options(&options, probe)?;
            Ok(Arc::new(Self { engine: Engine::load(&path, core)? }))
        })
    }

    pub fn info(&self) -> Result<EngineInfo, JouleError> {
        crate::guard("info", || {
            let i = self.engine.info();
            Ok(EngineInfo {
                name: i.name,
                architecture: i.architecture,
                parameters: i.parameters,
                file_bytes: i.file_bytes,
                quant_types: i.tensor_types.into_iter().map(|(k, v)| (k, v as u64)).collect(),
                layers: i.n_layers as u64,
                context_train: i.context_train as u64,
                context: i.context as u64,
                threads: i.threads as u64,
                kernel: i.kernel,
                precision: i.precision,
                has_chat_template: i.has_chat_template,
                energy_source: self.engine.energy_meter().map(|m| m.source_description().into()),
            })
        })
    }

    /// A new conversation with its own context; any number may exist at once.
    pub fn new_session(&self) -> Result<Arc<ChatSession>, JouleError> {
        crate::guard("new_session", || Ok(Arc::new(ChatSession::new(&self.engine)?)))
    }
}

fn core_options(
    o: &EngineOptions,
    probe: Option<Arc<dyn EnergyProbe>>,
) -> Result<engine::EngineOptions, JouleError> {
    let mut core = engine::EngineOptions {
        context: o.context.map(|c| c as usize),
        allow_long_context: o.allow_long_context,
        threads: o.threads.map(|t| t as usize),
        energy: energy_config(&o.energy, probe)?,
        ..Default::default()
    };
    if let Some(p) = &o.precision {
        core.precision = p.parse::<Precision>()?;
    }
    if let Some(k) = &o.kv_type {
        core.kv_type = Some(k.parse::<KvType>()?);
    }
    if let Some(n) = o.max_tokens {
        core.max_tokens = n as usize;
    }
    if let Some(s) = &o.sampling {
        core.sampling = s.into();
    }
    Ok(core)
}

fn energy_config(
    o: &EnergyOptions,
    probe: Option<Arc<dyn EnergyProbe>>,
) -> Result<Option<EnergyConfig>, JouleError> {
    let probe =
        probe.map(|p| Arc::new(ProbeAdapter(p)) as Arc<dyn joule_core::energy::PlatformProbe>);
    let source = match (o.source.trim(), &probe) {
        ("none", _) => return Ok(None),
        ("platform", Some(p)) => EnergySource::Platform(Arc::clone(p)),
        ("platform", None) => {
            return Err(JouleError::InvalidArgument(
                "energy source \"platform\" needs a probe".into(),
            ));
        }
        (other, _) => other.parse().map_err(|e| JouleError::InvalidArgument(format!("{e}")))?,
    };
    if o.sample_interval_ms == 0 {
        return Err(JouleError::InvalidArgument("sample interval must be at least 1 ms".into()));
    }
    Ok(Some(EnergyConfig {
        source,
        sample_interval: Duration::from_millis(o.sample_interval_ms.into()),
        baseline_s: o.baseline_s,
        subtract_baseline: o.subtract_baseline,
        probe,
        ..EnergyConfig::default()
    }))
}
