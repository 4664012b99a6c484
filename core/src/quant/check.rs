//! A cheap load-time check of quantized weights: every block's float scales (and every
//! value of a float tensor) must be finite. A NaN scale makes every weight of its block
//! NaN, which otherwise shows only as an empty answer.

use half::{bf16, f16};

use super::GgmlType;

/// Offsets of the f16 scales inside one block of `ty` (`None`: not a block format here).
fn f16_scale_offsets(ty: GgmlType) -> Option<&'static [usize]> {
    use GgmlType::*;
    Some(match ty {
        Q4_0 | Q5_0 | Q8_0 => &[0],
        Q4_1 | Q5_1 | Q4_K | Q5_K => &[0, 2],
        // block_q6_K: ql[128], qh[64], scales[16], then d.
        Q6_K => &[208],
        _ => return None,
    })
}

/// The index of the first element (float types) or block (quantized types) whose value or
/// scale is NaN or infinite, or `None` when all are finite or the type is not checked.
pub fn first_non_finite(ty: GgmlType, bytes: &[u8]) -> Option<usize> {
    match ty {
        GgmlType::F32 => bytes
            .chunks_exact(4)
            .position(|c| !f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite()),
        GgmlType::F16 => {
            bytes.chunks_exact(2).position(|c| !f16::from_le_bytes([c[0], c[1]]).is_finite())
        }
        GgmlType::BF16 => {
            bytes.chunks_exact(2).position(|c| !bf16::from_le_bytes([c[0], c[1]]).is_finite())
        }
        _ => {
            let offsets = f16_scale_offsets(ty)?;
            bytes.chunks_exact(ty.type_size()).position(|block| {
                offsets.iter().any(|&o| !f16::from_le_bytes([block[o], block[o + 1]]).is_finite())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_nan_scale_or_value() {
        let mut q4 = vec![0u8; 18 * 3];
        assert_eq!(first_non_finite(GgmlType::Q4_0, &q4), None);
        q4[36..38].copy_from_slice(&f16::NAN.to_le_bytes());
        assert_eq!(first_non_finite(GgmlType::Q4_0, &q4), Some(2));
        let mut q6 = vec![0u8; 210 * 2];
        q6[210 + 208..210 + 210].copy_from_slice(&f16::INFINITY.to_le_bytes());
        assert_eq!(first_non_finite(GgmlType::Q6_K, &q6), Some(1));
        let f: Vec<u8> = [1.0f32, f32::NAN].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(first_non_finite(GgmlType::F32, &f), Some(1));
    }
}
