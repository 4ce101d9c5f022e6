//! `ScoreKernels` under autodiff: the loss records a hand-written backward (its gradient is one
//! more fused kernel); noising and the sampler step take data, not parameters, and are run on the
//! inner backend as constants.

use burn::backend::{
    AutodiffBackend, TensorMetadata,
    autodiff::{
        Autodiff,
        checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
        grads::Gradients,
        ops::{Backward, Ops, OpsKind},
    },
    ops::FloatTensorOps,
    tensor::FloatTensor,
};
use burn::tensor::Shape;

use super::{ScoreKernels, StepParams};
use crate::reference::Target;

/// The loss's backward: `d output = 2 g w_b (output - target) / (batch * n)`, `d target` its
/// negation, `d w_b = g * mean_i (output - target)^2 / batch`.
#[derive(Debug)]
struct WeightedMseBackward;

impl<B: ScoreKernels> Backward<B, 3> for WeightedMseBackward {
    /// The forward inputs.
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_output, node_target, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (output, target, weight) = ops.state;

        // 1. The weights (rarely tracked): plain primitives.
        if let Some(node) = node_weight {
            let [batch, channels, height, width] = output.shape().dims::<4>();
            let diff = B::float_sub(output.clone(), target.clone());
            let squared = B::float_mul(diff.clone(), diff);
            let squared = B::float_reshape(squared, Shape::new([batch, channels * height * width]));
            let per_sample = B::float_reshape(B::float_mean_dim(squared, 1), Shape::new([batch]));
            let scaled = B::float_div_scalar(per_sample, (batch as f32).into());
            grads.register::<B>(node.id, B::float_mul(scaled, grad.clone()));
        }

        // 2. The output and the target: the fused gradient kernel.
        if node_output.is_none() && node_target.is_none() {
            return;
        }
        let d_output = B::fused_weighted_mse_grad(output, target, weight, grad);
        if let Some(node) = node_target {
            grads.register::<B>(node.id, B::float_neg(d_output.clone()));
        }
        if let Some(node) = node_output {
            grads.register::<B>(node.id, d_output);
        }
    }
}

impl<B: ScoreKernels, C: CheckpointStrategy> ScoreKernels for Autodiff<B, C> {
    fn fused_noising(
        x0: FloatTensor<Self>,
        eps: FloatTensor<Self>,
        alpha: FloatTensor<Self>,
        sigma: FloatTensor<Self>,
        target: Target,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        if !(x0.is_tracked() || eps.is_tracked() || alpha.is_tracked() || sigma.is_tracked()) {
            let (x_t, target) = B::fused_noising(
                x0.into_primitive(),
                eps.into_primitive(),
                alpha.into_primitive(),
                sigma.into_primitive(),
                target,
            );
            return (Self::from_inner(x_t), Self::from_inner(target));
        }
        // A tracked input (the library routes these to the reference; kept correct here for a
        // direct caller): differentiable primitives, so autodiff records the backward.
        let [batch] = alpha.shape().dims::<1>();
        let alpha = Self::float_reshape(alpha, Shape::new([batch, 1, 1, 1]));
        let sigma = Self::float_reshape(sigma, Shape::new([batch, 1, 1, 1]));
        let x_t = Self::float_add(
            Self::float_mul(x0.clone(), alpha.clone()),
            Self::float_mul(eps.clone(), sigma.clone()),
        );
        let target = match target {
            Target::Eps => eps,
            Target::X0 => x0,
            Target::V => Self::float_sub(Self::float_mul(eps, alpha), Self::float_mul(x0, sigma)),
        };
        (x_t, target)
    }

    fn fused_weighted_mse(
        output: FloatTensor<Self>,
        target: FloatTensor<Self>,
        weight: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let nodes = [output.node(), target.node(), weight.node()];
        match WeightedMseBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let output = output.into_primitive();
                let target = target.into_primitive();
                let weight = weight.into_primitive();
                let loss = B::fused_weighted_mse(output.clone(), target.clone(), weight.clone());
                prep.finish((output, target, weight), loss)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_weighted_mse(
                output.into_primitive(),
                target.into_primitive(),
                weight.into_primitive(),
            )),
        }
    }

    fn fused_weighted_mse_grad(
        output: FloatTensor<Self>,
        target: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        // Called from the backward on the inner backend; here only for completeness, and not
        // differentiable again.
        Self::from_inner(B::fused_weighted_mse_grad(
            output.into_primitive(),
            target.into_primitive(),
            weight.into_primitive(),
            grad.into_primitive(),
        ))
    }

    fn fused_sampler_step(
        x_t: FloatTensor<Self>,
        cond: FloatTensor<Self>,
        uncond: FloatTensor<Self>,
        x0_prev: FloatTensor<Self>,
        params: StepParams,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        // Sampling is inference: the step is a constant (the library sends tracked inputs to
        // the reference instead).
        let (x_next, x0) = B::fused_sampler_step(
            x_t.into_primitive(),
            cond.into_primitive(),
            uncond.into_primitive(),
            x0_prev.into_primitive(),
            params,
        );
        (Self::from_inner(x_next), Self::from_inner(x0))
    }
}
