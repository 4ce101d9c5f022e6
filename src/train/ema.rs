//! An exponential moving average of the weights, `ema = decay * ema + (1 - decay) * w`,
//! kept in a separate module (Polyak averaging; used for sampling as in arXiv 2006.11239).

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;

use crate::unet::ScoreModel;

/// The trained parameters, detached and flattened, by parameter id.
struct Snapshot {
    values: HashMap<ParamId, Tensor<1>>,
}

impl ModuleVisitor for Snapshot {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val().inner();
        let count = value.shape().num_elements();
        self.values.insert(param.id, value.reshape([count]));
    }
}

/// Moves each EMA parameter towards the trained one with the same id.
struct Blend {
    values: HashMap<ParamId, Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(trained) = self.values.remove(&param.id) else {
            return param;
        };
        let decay = self.decay;
        param.map(|ema| {
            let shape = ema.dims();
            ema.mul_scalar(decay) + trained.reshape(shape).mul_scalar(1.0 - decay)
        })
    }
}

/// Updates `ema` (a copy of the model made with [`Module::valid`], so that the parameter
/// ids match) towards `model`.
pub fn update(ema: ScoreModel, model: &ScoreModel, decay: f64) -> ScoreModel {
    let mut snapshot = Snapshot { values: HashMap::new() };
    model.visit(&mut snapshot);
    ema.map(&mut Blend { values: snapshot.values, decay })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cpu, values};
    use crate::unet::{ModelConfig, Preset};

    fn flat(model: &ScoreModel) -> HashMap<ParamId, Vec<f32>> {
        let mut snapshot = Snapshot { values: HashMap::new() };
        model.visit(&mut snapshot);
        snapshot.values.into_iter().map(|(id, t)| (id, values(&t))).collect()
    }

    #[test]
    fn the_average_moves_by_one_minus_decay() {
        let device = cpu();
        let model = ModelConfig::from_preset(Preset::Tiny, 10, 4).init(&device);
        // A "trained" model whose every weight is shifted by one.
        let shifted = model.clone().map(&mut Shift);
        let ema = update(model.clone(), &shifted, 0.75);
        let (before, after) = (flat(&model), flat(&ema));
        assert!(before.len() > 10, "the model has parameters");
        for (id, b) in &before {
            for (x, y) in b.iter().zip(&after[id]) {
                assert!((y - (x + 0.25)).abs() < 1e-5, "{y} vs {x} + 0.25");
            }
        }
    }

    struct Shift;

    impl ModuleMapper for Shift {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|t| t.add_scalar(1.0))
        }
    }
}
