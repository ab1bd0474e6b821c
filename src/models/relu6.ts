// Keras' ReLU(6.) (MobileNet's activation) as one kernel. tfjs-layers' ReLU layer computes
// relu, then clipByValue(0, 6): two passes over memory forward and two more for the gradient,
// on every one of MobileNet's 27 activations. tf.relu6 is the same function with the same
// gradient (1 on (0, 6], 0 elsewhere; NaN passes through) in one kernel.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

export class ReLU6 extends tfl.layers.Layer {
  /**
   * Serialised as tfjs-layers' (and Keras') own ReLU with max_value 6, so a saved model loads
   * anywhere, as the stock layer. Not registered: loading never needs this class.
   */
  static className = 'ReLU';

  constructor(args: { name?: string } = {}) {
    super(args);
    this.supportsMasking = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.relu6(Array.isArray(inputs) ? inputs[0]! : inputs);
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), maxValue: 6 };
  }
}
