//! CPU feature tokens for the aarch64 tables, as on x86 (`x86/isa.rs`): a token can only
//! be obtained from run-time detection, so code holding one runs on a CPU with those
//! features. NEON itself is baseline on aarch64 and needs no token.

/// Proof that the CPU has FEAT_DotProd (`sdot`).
#[derive(Clone, Copy, Debug)]
pub struct DotProd(());

impl DotProd {
    /// The token, if this CPU (and OS) supports FEAT_DotProd.
    #[inline]
    pub fn detect() -> Option<Self> {
        std::arch::is_aarch64_feature_detected!("dotprod").then_some(DotProd(()))
    }
}

/// Proof that the CPU has [`DotProd`] and FEAT_I8MM (`smmla`).
#[derive(Clone, Copy, Debug)]
pub struct I8mm(DotProd);

impl I8mm {
    /// The token, if this CPU (and OS) supports FEAT_DotProd and FEAT_I8MM.
    #[inline]
    pub fn detect() -> Option<Self> {
        let base = DotProd::detect()?;
        std::arch::is_aarch64_feature_detected!("i8mm").then_some(I8mm(base))
    }
}
