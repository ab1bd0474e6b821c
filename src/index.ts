// selab's public API.
export * from './attention/index.js';
export * from './attention/squeeze-excitation.js';
export * from './attention/efficient-channel-attention.js';
export * from './models/plain10.js';
export * from './models/resnet.js';
export * from './models/wrn.js';
export * from './models/vgg16.js';
export * from './models/mobilenet.js';
export * from './models/head.js';
export * from './models/rewrite.js';
export * from './models/presets.js';
export * from './models/all.js'; // the registry, with every model registered
export * from './models/summary.js';
export * from './experiments/cases.js';
export * from './engine/optimizers.js';
