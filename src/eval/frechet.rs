//! Fréchet distance between two sets of feature vectors, each summarised by its mean and
//! covariance (as in FID, here over hand-made page features instead of network activations):
//!
//! `d² = |mu1 - mu2|² + Tr(S1 + S2 - 2 (S1 S2)^½)`.
//!
//! The square-root term uses `Tr((S1 S2)^½) = Tr((S1^½ S2 S1^½)^½)`, where the inner matrix
//! is symmetric positive semi-definite, so everything reduces to symmetric eigenproblems,
//! solved by cyclic Jacobi rotations in f64. That is exact to rounding and plenty fast for
//! the small dimensions used here.

use crate::error::{Error, Result};

/// Largest feature dimension accepted; Jacobi sweeps cost O(d³) each.
pub const MAX_DIMENSION: usize = 64;

/// Squared Fréchet distance between the Gaussians fitted to sets `a` and `b` of feature
/// vectors (sample means, covariances with the unbiased `n - 1` denominator).
///
/// Fails with an input error unless both sets hold at least two vectors, all of one length
/// between 1 and [`MAX_DIMENSION`], with finite entries. Covariances that are singular
/// (e.g. a feature constant over a set) are fine.
pub fn frechet_distance<A: AsRef<[f64]>, B: AsRef<[f64]>>(a: &[A], b: &[B]) -> Result<f64> {
    let dim = check_set(a, "first")?;
    let dim_b = check_set(b, "second")?;
    if dim != dim_b {
        return Err(Error::input(format!(
            "Fréchet distance: the first set has {dim} features per vector, the second {dim_b}"
        )));
    }
    let (mean_a, cov_a) = moments(a, dim);
    let (mean_b, cov_b) = moments(b, dim);
    let mean_term: f64 = mean_a.iter().zip(&mean_b).map(|(x, y)| (x - y).powi(2)).sum();
    let root_a = sqrt_psd(&cov_a, dim);
    let inner = symmetrised(mat_mul(&mat_mul(&root_a, &cov_b, dim), &root_a, dim), dim);
    let (eigenvalues, _) = jacobi_eigen(&inner, dim);
    let cross: f64 = without_noise(eigenvalues).iter().map(|&l| l.sqrt()).sum();
    let value = mean_term + trace(&cov_a, dim) + trace(&cov_b, dim) - 2.0 * cross;
    // Rounding can leave a tiny negative value for (nearly) identical sets.
    Ok(value.max(0.0))
}

/// The common vector length of a set, after checking the set is usable.
fn check_set<V: AsRef<[f64]>>(set: &[V], which: &str) -> Result<usize> {
    if set.len() < 2 {
        return Err(Error::input(format!(
            "Fréchet distance: the {which} set has {} vectors, at least 2 are needed for a \
             covariance",
            set.len()
        )));
    }
    let dim = set[0].as_ref().len();
    if dim == 0 || dim > MAX_DIMENSION {
        return Err(Error::input(format!(
            "Fréchet distance: {dim} features per vector in the {which} set, expected 1 to \
             {MAX_DIMENSION}"
        )));
    }
    for (i, vector) in set.iter().enumerate() {
        let vector = vector.as_ref();
        if vector.len() != dim {
            return Err(Error::input(format!(
                "Fréchet distance: vector {i} of the {which} set has {} features, vector 0 has \
                 {dim}",
                vector.len()
            )));
        }
        if let Some(j) = vector.iter().position(|v| !v.is_finite()) {
            return Err(Error::input(format!(
                "Fréchet distance: feature {j} of vector {i} in the {which} set is {}",
                vector[j]
            )));
        }
    }
    Ok(dim)
}

/// Sample mean and covariance (row-major `dim x dim`, `n - 1` denominator).
fn moments<V: AsRef<[f64]>>(set: &[V], dim: usize) -> (Vec<f64>, Vec<f64>) {
    let n = set.len() as f64;
    let mut mean = vec![0.0; dim];
    for vector in set {
        for (m, v) in mean.iter_mut().zip(vector.as_ref()) {
            *m += v / n;
        }
    }
    let mut cov = vec![0.0; dim * dim];
    for vector in set {
        let centred: Vec<f64> = vector.as_ref().iter().zip(&mean).map(|(v, m)| v - m).collect();
        for i in 0..dim {
            for j in 0..dim {
                cov[i * dim + j] += centred[i] * centred[j];
            }
        }
    }
    let denominator = (n - 1.0).max(1.0);
    cov.iter_mut().for_each(|c| *c /= denominator);
    (mean, cov)
}

fn trace(matrix: &[f64], dim: usize) -> f64 {
    (0..dim).map(|i| matrix[i * dim + i]).sum()
}

/// Product of two row-major `dim x dim` matrices.
fn mat_mul(a: &[f64], b: &[f64], dim: usize) -> Vec<f64> {
    let mut out = vec![0.0; dim * dim];
    for i in 0..dim {
        for k in 0..dim {
            let aik = a[i * dim + k];
            for j in 0..dim {
                out[i * dim + j] += aik * b[k * dim + j];
            }
        }
    }
    out
}

/// `(M + Mᵀ) / 2`: removes the asymmetry rounding leaves in products of symmetric matrices.
fn symmetrised(mut matrix: Vec<f64>, dim: usize) -> Vec<f64> {
    for i in 0..dim {
        for j in (i + 1)..dim {
            let mean = 0.5 * (matrix[i * dim + j] + matrix[j * dim + i]);
            matrix[i * dim + j] = mean;
            matrix[j * dim + i] = mean;
        }
    }
    matrix
}

/// Eigenvalues with rounding noise around zero set to zero. A positive semi-definite
/// matrix's zero eigenvalues come out as about ±eps·|M|, and the square root would blow such
/// noise up to about 1e-8·|M|^½.
fn without_noise(mut eigenvalues: Vec<f64>) -> Vec<f64> {
    let largest = eigenvalues.iter().fold(0.0f64, |m, l| m.max(l.abs()));
    let floor = largest * eigenvalues.len() as f64 * f64::EPSILON * 8.0;
    for l in &mut eigenvalues {
        if *l <= floor {
            *l = 0.0;
        }
    }
    eigenvalues
}

/// Principal square root of a symmetric positive semi-definite matrix.
fn sqrt_psd(matrix: &[f64], dim: usize) -> Vec<f64> {
    let (eigenvalues, vectors) = jacobi_eigen(matrix, dim);
    let roots: Vec<f64> = without_noise(eigenvalues).iter().map(|l| l.sqrt()).collect();
    let mut out = vec![0.0; dim * dim];
    for i in 0..dim {
        for j in 0..dim {
            out[i * dim + j] =
                (0..dim).map(|k| vectors[i * dim + k] * roots[k] * vectors[j * dim + k]).sum();
        }
    }
    out
}

/// Eigenvalues and eigenvectors of a symmetric row-major `dim x dim` matrix by cyclic Jacobi
/// rotations: `matrix = V diag(values) Vᵀ`, eigenvector `k` being column `k` of `V` (returned
/// row-major). Values are in no particular order.
fn jacobi_eigen(matrix: &[f64], dim: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = matrix.to_vec();
    let mut v: Vec<f64> =
        (0..dim * dim).map(|i| if i / dim == i % dim { 1.0 } else { 0.0 }).collect();
    let scale: f64 = a.iter().map(|x| x * x).sum();
    for _sweep in 0..100 {
        let off: f64 = (0..dim)
            .flat_map(|p| ((p + 1)..dim).map(move |q| (p, q)))
            .map(|(p, q)| a[p * dim + q] * a[p * dim + q])
            .sum();
        // Converged when the off-diagonal part is rounding noise relative to the matrix.
        if off <= scale * 1e-30 {
            break;
        }
        for p in 0..dim {
            for q in (p + 1)..dim {
                rotate(&mut a, &mut v, dim, p, q);
            }
        }
    }
    let values = (0..dim).map(|i| a[i * dim + i]).collect();
    (values, v)
}

/// One Jacobi rotation in the (p, q) plane that zeroes `a[p][q]`: `A <- Jᵀ A J`, `V <- V J`.
fn rotate(a: &mut [f64], v: &mut [f64], dim: usize, p: usize, q: usize) {
    let apq = a[p * dim + q];
    if apq == 0.0 {
        return;
    }
    let theta = (a[q * dim + q] - a[p * dim + p]) / (2.0 * apq);
    // The smaller root of t² + 2θt - 1 = 0, which keeps the rotation angle under 45°; for
    // huge θ (θ² would overflow) it is 1 / 2θ.
    let t = if theta.abs() > 1e150 {
        0.5 / theta
    } else {
        theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt())
    };
    let c = 1.0 / (t * t + 1.0).sqrt();
    let s = t * c;
    for k in 0..dim {
        let (akp, akq) = (a[k * dim + p], a[k * dim + q]);
        a[k * dim + p] = c * akp - s * akq;
        a[k * dim + q] = s * akp + c * akq;
    }
    for k in 0..dim {
        let (apk, aqk) = (a[p * dim + k], a[q * dim + k]);
        a[p * dim + k] = c * apk - s * aqk;
        a[q * dim + k] = s * apk + c * aqk;
    }
    for k in 0..dim {
        let (vkp, vkq) = (v[k * dim + p], v[k * dim + q]);
        v[k * dim + p] = c * vkp - s * vkq;
        v[k * dim + q] = s * vkp + c * vkq;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random values in [0, 1).
    fn uniform(seed: u64, count: usize) -> Vec<f64> {
        let mut state = seed;
        (0..count)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect()
    }

    fn random_set(seed: u64, n: usize, dim: usize) -> Vec<Vec<f64>> {
        uniform(seed, n * dim).chunks(dim).map(<[f64]>::to_vec).collect()
    }

    fn mean_and_sd(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var.sqrt())
    }

    #[test]
    fn identical_sets_are_at_distance_zero() {
        let mut set = random_set(7, 40, 5);
        assert!(frechet_distance(&set, &set).unwrap().abs() < 1e-9);
        // A constant feature makes both covariances singular.
        for vector in &mut set {
            vector.push(3.0);
        }
        assert!(frechet_distance(&set, &set).unwrap().abs() < 1e-9);
    }

    #[test]
    fn one_dimensional_sets_match_the_closed_form() {
        let a: Vec<[f64; 1]> = uniform(1, 50).into_iter().map(|x| [x]).collect();
        let b: Vec<[f64; 1]> = uniform(2, 30).into_iter().map(|x| [3.0 * x + 1.0]).collect();
        let (ma, sa) = mean_and_sd(&a.iter().map(|v| v[0]).collect::<Vec<_>>());
        let (mb, sb) = mean_and_sd(&b.iter().map(|v| v[0]).collect::<Vec<_>>());
        let expected = (ma - mb).powi(2) + (sa - sb).powi(2);
        let got = frechet_distance(&a, &b).unwrap();
        assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
    }

    /// Four points around a centre along the axes: an exactly diagonal sample covariance.
    fn cross(centre: [f64; 2], half_widths: [f64; 2]) -> Vec<[f64; 2]> {
        let ([x, y], [dx, dy]) = (centre, half_widths);
        vec![[x - dx, y], [x + dx, y], [x, y - dy], [x, y + dy]]
    }

    fn rotated(points: &[[f64; 2]], angle: f64) -> Vec<[f64; 2]> {
        let (s, c) = angle.sin_cos();
        points.iter().map(|[x, y]| [c * x - s * y, s * x + c * y]).collect()
    }

    #[test]
    fn diagonal_covariances_match_the_closed_form() {
        let a = cross([1.0, 2.0], [3.0, 0.5]);
        let b = cross([-1.0, 0.5], [1.0, 2.0]);
        let variance = |set: &[[f64; 2]], axis: usize| {
            mean_and_sd(&set.iter().map(|p| p[axis]).collect::<Vec<_>>()).1.powi(2)
        };
        let mean_term = (1.0f64 - -1.0).powi(2) + (2.0f64 - 0.5).powi(2);
        let cov_term: f64 = (0..2)
            .map(|axis| (variance(&a, axis).sqrt() - variance(&b, axis).sqrt()).powi(2))
            .sum();
        let got = frechet_distance(&a, &b).unwrap();
        assert!((got - (mean_term + cov_term)).abs() < 1e-9, "{got}");
        // Rotating both sets alike makes the covariances full but keeps the distance.
        let turned = frechet_distance(&rotated(&a, 0.7), &rotated(&b, 0.7)).unwrap();
        assert!((turned - got).abs() < 1e-9, "{turned} vs {got}");
    }

    #[test]
    fn jacobi_reconstructs_a_symmetric_matrix() {
        let (values, _) = jacobi_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        assert!((sorted[0] - 1.0).abs() < 1e-12 && (sorted[1] - 3.0).abs() < 1e-12);
        let dim = 6;
        let b = uniform(3, dim * dim);
        let mut m = vec![0.0; dim * dim];
        for i in 0..dim {
            for j in 0..dim {
                m[i * dim + j] = (0..dim).map(|k| b[i * dim + k] * b[j * dim + k]).sum();
            }
        }
        let (values, vectors) = jacobi_eigen(&m, dim);
        for i in 0..dim {
            for j in 0..dim {
                let back: f64 =
                    (0..dim).map(|k| vectors[i * dim + k] * values[k] * vectors[j * dim + k]).sum();
                assert!((back - m[i * dim + j]).abs() < 1e-10);
            }
        }
        let root = sqrt_psd(&m, dim);
        let square = mat_mul(&root, &root, dim);
        assert!(square.iter().zip(&m).all(|(x, y)| (x - y).abs() < 1e-10));
    }

    #[test]
    fn rejects_unusable_sets() {
        let one = vec![vec![1.0, 2.0]];
        let two = vec![vec![1.0, 2.0], vec![2.0, 3.0]];
        assert!(frechet_distance(&one, &two).unwrap_err().is_input());
        let three = vec![vec![1.0, 2.0, 3.0], vec![2.0, 3.0, 4.0]];
        assert!(frechet_distance(&two, &three).unwrap_err().is_input());
        let ragged = vec![vec![1.0, 2.0], vec![2.0]];
        assert!(frechet_distance(&ragged, &two).unwrap_err().is_input());
        let nan = vec![vec![1.0, f64::NAN], vec![2.0, 3.0]];
        assert!(frechet_distance(&nan, &two).unwrap_err().is_input());
    }
}
