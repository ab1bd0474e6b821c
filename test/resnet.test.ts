import { test } from 'node:test';
import assert from 'node:assert/strict';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { cifarResNet, preactResNet, resnet20, resnet32, resnet56, resnet110, resnet164, SE_INTEGRATIONS, ZeroPadShortcut, type SEIntegration } from '../src/models/resnet.js';
import { wideResNet, wrn16_8 } from '../src/models/wrn.js';
import { se as seAttention } from '../src/attention/index.js';
import { SqueezeExcitation, seParamCount } from '../src/attention/squeeze-excitation.js';

await tf.setBackend('cpu');

function counts(m: tfl.LayersModel): { params: number; trainable: number } {
  const trainable = m.trainableWeights.reduce((s, w) => s + w.shape.reduce((a: number, b) => a * (b ?? 0), 1), 0);
  return { params: m.countParams(), trainable };
}

function inbound(m: tfl.LayersModel, name: string): string[] {
  const layer = m.getLayer(name);
  assert.equal(layer.inboundNodes.length, 1, `${name} is applied once`);
  return layer.inboundNodes[0]!.inboundLayers.map((l) => l.name);
}

// Trainable counts are what PyTorch (and the papers) count; Keras' countParams adds the BN
// moving mean and variance (2 per BN channel). Hand count for ResNet-20, option A, no conv bias:
// convs 3·9·16 + 6·(16·9·16) + (16·9·32 + 5·32·9·32) + (32·9·64 + 5·64·9·64) = 267,696;
// BN γ,β 2·(16 + 6·16 + 6·32 + 6·64) = 1,376; dense 64·10 + 10 = 650 → 269,722 (He et al.: 0.27M),
// plus 1,376 moving statistics → 271,098.
test('CIFAR ResNet parameter counts match He et al. (option A shortcuts)', () => {
  const expected: [string, () => tfl.LayersModel, number, number, string][] = [
    ['resnet20', () => resnet20(), 269_722, 271_098, '0.27M'],
    ['resnet32', () => resnet32(), 464_154, 466_426, '0.46M'],
    ['resnet56', () => resnet56(), 853_018, 857_082, '0.85M'],
    ['resnet110', () => resnet110(), 1_727_962, 1_736_058, '1.7M'],
  ];
  for (const [name, build, trainable, params] of expected) {
    const m = build();
    assert.deepEqual(counts(m), { params, trainable }, name);
    m.dispose();
  }
  // Option B (1×1 projection + BN on the two shape-changing units) adds 16·32 + 64 + 32·64 + 128 trainable.
  const b = cifarResNet({ depth: 20, shortcut: 'B' });
  assert.equal(counts(b).trainable, 269_722 + 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64);
  b.dispose();
});

test('ResNet-164 (pre-activation bottleneck) and WRN-16-8 parameter counts', () => {
  // ResNet-164: 1.7M in He et al. ("Identity Mappings in Deep Residual Networks") and 1,703,258 in the common PyTorch ports.
  const r = resnet164();
  assert.deepEqual(counts(r), { params: 1_727_482, trainable: 1_703_258 });
  r.dispose();
  // WRN-16-8: 11.0M in Zagoruyko & Komodakis, and in the SE paper.
  const w = wrn16_8();
  assert.deepEqual(counts(w), { params: 10_968_570, trainable: 10_961_370 });
  w.dispose();
});

test('SE adds exactly its blocks: one per unit, on the unit\'s width (SE-ResNet-20, r = 16)', () => {
  const blocks = [...Array(3).fill(16), ...Array(3).fill(32), ...Array(3).fill(64)] as number[];
  const seParams = blocks.reduce((s, c) => s + seParamCount(c, 16), 0);
  for (const integration of ['standard', 'post', 'identity'] as const) {
    const m = resnet20({ attention: seAttention({ ratio: 16 }), integration });
    assert.equal(counts(m).trainable, 269_722 + seParams, integration);
    assert.equal(m.layers.filter((l) => l instanceof SqueezeExcitation).length, 9);
    assert.equal(m.name, integration === 'standard' ? 'resnet20_se' : `resnet20_se_${integration}`);
    m.dispose();
  }
  // SE-PRE scales the unit's input, which in the first unit of a stage has the previous stage's width.
  const pre = resnet20({ attention: seAttention({ ratio: 16 }), integration: 'pre' });
  const preBlocks = [16, 16, 16, 16, 32, 32, 32, 64, 64];
  assert.equal(counts(pre).trainable, 269_722 + preBlocks.reduce((s, c) => s + seParamCount(c, 16), 0));
  pre.dispose();
  assert.throws(() => resnet20({ attention: seAttention(), integration: 'inside' as SEIntegration }), /unknown SE integration "inside": expected one of standard, pre, post, identity/);
  assert.throws(() => cifarResNet({ depth: 21 }), /depth must be 6n \+ 2/);
});

/**
 * The SE layer multiplies its own input by the gate, so "what feeds the multiply" is the SE layer's
 * inbound layer; the addition is the unit's Add layer.
 */
test('each integration places SE where the SE paper does (post-activation basic units)', () => {
  const unitInput = (integration: SEIntegration): string => (integration === 'post' ? 'conv2_block1_se' : 'conv2_block1_out');
  for (const integration of SE_INTEGRATIONS) {
    const m = cifarResNet({ depth: 20, attention: seAttention({ ratio: 4 }), integration });
    const x = unitInput(integration);
    const se = inbound(m, 'conv2_block2_se');
    const addIn = inbound(m, 'conv2_block2_add');
    switch (integration) {
      case 'standard': // residual branch, after its last BN, before the addition
        assert.deepEqual(se, ['conv2_block2_2_bn']);
        assert.deepEqual(addIn, [x, 'conv2_block2_se']);
        break;
      case 'pre': // on the residual branch's input; the identity stays unscaled
        assert.deepEqual(se, [x]);
        assert.deepEqual(inbound(m, 'conv2_block2_1_conv'), ['conv2_block2_se']);
        assert.deepEqual(addIn, [x, 'conv2_block2_2_bn']);
        break;
      case 'post': // after the addition (and the unit's ReLU); the next unit reads the SE output
        assert.deepEqual(se, ['conv2_block2_out']);
        assert.deepEqual(inbound(m, 'conv2_block2_out'), ['conv2_block2_add']);
        assert.deepEqual(addIn, [x, 'conv2_block2_2_bn']);
        assert.deepEqual(inbound(m, 'conv2_block3_1_conv'), ['conv2_block2_se']);
        break;
      case 'identity': // on the identity branch, in parallel with the residual
        assert.deepEqual(se, [x]);
        assert.deepEqual(addIn, ['conv2_block2_se', 'conv2_block2_2_bn']);
        // The zero-padded shortcut of a downsampling unit is what SE scales there.
        assert.deepEqual(inbound(m, 'conv3_block1_se'), ['conv3_block1_0_pad']);
        assert.deepEqual(inbound(m, 'conv3_block1_add'), ['conv3_block1_se', 'conv3_block1_2_bn']);
        break;
    }
    m.dispose();
  }
});

test('each integration places SE where the SE paper does (pre-activation units: ResNet bottleneck and WRN)', () => {
  const builders = {
    bottleneck: (integration: SEIntegration) => preactResNet({ depth: 11, attention: seAttention({ ratio: 4 }), integration }),
    wide: (integration: SEIntegration) => wideResNet({ depth: 10, width: 1, attention: seAttention({ ratio: 4 }), integration }),
  };
  for (const [kind, build] of Object.entries(builders)) {
    const last = kind === 'bottleneck' ? 'conv3_block1_3_conv' : 'conv3_block1_2_conv';
    for (const integration of SE_INTEGRATIONS) {
      const m = build(integration);
      const input = integration === 'post' ? 'conv2_block1_se' : 'conv2_block1_out';
      const se = inbound(m, 'conv3_block1_se');
      const addIn = inbound(m, 'conv3_block1_out');
      const what = `${kind} ${integration}`;
      // conv3_block1 downsamples: its first BN-ReLU is shared and the shortcut is a 1×1 projection.
      assert.deepEqual(inbound(m, 'conv3_block1_preact_bn'), [input], what);
      assert.deepEqual(inbound(m, 'conv3_block1_0_conv'), ['conv3_block1_preact_relu'], what);
      switch (integration) {
        case 'standard':
          assert.deepEqual(se, [last], what);
          assert.deepEqual(addIn, ['conv3_block1_0_conv', 'conv3_block1_se'], what);
          break;
        case 'pre':
          assert.deepEqual(se, ['conv3_block1_preact_relu'], what);
          assert.deepEqual(inbound(m, 'conv3_block1_1_conv'), ['conv3_block1_se'], what);
          assert.deepEqual(addIn, ['conv3_block1_0_conv', last], what);
          break;
        case 'post':
          assert.deepEqual(se, ['conv3_block1_out'], what);
          assert.deepEqual(addIn, ['conv3_block1_0_conv', last], what);
          break;
        case 'identity':
          assert.deepEqual(se, ['conv3_block1_0_conv'], what);
          assert.deepEqual(addIn, ['conv3_block1_se', last], what);
          break;
      }
      m.dispose();
    }
  }
  // In an identity unit of a pre-activation network, SE-PRE scales the unit input before its BN.
  const w = wideResNet({ depth: 16, width: 1, attention: seAttention(), integration: 'pre' });
  assert.deepEqual(inbound(w, 'conv2_block2_se'), ['conv2_block1_out']);
  assert.deepEqual(inbound(w, 'conv2_block2_preact_bn'), ['conv2_block2_se']);
  assert.deepEqual(inbound(w, 'conv2_block2_out'), ['conv2_block1_out', 'conv2_block2_2_conv']);
  w.dispose();
});

test('option A shortcut subsamples every other pixel and appends zero channels, with a gradient', () => {
  const layer = new ZeroPadShortcut({ strides: 2, filters: 3, name: 'pad' });
  const x = tf.reshape(tf.range(0, 32), [1, 4, 4, 2]);
  const y = layer.apply(x) as tf.Tensor;
  assert.deepEqual(y.shape, [1, 2, 2, 3]);
  // x[0, r, c, ch] = 8r + 2c + ch; kept pixels (0,0) (0,2) (2,0) (2,2).
  assert.deepEqual(Array.from(y.dataSync()), [0, 1, 0, 4, 5, 0, 16, 17, 0, 20, 21, 0]);
  const g = tf.grad((t: tf.Tensor) => tf.sum(layer.apply(t) as tf.Tensor))(x);
  const kept = new Set([0, 1, 4, 5, 16, 17, 20, 21]);
  assert.deepEqual(Array.from(g.dataSync()), Array.from({ length: 32 }, (_, i) => (kept.has(i) ? 1 : 0)));
  tf.dispose([x, y, g]);
});

test('a ResNet with SE and zero-pad shortcuts survives a save/load round trip', async () => {
  const m = cifarResNet({ depth: 8, attention: seAttention(), integration: 'identity', inputShape: [8, 8, 3] });
  let artifacts: tf.io.ModelArtifacts | undefined;
  await m.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const loaded = await tfl.loadLayersModel(tf.io.fromMemory(artifacts!));
  const x = tf.randomUniform([2, 8, 8, 3], 0, 1, 'float32', 3);
  const a = m.predict(x) as tf.Tensor;
  const b = loaded.predict(x) as tf.Tensor;
  assert.deepEqual(Array.from(b.dataSync()), Array.from(a.dataSync()));
  assert.ok(loaded.layers.some((l) => l instanceof ZeroPadShortcut));
  tf.dispose([x, a, b]);
  m.dispose();
  loaded.dispose();
});
