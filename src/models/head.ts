// The classifier selab puts on every backbone: global average pooling + softmax dense,
// named as Keras names them.
import * as tfl from '@tensorflow/tfjs-layers';

export function classificationHead(features: tfl.SymbolicTensor, classes = 10): tfl.SymbolicTensor {
  const pooled = tfl.layers.globalAveragePooling2d({ name: 'global_average_pooling2d' }).apply(features) as tfl.SymbolicTensor;
  return tfl.layers.dense({ units: classes, activation: 'softmax', name: 'predictions' }).apply(pooled) as tfl.SymbolicTensor;
}

/** A new model: `base` (a headless backbone, its layers re-used as they are) followed by the head. */
export function withClassificationHead(base: tfl.LayersModel, classes = 10, name = base.name): tfl.LayersModel {
  if (base.outputs.length !== 1) {
    throw new Error(`withClassificationHead: ${base.name} has ${base.outputs.length} outputs, expected 1`);
  }
  const output = classificationHead(base.outputs[0] as tfl.SymbolicTensor, classes);
  return tfl.model({ inputs: base.inputs, outputs: output, name });
}
