// selab's public API.
export * from './attention/squeeze-excitation.js';
export * from './models/plain10.js';
export * from './models/vgg16.js';
export * from './models/mobilenet.js';
export * from './models/head.js';
export * from './models/rewrite.js';
export * from './models/presets.js';
export * from './experiments/cases.js';
export * from './models/all.js'; // registry API, with every model registered
export * from './engine/optimizers.js';
export * from './models/summary.js';
