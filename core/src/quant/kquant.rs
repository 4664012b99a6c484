//! Shared pieces of ggml's reference quantizers: rounding, the scale searches used by the
//! k-quants (and nothing else), and the 6-bit scale/min packing of Q4_K and Q5_K.
//!
//! Every float operation is written in the same order as ggml's C reference (compiled
//! without FMA contraction), so that the same input gives the same bits.

/// ggml's `nearest_int`: round to nearest, ties to even (it adds 1.5 * 2^23 and reads
/// the mantissa, which is exact for |x| < 2^22; out of that range ggml's result is
/// meaningless and ours saturates).
#[inline]
pub(crate) fn nearest_int(x: f32) -> i32 {
    x.round_ties_even() as i32
}

/// Below this, a group is treated as all zeros (ggml's `GROUP_MAX_EPS`).
pub(crate) const GROUP_MAX_EPS: f32 = 1e-15;

/// ggml's `make_qkx2_quants`: fits `x ≈ scale * L - the_min` with `L` in `0..=nmax`,
/// minimising the weighted squared error over a small grid of trial scales.
/// Writes the levels to `levels` and returns `(scale, the_min)`; `the_min >= 0`.
///
/// `rmin`, `rdelta` and `nstep` define the trial inverse scales
/// `(rmin + rdelta * is + nmax) / (max - min)` for `is` in `0..=nstep`.
pub(crate) fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    levels: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> (f32, f32) {
    let n = x.len();
    debug_assert!(weights.len() == n && levels.len() == n && n > 0 && n <= 32);
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        levels.fill(0);
        return (0.0, -min);
    }
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        levels[i] = l as u8;
        let diff = scale * l as f32 + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    let mut trial = [0u8; 32];
    let trial = &mut trial[..n];
    for is in 0..=nstep {
        // `min` may have moved to a better fit in an earlier step; ggml reuses it.
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            trial[i] = l as u8;
            let w = weights[i];
            let lf = l as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..n {
                let diff = this_scale * trial[i] as f32 + this_min - x[i];
                cur_error += weights[i] * (diff * diff);
            }
            if cur_error < best_error {
                levels.copy_from_slice(trial);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// ggml's `make_qx_quants` with `rmse_type == 1` and no importance weights (the only
/// form the reference quantizers use): fits `x ≈ scale * (L - nmax)` with `L` in
/// `0..2*nmax`, weighting each element by `x²`, and tries 18 scales around `nmax/max`.
/// Writes `L` (already offset by `nmax`) to `levels` and returns the scale, which
/// has the sign that maps the largest-magnitude element to `-nmax`.
pub(crate) fn make_qx_quants(nmax: i32, x: &[f32], levels: &mut [i8]) -> f32 {
    let n = x.len();
    debug_assert!(levels.len() == n);
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        levels.fill(0);
        return 0.0;
    }
    let quantize = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    let mut iscale = -(nmax as f32) / max;
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for i in 0..n {
        let l = quantize(iscale, x[i]);
        levels[i] = (l + nmax) as i8;
        let w = x[i] * x[i];
        let lf = l as f32;
        sumlx += w * x[i] * lf;
        suml2 += w * lf * lf;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &v in x {
            let lf = quantize(iscale, v) as f32;
            let w = v * v;
            sumlx += w * v * lf;
            suml2 += w * lf * lf;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for i in 0..n {
                levels[i] = (quantize(iscale, x[i]) + nmax) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Unpacks sub-block `j` (0..8) of the 12-byte scale field of Q4_K/Q5_K into its
/// 6-bit `(scale, min)`. Sub-blocks 0..4 keep their low 6 bits in bytes `j` and `j+4`;
/// sub-blocks 4..8 keep their low 4 bits in byte `j+4` and their top 2 bits in the
/// spare top bits of bytes `j-4` (scale) and `j` (min).
#[inline]
pub(crate) fn scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// Packs eight 6-bit `(scale, min)` pairs into the 12-byte layout [`scale_min_k4`] reads.
pub(crate) fn pack_scale_min_k4(scales: &[u8; 8], mins: &[u8; 8]) -> [u8; 12] {
    let mut q = [0u8; 12];
    for j in 0..8 {
        let (ls, lm) = (scales[j] & 63, mins[j] & 63);
        if j < 4 {
            q[j] |= ls;
            q[j + 4] |= lm;
        } else {
            q[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            q[j - 4] |= (ls >> 4) << 6;
            q[j] |= (lm >> 4) << 6;
        }
    }
    q
}

/// The part of ggml's `quantize_row_q{4,5}_K_ref` shared by Q4_K and Q5_K: per
/// 32-element sub-block scale search, 6-bit quantization of scales and mins, and the
/// final requantization against the stored (f16-rounded) scales. Returns
/// `(d, dmin, packed scales, levels in 0..=nmax per element)`.
pub(crate) fn quantize_superblock_with_mins(
    x: &[f32],
    nmax: i32,
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> (half::f16, half::f16, [u8; 12], [u8; crate::quant::QK_K]) {
    use half::f16;
    debug_assert_eq!(x.len(), crate::quant::QK_K);
    let mut levels = [0u8; crate::quant::QK_K];
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0.0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        let mut weights = [0f32; 32];
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        let (scale, the_min) = make_qkx2_quants(
            nmax,
            xs,
            &weights,
            &mut levels[32 * j..32 * j + 32],
            rmin,
            rdelta,
            nstep,
        );
        scales[j] = scale;
        mins[j] = the_min;
        if scale > max_scale {
            max_scale = scale;
        }
        if the_min > max_min {
            max_min = the_min;
        }
    }
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut ls = [0u8; 8];
    let mut lm = [0u8; 8];
    for j in 0..8 {
        // ggml stores the int into a uint8_t (wrapping) before clamping to 63.
        ls[j] = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        lm[j] = (nearest_int(inv_min * mins[j]) as u8).min(63);
    }
    let packed = pack_scale_min_k4(&ls, &lm);
    let d = f16::from_f32(max_scale / 63.0);
    let dmin = f16::from_f32(max_min / 63.0);
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, &packed);
        let dj = d.to_f32() * sc as f32;
        if dj == 0.0 {
            continue;
        }
        let mj = dmin.to_f32() * m as f32;
        for i in 32 * j..32 * j + 32 {
            levels[i] = nearest_int((x[i] + mj) / dj).clamp(0, nmax) as u8;
        }
    }
    (d, dmin, packed, levels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_ties_to_even() {
        assert_eq!(nearest_int(0.5), 0);
        assert_eq!(nearest_int(1.5), 2);
        assert_eq!(nearest_int(2.5), 2);
        assert_eq!(nearest_int(-0.5), 0);
        assert_eq!(nearest_int(-1.5), -2);
        assert_eq!(nearest_int(-2.4999), -2);
        assert_eq!(nearest_int(4194303.0), 4194303);
    }

    #[test]
    fn scale_min_packing_round_trips_all_six_bit_values() {
        for base in 0..64usize {
            let scales: [u8; 8] = std::array::from_fn(|j| ((base + 7 * j) % 64) as u8);
            let mins: [u8; 8] = std::array::from_fn(|j| ((base * 3 + 11 * j) % 64) as u8);
            let packed = pack_scale_min_k4(&scales, &mins);
            for j in 0..8 {
                assert_eq!(scale_min_k4(j, &packed), (scales[j], mins[j]), "base {base} j {j}");
            }
        }
    }

    #[test]
    fn make_qx_quants_reproduces_values_on_its_grid() {
        // x = 0.25 * (L - 32) with L spanning the grid: the search must find scale 0.25
        // up to sign and the exact levels.
        let x: Vec<f32> = (0..16).map(|i| 0.25 * (i as f32 * 4.0 - 32.0)).collect();
        let mut levels = [0i8; 16];
        let scale = make_qx_quants(32, &x, &mut levels);
        for i in 0..16 {
            let back = scale * (levels[i] as f32 - 32.0);
            assert!((back - x[i]).abs() < 1e-6, "i {i}: {back} vs {}", x[i]);
        }
    }

    #[test]
    fn make_qkx2_quants_fits_an_affine_grid_exactly() {
        // x = 0.5 * L - 3 for L in 0..=15 repeated: exactly representable.
        let x: Vec<f32> = (0..32).map(|i| 0.5 * (i % 16) as f32 - 3.0).collect();
        let weights = vec![1.0f32; 32];
        let mut levels = [0u8; 32];
        let (scale, the_min) = make_qkx2_quants(15, &x, &weights, &mut levels, -1.0, 0.1, 20);
        for i in 0..32 {
            let back = scale * levels[i] as f32 - the_min;
            assert!((back - x[i]).abs() < 1e-5, "i {i}: {back} vs {}", x[i]);
        }
    }
}
